//! Who may open a connection: a total cap, and per address prefix (an IPv4
//! address or an IPv6 /64, see [`Prefix`]) a rate of new connections and a
//! cap on connections not yet authenticated.
//!
//! Concurrent authenticated connections from one prefix are not capped by
//! default: a carrier-grade NAT or a company gateway puts thousands of
//! people behind one address, and neither Prosody nor ejabberd caps them.
//! What a flooder from one prefix needs, and a crowd behind a NAT does not,
//! is many connections opened fast or many left unauthenticated.

use crate::limits::{Limits, Prefix, TokenBucket};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// What one prefix holds.
#[derive(Debug)]
struct Seen {
    open: usize,
    unauthenticated: usize,
    /// New connections, as a bucket of one token per connection.
    arrivals: TokenBucket,
}

/// Sweep forgotten prefixes after this many admissions.
const SWEEP_EVERY: u32 = 1024;

#[derive(Debug, Default)]
pub(crate) struct Admission {
    prefixes: HashMap<Prefix, Seen>,
    since_sweep: u32,
}

impl Admission {
    /// Whether a connection from `peer` may open now, with `open`
    /// connections open in all; if so it is counted, unauthenticated.
    pub fn admit(
        &mut self,
        peer: IpAddr,
        open: usize,
        limits: &Limits,
        now: Instant,
    ) -> Result<(), &'static str> {
        if limits.max_connections != 0 && open >= limits.max_connections {
            return Err("too many connections");
        }
        self.sweep(limits, now);
        let rate = u64::from(limits.connection_rate_per_address);
        let burst = u64::from(limits.connection_burst_per_address);
        let seen = self
            .prefixes
            .entry(Prefix::of(peer))
            .or_insert_with(|| Seen {
                open: 0,
                unauthenticated: 0,
                arrivals: TokenBucket::new(rate, burst, now),
            });
        let cap = |limit: usize, count: usize| limit != 0 && count >= limit;
        if cap(limits.max_connections_per_address, seen.open) {
            return Err("too many connections");
        }
        if cap(limits.max_unauthenticated_per_address, seen.unauthenticated) {
            return Err("too many connections not logged in");
        }
        if seen.arrivals.take(1, now) == 0 {
            return Err("too many new connections");
        }
        seen.open += 1;
        seen.unauthenticated += 1;
        Ok(())
    }

    /// A connection from `peer` authenticated.
    pub fn authenticated(&mut self, peer: IpAddr) {
        if let Some(seen) = self.prefixes.get_mut(&Prefix::of(peer)) {
            seen.unauthenticated = seen.unauthenticated.saturating_sub(1);
        }
    }

    /// A connection from `peer` closed.
    pub fn closed(&mut self, peer: IpAddr, authenticated: bool) {
        if let Some(seen) = self.prefixes.get_mut(&Prefix::of(peer)) {
            seen.open = seen.open.saturating_sub(1);
            if !authenticated {
                seen.unauthenticated = seen.unauthenticated.saturating_sub(1);
            }
        }
    }

    /// Forget prefixes with nothing open whose rate bucket has refilled:
    /// remembering them changes nothing.
    fn sweep(&mut self, limits: &Limits, now: Instant) {
        self.since_sweep += 1;
        if self.since_sweep < SWEEP_EVERY {
            return;
        }
        self.since_sweep = 0;
        let burst = limits.connection_burst_per_address as usize;
        self.prefixes
            .retain(|_, seen| seen.open > 0 || !seen.arrivals.is_full(burst, now));
    }
}
