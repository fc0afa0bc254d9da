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

/// Probe tokens carry this bit, so that they never meet the tokens other
/// modules draw for their own notifications.
const PROBE: u64 = 1 << 63;

/// What one connection's output tracking holds: 18 bytes, no allocation.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OutputLevel {
    /// Bytes handed to the shim for this connection, ever.
    sent: u64,
    /// Of those, how many the shim has reported written.
    written: u64,
    /// A probe is out.
    probing: bool,
    /// Past the high-water mark (and in the server's congested set).
    congested: bool,
}

/// What the server must do after a change of a connection's level.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Send a probe with this token.
    pub probe: Option<u64>,
    /// The connection crossed the high-water mark: `Some(true)` up,
    /// `Some(false)` down.
    pub congested: Option<bool>,
}

impl OutputLevel {
    fn unconfirmed(&self) -> u64 {
        self.sent - self.written
    }

    /// `len` more bytes go to the shim.
    pub fn sent(&mut self, len: usize, budget: usize) -> Changes {
        self.sent += len as u64;
        self.settle(budget)
    }

    /// The shim reported `token` written; `None` if it was not one of
    /// ours.
    pub fn written(&mut self, token: u64, budget: usize) -> Option<Changes> {
        if token & PROBE == 0 || !self.probing {
            return None;
        }
        self.written = (token & !PROBE).min(self.sent);
        self.probing = false;
        Some(self.settle(budget))
    }

    /// Probe if a quarter of the budget is unconfirmed and none is out;
    /// report a crossing of the high-water mark either way.
    fn settle(&mut self, budget: usize) -> Changes {
        let mut changes = Changes::default();
        if !self.probing && self.unconfirmed() >= (budget / 4) as u64 {
            self.probing = true;
            changes.probe = Some(PROBE | self.sent);
        }
        let over = self.unconfirmed() > high_water(budget);
        if over != self.congested {
            self.congested = over;
            changes.congested = Some(over);
        }
        changes
    }
}

/// Half the budget: the rest is room for the recipient's own traffic.
fn high_water(budget: usize) -> u64 {
    (budget / 2) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(probe: Option<u64>, congested: Option<bool>) -> Changes {
        Changes { probe, congested }
    }

    #[test]
    fn a_quarter_of_the_budget_unconfirmed_sends_a_probe() {
        let mut level = OutputLevel::default();
        assert_eq!(level.sent(200, 1000), changes(None, None));
        assert_eq!(level.sent(100, 1000), changes(Some(PROBE | 300), None));
        // One probe at a time.
        assert_eq!(level.sent(100, 1000), changes(None, None));
    }

    #[test]
    fn past_half_the_budget_unconfirmed_is_congested_until_a_probe_confirms() {
        let mut level = OutputLevel::default();
        assert_eq!(level.sent(300, 1000), changes(Some(PROBE | 300), None));
        assert_eq!(level.sent(300, 1000), changes(None, Some(true)));
        assert_eq!(
            level.written(PROBE | 300, 1000),
            Some(changes(Some(PROBE | 600), Some(false)))
        );
    }

    #[test]
    fn one_write_past_both_marks_probes_and_congests_at_once() {
        // The review's finding: the probe used to hide the crossing.
        let mut level = OutputLevel::default();
        assert_eq!(
            level.sent(600, 1000),
            changes(Some(PROBE | 600), Some(true))
        );
        assert_eq!(level.sent(10, 1000), changes(None, None));
    }

    #[test]
    fn tokens_without_the_probe_bit_are_not_ours() {
        let mut level = OutputLevel::default();
        level.sent(300, 1000);
        assert_eq!(level.written(7, 1000), None);
    }
}
