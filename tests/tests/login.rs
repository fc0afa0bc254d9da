//! Logging in and binding through each server binary, with our raw client.

use base64::Engine;
use rookery_tests::client::{RawClient, HEADER};
use rookery_tests::for_both_shims;
use rookery_tests::scram::Hash;
use rookery_tests::server::TestServer;

const USERS: &[(&str, &str)] = &[
    ("juliet@localhost", "r0m30"),
    ("romeo@localhost", "j00l13t"),
];

fn stream_error(condition: &str) -> String {
    format!("<stream:error><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
}

for_both_shims! {
    fn offers_starttls_scram_and_plain_when_encryption_is_optional(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        let features = c.open_stream()?;
        assert!(features.ends_with(
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256</mechanism>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
        ), "{features}");
        Ok(())
    }

    fn plain_login_binds_the_requested_resource(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let (_c, jid) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        assert_eq!(jid, "juliet@localhost/balcony");
        Ok(())
    }

    fn scram_sha_1_login_succeeds(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        c.open_stream()?;
        let verdict = c.scram(Hash::Sha1, "romeo", "j00l13t")?;
        assert!(verdict.starts_with("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"), "{verdict}");
        Ok(())
    }

    fn scram_sha_256_login_succeeds(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        c.open_stream()?;
        let verdict = c.scram(Hash::Sha256, "juliet", "r0m30")?;
        assert!(verdict.starts_with("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"), "{verdict}");
        Ok(())
    }

    fn wrong_password_is_not_authorized(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        c.open_stream()?;
        assert_eq!(
            c.scram(Hash::Sha256, "juliet", "wrong")?,
            "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"
        );
        assert_eq!(
            c.plain("juliet", "wrong")?,
            "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"
        );
        Ok(())
    }

    fn empty_bind_generates_a_resource(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let (_c, jid) = RawClient::login(server.addr, "juliet", "r0m30", None)?;
        let resource = jid.strip_prefix("juliet@localhost/").expect("bare JID of the account");
        assert_eq!(resource.len(), 16);
        Ok(())
    }

    fn second_login_with_the_same_resource_gets_it_and_the_first_a_conflict(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let (mut first, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        let (_second, jid) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        assert_eq!(jid, "juliet@localhost/balcony");
        assert_eq!(first.read_to_close()?, stream_error("conflict"));
        Ok(())
    }

    fn message_between_two_clients_is_delivered(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        juliet.send("<message to='romeo@localhost/orchard' type='chat' id='m1'><body>Wherefore?</body></message>")?;
        assert_eq!(
            romeo.read_until("</message>")?,
            "<message id='m1' to='romeo@localhost/orchard' type='chat' from='juliet@localhost/balcony'>\
             <body>Wherefore?</body></message>"
        );
        Ok(())
    }

    fn closing_the_stream_is_answered_and_closed(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let (mut c, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        c.send("</stream:stream>")?;
        assert_eq!(c.read_to_close()?, "</stream:stream>");
        Ok(())
    }

    fn not_well_formed_input_gets_a_stream_error_and_close(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        c.open_stream()?;
        c.send("<auth></wrong>")?;
        assert_eq!(c.read_to_close()?, stream_error("not-well-formed"));
        Ok(())
    }

    fn stanza_over_the_configured_limit_is_a_policy_violation(shim) {
        let server = TestServer::start(shim, USERS, "max_stanza_size = 4096")?;
        let (mut c, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        c.send(&format!("<message to='romeo@localhost'><body>{}</body></message>", "x".repeat(8000)))?;
        let got = c.read_to_close()?;
        assert!(got.starts_with("<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"), "{got}");
        Ok(())
    }

    fn silent_stream_times_out_with_connection_timeout(shim) {
        let server = TestServer::start(shim, USERS, "login_timeout_secs = 1")?;
        let mut c = RawClient::connect(server.addr)?;
        c.send(HEADER)?;
        let got = c.read_to_close()?;
        assert!(got.ends_with(&stream_error("connection-timeout")), "{got}");
        Ok(())
    }

    fn a_newline_after_auth_before_the_restarted_declaration_is_accepted(shim) {
        // go-sendxmpp 0.5.6: `</auth>` and a newline in one write, then an
        // XML declaration opening the restarted stream.
        let server = TestServer::start(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        c.open_stream()?;
        let payload = base64::engine::general_purpose::STANDARD.encode("\0juliet\0r0m30");
        c.send(&format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{payload}</auth>\n"))?;
        assert_eq!(c.read_until("/>")?, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        let header = HEADER.trim_start_matches("<?xml version='1.0'?>");
        c.send(&format!("<?xml version='1.0'?>{header}"))?;
        let features = c.read_until("</stream:features>")?;
        assert!(features.contains("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"), "{features}");
        Ok(())
    }

    fn many_failed_logins_for_one_account_leave_another_account_on_the_same_address_alone(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut failed = 0;
        while failed < 25 {
            let mut c = RawClient::connect(server.addr)?;
            c.open_stream()?;
            for _ in 0..3 {
                let verdict = c.plain("juliet", "wrong")?;
                assert!(verdict.contains("<failure"), "{verdict}");
                failed += 1;
            }
        }
        let mut romeo = RawClient::connect(server.addr)?;
        romeo.open_stream()?;
        assert_eq!(romeo.plain("romeo", "j00l13t")?, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        Ok(())
    }

    fn an_unknown_user_gets_a_scram_challenge(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        c.open_stream()?;
        let first = base64::engine::general_purpose::STANDARD.encode("n,,n=nobody,r=0123456789abcdef");
        c.send(&format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>{first}</auth>"))?;
        let got = c.read_until("</challenge>")?;
        assert!(got.starts_with("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"), "{got}");
        Ok(())
    }

    fn unknown_host_is_host_unknown(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        c.send(&HEADER.replace("to='localhost'", "to='example.net'"))?;
        assert!(c.read_to_close()?.ends_with(&stream_error("host-unknown")));
        Ok(())
    }
}
