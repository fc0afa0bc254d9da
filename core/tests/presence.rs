//! Subscriptions (RFC 6121 section 3) and presence (section 4) between
//! local users, through the whole core.

mod support;
use rookery_core::ConnectionId;
use support::*;

const GET: &str = "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>";
const AVAILABLE: &str = "<presence/>";

/// Log in `user` with `resource`, fetch the roster and send initial
/// presence; discard what that produced.
fn online(b: &mut Bench, user: &str, resource: &str) -> ConnectionId {
    let password = if user == "juliet" { "r0m30" } else { "j00l13t" };
    let c = b.bound(user, password, resource);
    b.send(c, GET);
    b.send(c, AVAILABLE);
    b.take(c);
    c
}

/// romeo subscribes to juliet and juliet approves; both ways when `mutual`.
fn subscribe(b: &mut Bench, romeo: ConnectionId, juliet: ConnectionId, mutual: bool) {
    b.send(romeo, "<presence to='juliet@localhost' type='subscribe'/>");
    b.send(juliet, "<presence to='romeo@localhost' type='subscribed'/>");
    if mutual {
        b.send(juliet, "<presence to='romeo@localhost' type='subscribe'/>");
        b.send(romeo, "<presence to='juliet@localhost' type='subscribed'/>");
    }
    b.take(romeo);
    b.take(juliet);
}

#[test]
fn initial_presence_is_reflected_to_the_sending_resource() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, "<presence><show>away</show></presence>");
    assert_eq!(
        b.take(c),
        "<presence from='juliet@localhost/balcony'><show>away</show></presence>"
    );
}

#[test]
fn subscription_request_reaches_the_contact_and_sets_pending_out() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    b.send(romeo, "<presence to='juliet@localhost' type='subscribe'/>");
    assert_eq!(
        b.take(romeo),
        "<iq type='set' id='push1' to='romeo@localhost/orchard'><query xmlns='jabber:iq:roster' ver='1'>\
         <item jid='juliet@localhost' subscription='none' ask='subscribe'/></query></iq>"
    );
    assert_eq!(
        b.take(juliet),
        "<presence to='juliet@localhost' type='subscribe' from='romeo@localhost'/>"
    );
}

#[test]
fn approval_updates_both_rosters_and_shares_presence() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    b.send(romeo, "<presence to='juliet@localhost' type='subscribe'/>");
    b.take(romeo);
    b.take(juliet);
    b.send(juliet, "<presence to='romeo@localhost' type='subscribed'/>");
    let to_juliet = b.take(juliet);
    assert!(
        to_juliet.contains("<item jid='romeo@localhost' subscription='from'/>"),
        "{to_juliet}"
    );
    let to_romeo = b.take(romeo);
    assert!(
        to_romeo.contains("<item jid='juliet@localhost' subscription='to'/>"),
        "{to_romeo}"
    );
    assert!(
        to_romeo.contains("type='subscribed' from='juliet@localhost'/>"),
        "{to_romeo}"
    );
    assert!(
        to_romeo.ends_with("<presence from='juliet@localhost/balcony' to='romeo@localhost'/>"),
        "{to_romeo}"
    );
}

#[test]
fn presence_update_goes_to_subscribers_and_own_resources_only() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    let garden = online(&mut b, "juliet", "garden");
    subscribe(&mut b, romeo, juliet, false);
    b.take(garden);
    b.send(juliet, "<presence><show>dnd</show></presence>");
    let p = "<presence from='juliet@localhost/balcony'><show>dnd</show></presence>";
    assert_eq!(b.take(romeo), p);
    assert_eq!(b.take(garden), p);
    assert_eq!(b.take(juliet), p);
    b.send(romeo, "<presence><show>chat</show></presence>");
    assert_eq!(b.take(juliet), "", "juliet is not subscribed to romeo");
}

#[test]
fn initial_presence_receives_contacts_presence() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    subscribe(&mut b, romeo, juliet, false);
    let late = b.bound("romeo", "j00l13t", "garden");
    b.send(late, AVAILABLE);
    let got = b.take(late);
    assert!(
        got.contains("<presence from='romeo@localhost/orchard' to='romeo@localhost/garden'/>"),
        "{got}"
    );
    assert!(
        got.contains("<presence from='juliet@localhost/balcony' to='romeo@localhost/garden'/>"),
        "{got}"
    );
}

#[test]
fn request_to_an_offline_user_is_delivered_at_their_next_initial_presence() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    b.send(romeo, "<presence to='juliet@localhost' type='subscribe'><status>Wherefore art thou?</status></presence>");
    b.take(romeo);
    assert_eq!(
        b.server.rosters_held(),
        1,
        "juliet's roster is released after the request is stored"
    );
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, AVAILABLE);
    assert!(b.take(juliet).ends_with(
        "<presence to='juliet@localhost' type='subscribe' from='romeo@localhost'><status>Wherefore art thou?</status></presence>"
    ));
}

#[test]
fn pre_approved_request_is_answered_by_the_server() {
    let mut b = Bench::new();
    let juliet = online(&mut b, "juliet", "balcony");
    let romeo = online(&mut b, "romeo", "orchard");
    b.send(juliet, "<presence to='romeo@localhost' type='subscribed'/>");
    assert!(b.take(juliet).contains("approved='true'"));
    b.send(romeo, "<presence to='juliet@localhost' type='subscribe'/>");
    let to_romeo = b.take(romeo);
    assert!(
        to_romeo.contains("<item jid='juliet@localhost' subscription='to'/>"),
        "{to_romeo}"
    );
    let to_juliet = b.take(juliet);
    assert!(
        !to_juliet.contains("type='subscribe'"),
        "no request shown: {to_juliet}"
    );
    assert!(
        to_juliet.contains("<item jid='romeo@localhost' subscription='from'/>"),
        "{to_juliet}"
    );
}

#[test]
fn unavailable_goes_to_subscribers_and_the_session_leaves_the_available_set() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    subscribe(&mut b, romeo, juliet, false);
    b.send(juliet, "<presence type='unavailable'/>");
    assert_eq!(
        b.take(romeo),
        "<presence type='unavailable' from='juliet@localhost/balcony'/>"
    );
    assert_eq!(
        b.server
            .sessions()
            .available_of(&jid::BareJid::new("juliet@localhost").unwrap())
            .count(),
        0
    );
}

#[test]
fn dropped_connection_sends_unavailable_to_subscribers_once() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    subscribe(&mut b, romeo, juliet, false);
    b.peer_close(juliet);
    assert_eq!(
        b.take(romeo),
        "<presence type='unavailable' from='juliet@localhost/balcony'/>"
    );
}

#[test]
fn replaced_session_sends_unavailable_before_the_conflict() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    subscribe(&mut b, romeo, juliet, false);
    b.bound("juliet", "r0m30", "balcony");
    assert_eq!(
        b.take(romeo),
        "<presence type='unavailable' from='juliet@localhost/balcony'/>"
    );
    assert_eq!(b.take(juliet), stream_error("conflict"));
}

#[test]
fn directed_presence_to_a_non_contact_is_retracted_when_the_session_ends() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    b.send(
        juliet,
        "<presence to='romeo@localhost/orchard'><show>xa</show></presence>",
    );
    assert_eq!(
        b.take(romeo),
        "<presence to='romeo@localhost/orchard' from='juliet@localhost/balcony'><show>xa</show></presence>"
    );
    b.send(juliet, "</stream:stream>");
    assert_eq!(
        b.take(romeo),
        "<presence type='unavailable' from='juliet@localhost/balcony'/>"
    );
}

#[test]
fn directed_presence_to_an_account_reaches_each_available_resource_and_is_retracted_once() {
    let mut b = Bench::new();
    let orchard = online(&mut b, "romeo", "orchard");
    let garden = online(&mut b, "romeo", "garden");
    b.take(orchard);
    let juliet = online(&mut b, "juliet", "balcony");
    b.send(juliet, "<presence to='romeo@localhost'/>");
    for romeo in [orchard, garden] {
        assert_eq!(
            b.take(romeo),
            "<presence to='romeo@localhost' from='juliet@localhost/balcony'/>"
        );
    }
    b.send(juliet, "</stream:stream>");
    for romeo in [orchard, garden] {
        assert_eq!(
            b.take(romeo),
            "<presence type='unavailable' from='juliet@localhost/balcony'/>"
        );
    }
}

#[test]
fn directed_presence_to_a_resource_that_is_gone_reaches_no_one() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    b.send(juliet, "<presence to='romeo@localhost/garden'/>");
    b.send(juliet, "</stream:stream>");
    assert_eq!(b.take(romeo), "");
}

#[test]
fn unsubscribed_removes_the_contacts_presence() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    subscribe(&mut b, romeo, juliet, false);
    b.send(
        juliet,
        "<presence to='romeo@localhost' type='unsubscribed'/>",
    );
    let to_romeo = b.take(romeo);
    assert!(
        to_romeo.contains("<item jid='juliet@localhost' subscription='none'/>"),
        "{to_romeo}"
    );
    assert!(
        to_romeo.ends_with(
            "<presence type='unavailable' from='juliet@localhost/balcony' to='romeo@localhost'/>"
        ),
        "{to_romeo}"
    );
}

#[test]
fn removing_a_contact_cancels_both_subscriptions() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    subscribe(&mut b, romeo, juliet, true);
    b.send(
        romeo,
        "<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost' subscription='remove'/></query></iq>",
    );
    b.take(romeo);
    let to_juliet = b.take(juliet);
    assert!(
        to_juliet.contains("<item jid='romeo@localhost' subscription='none'/>"),
        "{to_juliet}"
    );
    assert!(
        b.rosters["juliet@localhost"].items
            ["romeo@localhost".parse::<jid::BareJid>().as_ref().unwrap()]
        .subscription
            == rookery_core::roster::Subscription::None
    );
}

#[test]
fn subscription_to_a_remote_domain_is_remote_server_not_found() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    b.send(
        romeo,
        "<presence to='juliet@example.org' type='subscribe'/>",
    );
    assert!(b
        .take(romeo)
        .contains("<remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"));
}

#[test]
fn subscription_to_a_nonexistent_local_user_is_dropped() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    b.send(romeo, "<presence to='ghost@localhost' type='subscribe'/>");
    assert!(b.take(romeo).contains("ask='subscribe'"));
    assert_eq!(b.server.rosters_held(), 1);
}

#[test]
fn subscription_state_survives_in_storage() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    subscribe(&mut b, romeo, juliet, true);
    let both = rookery_core::roster::Subscription::Both;
    let jul = "juliet@localhost".parse::<jid::BareJid>().unwrap();
    let rom = "romeo@localhost".parse::<jid::BareJid>().unwrap();
    assert_eq!(b.rosters["romeo@localhost"].items[&jul].subscription, both);
    assert_eq!(b.rosters["juliet@localhost"].items[&rom].subscription, both);
}

#[test]
fn invisible_directed_presence_to_a_subscriber_is_retracted_at_the_end() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    subscribe(&mut b, romeo, juliet, true);
    b.send(juliet, "<presence type='unavailable'/>");
    b.send(juliet, "<presence to='romeo@localhost'/>");
    b.take(romeo);
    b.peer_close(juliet);
    assert_eq!(
        b.take(romeo),
        "<presence type='unavailable' from='juliet@localhost/balcony'/>"
    );
}

#[test]
fn subscribing_past_the_roster_limit_is_a_resource_constraint() {
    let mut b = Bench::with_config(rookery_core::Config {
        roster: rookery_core::config::RosterLimits {
            max_items: 1,
            ..Default::default()
        },
        ..support::plaintext()
    });
    let romeo = online(&mut b, "romeo", "orchard");
    b.send(romeo, "<presence to='juliet@localhost' type='subscribe'/>");
    b.take(romeo);
    b.send(romeo, "<presence to='nurse@localhost' type='subscribe'/>");
    assert!(b
        .take(romeo)
        .contains("<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"));
}

#[test]
fn subscription_requests_kept_for_a_user_are_capped() {
    let mut b = Bench::with_config(rookery_core::Config {
        roster: rookery_core::config::RosterLimits {
            max_pending_requests: 2,
            ..Default::default()
        },
        ..plaintext()
    });
    for name in ["a", "b", "c"] {
        b.add_user(name, "pw", 64);
        let c = b.bound(name, "pw", "r");
        b.send(c, "<presence to='juliet@localhost' type='subscribe'/>");
    }
    let pending = &b.rosters["juliet@localhost"].pending_in;
    let kept: Vec<_> = pending.keys().map(|j| j.as_str()).collect();
    assert_eq!(kept, ["a@localhost", "b@localhost"]);
}

#[test]
fn a_large_subscription_request_is_kept_without_its_payload() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    b.send(
        romeo,
        &format!(
            "<presence to='juliet@localhost' type='subscribe'><status>{}</status></presence>",
            "x".repeat(10_000)
        ),
    );
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, AVAILABLE);
    assert_eq!(
        b.take(juliet),
        "<presence from='juliet@localhost/balcony'/>\
         <presence to='juliet@localhost' type='subscribe' from='romeo@localhost'/>"
    );
}

#[test]
fn an_available_presence_too_large_to_keep_is_a_policy_violation() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(
        c,
        &format!(
            "<presence id='big'><status>{}</status></presence>",
            "x".repeat(20_000)
        ),
    );
    assert_eq!(
        b.take(c),
        "<presence type='error' id='big' to='juliet@localhost/balcony'><error type='modify'>\
         <policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
    );
    let juliet: jid::BareJid = "juliet@localhost".parse().unwrap();
    assert_eq!(b.server.sessions().available_of(&juliet).count(), 0);
}
