//! What /proc says about a process: resident memory and CPU time. Read for
//! the server (by PID) and for the load generator itself.

use anyhow::{Context, Result};
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Resident set size now, KiB.
    pub rss_kib: u64,
    /// The peak resident set size so far (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// User plus system CPU time so far.
    pub cpu: Duration,
}

/// Read `/proc/<pid>` (`self` for this process).
pub fn usage(pid: &str) -> Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |key: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .with_context(|| format!("no {key} in /proc/{pid}/status"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("empty line")?
            .parse()?)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; fields count from after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("malformed stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks = |i: usize| -> Result<u64> { Ok(fields.get(i).context("short stat")?.parse()?) };
    // utime and stime are fields 14 and 15 of stat(5); index 11 and 12 here.
    let hz = rustix::param::clock_ticks_per_second();
    let cpu_ticks = ticks(11)? + ticks(12)?;
    Ok(Usage {
        rss_kib: kib("VmRSS:")?,
        peak_rss_kib: kib("VmHWM:")?,
        cpu: Duration::from_nanos(cpu_ticks * 1_000_000_000 / hz),
    })
}

/// Raise this process's open-file limit to its hard limit.
pub fn raise_open_files() -> Result<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit).context("raising RLIMIT_NOFILE")?;
    Ok(limit.current.unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_usage_is_read() {
        let u = usage("self").unwrap();
        assert!(u.rss_kib > 0 && u.peak_rss_kib >= u.rss_kib);
    }
}
