//! Last Activity (XEP-0012): the server's uptime, and when an account
//! last logged out, for the contacts it shares its presence with.

mod support;
use rookery_core::WallClock;
use std::time::Duration;
use support::*;

/// 2026-11-25T04:13:20Z, the bench's wall clock.
const START: u64 = 1_795_580_000;

fn at(b: &mut Bench, seconds_after_start: u64) {
    b.server
        .handle_wall_clock(WallClock(Duration::from_secs(START + seconds_after_start)));
}

/// Juliet shares her presence with Romeo.
fn romeo_may_see_juliet(b: &mut Bench) {
    let from = rookery_core::roster::Subscription::From;
    b.stored_contact("juliet@localhost", "romeo@localhost", from);
}

const ASK_JULIET: &str =
    "<iq type='get' id='l' to='juliet@localhost'><query xmlns='jabber:iq:last'/></iq>";

#[test]
fn the_server_answers_how_long_it_has_been_up() {
    let mut b = Bench::new();
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    at(&mut b, 42);
    b.send(
        romeo,
        "<iq type='get' id='u' to='localhost'><query xmlns='jabber:iq:last'/></iq>",
    );
    assert_eq!(
        b.take(romeo),
        "<iq type='result' id='u' to='romeo@localhost/orchard' from='localhost'>\
         <query xmlns='jabber:iq:last' seconds='42'/></iq>"
    );
}

#[test]
fn a_contact_learns_when_the_account_last_logged_out_and_with_what_status() {
    let mut b = Bench::new();
    romeo_may_see_juliet(&mut b);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, "<presence/>");
    b.send(
        juliet,
        "<presence type='unavailable'><status>Gone to Mantua</status></presence>",
    );
    at(&mut b, 10);
    b.send(juliet, "</stream:stream>");
    assert_eq!(
        b.last_activity["juliet@localhost"],
        (START + 10, "Gone to Mantua".to_owned())
    );
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    at(&mut b, 110);
    b.send(romeo, ASK_JULIET);
    assert_eq!(
        b.take(romeo),
        "<iq type='result' id='l' to='romeo@localhost/orchard' from='juliet@localhost'>\
         <query xmlns='jabber:iq:last' seconds='100'>Gone to Mantua</query></iq>"
    );
}

#[test]
fn an_account_online_now_answers_zero() {
    let mut b = Bench::new();
    romeo_may_see_juliet(&mut b);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, "<presence/>");
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, ASK_JULIET);
    assert!(b
        .take(romeo)
        .contains("<query xmlns='jabber:iq:last' seconds='0'/>"));
}

#[test]
fn a_stranger_learns_nothing() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, "</stream:stream>");
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, ASK_JULIET);
    assert!(b.take(romeo).contains("<service-unavailable"));
}

#[test]
fn only_the_last_session_to_end_records_the_logout() {
    let mut b = Bench::new();
    let one = b.bound("juliet", "r0m30", "one");
    let _two = b.bound("juliet", "r0m30", "two");
    b.send(one, "</stream:stream>");
    assert!(!b.last_activity.contains_key("juliet@localhost"));
}
