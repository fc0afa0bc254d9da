//! Every fuzz corpus file and every past crash, replayed through the same
//! harnesses as the fuzz targets, in the normal test run.

use arbitrary::{Arbitrary, Unstructured};
use rookery_core::fuzzing::{self, Action};
use std::path::Path;

fn files(target: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) {
            out.extend(entries.filter_map(Result::ok).map(|e| e.path()));
        }
    }
    out.sort();
    out
}

fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    let files = files(target);
    for file in &files {
        let data = std::fs::read(file).expect("readable corpus file");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data)));
        assert!(outcome.is_ok(), "{} fails", file.display());
    }
    files.len()
}

#[test]
fn session_bytes_corpus_replays_cleanly() {
    let n = replay("session_bytes", fuzzing::session_bytes);
    assert!(n > 0, "the session_bytes corpus is empty");
}

#[test]
fn sessions_corpus_replays_cleanly() {
    let n = replay("sessions", |data| {
        if let Ok(actions) = Vec::<Action>::arbitrary_take_rest(Unstructured::new(data)) {
            fuzzing::sessions(&actions);
        }
    });
    assert!(n > 0, "the sessions corpus is empty");
}

#[test]
fn xml_stream_corpus_replays_cleanly() {
    let n = replay("xml_stream", fuzzing::xml_stream);
    assert!(n > 0, "the xml_stream corpus is empty");
}
