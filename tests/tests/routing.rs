//! Routing, offline messages and server iqs through each server binary.

use rookery_tests::client::RawClient;
use rookery_tests::for_both_shims;
use rookery_tests::server::TestServer;

const USERS: &[(&str, &str)] = &[
    ("juliet@localhost", "r0m30"),
    ("romeo@localhost", "j00l13t"),
];

fn online(
    server: &TestServer,
    user: &str,
    password: &str,
    resource: &str,
    priority: i8,
) -> anyhow::Result<RawClient> {
    let presence = format!("<presence><priority>{priority}</priority></presence>");
    RawClient::available(server.addr, user, password, resource, &presence)
}

for_both_shims! {
    fn bare_jid_message_reaches_the_highest_priority_resource_only(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut low = online(&server, "juliet", "r0m30", "low", 1)?;
        let mut high = online(&server, "juliet", "r0m30", "high", 7)?;
        let mut romeo = online(&server, "romeo", "j00l13t", "orchard", 0)?;
        romeo.send("<message to='juliet@localhost' type='chat' id='m1'><body>To the high one</body></message>")?;
        high.read_until("<body>To the high one</body></message>")?;
        // A marker to the low resource arrives after anything misrouted.
        romeo.send("<message to='juliet@localhost/low' type='chat' id='m2'><body>marker</body></message>")?;
        let got = low.read_until("<body>marker</body></message>")?;
        assert!(!got.contains("To the high one"), "{got}");
        Ok(())
    }

    fn offline_messages_arrive_with_delay_at_the_next_login(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut romeo = online(&server, "romeo", "j00l13t", "orchard", 0)?;
        for i in 0..3 {
            romeo.send(&format!("<message to='juliet@localhost' type='chat' id='o{i}'><body>note {i}</body></message>"))?;
        }
        // Round trip: the messages were handled before we log in.
        romeo.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")?;
        romeo.read_until("id='sync'")?;
        let mut juliet = online(&server, "juliet", "r0m30", "balcony", 0)?;
        let got = juliet.read_until("<body>note 2</body>")?;
        let first = got.find("note 0").expect("note 0");
        let second = got.find("note 1").expect("note 1");
        assert!(first < second, "{got}");
        assert!(got.contains("<delay xmlns='urn:xmpp:delay' from='localhost' stamp='"), "{got}");
        Ok(())
    }

    fn offline_messages_survive_a_restart(shim) {
        let mut server = TestServer::start(shim, USERS, "")?;
        let mut romeo = online(&server, "romeo", "j00l13t", "orchard", 0)?;
        romeo.send("<message to='juliet@localhost' type='chat' id='k'><body>kept</body></message>")?;
        // Storage runs queries in order, and a roster set is acknowledged
        // only once durable: after its result, the message is on disk.
        romeo.send("<iq type='set' id='sync'><query xmlns='jabber:iq:roster'><item jid='nurse@localhost'/></query></iq>")?;
        romeo.read_until("<iq type='result' id='sync'")?;
        server.kill_and_restart()?;
        let mut juliet = online(&server, "juliet", "r0m30", "balcony", 0)?;
        juliet.read_until("<body>kept</body>")?;
        Ok(())
    }

    fn iq_round_trips_between_two_clients(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut juliet = online(&server, "juliet", "r0m30", "balcony", 0)?;
        let mut romeo = online(&server, "romeo", "j00l13t", "orchard", 0)?;
        romeo.send("<iq type='get' id='v1' to='juliet@localhost/balcony'><query xmlns='jabber:iq:version'/></iq>")?;
        juliet.read_until("<iq id='v1' to='juliet@localhost/balcony' type='get' from='romeo@localhost/orchard'>")?;
        juliet.send("<iq type='result' id='v1' to='romeo@localhost/orchard'><query xmlns='jabber:iq:version'><name>Balcony</name></query></iq>")?;
        let got = romeo.read_until("</iq>")?;
        assert_eq!(
            got,
            "<iq id='v1' to='romeo@localhost/orchard' type='result' from='juliet@localhost/balcony'>\
             <query xmlns='jabber:iq:version'><name>Balcony</name></query></iq>"
        );
        Ok(())
    }

    fn server_answers_ping_and_disco(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut c = online(&server, "romeo", "j00l13t", "orchard", 0)?;
        c.send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")?;
        assert_eq!(c.read_until("/>")?, "<iq type='result' id='p' to='romeo@localhost/orchard' from='localhost'/>");
        c.send("<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")?;
        let info = c.read_until("</iq>")?;
        assert!(info.contains("<identity category='server' type='im' name='Rookery'/>"), "{info}");
        assert!(info.contains("<feature var='urn:xmpp:ping'/>"), "{info}");
        Ok(())
    }
}
