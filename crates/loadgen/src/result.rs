//! The JSON a run writes (`--json FILE`) and the report reads: one [`RunRecord`] per file, plus
//! one [`MachineInfo`] (`machine.json`) per results directory.

use crate::stats::{DeliveryTally, LatencySummary};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The system a run measured: a column of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// nginx with the nchan module.
    Nchan,
    /// Herald's one process: in-process bus, SQLite.
    HeraldAllInOne,
    /// Herald as three processes (ingest-api, ws-gateway, record-writer) over RabbitMQ, Redis
    /// and PostgreSQL.
    HeraldRoles,
    /// RabbitMQ alone (the broker's own ceiling).
    Rabbitmq,
}

impl System {
    /// The column title.
    pub fn title(self) -> &'static str {
        match self {
            System::Nchan => "nchan",
            System::HeraldAllInOne => "Herald all-in-one",
            System::HeraldRoles => "Herald roles (RabbitMQ)",
            System::Rabbitmq => "RabbitMQ alone",
        }
    }
}

/// Whether the machine was quiet when the run started (`herald-loadgen idle`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum IdleGate {
    /// The machine was below the threshold.
    Ok,
    /// The gate gave up waiting: something else was using the CPU.
    Timeout,
    /// No gate was run before this one.
    #[default]
    Unchecked,
}

/// How the notices of a fan-out run are posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// As fast as possible, `--publish-concurrency` posts at a time.
    Burst,
    /// One in flight: the next is posted once every client has the previous one.
    Paced,
}

impl Mode {
    /// The name used in tables.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Burst => "burst",
            Mode::Paced => "paced",
        }
    }
}

/// One run's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// What was measured.
    pub system: System,
    /// Which repeat this is (1-based); runs of one repeat are paired for the ratios.
    pub repeat: u32,
    /// False when the run cannot be reported as a number (see `invalid_reason`).
    pub valid: bool,
    /// Why the run is invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// Whether the machine was idle before the run.
    #[serde(default)]
    pub idle_gate: IdleGate,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// The measurements, by kind of run.
    #[serde(flatten)]
    pub run: Run,
}

impl RunRecord {
    /// Writes the record as pretty JSON to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

/// The measurements of one kind of run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Run {
    /// `herald-loadgen fanout`.
    Fanout(FanoutRun),
    /// `herald-loadgen ingest`.
    Ingest(IngestRun),
    /// `herald-loadgen broker`.
    Broker(BrokerRun),
}

/// A fan-out run: N clients, M broadcast notices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FanoutRun {
    /// How the notices were posted.
    pub mode: Mode,
    /// WebSocket clients, each its own user.
    pub clients: u32,
    /// Measured notices.
    pub notices: u32,
    /// Posts in flight at once (burst mode).
    pub publish_concurrency: u32,
    /// Accepting and proving live every connection.
    pub accept: Option<AcceptPhase>,
    /// Resident memory before and after the connections.
    pub memory: Option<MemoryPhase>,
    /// Delivering the measured notices.
    pub deliveries: Option<DeliveryPhase>,
    /// Every publish answer (warm-up and measured).
    pub publish: PublishTally,
    /// Clients whose connection ended before the run did.
    pub disconnects: u64,
}

/// Phase 1: from before the first connect until every client has received a warm-up notice.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AcceptPhase {
    /// Server CPU seconds (user + system, summed over the server's processes), warm-up included.
    pub cpu_secs: f64,
    /// Broker CPU seconds over the same span, when a broker was measured.
    pub broker_cpu_secs: Option<f64>,
    /// Seconds until every client had connected.
    pub connect_wall_secs: f64,
    /// Seconds until every client had received a warm-up notice.
    pub live_wall_secs: f64,
    /// Warm-up notices posted (one every 200 ms) until all were live.
    pub warmup_notices: u32,
}

/// Phase 2: resident memory of the server's processes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryPhase {
    /// Before the first connect, KiB.
    pub rss_before_kib: u64,
    /// Once all were live and 2 s idle, KiB.
    pub rss_after_kib: u64,
    /// (after - before) / clients, KiB (1024 bytes).
    pub kib_per_connection: f64,
}

/// Phase 3: the measured notices.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryPhase {
    /// Server CPU seconds from the first post to the last delivery.
    pub cpu_secs: f64,
    /// `cpu_secs` / deliveries, in microseconds.
    pub cpu_per_delivery_us: f64,
    /// Broker CPU seconds over the same span, when a broker was measured (not in `cpu_secs`).
    pub broker_cpu_secs: Option<f64>,
    /// `broker_cpu_secs` / deliveries, in microseconds.
    pub broker_cpu_per_delivery_us: Option<f64>,
    /// What came and what did not.
    pub tally: DeliveryTally,
    /// Deliveries that never came.
    pub lost: u64,
    /// Extra copies.
    pub duplicates: u64,
    /// From the moment a notice's POST was sent to the moment a client read its frame.
    pub latency: Option<LatencySummary>,
    /// Seconds from the first post to the last delivery.
    pub wall_secs: f64,
    /// Unique deliveries per second of `wall_secs`.
    pub deliveries_per_sec: f64,
}

/// Publish answers, counted by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishTally {
    /// The expected success status.
    pub accepted: u64,
    /// 429 Too Many Requests.
    pub status_429: u64,
    /// 503 Service Unavailable.
    pub status_503: u64,
    /// Any other status, or no answer at all.
    pub other: u64,
    /// The first unexpected answer, for the reason.
    pub first_other: Option<String>,
}

impl PublishTally {
    /// Counts one answer: `Ok(status)` or a transport error.
    pub fn count(&mut self, answer: Result<u16, String>, accepted: impl Fn(u16) -> bool) {
        match answer {
            Ok(status) if accepted(status) => self.accepted += 1,
            Ok(429) => self.status_429 += 1,
            Ok(503) => self.status_503 += 1,
            Ok(status) => self.note_other(format!("HTTP {status}")),
            Err(err) => self.note_other(err),
        }
    }

    fn note_other(&mut self, what: String) {
        self.other += 1;
        self.first_other.get_or_insert(what);
    }
}

/// An ingestion run: closed-loop posters for a fixed window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestRun {
    /// Posters, each with its own keep-alive connection.
    pub concurrency: u32,
    /// The measured window, seconds.
    pub duration_secs: f64,
    /// Seconds posted before the window, not counted.
    pub warmup_secs: f64,
    /// 200 answers in the window.
    pub accepted: u64,
    /// `accepted` / `duration_secs`.
    pub accepted_per_sec: f64,
    /// 200 answers completed in each second of the window, to see whether the rate held.
    #[serde(default)]
    pub accepted_each_second: Vec<u64>,
    /// Latency of the accepted requests in the window.
    pub latency: Option<LatencySummary>,
    /// 503 answers in the window (QUEUE_FULL or PUSH_FAILED): the poster waited 50 ms.
    pub status_503: u64,
    /// 429 answers in the window.
    pub status_429: u64,
    /// Any other answer or transport error in the window.
    pub other: u64,
    /// The first such answer.
    pub first_other: Option<String>,
    /// The record-writer's backlog after the window, when its queue was watched.
    pub records: Option<RecordsLag>,
}

/// How far the record-writer was behind when ingestion stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordsLag {
    /// The queue watched.
    pub queue: String,
    /// Ready messages in it right after the window.
    pub depth_at_end: u32,
    /// Seconds until it was empty (polled every 200 ms); `None` if it was not within the limit.
    pub drain_secs: Option<f64>,
    /// The limit, seconds.
    pub drain_limit_secs: f64,
}

/// The broker's confirmed-publish ceiling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BrokerRun {
    /// Unconfirmed publishes allowed in flight.
    pub window: u32,
    /// Bytes per message.
    pub payload_bytes: u32,
    /// Seconds of publishing.
    pub duration_secs: f64,
    /// Publishes the broker confirmed (acked) within the window.
    pub confirmed: u64,
    /// Publishes the broker refused (nacked).
    pub nacked: u64,
    /// `confirmed` / `duration_secs`.
    pub confirmed_per_sec: f64,
}

/// The machine and the code a results directory was measured on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// Online CPUs.
    pub nproc: usize,
    /// `uname -r`.
    pub kernel: String,
    /// The CPU model.
    pub cpu_model: String,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// The git commit measured.
    pub commit: String,
    /// Free text: the knobs of the run.
    pub note: String,
}

impl MachineInfo {
    /// Reads this machine's description from `/proc`.
    pub fn detect(commit: String, note: String) -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|rest| rest.split_once(':')).map(|(_, v)| v.trim()))
            .unwrap_or("unknown")
            .to_owned();
        let memory_mib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        Self {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            cpu_model,
            memory_mib,
            commit,
            note,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_json_with_its_kind_inline() {
        let record = RunRecord {
            system: System::HeraldRoles,
            repeat: 2,
            valid: false,
            invalid_reason: Some("lost 3".into()),
            idle_gate: IdleGate::Timeout,
            started_unix: 1,
            run: Run::Broker(BrokerRun { window: 256, confirmed: 10, ..BrokerRun::default() }),
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["kind"], "broker");
        assert_eq!(json["system"], "herald-roles");
        assert_eq!(json["idle_gate"], "timeout");
        assert_eq!(json["valid"], false);
        let back: RunRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn publish_answers_are_sorted_into_their_kinds() {
        let mut tally = PublishTally::default();
        let created = |s: u16| s == 201 || s == 202;
        for answer in [Ok(201), Ok(202), Ok(429), Ok(503), Ok(500), Err("reset".to_owned()), Ok(200)] {
            tally.count(answer, created);
        }
        assert_eq!((tally.accepted, tally.status_429, tally.status_503, tally.other), (2, 1, 1, 3));
        assert_eq!(tally.first_other.as_deref(), Some("HTTP 500"));
    }
}
