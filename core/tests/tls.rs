//! STARTTLS, direct TLS and SCRAM-PLUS as the core sees them (RFC 6120
//! section 5, XEP-0368, RFC 5802 section 6, RFC 9266, XEP-0440). The bench
//! plays the shim: it "runs" the handshake by reporting it done.

mod support;

use rookery_core::{ChannelBinding, Config, Encryption, Seed};
use rookery_tests::scram::{Hash, ScramClient};
use std::time::Duration;
use support::*;

const STARTTLS: &str = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const PROCEED: &str = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

const REQUIRED_FEATURES: &str =
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
    <required/></starttls></stream:features>";

/// After TLS with both binding types: -PLUS first, PLAIN allowed, and the
/// XEP-0440 list of binding types.
const ENCRYPTED_FEATURES: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
    <mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism>\
    <mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>\
    </mechanisms><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>\
    <channel-binding type='tls-exporter'/><channel-binding type='tls-server-end-point'/>\
    </sasl-channel-binding></stream:features>";

fn binding() -> ChannelBinding {
    ChannelBinding {
        tls_exporter: Some(vec![0xE7; 32]),
        tls_server_end_point: Some(vec![0x5E; 32]),
    }
}

fn required() -> Bench {
    Bench::with_config(Config::default())
}

/// A connection that completed STARTTLS and opened its encrypted stream.
fn encrypted(b: &mut Bench) -> rookery_core::ConnectionId {
    let c = opened(b);
    b.send(c, STARTTLS);
    assert_eq!(b.take(c), PROCEED);
    b.tls_established(c, binding());
    b.send(c, HEADER);
    assert_eq!(b.take(c), format!("{SERVER_HEADER}{ENCRYPTED_FEATURES}"));
    c
}

#[test]
fn encryption_is_required_by_default() {
    assert_eq!(Config::default().encryption, Encryption::Required);
}

#[test]
fn required_tls_is_the_only_feature_offered_before_it() {
    let mut b = required();
    let c = b.connect();
    b.send(c, HEADER);
    assert_eq!(b.take(c), format!("{SERVER_HEADER}{REQUIRED_FEATURES}"));
}

#[test]
fn optional_tls_is_offered_beside_every_mechanism() {
    let mut b = Bench::with_config(Config {
        encryption: Encryption::Optional,
        ..Config::default()
    });
    let c = b.connect();
    b.send(c, HEADER);
    let features = SASL_FEATURES.replace(
        "<stream:features>",
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    );
    assert_eq!(b.take(c), format!("{SERVER_HEADER}{features}"));
}

#[test]
fn starttls_is_answered_with_proceed_and_a_handshake_effect() {
    let mut b = required();
    let c = opened(&mut b);
    b.send(c, STARTTLS);
    assert_eq!(b.take(c), PROCEED);
    assert_eq!(b.tls_started, [c]);
    assert!(!b.server.may_start_tls(c));
}

#[test]
fn a_plaintext_stream_may_start_tls_until_it_does() {
    let mut b = required();
    let c = b.connect();
    assert!(b.server.may_start_tls(c));
    b.send(c, HEADER);
    assert!(b.server.may_start_tls(c));
}

#[test]
fn stanza_pipelined_after_starttls_in_the_same_read_has_no_effect() {
    let mut b = required();
    let c = opened(&mut b);
    // The injection: plaintext written behind the command, hoping to be
    // read as if it came over TLS.
    b.send(
        c,
        &format!(
            "{STARTTLS}{HEADER}{}<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>",
            plain("juliet", "r0m30")
        ),
    );
    assert_eq!(b.take(c), PROCEED);
    b.tls_established(c, binding());
    assert_eq!(b.take(c), "", "nothing answered the injected bytes");
    // The encrypted stream starts from scratch: a header is expected.
    b.send(c, HEADER);
    assert_eq!(b.take(c), format!("{SERVER_HEADER}{ENCRYPTED_FEATURES}"));
}

#[test]
fn bytes_read_during_the_handshake_close_the_connection_silently() {
    let mut b = required();
    let c = opened(&mut b);
    b.send(c, STARTTLS);
    b.take(c);
    b.send(c, "<presence/>");
    assert_eq!(b.take(c), "", "no plaintext may follow <proceed/>");
    assert!(b.is_closed(c));
}

#[test]
fn auth_before_tls_gets_encryption_required() {
    let mut b = required();
    let c = opened(&mut b);
    b.send(c, &plain("juliet", "r0m30"));
    assert_eq!(
        b.take(c),
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required/></failure>"
    );
    assert!(b.pending.is_empty(), "no credentials were looked up");
}

#[test]
fn stanza_before_tls_gets_not_authorized() {
    let mut b = required();
    let c = opened(&mut b);
    b.send(c, "<message to='romeo@localhost'><body>hi</body></message>");
    assert_eq!(b.take(c), stream_error("not-authorized"));
    assert!(b.is_closed(c));
}

#[test]
fn plain_is_accepted_once_the_stream_is_encrypted() {
    let mut b = required();
    let c = encrypted(&mut b);
    b.send(c, &plain("juliet", "r0m30"));
    assert_eq!(
        b.take(c),
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    );
}

#[test]
fn starttls_twice_is_a_tls_failure_and_closes_the_stream() {
    let mut b = required();
    let c = encrypted(&mut b);
    b.send(c, STARTTLS);
    assert_eq!(
        b.take(c),
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"
    );
    assert!(b.is_closed(c));
}

#[test]
fn starttls_when_tls_is_unavailable_is_a_tls_failure() {
    let mut b = Bench::new();
    let c = opened(&mut b);
    b.send(c, STARTTLS);
    assert_eq!(
        b.take(c),
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"
    );
    assert!(b.tls_started.is_empty());
}

#[test]
fn stalled_handshake_is_closed_after_the_handshake_timeout() {
    let mut b = required();
    let c = opened(&mut b);
    b.send(c, STARTTLS);
    b.take(c);
    let timeout = Config::default().limits.tls_handshake_timeout;
    b.advance(timeout - Duration::from_millis(1));
    assert!(!b.is_closed(c));
    b.advance(Duration::from_millis(1));
    assert!(b.is_closed(c));
    assert_eq!(b.take(c), "", "no plaintext error mid-handshake");
}

#[test]
fn direct_tls_connection_waits_for_its_handshake_then_speaks_xmpp() {
    let mut b = required();
    let c = rookery_core::ConnectionId(77);
    b.server.handle_accept_direct_tls(
        c,
        std::net::Ipv4Addr::LOCALHOST.into(),
        Seed([7; 32]),
        b.now,
    );
    assert!(!b.server.may_start_tls(c));
    b.tls_established(c, binding());
    b.send(c, HEADER);
    assert_eq!(b.take(c), format!("{SERVER_HEADER}{ENCRYPTED_FEATURES}"));
}

#[test]
fn scram_sha_256_plus_with_tls_exporter_succeeds() {
    let mut b = required();
    let c = encrypted(&mut b);
    let client = ScramClient::new(Hash::Sha256, "juliet", "r0m30", "nonce1")
        .with_channel_binding("tls-exporter", &[0xE7; 32]);
    let outcome = b.scram_with(c, Hash::Sha256.plus_mechanism(), client);
    assert!(outcome.starts_with("<success"), "{outcome}");
}

#[test]
fn scram_sha_1_plus_with_tls_server_end_point_succeeds() {
    let mut b = required();
    let c = encrypted(&mut b);
    let client = ScramClient::new(Hash::Sha1, "romeo", "j00l13t", "nonce2")
        .with_channel_binding("tls-server-end-point", &[0x5E; 32]);
    let outcome = b.scram_with(c, Hash::Sha1.plus_mechanism(), client);
    assert!(outcome.starts_with("<success"), "{outcome}");
}

#[test]
fn scram_plus_bound_to_another_channel_is_not_authorized() {
    let mut b = required();
    let c = encrypted(&mut b);
    // What a client behind a man in the middle computes: its own TLS
    // session's exporter, not ours.
    let client = ScramClient::new(Hash::Sha256, "juliet", "r0m30", "nonce3")
        .with_channel_binding("tls-exporter", &[0x00; 32]);
    let outcome = b.scram_with(c, Hash::Sha256.plus_mechanism(), client);
    assert_eq!(
        outcome,
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"
    );
}

#[test]
fn y_flag_when_plus_was_advertised_is_a_downgrade_and_fails() {
    let mut b = required();
    let c = encrypted(&mut b);
    let client =
        ScramClient::new(Hash::Sha256, "juliet", "r0m30", "nonce4").claiming_server_cannot_bind();
    let outcome = b.scram_with(c, Hash::Sha256.mechanism(), client);
    assert_eq!(
        outcome,
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"
    );
}

#[test]
fn plus_is_not_offered_without_binding_data() {
    let mut b = required();
    let c = opened(&mut b);
    b.send(c, STARTTLS);
    b.take(c);
    b.tls_established(c, ChannelBinding::default());
    b.send(c, HEADER);
    assert_eq!(b.take(c), format!("{SERVER_HEADER}{SASL_FEATURES}"));
}

#[test]
fn slixmpp_1_8_walks_down_the_offered_mechanisms_to_plain() {
    // slixmpp 1.8 on TLS 1.3: each -PLUS mechanism with tls-unique (which
    // we lack), each SCRAM with the `y` flag (a downgrade after -PLUS was
    // offered), then PLAIN. Four refusals are no password failures: the
    // stream stays open and the address is not throttled.
    let mut b = Bench::with_config(Config {
        max_auth_failures: 0,
        limits: rookery_core::limits::Limits {
            auth_failures_per_address: 1,
            auth_failures_per_account: 1,
            ..Default::default()
        },
        ..Config::default()
    });
    let c = encrypted(&mut b);
    let refused = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>";
    for hash in [Hash::Sha256, Hash::Sha1] {
        let client = ScramClient::new(hash, "juliet", "r0m30", "n1")
            .with_channel_binding("tls-unique", &[1; 12]);
        assert_eq!(b.scram_with(c, hash.plus_mechanism(), client), refused);
    }
    for hash in [Hash::Sha256, Hash::Sha1] {
        let client = ScramClient::new(hash, "juliet", "r0m30", "n2").claiming_server_cannot_bind();
        assert_eq!(b.scram_with(c, hash.mechanism(), client), refused);
    }
    b.send(c, &plain("juliet", "r0m30"));
    assert_eq!(
        b.take(c),
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    );
}

#[test]
fn refusals_past_one_per_scram_mechanism_count_as_failures() {
    let mut b = Bench::with_config(Config {
        max_auth_failures: 0,
        ..Config::default()
    });
    let c = encrypted(&mut b);
    for _ in 0..4 {
        let client =
            ScramClient::new(Hash::Sha1, "juliet", "r0m30", "n").claiming_server_cannot_bind();
        b.scram_with(c, Hash::Sha1.mechanism(), client);
    }
    assert!(!b.is_closed(c));
    let client = ScramClient::new(Hash::Sha1, "juliet", "r0m30", "n").claiming_server_cannot_bind();
    b.scram_with(c, Hash::Sha1.mechanism(), client);
    assert!(b.is_closed(c));
}
