//! Logging in with slixmpp, an independent client implementation, through
//! each server binary. Needs Debian's python3-slixmpp (installed by
//! `.ci/run`, which also makes its absence a failure); on a machine
//! without it they are skipped, saying so (`slixmpp_ready`).

use anyhow::Result;
use rookery_tests::for_both_shims;
use rookery_tests::server::TestServer;
use std::process::Command;

const USERS: &[(&str, &str)] = &[("juliet@localhost", "r0m30")];

/// How the slixmpp client reaches the server.
#[derive(Clone, Copy)]
enum Transport {
    Plain,
    StartTls,
    DirectTls,
}

/// Run the slixmpp login script; returns its stdout.
fn slixmpp(
    server: &TestServer,
    password: &str,
    mechanism: &str,
    resource: Option<&str>,
) -> Result<(bool, String)> {
    slixmpp_over(server, Transport::Plain, password, mechanism, resource)
}

fn slixmpp_over(
    server: &TestServer,
    tls: Transport,
    password: &str,
    mechanism: &str,
    resource: Option<&str>,
) -> Result<(bool, String)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/slix_login.py");
    let (port, mode) = match tls {
        Transport::Plain => (server.port(), "none"),
        Transport::StartTls => (server.port(), "starttls"),
        Transport::DirectTls => (server.tls_addr.map(|a| a.port()).unwrap_or(0), "direct"),
    };
    let port = port.to_string();
    let mut args = vec![script, "juliet@localhost", password, &port, mechanism];
    args.extend(resource);
    // Debian installs slixmpp for the system interpreter only.
    let out = Command::new("/usr/bin/python3")
        .args(&args)
        .env("ROOKERY_TLS", mode)
        .env("ROOKERY_CA", server.certificate_path())
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

for_both_shims! {
    fn slixmpp_logs_in_over_starttls_trusting_the_generated_certificate(shim) {
        if !rookery_tests::slixmpp_ready()? {
            return Ok(());
        }
        let server = TestServer::start_secure(shim, USERS, "")?;
        // PLAIN, not SCRAM: slixmpp 1.8 knows only tls-unique binding, so
        // after seeing -PLUS it sends SCRAM's `y` flag, which RFC 5802
        // section 6 obliges us (and Prosody) to refuse as a downgrade.
        let (ok, out) = slixmpp_over(&server, Transport::StartTls, "r0m30", "PLAIN", Some("tls"))?;
        assert!(ok, "{out}");
        assert!(out.contains("TLS\n"), "{out}");
        assert!(out.contains("BOUND juliet@localhost/tls\n"), "{out}");
        assert!(out.contains("ECHO echo from slixmpp\n"), "{out}");
        Ok(())
    }

    fn slixmpp_1_8_logs_in_over_starttls_choosing_its_own_mechanism(shim) {

        if !rookery_tests::slixmpp_ready()? {

            return Ok(());

        }
        // With the default, encryption-required config: slixmpp 1.8 on
        // TLS 1.3 tries both -PLUS mechanisms with tls-unique, then both
        // SCRAMs with the `y` flag, then PLAIN. The four refusals are no
        // password failures, so the stream stays open until PLAIN.
        let server = TestServer::start_secure(shim, USERS, "")?;
        let (ok, out) = slixmpp_over(&server, Transport::StartTls, "r0m30", "ANY", Some("any"))?;
        assert!(ok, "{out}");
        assert!(out.contains("BOUND juliet@localhost/any\n"), "{out}");
        assert!(out.contains("ECHO echo from slixmpp\n"), "{out}");
        Ok(())
    }

    fn slixmpp_1_8_logs_in_over_direct_tls_choosing_its_own_mechanism(shim) {

        if !rookery_tests::slixmpp_ready()? {

            return Ok(());

        }
        let server = TestServer::start_secure(shim, USERS, "")?;
        let (ok, out) = slixmpp_over(&server, Transport::DirectTls, "r0m30", "ANY", Some("any"))?;
        assert!(ok, "{out}");
        assert!(out.contains("BOUND juliet@localhost/any\n"), "{out}");
        Ok(())
    }

    fn slixmpp_logs_in_over_direct_tls_with_plain(shim) {

        if !rookery_tests::slixmpp_ready()? {

            return Ok(());

        }
        let server = TestServer::start_secure(shim, USERS, "")?;
        let (ok, out) = slixmpp_over(&server, Transport::DirectTls, "r0m30", "PLAIN", Some("direct"))?;
        assert!(ok, "{out}");
        assert!(out.contains("BOUND juliet@localhost/direct\n"), "{out}");
        Ok(())
    }

    fn slixmpp_logs_in_with_scram_sha_256_and_binds_its_resource(shim) {

        if !rookery_tests::slixmpp_ready()? {

            return Ok(());

        }
        let server = TestServer::start(shim, USERS, "")?;
        let (ok, out) = slixmpp(&server, "r0m30", "SCRAM-SHA-256", Some("garden"))?;
        assert!(ok, "{out}");
        assert!(out.contains("BOUND juliet@localhost/garden\n"), "{out}");
        assert!(out.contains("ECHO echo from slixmpp\n"), "{out}");
        Ok(())
    }

    fn slixmpp_logs_in_with_scram_sha_1_and_a_generated_resource(shim) {

        if !rookery_tests::slixmpp_ready()? {

            return Ok(());

        }
        let server = TestServer::start(shim, USERS, "")?;
        let (ok, out) = slixmpp(&server, "r0m30", "SCRAM-SHA-1", None)?;
        assert!(ok, "{out}");
        assert!(out.contains("BOUND juliet@localhost/"), "{out}");
        Ok(())
    }

    fn slixmpp_logs_in_with_plain(shim) {

        if !rookery_tests::slixmpp_ready()? {

            return Ok(());

        }
        let server = TestServer::start(shim, USERS, "")?;
        let (ok, out) = slixmpp(&server, "r0m30", "PLAIN", Some("pda"))?;
        assert!(ok, "{out}");
        assert!(out.contains("BOUND juliet@localhost/pda\n"), "{out}");
        Ok(())
    }

    fn slixmpp_with_a_wrong_password_fails_to_authenticate(shim) {

        if !rookery_tests::slixmpp_ready()? {

            return Ok(());

        }
        let server = TestServer::start(shim, USERS, "")?;
        let (ok, out) = slixmpp(&server, "wrong", "SCRAM-SHA-256", None)?;
        assert!(!ok);
        assert!(out.contains("AUTH_FAILED"), "{out}");
        assert!(!out.contains("BOUND"), "{out}");
        Ok(())
    }
}

/// Run the two-user presence scenario; returns (success, stdout).
fn presence_scenario(server: &TestServer) -> Result<(bool, String)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/slix_presence.py");
    let out = Command::new("/usr/bin/python3")
        .args([script, &server.port().to_string()])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok((
        out.status.success(),
        stdout + &String::from_utf8_lossy(&out.stderr),
    ))
}

mod presence {
    use super::*;

    const BOTH: &[(&str, &str)] = &[
        ("juliet@localhost", "r0m30"),
        ("romeo@localhost", "j00l13t"),
    ];

    for_both_shims! {
        fn slixmpp_users_subscribe_see_each_other_and_see_a_drop(shim) {
            if !rookery_tests::slixmpp_ready()? {
                return Ok(());
            }
            let server = TestServer::start(shim, BOTH, "")?;
            let (ok, out) = presence_scenario(&server)?;
            assert!(ok, "{out}");
            assert!(out.contains("MUTUAL both both"), "{out}");
            assert!(out.contains("UNAVAILABLE seen by both"), "{out}");
            Ok(())
        }
    }
}

mod routing {
    use super::*;

    const BOTH: &[(&str, &str)] = &[
        ("juliet@localhost", "r0m30"),
        ("romeo@localhost", "j00l13t"),
    ];

    /// Run a scenario script against a server started with `extra`
    /// configuration; its output, once it succeeded, or `None` where
    /// slixmpp is missing.
    fn scenario(
        shim: rookery_tests::server::Shim,
        extra: &str,
        script: &str,
    ) -> Result<Option<String>> {
        if !rookery_tests::slixmpp_ready()? {
            return Ok(None);
        }
        let server = TestServer::start(shim, BOTH, extra)?;
        let script = format!("{}/clients/{script}", env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("/usr/bin/python3")
            .args([script, server.port().to_string()])
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}");
        Ok(Some(stdout))
    }

    for_both_shims! {
        fn slixmpp_pings_discovers_routes_by_priority_and_gets_an_offline_message(shim) {
            let Some(stdout) = scenario(shim, "", "slix_routing.py")? else {
                return Ok(());
            };
            assert!(stdout.contains("PING ok"), "{stdout}");
            assert!(stdout.contains("DISCO True True"), "{stdout}");
            assert!(stdout.contains("OFFLINE Parting is such sweet sorrow delayed"), "{stdout}");
            assert!(stdout.contains("PRIORITY balcony-got:to the highest garden-none"), "{stdout}");
            assert!(stdout.contains("IQ Slixmpp"), "{stdout}");
            Ok(())
        }

        fn slixmpp_enables_stream_management_and_carbons_blocks_and_asks_last_activity(shim) {
            let Some(stdout) = scenario(shim, "", "slix_mobile.py")? else {
                return Ok(());
            };
            assert!(stdout.contains("SM enabled resumable"), "{stdout}");
            assert!(stdout.contains("CARBON Wherefore art thou"), "{stdout}");
            assert!(stdout.contains("BLOCKED nurse@localhost"), "{stdout}");
            assert!(stdout.contains("UPTIME ok"), "{stdout}");
            Ok(())
        }

        fn slixmpp_pages_through_the_message_archive(shim) {
            // Message archives are off by default.
            let Some(stdout) = scenario(shim, "[archive]\nenabled = true", "slix_mam.py")? else {
                return Ok(());
            };
            assert!(stdout.contains("MAM one,two,three,four,five"), "{stdout}");
            assert!(stdout.contains("IDS match"), "{stdout}");
            Ok(())
        }

        fn slixmpp_publishes_a_nick_and_an_avatar_on_pep_and_a_contact_follows_them(shim) {
            let Some(stdout) = scenario(shim, "", "slix_pep.py")? else {
                return Ok(());
            };
            for milestone in ["NICK ", "AVATAR ", "AVATARDATA ", "LASTNICK ", "RETRACT"] {
                assert!(stdout.contains(milestone), "{milestone}: {stdout}");
            }
            Ok(())
        }

        fn slixmpp_and_nbxmpp_exchange_omemo_device_lists_and_bundles(shim) {
            if !rookery_tests::nbxmpp_ready()? {
                return Ok(());
            }
            let Some(stdout) = scenario(shim, "", "omemo_pep.py")? else {
                return Ok(());
            };
            for milestone in ["ACCOUNT ", "DEVICELIST ", "BUNDLE ", "ROMEONOTIFY", "ROMEO ", "ROMEOBUNDLE "] {
                assert!(stdout.contains(milestone), "{milestone}: {stdout}");
            }
            Ok(())
        }

        fn slixmpp_publishes_and_reads_vcards_and_keeps_bookmarks_in_private_storage(shim) {
            let Some(stdout) = scenario(shim, "", "slix_data.py")? else {
                return Ok(());
            };
            assert!(stdout.contains("VCARD own Juliet Capulet"), "{stdout}");
            assert!(stdout.contains("VCARD seen Juliet Capulet"), "{stdout}");
            assert!(stdout.contains("BOOKMARKS verona@conference.localhost"), "{stdout}");
            Ok(())
        }
    }
}
