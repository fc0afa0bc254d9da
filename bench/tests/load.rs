//! rookery-load end to end: against its own echoing peer, and against both
//! Rookery servers, it logs every session in and loses no message.

use anyhow::{bail, Context, Result};
use rookery_tests::for_both_shims;
use rookery_tests::server::{Shim, TestServer, BENCH_LIMITS};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const LOAD: &str = env!("CARGO_BIN_EXE_rookery-load");

/// Run rookery-load with `args` and return its JSON report.
fn load(args: &[&str]) -> Result<Value> {
    let dir = tempfile::tempdir()?;
    let json = dir.path().join("report.json");
    let out = Command::new(LOAD)
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()?;
    if !out.status.success() {
        bail!(
            "rookery-load failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_str(&std::fs::read_to_string(json)?)?)
}

struct Peer(Child, String);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn peer() -> Result<Peer> {
    let mut child = Command::new(LOAD)
        .args(["peer", "--listen", "127.0.0.1:0", "--threads", "1"])
        .stderr(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stderr.take().context("no stderr")?).read_line(&mut line)?;
    let addr = line
        .split("listening on ")
        .nth(1)
        .context("no address")?
        .trim()
        .to_owned();
    Ok(Peer(child, addr))
}

/// A server with accounts u0..u<n> and rookery-load's default password.
fn server_with_accounts(shim: Shim, n: usize) -> Result<TestServer> {
    let users: Vec<(String, String)> = (0..n)
        .map(|i| (format!("u{i}@localhost"), "bench-password".to_owned()))
        .collect();
    let refs: Vec<(&str, &str)> = users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    TestServer::start(shim, &refs, BENCH_LIMITS)
}

fn assert_clean(report: &Value, sessions: u64) {
    assert_eq!(report["sessions"]["established"], sessions, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
}

#[test]
fn pairs_against_the_echoing_peer_lose_nothing() -> Result<()> {
    let peer = peer()?;
    let report = load(&[
        "pairs",
        "--server",
        &peer.1,
        "--sessions",
        "20",
        "--window",
        "4",
        "--duration",
        "1",
    ])?;
    assert_clean(&report, 20);
    let messages = &report["messages"];
    assert!(messages["delivered"].as_u64() > Some(0), "{report:#}");
    assert_eq!(messages["lost"], 0, "{report:#}");
    assert_eq!(messages["sent"], messages["delivered"], "{report:#}");
    Ok(())
}

for_both_shims! {
    fn scram_logins_and_open_loop_messages_reach_a_rookery_server(shim) {
        let server = server_with_accounts(shim, 10)?;
        let addr = server.addr.to_string();
        let pid = server.pid().to_string();
        let report = load(&[
            "rate", "--server", &addr, "--sessions", "10", "--rate", "200", "--duration", "1",
            "--mechanism", "scram-sha-1", "--roster", "--presence", "--server-pid", &pid,
        ])?;
        assert_clean(&report, 10);
        let messages = &report["messages"];
        // 200 messages/s for 1 s, give or take the first and last send.
        let sent = messages["sent"].as_u64().unwrap_or(0);
        assert!((190..=210).contains(&sent), "{report:#}");
        assert_eq!(messages["lost"], 0, "{report:#}");
        assert!(report["server"]["rss_after_login_kib"].as_u64() > Some(0), "{report:#}");
        Ok(())
    }

    fn presence_changes_reach_every_contact_after_the_subscriptions(shim) {
        let server = server_with_accounts(shim, 10)?;
        let addr = server.addr.to_string();
        let report = load(&[
            "presence", "--server", &addr, "--sessions", "10", "--contacts", "4",
            "--rate", "50", "--duration", "1",
        ])?;
        assert_clean(&report, 10);
        let presence = &report["presence"];
        assert!(presence["delivered"].as_u64() > Some(0), "{report:#}");
        assert_eq!(presence["lost"], 0, "{report:#}");
        Ok(())
    }
}
