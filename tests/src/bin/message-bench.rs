//! Message throughput through one server binary on loopback: PAIRS pairs of
//! clients; in each, one side sends COUNT chat messages to the other's full
//! JID, keeping WINDOW messages in flight (closed loop).
//!
//! usage: message-bench [smol|std] [PAIRS] [COUNT] [WINDOW]
//!
//! Build with `--release`: the server is built with the same profile.

use anyhow::{bail, Result};
use rookery_tests::client::RawClient;
use rookery_tests::server::{Shim, TestServer, BENCH_LIMITS};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shim = Shim::from_arg(args.first().map(String::as_str).unwrap_or("smol"))?;
    let arg = |i: usize, default: usize| -> Result<usize> {
        Ok(args
            .get(i)
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let (pairs, count, window) = (arg(1, 20)?, arg(2, 5000)?, arg(3, 10)?);
    let users: Vec<(String, String)> = (0..pairs * 2)
        .map(|i| (format!("u{i}@localhost"), "pw".to_owned()))
        .collect();
    let refs: Vec<(&str, &str)> = users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    let server = TestServer::start(shim, &refs, BENCH_LIMITS)?;
    let mut links = Vec::new();
    for p in 0..pairs {
        let (sender, _) = RawClient::login(server.addr, &format!("u{}", 2 * p), "pw", Some("s"))?;
        let (receiver, _) =
            RawClient::login(server.addr, &format!("u{}", 2 * p + 1), "pw", Some("r"))?;
        links.push((
            sender.into_stream()?,
            receiver.into_stream()?,
            format!("u{}@localhost/r", 2 * p + 1),
        ));
    }
    let started = Instant::now();
    let threads: Vec<_> = links
        .into_iter()
        .map(|(mut tx, mut rx, to)| {
            std::thread::spawn(move || -> Result<()> {
                rx.set_read_timeout(Some(Duration::from_secs(30)))?;
                let message = format!(
                    "<message to='{to}' type='chat'><body>Wherefore art thou?</body></message>"
                );
                let (mut sent, mut received) = (0usize, 0usize);
                let mut buffer = vec![0u8; 64 * 1024];
                let mut tail = Vec::new();
                while received < count {
                    let burst = window.saturating_sub(sent - received).min(count - sent);
                    if burst > 0 {
                        tx.write_all(message.repeat(burst).as_bytes())?;
                        sent += burst;
                    }
                    let n = rx.read(&mut buffer)?;
                    if n == 0 {
                        bail!("receiver closed");
                    }
                    tail.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&tail).into_owned();
                    let done = text.matches("</message>").count();
                    received += done;
                    let keep = text
                        .rfind("</message>")
                        .map(|i| i + "</message>".len())
                        .unwrap_or(0);
                    tail.drain(..keep.min(tail.len()));
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("pair thread panicked"))??;
    }
    let elapsed = started.elapsed();
    let total = pairs * count;
    println!(
        "{} {}: {pairs} pairs x {count} messages, window {window}: {total} delivered in {elapsed:.2?}, {:.0} messages/s",
        shim.binary_name(),
        if cfg!(debug_assertions) { "(debug build)" } else { "(release)" },
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
