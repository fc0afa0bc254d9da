//! Sequential logins against one server binary: the latency of a whole
//! login (TCP connect, stream, SASL, restart, bind, close), one at a time.
//!
//! usage: login-bench [smol|std] [COUNT] [plain|scram-sha-1|scram-sha-256]
//!                    [tcp|starttls|direct-tls]
//!
//! With `starttls` or `direct-tls` every login runs a full TLS 1.3
//! handshake (no session resumption) trusting the server's generated
//! certificate.
//!
//! After the sequential phase it holds COUNT bound sessions open at once and
//! reports the server's resident memory per idle session (from /proc).
//!
//! Build with `--release` for meaningful figures: the server is built with
//! the same profile as this binary.

use anyhow::{bail, Context, Result};
use rookery_tests::client::{tls_config, RawClient};
use rookery_tests::scram::Hash;
use rookery_tests::server::{Shim, TestServer, BENCH_LIMITS};
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shim = Shim::from_arg(args.first().map(String::as_str).unwrap_or("smol"))?;
    let count: usize = args.get(1).map(|c| c.parse()).transpose()?.unwrap_or(1000);
    let mechanism = args
        .get(2)
        .map(String::as_str)
        .unwrap_or("plain")
        .to_owned();
    let transport = args.get(3).map(String::as_str).unwrap_or("tcp").to_owned();
    let server = TestServer::start(shim, &[("bench@localhost", "bench-password")], BENCH_LIMITS)?;
    let login = || -> Result<RawClient> {
        let mut c = match transport.as_str() {
            "tcp" => RawClient::connect(server.addr)?,
            "starttls" => {
                let mut c = RawClient::connect(server.addr)?;
                c.open_stream()?;
                c.starttls(&server.certificate_path())?;
                c
            }
            "direct-tls" => RawClient::connect_direct_tls(
                server.tls_addr.context("no direct TLS listener")?,
                tls_config(&server.certificate_path(), true)?,
            )?,
            other => bail!("unknown transport {other}"),
        };
        c.open_stream()?;
        let verdict = match mechanism.as_str() {
            "plain" => c.plain("bench", "bench-password")?,
            "scram-sha-1" => c.scram(Hash::Sha1, "bench", "bench-password")?,
            "scram-sha-256" => c.scram(Hash::Sha256, "bench", "bench-password")?,
            other => bail!("unknown mechanism {other}"),
        };
        if !verdict.starts_with("<success") {
            bail!("login failed: {verdict}");
        }
        c.open_stream()?;
        c.bind(None)?;
        Ok(c)
    };
    let mut latencies = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        let mut c = login()?;
        c.send("</stream:stream>")?;
        c.read_to_close()?;
        latencies.push(t.elapsed());
    }
    let total = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{} {} x{count} {mechanism} over {transport}: total {:.2?}, {:.0} logins/s, p50 {:.2?}, p95 {:.2?}, p99 {:.2?}",
        shim.binary_name(),
        if cfg!(debug_assertions) { "(debug build)" } else { "(release)" },
        total,
        count as f64 / total.as_secs_f64(),
        pct(0.50),
        pct(0.95),
        pct(0.99)
    );
    let before = server.rss_kib()?;
    let mut idle = Vec::with_capacity(count);
    for _ in 0..count {
        idle.push(login()?);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = server.rss_kib()?;
    println!(
        "{} idle: {count} bound sessions, RSS {before} KiB -> {after} KiB, {:.1} KiB per session",
        shim.binary_name(),
        (after.saturating_sub(before)) as f64 / count as f64
    );
    Ok(())
}
