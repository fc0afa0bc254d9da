//! Blocking Command (XEP-0191): the blocklist, its pushes, its
//! durability, and what it stops in both directions.

mod support;
use rookery_core::{Config, ConnectionId};
use support::*;

const BLOCK_ROMEO: &str = "<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'>\
    <item jid='romeo@localhost'/></block></iq>";

fn both_ways(b: &mut Bench) {
    use rookery_core::roster::Subscription::Both;
    b.stored_contact("juliet@localhost", "romeo@localhost", Both);
    b.stored_contact("romeo@localhost", "juliet@localhost", Both);
}

fn online(b: &mut Bench, user: &str, resource: &str) -> ConnectionId {
    let password = if user == "juliet" { "r0m30" } else { "j00l13t" };
    let c = b.bound(user, password, resource);
    b.send(c, "<presence/>");
    c
}

/// Juliet and Romeo online, subscribed both ways, all read.
fn lovers(b: &mut Bench) -> (ConnectionId, ConnectionId) {
    both_ways(b);
    let juliet = online(b, "juliet", "balcony");
    let romeo = online(b, "romeo", "orchard");
    b.take(juliet);
    b.take(romeo);
    (juliet, romeo)
}

#[test]
fn the_blocklist_lists_what_was_blocked_and_pushes_each_change() {
    let mut b = Bench::new();
    let (juliet, _) = lovers(&mut b);
    let other = b.bound("juliet", "r0m30", "chamber");
    b.send(
        other,
        "<iq type='get' id='l0'><blocklist xmlns='urn:xmpp:blocking'/></iq>",
    );
    assert_eq!(
        b.take(other),
        "<iq type='result' id='l0' to='juliet@localhost/chamber'><blocklist xmlns='urn:xmpp:blocking'/></iq>"
    );
    b.send(juliet, BLOCK_ROMEO);
    assert!(b
        .take(juliet)
        .contains("<iq type='result' id='b' to='juliet@localhost/balcony'/>"));
    // Only the resource that asked for the list gets pushes.
    assert_eq!(
        b.take(other),
        "<iq type='set' id='push1' to='juliet@localhost/chamber'>\
         <block xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></block></iq>"
    );
    b.send(
        other,
        "<iq type='get' id='l1'><blocklist xmlns='urn:xmpp:blocking'/></iq>",
    );
    assert_eq!(
        b.take(other),
        "<iq type='result' id='l1' to='juliet@localhost/chamber'><blocklist xmlns='urn:xmpp:blocking'>\
         <item jid='romeo@localhost'/></blocklist></iq>"
    );
}

#[test]
fn a_message_to_a_blocked_contact_bounces_with_not_acceptable_and_blocked() {
    let mut b = Bench::new();
    let (juliet, romeo) = lovers(&mut b);
    b.send(juliet, BLOCK_ROMEO);
    b.take(juliet);
    b.take(romeo);
    b.send(
        juliet,
        "<message to='romeo@localhost' type='chat' id='m'><body>hi</body></message>",
    );
    assert_eq!(
        b.take(juliet),
        "<message type='error' id='m' to='juliet@localhost/balcony' from='romeo@localhost'>\
         <error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <blocked xmlns='urn:xmpp:blocking:errors'/></error></message>"
    );
    assert_eq!(b.take(romeo), "");
}

#[test]
fn a_blocked_contacts_messages_and_iqs_are_refused_as_if_the_user_did_not_exist() {
    let mut b = Bench::new();
    let (juliet, romeo) = lovers(&mut b);
    b.send(juliet, BLOCK_ROMEO);
    b.take(juliet);
    b.take(romeo);
    b.send(
        romeo,
        "<message to='juliet@localhost/balcony' type='chat' id='m'><body>hi</body></message>",
    );
    assert!(b.take(romeo).contains("<service-unavailable"));
    b.send(romeo, "<iq type='get' id='v' to='juliet@localhost/balcony'><query xmlns='jabber:iq:version'/></iq>");
    assert!(b.take(romeo).contains("<service-unavailable"));
    assert_eq!(b.take(juliet), "");
}

#[test]
fn blocking_a_contact_sends_each_side_the_others_unavailable_and_stops_presence() {
    let mut b = Bench::new();
    let (juliet, romeo) = lovers(&mut b);
    b.send(juliet, BLOCK_ROMEO);
    assert!(b.take(juliet).contains(
        "<presence type='unavailable' from='romeo@localhost/orchard' to='juliet@localhost'/>"
    ));
    assert_eq!(
        b.take(romeo),
        "<presence type='unavailable' from='juliet@localhost/balcony' to='romeo@localhost'/>"
    );
    b.send(romeo, "<presence><show>away</show></presence>");
    b.send(juliet, "<presence><show>dnd</show></presence>");
    assert!(!b.take(juliet).contains("romeo@localhost/orchard"));
    assert!(!b.take(romeo).contains("juliet@localhost/balcony"));
}

#[test]
fn unblocking_shares_presence_again() {
    let mut b = Bench::new();
    let (juliet, romeo) = lovers(&mut b);
    b.send(juliet, BLOCK_ROMEO);
    b.take(juliet);
    b.take(romeo);
    b.send(
        juliet,
        "<iq type='set' id='u'><unblock xmlns='urn:xmpp:blocking'/></iq>",
    );
    assert!(b
        .take(juliet)
        .contains("<presence from='romeo@localhost/orchard' to='juliet@localhost'/>"));
    assert_eq!(
        b.take(romeo),
        "<presence from='juliet@localhost/balcony' to='romeo@localhost'/>"
    );
}

#[test]
fn a_blocked_contact_leaves_no_offline_messages() {
    let mut b = Bench::new();
    both_ways(&mut b);
    let juliet = online(&mut b, "juliet", "balcony");
    b.send(juliet, BLOCK_ROMEO);
    b.send(juliet, "</stream:stream>");
    let romeo = online(&mut b, "romeo", "orchard");
    b.take(romeo);
    b.send(
        romeo,
        "<message to='juliet@localhost' type='chat'><body>let me in</body></message>",
    );
    assert!(b.take(romeo).contains("<service-unavailable"));
    assert!(!b.offline.contains_key("juliet@localhost"));
}

#[test]
fn the_blocklist_is_durable() {
    let mut b = Bench::new();
    let (juliet, _) = lovers(&mut b);
    b.send(juliet, BLOCK_ROMEO);
    assert!(b.rosters["juliet@localhost"]
        .blocked
        .contains("romeo@localhost"));
}

#[test]
fn a_block_without_items_is_a_bad_request_and_a_bad_jid_is_malformed() {
    let mut b = Bench::new();
    let juliet = online(&mut b, "juliet", "balcony");
    b.take(juliet);
    b.send(
        juliet,
        "<iq type='set' id='e'><block xmlns='urn:xmpp:blocking'/></iq>",
    );
    assert!(b.take(juliet).contains("<bad-request"));
    b.send(
        juliet,
        "<iq type='set' id='j'><block xmlns='urn:xmpp:blocking'><item jid='@@'/></block></iq>",
    );
    assert!(b.take(juliet).contains("<jid-malformed"));
}

#[test]
fn blocking_past_the_limit_is_a_resource_constraint() {
    let mut b = Bench::with_config(Config {
        roster: rookery_core::config::RosterLimits {
            max_blocked: 1,
            ..Default::default()
        },
        ..plaintext()
    });
    let juliet = online(&mut b, "juliet", "balcony");
    b.take(juliet);
    b.send(juliet, "<iq type='set' id='1'><block xmlns='urn:xmpp:blocking'><item jid='a@localhost'/></block></iq>");
    assert!(b.take(juliet).contains("type='result'"));
    b.send(juliet, "<iq type='set' id='2'><block xmlns='urn:xmpp:blocking'><item jid='b@localhost'/></block></iq>");
    assert!(b.take(juliet).contains("<resource-constraint"));
}

#[test]
fn blocking_a_stranger_reveals_nothing_of_their_presence() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    let juliet = online(&mut b, "juliet", "balcony");
    b.take(romeo);
    b.take(juliet);
    b.send(juliet, BLOCK_ROMEO);
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='b' to='juliet@localhost/balcony'/>"
    );
    assert_eq!(b.take(romeo), "");
}

#[test]
fn a_block_repeating_one_jid_does_its_work_once() {
    let mut b = Bench::new();
    let (juliet, romeo) = lovers(&mut b);
    let items = "<item jid='romeo@localhost'/>".repeat(500);
    b.send(
        juliet,
        &format!("<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'>{items}</block></iq>"),
    );
    assert_eq!(b.take(juliet).matches("type='unavailable'").count(), 1);
    assert_eq!(b.take(romeo).matches("type='unavailable'").count(), 1);
    assert_eq!(b.rosters["juliet@localhost"].blocked.len(), 1);
}

#[test]
fn a_block_with_more_items_than_could_be_kept_is_refused() {
    let mut b = Bench::with_config(Config {
        roster: rookery_core::config::RosterLimits {
            max_blocked: 3,
            ..Default::default()
        },
        ..plaintext()
    });
    let juliet = online(&mut b, "juliet", "balcony");
    b.take(juliet);
    let items: String = (0..4)
        .map(|i| format!("<item jid='u{i}@localhost'/>"))
        .collect();
    b.send(
        juliet,
        &format!("<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'>{items}</block></iq>"),
    );
    assert!(b.take(juliet).contains("<resource-constraint"));
}

#[test]
fn subscription_requests_from_blocked_contacts_are_not_shown_at_login() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard");
    b.send(romeo, "<presence to='juliet@localhost' type='subscribe'/>");
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, BLOCK_ROMEO);
    b.send(juliet, "</stream:stream>");
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, "<presence/>");
    assert!(!b.take(juliet).contains("type='subscribe'"));
}

#[test]
fn a_blocked_contact_withdrawing_its_subscription_shares_nothing_after_unblock() {
    let mut b = Bench::new();
    let (juliet, romeo) = lovers(&mut b);
    b.send(juliet, BLOCK_ROMEO);
    // Romeo stops sharing his presence with Juliet, while blocked.
    b.send(
        romeo,
        "<presence to='juliet@localhost' type='unsubscribed'/>",
    );
    b.send(
        juliet,
        "<iq type='set' id='u'><unblock xmlns='urn:xmpp:blocking'/></iq>",
    );
    b.take(juliet);
    b.take(romeo);
    // At her next login she is not shown his presence.
    let again = b.bound("juliet", "r0m30", "chamber");
    b.send(again, "<presence/>");
    assert!(!b.take(again).contains("from='romeo@localhost/orchard'"));
    // And her roster knows he withdrew it.
    let romeo_jid: jid::BareJid = "romeo@localhost".parse().unwrap();
    assert!(!b.rosters["juliet@localhost"].items[&romeo_jid]
        .subscription
        .has_to());
}
