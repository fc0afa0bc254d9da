//! Limits against hostile clients (connection counts, read rate,
//! authentication throttling, timeouts, XML shape), on the fake clock.

mod support;
use rookery_core::limits::Limits;
use rookery_core::{Config, ConnectionId, Seed};
use std::net::IpAddr;
use std::time::Duration;
use support::*;

fn with_limits(limits: Limits) -> Bench {
    Bench::with_config(Config {
        limits,
        ..support::plaintext()
    })
}

fn accept_from(b: &mut Bench, id: u64, peer: &str) -> ConnectionId {
    let c = ConnectionId(1000 + id);
    let peer: IpAddr = peer.parse().unwrap();
    b.server.handle_accept(c, peer, Seed([id as u8; 32]), b.now);
    b.send(c, "");
    c
}

const REFUSED: &str = "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
    <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too many connections</text></stream:error></stream:stream>";

#[test]
fn connections_past_the_total_are_refused_with_policy_violation() {
    let mut b = with_limits(Limits {
        max_connections: 2,
        ..Limits::default()
    });
    b.connect();
    b.connect();
    let third = b.connect();
    assert_eq!(
        b.take(third),
        format!(
            "{}{REFUSED}",
            SERVER_HEADER.replace(" from='localhost'", "")
        )
    );
    assert!(b.is_closed(third));
    assert_eq!(b.server.connection_count(), 2);
}

#[test]
fn connections_per_address_are_bounded_and_freed_on_close() {
    let mut b = with_limits(Limits {
        max_connections_per_address: 1,
        ..Limits::default()
    });
    let first = accept_from(&mut b, 1, "192.0.2.1");
    let second = accept_from(&mut b, 2, "192.0.2.1");
    assert!(b.take(second).ends_with(REFUSED));
    let other = accept_from(&mut b, 3, "192.0.2.2");
    assert!(!b.is_closed(other));
    b.peer_close(first);
    let again = accept_from(&mut b, 4, "192.0.2.1");
    assert!(!b.is_closed(again));
}

fn refused(b: &mut Bench, c: ConnectionId, why: &str) -> bool {
    let text = b.take(c);
    b.is_closed(c)
        && text.ends_with(&format!(
            "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>{why}</text></stream:error></stream:stream>"
        ))
}

#[test]
fn three_hundred_logged_in_clients_behind_one_address_are_all_accepted_by_default() {
    // A carrier-grade NAT: the old cap of 256 per address refused the
    // 257th. Logged-in connections from one address are not capped.
    // (One account stands for many here: its own cap is lifted.)
    let mut b = Bench::with_config(rookery_core::Config {
        max_resources_per_account: 1000,
        ..plaintext()
    });
    let sessions: Vec<_> = (0..300)
        .map(|i| b.bound("juliet", "r0m30", &format!("r{i}")))
        .collect();
    assert!(sessions.iter().all(|c| !b.is_closed(*c)));
    assert_eq!(b.server.connection_count(), 300);
}

#[test]
fn connections_not_logged_in_are_bounded_per_address() {
    let mut b = with_limits(Limits {
        max_unauthenticated_per_address: 2,
        ..Limits::default()
    });
    let first = accept_from(&mut b, 1, "192.0.2.1");
    accept_from(&mut b, 2, "192.0.2.1");
    let third = accept_from(&mut b, 3, "192.0.2.1");
    assert!(refused(&mut b, third, "too many connections not logged in"));
    // Another address is not affected; a /64 is one address.
    let v6 = accept_from(&mut b, 4, "2001:db8::1");
    accept_from(&mut b, 5, "2001:db8::2");
    assert!(!b.is_closed(v6));
    let v6_third = accept_from(&mut b, 6, "2001:db8::3");
    assert!(refused(
        &mut b,
        v6_third,
        "too many connections not logged in"
    ));
    // Once one logs in, there is room again.
    b.send(first, HEADER);
    b.send(first, &plain("juliet", "r0m30"));
    assert!(b.take(first).contains("<success"));
    let fourth = accept_from(&mut b, 7, "192.0.2.1");
    assert!(!b.is_closed(fourth));
}

#[test]
fn a_closed_connection_counts_until_its_socket_closes_and_is_cut_after_the_drain_timeout() {
    let mut b = with_limits(Limits {
        max_connections_per_address: 1,
        ..Limits::default()
    });
    // Its client reads nothing, so its socket cannot be flushed and closed.
    b.auto_socket_close = false;
    let stalled = accept_from(&mut b, 1, "192.0.2.1");
    b.send(stalled, "not xml");
    assert!(b.is_closed(stalled));
    let refused_meanwhile = accept_from(&mut b, 2, "192.0.2.1");
    assert!(refused(&mut b, refused_meanwhile, "too many connections"));
    b.advance(Limits::default().close_drain_timeout);
    assert_eq!(b.aborted, [stalled]);
    let later = accept_from(&mut b, 3, "192.0.2.1");
    assert!(!b.is_closed(later));
}

#[test]
fn new_connections_per_address_are_rate_limited() {
    let mut b = with_limits(Limits {
        connection_rate_per_address: 1,
        connection_burst_per_address: 2,
        ..Limits::default()
    });
    for id in 1..=2 {
        let c = accept_from(&mut b, id, "192.0.2.1");
        b.peer_close(c);
    }
    let third = accept_from(&mut b, 3, "192.0.2.1");
    assert!(refused(&mut b, third, "too many new connections"));
    b.advance(Duration::from_secs(1));
    let later = accept_from(&mut b, 4, "192.0.2.1");
    assert!(!b.is_closed(later));
}

#[test]
fn input_past_the_read_rate_waits_for_the_clock() {
    let mut b = with_limits(Limits {
        read_rate: 100,
        read_burst: 100,
        ..Limits::default()
    });
    let c = b.connect();
    // The header is longer than the burst: only part of it is read now.
    b.send(c, HEADER);
    assert_eq!(b.take(c), "");
    b.advance(Duration::from_secs(2));
    assert_eq!(b.take(c), format!("{SERVER_HEADER}{SASL_FEATURES}"));
}

#[test]
fn flooding_past_the_burst_disconnects_with_policy_violation() {
    let mut config = Config {
        limits: Limits {
            read_rate: 100,
            read_burst: 100,
            ..Limits::default()
        },
        ..support::plaintext()
    };
    config.xml.max_stanza_size = 1000;
    let mut b = Bench::with_config(config);
    let c = b.connect();
    b.send(c, &" ".repeat(1500));
    assert!(b.take(c).ends_with(
        "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too much input</text></stream:error></stream:stream>"
    ));
    assert!(b.is_closed(c));
}

/// Fail `count` PLAIN logins as `user` from 127.0.0.1, a stream at a time.
fn fail_logins(b: &mut Bench, user: &str, count: usize) {
    let mut left = count;
    while left > 0 {
        let c = b.connect();
        b.send(c, HEADER);
        b.take(c);
        for _ in 0..left.min(3) {
            b.send(c, &plain(user, "wrong"));
            assert!(b.take(c).contains("<failure"));
            left -= 1;
        }
    }
}

fn login(b: &mut Bench, user: &str, password: &str) -> String {
    let c = b.connect();
    b.send(c, HEADER);
    b.take(c);
    b.send(c, &plain(user, password));
    b.take(c)
}

const SUCCESS: &str = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
const TEMPORARY: &str =
    "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><temporary-auth-failure/></failure>";

#[test]
fn failed_logins_for_one_account_do_not_lock_out_another_from_the_same_address() {
    let mut b = Bench::new();
    fail_logins(&mut b, "juliet", 25);
    assert_eq!(login(&mut b, "romeo", "j00l13t"), SUCCESS);
}

#[test]
fn an_account_with_many_failures_from_an_address_gets_temporary_auth_failure_there() {
    let mut b = Bench::new();
    let limit = Limits::default().auth_failures_per_account as usize;
    fail_logins(&mut b, "juliet", limit);
    assert_eq!(login(&mut b, "juliet", "r0m30"), TEMPORARY);
    // From another address, juliet gets in.
    let elsewhere = accept_from(&mut b, 1, "192.0.2.1");
    b.send(elsewhere, HEADER);
    b.take(elsewhere);
    b.send(elsewhere, &plain("juliet", "r0m30"));
    assert_eq!(b.take(elsewhere), SUCCESS);
    // And from here once the window has passed.
    b.advance(Limits::default().auth_failure_window);
    assert_eq!(login(&mut b, "juliet", "r0m30"), SUCCESS);
}

#[test]
fn attempts_on_one_account_in_parallel_count_before_storage_answers() {
    // The review's finding: 200 wrong passwords sent at once on 200
    // streams were all checked, as failures counted only on the answer.
    let mut b = Bench::new();
    b.auto_storage = false;
    let limit = Limits::default().auth_failures_per_account as usize;
    let verdicts: Vec<String> = (0..limit + 5)
        .map(|_| {
            let c = b.connect();
            b.send(c, HEADER);
            b.take(c);
            b.send(c, &plain("juliet", "wrong"));
            b.take(c)
        })
        .collect();
    assert!(
        verdicts[..limit].iter().all(String::is_empty),
        "{verdicts:?}"
    );
    assert!(
        verdicts[limit..].iter().all(|v| v == TEMPORARY),
        "{verdicts:?}"
    );
    assert_eq!(b.pending.len(), limit);
}

#[test]
fn an_address_with_many_failures_gets_temporary_auth_failure() {
    let mut b = with_limits(Limits {
        auth_failures_per_address: 2,
        ..Limits::default()
    });
    let c = b.connect();
    b.send(c, HEADER);
    b.take(c);
    for _ in 0..2 {
        b.send(c, &plain("juliet", "wrong"));
        b.take(c);
    }
    // Even the right password waits until the window passes.
    let other = b.connect();
    b.send(other, HEADER);
    b.take(other);
    b.send(other, &plain("juliet", "r0m30"));
    assert_eq!(
        b.take(other),
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><temporary-auth-failure/></failure>"
    );
    b.advance(Duration::from_secs(301));
    let later = b.connect();
    b.send(later, HEADER);
    b.take(later);
    b.send(later, &plain("juliet", "r0m30"));
    assert_eq!(
        b.take(later),
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    );
}

#[test]
fn a_stream_that_never_opens_times_out() {
    let mut b = Bench::new();
    let c = b.connect();
    b.advance(Duration::from_secs(29));
    assert!(!b.is_closed(c));
    b.advance(Duration::from_secs(2));
    assert!(b.take(c).ends_with(&stream_error("connection-timeout")));
}

#[test]
fn a_stanza_that_stalls_midway_times_out() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, "<message to='romeo@localhost'><body>to be contin");
    b.advance(Duration::from_secs(61));
    assert_eq!(
        b.take(c),
        "<stream:error><connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>stanza not completed in time</text>\
         </stream:error></stream:stream>"
    );
}

#[test]
fn too_many_attributes_are_a_policy_violation() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    let attrs: String = (0..100).map(|i| format!(" a{i}='x'")).collect();
    b.send(c, &format!("<message{attrs}/>"));
    assert!(b.take(c).starts_with("<stream:error><policy-violation"));
}

#[test]
fn input_held_by_the_read_rate_is_still_handled_at_peer_close() {
    let mut b = with_limits(Limits {
        read_rate: 100,
        read_burst: 2000,
        ..Limits::default()
    });
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let body = "x".repeat(3000);
    b.send(
        juliet,
        &format!("<message to='romeo@localhost/orchard'><body>{body}</body></message>"),
    );
    assert_eq!(b.take(romeo), "", "held by the read rate");
    b.peer_close(juliet);
    assert!(b.take(romeo).contains(&body));
}
