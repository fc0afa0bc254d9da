//! Limits against hostile or broken clients, all on the injected clock:
//! connection counts, read rate, authentication failures per address, and
//! the timeouts for streams that never open or stall mid-stanza.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Operator-tunable limits. Every one has a safe default; 0 for a count or
/// a rate means "no limit".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections in total; more are refused with
    /// `<policy-violation/>`.
    pub max_connections: usize,
    /// Open connections from one address prefix (see `admission`); 0,
    /// the default, for no cap, as Prosody and ejabberd.
    pub max_connections_per_address: usize,
    /// Connections from one prefix that have not authenticated yet.
    pub max_unauthenticated_per_address: usize,
    /// New connections per second from one prefix, and how many may come
    /// at once; more are refused with `<policy-violation/>`.
    pub connection_rate_per_address: u32,
    pub connection_burst_per_address: u32,
    /// Sustained bytes per second read from one connection. Input past it
    /// waits (the client is slowed); past `read_burst` waiting, the
    /// client is disconnected with `<policy-violation/>`.
    pub read_rate: u64,
    /// Bytes a connection may send at once, and may have waiting.
    pub read_burst: u64,
    /// Failed logins from one address (an IPv6 /64) within
    /// `auth_failure_window`, whatever the account, before further
    /// attempts from it get `<temporary-auth-failure/>` until the window
    /// passes: a ceiling against password spraying, high enough for a
    /// NAT full of people who mistype.
    pub auth_failures_per_address: u32,
    /// Failed logins for one account from one address within
    /// `auth_failure_window` before that account gets
    /// `<temporary-auth-failure/>` from that address; other accounts from
    /// the same address log in as before.
    pub auth_failures_per_account: u32,
    pub auth_failure_window: Duration,
    /// Time from accept to the client's stream header.
    pub header_timeout: Duration,
    /// Time a started stanza may take to complete.
    pub stanza_timeout: Duration,
    /// Time a TLS handshake (STARTTLS or direct TLS) may take; a client
    /// that stalls mid-handshake is then disconnected.
    pub tls_handshake_timeout: Duration,
    /// Time a closed connection may take to drain what was queued before
    /// its close; then it is cut. Until its socket is closed it counts
    /// against the connection limits.
    pub close_drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Half this machine class's 20,000 descriptors per process.
            max_connections: 10_000,
            max_connections_per_address: 0,
            // A login takes milliseconds; hundreds of strangers logging
            // in at the same instant from one address is a flood.
            max_unauthenticated_per_address: 256,
            // Enough for a NAT full of clients coming back after a
            // restart (500 at once, then 50 a second), not for a flood.
            connection_rate_per_address: 50,
            connection_burst_per_address: 500,
            // Generous for people (a chat client sends a few KiB/s at most;
            // history sync and file transfer go elsewhere), small for floods.
            read_rate: 1024 * 1024,
            read_burst: 4 * 1024 * 1024,
            auth_failures_per_address: 100,
            auth_failures_per_account: 10,
            auth_failure_window: Duration::from_secs(300),
            header_timeout: Duration::from_secs(30),
            stanza_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(30),
            close_drain_timeout: Duration::from_secs(10),
        }
    }
}

/// A token bucket on the injected clock: `rate` bytes per second, holding
/// at most `burst`.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    rate: u64,
    burst: u64,
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u64, burst: u64, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn unlimited(&self) -> bool {
        self.rate == 0
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        let earned = (elapsed.as_micros() * u128::from(self.rate) / 1_000_000) as u64;
        if earned > 0 {
            self.tokens = (self.tokens + earned).min(self.burst);
            self.last = now;
        }
    }

    /// How many of `wanted` bytes may be processed now; they are spent.
    pub fn take(&mut self, wanted: usize, now: Instant) -> usize {
        if self.unlimited() {
            return wanted;
        }
        self.refill(now);
        let granted = (wanted as u64).min(self.tokens);
        self.tokens -= granted;
        granted as usize
    }

    /// Whether the bucket would be full now (holding `burst`).
    pub fn is_full(&self, burst: usize, now: Instant) -> bool {
        if self.unlimited() {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last);
        let earned = (elapsed.as_micros() * u128::from(self.rate) / 1_000_000) as u64;
        self.tokens.saturating_add(earned) >= burst as u64
    }

    /// When at least `wanted` bytes (or a full bucket) will be available.
    pub fn ready_at(&self, wanted: usize, now: Instant) -> Instant {
        let needed = (wanted as u64)
            .min(self.burst)
            .saturating_sub(self.tokens)
            .max(1);
        let micros = needed.saturating_mul(1_000_000).div_ceil(self.rate.max(1));
        now + Duration::from_micros(micros)
    }
}

/// Where a client connects from, for counting failed logins: an IPv4
/// address, or an IPv6 /64 (what one subscriber gets; an attacker holding
/// one would otherwise have 2^64 addresses). IPv4-mapped IPv6 addresses
/// count as the IPv4 address they carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Prefix(IpAddr);

impl Prefix {
    /// What one site holds: an IPv4 address, or an IPv6 /48 (a site's
    /// usual allocation). Coarser than [`Prefix::of`], for what one
    /// site should not do many times over (create accounts).
    pub fn site_of(peer: IpAddr) -> Prefix {
        match Prefix::of(peer) {
            Prefix(IpAddr::V6(v6)) => {
                let bits = u128::from(v6) & !((1u128 << 80) - 1);
                Prefix(IpAddr::V6(bits.into()))
            }
            v4 => v4,
        }
    }

    pub fn of(peer: IpAddr) -> Prefix {
        match peer {
            IpAddr::V4(v4) => Prefix(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Prefix(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Prefix(IpAddr::V6(bits.into()))
                }
            },
        }
    }
}

/// Failures counted in one fixed window.
#[derive(Clone, Copy, Debug)]
struct Window {
    failures: u32,
    since: Instant,
}

impl Window {
    fn current(&self, limits: &Limits, now: Instant) -> bool {
        self.within(limits.auth_failure_window, now)
    }

    fn within(&self, window: Duration, now: Instant) -> bool {
        now.saturating_duration_since(self.since) < window
    }
}

/// Most windows each table remembers at once (prefixes, or (prefix,
/// account) pairs: about 64 bytes each); past it, new keys are not counted
/// until the next sweep frees room, and the per-prefix ceiling still
/// holds for the prefixes already counted.
const MAX_WINDOWS: usize = 100_000;

/// Sweep passed windows after this many new connections.
const EXPIRE_EVERY: u32 = 1024;

/// An account as the throttle keys it: 16 bytes of a hash keyed with the
/// server secret, whatever the length of the name a stranger tried.
type AccountKey = [u8; 16];

fn account_key(secret: &[u8; 32], account: &str) -> AccountKey {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(secret)
        .chain_update(account.as_bytes())
        .finalize();
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Failed logins, in fixed windows, per (address prefix, account) and per
/// prefix. Counting per account keeps one attacked account from locking
/// out everyone else behind the same NAT or carrier gateway; the higher
/// per-prefix ceiling stops one source from trying one password on many
/// accounts (password spraying). Per account, an attempt counts from the
/// moment its password is tried, not when the answer comes, so that
/// attempts made in parallel on many streams count too (one that succeeds
/// is taken back); per prefix, failures count when they are known, so that
/// a crowd behind one NAT logging in at once after a restart is not
/// refused for being many.
#[derive(Default, Debug)]
pub(crate) struct AuthThrottle {
    per_prefix: HashMap<Prefix, Window>,
    per_account: HashMap<(Prefix, AccountKey), Window>,
    since_expiry: u32,
    /// Accounts created in-band (XEP-0077), per site (see
    /// [`Prefix::site_of`]), in windows of `registration_window`.
    registrations: HashMap<Prefix, Window>,
    registration_window: Duration,
    registrations_swept: Option<Instant>,
}

impl AuthThrottle {
    /// Whether `peer` may start an authentication now.
    pub fn allows(&mut self, peer: IpAddr, limits: &Limits, now: Instant) -> bool {
        let limit = limits.auth_failures_per_address;
        Self::below(self.per_prefix.get(&Prefix::of(peer)), limit, limits, now)
    }

    /// `peer` is about to try `account`'s password: whether it may, and if
    /// so the attempt counts as a failure until [`AuthThrottle::succeeded`].
    pub fn attempt(
        &mut self,
        peer: IpAddr,
        account: &str,
        secret: &[u8; 32],
        limits: &Limits,
        now: Instant,
    ) -> bool {
        let key = (Prefix::of(peer), account_key(secret, account));
        let limit = limits.auth_failures_per_account;
        let allowed = Self::below(self.per_account.get(&key), limit, limits, now)
            && self.allows(peer, limits, now);
        if allowed {
            self.count(key, limits, now);
        }
        allowed
    }

    /// The attempt on `account` from `peer` succeeded: it is not a failure.
    pub fn succeeded(&mut self, peer: IpAddr, account: &str, secret: &[u8; 32]) {
        let key = (Prefix::of(peer), account_key(secret, account));
        if let Some(window) = self.per_account.get_mut(&key) {
            window.failures = window.failures.saturating_sub(1);
        }
    }

    fn below(window: Option<&Window>, limit: u32, limits: &Limits, now: Instant) -> bool {
        limit == 0 || window.is_none_or(|w| !w.current(limits, now) || w.failures < limit)
    }

    /// A login from `peer` failed before any account's password was
    /// tried (a name that is no JID, say): it counts for the prefix.
    pub fn record_failure(&mut self, peer: IpAddr, limits: &Limits, now: Instant) {
        Self::tick(&mut self.per_prefix, Prefix::of(peer), limits, now);
    }

    fn count(&mut self, key: (Prefix, AccountKey), limits: &Limits, now: Instant) {
        Self::tick(&mut self.per_account, key, limits, now);
    }

    /// One more failure in `key`'s window (a fresh one if it passed). A
    /// table at [`MAX_WINDOWS`] takes no new keys: a stranger with many
    /// addresses or names cannot grow it further.
    fn tick<K: std::hash::Hash + Eq>(
        table: &mut HashMap<K, Window>,
        key: K,
        limits: &Limits,
        now: Instant,
    ) {
        if table.len() >= MAX_WINDOWS && !table.contains_key(&key) {
            return;
        }
        let window = table.entry(key).or_insert(Window {
            failures: 0,
            since: now,
        });
        if !window.current(limits, now) {
            *window = Window {
                failures: 0,
                since: now,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }

    /// Whether `peer` may create another account now (at most `max` per
    /// `window` from its site, 0 for no limit); if so, it counts until
    /// [`AuthThrottle::registration_refused`] takes it back.
    pub fn register(&mut self, peer: IpAddr, max: u32, window: Duration, now: Instant) -> bool {
        if max == 0 {
            return true;
        }
        self.registration_window = window;
        let prefix = Prefix::site_of(peer);
        if self.registrations.len() >= MAX_WINDOWS && !self.registrations.contains_key(&prefix) {
            // Full: passed windows go, at most once a second.
            let due = self
                .registrations_swept
                .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1));
            if due {
                self.registrations_swept = Some(now);
                self.registrations.retain(|_, w| w.within(window, now));
            }
            if self.registrations.len() >= MAX_WINDOWS {
                // More sites than the table holds at once: none more.
                return false;
            }
        }
        let w = self.registrations.entry(prefix).or_insert(Window {
            failures: 0,
            since: now,
        });
        if !w.within(window, now) {
            *w = Window {
                failures: 0,
                since: now,
            };
        }
        if w.failures >= max {
            return false;
        }
        w.failures += 1;
        true
    }

    /// The registration from `peer` created nothing (the name was
    /// taken): it does not count, so that one person trying names cannot
    /// use up what a shared address may register.
    pub fn registration_refused(&mut self, peer: IpAddr) {
        if let Some(w) = self.registrations.get_mut(&Prefix::site_of(peer)) {
            w.failures = w.failures.saturating_sub(1);
        }
    }

    /// Forget windows that have passed, so the tables stay small: a sweep
    /// every [`EXPIRE_EVERY`] calls, never one per connection.
    pub fn expire(&mut self, limits: &Limits, now: Instant) {
        self.since_expiry += 1;
        if self.since_expiry < EXPIRE_EVERY {
            return;
        }
        self.since_expiry = 0;
        self.per_prefix.retain(|_, w| w.current(limits, now));
        self.per_account.retain(|_, w| w.current(limits, now));
        let window = self.registration_window;
        self.registrations.retain(|_, w| w.within(window, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_count_per_ipv6_site_not_per_subnet() {
        let t0 = Instant::now();
        let mut t = AuthThrottle::default();
        let hour = Duration::from_secs(3600);
        let a: IpAddr = "2001:db8:1:1::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:2::1".parse().unwrap();
        assert!(t.register(a, 1, hour, t0));
        // Another /64 of the same /48.
        assert!(!t.register(b, 1, hour, t0));
        assert!(t.register(elsewhere, 1, hour, t0));
        assert!(t.register(b, 1, hour, t0 + hour));
    }

    #[test]
    fn bucket_grants_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 2000, t0);
        assert_eq!(b.take(5000, t0), 2000);
        assert_eq!(b.take(5000, t0), 0);
        assert_eq!(b.take(5000, t0 + Duration::from_millis(500)), 500);
        assert_eq!(
            b.ready_at(100, t0 + Duration::from_millis(500)),
            t0 + Duration::from_millis(600)
        );
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0, 0, t0);
        assert_eq!(b.take(1 << 30, t0), 1 << 30);
    }

    const SECRET: [u8; 32] = [7; 32];

    /// Two failures per account; a throttle, a peer and a start time.
    fn two_per_account() -> (Limits, AuthThrottle, IpAddr, Instant) {
        let limits = Limits {
            auth_failures_per_account: 2,
            ..Limits::default()
        };
        let peer = "127.0.0.9".parse().unwrap();
        (limits, AuthThrottle::default(), peer, Instant::now())
    }

    #[test]
    fn throttle_blocks_an_account_from_an_address_until_the_window_passes() {
        let (limits, mut t, peer, t0) = two_per_account();
        let attempt = |t: &mut AuthThrottle, peer: IpAddr, user: &str, at| {
            t.attempt(peer, user, &SECRET, &limits, at)
        };
        assert!(attempt(&mut t, peer, "juliet", t0));
        assert!(attempt(&mut t, peer, "juliet", t0));
        assert!(!attempt(&mut t, peer, "juliet", t0));
        assert!(attempt(&mut t, peer, "romeo", t0));
        assert!(attempt(&mut t, "127.0.0.10".parse().unwrap(), "juliet", t0));
        assert!(attempt(
            &mut t,
            peer,
            "juliet",
            t0 + limits.auth_failure_window
        ));
    }

    #[test]
    fn attempts_in_parallel_count_before_their_answers_and_a_success_is_taken_back() {
        let (limits, mut t, peer, t0) = two_per_account();
        assert!(t.attempt(peer, "juliet", &SECRET, &limits, t0));
        assert!(t.attempt(peer, "juliet", &SECRET, &limits, t0));
        t.succeeded(peer, "juliet", &SECRET);
        assert!(t.attempt(peer, "juliet", &SECRET, &limits, t0));
        assert!(!t.attempt(peer, "juliet", &SECRET, &limits, t0));
    }

    #[test]
    fn throttle_blocks_an_address_past_its_ceiling_whatever_the_account() {
        let limits = Limits {
            auth_failures_per_address: 3,
            ..Limits::default()
        };
        let t0 = Instant::now();
        let peer: IpAddr = "127.0.0.9".parse().unwrap();
        let mut t = AuthThrottle::default();
        for _ in 0..3 {
            t.record_failure(peer, &limits, t0);
        }
        assert!(!t.allows(peer, &limits, t0));
        assert!(!t.attempt(peer, "d", &SECRET, &limits, t0));
    }

    #[test]
    fn the_failure_tables_take_no_new_keys_when_full() {
        let limits = Limits::default();
        let t0 = Instant::now();
        let mut t = AuthThrottle::default();
        for i in 0..MAX_WINDOWS as u32 {
            t.record_failure(IpAddr::V4(i.into()), &limits, t0);
        }
        t.record_failure("255.255.255.255".parse().unwrap(), &limits, t0);
        assert_eq!(t.per_prefix.len(), MAX_WINDOWS);
    }

    #[test]
    fn prefixes_are_ipv6_slash_64_and_unmapped_ipv4() {
        let p = |s: &str| Prefix::of(s.parse().unwrap());
        assert_eq!(p("2001:db8:1:2::1"), p("2001:db8:1:2:ffff::9"));
        assert_ne!(p("2001:db8:1:2::1"), p("2001:db8:1:3::1"));
        assert_eq!(p("::ffff:192.0.2.7"), p("192.0.2.7"));
        assert_ne!(p("192.0.2.7"), p("192.0.2.8"));
    }
}
