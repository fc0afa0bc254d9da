//! An account's vCard (XEP-0054), private XML (XEP-0049), message
//! archive (XEP-0313) and personal eventing nodes (XEP-0163) through each
//! server binary: acknowledged writes survive a SIGKILL.

use rookery_tests::client::RawClient;
use rookery_tests::for_both_shims;
use rookery_tests::server::TestServer;

const USERS: &[(&str, &str)] = &[
    ("juliet@localhost", "r0m30"),
    ("romeo@localhost", "j00l13t"),
];

/// Message archives are off by default.
const ARCHIVING: &str = "[archive]\nenabled = true";

const CARD: &str = "<vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN></vCard>";
const PREFS: &str = "<exodus xmlns='exodus:prefs'><defaultnick>jc</defaultnick></exodus>";

/// A client following nicknames (XEP-0115 hash of its disco#info:
/// client/pc//Tester, disco#info, nick, nick+notify).
const FOLLOWS_NICKS: &str = "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' \
    node='https://tester' ver='vURgFtUSdFBvX8sSiItx4MN3H9o='/></presence>";

fn nicks_disco(id: &str) -> String {
    format!(
        "<iq type='result' to='localhost' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info' \
         node='https://tester#vURgFtUSdFBvX8sSiItx4MN3H9o='>\
         <identity category='client' type='pc' name='Tester'/>\
         <feature var='http://jabber.org/protocol/disco#info'/>\
         <feature var='http://jabber.org/protocol/nick'/>\
         <feature var='http://jabber.org/protocol/nick+notify'/></query></iq>"
    )
}

for_both_shims! {
    fn an_admin_adds_and_deletes_an_account_with_ad_hoc_commands(shim) {
        let mut server = TestServer::start_with_top(shim, USERS, "admins = ['juliet@localhost']", "")?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        let submit = |node: &str, fields: &str| format!(
            "<iq type='set' id='{node}' to='localhost'><command xmlns='http://jabber.org/protocol/commands' \
             node='http://jabber.org/protocol/admin#{node}'><x xmlns='jabber:x:data' type='submit'>{fields}</x></command></iq>");
        juliet.send(&submit("add-user", "<field var='accountjid'><value>nurse@localhost</value></field>\
            <field var='password'><value>s3cret</value></field>"))?;
        let added = juliet.read_until("</iq>")?;
        assert!(added.contains("status='completed'"), "{added}");
        server.kill_and_restart()?;

        let (mut nurse, _) = RawClient::login(server.addr, "nurse", "s3cret", Some("chamber"))?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        juliet.send(&submit("delete-user", "<field var='accountjids'><value>nurse@localhost</value></field>"))?;
        let deleted = juliet.read_until("</iq>")?;
        assert!(deleted.contains("status='completed'"), "{deleted}");
        let ended = nurse.read_to_close()?;
        assert!(ended.contains("<not-authorized"), "{ended}");
        assert!(RawClient::login(server.addr, "nurse", "s3cret", None).is_err());
        // Romeo is no admin.
        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        romeo.send(&submit("add-user", ""))?;
        let refused = romeo.read_until("</iq>")?;
        assert!(refused.contains("<forbidden"), "{refused}");
        Ok(())
    }

    fn an_account_registered_in_band_survives_a_kill_changes_its_password_and_removes_itself(shim) {
        let mut server = TestServer::start(shim, USERS, "allow_registration = true")?;
        let mut c = RawClient::connect(server.addr)?;
        let features = c.open_stream()?;
        assert!(features.contains("<register xmlns='http://jabber.org/features/iq-register'/>"), "{features}");
        c.send("<iq type='set' id='r'><query xmlns='jabber:iq:register'>\
            <username>nurse</username><password>s3cret</password></query></iq>")?;
        let created = c.read_until("</iq>").or_else(|_| c.read_until("/>"))?;
        assert!(created.contains("<iq type='result' id='r'"), "{created}");
        server.kill_and_restart()?;

        let (mut nurse, _) = RawClient::login(server.addr, "nurse", "s3cret", Some("chamber"))?;
        nurse.send("<iq type='set' id='p'><query xmlns='jabber:iq:register'>\
            <username>nurse</username><password>n3w</password></query></iq>")?;
        let changed = nurse.read_until("id='p'")?;
        assert!(changed.contains("type='result'"), "{changed}");
        assert!(RawClient::login(server.addr, "nurse", "s3cret", None).is_err());
        let (mut nurse, _) = RawClient::login(server.addr, "nurse", "n3w", Some("chamber"))?;
        nurse.send("<iq type='set' id='x'><query xmlns='jabber:iq:register'><remove/></query></iq>")?;
        let removed = nurse.read_until("not-authorized")?;
        assert!(removed.contains("<iq type='result' id='x'"), "{removed}");
        assert!(RawClient::login(server.addr, "nurse", "n3w", None).is_err());
        Ok(())
    }

    fn a_published_item_survives_a_kill_and_reaches_a_resource_coming_online(shim) {
        let mut server = TestServer::start(shim, USERS, "")?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        juliet.send("<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <publish node='http://jabber.org/protocol/nick'><item id='current'>\
            <nick xmlns='http://jabber.org/protocol/nick'>Jules</nick></item></publish>\
            <publish-options><x xmlns='jabber:x:data' type='submit'>\
            <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
            <field var='pubsub#access_model'><value>open</value></field></x></publish-options>\
            </pubsub></iq>")?;
        let published = juliet.read_until("id='p'")?;
        let published = published + &juliet.read_until("</iq>")?;
        assert!(published.contains("type='result'") && published.contains("<item id='current'/>"), "{published}");
        server.kill_and_restart()?;

        // Open: anyone reads it.
        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        romeo.send("<iq type='get' id='i' to='juliet@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <items node='http://jabber.org/protocol/nick'/></pubsub></iq>")?;
        let items = romeo.read_until("</iq>")?;
        assert!(items.contains("<item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Jules</nick></item>"), "{items}");
        // Her own resource, following nicknames, is asked what its
        // capabilities mean, then sent the last item.
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        juliet.send(FOLLOWS_NICKS)?;
        let asked = juliet.read_until("disco#info")?;
        let asked = asked + &juliet.read_until("</iq>")?;
        let id = asked.split("<iq type='get' id='").nth(1).and_then(|r| r.split('\'').next()).unwrap_or_default().to_owned();
        juliet.send(&nicks_disco(&id))?;
        let event = juliet.read_until("</message>")?;
        assert!(event.contains("<message from='juliet@localhost' to='juliet@localhost/balcony' type='headline'>\
            <event xmlns='http://jabber.org/protocol/pubsub#event'><items node='http://jabber.org/protocol/nick'>\
            <item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Jules</nick></item></items></event></message>"), "{event}");
        Ok(())
    }

    fn a_vcard_and_private_xml_acknowledged_survive_a_kill(shim) {
        let mut server = TestServer::start(shim, USERS, "")?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        juliet.send(&format!("<iq type='set' id='v'>{CARD}</iq>"))?;
        let stored = juliet.read_until("id='v'")?;
        assert!(stored.contains("type='result'"), "{stored}");
        juliet.send(&format!("<iq type='set' id='p'><query xmlns='jabber:iq:private'>{PREFS}</query></iq>"))?;
        let stored = juliet.read_until("id='p'")?;
        assert!(stored.contains("type='result'"), "{stored}");
        server.kill_and_restart()?;

        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        romeo.send("<iq type='get' id='c' to='juliet@localhost'><vCard xmlns='vcard-temp'/></iq>")?;
        let card = romeo.read_until("</iq>")?;
        assert!(card.contains(CARD), "{card}");
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        juliet.send("<iq type='get' id='g'><query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query></iq>")?;
        let prefs = juliet.read_until("</iq>")?;
        assert!(prefs.contains(PREFS), "{prefs}");
        Ok(())
    }

    fn archived_messages_survive_a_kill_and_page_back(shim) {
        let mut server = TestServer::start(shim, USERS, ARCHIVING)?;
        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        for body in ["one", "two", "three"] {
            romeo.send(&format!("<message to='juliet@localhost' type='chat'><body>{body}</body></message>"))?;
        }
        // Storage writes in order: once this is durable, so are the
        // archive entries before it.
        romeo.send(&format!("<iq type='set' id='v'>{CARD}</iq>"))?;
        romeo.read_until("id='v'")?;
        server.kill_and_restart()?;

        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        juliet.send("<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='x'><set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set></query></iq>")?;
        let page = juliet.read_until("id='q'")?;
        let page = page + &juliet.read_until("</iq>")?;
        assert_eq!(page.matches("<result ").count(), 2, "{page}");
        assert!(page.contains("<body>one</body>") && page.contains("<body>two</body>"), "{page}");
        assert!(!page.contains("complete='true'"), "{page}");
        let last = page.split("<last>").nth(1).and_then(|l| l.split('<').next()).unwrap_or_default().to_owned();
        juliet.send(&format!("<iq type='set' id='r'><query xmlns='urn:xmpp:mam:2' queryid='y'><set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>{last}</after></set></query></iq>"))?;
        let rest = juliet.read_until("id='r'")?;
        let rest = rest + &juliet.read_until("</iq>")?;
        assert_eq!(rest.matches("<result ").count(), 1, "{rest}");
        assert!(rest.contains("<body>three</body>") && rest.contains("complete='true'"), "{rest}");
        Ok(())
    }

    fn archiving_preferences_survive_a_kill_and_keep_an_offline_accounts_archive_out(shim) {
        let mut server = TestServer::start(shim, USERS, ARCHIVING)?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        juliet.send("<iq type='set' id='p'><prefs xmlns='urn:xmpp:mam:2' default='always'>\
            <never><jid>romeo@localhost</jid></never></prefs></iq>")?;
        let set = juliet.read_until("</iq>")?;
        assert!(set.ends_with("<iq type='result' id='p' to='juliet@localhost/balcony'>\
            <prefs xmlns='urn:xmpp:mam:2' default='always'><always/><never><jid>romeo@localhost</jid></never>\
            </prefs></iq>"), "{set}");
        server.kill_and_restart()?;

        // Juliet is offline: storage applies her preferences.
        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        romeo.send("<message to='juliet@localhost' type='chat'><body>unkept</body></message>")?;
        romeo.send(&format!("<iq type='set' id='v'>{CARD}</iq>"))?;
        romeo.read_until("id='v'")?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        juliet.send("<iq type='get' id='g'><prefs xmlns='urn:xmpp:mam:2'/></iq>")?;
        let read = juliet.read_until("</prefs></iq>")?;
        assert!(read.contains("<never><jid>romeo@localhost</jid></never>"), "{read}");
        juliet.send("<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='x'/></iq>")?;
        let page = juliet.read_until("id='q'")?;
        let page = page + &juliet.read_until("</iq>")?;
        assert!(!page.contains("<result "), "{page}");
        assert!(page.contains("<fin xmlns='urn:xmpp:mam:2' complete='true'>"), "{page}");
        // Romeo's own preferences keep it.
        romeo.send("<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='x'/></iq>")?;
        let page = romeo.read_until("id='q'")?;
        let page = page + &romeo.read_until("</iq>")?;
        assert!(page.contains("<body>unkept</body>"), "{page}");
        Ok(())
    }
}
