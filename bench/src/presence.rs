//! The presence workload: every session has a roster of K contacts (its
//! neighbours on a ring of sessions, subscribed both ways), and changes
//! presence at a fixed rate; each change reaches K contacts.
//!
//! The subscriptions are made through the protocol before anything is
//! measured (RFC 6121 section 3: subscribe, subscribed, both ways), so the
//! workload runs against any server. Each session accepts every request
//! and answers every roster push, as a client does.

use crate::session::{self, Failure, Item, Session};
use crate::workload::{next_wake, Schedule, Shared, Wake};
use async_io::Timer;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// One session of a pair, with what the workload tracks for it.
struct Member {
    session: Session,
    index: usize,
    /// Contacts whose subscription is not `both` yet (setup only).
    missing: HashSet<usize>,
    next: Instant,
    away: bool,
    out: Vec<u8>,
}

/// The session's K contacts: its neighbours on the ring of sessions.
fn contacts_of(index: usize, sessions: usize, contacts: usize) -> HashSet<usize> {
    (1..=contacts / 2)
        .flat_map(|d| [(index + d) % sessions, (index + sessions - d) % sessions])
        .collect()
}

impl Member {
    fn new(session: Session, index: usize, next: Instant) -> Member {
        Member {
            session,
            index,
            missing: HashSet::new(),
            next,
            away: false,
            out: Vec::new(),
        }
    }

    /// Note the subscription states of the `<item/>`s in a roster result
    /// or push: a contact is done once it is `both`.
    fn roster_items(&mut self, shared: &Shared, roster: &str) {
        for item in roster.split("<item ").skip(1) {
            let tag = format!("<item {item}");
            let (Some(jid), Some(subscription)) = (attr(&tag, "jid"), attr(&tag, "subscription"))
            else {
                continue;
            };
            if let Some(i) = shared.index_of(jid) {
                if subscription == "both" {
                    self.missing.remove(&i);
                }
            }
        }
    }

    fn handle_setup(&mut self, shared: &Shared, element: &str) {
        if element.starts_with("<iq") && attr(element, "type") == Some("set") {
            // A roster push: note it and acknowledge it (RFC 6121 2.1.6).
            self.roster_items(shared, element);
            let id = attr(element, "id").unwrap_or_default();
            self.out
                .extend_from_slice(format!("<iq type='result' id='{id}'/>").as_bytes());
            return;
        }
        if element.starts_with("<presence") && attr(element, "type") == Some("subscribe") {
            // Approve every request, as a bot would.
            let from = attr(element, "from").unwrap_or_default();
            let bare = from.split('/').next().unwrap_or_default();
            self.out
                .extend_from_slice(format!("<presence to='{bare}' type='subscribed'/>").as_bytes());
        }
    }
}

/// The value of attribute `name` in the start tag of `element`.
fn attr<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let tag = &element[..element.find('>').unwrap_or(element.len())];
    for quote in ['\'', '"'] {
        let key = format!(" {name}={quote}");
        if let Some(start) = tag.find(&key) {
            let rest = &tag[start + key.len()..];
            return rest.find(quote).map(|end| &rest[..end]);
        }
    }
    None
}

/// Read whichever session of the pair has input (or wake with `timer`).
async fn wait(a: &mut Member, b: &mut Member, timer: &mut Timer) -> Wake {
    next_wake(&mut a.session, &mut b.session, timer).await
}

/// Pull complete elements out of `member`'s reader as text.
fn elements(member: &mut Member, read: std::io::Result<usize>) -> Result<Vec<String>, Failure> {
    match read {
        Ok(0) => return Err(Failure::new("presence", "connection closed")),
        Err(e) => return Err(Failure::new("presence", format!("{:?}", e.kind()))),
        Ok(_) => {}
    }
    let mut out = Vec::new();
    while let Some(item) = member.session.reader.pop() {
        match item {
            Item::Element(e) => {
                let text = String::from_utf8_lossy(e).into_owned();
                if text.starts_with("<stream:error") {
                    return Err(Failure::new("presence", session::condition(&text)));
                }
                out.push(text);
            }
            Item::Header => {}
            Item::End => return Err(Failure::new("presence", "stream closed")),
        }
    }
    Ok(out)
}

async fn flush(member: &mut Member) -> Result<(), Failure> {
    if !member.out.is_empty() {
        member
            .session
            .send(&member.out)
            .await
            .map_err(|e| Failure::new("presence", format!("{:?}", e.kind())))?;
        member.out.clear();
    }
    Ok(())
}

/// Subscribe sessions `ia` and `ib` both ways with their K contacts:
/// each asks every contact whose subscription is not `both` yet (as its
/// roster says, so a rerun asks nothing) and approves every request, until
/// its roster shows `both` for all of them.
pub async fn set_up(
    shared: &Shared,
    a: Session,
    b: Session,
    (ia, ib): (usize, usize),
    contacts: usize,
) -> Result<(Session, Session), Failure> {
    let now = Instant::now();
    let (mut a, mut b) = (Member::new(a, ia, now), Member::new(b, ib, now));
    let sessions = shared.accounts.len();
    for m in [&mut a, &mut b] {
        m.missing = contacts_of(m.index, sessions, contacts);
        if let Some(roster) = m.session.roster.take() {
            m.roster_items(shared, &roster);
        }
        for &c in &m.missing {
            let to = format!("{}@{}", shared.accounts[c].username, shared.spec.domain);
            m.out
                .extend_from_slice(format!("<presence to='{to}' type='subscribe'/>").as_bytes());
        }
        flush(m).await?;
    }
    let mut timer = Timer::after(shared.spec.timeout * 4);
    while !a.missing.is_empty() || !b.missing.is_empty() {
        let (member, read) = match wait(&mut a, &mut b, &mut timer).await {
            Wake::A(read) => (&mut a, read),
            Wake::B(read) => (&mut b, read),
            Wake::Timer => return Err(Failure::new("presence setup", "timeout")),
        };
        for element in elements(member, read)? {
            member.handle_setup(shared, &element);
        }
        flush(member).await?;
    }
    Ok((a.session, b.session))
}

/// The measured phase: presence changes on an open-loop schedule, each
/// carrying its intended time in `<status/>`; every delivery from a
/// contact is timed.
pub async fn broadcast(
    shared: &Shared,
    a: Session,
    b: Session,
    schedule: Schedule,
    interval: Duration,
    index: usize,
) -> Result<(), Failure> {
    let (first_a, first_b) = shared.first_sends(schedule.start, interval, index);
    let mut a = Member::new(a, 2 * index, first_a);
    let mut b = Member::new(b, 2 * index + 1, first_b);
    let stop = schedule.end + schedule.drain;
    let mut timer = Timer::at(schedule.start);
    let mut sent = 0u64;
    let result = loop {
        let now = Instant::now();
        if now >= stop {
            break Ok(());
        }
        if now < schedule.end {
            let mut failed = None;
            for m in [&mut a, &mut b] {
                while m.next <= now {
                    let nanos = m.next.saturating_duration_since(shared.epoch).as_nanos();
                    let show = if m.away { "away" } else { "chat" };
                    m.away = !m.away;
                    m.out.extend_from_slice(
                        format!("<presence><show>{show}</show><status>{nanos}</status></presence>")
                            .as_bytes(),
                    );
                    m.next += interval;
                    sent += 1;
                }
                if let Err(f) = flush(m).await {
                    failed = Some(f);
                    break;
                }
            }
            if let Some(f) = failed {
                break Err(f);
            }
        }
        let wake_at = if now < schedule.end {
            a.next.min(b.next).min(schedule.end)
        } else {
            stop
        };
        timer.set_at(wake_at);
        let (member, read) = match wait(&mut a, &mut b, &mut timer).await {
            Wake::A(read) => (&mut a, read),
            Wake::B(read) => (&mut b, read),
            Wake::Timer => continue,
        };
        let elements = match elements(member, read) {
            Ok(e) => e,
            Err(f) => break Err(f),
        };
        let received = Instant::now();
        let (mut delivered, mut in_phase) = (0u64, 0u64);
        let received_nanos = received.saturating_duration_since(shared.epoch).as_nanos() as u64;
        let own = shared.accounts[member.index].username.as_str();
        for element in elements {
            if element.starts_with("<iq") && attr(&element, "type") == Some("set") {
                let id = attr(&element, "id").unwrap_or_default();
                member
                    .out
                    .extend_from_slice(format!("<iq type='result' id='{id}'/>").as_bytes());
                continue;
            }
            let from_self = attr(&element, "from")
                .and_then(|f| f.split('@').next())
                .is_some_and(|local| local == own);
            if !element.starts_with("<presence") || from_self {
                continue;
            }
            let Some(stamp) = session::between(&element, "<status>", "</status>")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            crate::workload::record_latency(received_nanos.saturating_sub(stamp) / 1000);
            delivered += 1;
            if received <= schedule.end {
                in_phase += 1;
            }
        }
        shared.delivered.fetch_add(delivered, Ordering::Relaxed);
        shared
            .delivered_in_phase
            .fetch_add(in_phase, Ordering::Relaxed);
    };
    shared.sent.fetch_add(sent, Ordering::Relaxed);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_reads_either_quote_from_the_start_tag_only() {
        let e = "<presence from=\"u1@localhost/load\" type='subscribe'><x type='no'/></presence>";
        assert_eq!(attr(e, "from"), Some("u1@localhost/load"));
        assert_eq!(attr(e, "type"), Some("subscribe"));
        assert_eq!(attr("<presence/>", "type"), None);
    }

    #[test]
    fn contacts_are_ring_neighbours_on_both_sides() {
        assert_eq!(contacts_of(9, 10, 4), HashSet::from([0, 1, 8, 7]));
    }
}
