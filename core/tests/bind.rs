//! Resource binding (RFC 6120 section 7) and the legacy session iq.

mod support;
use support::*;

fn bind_iq(resource: &str) -> String {
    format!(
        "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
    )
}

#[test]
fn client_chosen_resource_is_bound() {
    let mut b = Bench::new();
    let c = b.authenticated("juliet", "r0m30");
    b.send(c, &bind_iq("balcony"));
    assert_eq!(
        b.take(c),
        "<iq type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>juliet@localhost/balcony</jid></bind></iq>"
    );
    assert_eq!(b.server.sessions().len(), 1);
}

#[test]
fn empty_bind_gets_a_generated_resource() {
    let mut b = Bench::new();
    let c = b.authenticated("juliet", "r0m30");
    b.send(
        c,
        "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    );
    let got = b.take(c);
    let jid = between(&got, "<jid>", "</jid>").unwrap();
    let resource = jid.strip_prefix("juliet@localhost/").unwrap();
    assert_eq!(resource.len(), 16);
}

#[test]
fn resource_is_prepared() {
    let mut b = Bench::new();
    let c = b.authenticated("juliet", "r0m30");
    // U+2163 ROMAN NUMERAL FOUR is mapped to "IV" by resourceprep's NFKC.
    b.send(c, &bind_iq("Balcony\u{2163}"));
    assert!(b.take(c).contains("<jid>juliet@localhost/BalconyIV</jid>"));
}

#[test]
fn resource_that_fails_preparation_is_bad_request() {
    let mut b = Bench::new();
    let c = b.authenticated("juliet", "r0m30");
    b.send(c, &bind_iq("private\u{E000}use"));
    assert_eq!(
        b.take(c),
        "<iq type='error' id='b1'><error type='modify'>\
         <bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
    assert!(!b.is_closed(c));
}

#[test]
fn second_bind_on_one_stream_is_not_allowed() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, &bind_iq("garden"));
    assert!(b
        .take(c)
        .contains("<not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"));
}

#[test]
fn conflicting_bind_replaces_the_old_session() {
    let mut b = Bench::new();
    let old = b.bound("juliet", "r0m30", "balcony");
    let new = b.authenticated("juliet", "r0m30");
    b.send(new, &bind_iq("balcony"));
    assert!(b.take(new).contains("<jid>juliet@localhost/balcony</jid>"));
    assert_eq!(b.take(old), stream_error("conflict"));
    assert!(b.is_closed(old));
    assert_eq!(b.server.sessions().len(), 1);
}

#[test]
fn legacy_session_iq_is_answered_with_a_result() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(
        c,
        "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
    );
    assert_eq!(b.take(c), "<iq type='result' id='s1'/>");
}

#[test]
fn stanza_before_binding_is_not_authorized() {
    let mut b = Bench::new();
    let c = b.authenticated("juliet", "r0m30");
    b.send(c, "<message to='romeo@localhost'><body>hi</body></message>");
    assert_eq!(b.take(c), stream_error("not-authorized"));
}

#[test]
fn message_to_a_connected_full_jid_is_delivered_with_the_senders_full_jid() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(
        juliet,
        "<message to='romeo@localhost/orchard' type='chat'><body>hi</body></message>",
    );
    assert_eq!(
        b.take(romeo),
        "<message to='romeo@localhost/orchard' type='chat' from='juliet@localhost/balcony'><body>hi</body></message>"
    );
}

#[test]
fn forged_from_is_invalid_from() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        "<message from='romeo@localhost/orchard' to='romeo@localhost'/>",
    );
    assert_eq!(b.take(juliet), stream_error("invalid-from"));
}

#[test]
fn unhandled_iq_to_the_server_is_service_unavailable() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(
        c,
        "<iq type='get' id='v1' to='localhost'><query xmlns='urn:example:unknown'/></iq>",
    );
    assert_eq!(
        b.take(c),
        "<iq type='error' id='v1' to='juliet@localhost/balcony' from='localhost'><error type='cancel'>\
         <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
}

#[test]
fn iq_result_is_never_answered() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, "<iq type='result' id='x' to='localhost'/>");
    assert_eq!(b.take(c), "");
}

#[test]
fn stanza_to_a_remote_domain_is_remote_server_not_found() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(
        c,
        "<message to='someone@example.org' id='m1'><body>hi</body></message>",
    );
    assert!(b
        .take(c)
        .contains("<remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"));
}
