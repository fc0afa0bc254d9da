//! Hostile clients against each server binary: a slow reader is cut off
//! with a stream error, and a flood from one client leaves another's round
//! trips within a bound.

use rookery_tests::client::{RawClient, HEADER};
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

/// juliet and romeo online, romeo subscribed to juliet's presence.
fn subscribed(server: &TestServer) -> anyhow::Result<(RawClient, RawClient)> {
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
    Ok((juliet, romeo))
}

for_both_shims! {
    fn a_client_that_stops_reading_its_own_answers_is_closed_and_its_contacts_see_it_go(shim) {
        let server = TestServer::start(shim, USERS, "output_buffer = 16384\nmax_stanza_size = 8192\nread_rate = 0")?;
        let (mut juliet, mut romeo) = subscribed(&server)?;
        // juliet stops reading and asks for far more than any buffer
        // holds: her own answers fill her queue.
        let pings: String = (0..400)
            .map(|i| format!("<iq type='get' id='p{i}'><query xmlns='jabber:iq:roster'/></iq>"))
            .collect();
        for _ in 0..200 {
            if juliet.send(&pings).is_err() {
                break;
            }
        }
        let got = romeo.read_until("<presence type='unavailable' from='juliet@localhost/balcony'/>");
        assert!(got.is_ok(), "{got:?}");
        Ok(())
    }

    fn a_flood_to_a_client_that_does_not_read_is_refused_to_its_sender_and_the_client_stays(shim) {
        let server = TestServer::start(shim, USERS, "output_buffer = 16384\nmax_stanza_size = 8192\nread_rate = 0")?;
        let (mut juliet, mut romeo) = subscribed(&server)?;
        // juliet stops reading; romeo sends far more than the kernel's
        // buffers and her output queue hold, in messages each smaller
        // than the queue.
        let body = "x".repeat(4000);
        let mut refused = false;
        for i in 0..5000 {
            romeo.send(&format!(
                "<message to='juliet@localhost/balcony' type='chat' id='m{i}'><body>{body}</body></message>"
            ))?;
            if i % 50 == 0 {
                romeo.poll()?;
                if romeo.buffered().contains("<resource-constraint") {
                    refused = true;
                    break;
                }
            }
        }
        assert!(refused || romeo.read_until("<resource-constraint").is_ok(), "romeo was never told to wait");
        // juliet was not cut off: she reads what was queued, then answers.
        juliet.send("<iq type='get' id='alive'><ping xmlns='urn:xmpp:ping'/></iq>")?;
        let got = juliet.read_until("id='alive'")?;
        assert!(!got.contains("<stream:error"), "juliet was disconnected");
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

    fn sigterm_tells_clients_system_shutdown_and_keeps_what_was_sent(shim) {
        let mut server = TestServer::start(shim, USERS, "")?;
        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        // Sent, and at once the server is told to stop: the store is
        // already queued for storage, and shutdown runs it before exiting.
        romeo.send("<message to='juliet@localhost' type='chat' id='last'><body>before the end</body></message>")?;
        romeo.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")?;
        romeo.read_until("id='p'")?;
        let status = server.terminate_and_restart()?;
        assert!(status.success(), "{status:?}");
        let end = romeo.read_to_close()?;
        assert!(end.ends_with("<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"), "{end}");
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        juliet.send("<presence/>")?;
        let got = juliet.read_until("</message>")?;
        assert!(got.contains("<body>before the end</body>"), "{got}");
        Ok(())
    }

    fn a_namespace_amplified_open_element_leaves_memory_bounded_and_a_bystander_served(shim) {
        // The issue-13 attack: a long namespace on an element left open,
        // then 60,000 children inheriting it (485 MB of RSS for one
        // connection before the fix).
        let server = TestServer::start(shim, USERS, "")?;
        let (mut bystander, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        let baseline = bystander.ping_median(11)?;
        let before = server.rss_kib()?;
        let attack = format!("<x xmlns='urn:{}'>{}", "a".repeat(8000), "<y/>".repeat(60_000));
        let mut attackers = Vec::new();
        for _ in 0..4 {
            let mut c = RawClient::connect(server.addr)?;
            c.send(HEADER)?;
            let _ = c.send(&attack);
            attackers.push(c);
        }
        // The same after login, where the full stanza limit applies.
        let (mut insider, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        let _ = insider.send(&attack);
        for mut c in attackers.into_iter().chain([insider]) {
            let end = c.read_to_close()?;
            assert!(end.contains("<policy-violation"), "{end}");
        }
        let grown = server.rss_kib()?.saturating_sub(before);
        assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
        let during = bystander.ping_median(11)?;
        assert!(during <= baseline * 10 + Duration::from_millis(10), "{baseline:?} then {during:?}");
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
