//! Rosters through each server binary: durability across SIGKILL, and
//! presence between two raw clients.

use rookery_tests::client::RawClient;
use rookery_tests::for_both_shims;
use rookery_tests::server::TestServer;

const USERS: &[(&str, &str)] = &[
    ("juliet@localhost", "r0m30"),
    ("romeo@localhost", "j00l13t"),
];

for_both_shims! {
    fn acknowledged_roster_sets_survive_sigkill(shim) {
        let mut server = TestServer::start(shim, USERS, "")?;
        let (mut c, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        for i in 0..25 {
            c.send(&format!(
                "<iq type='set' id='s{i}'><query xmlns='jabber:iq:roster'><item jid='friend{i}@localhost'/></query></iq>"
            ))?;
        }
        // Wait for the last acknowledgement, then kill at once.
        c.read_until("<iq type='result' id='s24'")?;
        server.kill_and_restart()?;
        let (mut c, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        c.send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")?;
        let roster = c.read_until("</iq>")?;
        for i in 0..25 {
            assert!(roster.contains(&format!("<item jid='friend{i}@localhost' subscription='none'/>")), "{i}: {roster}");
        }
        assert!(roster.contains("ver='25'"), "{roster}");
        Ok(())
    }

    fn mutual_subscription_shares_presence_and_a_drop_sends_unavailable(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        juliet.send("<presence/>")?;
        juliet.read_until("<presence from='juliet@localhost/balcony'/>")?;
        romeo.send("<presence/>")?;
        romeo.read_until("<presence from='romeo@localhost/orchard'/>")?;
        romeo.send("<presence to='juliet@localhost' type='subscribe'/>")?;
        juliet.read_until("<presence to='juliet@localhost' type='subscribe' from='romeo@localhost'/>")?;
        juliet.send("<presence to='romeo@localhost' type='subscribed'/>")?;
        romeo.read_until("<presence from='juliet@localhost/balcony' to='romeo@localhost'/>")?;
        drop(juliet);
        romeo.read_until("<presence type='unavailable' from='juliet@localhost/balcony'/>")?;
        Ok(())
    }
}
