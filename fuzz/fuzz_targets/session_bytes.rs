//! Arbitrary bytes into one session of the core, split into arbitrary
//! chunks, with a fake clock. After every step the session model's
//! invariants must hold, and the core must never panic.
//!
//! Input layout: byte 0 picks a prelude (nothing, a stream header, or a
//! header plus a successful PLAIN login and a bind, to reach deeper states);
//! the rest is cut into chunks at every 0xFF byte, and a 0xFE byte advances
//! the clock by ten minutes instead of being sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rookery_core::sasl::StoredCredentials;
use rookery_core::{Config, ConnectionId, Output, Seed, Server, StorageAnswer};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
// PLAIN for juliet / r0m30.
const AUTH: &[u8] =
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMA==</auth>";
const BIND: &[u8] = b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>";

fn credentials() -> &'static StoredCredentials {
    static C: OnceLock<StoredCredentials> = OnceLock::new();
    C.get_or_init(|| StoredCredentials::derive("r0m30", b"fuzz-salt", 64).expect("valid password"))
}

fn drain(server: &mut Server, now: Instant) {
    loop {
        let mut lookups = Vec::new();
        while let Some(out) = server.poll_output() {
            if let Output::Storage { request, .. } = out {
                lookups.push(request);
            }
        }
        if lookups.is_empty() {
            break;
        }
        for request in lookups {
            server.handle_storage(request, StorageAnswer::Credentials(Some(credentials().clone())), now);
        }
    }
    if let Err(broken) = server.check_invariants() {
        panic!("invariant broken: {broken}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut now = Instant::now();
    let mut server = Server::new(Config::default());
    let conn = ConnectionId(1);
    server.handle_accept(conn, std::net::Ipv4Addr::LOCALHOST.into(), Seed([mode; 32]), now);
    let prelude: Vec<&[u8]> = match mode % 3 {
        0 => vec![],
        1 => vec![HEADER],
        _ => vec![HEADER, AUTH, HEADER, BIND],
    };
    for chunk in prelude {
        server.handle_bytes(conn, chunk, now);
        drain(&mut server, now);
    }
    for chunk in rest.split(|&b| b == 0xff) {
        for part in chunk.split(|&b| b == 0xfe) {
            server.handle_bytes(conn, part, now);
            drain(&mut server, now);
        }
        if chunk.contains(&0xfe) {
            now += Duration::from_secs(600);
            server.handle_timeout(now);
            drain(&mut server, now);
        }
    }
    server.handle_peer_closed(conn, now);
    drain(&mut server, now);
    assert_eq!(server.connection_count(), 0);
    assert!(server.sessions().is_empty());
});
