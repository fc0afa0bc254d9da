//! SASL negotiation (RFC 6120 section 6) through the whole core.

mod support;
use rookery_tests::scram::Hash;
use support::*;

const SUCCESS: &str = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";

fn failure(condition: &str) -> String {
    format!("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><{condition}/></failure>")
}

#[test]
fn plain_with_the_right_password_succeeds_and_the_stream_restarts() {
    let mut b = Bench::new();
    let c = opened(&mut b);
    b.send(c, &plain("juliet", "r0m30"));
    assert_eq!(b.take(c), SUCCESS);
    b.send(c, HEADER);
    assert_eq!(b.take(c), format!("{SERVER_HEADER}{BIND_FEATURES}"));
}

#[test]
fn plain_with_a_wrong_password_is_not_authorized() {
    let mut b = Bench::new();
    let c = opened(&mut b);
    b.send(c, &plain("juliet", "wrong"));
    assert_eq!(b.take(c), failure("not-authorized"));
    assert!(!b.is_closed(c));
}

#[test]
fn plain_for_an_unknown_user_is_not_authorized() {
    let mut b = Bench::new();
    let c = opened(&mut b);
    b.send(c, &plain("nobody", "r0m30"));
    assert_eq!(b.take(c), failure("not-authorized"));
}

#[test]
fn scram_for_an_unknown_user_gets_a_challenge_and_fails_only_at_the_final_message() {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    let mut b = Bench::new();
    let first_challenge = |b: &mut Bench| {
        let c = opened(b);
        b.send(
            c,
            &format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>{}</auth>",
                B64.encode("n,,n=nobody,r=abc")
            ),
        );
        let text = b.take(c);
        let payload = between(&text, "'>", "</challenge>").unwrap().to_owned();
        let decoded = String::from_utf8(B64.decode(payload).unwrap()).unwrap();
        (c, decoded)
    };
    let (c, challenge) = first_challenge(&mut b);
    let salt = between(&challenge, ",s=", ",i=").unwrap().to_owned();
    assert!(challenge.starts_with("r=abc"), "{challenge}");
    assert!(challenge.ends_with(",i=4096"), "{challenge}");
    assert_eq!(B64.decode(&salt).unwrap().len(), 16);
    // The same salt every time: asking twice tells nothing.
    let (_, again) = first_challenge(&mut b);
    assert_eq!(between(&again, ",s=", ",i=").unwrap(), salt);
    assert!(!b.is_closed(c));
    let c = opened(&mut b);
    assert_eq!(
        b.scram(c, Hash::Sha1, "nobody", "anything"),
        failure("not-authorized")
    );
}

#[test]
fn plain_without_initial_response_gets_an_empty_challenge() {
    use base64::Engine;
    let mut b = Bench::new();
    let c = opened(&mut b);
    b.send(
        c,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>",
    );
    assert_eq!(
        b.take(c),
        "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</challenge>"
    );
    let payload = base64::engine::general_purpose::STANDARD.encode("\0juliet\0r0m30");
    b.send(
        c,
        &format!("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{payload}</response>"),
    );
    assert_eq!(b.take(c), SUCCESS);
}

#[test]
fn scram_sha_256_login_succeeds_with_server_signature() {
    let mut b = Bench::new();
    let c = opened(&mut b);
    let outcome = b.scram(c, Hash::Sha256, "juliet", "r0m30");
    assert!(
        outcome.starts_with("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"),
        "{outcome}"
    );
}

#[test]
fn scram_sha_1_login_succeeds_with_server_signature() {
    let mut b = Bench::new();
    let c = opened(&mut b);
    let outcome = b.scram(c, Hash::Sha1, "romeo", "j00l13t");
    assert!(
        outcome.starts_with("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"),
        "{outcome}"
    );
}

#[test]
fn scram_with_a_wrong_password_is_not_authorized() {
    let mut b = Bench::new();
    let c = opened(&mut b);
    assert_eq!(
        b.scram(c, Hash::Sha256, "juliet", "wrong"),
        failure("not-authorized")
    );
}

#[test]
fn unknown_mechanism_is_invalid_mechanism() {
    let mut b = Bench::new();
    let c = opened(&mut b);
    b.send(
        c,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'>=</auth>",
    );
    assert_eq!(b.take(c), failure("invalid-mechanism"));
}

#[test]
fn bad_base64_is_incorrect_encoding() {
    let mut b = Bench::new();
    let c = opened(&mut b);
    b.send(
        c,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%%%</auth>",
    );
    assert_eq!(b.take(c), failure("incorrect-encoding"));
}

#[test]
fn malformed_plain_message_is_malformed_request() {
    use base64::Engine;
    let mut b = Bench::new();
    let c = opened(&mut b);
    let payload = base64::engine::general_purpose::STANDARD.encode("juliet-without-nuls");
    b.send(
        c,
        &format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{payload}</auth>"
        ),
    );
    assert_eq!(b.take(c), failure("malformed-request"));
}

#[test]
fn abort_is_answered_with_aborted() {
    let mut b = Bench::new();
    let c = opened(&mut b);
    b.send(
        c,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'/>",
    );
    b.take(c);
    b.send(c, "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    assert_eq!(b.take(c), failure("aborted"));
}

#[test]
fn foreign_attributes_on_auth_are_ignored() {
    let mut b = Bench::new();
    let c = opened(&mut b);
    let auth = plain("juliet", "r0m30").replace(
        "mechanism='PLAIN'",
        "mechanism='PLAIN' xmlns:ga='http://www.google.com/talk/protocol/auth' ga:client-uses-full-bind-result='true'",
    );
    b.send(c, &auth);
    assert_eq!(b.take(c), SUCCESS);
}

#[test]
fn retries_are_bounded_then_the_stream_is_closed() {
    let mut b = Bench::new();
    let c = opened(&mut b);
    for _ in 0..3 {
        b.send(c, &plain("juliet", "wrong"));
        assert_eq!(b.take(c), failure("not-authorized"));
    }
    b.send(c, &plain("juliet", "wrong"));
    assert_eq!(
        b.take(c),
        format!(
            "{}<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too many failed authentication attempts</text>\
             </stream:error></stream:stream>",
            failure("not-authorized")
        )
    );
    assert!(b.is_closed(c));
}

#[test]
fn storage_failure_is_temporary_auth_failure() {
    let mut b = Bench::new();
    b.auto_storage = false;
    let c = opened(&mut b);
    b.send(c, &plain("juliet", "r0m30"));
    let (request, _) = b.pending.pop().unwrap();
    b.server.handle_storage(
        request,
        rookery_core::StorageAnswer::Failed("disk on fire".into()),
        b.now,
    );
    b.answer_storage();
    assert_eq!(b.take(c), failure("temporary-auth-failure"));
}

#[test]
fn input_pipelined_behind_auth_waits_for_the_credentials() {
    let mut b = Bench::new();
    b.auto_storage = false;
    let c = opened(&mut b);
    b.send(c, &format!("{}{HEADER}", plain("juliet", "r0m30")));
    assert_eq!(b.take(c), "");
    b.answer_storage();
    assert_eq!(
        b.take(c),
        format!("{SUCCESS}{SERVER_HEADER}{BIND_FEATURES}")
    );
}
