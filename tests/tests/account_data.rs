//! An account's vCard (XEP-0054) and private XML (XEP-0049) through each
//! server binary: acknowledged writes survive a SIGKILL.

use rookery_tests::client::RawClient;
use rookery_tests::for_both_shims;
use rookery_tests::server::TestServer;

const USERS: &[(&str, &str)] = &[
    ("juliet@localhost", "r0m30"),
    ("romeo@localhost", "j00l13t"),
];

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
}
