//! A whole login through the core alone: stream header, SCRAM-SHA-1 with
//! 4,096 iterations, stream restart, resource binding, then the client
//! leaves. The client's PBKDF2 is done once, before measuring, as a real
//! client caches it; what is measured is the server's side.
//!
//! cargo bench -p rookery-core --bench login

#[path = "../tests/support/mod.rs"]
mod support;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rookery_tests::scram::{Hash, ScramClient};
use support::{between, Bench, HEADER};

fn login(crit: &mut Criterion) {
    let mut b = Bench::for_benchmarks();
    b.record = true;
    b.add_user("bench", "bench-password", 4096);
    let salted = Hash::Sha1.hi(b"bench-password", b"salt-of-bench", 4096);
    let mut group = crit.benchmark_group("login");
    group.throughput(Throughput::Elements(1));
    group.bench_function("scram_sha_1_bind", |bench| {
        bench.iter(|| {
            let c = b.connect();
            b.send(c, HEADER);
            let mut client = ScramClient::new(Hash::Sha1, "bench", "bench-password", "n0nce");
            b.take(c);
            b.send(
                c,
                &format!(
                    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>{}</auth>",
                    B64.encode(client.client_first())
                ),
            );
            let challenge = b.take(c);
            let first = between(&challenge, "'>", "</challenge>").expect("a challenge");
            let first = String::from_utf8(B64.decode(first).unwrap()).unwrap();
            let last = client
                .client_final_salted(&first, |_, _| salted.clone())
                .unwrap();
            b.send(
                c,
                &format!(
                    "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
                    B64.encode(last)
                ),
            );
            b.send(c, HEADER);
            b.send(
                c,
                "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
            );
            let bound = b.take(c);
            assert!(bound.contains("<jid>bench@localhost/"), "{bound}");
            b.peer_close(c);
        })
    });
    group.finish();
}

criterion_group!(benches, login);
criterion_main!(benches);
