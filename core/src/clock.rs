//! Wall-clock time as an input, for what must show real dates: delay stamps
//! on stored messages (XEP-0203) and entity time (XEP-0202). Timers use the
//! monotonic `Instant` the shims pass to every `handle_*` call instead.

use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Time since the Unix epoch, as last reported by the shim.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallClock(pub Duration);

impl WallClock {
    /// XEP-0082 DateTime in UTC, e.g. `2026-11-25T04:10:00Z`, to the second.
    pub fn xmpp_datetime(self) -> String {
        let secs = i64::try_from(self.0.as_secs()).unwrap_or(i64::MAX);
        OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_xep_0082_utc() {
        assert_eq!(
            WallClock(Duration::from_secs(1_795_580_000)).xmpp_datetime(),
            "2026-11-25T04:13:20Z"
        );
    }
}
