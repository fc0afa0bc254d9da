//! Client State Indication (XEP-0352): an inactive client is spared
//! presence updates and chat states until something urgent comes or it
//! is active again.

mod support;
use rookery_core::{Config, ConnectionId};
use support::*;

const INACTIVE: &str = "<inactive xmlns='urn:xmpp:csi:0'/>";
const ACTIVE: &str = "<active xmlns='urn:xmpp:csi:0'/>";

/// Juliet and Romeo, subscribed to each other, both available; Juliet's
/// client then goes inactive.
fn friends(b: &mut Bench) -> (ConnectionId, ConnectionId) {
    use rookery_core::roster::Subscription::Both;
    b.stored_contact("juliet@localhost", "romeo@localhost", Both);
    b.stored_contact("romeo@localhost", "juliet@localhost", Both);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, "<presence/>");
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, "<presence/>");
    b.take(juliet);
    b.take(romeo);
    b.send(juliet, INACTIVE);
    assert_eq!(b.take(juliet), "");
    (juliet, romeo)
}

#[test]
fn presence_updates_wait_coalesced_until_a_message_with_a_body() {
    let mut b = Bench::new();
    let (juliet, romeo) = friends(&mut b);
    b.send(romeo, "<presence><show>away</show></presence>");
    b.send(romeo, "<presence><show>xa</show></presence>");
    b.send(romeo, "<message to='juliet@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    assert_eq!(b.take(juliet), "", "nothing urgent yet");
    b.send(
        romeo,
        "<message to='juliet@localhost' type='chat'><body>wake up</body></message>",
    );
    assert_eq!(
        b.take(juliet),
        "<presence from='romeo@localhost/orchard'><show>xa</show></presence>\
         <message to='juliet@localhost' type='chat' from='romeo@localhost/orchard'>\
         <composing xmlns='http://jabber.org/protocol/chatstates'/></message>\
         <message to='juliet@localhost' type='chat' from='romeo@localhost/orchard'><body>wake up</body></message>"
    );
}

#[test]
fn becoming_active_sends_what_was_held() {
    let mut b = Bench::new();
    let (juliet, romeo) = friends(&mut b);
    b.send(romeo, "<presence><show>dnd</show></presence>");
    assert_eq!(b.take(juliet), "");
    b.send(juliet, ACTIVE);
    assert_eq!(
        b.take(juliet),
        "<presence from='romeo@localhost/orchard'><show>dnd</show></presence>"
    );
    // Active again: nothing waits.
    b.send(romeo, "<presence><show>chat</show></presence>");
    assert!(b.take(juliet).contains("<show>chat</show>"));
}

#[test]
fn iqs_and_subscription_requests_are_urgent() {
    let mut b = Bench::new();
    let (juliet, romeo) = friends(&mut b);
    b.send(romeo, "<iq type='get' id='v' to='juliet@localhost/balcony'><query xmlns='jabber:iq:version'/></iq>");
    assert!(b.take(juliet).contains("id='v'"));
    b.add_user("nurse", "n0rs3", 64);
    let nurse = b.bound("nurse", "n0rs3", "house");
    b.send(nurse, "<presence to='juliet@localhost' type='subscribe'/>");
    assert!(b.take(juliet).contains("type='subscribe'"));
}

#[test]
fn a_full_queue_is_sent_rather_than_grown() {
    let mut b = Bench::with_config(Config {
        csi: rookery_core::config::CsiLimits {
            max_held_stanzas: 2,
            ..Default::default()
        },
        ..plaintext()
    });
    let (juliet, romeo) = friends(&mut b);
    let state = "<message to='juliet@localhost' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>";
    b.send(romeo, state);
    b.send(romeo, state);
    assert_eq!(b.take(juliet), "");
    b.send(romeo, state);
    assert_eq!(b.take(juliet).matches("<paused").count(), 3);
}
