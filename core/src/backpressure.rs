//! A recipient whose client reads slower than others send to it is not cut
//! off because of them: past a high-water mark of bytes not yet known to
//! be written, stanzas from other sessions are refused to their senders
//! with `<resource-constraint/>` (type `wait`, RFC 6120 section 8.3.3.18),
//! and the recipient stays connected. Only its own traffic can still fill
//! the shim's output budget.
//!
//! The core learns what was written by probing: once a quarter of the
//! output budget has been sent to a connection since the last confirmed
//! point, it asks the shim to report when everything sent so far is
//! written ([`crate::Output::NotifyWritten`]). A reader keeping up answers
//! each probe quickly; one that does not leaves its unconfirmed bytes
//! growing past half the budget, the high-water mark.

use crate::ConnectionId;

/// Probe tokens carry this bit, so that they never meet the tokens other
/// modules draw for their own notifications.
const PROBE: u64 = 1 << 63;

/// What one connection's output tracking holds: 17 bytes, no allocation.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OutputLevel {
    /// Bytes handed to the shim for this connection, ever.
    sent: u64,
    /// Of those, how many the shim has reported written.
    written: u64,
    /// A probe is out.
    probing: bool,
}

/// What the server must do after a change of a connection's level.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    None,
    /// Send a probe with this token.
    Probe(u64),
    Congested,
    Relieved,
}

impl OutputLevel {
    fn unconfirmed(&self) -> u64 {
        self.sent - self.written
    }

    /// `len` more bytes go to the shim.
    pub fn sent(&mut self, len: usize, budget: usize) -> Change {
        let before = self.unconfirmed();
        self.sent += len as u64;
        if !self.probing && self.unconfirmed() >= (budget / 4) as u64 {
            self.probing = true;
            return Change::Probe(PROBE | self.sent);
        }
        if before <= high_water(budget) && self.unconfirmed() > high_water(budget) {
            return Change::Congested;
        }
        Change::None
    }

    /// The shim reported `token` written; whether it was one of ours
    /// and what follows.
    pub fn written(&mut self, token: u64, budget: usize) -> Option<Vec<Change>> {
        if token & PROBE == 0 || !self.probing {
            return None;
        }
        let was = self.unconfirmed() > high_water(budget);
        self.written = (token & !PROBE).min(self.sent);
        self.probing = false;
        let mut changes = Vec::new();
        if self.unconfirmed() >= (budget / 4) as u64 {
            self.probing = true;
            changes.push(Change::Probe(PROBE | self.sent));
        }
        if was && self.unconfirmed() <= high_water(budget) {
            changes.push(Change::Relieved);
        }
        Some(changes)
    }
}

/// Half the budget: the rest is room for the recipient's own traffic.
fn high_water(budget: usize) -> u64 {
    (budget / 2) as u64
}

/// Whether a stanza from another session may be queued for `connection`.
pub(crate) fn accepts(
    congested: &std::collections::HashSet<ConnectionId>,
    connection: ConnectionId,
) -> bool {
    // Nearly always empty: no hashing then, on the path of every message.
    congested.is_empty() || !congested.contains(&connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_of_the_budget_unconfirmed_sends_a_probe() {
        let mut level = OutputLevel::default();
        assert_eq!(level.sent(200, 1000), Change::None);
        assert_eq!(level.sent(100, 1000), Change::Probe(PROBE | 300));
        // One probe at a time.
        assert_eq!(level.sent(100, 1000), Change::None);
    }

    #[test]
    fn past_half_the_budget_unconfirmed_is_congested_until_a_probe_confirms() {
        let mut level = OutputLevel::default();
        assert_eq!(level.sent(300, 1000), Change::Probe(PROBE | 300));
        assert_eq!(level.sent(300, 1000), Change::Congested);
        let changes = level.written(PROBE | 300, 1000).unwrap();
        assert_eq!(changes, [Change::Probe(PROBE | 600), Change::Relieved]);
    }

    #[test]
    fn tokens_without_the_probe_bit_are_not_ours() {
        let mut level = OutputLevel::default();
        level.sent(300, 1000);
        assert_eq!(level.written(7, 1000), None);
    }
}
