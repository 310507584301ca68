//! What the kernel says processes cost, read from `/proc`: CPU seconds (user + system) and
//! resident memory, summed over a set of processes, and how busy the whole machine is.

use anyhow::{Context, Result, bail};

/// Clock ticks per second of the `/proc/<pid>/stat` times (`USER_HZ`, 100 on every Linux ABI
/// this runs on; the kernel converts to it whatever its internal tick).
pub const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// CPU time and resident memory of a set of processes at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// User plus system CPU seconds since each process started.
    pub cpu_secs: f64,
    /// Resident set size (`VmRSS`), in KiB (1024 bytes).
    pub rss_kib: u64,
}

impl Usage {
    /// CPU seconds spent between `earlier` and this sample.
    pub fn cpu_since(&self, earlier: &Usage) -> f64 {
        (self.cpu_secs - earlier.cpu_secs).max(0.0)
    }
}

/// The processes a server is made of (nginx's master and workers, Herald's roles), measured
/// as one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessSet {
    pids: Vec<u32>,
}

impl ProcessSet {
    /// The processes with these ids.
    pub fn new(pids: Vec<u32>) -> Self {
        Self { pids }
    }

    /// Whether there is no process to measure.
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
    }

    /// The sum of the processes' CPU time and resident memory now; fails if one has gone.
    pub fn sample(&self) -> Result<Usage> {
        let mut total = Usage::default();
        for pid in &self.pids {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .with_context(|| format!("process {pid} is gone (reading /proc/{pid}/stat)"))?;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .with_context(|| format!("process {pid} is gone (reading /proc/{pid}/status)"))?;
            total.cpu_secs +=
                cpu_ticks(&stat).with_context(|| format!("/proc/{pid}/stat"))? as f64 / CLOCK_TICKS_PER_SEC;
            total.rss_kib += rss_kib(&status).with_context(|| format!("/proc/{pid}/status"))?;
        }
        Ok(total)
    }
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks. The command
/// name in parentheses may hold spaces, so fields are counted after the last `)`.
pub fn cpu_ticks(stat: &str) -> Result<u64> {
    let (_, rest) = stat.rsplit_once(')').context("no ')' after the command name")?;
    // After the command come state (field 3), ppid (4), ...: utime is field 14, the 12th here.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next().context("no utime field")?.parse().context("utime")?;
    let stime: u64 = fields.next().context("no stime field")?.parse().context("stime")?;
    Ok(utime + stime)
}

/// A `/proc/<pid>/status` field in KiB (`RssAnon:`, say), if it is there.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// `VmRSS` of a `/proc/<pid>/status` file, in KiB (the kernel's "kB" is 1024 bytes).
pub fn rss_kib(status: &str) -> Result<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS line (a zombie?)")?;
    let value = line.split_whitespace().nth(1).context("VmRSS has no value")?;
    value.parse().context("VmRSS")
}

/// The machine-wide CPU counters of `/proc/stat`'s first line, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineTicks {
    /// Every tick counted (user, nice, system, idle, iowait, irq, softirq, steal).
    pub total: u64,
    /// Ticks spent idle or waiting for I/O.
    pub idle: u64,
}

impl MachineTicks {
    /// Reads `/proc/stat` now.
    pub fn read() -> Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        Self::parse(&stat)
    }

    /// Parses the aggregate `cpu` line. Guest time is already inside user time, so it is not
    /// added again.
    pub fn parse(stat: &str) -> Result<Self> {
        let line = stat.lines().find(|l| l.starts_with("cpu ")).context("no aggregate cpu line in /proc/stat")?;
        let values: Vec<u64> =
            line.split_whitespace().skip(1).take(8).map(str::parse).collect::<Result<_, _>>().context("/proc/stat")?;
        if values.len() < 5 {
            bail!("/proc/stat's cpu line has {} fields", values.len());
        }
        Ok(Self { total: values.iter().sum(), idle: values[3] + values[4] })
    }

    /// The share of the machine that was busy between `earlier` and this reading, in percent.
    pub fn busy_percent_since(&self, earlier: &MachineTicks) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        let idle = self.idle.saturating_sub(earlier.idle);
        100.0 * total.saturating_sub(idle) as f64 / total as f64
    }
}

/// Raises this process's open-file limit to `wanted` (or as close as the hard limit allows);
/// returns the soft limit in force afterwards.
pub fn raise_open_files_limit(wanted: u64) -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let soft = current.current.unwrap_or(u64::MAX);
    if soft >= wanted {
        return soft;
    }
    let target = current.maximum.map_or(wanted, |hard| hard.min(wanted));
    let raised = rustix::process::Rlimit { current: Some(target), maximum: current.maximum };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => target,
        Err(_) => soft,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_spaces_in_the_name() {
        let stat = "4242 (herald (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_ticks(stat).unwrap(), 325);
    }

    #[test]
    fn rss_is_read_in_kib() {
        let status = "Name:\tnginx\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t1\n";
        assert_eq!(rss_kib(status).unwrap(), 5120);
    }

    #[test]
    fn a_zombie_without_rss_is_an_error() {
        assert!(rss_kib("Name:\tx\nState:\tZ (zombie)\n").is_err());
    }

    #[test]
    fn machine_busy_share_counts_everything_but_idle_and_iowait() {
        let before = MachineTicks::parse("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4 5\n").unwrap();
        let after = MachineTicks::parse("cpu  130 0 120 740 110 0 0 0 0 0\n").unwrap();
        assert_eq!(before, MachineTicks { total: 1000, idle: 800 });
        assert!((after.busy_percent_since(&before) - 50.0).abs() < 1e-9);
        assert_eq!(before.busy_percent_since(&before), 0.0);
    }

    #[test]
    fn a_set_sums_its_processes() {
        let me = std::process::id();
        let one = ProcessSet::new(vec![me]).sample().unwrap();
        let two = ProcessSet::new(vec![me, me]).sample().unwrap();
        assert!(one.rss_kib > 0);
        assert!(two.rss_kib >= 2 * one.rss_kib - one.rss_kib / 2);
        assert!(ProcessSet::new(vec![u32::MAX]).sample().is_err());
    }
}
