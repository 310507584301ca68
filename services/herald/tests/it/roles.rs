//! The one binary as a distributed deployment: `herald run ingest-api`, `herald run ws-gateway`
//! and `herald run record-writer`, each a process of its own on the real RabbitMQ, Redis and
//! PostgreSQL, pass the delivery scenario, and the record-writer role records what was sent.

use crate::helpers::{Endpoints, SECRET, ServerLeftovers, amqp_url, listener, redis_url, token};
use crate::scenario;
use database::scratch::{Backend, ScratchDatabase};
use runtime::Role;
use runtime::testing::{eventually, holds};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// `herald run <role>` on a free port, sharing `prefix` (bus and Redis keys) and `database`.
fn run_role(role: &str, prefix: &str, database: &database::DatabaseSettings) -> (Child, SocketAddr) {
    let addr = listener().local_addr().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
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
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    (child, addr)
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
