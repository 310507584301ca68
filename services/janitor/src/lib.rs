//! janitor: scheduled jobs, one replica at a time each.
//!
//! - `device-rules` (`janitor.device_rules_schedule`, daily at 03:00 UTC by default): the
//!   original's `MessagePushMangeClear` over `message_push_manage` ([`mobile::DeviceRules`]):
//!   failing devices marked inactive, long-inactive ones removed, each change with a rule-log row.
//! - `retention` (`janitor.retention_schedule`, or every `records.purge_interval_secs`): push
//!   records and receive records older than `records.retention_days`, notification logs older
//!   than `records.log_retention_days`, deleted. On MongoDB the TTL indexes expire documents on
//!   their own; the pass only makes it prompt.
//! - `inbox-trim` (`janitor.inbox_trim_schedule`, hourly at :30 by default): every offline inbox
//!   trimmed to `offline.max_per_user` and `offline.ttl_secs` (what went is counted as dropped
//!   for the user's next replay, as a store's own trimming is).
//!
//! Every run is for a slot (the scheduled instant, the same on every replica) and is claimed
//! through a lease in the relational database ([`database::jobs`]): one replica runs a slot, the
//! others see it held and look again until it is done (taking it over if the holder dies and
//! its lease expires). A replica starting catches up on the last slot if no run finished it.
//! Each finished run is kept in `herald_job_runs` with what it changed, and logged.
//! `herald janitor run-once [JOB]` runs jobs by hand ([`run_once`]), under the same leases.

pub mod schedule;
mod settings;

pub use settings::JanitorSettings;

use database::jobs::{Claim, JobLeases, Lease};
use http_server::Component;
use mobile::{DeviceRules, MobileStore};
use records::{Purged, RecordStore, RecordsError, Retention};
use schedule::Schedule;
use serde_json::{Value, json};
use state::OfflineInbox;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Devices changed per transaction by the device rules.
pub const DEVICE_CHUNK: u64 = 500;

model::closed_set! {
    /// A job the janitor runs.
    pub enum Job {
        /// Failing devices marked inactive, long-inactive ones removed.
        DeviceRules = "device-rules",
        /// Old push records, receive records and notification logs deleted.
        Retention = "retention",
        /// Offline inboxes trimmed to their limits (age, count).
        InboxTrim = "inbox-trim",
    }
}

/// What the jobs work on, and how.
#[derive(Clone, Debug)]
pub struct Context {
    /// The push records.
    pub records: RecordStore,
    /// What retention keeps.
    pub retention: Retention,
    /// The device tables.
    pub mobile: MobileStore,
    /// The offline inboxes.
    pub inbox: OfflineInbox,
    /// The device rules' thresholds.
    pub rules: DeviceRules,
    /// Devices changed per transaction.
    pub device_chunk: u64,
    /// The job leases, for this process.
    pub leases: JobLeases,
    /// How long a lease lasts unless renewed.
    pub lease: Duration,
    /// Runs and changes, counted.
    pub metrics: JanitorMetrics,
}

/// What each job's summary counts, as the `change` label of `herald_janitor_changes_total`.
const CHANGES: [(Job, &str); 6] = [
    (Job::DeviceRules, mobile::RULE_FAILING),
    (Job::DeviceRules, mobile::RULE_EXPIRED),
    (Job::Retention, "records"),
    (Job::Retention, "receipts"),
    (Job::Retention, "logs"),
    (Job::InboxTrim, "dropped"),
];

/// The janitor's metrics: runs by job and outcome, and what they changed. Cheap to clone.
#[derive(Clone, Debug)]
pub struct JanitorMetrics {
    runs: Arc<std::collections::HashMap<(Job, &'static str), metrics::Counter>>,
    changes: Arc<std::collections::HashMap<(Job, &'static str), metrics::Counter>>,
}

impl Default for JanitorMetrics {
    fn default() -> Self {
        Self::on(&http_server::Registry::new())
    }
}

impl JanitorMetrics {
    /// Every series registered, at 0, on `registry`.
    pub fn on(registry: &http_server::Registry) -> Self {
        let mut runs = std::collections::HashMap::new();
        for job in Job::ALL {
            for outcome in ["ran", "failed"] {
                let labels = [("job", job.as_str()), ("outcome", outcome)];
                runs.insert(
                    (job, outcome),
                    registry.counter("herald_janitor_runs_total", "Janitor job runs, by outcome", &labels),
                );
            }
        }
        let changes = CHANGES
            .into_iter()
            .map(|(job, change)| {
                let labels = [("job", job.as_str()), ("change", change)];
                ((job, change), registry.counter("herald_janitor_changes_total", "What janitor runs changed", &labels))
            })
            .collect();
        Self { runs: Arc::new(runs), changes: Arc::new(changes) }
    }

    fn ran(&self, job: Job, summary: &Value) {
        if let Some(counter) = self.runs.get(&(job, "ran")) {
            counter.increment(1);
        }
        for ((counted, change), counter) in self.changes.iter() {
            if *counted == job {
                counter.increment(summary.get(*change).and_then(Value::as_u64).unwrap_or(0));
            }
        }
    }

    fn failed(&self, job: Job) {
        if let Some(counter) = self.runs.get(&(job, "failed")) {
            counter.increment(1);
        }
    }
}

/// What claiming and running a job came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// This process ran it: what it changed.
    Ran(Value),
    /// Another process holds it.
    Held {
        /// Which.
        holder: String,
    },
    /// A run already finished this slot.
    Done,
}

/// Claims `job` for `slot` (`None`: a run by hand) and, if this process gets it, runs it to the
/// end with its lease renewed, and records the run.
pub async fn run_slot(context: &Context, job: Job, slot: Option<i64>) -> Result<Outcome, String> {
    let lease = match context.leases.claim(job.as_str(), slot).await.map_err(|err| err.to_string())? {
        Claim::Acquired(lease) => lease,
        Claim::Held { holder } => return Ok(Outcome::Held { holder }),
        Claim::Done => return Ok(Outcome::Done),
    };
    match run_leased(context, job, &lease).await {
        Ok(summary) => {
            let finished = context.leases.finish(lease, &summary.to_string()).await.map_err(|err| err.to_string())?;
            if !finished {
                return Err(format!("{job}: the lease was lost before the run was recorded; the next run converges"));
            }
            tracing::info!(%job, ?slot, %summary, "janitor job done");
            context.metrics.ran(job, &summary);
            Ok(Outcome::Ran(summary))
        }
        Err(err) => {
            context.metrics.failed(job);
            if let Err(release) = context.leases.abandon(&lease).await {
                tracing::warn!(%job, error = %release, "could not give the lease up; it expires on its own");
            }
            Err(format!("{job}: {err}"))
        }
    }
}

/// Runs `jobs` now, by hand, each under its lease: what each came to.
pub async fn run_once(context: &Context, jobs: &[Job]) -> Vec<(Job, Result<Outcome, String>)> {
    let mut outcomes = Vec::with_capacity(jobs.len());
    for &job in jobs {
        outcomes.push((job, run_slot(context, job, None).await));
    }
    outcomes
}

/// Runs `job` while a task renews `lease`; a lease found lost stops the device rules at the
/// next chunk.
async fn run_leased(context: &Context, job: Job, lease: &Lease) -> Result<Value, String> {
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = {
        let (leases, lease, lost, every) = (context.leases.clone(), lease.clone(), lost.clone(), context.lease / 3);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every.max(Duration::from_millis(100))).await;
                if !leases.renew(&lease).await.unwrap_or(false) {
                    lost.store(true, Ordering::Relaxed);
                    break;
                }
            }
        })
    };
    let result = match job {
        Job::DeviceRules => device_rules(context, &lost).await,
        Job::Retention => purge_once(&context.records, context.retention)
            .await
            .map(|purged| summary_of(&purged))
            .map_err(|e| e.to_string()),
        Job::InboxTrim => context
            .inbox
            .trim_all()
            .await
            .map(|trimmed| json!({"inboxes": trimmed.inboxes, "dropped": trimmed.dropped}))
            .map_err(|err| err.to_string()),
    };
    renewer.abort();
    result
}

/// The device rules, as of one instant, chunk by chunk.
async fn device_rules(context: &Context, lost: &AtomicBool) -> Result<Value, String> {
    let now = mobile::now_ms();
    let (rules, chunk) = (&context.rules, context.device_chunk.max(1));
    let mut counts = [0_u64; 2];
    for (index, rule) in [mobile::RULE_FAILING, mobile::RULE_EXPIRED].into_iter().enumerate() {
        loop {
            if lost.load(Ordering::Relaxed) {
                return Err("the lease was lost; stopped between chunks".to_owned());
            }
            let changed = match index {
                0 => context.mobile.deactivate_failing(rules, now, chunk).await,
                _ => context.mobile.remove_expired(rules, now, chunk).await,
            }
            .map_err(|err| err.to_string())?;
            for device in &changed {
                tracing::debug!(rule, push_id = %device.push_id, user_id = device.user_id, "device rule applied");
            }
            counts[index] += changed.len() as u64;
            if (changed.len() as u64) < chunk {
                break;
            }
        }
    }
    Ok(json!({ mobile::RULE_FAILING: counts[0], mobile::RULE_EXPIRED: counts[1] }))
}

fn summary_of(purged: &Purged) -> Value {
    json!({"records": purged.records, "receipts": purged.receipts, "logs": purged.logs})
}

/// One retention pass: deletes what `retention` no longer keeps, as of now.
pub async fn purge_once(records: &RecordStore, retention: Retention) -> Result<Purged, RecordsError> {
    let purged = records.purge(retention.cutoffs_now()).await?;
    if purged != Purged::default() {
        tracing::info!(
            records = purged.records,
            receipts = purged.receipts,
            logs = purged.logs,
            "retention pass deleted old records"
        );
    }
    Ok(purged)
}

/// The janitor's schedules, as a component of a process.
pub struct Janitor;

impl Janitor {
    /// Starts each job on its schedule (`retention` every `purge_every` unless
    /// `janitor.retention_schedule` says otherwise) until `shutdown`.
    pub fn start(
        settings: &JanitorSettings,
        purge_every: Duration,
        context: Context,
        shutdown: CancellationToken,
    ) -> Result<Component, String> {
        let schedules = [
            (Job::DeviceRules, Schedule::cron(&settings.device_rules_schedule)?),
            (Job::Retention, Schedule::cron_or_every(&settings.retention_schedule, purge_every)?),
            (Job::InboxTrim, Schedule::cron(&settings.inbox_trim_schedule)?),
        ];
        for (job, schedule) in schedules {
            tokio::spawn(scheduled(context.clone(), job, schedule, shutdown.clone()));
        }
        let (records, mobile, inbox) = (context.records.clone(), context.mobile.clone(), context.inbox.clone());
        Ok(Component::new("janitor").readiness(
            http_server::Readiness::default()
                .check("records_store", move || records.is_ready())
                .check("database", move || mobile.is_ready())
                .check("offline_inbox", move || inbox.is_ready()),
        ))
    }
}

/// Runs `job` for the last slot if no run finished it, then for each next slot, until
/// `shutdown`.
async fn scheduled(context: Context, job: Job, schedule: Schedule, shutdown: CancellationToken) {
    let mut slot = schedule.last_at_or_before(mobile::now_ms());
    loop {
        if let Some(slot) = slot {
            run_until_done(&context, job, slot, &schedule, &shutdown).await;
        }
        let Some(next) = schedule.next_after(mobile::now_ms()) else {
            tracing::warn!(%job, "the schedule names no further run");
            return;
        };
        if !sleep_until(next, &shutdown).await {
            return;
        }
        slot = Some(next);
    }
}

/// Runs `slot` of `job`, or waits while another replica does, until it is done or the next
/// slot is due.
async fn run_until_done(context: &Context, job: Job, slot: i64, schedule: &Schedule, shutdown: &CancellationToken) {
    let retry = (context.lease / 2).clamp(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        match run_slot(context, job, Some(slot)).await {
            Ok(Outcome::Ran(_) | Outcome::Done) => return,
            Ok(Outcome::Held { holder }) => tracing::debug!(%job, slot, %holder, "job held by another replica"),
            Err(err) => tracing::warn!(%job, slot, error = %err, "janitor job failed; trying again"),
        }
        let give_up_at = schedule.next_after(slot).unwrap_or(i64::MAX);
        if mobile::now_ms() >= give_up_at {
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
    }
}

/// Sleeps until `at` (Unix ms); `false` if `shutdown` came first.
async fn sleep_until(at: i64, shutdown: &CancellationToken) -> bool {
    let wait = Duration::from_millis(u64::try_from(at - mobile::now_ms()).unwrap_or(0));
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}
