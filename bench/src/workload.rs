//! What the sessions do once logged in, and the counters they keep.
//!
//! Sessions come in pairs, A and B, driven by one task so that the window
//! between them needs no locking. Each message's body carries its direction
//! and the time it was meant to be sent, so latency is measured on receipt
//! whichever connection it comes back on (a trivial echoing peer returns it
//! to its sender).

use crate::session::{self, Account, Failure, Item, LoginSpec, Session};
use async_io::Timer;
use hdrhistogram::Histogram;
use smol::future::FutureExt as _;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Workload {
    /// Log in, then close.
    Login,
    /// Hold the sessions for the duration.
    Idle,
    /// Closed loop: W messages in flight each way within every pair.
    Pairs { window: u32 },
    /// Open loop: every session sends at a fixed interval, whatever the
    /// server's pace, so latency includes any queueing the server causes.
    Rate { interval: Duration },
    /// Sessions with `contacts` subscribed contacts each change presence
    /// every `interval` (open loop).
    Presence { interval: Duration, contacts: usize },
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Login => "login",
            Workload::Idle => "idle",
            Workload::Pairs { .. } => "pairs",
            Workload::Rate { .. } => "rate",
            Workload::Presence { .. } => "presence",
        }
    }
}

/// When the measured phase runs; set once every session logged in.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub start: Instant,
    pub end: Instant,
    /// How long after `end` messages still in flight are waited for.
    pub drain: Duration,
}

/// Everything the tasks of every thread share.
pub struct Shared {
    pub spec: LoginSpec,
    pub accounts: Vec<Account>,
    /// Session index by username.
    pub by_username: std::collections::HashMap<String, usize>,
    pub sources: Vec<IpAddr>,
    pub workload: Workload,
    pub login_gate: smol::lock::Semaphore,
    pub epoch: Instant,
    pub schedule: OnceLock<Schedule>,
    /// Closed (its sender dropped) when the measured phase begins.
    pub go: smol::channel::Receiver<()>,
    pub logins: AtomicU64,
    /// When the last successful login ended, in ns after `epoch`.
    pub last_login_end: AtomicU64,
    pub failures: AtomicU64,
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    /// Delivered within the measured phase (the rest arrived in the drain).
    pub delivered_in_phase: AtomicU64,
    /// Pairs whose setup (subscriptions, for presence) is over.
    pub pairs_ready: AtomicU64,
    pub errors: Mutex<BTreeMap<String, u64>>,
    pub login_latency: Mutex<Histogram<u64>>,
    pub message_latency: Mutex<Histogram<u64>>,
}

/// Latencies in microseconds, from 1 µs to 10 minutes, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

thread_local! {
    static MESSAGE_LATENCY: RefCell<Histogram<u64>> = RefCell::new(histogram());
}

/// Record one delivery's latency in this thread's histogram.
pub fn record_latency(micros: u64) {
    MESSAGE_LATENCY.with(|h| h.borrow_mut().saturating_record(micros));
}

impl Shared {
    pub fn error(&self, failure: &Failure) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        *errors.entry(failure.to_string()).or_default() += 1;
    }

    /// When pair `index`'s two sessions first send in an open loop: the
    /// pairs' A sessions spread evenly over the first half of an interval,
    /// their B sessions over the second, so that the offered load is even.
    pub fn first_sends(
        &self,
        start: Instant,
        interval: Duration,
        index: usize,
    ) -> (Instant, Instant) {
        let pairs = self.accounts.len().div_ceil(2).max(1) as u32;
        let offset = interval * (index as u32 % pairs) / pairs / 2;
        (start + offset, start + offset + interval / 2)
    }

    /// The session index of an address (`user@domain/resource`), if it is
    /// one of ours.
    pub fn index_of(&self, jid: &str) -> Option<usize> {
        let local = jid.split('@').next()?;
        self.by_username.get(local).copied()
    }

    /// Fold this thread's message latencies into the shared histogram.
    pub fn merge_thread_latencies(&self) {
        MESSAGE_LATENCY.with(|h| {
            let mut shared = self
                .message_latency
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let _ = shared.add(&*h.borrow());
        });
    }

    async fn login(&self, index: usize) -> Option<Session> {
        let _permit = self.login_gate.acquire().await;
        let source = (!self.sources.is_empty()).then(|| self.sources[index % self.sources.len()]);
        let started = Instant::now();
        let outcome = session::login(&self.spec, &self.accounts[index], source, "load").await;
        match outcome {
            Ok(session) => {
                // Successes only: one login timing out must not stretch
                // the phase the login rate is measured over.
                let ended = self.epoch.elapsed().as_nanos() as u64;
                self.last_login_end.fetch_max(ended, Ordering::Relaxed);
                let micros = started.elapsed().as_micros() as u64;
                self.login_latency
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .saturating_record(micros);
                self.logins.fetch_add(1, Ordering::Relaxed);
                Some(session)
            }
            Err(failure) => {
                self.error(&failure);
                self.failures.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// The whole life of pair `index`: sessions `2 index` and `2 index + 1`.
pub async fn pair(shared: &Shared, index: usize) {
    let (mut a, mut b) =
        smol::future::zip(shared.login(2 * index), shared.login(2 * index + 1)).await;
    if let Workload::Presence { contacts, .. } = shared.workload {
        if let (Some(sa), Some(sb)) = (a.take(), b.take()) {
            let indexes = (2 * index, 2 * index + 1);
            match crate::presence::set_up(shared, sa, sb, indexes, contacts).await {
                Ok((sa, sb)) => (a, b) = (Some(sa), Some(sb)),
                Err(failure) => shared.error(&failure),
            }
        }
    }
    shared.pairs_ready.fetch_add(1, Ordering::Relaxed);
    // The sender is dropped, never used: recv() fails when the phase begins.
    let _ = shared.go.recv().await;
    let Some(schedule) = shared.schedule.get().copied() else {
        return;
    };
    let (Some(a), Some(b)) = (a, b) else {
        return;
    };
    let outcome = match shared.workload {
        Workload::Login => Ok(()),
        Workload::Presence { interval, .. } => {
            crate::presence::broadcast(shared, a, b, schedule, interval, index).await
        }
        Workload::Idle => idle(a, b, schedule.end).await,
        Workload::Pairs { .. } | Workload::Rate { .. } => {
            Exchange::new(shared, a, b, schedule, index).run().await
        }
    };
    if let Err(failure) = outcome {
        shared.error(&failure);
    }
}

async fn idle(mut a: Session, mut b: Session, end: Instant) -> Result<(), Failure> {
    let mut buffer_a = [0u8; 256];
    let mut buffer_b = [0u8; 256];
    loop {
        let read = async { a.stream.read(&mut buffer_a).await }
            .or(async { b.stream.read(&mut buffer_b).await })
            .or(async {
                Timer::at(end).await;
                Ok(usize::MAX)
            })
            .await;
        match read {
            Ok(usize::MAX) => return Ok(()),
            Ok(0) => return Err(Failure::new("idle", "connection closed")),
            Ok(_) => {}
            Err(e) => return Err(Failure::new("idle", format!("{:?}", e.kind()))),
        }
    }
}

/// One direction of a pair: what its sender sends and what is in flight.
struct Direction {
    /// `<message to='…' type='chat'><body>a ` (or `b `).
    prefix: Vec<u8>,
    in_flight: u64,
    /// The open loop's next intended send time.
    next: Instant,
    outgoing: Vec<u8>,
}

const SUFFIX: &[u8] = b"</body></message>";

impl Direction {
    fn new(to: &str, tag: char, next: Instant) -> Direction {
        Direction {
            prefix: format!("<message to='{to}' type='chat'><body>{tag} ").into_bytes(),
            in_flight: 0,
            next,
            outgoing: Vec::new(),
        }
    }

    fn push(&mut self, epoch: Instant, intended: Instant) {
        self.outgoing.extend_from_slice(&self.prefix);
        let nanos = intended.saturating_duration_since(epoch).as_nanos() as u64;
        self.outgoing
            .extend_from_slice(itoa_u64(nanos, &mut [0; 20]).as_bytes());
        self.outgoing.extend_from_slice(SUFFIX);
        self.in_flight += 1;
    }
}

fn itoa_u64(mut n: u64, buffer: &mut [u8; 20]) -> &str {
    let mut i = buffer.len();
    loop {
        i -= 1;
        buffer[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buffer[i..]).unwrap_or("0")
}

struct Exchange<'s> {
    shared: &'s Shared,
    schedule: Schedule,
    a: Session,
    b: Session,
    /// A to B, then B to A.
    ab: Direction,
    ba: Direction,
    sent: u64,
}

/// What woke a pair's task: a read on A or B, or its timer.
pub enum Wake {
    A(std::io::Result<usize>),
    B(std::io::Result<usize>),
    Timer,
}

/// Read whichever of the pair's sessions has input, or wake with `timer`.
/// Reads are cancel-safe ([`session::Reader::read_from`]), so the loser of
/// the race loses nothing.
pub async fn next_wake(a: &mut Session, b: &mut Session, timer: &mut Timer) -> Wake {
    async { Wake::A(a.reader.read_from(&mut a.stream).await) }
        .or(async { Wake::B(b.reader.read_from(&mut b.stream).await) })
        .or(async {
            timer.await;
            Wake::Timer
        })
        .await
}

impl<'s> Exchange<'s> {
    fn new(shared: &'s Shared, a: Session, b: Session, schedule: Schedule, index: usize) -> Self {
        let (first_a, first_b) = match shared.workload {
            Workload::Rate { interval } => shared.first_sends(schedule.start, interval, index),
            _ => (schedule.start, schedule.start),
        };
        let ab = Direction::new(&b.jid, 'a', first_a);
        let ba = Direction::new(&a.jid, 'b', first_b);
        Exchange {
            shared,
            schedule,
            a,
            b,
            ab,
            ba,
            sent: 0,
        }
    }

    async fn run(mut self) -> Result<(), Failure> {
        let result = self.exchange().await;
        self.shared.sent.fetch_add(self.sent, Ordering::Relaxed);
        result
    }

    async fn exchange(&mut self) -> Result<(), Failure> {
        let epoch = self.shared.epoch;
        let stop = self.schedule.end + self.schedule.drain;
        let mut timer = Timer::at(self.schedule.end);
        let mut timer_at = self.schedule.end;
        loop {
            let now = Instant::now();
            let sending = now < self.schedule.end;
            if !sending && (now >= stop || self.ab.in_flight + self.ba.in_flight == 0) {
                return Ok(());
            }
            let wake_at = if sending {
                self.top_up(now, epoch);
                self.flush().await?;
                match self.shared.workload {
                    Workload::Rate { .. } => self.ab.next.min(self.ba.next).min(self.schedule.end),
                    _ => self.schedule.end,
                }
            } else {
                stop
            };
            if wake_at != timer_at {
                timer.set_at(wake_at);
                timer_at = wake_at;
            }
            match next_wake(&mut self.a, &mut self.b, &mut timer).await {
                Wake::A(read) => self.received(read, true)?,
                Wake::B(read) => self.received(read, false)?,
                Wake::Timer => timer_at = Instant::now() - Duration::from_secs(1),
            }
        }
    }

    /// Queue what may be sent now: the window's free places (closed loop)
    /// or every message whose time has come (open loop).
    fn top_up(&mut self, now: Instant, epoch: Instant) {
        for direction in [&mut self.ab, &mut self.ba] {
            match self.shared.workload {
                Workload::Pairs { window } => {
                    while direction.in_flight < u64::from(window) {
                        direction.push(epoch, now);
                        self.sent += 1;
                    }
                }
                Workload::Rate { interval } => {
                    while direction.next <= now {
                        let intended = direction.next;
                        direction.push(epoch, intended);
                        direction.next += interval;
                        self.sent += 1;
                    }
                }
                Workload::Login | Workload::Idle | Workload::Presence { .. } => {}
            }
        }
    }

    async fn flush(&mut self) -> Result<(), Failure> {
        for (direction, session) in [(&mut self.ab, &mut self.a), (&mut self.ba, &mut self.b)] {
            if !direction.outgoing.is_empty() {
                session
                    .send(&direction.outgoing)
                    .await
                    .map_err(|e| Failure::new("send", format!("{:?}", e.kind())))?;
                direction.outgoing.clear();
            }
        }
        Ok(())
    }

    fn received(&mut self, read: std::io::Result<usize>, on_a: bool) -> Result<(), Failure> {
        match read {
            Ok(0) => return Err(Failure::new("receive", "connection closed")),
            Ok(_) => {}
            Err(e) => return Err(Failure::new("receive", format!("{:?}", e.kind()))),
        }
        let now = Instant::now();
        let now_nanos = now.saturating_duration_since(self.shared.epoch).as_nanos() as u64;
        let session = if on_a { &mut self.a } else { &mut self.b };
        let (mut delivered, mut in_phase) = (0, 0);
        let mut refused = Vec::new();
        MESSAGE_LATENCY.with(|latency| -> Result<(), Failure> {
            let mut latency = latency.borrow_mut();
            while let Some(item) = session.reader.pop() {
                let element = match item {
                    Item::Element(e) => e,
                    Item::Header => continue,
                    Item::End => return Err(Failure::new("receive", "stream closed")),
                };
                if element.starts_with(b"<stream:error") {
                    let text = String::from_utf8_lossy(element);
                    return Err(Failure::new("receive", session::condition(&text)));
                }
                if !element.starts_with(b"<message") {
                    continue;
                }
                if is_error(element) {
                    // One of this session's messages bounced: its place
                    // in the window is free, and it counts as an error,
                    // never as delivered.
                    let direction = if on_a { &mut self.ab } else { &mut self.ba };
                    direction.in_flight = direction.in_flight.saturating_sub(1);
                    let text = String::from_utf8_lossy(element);
                    refused.push(format!("message error {}", error_condition(&text)));
                    continue;
                }
                let Some((tag, sent_nanos)) = body_stamp(element) else {
                    continue;
                };
                let direction = if tag == b'a' {
                    &mut self.ab
                } else {
                    &mut self.ba
                };
                direction.in_flight = direction.in_flight.saturating_sub(1);
                latency.saturating_record(now_nanos.saturating_sub(sent_nanos) / 1000);
                delivered += 1;
                if now <= self.schedule.end {
                    in_phase += 1;
                }
            }
            Ok(())
        })?;
        for failure in refused {
            self.shared.error(&Failure::new("message", failure));
        }
        self.shared
            .delivered
            .fetch_add(delivered, Ordering::Relaxed);
        self.shared
            .delivered_in_phase
            .fetch_add(in_phase, Ordering::Relaxed);
        Ok(())
    }
}

/// The direction tag and send time in `<body>a 12345</body>`.
/// Whether a received `<message>` is an error bounced back (its start
/// tag says `type='error'`).
fn is_error(message: &[u8]) -> bool {
    let end = message
        .iter()
        .position(|&b| b == b'>')
        .unwrap_or(message.len());
    let tag = &message[..end];
    tag.windows(12)
        .any(|w| w == b"type='error'" || w == b"type=\"error\"")
}

/// The defined condition of a bounced stanza, e.g. `resource-constraint`.
fn error_condition(stanza: &str) -> &str {
    stanza
        .split('<')
        .filter_map(|tag| tag.split([' ', '/', '>']).next())
        .find(|name| !name.is_empty() && !matches!(*name, "message" | "error" | "body" | "text"))
        .unwrap_or("unknown")
}

fn body_stamp(message: &[u8]) -> Option<(u8, u64)> {
    let start = message.windows(6).position(|w| w == b"<body>")? + 6;
    let body = &message[start..];
    let tag = *body.first()?;
    let mut nanos: u64 = 0;
    for &digit in body.get(2..)? {
        if !digit.is_ascii_digit() {
            break;
        }
        nanos = nanos
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    Some((tag, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounced_message_is_told_from_a_delivered_one_with_its_condition() {
        let bounced = "<message type='error' to='a@l/r' id='7'><error type='wait'>\
            <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>";
        assert!(is_error(bounced.as_bytes()));
        assert_eq!(error_condition(bounced), "resource-constraint");
        let chat = b"<message type='chat' to='a@l/r'><body>a 1 type='error'</body></message>";
        assert!(!is_error(chat));
    }

    #[test]
    fn body_stamp_reads_direction_and_time() {
        assert_eq!(
            body_stamp(b"<message from='x' to='y'><body>b 12345</body></message>"),
            Some((b'b', 12345))
        );
        assert_eq!(body_stamp(b"<message><x/></message>"), None);
    }

    #[test]
    fn message_carries_its_intended_time() {
        let epoch = Instant::now();
        let mut d = Direction::new("u1@localhost/load", 'a', epoch);
        d.push(epoch, epoch + Duration::from_micros(42));
        assert_eq!(
            d.outgoing,
            b"<message to='u1@localhost/load' type='chat'><body>a 42000</body></message>"
        );
        assert_eq!(d.in_flight, 1);
    }
}
