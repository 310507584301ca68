//! `herald-loadgen soak`: a bounded soak. Steady notices (each to one user) for online users,
//! whose clients acknowledge, report reads and reconnect now and then, and for offline users,
//! who check in from time to time to take their inbox; meanwhile the servers' resident memory
//! and open descriptors, the queues' depths and Redis's memory are sampled. At the end every
//! user checks in once more and each accepted notice is accounted for: delivered (live or
//! replayed) or reported dropped by an `offline_overflow` frame, or lost. A growth table and a
//! verdict close the output. `scripts/soak.sh` drives it.

use anyhow::{Context, Result, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use runtime::{Claims, JwtIssuer, JwtSettings, Role};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// How long a client waits for a frame before it looks at the clock again.
const READ_TICK: Duration = Duration::from_millis(500);
/// How long a check-in may take (connect, replay, pong).
const CHECKIN_LIMIT: Duration = Duration::from_secs(30);
/// RSS may grow this much between the end of the warm-up and the end, per process.
const RSS_GROWTH_LIMIT: f64 = 0.05;

/// `herald-loadgen soak`'s arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct SoakArgs {
    /// Herald's API base, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    pub api: String,
    /// Herald's WebSocket URL, e.g. `ws://127.0.0.1:8080/ws`.
    #[arg(long)]
    pub ws: String,
    /// Herald's JWT secret, to mint the tokens.
    #[arg(long)]
    pub token_secret: String,
    /// The soak's length, seconds (the warm-up included).
    #[arg(long, default_value_t = 1800)]
    pub duration_secs: u64,
    /// Seconds at the start after which growth is measured.
    #[arg(long, default_value_t = 120)]
    pub warmup_secs: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 5)]
    pub sample_secs: u64,
    /// Notices posted per second.
    #[arg(long, default_value_t = 20)]
    pub rate: u32,
    /// Users holding a WebSocket.
    #[arg(long, default_value_t = 100)]
    pub online: u32,
    /// Users who only check in now and then.
    #[arg(long, default_value_t = 100)]
    pub offline: u32,
    /// Mean seconds an online client stays connected before it reconnects.
    #[arg(long, default_value_t = 60)]
    pub reconnect_secs: u64,
    /// Seconds between two check-ins of one offline user.
    #[arg(long, default_value_t = 60)]
    pub checkin_secs: u64,
    /// The first user id; online users come first, then offline ones.
    #[arg(long, default_value_t = 3_000_000)]
    pub first_user: i64,
    /// Processes to sample, as `name=pid`, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub process: Vec<String>,
    /// RabbitMQ, to sample the depth of `--queue`s.
    #[arg(long)]
    pub amqp_url: Option<String>,
    /// Durable queues to sample (full names), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub queue: Vec<String>,
    /// Redis (a `redis://` URL), to sample its `used_memory`.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// What the run is called in the output.
    #[arg(long, default_value = "Herald")]
    pub label: String,
}

/// What every task writes into: the notices accepted, who saw what.
#[derive(Default)]
struct Ledger {
    /// Accepted notices: message id -> recipient.
    accepted: Mutex<HashMap<String, i64>>,
    /// Message ids each user received (live or replayed).
    seen: Mutex<HashMap<i64, HashSet<String>>>,
    frames: AtomicU64,
    duplicates: AtomicU64,
    dropped_reported: AtomicU64,
    refused: AtomicU64,
    rate_limited: AtomicU64,
    failed_posts: AtomicU64,
    first_failure: Mutex<Option<String>>,
    connects: AtomicU64,
    failed_connects: AtomicU64,
    closed_by_server: AtomicU64,
}

impl Ledger {
    fn saw(&self, user: i64, message_id: &str) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if !seen.entry(user).or_default().insert(message_id.to_owned()) {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn failure(&self, what: String) {
        self.failed_posts.fetch_add(1, Ordering::Relaxed);
        self.first_failure.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(what);
    }
}

/// One sample of the servers.
#[derive(Clone, Debug)]
struct Sample {
    at_secs: f64,
    /// Per process: RSS in KiB, open descriptors, and the anonymous part of the RSS in KiB (the
    /// heap and stacks, without the binary's and libraries' file-backed pages).
    processes: Vec<(u64, u64, u64)>,
    /// Ready messages over the sampled queues.
    queued: Option<u64>,
    redis_bytes: Option<u64>,
}

/// Runs the soak and prints its report; `Ok(false)` when the verdict is FAIL.
pub async fn run(args: &SoakArgs) -> Result<bool> {
    ensure!(args.duration_secs > args.warmup_secs, "--duration-secs must exceed --warmup-secs");
    ensure!(args.rate > 0 && args.online > 0, "--rate and --online must be positive");
    let processes: Vec<(String, u32)> = args
        .process
        .iter()
        .map(|p| {
            let (name, pid) = p.split_once('=').with_context(|| format!("--process {p}: expected name=pid"))?;
            Ok((name.to_owned(), pid.parse().with_context(|| format!("--process {p}: the pid"))?))
        })
        .collect::<Result<_>>()?;
    let issuer = JwtIssuer::new(&JwtSettings { secret: args.token_secret.clone().into(), ..JwtSettings::default() });
    let lifetime = Duration::from_secs(args.duration_secs + 3600);
    let admin = issuer.issue(&Claims::new(1, "soak-admin", Role::Admin, lifetime))?;
    let online: Vec<i64> = (0..i64::from(args.online)).map(|i| args.first_user + i).collect();
    let offline: Vec<i64> =
        (0..i64::from(args.offline)).map(|i| args.first_user + i64::from(args.online) + i).collect();
    let token = |user: i64| issuer.issue(&Claims::new(user, format!("soak-{user}"), Role::User, lifetime));
    let tokens: HashMap<i64, String> =
        online.iter().chain(&offline).map(|user| Ok((*user, token(*user)?))).collect::<Result<_>>()?;
    let tokens = Arc::new(tokens);
    let ledger = Arc::new(Ledger::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    println!(
        "soak {}: {} s ({} s warm-up), {} notices/s, {} online users (reconnecting every ~{} s), {} offline \
         (checking in every {} s)",
        args.label,
        args.duration_secs,
        args.warmup_secs,
        args.rate,
        args.online,
        args.reconnect_secs,
        args.offline,
        args.checkin_secs
    );

    let mut clients = Vec::new();
    for (index, user) in online.iter().enumerate() {
        let (ws, token, ledger, stop) = (args.ws.clone(), tokens[user].clone(), ledger.clone(), stop.clone());
        let hold = Duration::from_secs(args.reconnect_secs.max(1));
        // Staggered, so the clients do not all reconnect at once.
        let offset = hold.mul_f64(index as f64 / online.len() as f64);
        clients.push(tokio::spawn(online_client(ws, *user, token, hold, offset, ledger, stop)));
    }
    let checkins = (!offline.is_empty()).then(|| {
        let (ws, tokens, ledger, stop, users) =
            (args.ws.clone(), tokens.clone(), ledger.clone(), stop.clone(), offline.clone());
        let every = Duration::from_secs(args.checkin_secs.max(1)).div_f64(users.len() as f64);
        tokio::spawn(async move {
            let mut next = 0;
            while !stop.load(Ordering::Relaxed) {
                let user = users[next % users.len()];
                next += 1;
                let (ws, token, ledger) = (ws.clone(), tokens[&user].clone(), ledger.clone());
                tokio::spawn(async move { checkin(&ws, user, &token, &ledger).await });
                tokio::time::sleep(every).await;
            }
        })
    });
    let poster = {
        let (api, admin, ledger, stop) = (args.api.clone(), admin.clone(), ledger.clone(), stop.clone());
        let users: Vec<i64> = online.iter().chain(&offline).copied().collect();
        let rate = args.rate;
        tokio::spawn(async move { post(&api, &admin, &users, rate, &ledger, &stop).await })
    };
    let sampler = {
        let (args, stop) = (args.clone(), stop.clone());
        let processes = processes.clone();
        tokio::spawn(async move { sample(&args, &processes, started, &stop).await })
    };

    tokio::time::sleep(Duration::from_secs(args.duration_secs)).await;
    stop.store(true, Ordering::Relaxed);
    poster.await.context("the poster panicked")??;
    if let Some(checkins) = checkins {
        checkins.await.context("the check-ins panicked")?;
    }
    for client in clients {
        client.await.context("a client panicked")?;
    }
    let samples = sampler.await.context("the sampler panicked")??;
    // Whatever is still in an inbox now: every user checks in once more.
    let finals = online.iter().chain(&offline).map(|user| {
        let (ws, token, ledger) = (args.ws.clone(), tokens[user].clone(), ledger.clone());
        let user = *user;
        async move { checkin(&ws, user, &token, &ledger).await }
    });
    let finals: Vec<bool> = futures_util::stream::iter(finals).buffer_unordered(32).collect().await;
    let unchecked = finals.iter().filter(|ok| !**ok).count();
    report(args, &processes, &samples, &ledger, unchecked)
}

/// An online user's client: connects, acknowledges every notice (and reports every fifth read),
/// leaves after about `hold`, reconnects, until `stop`.
async fn online_client(
    ws: String,
    user: i64,
    token: String,
    hold: Duration,
    offset: Duration,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) {
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let stay = if first { offset.max(Duration::from_secs(1)) } else { hold.mul_f64(0.5 + jitter()) };
        first = false;
        let url = format!("{ws}?token={token}");
        let mut socket = match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((socket, _)) => socket,
            Err(_) => {
                ledger.failed_connects.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        ledger.connects.fetch_add(1, Ordering::Relaxed);
        let leave = Instant::now() + stay;
        let mut received = 0u64;
        while Instant::now() < leave && !stop.load(Ordering::Relaxed) {
            match tokio::time::timeout(READ_TICK, socket.next()).await {
                Err(_) => {}
                Ok(Some(Ok(Message::Text(text)))) => {
                    for answer in on_frame(user, &text, &ledger, &mut received) {
                        let _ = socket.send(Message::text(answer)).await;
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => {
                    ledger.closed_by_server.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        let _ = socket.close(None).await;
    }
}

/// What a client answers to a frame: an ack for each notice (and a read report for every fifth);
/// nothing for the gateway's own frames.
fn on_frame(user: i64, text: &str, ledger: &Ledger, received: &mut u64) -> Vec<String> {
    let Ok(frame) = serde_json::from_str::<Value>(text) else { return Vec::new() };
    match frame["type"].as_str() {
        Some("offline_overflow") => {
            ledger.dropped_reported.fetch_add(frame["data"]["dropped"].as_u64().unwrap_or(0), Ordering::Relaxed);
            Vec::new()
        }
        Some("pong" | "sync" | "error") | None => Vec::new(),
        Some(_) => {
            let Some(id) = frame["message_id"].as_str() else { return Vec::new() };
            ledger.saw(user, id);
            *received += 1;
            let mut answers = vec![json!({"type": "ack", "message_id": id}).to_string()];
            if received.is_multiple_of(5) {
                answers.push(json!({"type": "read", "message_id": id}).to_string());
            }
            answers
        }
    }
}

/// A user connects, takes the replay of their inbox (everything before the pong), acknowledges
/// it and leaves; `false` if that did not work out.
async fn checkin(ws: &str, user: i64, token: &str, ledger: &Ledger) -> bool {
    let visit = async {
        let url = format!("{ws}?token={token}");
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.ok()?;
        ledger.connects.fetch_add(1, Ordering::Relaxed);
        socket.send(Message::text(r#"{"type":"ping"}"#)).await.ok()?;
        let mut received = 0u64;
        loop {
            let Some(Ok(message)) = socket.next().await else { return None };
            let Message::Text(text) = message else { continue };
            if serde_json::from_str::<Value>(&text).is_ok_and(|v| v["type"] == "pong") {
                break;
            }
            for answer in on_frame(user, &text, ledger, &mut received) {
                socket.send(Message::text(answer)).await.ok()?;
            }
        }
        // The acks are read before the close.
        let _ = socket.close(None).await;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(2), socket.next()).await {}
        Some(())
    };
    let visited = matches!(tokio::time::timeout(CHECKIN_LIMIT, visit).await, Ok(Some(())));
    if !visited {
        ledger.failed_connects.fetch_add(1, Ordering::Relaxed);
    }
    visited
}

/// Posts `rate` notices a second, each to one user in turn, until `stop`.
async fn post(api: &str, admin: &str, users: &[i64], rate: u32, ledger: &Ledger, stop: &AtomicBool) -> Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let url = format!("{api}/api/admin/system/notice");
    let mut tick = tokio::time::interval(Duration::from_secs(1).div_f64(f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            _ = tick.tick() => {
                let user = users[(n % users.len() as u64) as usize];
                let body = json!({"content": format!("soak {n}"), "target": "custom", "user_ids": [user]});
                n += 1;
                let request = http.post(&url).bearer_auth(admin).json(&body).send();
                in_flight.push(async move { (user, request.await) });
            }
            Some((user, answer)) = in_flight.next(), if !in_flight.is_empty() => settle(user, answer, ledger).await,
        }
    }
    while let Some((user, answer)) = in_flight.next().await {
        settle(user, answer, ledger).await;
    }
    Ok(())
}

async fn settle(user: i64, answer: reqwest::Result<reqwest::Response>, ledger: &Ledger) {
    let response = match answer {
        Ok(response) => response,
        Err(err) => return ledger.failure(format!("{err:#}")),
    };
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match status {
        200 => match body["data"]["message_id"].as_str() {
            Some(id) => {
                ledger.accepted.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned(), user);
            }
            None => ledger.failure(format!("a 200 without a message id: {body}")),
        },
        503 => {
            ledger.refused.fetch_add(1, Ordering::Relaxed);
        }
        429 => {
            ledger.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        other => ledger.failure(format!("HTTP {other}: {body}")),
    }
}

/// Samples every `--sample-secs` until `stop`.
async fn sample(
    args: &SoakArgs,
    processes: &[(String, u32)],
    started: Instant,
    stop: &AtomicBool,
) -> Result<Vec<Sample>> {
    let amqp = match &args.amqp_url {
        Some(url) if !args.queue.is_empty() => Some(crate::ingest::open_channel(url).await?),
        _ => None,
    };
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(args.sample_secs.max(1)));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let mut measured = Vec::with_capacity(processes.len());
        for (name, pid) in processes {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .with_context(|| format!("{name} (pid {pid}) is gone"))?;
            let rss = crate::usage::rss_kib(&status)?;
            let anon = crate::usage::status_kib(&status, "RssAnon:").unwrap_or(0);
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|dir| dir.count() as u64).unwrap_or(0);
            measured.push((rss, fds, anon));
        }
        let queued = match &amqp {
            Some((_connection, channel)) => {
                let mut total = 0;
                for queue in &args.queue {
                    total += u64::from(crate::ingest::queue_depth(channel, queue).await?);
                }
                Some(total)
            }
            None => None,
        };
        let redis_bytes = args.redis_url.as_deref().and_then(redis_used_memory);
        samples.push(Sample { at_secs: started.elapsed().as_secs_f64(), processes: measured, queued, redis_bytes });
    }
    Ok(samples)
}

/// Redis's `used_memory`, through `redis-cli`.
fn redis_used_memory(url: &str) -> Option<u64> {
    let output = std::process::Command::new("redis-cli").args(["-u", url, "INFO", "memory"]).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines().find_map(|line| line.trim().strip_prefix("used_memory:")?.parse().ok())
}

/// A number in [0, 1), from the random bits of a v4 UUID.
fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() as u32) as f64 / (f64::from(u32::MAX) + 1.0)
}

/// The median of the values `of` picks from the samples in `[from, to)` seconds.
fn median(samples: &[Sample], from: f64, to: f64, of: impl Fn(&Sample) -> Option<u64>) -> Option<u64> {
    let mut values: Vec<u64> = samples.iter().filter(|s| s.at_secs >= from && s.at_secs < to).filter_map(of).collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

fn report(
    args: &SoakArgs,
    processes: &[(String, u32)],
    samples: &[Sample],
    ledger: &Ledger,
    unchecked: usize,
) -> Result<bool> {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let header: String = processes.iter().map(|(name, _)| format!("  {:>22}", format!("{name} MiB/fds"))).collect();
    println!("\n  time  {header}  queued  redis MiB");
    let mut last_minute = None;
    for sample in samples {
        let minute = (sample.at_secs / 60.0) as u64;
        if last_minute == Some(minute) {
            continue;
        }
        last_minute = Some(minute);
        let per_process: String = sample
            .processes
            .iter()
            .map(|(rss, fds, _)| format!("  {:>22}", format!("{:.1}/{fds}", mib(*rss))))
            .collect();
        println!(
            "  {:>4.0}s{per_process}  {:>6}  {:>9}",
            sample.at_secs,
            sample.queued.map_or("-".to_owned(), |q| q.to_string()),
            sample.redis_bytes.map_or("-".to_owned(), |b| format!("{:.1}", b as f64 / 1_048_576.0))
        );
    }
    // Growth: the median of the minute after the warm-up against the median of the last minute.
    let warm = args.warmup_secs as f64;
    let end = samples.last().map_or(warm, |s| s.at_secs + 1.0);
    let last = (end - 60.0).max(warm + 60.0);
    let mut failures = Vec::new();
    println!("\n  growth from the end of the warm-up ({warm:.0}-{:.0} s) to the last minute:", warm + 60.0);
    for (index, (name, _)) in processes.iter().enumerate() {
        let rss = |s: &Sample| s.processes.get(index).map(|p| p.0);
        let fds = |s: &Sample| s.processes.get(index).map(|p| p.1);
        let anon = |s: &Sample| s.processes.get(index).map(|p| p.2);
        let (Some(rss_warm), Some(rss_end)) =
            (median(samples, warm, warm + 60.0, rss), median(samples, last, end, rss))
        else {
            bail!("too few samples after the warm-up to measure growth");
        };
        let (fds_warm, fds_end) =
            (median(samples, warm, warm + 60.0, fds).unwrap_or(0), median(samples, last, end, fds).unwrap_or(0));
        let growth = rss_end as f64 / rss_warm as f64 - 1.0;
        // Descriptors follow the connections of the moment; allow the churn of reconnecting clients.
        let fd_slack = (u64::from(args.online) / 20).max(5);
        let (anon_warm, anon_end) =
            (median(samples, warm, warm + 60.0, anon).unwrap_or(0), median(samples, last, end, anon).unwrap_or(0));
        println!(
            "  {name:>18}: RSS {:.1} -> {:.1} MiB ({:+.1}%; of it anonymous {:.1} -> {:.1} MiB), descriptors {fds_warm} -> {fds_end}",
            mib(rss_warm),
            mib(rss_end),
            growth * 100.0,
            mib(anon_warm),
            mib(anon_end)
        );
        if growth > RSS_GROWTH_LIMIT {
            failures.push(format!("{name}'s RSS grew {:.1}%", growth * 100.0));
        }
        if fds_end > fds_warm + fd_slack {
            failures.push(format!("{name}'s descriptors grew from {fds_warm} to {fds_end}"));
        }
    }
    if let (Some(a), Some(b)) =
        (median(samples, warm, warm + 60.0, |s| s.redis_bytes), median(samples, last, end, |s| s.redis_bytes))
    {
        println!("  {:>18}: used_memory {:.1} -> {:.1} MiB", "redis", a as f64 / 1_048_576.0, b as f64 / 1_048_576.0);
    }
    let most_queued = samples.iter().filter_map(|s| s.queued).max();
    if let Some(most) = most_queued {
        let final_depth = samples.last().and_then(|s| s.queued).unwrap_or(0);
        println!("  {:>18}: at most {most} messages ready, {final_depth} at the end", "queues");
    }

    let accepted = ledger.accepted.lock().unwrap_or_else(PoisonError::into_inner);
    let seen = ledger.seen.lock().unwrap_or_else(PoisonError::into_inner);
    let delivered = accepted.iter().filter(|(id, user)| seen.get(*user).is_some_and(|ids| ids.contains(*id))).count();
    let dropped = ledger.dropped_reported.load(Ordering::Relaxed);
    let missing = accepted.len() - delivered;
    let lost = (missing as u64).saturating_sub(dropped);
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    by_kind.insert("refused (503)", ledger.refused.load(Ordering::Relaxed));
    by_kind.insert("rate-limited (429)", ledger.rate_limited.load(Ordering::Relaxed));
    by_kind.insert("failed", ledger.failed_posts.load(Ordering::Relaxed));
    println!(
        "\n  accounting: {} accepted = {delivered} delivered (live or replayed) + {dropped} reported dropped + {lost} lost; \
         {:?}; {} notice frames, {} duplicates (same message id); {} connections, {} failed, {} closed by the server; \
         {unchecked} final check-ins failed",
        accepted.len(),
        by_kind,
        ledger.frames.load(Ordering::Relaxed),
        ledger.duplicates.load(Ordering::Relaxed),
        ledger.connects.load(Ordering::Relaxed),
        ledger.failed_connects.load(Ordering::Relaxed),
        ledger.closed_by_server.load(Ordering::Relaxed),
    );
    if lost > 0 {
        failures.push(format!("{lost} accepted notices never delivered"));
    }
    if let Some(first) = ledger.first_failure.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
        failures.push(format!("{} posts failed (first: {first})", ledger.failed_posts.load(Ordering::Relaxed)));
    }
    if unchecked > 0 {
        failures.push(format!("{unchecked} final check-ins failed"));
    }
    if failures.is_empty() {
        println!("  => PASS");
    } else {
        println!("  => FAIL: {}", failures.join("; "));
    }
    Ok(failures.is_empty())
}
