//! Cost of one presence update against roster size: a user whose N
//! contacts are all subscribed and online changes presence; the core
//! builds and queues one stanza per contact resource. No sockets.
//!
//! cargo bench -p rookery-core --bench presence

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use jid::BareJid;
use rookery_core::roster::{Roster, RosterItem, Subscription};
use support::Bench;

/// juliet with `n` contacts, each subscribed both ways and online.
fn setup(n: usize) -> (Bench, rookery_core::ConnectionId) {
    let mut b = Bench::for_benchmarks();
    let juliet = BareJid::new("juliet@localhost").unwrap();
    let mut roster = Roster::default();
    for i in 0..n {
        let name = format!("c{i}");
        b.add_user(&name, "pw", 1);
        let contact = BareJid::new(&format!("{name}@localhost")).unwrap();
        let mut item = RosterItem::new(contact.clone());
        item.subscription = Subscription::Both;
        roster.items.insert(contact.clone(), item);
        let mut theirs = Roster::default();
        let mut back = RosterItem::new(juliet.clone());
        back.subscription = Subscription::Both;
        theirs.items.insert(juliet.clone(), back);
        b.rosters.insert(contact.to_string(), theirs);
    }
    b.rosters.insert(juliet.to_string(), roster);
    for i in 0..n {
        let c = b.bound(&format!("c{i}"), "pw", "r");
        b.send(c, "<presence/>");
    }
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, "<presence/>");
    assert_eq!(b.server.sessions().len(), n + 1, "every contact is online");
    (b, c)
}

fn presence_update(crit: &mut Criterion) {
    let mut group = crit.benchmark_group("presence_update");
    for n in [10, 100, 1_000, 10_000] {
        let (mut b, juliet) = setup(n);
        let mut away = false;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| {
                away = !away;
                b.send(
                    juliet,
                    if away {
                        "<presence><show>away</show></presence>"
                    } else {
                        "<presence/>"
                    },
                );
            })
        });
    }
    group.finish();
}

criterion_group!(benches, presence_update);
criterion_main!(benches);
