//! Hostile clients against each server binary: a slow reader is cut off
//! with a stream error, and a flood from one client leaves another's round
//! trips within a bound.

use rookery_tests::client::RawClient;
use rookery_tests::for_both_shims;
use rookery_tests::server::TestServer;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const USERS: &[(&str, &str)] = &[
    ("juliet@localhost", "r0m30"),
    ("romeo@localhost", "j00l13t"),
];

for_both_shims! {
    fn a_client_that_stops_reading_is_closed_and_its_contacts_see_it_go(shim) {
        let server = TestServer::start(shim, USERS, "output_buffer = 16384\nread_rate = 0")?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        for c in [&mut juliet, &mut romeo] {
            c.send("<presence/>")?;
            c.read_until("/>")?;
        }
        romeo.send("<presence to='juliet@localhost' type='subscribe'/>")?;
        juliet.read_until("type='subscribe'")?;
        juliet.send("<presence to='romeo@localhost' type='subscribed'/>")?;
        romeo.read_until("<presence from='juliet@localhost/balcony' to='romeo@localhost'/>")?;
        // juliet stops reading; romeo sends far more than any buffer holds.
        let body = "x".repeat(50_000);
        for i in 0..400 {
            if romeo
                // Headlines: once juliet is gone they are dropped, not stored.
                .send(&format!(
                    "<message to='juliet@localhost/balcony' type='headline' id='m{i}'><body>{body}</body></message>"
                ))
                .is_err()
            {
                break;
            }
        }
        let got = romeo.read_until("<presence type='unavailable' from='juliet@localhost/balcony'/>");
        assert!(got.is_ok(), "{got:?}");
        Ok(())
    }

    fn five_250_kib_offline_messages_are_all_delivered(shim) {
        // The issue-13 finding: they went out in one write past the 1 MiB
        // output budget, the client was cut off, and storage had already
        // forgotten them.
        let server = TestServer::start(shim, USERS, "")?;
        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        let body = "x".repeat(250 * 1024);
        for i in 0..5 {
            romeo.send(&format!("<message to='juliet@localhost' type='chat' id='m{i}'><body>{body}</body></message>"))?;
        }
        // Answered once the core has handled (and asked storage to keep)
        // all five.
        romeo.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")?;
        romeo.read_until("id='p'")?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        juliet.send("<presence/>")?;
        for i in 0..5 {
            let got = juliet.read_until("</message>")?;
            assert!(got.contains(&format!("id='m{i}'")), "message {i} missing");
        }
        // And they left storage: a second login gets none.
        juliet.send("</stream:stream>")?;
        juliet.read_to_close()?;
        let (mut again, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("again"))?;
        again.send("<presence/><iq type='get' id='after'><ping xmlns='urn:xmpp:ping'/></iq>")?;
        let got = again.read_until("id='after'")?;
        assert!(!got.contains("<message"), "{got}");
        Ok(())
    }

    fn a_flood_from_one_client_leaves_anothers_round_trips_bounded(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let (mut quiet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        let baseline = quiet.ping_median(21)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flood = {
            let (stop, addr) = (stop.clone(), server.addr);
            std::thread::spawn(move || {
                let junk = vec![b' '; 64 * 1024];
                let mut bytes = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    // The server slows, then drops, each flooding
                    // connection; the flooder comes straight back.
                    let Ok(mut s) = TcpStream::connect(addr) else { continue };
                    let _ = s.write_all(rookery_tests::client::HEADER.as_bytes());
                    while !stop.load(Ordering::Relaxed) && s.write_all(&junk).is_ok() {
                        bytes += junk.len();
                    }
                }
                bytes
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        let flooded = quiet.ping_median(21)?;
        stop.store(true, Ordering::Relaxed);
        let sent = flood.join().expect("flood thread");
        // The documented bound: under a flood, the median round trip stays
        // within ten times the quiet one, plus 10 ms of scheduling noise.
        let bound = baseline * 10 + Duration::from_millis(10);
        assert!(flooded <= bound, "baseline {baseline:?}, flooded {flooded:?}, {sent} junk bytes sent");
        assert!(sent > 4 * 1024 * 1024, "the flood must have been a flood: {sent} bytes");
        Ok(())
    }
}
