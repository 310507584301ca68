//! `herald-loadgen ingest`: how many notices Herald's API accepts per second, closed loop.
//! `--concurrency` posters each keep one HTTP/1.1 connection and post the next notice as soon
//! as the previous one is answered; each notice is a `custom` notice for one user of a small
//! fixed set, so every accepted notice also writes an offline inbox entry. After the window,
//! optionally, how far the record-writer's queue is behind and how long it takes to drain.

use crate::OutputArgs;
use crate::result::{IngestRun, RecordsLag, Run, RunRecord, System};
use crate::stats::LatencySummary;
use anyhow::{Context, Result, ensure};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use runtime::{Claims, JwtIssuer, JwtSettings, Role};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The first of the users the notices are addressed to.
pub const FIRST_RECIPIENT: i64 = 900_001;
/// How many users the notices rotate over.
pub const RECIPIENTS: u64 = 16;
/// What a poster waits after a 503 or 429 before it posts again.
const BACKOFF: Duration = Duration::from_millis(50);
/// How often the records queue is polled while it drains.
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// `herald-loadgen ingest`'s arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct IngestArgs {
    /// Herald's notice URL, e.g. `http://127.0.0.1:8080/api/admin/system/notice`.
    #[arg(long)]
    pub url: String,
    /// Herald's JWT secret, to mint the admin token.
    #[arg(long)]
    pub token_secret: String,
    /// Posters, each with its own keep-alive connection.
    #[arg(long, default_value_t = 32)]
    pub concurrency: u32,
    /// The measured window, seconds.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Seconds of posting before the window, not counted.
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// The record-writer's queue to watch after the window (`<prefix>.records`).
    #[arg(long, requires = "amqp_url")]
    pub records_queue: Option<String>,
    /// RabbitMQ, for `--records-queue`.
    #[arg(long)]
    pub amqp_url: Option<String>,
    /// The notices' priority: `normal` goes through the ingress backlog, `urgent` straight to the
    /// exchange (to measure what the backlog's detour costs).
    #[arg(long, default_value = "normal")]
    pub priority: String,
    /// The longest wait for the records queue to drain, seconds.
    #[arg(long, default_value_t = 60)]
    pub drain_limit_secs: u64,
    /// The report column.
    #[arg(long, value_enum, default_value_t = System::HeraldAllInOne)]
    pub system: System,
    /// Output and labels.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// One poster's counts within the window.
#[derive(Default)]
struct PosterTally {
    accepted: u64,
    status_503: u64,
    status_429: u64,
    other: u64,
    first_other: Option<String>,
    latencies_us: Vec<u32>,
    /// 200 answers completed in each second of the window.
    per_second: Vec<u64>,
}

/// Runs one ingestion measurement; a failure becomes an invalid record.
pub async fn run(args: &IngestArgs) -> RunRecord {
    let started_unix = crate::unix_now();
    let mut measured = IngestRun {
        concurrency: args.concurrency,
        duration_secs: args.duration_secs as f64,
        warmup_secs: args.warmup_secs as f64,
        ..IngestRun::default()
    };
    let failure = measure(args, &mut measured).await.err().map(|err| format!("{err:#}"));
    let invalid_reason = failure.or_else(|| verdict(&measured));
    print_summary(args, &measured);
    RunRecord {
        system: args.system,
        repeat: args.output.repeat,
        valid: invalid_reason.is_none(),
        invalid_reason,
        idle_gate: args.output.idle_gate,
        started_unix,
        run: Run::Ingest(measured),
    }
}

/// Why an ingestion run cannot be reported as a number: nothing accepted, a 429 (the rate
/// limits were not off), or any answer other than 200 and 503. 503s are back-pressure: counted
/// and reported, not a failure.
pub fn verdict(run: &IngestRun) -> Option<String> {
    let mut reasons = Vec::new();
    if run.accepted == 0 {
        reasons.push("no notice accepted in the window".to_owned());
    }
    if run.status_429 > 0 {
        reasons.push(format!("{} answers 429 (rate limits on?)", run.status_429));
    }
    if run.other > 0 {
        reasons.push(format!("{} failed requests (first: {})", run.other, run.first_other.as_deref().unwrap_or("?")));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

async fn measure(args: &IngestArgs, run: &mut IngestRun) -> Result<()> {
    ensure!(args.concurrency > 0 && args.duration_secs > 0, "--concurrency and --duration-secs must be positive");
    let issuer = JwtIssuer::new(&JwtSettings { secret: args.token_secret.clone().into(), ..JwtSettings::default() });
    let token = issuer.issue(&Claims::new(1, "bench-admin", Role::Admin, Duration::from_secs(3600)))?;
    let records = match (&args.records_queue, &args.amqp_url) {
        // Connected before the window so that the first depth is read the moment it ends.
        (Some(queue), Some(url)) => Some((queue.clone(), open_channel(url).await?)),
        _ => None,
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.concurrency as usize)
        .build()?;
    let start = Instant::now();
    let window_start = start + Duration::from_secs(args.warmup_secs);
    let window_end = window_start + Duration::from_secs(args.duration_secs);
    let counter = Arc::new(AtomicU64::new(0));
    let posters: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (http, url, token, counter) = (http.clone(), args.url.clone(), token.clone(), counter.clone());
            let window = Window { start: window_start, end: window_end, secs: args.duration_secs };
            tokio::spawn(poster(http, url, token, args.priority.clone(), counter, window))
        })
        .collect();
    let mut latencies = Vec::new();
    run.accepted_each_second = vec![0; args.duration_secs as usize];
    for poster in futures_util::future::join_all(posters).await {
        let tally = poster.context("a poster panicked")?;
        run.accepted_each_second.iter_mut().zip(&tally.per_second).for_each(|(total, mine)| *total += mine);
        run.accepted += tally.accepted;
        run.status_503 += tally.status_503;
        run.status_429 += tally.status_429;
        run.other += tally.other;
        if run.first_other.is_none() {
            run.first_other = tally.first_other;
        }
        latencies.extend(tally.latencies_us);
    }
    run.accepted_per_sec = run.accepted as f64 / args.duration_secs as f64;
    run.latency = LatencySummary::from_micros(latencies);
    if let Some((queue, (_connection, channel))) = records {
        run.records = Some(watch_drain(&channel, &queue, Duration::from_secs(args.drain_limit_secs)).await?);
    }
    Ok(())
}

/// The measured window.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
    secs: u64,
}

/// One closed-loop poster: posts until the window ends, counting what completes inside it.
async fn poster(
    http: reqwest::Client,
    url: String,
    token: String,
    priority: String,
    counter: Arc<AtomicU64>,
    window: Window,
) -> PosterTally {
    let Window { start: window_start, end: window_end, secs: window_secs } = window;
    let mut tally = PosterTally { per_second: vec![0; window_secs as usize], ..PosterTally::default() };
    while Instant::now() < window_end {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::json!({
            "content": format!("bench-ingest-{n}"),
            "type": "system_notice",
            "target": "custom",
            "user_ids": [FIRST_RECIPIENT + (n % RECIPIENTS) as i64],
            "priority": priority,
        });
        let sent = Instant::now();
        let answer = match http.post(&url).bearer_auth(&token).json(&body).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                Ok(status)
            }
            Err(err) => Err(format!("{err:#}")),
        };
        let done = Instant::now();
        let counted = done >= window_start && done < window_end;
        let back_off = matches!(answer, Ok(503 | 429));
        if counted {
            match answer {
                Ok(200) => {
                    tally.accepted += 1;
                    let second = done.duration_since(window_start).as_secs() as usize;
                    if let Some(count) = tally.per_second.get_mut(second) {
                        *count += 1;
                    }
                    tally.latencies_us.push(done.duration_since(sent).as_micros().min(u128::from(u32::MAX)) as u32);
                }
                Ok(503) => tally.status_503 += 1,
                Ok(429) => tally.status_429 += 1,
                Ok(status) => {
                    tally.other += 1;
                    tally.first_other.get_or_insert(format!("HTTP {status}"));
                }
                Err(err) => {
                    tally.other += 1;
                    tally.first_other.get_or_insert(err);
                }
            }
        }
        if back_off {
            tokio::time::sleep(BACKOFF).await;
        }
    }
    tally
}

/// Opens a connection to RabbitMQ at `url` and a channel on it (keep both).
pub async fn open_channel(url: &str) -> Result<(Connection, Channel)> {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .with_context(|| format!("connecting to {}", runtime::redact_url(url)))?;
    let channel = connection.create_channel().await?;
    Ok((connection, channel))
}

/// Ready messages in `queue` now (a passive declare: it must exist).
pub async fn queue_depth(channel: &Channel, queue: &str) -> Result<u32> {
    let options = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    let declared = channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .with_context(|| format!("reading the depth of {queue}"))?;
    Ok(declared.message_count())
}

async fn watch_drain(channel: &Channel, queue: &str, limit: Duration) -> Result<RecordsLag> {
    let depth_at_end = queue_depth(channel, queue).await?;
    let started = Instant::now();
    let mut depth = depth_at_end;
    let drain_secs = loop {
        if depth == 0 {
            break Some(started.elapsed().as_secs_f64());
        }
        if started.elapsed() >= limit {
            break None;
        }
        tokio::time::sleep(DRAIN_POLL).await;
        depth = queue_depth(channel, queue).await?;
    };
    Ok(RecordsLag { queue: queue.to_owned(), depth_at_end, drain_secs, drain_limit_secs: limit.as_secs_f64() })
}

fn print_summary(args: &IngestArgs, run: &IngestRun) {
    println!(
        "ingest {} concurrency={} window={} s (after {} s warm-up):",
        args.system.title(),
        run.concurrency,
        run.duration_secs,
        run.warmup_secs
    );
    let latency =
        run.latency.map_or_else(String::new, |l| format!(", latency p50 {:.2} ms, p99 {:.2} ms", l.p50_ms, l.p99_ms));
    println!(
        "  {:.0} notices/s accepted ({} in the window){latency}; {} x 503, {} x 429, {} other",
        run.accepted_per_sec, run.accepted, run.status_503, run.status_429, run.other
    );
    println!("  accepted in each second of the window: {:?}", run.accepted_each_second);
    if let Some(records) = &run.records {
        let drain = records.drain_secs.map_or_else(
            || format!("not drained within {} s", records.drain_limit_secs),
            |s| format!("drained in {s:.1} s"),
        );
        println!("  record-writer: {} ready messages in {} at the end, {drain}", records.depth_at_end, records.queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_pressure_is_reported_but_refusals_of_other_kinds_invalidate() {
        let clean = IngestRun { accepted: 10, status_503: 4, ..IngestRun::default() };
        assert_eq!(verdict(&clean), None);
        let limited = IngestRun { accepted: 10, status_429: 1, ..IngestRun::default() };
        assert_eq!(verdict(&limited).unwrap(), "1 answers 429 (rate limits on?)");
        let broken = IngestRun { accepted: 0, other: 2, first_other: Some("HTTP 500".into()), ..IngestRun::default() };
        assert_eq!(verdict(&broken).unwrap(), "no notice accepted in the window; 2 failed requests (first: HTTP 500)");
    }
}
