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
    /// Open connections from one IP address.
    pub max_connections_per_address: usize,
    /// Sustained bytes per second read from one connection. Input past it
    /// waits (the client is slowed); past `read_burst` waiting, the
    /// client is disconnected with `<policy-violation/>`.
    pub read_rate: u64,
    /// Bytes a connection may send at once, and may have waiting.
    pub read_burst: u64,
    /// Failed authentications from one address within
    /// `auth_failure_window` before further attempts from it get
    /// `<temporary-auth-failure/>` until the window passes.
    pub auth_failures_per_address: u32,
    pub auth_failure_window: Duration,
    /// Time from accept to the client's stream header.
    pub header_timeout: Duration,
    /// Time a started stanza may take to complete.
    pub stanza_timeout: Duration,
    /// Time a TLS handshake (STARTTLS or direct TLS) may take; a client
    /// that stalls mid-handshake is then disconnected.
    pub tls_handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Half this machine class's 20,000 descriptors per process.
            max_connections: 10_000,
            max_connections_per_address: 256,
            // Generous for people (a chat client sends a few KiB/s at most;
            // history sync and file transfer go elsewhere), small for floods.
            read_rate: 1024 * 1024,
            read_burst: 4 * 1024 * 1024,
            auth_failures_per_address: 20,
            auth_failure_window: Duration::from_secs(300),
            header_timeout: Duration::from_secs(30),
            stanza_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(30),
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

/// Authentication failures per source address, in fixed windows.
#[derive(Default, Debug)]
pub(crate) struct AuthThrottle {
    failures: HashMap<IpAddr, (u32, Instant)>,
}

impl AuthThrottle {
    /// Whether `peer` may try to authenticate now.
    pub fn allows(&mut self, peer: IpAddr, limits: &Limits, now: Instant) -> bool {
        if limits.auth_failures_per_address == 0 {
            return true;
        }
        match self.failures.get(&peer) {
            Some((_, since))
                if now.saturating_duration_since(*since) >= limits.auth_failure_window =>
            {
                self.failures.remove(&peer);
                true
            }
            Some((count, _)) => *count < limits.auth_failures_per_address,
            None => true,
        }
    }

    pub fn record_failure(&mut self, peer: IpAddr, now: Instant) {
        let entry = self.failures.entry(peer).or_insert((0, now));
        entry.0 += 1;
    }

    /// Forget windows that have passed, so the table stays small.
    pub fn expire(&mut self, limits: &Limits, now: Instant) {
        self.failures.retain(|_, (_, since)| {
            now.saturating_duration_since(*since) < limits.auth_failure_window
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn throttle_blocks_an_address_until_the_window_passes() {
        let limits = Limits {
            auth_failures_per_address: 2,
            ..Limits::default()
        };
        let t0 = Instant::now();
        let peer: IpAddr = "127.0.0.9".parse().unwrap();
        let mut t = AuthThrottle::default();
        t.record_failure(peer, t0);
        assert!(t.allows(peer, &limits, t0));
        t.record_failure(peer, t0);
        assert!(!t.allows(peer, &limits, t0));
        assert!(t.allows("127.0.0.10".parse().unwrap(), &limits, t0));
        assert!(t.allows(peer, &limits, t0 + limits.auth_failure_window));
    }
}
