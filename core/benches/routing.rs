//! Message routing throughput of the core alone: two bound, available
//! sessions exchange chat messages to each other's full JID. Each
//! iteration is one stanza parsed, routed, serialised and queued.
//!
//! cargo bench -p rookery-core --bench routing

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use support::Bench;

fn routing(crit: &mut Criterion) {
    let mut b = Bench::for_benchmarks();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(juliet, "<presence/>");
    b.send(romeo, "<presence/>");
    let to_romeo = b"<message to='romeo@localhost/orchard' type='chat' id='m'><body>Wherefore art thou Romeo?</body></message>";
    let to_bare = b"<message to='romeo@localhost' type='chat' id='m'><body>Wherefore art thou Romeo?</body></message>";
    let mut group = crit.benchmark_group("route_message");
    group.throughput(Throughput::Elements(1));
    group.bench_function("full_jid", |bench| {
        bench.iter(|| b.send_bytes(juliet, to_romeo))
    });
    group.bench_function("bare_jid", |bench| {
        bench.iter(|| b.send_bytes(juliet, to_bare))
    });
    group.finish();
    // A closed connection would make every send a cheap no-op.
    assert!(
        !b.is_closed(juliet) && !b.is_closed(romeo),
        "a session was closed during the benchmark"
    );
}

criterion_group!(benches, routing);
criterion_main!(benches);
