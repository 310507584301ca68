//! The one binary as a distributed deployment: `herald run ingest-api`, `herald run ws-gateway`
//! and `herald run record-writer`, each a process of its own on the real RabbitMQ, Redis and
//! PostgreSQL, pass the delivery scenario, the record-writer role records what was sent, an
//! ingest-api killed while it dispatches loses nothing it accepted, and a mobile-push-worker
//! killed mid-stream loses no send and doubles none.

use crate::helpers::{Endpoints, SECRET, ServerLeftovers, amqp_url, free_addr, redis_url, token};
use crate::scenario;
use database::scratch::{Backend, ScratchDatabase};
use runtime::Role;
use runtime::testing::{eventually, holds};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// `herald run <role>` on a free port, sharing `prefix` (bus and Redis keys) and `database`,
/// configured as the tests' deployments are (limits off, quick record batches), not yet
/// spawned: callers add what is theirs.
pub fn role_command(role: &str, prefix: &str, database: &database::DatabaseSettings) -> (Command, SocketAddr) {
    let addr = free_addr();
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .args(["run", role])
        .env("HERALD_HTTP_ADDR", addr.to_string())
        .env("HERALD_JWT_SECRET", SECRET)
        .env("HERALD_LOG_LEVEL", "warn")
        .env("HERALD_BUS_URL", amqp_url())
        .env("HERALD_BUS_PREFIX", prefix)
        .env("HERALD_REDIS_URL", redis_url())
        .env("HERALD_REDIS_KEY_PREFIX", format!("{prefix}:"))
        .env("HERALD_LIMITS_SENDER_PER_SECOND", "0")
        .env("HERALD_LIMITS_IP_PER_SECOND", "0")
        .env("HERALD_DATABASE_URL", &database.url)
        .env("HERALD_DATABASE_SCHEMA", &database.schema)
        .env("HERALD_RECORDS_LINGER_MS", "5")
        .env_remove("HERALD_CONFIG")
        .stdout(Stdio::null())
        .kill_on_drop(true);
    (command, addr)
}

/// [`role_command`], spawned.
pub fn run_role(role: &str, prefix: &str, database: &database::DatabaseSettings) -> (Child, SocketAddr) {
    let (mut command, addr) = role_command(role, prefix, database);
    (command.spawn().unwrap(), addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_runs_as_its_own_process_of_the_one_binary() {
    let prefix = format!("test-roles-{}", uuid::Uuid::new_v4().simple());
    let bus = bus::BusSettings { url: bus::BusUrl::Amqp(amqp_url()), prefix: prefix.clone(), ..Default::default() };
    let leftovers = ServerLeftovers::new(
        bus,
        ScratchDatabase::create(Backend::Postgres).await.expect("PostgreSQL is not reachable"),
    );
    let database = leftovers.database().clone();
    let (api, api_addr) = run_role("ingest-api", &prefix, &database);
    let (gateway, gateway_addr) = run_role("ws-gateway", &prefix, &database);
    let (writer, writer_addr) = run_role("record-writer", &prefix, &database);
    let endpoints = Endpoints::new(api_addr, gateway_addr);
    for addr in [api_addr, gateway_addr, writer_addr] {
        endpoints.wait_ready(&format!("http://{addr}")).await;
    }

    scenario::each_connection_receives_exactly_its_frames(&endpoints).await;

    // The record-writer role, in its own process, recorded what the API accepted.
    let admin = token(1, Role::Admin, "admin");
    let recorded =
        eventually("the record-writer to record the scenario's notices", Duration::from_secs(20), || async {
            let (status, body) = endpoints.get(&admin, "/api/admin/push/records?page_size=100").await;
            let total = body["data"]["total"].as_u64().unwrap_or_default();
            holds(status == 200 && total > 0, format_args!("{status} {body}")).map(|()| total)
        })
        .await;
    assert!(recorded > 0);

    // Stopped first, so that nothing writes where the clean-up deletes.
    for mut child in [api, gateway, writer] {
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
    leftovers.remove().await;
}

/// The ingress dispatcher keeps many onward publishes in flight and acknowledges the ingress
/// deliveries behind them in runs: an ingest-api killed with SIGKILL while it accepts and
/// dispatches loses none of the notices it answered 200 for; another replica's dispatcher
/// moves on what the ingress queue still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_api_killed_while_dispatching_loses_no_accepted_notice() {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};
    let prefix = format!("test-dispatch-{}", uuid::Uuid::new_v4().simple());
    let bus = bus::BusSettings { url: bus::BusUrl::Amqp(amqp_url()), prefix: prefix.clone(), ..Default::default() };
    let leftovers = ServerLeftovers::new(
        bus,
        ScratchDatabase::create(Backend::Postgres).await.expect("PostgreSQL is not reachable"),
    );
    let database = leftovers.database().clone();
    let (mut first_api, first_addr) = run_role("ingest-api", &prefix, &database);
    // The gateway may queue the whole run for the one client: only a lost notice can explain a
    // missing frame.
    let (mut gateway, gateway_addr) = {
        let addr = free_addr();
        let child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["run", "ws-gateway"])
            .env("HERALD_HTTP_ADDR", addr.to_string())
            .env("HERALD_JWT_SECRET", SECRET)
            .env("HERALD_LOG_LEVEL", "warn")
            .env("HERALD_BUS_URL", amqp_url())
            .env("HERALD_BUS_PREFIX", &prefix)
            .env("HERALD_REDIS_URL", redis_url())
            .env("HERALD_REDIS_KEY_PREFIX", format!("{prefix}:"))
            .env("HERALD_DATABASE_URL", &database.url)
            .env("HERALD_DATABASE_SCHEMA", &database.schema)
            .env("HERALD_WS_SEND_BUFFER", "100000")
            .env_remove("HERALD_CONFIG")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        (child, addr)
    };
    let endpoints = Endpoints::new(first_addr, gateway_addr);
    for addr in [first_addr, gateway_addr] {
        endpoints.wait_ready(&format!("http://{addr}")).await;
    }
    let mut alice = endpoints.ws(&token(2, Role::User, "alice"), crate::helpers::TokenVia::Query).await;
    alice.until_live().await;
    let received = Arc::new(Mutex::new(HashSet::new()));
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            while let Some(frame) = alice.try_next_text().await {
                if let Some(id) = serde_json::from_str::<serde_json::Value>(&frame)
                    .ok()
                    .and_then(|v| v["message_id"].as_str().map(str::to_owned))
                {
                    received.lock().unwrap().insert(id);
                }
            }
        })
    };

    // Posters keep the dispatcher busy until the process is killed under them.
    let admin = token(1, Role::Admin, "admin");
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let posters: Vec<_> = (0..16)
        .map(|poster| {
            let (http, admin, accepted) = (endpoints.http.clone(), admin.clone(), accepted.clone());
            let api = endpoints.api.clone();
            tokio::spawn(async move {
                for n in 0.. {
                    let body = serde_json::json!({"content": format!("dispatch {poster}-{n}")});
                    let sent =
                        http.post(format!("{api}/api/admin/system/notice")).bearer_auth(&admin).json(&body).send();
                    let Ok(response) = sent.await else { break };
                    let status = response.status().as_u16();
                    let Ok(answer) = response.json::<serde_json::Value>().await else { break };
                    if status == 200 {
                        accepted.lock().unwrap().push(answer["data"]["message_id"].as_str().unwrap().to_owned());
                    }
                }
            })
        })
        .collect();
    eventually("the first API to accept 1500 notices", Duration::from_secs(60), || async {
        let count = accepted.lock().unwrap().len();
        holds(count >= 1500, count)
    })
    .await;
    first_api.start_kill().unwrap();
    first_api.wait().await.unwrap();
    for poster in posters {
        poster.await.unwrap();
    }

    // Another replica's dispatcher takes over what the ingress queue still holds.
    let (mut second_api, second_addr) = run_role("ingest-api", &prefix, &database);
    endpoints.wait_ready(&format!("http://{second_addr}")).await;
    let accepted: Vec<String> = accepted.lock().unwrap().clone();
    eventually("every accepted notice to reach the client", Duration::from_secs(60), || async {
        let received = received.lock().unwrap();
        let missing: Vec<&String> = accepted.iter().filter(|id| !received.contains(*id)).collect();
        holds(
            missing.is_empty(),
            format_args!("{} of {} missing, e.g. {:?}", missing.len(), accepted.len(), missing.first()),
        )
    })
    .await;

    for child in [&mut second_api, &mut gateway] {
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
    reader.abort();
    leftovers.remove().await;
}

/// `herald run mobile-push-worker` with quick retries.
pub fn run_worker(prefix: &str, database: &database::DatabaseSettings) -> (Child, SocketAddr) {
    let (mut command, addr) = role_command("mobile-push-worker", prefix, database);
    command.env("HERALD_MOBILE_RETRY_DELAYS_MS", "[200,400,600]").env("HERALD_MOBILE_CONCURRENCY", "16");
    (command.spawn().unwrap(), addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_worker_killed_mid_stream_loses_no_send_and_doubles_none() {
    use mobile::{LogQuery, MobileStore, Registration};
    use model::{DeviceType, PushLogStatus};
    use std::collections::HashMap;
    const DEVICES: usize = 600;
    const FAILING: usize = 10;
    let prefix = format!("test-worker-{}", uuid::Uuid::new_v4().simple());
    let bus = bus::BusSettings { url: bus::BusUrl::Amqp(amqp_url()), prefix: prefix.clone(), ..Default::default() };
    let leftovers = ServerLeftovers::new(
        bus.clone(),
        ScratchDatabase::create(Backend::Postgres).await.expect("PostgreSQL is not reachable"),
    );
    let database = leftovers.database().clone();
    let (mut api, api_addr) = run_role("ingest-api", &prefix, &database);
    let (mut worker, worker_addr) = run_worker(&prefix, &database);
    let endpoints = Endpoints::new(api_addr, api_addr);
    for addr in [api_addr, worker_addr] {
        endpoints.wait_ready(&format!("http://{addr}")).await;
    }
    // A provider slow enough for the worker to die with sends in hand; a few devices it refuses.
    let provider = mock_push::MockProvider::start_local().unwrap();
    provider.mock.answer_all(mock_push::Answer::Slow { delay_ms: 20 });
    let shutdown = tokio_util::sync::CancellationToken::new();
    let store = MobileStore::on(database::connect(&database).await.unwrap(), shutdown.clone());
    store.set_provider_url(&provider.push_url()).await.unwrap();
    let push_ids: Vec<String> = (0..DEVICES).map(|i| format!("{i:032x}")).collect();
    for chunk in push_ids.chunks(50) {
        let registered = futures_util::future::join_all(chunk.iter().map(|push_id| {
            let store = store.clone();
            let device = Registration {
                user_id: 100,
                tenant_id: Some("plant".into()),
                push_id: push_id.clone(),
                device_type: DeviceType::Android,
                subscription: None,
            };
            async move { store.register(&device).await }
        }))
        .await;
        assert!(registered.iter().all(Result::is_ok));
    }
    for push_id in &push_ids[..FAILING] {
        provider.mock.answer_push_id(push_id, mock_push::Answer::Http500);
    }

    let admin = token(1, Role::Admin, "admin");
    let body = serde_json::json!({"tenant_id": "plant", "triggered": "压力过高", "alarm_config_id": "c-7", "device_number": "P-1"});
    let (status, answer) = endpoints.post(&admin, "/api/message_push/alarm", &body).await;
    assert_eq!(status, 200, "{answer}");
    let job_id = answer["data"]["job_id"].as_str().unwrap().to_owned();
    eventually("the worker to be mid-stream", Duration::from_secs(30), || async {
        let got = provider.mock.received().len();
        holds(got >= DEVICES / 3, got)
    })
    .await;
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    let (mut worker, worker_addr) = run_worker(&prefix, &database);
    endpoints.wait_ready(&format!("http://{worker_addr}")).await;

    // Every send accounted for once: sent for the devices the provider takes, failed three
    // times then dead for those it refuses; the provider pushed each once.
    let expected_rows = (DEVICES - FAILING) + FAILING * 4;
    let query = LogQuery { page: 1, page_size: 10_000, ..LogQuery::default() };
    eventually("every send to be accounted for", Duration::from_secs(60), || async {
        let rows = store.logs(&LogQuery { page_size: 1, ..query.clone() }).await.unwrap().total as usize;
        let dead = store.logs(&LogQuery { status: Some(PushLogStatus::Dead), page_size: 1, ..query.clone() }).await;
        let dead = dead.unwrap().total as usize;
        holds(rows >= expected_rows && dead == FAILING, format_args!("{rows} of {expected_rows} rows, {dead} dead"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = store.logs(&query).await.unwrap().items;
    assert_eq!(logs.len(), expected_rows, "a send logged twice or missing");
    let mut per_device: HashMap<String, Vec<(i32, PushLogStatus)>> = HashMap::new();
    for log in &logs {
        assert!(log.attempt.send_id.starts_with(&format!("{job_id}:")), "{:?}", log.attempt.send_id);
        per_device.entry(log.attempt.push_id.clone()).or_default().push((log.attempt.attempt, log.attempt.status));
    }
    assert_eq!(per_device.len(), DEVICES, "a device got no send");
    for (i, push_id) in push_ids.iter().enumerate() {
        let mut rows = per_device[push_id].clone();
        rows.sort_by_key(|row| row.0);
        let want = if i < FAILING {
            vec![
                (1, PushLogStatus::Failed),
                (2, PushLogStatus::Failed),
                (3, PushLogStatus::Failed),
                (4, PushLogStatus::Dead),
            ]
        } else {
            vec![(1, PushLogStatus::Sent)]
        };
        assert_eq!(rows, want, "{push_id}");
    }
    let mut pushed: HashMap<String, usize> = HashMap::new();
    for received in provider.mock.received() {
        *pushed.entry(received.push_id).or_default() += 1;
    }
    for (i, push_id) in push_ids.iter().enumerate() {
        let want = if i < FAILING { 4 } else { 1 };
        assert_eq!(pushed.get(push_id).copied().unwrap_or(0), want, "{push_id} pushed a wrong number of times");
    }

    for child in [&mut api, &mut worker] {
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
    provider.stop().await;
    shutdown.cancel();
    let delays = ["delay.mobile.send.200", "delay.mobile.send.400", "delay.mobile.send.600"];
    bus::amqp::AmqpBus::remove_topology(&bus, &delays).await.unwrap();
    leftovers.remove().await;
}
