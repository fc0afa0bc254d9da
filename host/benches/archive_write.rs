//! What archiving costs the storage thread under a load like
//! `rookery-load pairs`: USERS accounts (200) chatting in pairs, both
//! sides archiving each chat, in group commits of BATCH (100) until TOTAL
//! (200,000) are kept. Prints wall and CPU microseconds per message: the
//! storage thread shares a core with the event loop in `bench/compare.sh`,
//! so its CPU per message is what archiving takes from throughput.
//!
//! `cargo bench -p rookery-host --bench archive_write`
//! `USERS=2000 BATCH=500 cargo bench -p rookery-host --bench archive_write`
use rookery_core::sasl::StoredCredentials;
use rookery_core::{StorageAnswer, StorageRequest};
use rookery_host::storage::{Account, SqliteStorage, Storage};
use std::time::Instant;

/// CPU seconds this process has used (user and system).
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

fn main() {
    let users: u64 = std::env::var("USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let batch: u64 = std::env::var("BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let total: u64 = std::env::var("TOTAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut storage = SqliteStorage::open(dir.path()).expect("a database");
    let credentials = StoredCredentials::derive("pw", b"0123456789abcdef", 4096).expect("keys");
    let accounts: Vec<_> = (0..users)
        .map(|i| {
            (
                Account::parse(&format!("u{i}@localhost")).unwrap(),
                credentials.clone(),
            )
        })
        .collect();
    storage.create_accounts(&accounts).expect("created");
    let message = |n: u64| {
        let a = (n * 7919) % users;
        let b = a ^ 1;
        let (from, to) = if n.is_multiple_of(2) { (a, b) } else { (b, a) };
        StorageRequest::ArchiveMessage {
            seq: 1_700_000_000_000_000 + n,
            stanza: format!("<message xmlns='jabber:client' to='u{to}@localhost' type='chat' id='m{n}' from='u{from}@localhost/load'><body>message {n} of a usual length for a benchmark chat</body><stanza-id xmlns='urn:xmpp:sid:0' id='{n}' by='u{to}@localhost'/></message>"),
            archives: vec![
                (format!("u{to}@localhost").parse().unwrap(), (format!("u{from}@localhost"), Some("load".into()))),
                (format!("u{from}@localhost").parse().unwrap(), (format!("u{to}@localhost"), None)),
            ],
            // Recipients are online, as in `pairs`: the router has
            // applied their blocklists already.
            unless_blocked: Vec::new(),
            prefs_of: Vec::new(),
            max_messages: 100_000,
            max_bytes: 64 << 20,
        }
    };
    let mut n = 0;
    let started = Instant::now();
    let cpu0 = cpu();
    while n < total {
        let requests: Vec<_> = (n..n + batch).map(message).collect();
        n += batch;
        let answers = storage.execute_all(&requests);
        assert!(answers.iter().all(|a| *a == StorageAnswer::Written));
    }
    let elapsed = started.elapsed();
    println!(
        "{users} users, commits of {batch}: {:.2} us per message, {:.2} us CPU, {:.0} messages/s",
        elapsed.as_secs_f64() * 1e6 / total as f64,
        (cpu() - cpu0) * 1e6 / total as f64,
        total as f64 / elapsed.as_secs_f64()
    );
}
