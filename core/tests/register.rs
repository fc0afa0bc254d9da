//! In-band registration (XEP-0077): off by default; when allowed,
//! strangers create accounts before logging in, a few per address; a
//! logged-in account changes its password or removes itself.

mod support;
use rookery_core::{Config, ConnectionId, DocumentStore};
use support::*;

fn allowing() -> Config {
    let mut config = plaintext();
    config.registration.allowed = true;
    config
}

const FORM: &str = "<iq type='get' id='f'><query xmlns='jabber:iq:register'/></iq>";

fn register(username: &str, password: &str) -> String {
    format!(
        "<iq type='set' id='r'><query xmlns='jabber:iq:register'>\
         <username>{username}</username><password>{password}</password></query></iq>"
    )
}

/// A stream opened before authentication; what the server said.
fn opened_stream(b: &mut Bench) -> (ConnectionId, String) {
    let c = b.connect();
    b.send(c, HEADER);
    let said = b.take(c);
    (c, said)
}

const CREATED: &str = "<iq type='result' id='r'/>";

#[test]
fn registration_is_not_offered_by_default() {
    let mut b = Bench::new();
    let (c, features) = opened_stream(&mut b);
    assert!(!features.contains("iq-register"), "{features}");
    b.send(c, &register("nurse", "secret"));
    assert!(b.take(c).ends_with(&stream_error("not-authorized")));
}

#[test]
fn when_allowed_registration_is_a_stream_feature_and_a_form() {
    let mut b = Bench::with_config(allowing());
    let (c, features) = opened_stream(&mut b);
    assert!(
        features.contains("<register xmlns='http://jabber.org/features/iq-register'/>"),
        "{features}"
    );
    b.send(c, FORM);
    assert_eq!(
        b.take(c),
        "<iq type='result' id='f'><query xmlns='jabber:iq:register'>\
         <instructions>Choose a username and password.</instructions>\
         <username/><password/></query></iq>"
    );
}

#[test]
fn a_registered_account_logs_in_with_its_password() {
    let mut b = Bench::with_config(allowing());
    let (c, _) = opened_stream(&mut b);
    b.send(c, &register("Nurse", "secret"));
    assert_eq!(b.take(c), CREATED);
    // The username is prepared: nurse, not Nurse.
    b.send(c, &plain("nurse", "secret"));
    assert!(b.take(c).contains("<success"));
}

#[test]
fn a_taken_username_is_a_conflict() {
    let mut b = Bench::with_config(allowing());
    let (c, _) = opened_stream(&mut b);
    b.send(c, &register("romeo", "other"));
    assert_eq!(
        b.take(c),
        "<iq type='error' id='r'><error type='cancel'>\
         <conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
}

#[test]
fn a_registration_without_a_password_is_not_acceptable() {
    let mut b = Bench::with_config(allowing());
    let (c, _) = opened_stream(&mut b);
    b.send(
        c,
        "<iq type='set' id='r'><query xmlns='jabber:iq:register'>\
         <username>nurse</username></query></iq>",
    );
    assert!(b.take(c).contains("<not-acceptable"));
}

#[test]
fn a_username_that_is_no_jid_local_part_is_malformed() {
    let mut b = Bench::with_config(allowing());
    let (c, _) = opened_stream(&mut b);
    b.send(c, &register("a@b", "secret"));
    assert!(b.take(c).contains("<jid-malformed"));
}

#[test]
fn registrations_past_the_limit_per_address_are_a_policy_violation() {
    let mut config = allowing();
    config.registration.max_per_address = 2;
    let window = config.registration.window;
    let mut b = Bench::with_config(config);
    for name in ["a", "b"] {
        let (c, _) = opened_stream(&mut b);
        b.send(c, &register(name, "secret"));
        assert_eq!(b.take(c), CREATED);
    }
    let (c, _) = opened_stream(&mut b);
    b.send(c, &register("c", "secret"));
    assert!(b.take(c).contains("<policy-violation"));
    // A window later, one more may.
    b.advance(window);
    let (c, _) = opened_stream(&mut b);
    b.send(c, &register("c", "secret"));
    assert_eq!(b.take(c), CREATED);
}

#[test]
fn a_logged_in_account_changes_its_password() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &register("juliet", "n3w"));
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='r' to='juliet@localhost/balcony'/>"
    );
    let (c, _) = opened_stream(&mut b);
    b.send(c, &plain("juliet", "r0m30"));
    assert!(b.take(c).contains("<failure"));
    let (c, _) = opened_stream(&mut b);
    b.send(c, &plain("juliet", "n3w"));
    assert!(b.take(c).contains("<success"));
}

#[test]
fn an_account_cannot_change_anothers_password() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &register("romeo", "mine"));
    assert!(b.take(juliet).contains("<not-allowed"));
}

#[test]
fn a_removed_account_is_told_then_its_sessions_end_and_its_data_is_gone() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let other = b.bound("juliet", "r0m30", "hall");
    b.send(
        juliet,
        "<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>J</FN></vCard></iq>",
    );
    b.take(juliet);
    b.send(
        juliet,
        "<iq type='set' id='x'><query xmlns='jabber:iq:register'><remove/></query></iq>",
    );
    let said = b.take(juliet);
    assert!(
        said.starts_with("<iq type='result' id='x' to='juliet@localhost/balcony'/>"),
        "{said}"
    );
    assert!(said.contains("<not-authorized"), "{said}");
    assert!(b.take(other).contains("<not-authorized"));
    assert!(!b
        .documents
        .keys()
        .any(|(owner, store, _)| owner == "juliet@localhost" && *store == DocumentStore::VCard));
    let (c, _) = opened_stream(&mut b);
    b.send(c, &plain("juliet", "r0m30"));
    assert!(b.take(c).contains("<failure"));
}

#[test]
fn a_logged_in_account_is_registered_under_its_username() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, FORM);
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='f' to='juliet@localhost/balcony'><query xmlns='jabber:iq:register'>\
         <registered/><username>juliet</username></query></iq>"
    );
}

#[test]
fn an_admins_name_cannot_be_registered_by_a_stranger() {
    let mut config = allowing();
    config.admins = vec!["boss@localhost".parse().unwrap()];
    let mut b = Bench::with_config(config);
    let (c, _) = opened_stream(&mut b);
    b.send(c, &register("Boss", "mine"));
    assert!(b.take(c).contains("<conflict"));
}

#[test]
fn a_taken_name_does_not_count_against_the_address() {
    let mut config = allowing();
    config.registration.max_per_address = 1;
    let mut b = Bench::with_config(config);
    let (c, _) = opened_stream(&mut b);
    b.send(c, &register("romeo", "other"));
    assert!(b.take(c).contains("<conflict"));
    b.send(c, &register("nurse", "secret"));
    assert_eq!(b.take(c), CREATED);
}

#[test]
fn a_removal_ends_the_other_sessions_even_if_the_asker_left_first() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let other = b.bound("juliet", "r0m30", "hall");
    b.auto_storage = false;
    b.send(
        juliet,
        "<iq type='set' id='x'><query xmlns='jabber:iq:register'><remove/></query></iq></stream:stream>",
    );
    b.answer_storage();
    assert!(b.take(other).contains("<not-authorized"));
}

#[test]
fn password_changes_come_one_per_interval() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &register("juliet", "one"));
    assert!(b.take(juliet).contains("type='result'"));
    b.send(juliet, &register("juliet", "two"));
    assert!(b.take(juliet).contains("<resource-constraint"));
    b.advance(std::time::Duration::from_secs(10));
    b.send(juliet, &register("juliet", "two"));
    assert!(b.take(juliet).contains("type='result'"));
}

#[test]
fn answers_to_nothing_are_ignored_before_login() {
    let mut b = Bench::with_config(allowing());
    let (c, _) = opened_stream(&mut b);
    b.send(
        c,
        "<iq type='error' id='e'><query xmlns='jabber:iq:register'/></iq>",
    );
    assert_eq!(b.take(c), "");
}
