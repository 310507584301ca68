//! Herald's benchmark load generator (`herald-loadgen`): WebSocket fan-out against Herald or
//! nchan, HTTP ingestion against Herald, RabbitMQ's own confirmed-publish ceiling, an idle gate,
//! and the report that puts the JSON results side by side (`scripts/bench.sh` drives it;
//! `docs/benchmarks.md` says what each number means); and the soak (`scripts/soak.sh`).

pub mod broker;
pub mod fanout;
pub mod idle;
pub mod ingest;
pub mod report;
pub mod result;
pub mod soak;
pub mod stats;
pub mod usage;

use result::{IdleGate, RunRecord};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// What every measuring subcommand takes besides its own knobs: where to write the result and
/// how to label it.
#[derive(Clone, Debug, clap::Args)]
pub struct OutputArgs {
    /// Write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The repeat this run belongs to (runs of one repeat are paired for the ratios).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// What `herald-loadgen idle` said before this run.
    #[arg(long, value_enum, default_value_t = IdleGate::Unchecked)]
    pub idle_gate: IdleGate,
}

impl OutputArgs {
    /// Prints the run's verdict line and writes its JSON, if asked.
    pub fn finish(&self, record: &RunRecord) -> anyhow::Result<()> {
        match &record.invalid_reason {
            None => println!("  => VALID"),
            Some(reason) => println!("  => INVALID ({reason})"),
        }
        if record.idle_gate == IdleGate::Timeout {
            println!("  (the machine was busy when this run started: idle gate timed out)");
        }
        if let Some(path) = &self.json {
            record.write(path)?;
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
