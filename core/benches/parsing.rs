//! Stream parsing alone: a stream header and 1,000 chat messages through
//! the core's `StreamParser` (rxml underneath), in bytes per second.
//!
//! cargo bench -p rookery-core --bench parsing

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rookery_core::xml::{StreamParser, XmlEvent, XmlLimits};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
const MESSAGE: &str = "<message to='romeo@localhost/orchard' type='chat' id='m1'>\
    <body>Wherefore art thou Romeo?</body></message>";

fn parsing(crit: &mut Criterion) {
    let stream = format!("{HEADER}{}", MESSAGE.repeat(1000));
    let mut group = crit.benchmark_group("parse_stream");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("1000_messages", |bench| {
        bench.iter(|| {
            let mut parser = StreamParser::new(XmlLimits::default());
            let mut input = stream.as_bytes();
            let mut stanzas = 0;
            while let Some(event) = parser.next_event(&mut input).expect("well-formed") {
                if matches!(event, XmlEvent::Element(_)) {
                    stanzas += 1;
                }
            }
            assert_eq!(stanzas, 1000);
        })
    });
    group.finish();
}

criterion_group!(benches, parsing);
criterion_main!(benches);
