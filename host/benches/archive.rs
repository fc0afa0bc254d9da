//! How long a page of an archive takes as the archive grows (XEP-0313):
//! a page of 50, oldest first, newest first (`<before/>`), and of one
//! contact's messages, at 10,000, 100,000 and 1,000,000 messages in one
//! account's archive; how fast archiving writes; and the database bytes
//! per archived message.
//!
//! `cargo bench -p rookery-host --bench archive`

use criterion::{black_box, Criterion};
use rookery_core::sasl::StoredCredentials;
use rookery_core::{ArchiveQuery, StorageAnswer, StorageRequest};
use rookery_host::storage::{Account, SqliteStorage, Storage};
use std::time::Instant;

const SIZES: [u64; 3] = [10_000, 100_000, 1_000_000];
/// As many rows as one group commit holds.
const BATCH: u64 = 512;

fn message(seq: u64) -> StorageRequest {
    // Every tenth message with the nurse, the rest with romeo.
    let with = if seq.is_multiple_of(10) {
        "nurse@localhost"
    } else {
        "romeo@localhost"
    };
    StorageRequest::ArchiveMessage {
        seq: 1_700_000_000_000_000 + seq,
        stanza: format!(
            "<message to='juliet@localhost' type='chat' from='{with}/orchard'><body>Message number {seq}, of a usual length for a chat.</body></message>"
        ),
        archives: vec![("juliet@localhost".parse().unwrap(), (with.into(), None))],
        unless_blocked: Vec::new(),
        prefs_of: Vec::new(),
        max_messages: 2_000_000,
        max_bytes: 1 << 40,
    }
}

fn page(query: ArchiveQuery) -> StorageRequest {
    StorageRequest::QueryArchive {
        user: "juliet@localhost".parse().unwrap(),
        query: ArchiveQuery {
            max: 50,
            max_bytes: 1 << 20,
            ..query
        },
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut storage = SqliteStorage::open(dir.path()).expect("a database");
    let credentials = StoredCredentials::derive("pw", b"0123456789abcdef", 4096).expect("keys");
    let account = Account::parse("juliet@localhost").expect("an account");
    storage
        .create_account(&account, &credentials)
        .expect("created");
    let mut criterion = Criterion::default().sample_size(50).configure_from_args();
    let mut archived = 0;
    for size in SIZES {
        let started = Instant::now();
        let from = archived;
        while archived < size {
            let batch: Vec<StorageRequest> = (archived..(archived + BATCH).min(size))
                .map(message)
                .collect();
            archived += batch.len() as u64;
            let answers = storage.execute_all(&batch);
            assert!(answers.iter().all(|a| *a == StorageAnswer::Written));
        }
        let rate = (size - from) as f64 / started.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(dir.path().join("rookery.sqlite"))
            .map(|m| m.len())
            .unwrap_or(0)
            + std::fs::metadata(dir.path().join("rookery.sqlite-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        println!(
            "archive of {size}: archived at {rate:.0} messages/s, {:.0} database bytes per message",
            bytes as f64 / size as f64
        );
        let queries = [
            ("first page", ArchiveQuery::default()),
            (
                "last page",
                ArchiveQuery {
                    backward: true,
                    ..ArchiveQuery::default()
                },
            ),
            (
                "first page with the nurse",
                ArchiveQuery {
                    with: Some(("nurse@localhost".into(), None)),
                    ..ArchiveQuery::default()
                },
            ),
        ];
        for (name, query) in queries {
            let request = page(query);
            criterion.bench_function(&format!("{name} of 50, archive of {size}"), |b| {
                b.iter(|| black_box(storage.execute(&request)))
            });
        }
    }
    criterion.final_summary();
}
