//! What a peer can make the server hold is bounded by what it sent: a
//! counting allocator measures the heap while hostile input is fed in, and
//! every step must stay within [`HELD_PER_INPUT_BYTE`] times the input, plus
//! one stanza limit's worth of element tree, plus [`FIXED`].
//!
//! One test function only: the allocator counts the whole process, so
//! tests running beside each other would blur what is measured.

mod support;
use peak_alloc::PeakAlloc;
use proptest::prelude::*;
use rookery_core::{Config, ConnectionId};
use support::*;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// Bytes of heap a connection may hold per byte its peer sent. Markup is
/// stored at about its own size; the tree's nodes are charged against the
/// stanza limit (`NODE_COST`, `ATTRIBUTE_COST`), so an element-dense stanza
/// costs at most its limit's worth of nodes.
const HELD_PER_INPUT_BYTE: usize = 4;

/// What a connection holds whatever it sends: the connection, its XML
/// parser (rxml's buffers) and its stream header.
const FIXED: usize = 32 * 1024;

/// The bound after `sent` bytes on a stream whose stanza limit (the cost
/// of markup and tree nodes together) is `stanza`.
fn bound(sent: usize, stanza: usize) -> usize {
    HELD_PER_INPUT_BYTE * sent + stanza + FIXED
}

/// The defaults, in the clear so that the raw bytes reach the parser, and
/// a stanza limit small enough to run many cases.
fn config(stanza: usize) -> Config {
    let mut config = plaintext();
    config.xml.max_stanza_size = stanza;
    config.unauthenticated_stanza_size = stanza.min(config.unauthenticated_stanza_size);
    config.limits.read_rate = 0;
    config
}

/// Pieces a hostile peer strings together.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        (1usize..4000).prop_map(|n| format!("<x xmlns='urn:{}'>", "a".repeat(n))),
        (1usize..2000).prop_map(|n| "<y/>".repeat(n)),
        (1usize..50).prop_map(|n| format!(
            "<z {}/>",
            (0..n)
                .map(|i| format!("a{i}=''"))
                .collect::<Vec<_>>()
                .join(" ")
        )),
        (1usize..2000).prop_map(|n| "t<y/>".repeat(n)),
        (1usize..30).prop_map(|n| "<p:q xmlns:p='urn:p'>".repeat(n)),
        // More long namespaces than the parser remembers per stanza, used
        // in turn through short prefixes (found by review).
        (1usize..400).prop_map(|n| {
            let declared: String = (0..9)
                .map(|i| format!(" xmlns:p{i}='urn:{i}{}'", "n".repeat(2000)))
                .collect();
            let children: String = (0..n).map(|i| format!("<p{}:x/>", i % 9)).collect();
            format!("<r{declared}>{children}")
        }),
        (1usize..5000).prop_map(|n| "&amp;".repeat(n)),
        Just("</x>".to_owned()),
        Just("<message><body>".to_owned()),
    ]
}

/// Feed `pieces` after a stream header; after every piece, the heap above
/// what it was before the connection must be within the bound.
fn feed(
    b: &mut Bench,
    c: ConnectionId,
    pieces: &[String],
    stanza: usize,
    before: usize,
) -> Result<(), TestCaseError> {
    let mut sent = 0;
    for piece in pieces {
        if b.is_closed(c) {
            break;
        }
        HEAP.reset_peak_usage();
        b.send(c, piece);
        sent += piece.len();
        let held = HEAP.peak_usage().saturating_sub(before);
        prop_assert!(
            held <= bound(sent, stanza),
            "held {held} bytes after {sent} bytes of input"
        );
    }
    Ok(())
}

#[test]
fn memory_held_is_bounded_by_input() {
    // The finding of issue 13, before login: an 8,000-byte namespace on an
    // open element, then 60,000 children inheriting it.
    let attack = [
        format!("<x xmlns='urn:{}'>", "a".repeat(8000)),
        "<y/>".repeat(60_000),
    ];
    let defaults = Config::default();
    let mut b = Bench::with_config(config(defaults.xml.max_stanza_size));
    b.record = false;
    let before = HEAP.current_usage();
    let c = opened(&mut b);
    feed(
        &mut b,
        c,
        &attack,
        defaults.unauthenticated_stanza_size,
        before,
    )
    .unwrap();
    assert!(b.is_closed(c), "the stanza limit before login ends it");

    // The same after login, with the full 256 KiB stanza limit.
    let mut b = Bench::with_config(config(defaults.xml.max_stanza_size));
    b.record = false;
    let before = HEAP.current_usage();
    let c = b.bound("juliet", "r0m30", "attack");
    feed(&mut b, c, &attack, defaults.xml.max_stanza_size, before).unwrap();

    // Anything strung from hostile pieces, before and after login.
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    runner
        .run(
            &(any::<bool>(), prop::collection::vec(piece(), 1..12)),
            |(login, pieces)| {
                let config = config(64 * 1024);
                let mut b = Bench::with_config(config.clone());
                b.record = false;
                let before = HEAP.current_usage();
                let (c, stanza) = if login {
                    (
                        b.bound("juliet", "r0m30", "fuzz"),
                        config.xml.max_stanza_size,
                    )
                } else {
                    (opened(&mut b), config.unauthenticated_xml().max_stanza_size)
                };
                feed(&mut b, c, &pieces, stanza, before)
            },
        )
        .unwrap();
}
