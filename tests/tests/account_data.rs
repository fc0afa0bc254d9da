//! An account's vCard (XEP-0054), private XML (XEP-0049) and message
//! archive (XEP-0313) through each server binary: acknowledged writes
//! survive a SIGKILL.

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

for_both_shims! {
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
}
