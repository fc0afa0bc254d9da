//! TLS through each server binary: STARTTLS and direct TLS with a client
//! that trusts the generated certificate, SCRAM-PLUS with a client that
//! computes tls-exporter itself, the encryption policy, STARTTLS command
//! injection, and handshakes that go wrong.

use rookery_tests::client::{tls_config, RawClient, HEADER};
use rookery_tests::for_both_shims;
use rookery_tests::scram::{Hash, ScramClient};
use rookery_tests::server::TestServer;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const USERS: &[(&str, &str)] = &[("juliet@localhost", "r0m30")];

const REQUIRED_FEATURES: &str =
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
    <required/></starttls></stream:features>";

const NOT_AUTHORIZED: &str =
    "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>";

/// A client on an encrypted stream, features read.
fn encrypted(server: &TestServer) -> anyhow::Result<(RawClient, String)> {
    encrypted_with(server, &server.certificate_path())
}

/// The same, trusting only `ca`.
fn encrypted_with(
    server: &TestServer,
    ca: &std::path::Path,
) -> anyhow::Result<(RawClient, String)> {
    let mut c = RawClient::connect(server.addr)?;
    assert!(c.open_stream()?.ends_with(REQUIRED_FEATURES));
    c.starttls(ca)?;
    let features = c.open_stream()?;
    Ok((c, features))
}

/// Whether a fresh client completes a TLS handshake and gets a stream.
fn another_client_round_trips(server: &TestServer) -> anyhow::Result<Duration> {
    let (mut c, _) = encrypted(server)?;
    assert!(c.plain("juliet", "r0m30")?.starts_with("<success"));
    c.open_stream()?;
    c.bind(None)?;
    c.ping_median(5)
}

for_both_shims! {
    fn default_config_offers_only_required_starttls_before_tls(shim) {
        let server = TestServer::start_secure(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        let features = c.open_stream()?;
        assert!(features.ends_with(REQUIRED_FEATURES), "{features}");
        Ok(())
    }

    fn starttls_then_plain_login_binds(shim) {
        let server = TestServer::start_secure(shim, USERS, "")?;
        let (mut c, features) = encrypted(&server)?;
        assert_eq!(c.tls_version(), Some(rustls::ProtocolVersion::TLSv1_3));
        assert!(features.contains("<mechanism>PLAIN</mechanism>"), "{features}");
        assert!(features.contains("<channel-binding type='tls-exporter'/>"), "{features}");
        assert!(c.plain("juliet", "r0m30")?.starts_with("<success"));
        c.open_stream()?;
        assert_eq!(c.bind(Some("tls"))?, "juliet@localhost/tls");
        Ok(())
    }

    fn direct_tls_login_binds(shim) {
        let server = TestServer::start_secure(shim, USERS, "")?;
        let addr = server.tls_addr.expect("direct TLS listener is on by default");
        let mut c = RawClient::connect_direct_tls(addr, tls_config(&server.certificate_path(), true)?)?;
        let features = c.open_stream()?;
        assert!(!features.contains("starttls"), "{features}");
        assert!(c.scram(Hash::Sha256, "juliet", "r0m30")?.starts_with("<success"));
        c.open_stream()?;
        assert_eq!(c.bind(Some("direct"))?, "juliet@localhost/direct");
        Ok(())
    }

    fn scram_sha_256_plus_with_tls_exporter_succeeds(shim) {
        let server = TestServer::start_secure(shim, USERS, "")?;
        let (mut c, features) = encrypted(&server)?;
        assert!(features.contains("<mechanism>SCRAM-SHA-256-PLUS</mechanism>"), "{features}");
        let exporter = c.tls_exporter()?;
        let client = ScramClient::new(Hash::Sha256, "juliet", "r0m30", "plus-nonce")
            .with_channel_binding("tls-exporter", &exporter);
        let verdict = c.scram_with(Hash::Sha256.plus_mechanism(), client)?;
        assert!(verdict.starts_with("<success"), "{verdict}");
        Ok(())
    }

    fn scram_plus_with_tampered_binding_fails(shim) {
        let server = TestServer::start_secure(shim, USERS, "")?;
        let (mut c, _) = encrypted(&server)?;
        let mut exporter = c.tls_exporter()?;
        exporter[0] ^= 1;
        let client = ScramClient::new(Hash::Sha256, "juliet", "r0m30", "plus-nonce")
            .with_channel_binding("tls-exporter", &exporter);
        assert_eq!(c.scram_with(Hash::Sha256.plus_mechanism(), client)?, NOT_AUTHORIZED);
        Ok(())
    }

    fn scram_y_flag_after_plus_was_offered_fails(shim) {
        let server = TestServer::start_secure(shim, USERS, "")?;
        let (mut c, _) = encrypted(&server)?;
        let client = ScramClient::new(Hash::Sha1, "juliet", "r0m30", "y-nonce")
            .claiming_server_cannot_bind();
        assert_eq!(c.scram_with(Hash::Sha1.mechanism(), client)?, NOT_AUTHORIZED);
        Ok(())
    }

    fn plain_on_plain_tcp_gets_encryption_required(shim) {
        let server = TestServer::start_secure(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        c.open_stream()?;
        assert_eq!(
            c.plain("juliet", "r0m30")?,
            "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required/></failure>"
        );
        Ok(())
    }

    fn stanza_before_tls_gets_not_authorized_stream_error(shim) {
        let server = TestServer::start_secure(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        c.open_stream()?;
        c.send("<message to='juliet@localhost'><body>hi</body></message>")?;
        assert_eq!(
            c.read_to_close()?,
            "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
        );
        Ok(())
    }

    fn bytes_sent_with_starttls_are_discarded(shim) {
        let server = TestServer::start_secure(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        c.open_stream()?;
        // The injection: a whole login written in the clear behind the
        // command, hoping to be taken as sent over TLS.
        let injected = format!(
            "{HEADER}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMA==</auth>"
        );
        c.starttls_with_trailer(tls_config(&server.certificate_path(), false)?, &injected)?;
        // Had the injected bytes counted, a header, features and
        // <success/> would be waiting. The server must await our header.
        let features = c.open_stream()?;
        assert!(!features.contains("success"), "{features}");
        assert_eq!(features.matches("<stream:stream").count(), 1, "{features}");
        assert!(c.plain("juliet", "r0m30")?.starts_with("<success"));
        Ok(())
    }

    fn garbage_instead_of_a_client_hello_is_closed(shim) {
        let server = TestServer::start_secure(shim, USERS, "")?;
        let mut c = RawClient::connect(server.addr)?;
        c.open_stream()?;
        c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")?;
        c.read_until("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")?;
        c.send("this is not a TLS record at all\r\n\r\n")?;
        let mut socket = c.into_stream()?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut rest = Vec::new();
        // A TLS alert at most, then the close.
        let _ = socket.read_to_end(&mut rest);
        assert!(rest.len() < 64, "{rest:?}");
        another_client_round_trips(&server)?;
        Ok(())
    }

    fn garbage_on_the_direct_tls_port_is_closed(shim) {
        let server = TestServer::start_secure(shim, USERS, "")?;
        let mut socket = TcpStream::connect(server.tls_addr.expect("direct TLS"))?;
        socket.write_all(HEADER.as_bytes())?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest);
        assert!(!String::from_utf8_lossy(&rest).contains("stream"), "{rest:?}");
        Ok(())
    }

    fn stalled_handshake_times_out_while_others_round_trip(shim) {
        let server = TestServer::start_secure(shim, USERS, "tls_handshake_timeout_secs = 1")?;
        let mut stalled = RawClient::connect(server.addr)?;
        stalled.open_stream()?;
        stalled.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")?;
        stalled.read_until("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")?;
        let started = Instant::now();
        let median = another_client_round_trips(&server)?;
        assert!(median < Duration::from_millis(50), "{median:?}");
        let mut socket = stalled.into_stream()?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest);
        assert!(rest.is_empty(), "nothing in the clear after <proceed/>: {rest:?}");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(500) && waited < Duration::from_secs(5), "{waited:?}");
        Ok(())
    }

    fn sighup_reloads_a_replaced_certificate_and_keeps_the_old_on_a_bad_one(shim) {
        let server = TestServer::start_secure(shim, USERS, "")?;
        let cert = server.certificate_path();
        let key = cert.with_extension("key");
        let original = std::fs::read(&cert)?;
        // A bad file: the old certificate stays in use.
        std::fs::write(&cert, "garbage")?;
        server.hangup()?;
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(server.dir.path().join("old.crt"), &original)?;
        let old = server.dir.path().join("old.crt");
        encrypted_with(&server, &old)?;
        // A new certificate: new handshakes present it.
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
        let signing = rcgen::KeyPair::generate()?;
        let fresh = params.self_signed(&signing)?;
        std::fs::write(&key, signing.serialize_pem())?;
        std::fs::write(&cert, fresh.pem())?;
        server.hangup()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while encrypted_with(&server, &cert).is_err() {
            assert!(Instant::now() < deadline, "the new certificate was never served");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(encrypted_with(&server, &old).is_err(), "the old certificate is gone");
        Ok(())
    }
}
