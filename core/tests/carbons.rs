//! Message Carbons (XEP-0280): a user's resources with carbons enabled
//! see what the user's other resources send and receive.

mod support;
use rookery_core::ConnectionId;
use support::*;

const ENABLE: &str = "<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>";

fn online(b: &mut Bench, user: &str, resource: &str, carbons: bool) -> ConnectionId {
    let password = if user == "juliet" { "r0m30" } else { "j00l13t" };
    let c = b.bound(user, password, resource);
    if carbons {
        b.send(c, ENABLE);
        assert_eq!(
            b.take(c),
            format!("<iq type='result' id='c' to='{user}@localhost/{resource}'/>")
        );
    }
    b.send(c, "<presence/>");
    b.take(c);
    c
}

/// Juliet on a phone (carbons), a desktop (carbons) and an old client
/// (none); Romeo in his orchard.
fn three_resources(b: &mut Bench) -> [ConnectionId; 4] {
    let phone = online(b, "juliet", "phone", true);
    let desktop = online(b, "juliet", "desktop", true);
    let old = online(b, "juliet", "old", false);
    let romeo = online(b, "romeo", "orchard", false);
    for c in [phone, desktop, old] {
        b.take(c);
    }
    [phone, desktop, old, romeo]
}

#[test]
fn the_server_advertises_carbons() {
    let mut b = Bench::new();
    let c = online(&mut b, "juliet", "phone", false);
    b.send(c, "<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    assert!(b.take(c).contains("<feature var='urn:xmpp:carbons:2'/>"));
}

#[test]
fn a_message_received_by_one_resource_is_copied_to_the_others_with_carbons() {
    let mut b = Bench::new();
    let [phone, desktop, old, romeo] = three_resources(&mut b);
    b.send(
        romeo,
        "<message to='juliet@localhost/phone' type='chat' id='m'><body>hi</body></message>",
    );
    let original =
        "<message id='m' to='juliet@localhost/phone' type='chat' from='romeo@localhost/orchard'>\
                    <body>hi</body></message>";
    assert_eq!(b.take(phone), original);
    assert_eq!(
        b.take(desktop),
        format!(
            "<message from='juliet@localhost' to='juliet@localhost/desktop' type='chat'>\
             <received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
             <message xmlns='jabber:client' id='m' to='juliet@localhost/phone' type='chat' \
             from='romeo@localhost/orchard'><body>hi</body></message></forwarded></received></message>"
        )
    );
    assert_eq!(b.take(old), "", "no carbons enabled, no copies");
}

#[test]
fn a_message_sent_by_one_resource_is_copied_to_the_others_with_carbons() {
    let mut b = Bench::new();
    let [phone, desktop, old, romeo] = three_resources(&mut b);
    b.send(
        phone,
        "<message to='romeo@localhost' type='chat' id='s'><body>hello</body></message>",
    );
    assert!(b.take(romeo).contains("<body>hello</body>"));
    assert_eq!(
        b.take(desktop),
        "<message from='juliet@localhost' to='juliet@localhost/desktop' type='chat'>\
         <sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
         <message xmlns='jabber:client' id='s' to='romeo@localhost' type='chat' \
         from='juliet@localhost/phone'><body>hello</body></message></forwarded></sent></message>"
    );
    assert_eq!(
        b.take(phone),
        "",
        "the sender gets no copy of its own message"
    );
    assert_eq!(b.take(old), "");
}

#[test]
fn a_message_to_the_bare_jid_is_copied_to_the_resources_that_did_not_get_it() {
    let mut b = Bench::new();
    let phone = online(&mut b, "juliet", "phone", true);
    let desktop = b.bound("juliet", "r0m30", "desktop");
    b.send(desktop, ENABLE);
    b.send(desktop, "<presence><priority>5</priority></presence>");
    let romeo = online(&mut b, "romeo", "orchard", false);
    b.take(phone);
    b.take(desktop);
    b.send(
        romeo,
        "<message to='juliet@localhost' type='chat'><body>to the top</body></message>",
    );
    assert!(b
        .take(desktop)
        .starts_with("<message to='juliet@localhost' type='chat'"));
    assert!(b
        .take(phone)
        .contains("<received xmlns='urn:xmpp:carbons:2'>"));
}

#[test]
fn private_and_no_copy_messages_are_not_copied_and_private_is_removed() {
    let mut b = Bench::new();
    let [phone, desktop, _, romeo] = three_resources(&mut b);
    b.send(
        phone,
        "<message to='romeo@localhost' type='chat'><body>secret</body>\
         <private xmlns='urn:xmpp:carbons:2'/></message>",
    );
    assert_eq!(
        b.take(romeo),
        "<message to='romeo@localhost' type='chat' from='juliet@localhost/phone'><body>secret</body></message>"
    );
    b.send(
        romeo,
        "<message to='juliet@localhost/phone' type='chat'><body>hush</body><no-copy xmlns='urn:xmpp:hints'/></message>",
    );
    assert!(b.take(phone).contains("hush"));
    assert_eq!(b.take(desktop), "");
}

#[test]
fn only_chats_and_normal_messages_with_a_body_are_copied() {
    let mut b = Bench::new();
    let [phone, desktop, _, romeo] = three_resources(&mut b);
    for message in [
        "<message to='juliet@localhost/phone' type='headline'><body>news</body></message>",
        "<message to='juliet@localhost/phone' type='normal'><subject>no body</subject></message>",
        "<message to='juliet@localhost/phone'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
    ] {
        b.send(romeo, message);
        assert!(!b.take(phone).is_empty());
        assert_eq!(b.take(desktop), "", "{message}");
    }
    b.send(
        romeo,
        "<message to='juliet@localhost/phone'><body>normal</body></message>",
    );
    assert!(b.take(desktop).contains("<received"));
}

#[test]
fn disabling_carbons_stops_the_copies() {
    let mut b = Bench::new();
    let [phone, desktop, _, romeo] = three_resources(&mut b);
    b.send(
        desktop,
        "<iq type='set' id='d'><disable xmlns='urn:xmpp:carbons:2'/></iq>",
    );
    assert!(b.take(desktop).starts_with("<iq type='result' id='d'"));
    b.send(
        romeo,
        "<message to='juliet@localhost/phone' type='chat'><body>hi</body></message>",
    );
    assert!(b.take(phone).contains("hi"));
    assert_eq!(b.take(desktop), "");
}
