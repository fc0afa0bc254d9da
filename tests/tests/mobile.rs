//! Carbons between three resources and client state indication, through
//! each server binary.

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
) -> anyhow::Result<RawClient> {
    RawClient::available(server.addr, user, password, resource, "<presence/>")
}

fn enable_carbons(c: &mut RawClient) -> anyhow::Result<()> {
    c.send("<iq type='set' id='carbons'><enable xmlns='urn:xmpp:carbons:2'/></iq>")?;
    c.read_until("id='carbons'")?;
    c.read_until("/>")?;
    Ok(())
}

for_both_shims! {
    fn carbons_reach_the_other_two_resources_that_enabled_them(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut phone = online(&server, "juliet", "r0m30", "phone")?;
        let mut desktop = online(&server, "juliet", "r0m30", "desktop")?;
        let mut tablet = online(&server, "juliet", "r0m30", "tablet")?;
        for c in [&mut phone, &mut desktop, &mut tablet] {
            enable_carbons(c)?;
        }
        let mut romeo = online(&server, "romeo", "j00l13t", "orchard")?;
        romeo.send("<message to='juliet@localhost/phone' type='chat' id='in'><body>received</body></message>")?;
        phone.read_until("<body>received</body>")?;
        for c in [&mut desktop, &mut tablet] {
            let got = c.read_until("</received>")?;
            assert!(got.contains("<received xmlns='urn:xmpp:carbons:2'>"), "{got}");
            assert!(got.contains("<body>received</body>"), "{got}");
        }
        phone.send("<message to='romeo@localhost' type='chat' id='out'><body>sent</body></message>")?;
        romeo.read_until("<body>sent</body>")?;
        for c in [&mut desktop, &mut tablet] {
            let got = c.read_until("</sent>")?;
            assert!(got.contains("<body>sent</body>"), "{got}");
        }
        Ok(())
    }

    fn an_inactive_client_gets_presence_only_with_the_next_chat_message(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut juliet = online(&server, "juliet", "r0m30", "balcony")?;
        let mut romeo = online(&server, "romeo", "j00l13t", "orchard")?;
        // Subscribed both ways.
        romeo.send("<presence to='juliet@localhost' type='subscribe'/>")?;
        juliet.read_until("type='subscribe'")?;
        juliet.send("<presence to='romeo@localhost' type='subscribed'/>")?;
        juliet.send("<presence to='romeo@localhost' type='subscribe'/>")?;
        romeo.read_until("type='subscribe'")?;
        romeo.send("<presence to='juliet@localhost' type='subscribed'/>")?;
        juliet.read_until("<presence from='romeo@localhost/orchard'")?;
        juliet.send("<iq type='get' id='sync1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")?;
        juliet.read_until("id='sync1'")?;
        juliet.send("<inactive xmlns='urn:xmpp:csi:0'/>")?;
        juliet.send("<iq type='get' id='sync2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")?;
        juliet.read_until("id='sync2'")?;
        juliet.read_until("/>")?;
        romeo.send("<presence><show>away</show></presence>")?;
        // Round trip on Romeo's side: his presence has been handled.
        romeo.send("<iq type='get' id='sync3' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")?;
        romeo.read_until("id='sync3'")?;
        juliet.poll()?;
        assert!(!juliet.buffered().contains("<show>away</show>"), "held: {}", juliet.buffered());
        romeo.send("<message to='juliet@localhost' type='chat'><body>wake</body></message>")?;
        let got = juliet.read_until("<body>wake</body>")?;
        let presence = got.find("<show>away</show>").expect("presence flushed first");
        assert!(presence < got.find("wake").unwrap(), "{got}");
        Ok(())
    }
}
