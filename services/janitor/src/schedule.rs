//! When a job runs: a cron expression (croner, UTC) or a fixed period. Either way a run is for
//! a *slot*, the scheduled instant (Unix ms), the same on every replica: replicas agree on what
//! "this run" is, and the lease lets one of them run each slot.

use croner::Cron;
use std::str::FromStr;
use std::time::Duration;

/// A job's schedule.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// At the instants a cron expression names, in UTC.
    Cron(Box<Cron>),
    /// At every multiple of the period since the Unix epoch.
    Every(Duration),
}

impl Schedule {
    /// Parses `expression`: 5 fields (minute first) or 6 (seconds first).
    pub fn cron(expression: &str) -> Result<Self, String> {
        // croner's default parser: seconds optional (a 6th field first), `L`, `#`, `W`, names.
        let cron = Cron::from_str(expression.trim())
            .map_err(|err| format!("`{expression}` is not a cron expression: {err}"))?;
        Ok(Self::Cron(Box::new(cron)))
    }

    /// `expression`, or every `period` when it is blank.
    pub fn cron_or_every(expression: &str, period: Duration) -> Result<Self, String> {
        match expression.trim() {
            "" => Ok(Self::Every(period.max(Duration::from_secs(1)))),
            expression => Self::cron(expression),
        }
    }

    /// The first slot after `now_ms` (Unix ms).
    pub fn next_after(&self, now_ms: i64) -> Option<i64> {
        match self {
            Schedule::Every(period) => {
                let period = period_ms(*period);
                Some((now_ms.div_euclid(period) + 1) * period)
            }
            Schedule::Cron(cron) => {
                let now = chrono::DateTime::from_timestamp_millis(now_ms)?;
                cron.find_next_occurrence(&now, false).ok().map(|at| at.timestamp_millis())
            }
        }
    }

    /// The last slot at or before `now_ms`: the one a replica starting now catches up on if no
    /// run finished it.
    pub fn last_at_or_before(&self, now_ms: i64) -> Option<i64> {
        match self {
            Schedule::Every(period) => {
                let period = period_ms(*period);
                Some(now_ms.div_euclid(period) * period)
            }
            Schedule::Cron(cron) => {
                let now = chrono::DateTime::from_timestamp_millis(now_ms)?;
                cron.find_previous_occurrence(&now, true).ok().map(|at| at.timestamp_millis())
            }
        }
    }
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(expression: &str) -> Result<Self, Self::Err> {
        Self::cron(expression)
    }
}

fn period_ms(period: Duration) -> i64 {
    i64::try_from(period.as_millis()).unwrap_or(i64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-03 11:20:30 UTC.
    const NOW: i64 = 1_796_296_830_000;

    #[test]
    fn a_daily_cron_names_the_next_and_last_three_oclock() {
        let daily = Schedule::cron("0 3 * * *").unwrap();
        assert_eq!(daily.next_after(NOW), Some(1_796_353_200_000), "2026-12-04 03:00");
        assert_eq!(daily.last_at_or_before(NOW), Some(1_796_266_800_000), "2026-12-03 03:00");
        let every_second = Schedule::cron("* * * * * *").unwrap();
        assert_eq!(every_second.next_after(NOW), Some(NOW + 1000));
    }

    #[test]
    fn a_period_counts_from_the_epoch() {
        let hourly = Schedule::Every(Duration::from_secs(3600));
        assert_eq!(hourly.last_at_or_before(NOW), Some(1_796_295_600_000));
        assert_eq!(hourly.next_after(NOW), Some(1_796_299_200_000));
        assert_eq!(hourly.next_after(1_796_295_600_000), Some(1_796_299_200_000), "strictly after");
    }

    #[test]
    fn bad_expressions_are_refused_with_why() {
        for bad in ["", "every day", "61 * * * *", "* * *"] {
            let err = Schedule::cron(bad).unwrap_err();
            assert!(err.contains("is not a cron expression"), "{bad}: {err}");
        }
    }
}
