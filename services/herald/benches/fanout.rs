//! Fan-out benchmark: the release `herald` binary (all-in-one, in-process bus) with many
//! WebSocket clients, measured from outside. Prints numbers; asserts nothing but delivery.
//!
//! `scripts/bench-fanout.sh` runs it (`cargo bench -p herald --bench fanout`). Knobs:
//! `BENCH_CONNECTIONS` (default 2000), `BENCH_NOTICES` (broadcasts, default 200),
//! `BENCH_BURST` (notices posted concurrently, default 8).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use futures_util::{SinkExt, StreamExt};
use runtime::testing::{eventually, holds};
use runtime::{Claims, JwtIssuer, JwtSettings, Role};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "herald-bench-secret-0123456789";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

/// (user+system CPU seconds, resident memory in KiB) of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss =
        status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    (ticks as f64 / 100.0, rss)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    runtime::install_crypto_provider();
    let connections = env_or("BENCH_CONNECTIONS", 2000);
    let notices = env_or("BENCH_NOTICES", 200);
    let burst = env_or("BENCH_BURST", 8).max(1);

    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .env("HERALD_HTTP_ADDR", addr.to_string())
        .env("HERALD_JWT_SECRET", SECRET)
        .env("HERALD_LOG_LEVEL", "warn")
        .env("HERALD_LIMITS_SENDER_PER_SECOND", "0")
        .env("HERALD_LIMITS_IP_PER_SECOND", "0")
        .env_remove("HERALD_BUS_URL")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = server.id().unwrap();
    let http = reqwest::Client::new();
    eventually("herald to become ready", Duration::from_secs(60), || async {
        let response = http.get(format!("http://{addr}/readyz")).send().await.map_err(|err| err.to_string())?;
        holds(response.status().is_success(), response.status())
    })
    .await;
    let (_, rss_idle) = usage(pid);

    let issuer = JwtIssuer::new(&JwtSettings { secret: SECRET.to_owned().into(), ..JwtSettings::default() });
    let token =
        |sub: i64, role: Role| issuer.issue(&Claims::new(sub, "bench", role, Duration::from_secs(3600))).unwrap();
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(connections * notices)));
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::with_capacity(connections);
    for n in 0..connections {
        let url = format!("ws://{addr}/ws?token={}", token(n as i64 + 10, Role::User));
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect (raise ulimit -n?)");
        // Connected means live: the gateway answers a ping once the session is registered.
        ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if text.contains("pong") => break,
                Some(Ok(_)) => {}
                other => panic!("connection ended before its pong: {other:?}"),
            }
        }
        let (latencies, received) = (latencies.clone(), received.clone());
        readers.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(notices);
            while mine.len() < notices {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                        if let Some(sent) = frame["data"]["sent_us"].as_u64() {
                            mine.push(now_micros().saturating_sub(sent));
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("connection ended: {other:?}"),
                }
            }
            latencies.lock().await.extend(mine);
        }));
    }
    let (cpu_before, rss_connected) = usage(pid);

    let admin = token(1, Role::Admin);
    let started = Instant::now();
    let mut posted = 0;
    while posted < notices {
        let batch = burst.min(notices - posted);
        let posts = (0..batch).map(|_| {
            let body = serde_json::json!({"content": "benchmark notice", "data": {"sent_us": now_micros()}});
            http.post(format!("http://{addr}/api/admin/system/notice")).bearer_auth(&admin).json(&body).send()
        });
        for response in futures_util::future::join_all(posts).await {
            assert!(response.unwrap().status().is_success());
        }
        posted += batch;
    }
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(120), reader).await.expect("deliveries stalled").unwrap();
    }
    let elapsed = started.elapsed();
    let (cpu_after, rss_end) = usage(pid);

    let deliveries = received.load(Ordering::Relaxed);
    let mut samples = std::mem::take(&mut *latencies.lock().await);
    samples.sort_unstable();
    let cpu = cpu_after - cpu_before;
    println!("fan-out benchmark: herald all-in-one (release, in-process bus), loopback, {} cores", num_cpus());
    println!("  connections               {connections}");
    println!("  broadcast notices         {notices} (posted {burst} at a time)");
    println!("  deliveries                {deliveries}");
    println!("  elapsed                   {:.2} s", elapsed.as_secs_f64());
    println!("  deliveries/s              {:.0}", deliveries as f64 / elapsed.as_secs_f64());
    println!(
        "  latency post->client      p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&samples, 0.50) as f64 / 1000.0,
        percentile(&samples, 0.99) as f64 / 1000.0,
        *samples.last().unwrap() as f64 / 1000.0
    );
    println!(
        "  server CPU per delivery   {:.2} us (user+system, includes HTTP ingestion)",
        cpu * 1e6 / deliveries as f64
    );
    println!(
        "  server memory             idle {} KiB, connected {} KiB, after {} KiB",
        rss_idle, rss_connected, rss_end
    );
    println!("  memory per connection     {:.1} KiB", (rss_connected - rss_idle) as f64 / connections as f64);
    let _ = server.kill().await;
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
