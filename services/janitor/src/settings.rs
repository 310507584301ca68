//! `[janitor]`: when each job runs, the device rules' thresholds, the job lease.

use crate::schedule::Schedule;
use mobile::DeviceRules;
use runtime::ConfigError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The janitor's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JanitorSettings {
    /// When the device rules run: a cron expression in UTC (5 fields, or 6 with seconds first).
    /// Daily at 03:00 by default.
    pub device_rules_schedule: String,
    /// When the retention pass runs: a cron expression in UTC, or empty (the default) for every
    /// `records.purge_interval_secs`.
    pub retention_schedule: String,
    /// When the offline inboxes are trimmed: a cron expression in UTC. Hourly at :30 by default.
    pub inbox_trim_schedule: String,
    /// Failed sends in a row past which a device may be marked inactive (`failing`).
    pub max_err_count: i32,
    /// Days without a successful push after which such a device is marked inactive.
    pub silent_days: u32,
    /// Days after which an inactive device that did not register again is removed (`expired`).
    pub remove_after_days: u32,
    /// Seconds a replica holds a job without renewing it: past that (a replica killed
    /// half-way), another takes the job over and runs it again.
    pub lease_secs: u64,
}

impl Default for JanitorSettings {
    fn default() -> Self {
        let rules = DeviceRules::default();
        Self {
            device_rules_schedule: "0 3 * * *".to_owned(),
            retention_schedule: String::new(),
            inbox_trim_schedule: "30 * * * *".to_owned(),
            max_err_count: rules.max_err_count,
            silent_days: rules.silent_days,
            remove_after_days: rules.remove_after_days,
            lease_secs: 60,
        }
    }
}

impl JanitorSettings {
    /// Rejects values the janitor cannot run with; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Schedule::cron(&self.device_rules_schedule)
            .map_err(|err| ConfigError::invalid("janitor.device_rules_schedule", err))?;
        if !self.retention_schedule.trim().is_empty() {
            Schedule::cron(&self.retention_schedule)
                .map_err(|err| ConfigError::invalid("janitor.retention_schedule", err))?;
        }
        Schedule::cron(&self.inbox_trim_schedule)
            .map_err(|err| ConfigError::invalid("janitor.inbox_trim_schedule", err))?;
        if self.max_err_count < 0 {
            return Err(ConfigError::invalid("janitor.max_err_count", "must not be negative"));
        }
        if self.silent_days == 0 || self.remove_after_days == 0 {
            return Err(ConfigError::invalid(
                "janitor.silent_days",
                "silent_days and remove_after_days must be at least 1",
            ));
        }
        if !(1..=3600).contains(&self.lease_secs) {
            return Err(ConfigError::invalid("janitor.lease_secs", "must be 1 to 3600"));
        }
        Ok(())
    }

    /// The device rules' thresholds.
    pub fn device_rules(&self) -> DeviceRules {
        DeviceRules {
            max_err_count: self.max_err_count,
            silent_days: self.silent_days,
            remove_after_days: self.remove_after_days,
        }
    }

    /// The job lease.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
}
