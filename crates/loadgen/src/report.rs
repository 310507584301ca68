//! `herald-loadgen report DIR`: reads every JSON result in a directory and prints the
//! comparison: fan-out (nchan beside Herald all-in-one and Herald roles, with ratios Herald /
//! nchan) and ingestion (Herald beside RabbitMQ's own ceiling). Each cell is the min-max range
//! over repeats; each ratio is the min-max of per-repeat ratios, a Herald run divided by the
//! nchan run of the same repeat. An invalid run shows as `INVALID (reason)`, never as a number.

use crate::result::{BrokerRun, FanoutRun, IdleGate, IngestRun, MachineInfo, Mode, Run, RunRecord, System};
use crate::stats::Range;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

/// The name of the machine description in a results directory.
pub const MACHINE_FILE: &str = "machine.json";

/// A results directory, read.
#[derive(Debug, Default)]
pub struct Results {
    /// Every run.
    pub runs: Vec<RunRecord>,
    /// The machine, if `machine.json` is there.
    pub machine: Option<MachineInfo>,
    /// Files that could not be read, with the reason.
    pub skipped: Vec<String>,
}

impl Results {
    /// Reads every `*.json` in `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut results = Results::default();
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(err) => {
                    results.skipped.push(format!("{}: {err}", path.display()));
                    continue;
                }
            };
            if path.file_name().is_some_and(|name| name == MACHINE_FILE) {
                match serde_json::from_str(&text) {
                    Ok(machine) => results.machine = Some(machine),
                    Err(err) => results.skipped.push(format!("{}: {err}", path.display())),
                }
                continue;
            }
            match serde_json::from_str(&text) {
                Ok(run) => results.runs.push(run),
                Err(err) => results.skipped.push(format!("{}: {err}", path.display())),
            }
        }
        Ok(results)
    }
}

/// A table of text cells, printed with aligned columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Printed above the table.
    pub title: String,
    /// Column titles.
    pub header: Vec<String>,
    /// The rows, as many cells as the header.
    pub rows: Vec<Vec<String>>,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
                .collect();
            writeln!(f, "| {} |", padded.join(" | "))
        };
        writeln!(f, "{}", self.title)?;
        writeln!(f)?;
        line(f, &self.header)?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        writeln!(f, "|-{}-|", rule.join("-|-"))?;
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}

/// How a metric's values print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Three significant digits, then the unit.
    Decimal(&'static str),
    /// Whole numbers (counts).
    Count,
}

impl Format {
    fn range(self, range: Range) -> String {
        match self {
            Format::Decimal(unit) => range.display(unit),
            Format::Count if range.min == range.max => format!("{:.0}", range.min),
            Format::Count => format!("{:.0}-{:.0}", range.min, range.max),
        }
    }
}

/// One repeat's value of a metric, or why there is none.
type Sample = std::result::Result<Option<f64>, String>;

/// A metric over runs of one kind: `Ok(None)` when the run has no such value.
fn sample<T>(record: &RunRecord, body: &T, metric: &dyn Fn(&T) -> Option<f64>) -> Sample {
    if record.valid { Ok(metric(body)) } else { Err(record.invalid_reason.clone().unwrap_or_else(|| "?".into())) }
}

/// The cell of one system: the range of its valid values, and its invalid runs named.
fn cell(samples: &[(u32, Sample)], format: Format) -> String {
    if samples.is_empty() {
        return "-".to_owned();
    }
    let values = samples.iter().filter_map(|(_, s)| s.as_ref().ok().copied().flatten());
    let invalid: Vec<_> = samples.iter().filter_map(|(repeat, s)| s.as_ref().err().map(|e| (repeat, e))).collect();
    let numbers = Range::of(values).map(|range| format.range(range));
    let flagged = invalid.first().map(|(repeat, reason)| {
        let count = if invalid.len() > 1 { format!(" x{}", invalid.len()) } else { String::new() };
        format!("INVALID{count} (r{repeat}: {reason})")
    });
    match (numbers, flagged) {
        (Some(numbers), Some(flagged)) => format!("{numbers}, {flagged}"),
        (Some(numbers), None) => numbers,
        (None, Some(flagged)) => flagged,
        (None, None) => "n/a".to_owned(),
    }
}

/// The ratio cell: `numerator / denominator` for every pairing key both have valid values for.
fn ratio_cell<K: PartialEq>(numerator: &[(K, Sample)], denominator: &[(K, Sample)]) -> String {
    let ratios = numerator.iter().filter_map(|(key, top)| {
        let (_, bottom) = denominator.iter().find(|(other, _)| other == key)?;
        let (top, bottom) = (top.as_ref().ok().copied().flatten()?, bottom.as_ref().ok().copied().flatten()?);
        (bottom > 0.0).then(|| top / bottom)
    });
    Range::of(ratios).map_or_else(|| "-".to_owned(), |range| format!("{}x", range.display("")))
}

fn clients_label(clients: u32) -> String {
    if clients >= 1000 && clients.is_multiple_of(1000) { format!("{}k", clients / 1000) } else { clients.to_string() }
}

/// One row of the fan-out table.
struct FanoutRow {
    label: String,
    modes: &'static [Mode],
    clients: u32,
    metric: fn(&FanoutRun) -> Option<f64>,
    format: Format,
    /// Only Herald roles has this value (the broker's own CPU).
    roles_only: bool,
}

const BURST: &[Mode] = &[Mode::Burst];
const PACED: &[Mode] = &[Mode::Paced];
const BOTH: &[Mode] = &[Mode::Burst, Mode::Paced];

fn fanout_rows(clients: &BTreeSet<u32>) -> Vec<FanoutRow> {
    let mut rows = Vec::new();
    let cpu = |run: &FanoutRun| run.deliveries.map(|d| d.cpu_per_delivery_us);
    let broker_cpu = |run: &FanoutRun| run.deliveries.and_then(|d| d.broker_cpu_per_delivery_us);
    let p99 = |run: &FanoutRun| run.deliveries.and_then(|d| d.latency).map(|l| l.p99_ms);
    let rate = |run: &FanoutRun| run.deliveries.map(|d| d.deliveries_per_sec);
    let row =
        |label: String, modes: &'static [Mode], clients: u32, metric: fn(&FanoutRun) -> Option<f64>, format: Format| {
            FanoutRow { label, modes, clients, metric, format, roles_only: false }
        };
    for (mode, modes) in [(Mode::Burst, BURST), (Mode::Paced, PACED)] {
        for &n in clients {
            let name = format!("{} {}", mode.name(), clients_label(n));
            rows.push(row(format!("{name}: server CPU per delivery"), modes, n, cpu, Format::Decimal("µs")));
            rows.push(row(format!("{name}: p99 latency POST->frame"), modes, n, p99, Format::Decimal("ms")));
            rows.push(row(format!("{name}: deliveries/s"), modes, n, rate, Format::Decimal("/s")));
            rows.push(FanoutRow {
                roles_only: true,
                ..row(
                    format!("{name}: RabbitMQ CPU per delivery (not in the above)"),
                    modes,
                    n,
                    broker_cpu,
                    Format::Decimal("µs"),
                )
            });
        }
    }
    for &n in clients {
        let accept = |run: &FanoutRun| run.accept.map(|a| a.cpu_secs);
        let label = format!("CPU to accept {} connections (warm-up included)", clients_label(n));
        rows.push(row(label, BOTH, n, accept, Format::Decimal("s")));
    }
    for &n in clients {
        let memory = |run: &FanoutRun| run.memory.map(|m| m.kib_per_connection);
        rows.push(row(
            format!("idle memory per connection at {}", clients_label(n)),
            BOTH,
            n,
            memory,
            Format::Decimal("KiB"),
        ));
    }
    rows
}

/// The fan-out comparison table.
pub fn fanout_table(runs: &[RunRecord]) -> Option<Table> {
    let fanouts: Vec<(&RunRecord, &FanoutRun)> = runs
        .iter()
        .filter_map(|record| match &record.run {
            Run::Fanout(run) => Some((record, run)),
            _ => None,
        })
        .collect();
    if fanouts.is_empty() {
        return None;
    }
    let clients: BTreeSet<u32> = fanouts.iter().map(|(_, run)| run.clients).collect();
    let header = ["path", "nchan", "Herald all-in-one", "ratio", "Herald roles (RabbitMQ)", "ratio"];
    let mut rows = Vec::new();
    for row in fanout_rows(&clients) {
        let samples = |system: System| -> Vec<((Mode, u32), Sample)> {
            fanouts
                .iter()
                .filter(|(record, run)| {
                    record.system == system && run.clients == row.clients && row.modes.contains(&run.mode)
                })
                .map(|(record, run)| ((run.mode, record.repeat), sample(record, *run, &row.metric)))
                .collect()
        };
        let (nchan, all_in_one, roles) =
            (samples(System::Nchan), samples(System::HeraldAllInOne), samples(System::HeraldRoles));
        if nchan.is_empty() && all_in_one.is_empty() && roles.is_empty() {
            continue;
        }
        let strip = |samples: &[((Mode, u32), Sample)]| -> Vec<(u32, Sample)> {
            samples.iter().map(|((_, repeat), s)| (*repeat, s.clone())).collect()
        };
        let cells = if row.roles_only {
            if roles.iter().all(|(_, s)| matches!(s, Ok(None))) {
                continue;
            }
            vec![row.label, "-".into(), "-".into(), "-".into(), cell(&strip(&roles), row.format), "-".into()]
        } else {
            vec![
                row.label,
                cell(&strip(&nchan), row.format),
                cell(&strip(&all_in_one), row.format),
                ratio_cell(&all_in_one, &nchan),
                cell(&strip(&roles), row.format),
                ratio_cell(&roles, &nchan),
            ]
        };
        rows.push(cells);
    }
    Some(Table {
        title: "Fan-out: one broadcast channel, every client its own user (ratio = Herald / nchan, per repeat)".into(),
        header: header.iter().map(|h| (*h).to_owned()).collect(),
        rows,
    })
}

/// One row of the ingestion table.
struct IngestRow {
    label: &'static str,
    broker: Option<fn(&BrokerRun) -> Option<f64>>,
    ingest: fn(&IngestRun) -> Option<f64>,
    format: Format,
    ratio: bool,
}

/// The ingestion table: Herald's accepted notices/s beside the broker's confirmed publishes/s.
pub fn ingest_table(runs: &[RunRecord]) -> Option<Table> {
    let ingests: Vec<(&RunRecord, &IngestRun)> = runs
        .iter()
        .filter_map(|record| match &record.run {
            Run::Ingest(run) => Some((record, run)),
            _ => None,
        })
        .collect();
    let brokers: Vec<(&RunRecord, &BrokerRun)> = runs
        .iter()
        .filter_map(|record| match &record.run {
            Run::Broker(run) => Some((record, run)),
            _ => None,
        })
        .collect();
    if ingests.is_empty() && brokers.is_empty() {
        return None;
    }
    let rows = [
        IngestRow {
            label: "notices/s accepted (broker: confirmed publishes/s)",
            broker: Some(|b| Some(b.confirmed_per_sec)),
            ingest: |i| Some(i.accepted_per_sec),
            format: Format::Decimal("/s"),
            ratio: true,
        },
        IngestRow {
            label: "request latency p50",
            broker: None,
            ingest: |i| i.latency.map(|l| l.p50_ms),
            format: Format::Decimal("ms"),
            ratio: false,
        },
        IngestRow {
            label: "request latency p99",
            broker: None,
            ingest: |i| i.latency.map(|l| l.p99_ms),
            format: Format::Decimal("ms"),
            ratio: false,
        },
        IngestRow {
            label: "503 answers in the window (QUEUE_FULL)",
            broker: None,
            ingest: |i| Some(i.status_503 as f64),
            format: Format::Count,
            ratio: false,
        },
        IngestRow {
            label: "record-writer queue depth at the end (ready messages)",
            broker: None,
            ingest: |i| i.records.as_ref().map(|r| f64::from(r.depth_at_end)),
            format: Format::Count,
            ratio: false,
        },
        IngestRow {
            label: "record-writer drain time (∞ = not within the limit)",
            broker: None,
            ingest: |i| i.records.as_ref().map(|r| r.drain_secs.unwrap_or(f64::INFINITY)),
            format: Format::Decimal("s"),
            ratio: false,
        },
    ];
    let mut table_rows = Vec::new();
    for row in rows {
        let ingest_samples = |system: System| -> Vec<(u32, Sample)> {
            ingests
                .iter()
                .filter(|(record, _)| record.system == system)
                .map(|(record, run)| (record.repeat, sample(record, *run, &row.ingest)))
                .collect()
        };
        let broker: Vec<(u32, Sample)> = match row.broker {
            Some(metric) => {
                brokers.iter().map(|(record, run)| (record.repeat, sample(record, *run, &metric))).collect()
            }
            None => Vec::new(),
        };
        let (roles, all_in_one) = (ingest_samples(System::HeraldRoles), ingest_samples(System::HeraldAllInOne));
        let ratio = |herald: &[(u32, Sample)]| if row.ratio { ratio_cell(herald, &broker) } else { "-".to_owned() };
        let unavailable = |samples: &[(u32, Sample)]| samples.iter().all(|(_, s)| matches!(s, Ok(None)));
        if unavailable(&roles) && unavailable(&all_in_one) && unavailable(&broker) {
            continue;
        }
        table_rows.push(vec![
            row.label.to_owned(),
            cell(&broker, row.format),
            cell(&roles, row.format),
            ratio(&roles),
            cell(&all_in_one, row.format),
            ratio(&all_in_one),
        ]);
    }
    let header = [
        "ingestion",
        "RabbitMQ alone",
        "Herald roles (RabbitMQ)",
        "ratio to broker",
        "Herald all-in-one",
        "ratio to broker",
    ];
    Some(Table {
        title: "Ingestion: closed-loop POST /api/admin/system/notice (custom target) beside the broker's confirmed-publish ceiling".into(),
        header: header.iter().map(|h| (*h).to_owned()).collect(),
        rows: table_rows,
    })
}

/// The whole report: the machine, the tables, the notes.
pub fn render(results: &Results) -> String {
    let mut out = String::new();
    if let Some(m) = &results.machine {
        out.push_str(&format!(
            "Machine: {} CPUs ({}), {} MiB, Linux {}; commit {}\n",
            m.nproc, m.cpu_model, m.memory_mib, m.kernel, m.commit
        ));
        if !m.note.is_empty() {
            out.push_str(&format!("Run: {}\n", m.note));
        }
        out.push('\n');
    }
    let repeats: BTreeSet<u32> = results.runs.iter().map(|r| r.repeat).collect();
    out.push_str(&format!(
        "{} runs, repeats {:?}; each cell is the min-max over repeats; KiB = 1024 bytes.\n\n",
        results.runs.len(),
        repeats
    ));
    for table in [fanout_table(&results.runs), ingest_table(&results.runs)].into_iter().flatten() {
        out.push_str(&table.to_string());
        out.push('\n');
    }
    let busy: Vec<String> = results
        .runs
        .iter()
        .filter(|r| r.idle_gate == IdleGate::Timeout)
        .map(|r| format!("{} {} r{}", r.system.title(), run_name(&r.run), r.repeat))
        .collect();
    if !busy.is_empty() {
        out.push_str(&format!("Started while the machine was busy (idle gate timed out): {}\n", busy.join(", ")));
    }
    for skipped in &results.skipped {
        out.push_str(&format!("Skipped {skipped}\n"));
    }
    out
}

fn run_name(run: &Run) -> String {
    match run {
        Run::Fanout(f) => format!("{} {}", f.mode.name(), clients_label(f.clients)),
        Run::Ingest(_) => "ingest".to_owned(),
        Run::Broker(_) => "broker".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{AcceptPhase, DeliveryPhase, MemoryPhase, PublishTally, RecordsLag};
    use crate::stats::{DeliveryTally, LatencySummary};

    fn fanout(system: System, repeat: u32, mode: Mode, clients: u32, cpu_us: f64) -> RunRecord {
        let tally = DeliveryTally { expected: 10, received: 10, unique: 10, out_of_range: 0 };
        RunRecord {
            system,
            repeat,
            valid: true,
            invalid_reason: None,
            idle_gate: IdleGate::Ok,
            started_unix: 0,
            run: Run::Fanout(FanoutRun {
                mode,
                clients,
                notices: 10,
                publish_concurrency: 8,
                accept: Some(AcceptPhase {
                    cpu_secs: cpu_us / 10.0,
                    broker_cpu_secs: None,
                    connect_wall_secs: 1.0,
                    live_wall_secs: 1.2,
                    warmup_notices: 2,
                }),
                memory: Some(MemoryPhase { rss_before_kib: 1000, rss_after_kib: 3000, kib_per_connection: 2.0 }),
                deliveries: Some(DeliveryPhase {
                    cpu_secs: 1.0,
                    cpu_per_delivery_us: cpu_us,
                    broker_cpu_secs: (system == System::HeraldRoles).then_some(0.5),
                    broker_cpu_per_delivery_us: (system == System::HeraldRoles).then_some(cpu_us / 2.0),
                    tally,
                    lost: 0,
                    duplicates: 0,
                    latency: Some(LatencySummary { samples: 10, p50_ms: 1.0, p99_ms: 2.0, max_ms: 3.0 }),
                    wall_secs: 1.0,
                    deliveries_per_sec: 10.0,
                }),
                publish: PublishTally::default(),
                disconnects: 0,
            }),
        }
    }

    fn invalid(mut record: RunRecord, reason: &str) -> RunRecord {
        record.valid = false;
        record.invalid_reason = Some(reason.to_owned());
        record
    }

    fn row<'a>(table: &'a Table, label: &str) -> &'a [String] {
        table.rows.iter().find(|r| r[0] == label).unwrap_or_else(|| panic!("no row {label}: {table}"))
    }

    #[test]
    fn cells_are_ranges_over_repeats_and_ratios_pair_runs_of_one_repeat() {
        let runs = vec![
            fanout(System::Nchan, 1, Mode::Burst, 1000, 1.0),
            fanout(System::Nchan, 2, Mode::Burst, 1000, 2.0),
            fanout(System::HeraldAllInOne, 1, Mode::Burst, 1000, 3.0),
            fanout(System::HeraldAllInOne, 2, Mode::Burst, 1000, 4.0),
            fanout(System::HeraldRoles, 1, Mode::Burst, 1000, 10.0),
            fanout(System::HeraldRoles, 2, Mode::Burst, 1000, 12.0),
        ];
        let table = fanout_table(&runs).unwrap();
        let cpu = row(&table, "burst 1k: server CPU per delivery");
        assert_eq!(cpu[1..], ["1.00-2.00 µs", "3.00-4.00 µs", "2.00-3.00x", "10.0-12.0 µs", "6.00-10.0x"]);
        // Paired by repeat: 3/1 and 4/2, not the range of all quotients (4/1).
        let broker = row(&table, "burst 1k: RabbitMQ CPU per delivery (not in the above)");
        assert_eq!(broker[1..], ["-", "-", "-", "5.00-6.00 µs", "-"]);
        assert!(table.rows.iter().all(|r| !r[0].starts_with("paced")), "no paced run, no paced row");
        let memory = row(&table, "idle memory per connection at 1k");
        assert_eq!(memory[1], "2.00 KiB");
    }

    #[test]
    fn accept_and_memory_rows_take_both_modes_and_each_client_count_gets_rows() {
        let runs = vec![
            fanout(System::Nchan, 1, Mode::Burst, 10_000, 1.0),
            fanout(System::Nchan, 1, Mode::Paced, 10_000, 3.0),
            fanout(System::HeraldAllInOne, 1, Mode::Burst, 10_000, 2.0),
            fanout(System::HeraldAllInOne, 1, Mode::Paced, 10_000, 3.0),
            fanout(System::Nchan, 1, Mode::Paced, 1000, 5.0),
        ];
        let table = fanout_table(&runs).unwrap();
        let accept = row(&table, "CPU to accept 10k connections (warm-up included)");
        // Accept CPU is cpu_us / 10 here: nchan 0.1 and 0.3, Herald 0.2 and 0.3.
        assert_eq!(accept[1..], ["0.100-0.300 s", "0.200-0.300 s", "1.00-2.00x", "-", "-"]);
        let paced = row(&table, "paced 1k: server CPU per delivery");
        assert_eq!(paced[1..], ["5.00 µs", "-", "-", "-", "-"]);
        assert!(table.rows.iter().any(|r| r[0] == "paced 10k: p99 latency POST->frame"));
    }

    #[test]
    fn an_invalid_run_is_never_a_number_and_takes_no_part_in_ratios() {
        let runs = vec![
            fanout(System::Nchan, 1, Mode::Burst, 1000, 1.0),
            fanout(System::Nchan, 2, Mode::Burst, 1000, 1.0),
            invalid(fanout(System::HeraldAllInOne, 1, Mode::Burst, 1000, 3.0), "lost 3 of 10 deliveries"),
            fanout(System::HeraldAllInOne, 2, Mode::Burst, 1000, 5.0),
            invalid(fanout(System::HeraldRoles, 1, Mode::Burst, 1000, 9.0), "2 publishes answered 503"),
            invalid(fanout(System::HeraldRoles, 2, Mode::Burst, 1000, 9.0), "1 clients disconnected"),
        ];
        let table = fanout_table(&runs).unwrap();
        let cpu = row(&table, "burst 1k: server CPU per delivery");
        assert_eq!(cpu[2], "5.00 µs, INVALID (r1: lost 3 of 10 deliveries)");
        assert_eq!(cpu[3], "5.00x");
        assert_eq!(cpu[4], "INVALID x2 (r1: 2 publishes answered 503)");
        assert_eq!(cpu[5], "-");
    }

    #[test]
    fn ingestion_sits_beside_the_broker_with_per_repeat_ratios() {
        let ingest = |system, repeat, rate: f64, records| RunRecord {
            system,
            repeat,
            valid: true,
            invalid_reason: None,
            idle_gate: IdleGate::Timeout,
            started_unix: 0,
            run: Run::Ingest(IngestRun {
                concurrency: 32,
                duration_secs: 10.0,
                accepted_per_sec: rate,
                status_503: 7,
                records,
                ..IngestRun::default()
            }),
        };
        let broker = |repeat, rate| RunRecord {
            system: System::Rabbitmq,
            repeat,
            valid: true,
            invalid_reason: None,
            idle_gate: IdleGate::Ok,
            started_unix: 0,
            run: Run::Broker(BrokerRun { confirmed_per_sec: rate, ..BrokerRun::default() }),
        };
        let lag = |drain| {
            Some(RecordsLag { queue: "q".into(), depth_at_end: 120, drain_secs: drain, drain_limit_secs: 60.0 })
        };
        let runs = vec![
            broker(1, 20_000.0),
            broker(2, 10_000.0),
            ingest(System::HeraldRoles, 1, 5000.0, lag(Some(1.5))),
            ingest(System::HeraldRoles, 2, 5000.0, lag(None)),
            ingest(System::HeraldAllInOne, 1, 2000.0, None),
        ];
        let table = ingest_table(&runs).unwrap();
        let rate = row(&table, "notices/s accepted (broker: confirmed publishes/s)");
        assert_eq!(rate[1..], ["10000-20000 /s", "5000 /s", "0.250-0.500x", "2000 /s", "0.100x"]);
        let refused = row(&table, "503 answers in the window (QUEUE_FULL)");
        assert_eq!(refused[1..], ["-", "7", "-", "7", "-"]);
        let drain = row(&table, "record-writer drain time (∞ = not within the limit)");
        assert_eq!(drain[2], "1.50-∞ s");
        let report = render(&Results { runs, machine: None, skipped: vec![] });
        assert!(
            report.contains(
                "Started while the machine was busy (idle gate timed out): Herald roles (RabbitMQ) ingest r1"
            )
        );
    }

    #[test]
    fn a_table_pads_every_column_to_its_widest_cell() {
        let table = Table {
            title: "T".into(),
            header: vec!["a".into(), "µs".into()],
            rows: vec![vec!["long cell".into(), "1".into()]],
        };
        assert_eq!(table.to_string(), "T\n\n| a         | µs |\n|-----------|----|\n| long cell | 1  |\n");
    }

    #[test]
    fn results_are_read_from_a_directory_and_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("loadgen-report-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        fanout(System::Nchan, 1, Mode::Burst, 1000, 1.0).write(&dir.join("a.json")).unwrap();
        std::fs::write(dir.join("broken.json"), "{").unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let machine = MachineInfo::detect("abc123".into(), "knobs".into());
        std::fs::write(dir.join(MACHINE_FILE), serde_json::to_string(&machine).unwrap()).unwrap();
        let results = Results::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(results.runs.len(), 1);
        assert_eq!(results.machine.unwrap().commit, "abc123");
        assert_eq!(results.skipped.len(), 1);
        assert!(results.skipped[0].contains("broken.json"));
    }
}
