//! Blocking (XEP-0191) through each server binary: both directions, and
//! the list survives a restart.

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

for_both_shims! {
    fn blocking_stops_messages_both_ways_and_survives_a_restart(shim) {
        let mut server = TestServer::start(shim, USERS, "")?;
        let mut juliet = online(&server, "juliet", "r0m30", "balcony")?;
        juliet.send("<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></block></iq>")?;
        juliet.read_until("id='b'")?;
        server.kill_and_restart()?;

        let mut juliet = online(&server, "juliet", "r0m30", "balcony")?;
        let mut romeo = online(&server, "romeo", "j00l13t", "orchard")?;
        romeo.send("<message to='juliet@localhost/balcony' type='chat' id='in'><body>hi</body></message>")?;
        let refused = romeo.read_until("</message>")?;
        assert!(refused.contains("type='error'") && refused.contains("<service-unavailable"), "{refused}");
        juliet.send("<message to='romeo@localhost' type='chat' id='out'><body>hi</body></message>")?;
        let bounced = juliet.read_until("</message>")?;
        assert!(bounced.contains("<blocked xmlns='urn:xmpp:blocking:errors'/>"), "{bounced}");
        juliet.send("<iq type='get' id='l'><blocklist xmlns='urn:xmpp:blocking'/></iq>")?;
        let list = juliet.read_until("</iq>")?;
        assert!(list.contains("<item jid='romeo@localhost'/>"), "{list}");
        Ok(())
    }
}
