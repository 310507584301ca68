//! Broker outage: RabbitMQ is stopped and started while Herald runs.
//!
//! A test binary of its own because it stops the shared broker: `cargo test` runs test binaries
//! one after another, so no other test is using RabbitMQ meanwhile; within it, the tests take
//! turns ([`BROKER`]). A guard starts the broker again even if a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::{Distributed, TokenVia, token};
use runtime::Role;
use runtime::testing::{eventually, holds};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

/// Held by the test that stops the broker: one at a time.
static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the RabbitMQ application again when dropped, whatever happened in between.
struct BrokerStopped;

impl BrokerStopped {
    fn stop() -> Self {
        let status = Command::new("rabbitmqctl").arg("stop_app").output().expect("rabbitmqctl is needed").status;
        assert!(status.success(), "rabbitmqctl stop_app failed");
        BrokerStopped
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").output();
    }
}

async fn ready(app: &Distributed, base: &str) -> bool {
    app.endpoints.http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_accepted_before_and_after_a_broker_outage_are_all_delivered() {
    let _turn = BROKER.lock().await;
    let app = Distributed::spawn().await;
    let admin = token(1, Role::Admin, "admin");
    let mut alice = app.endpoints.ws(&token(2, Role::User, "alice"), TokenVia::Query).await;

    let before = app.endpoints.notice(&admin, json!({"content": "before the outage"})).await;
    let offline_before =
        app.endpoints.notice(&admin, json!({"content": "for bob, before", "target": "custom", "user_ids": [3]})).await;
    assert!(alice.frames_until(&before.message_id).await.iter().any(|f| f.contains("before the outage")));

    let outage = BrokerStopped::stop();
    // While the broker is down the API refuses quickly and says why; nothing hangs.
    let (status, answer) = eventually("a notice to be refused during the outage", Duration::from_secs(20), || async {
        let started = Instant::now();
        let (status, _, answer) = app.endpoints.post_notice(Some(&admin), &json!({"content": "during"})).await;
        assert!(started.elapsed() < Duration::from_secs(5), "a publish during the outage took {:?}", started.elapsed());
        if status != 200 { Ok((status, answer)) } else { Err(answer) }
    })
    .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["data"]["error_code"], "PUSH_FAILED");
    assert!(!ready(&app, &app.endpoints.api).await, "ingest-api reported ready without a broker");

    drop(outage);
    // Every service comes back by itself.
    eventually("the services to recover after the broker came back", Duration::from_secs(60), || async {
        let (api, gateway) = (ready(&app, &app.endpoints.api).await, ready(&app, &app.gateway_base).await);
        holds(api && gateway, format_args!("ingest-api ready: {api}, ws-gateway ready: {gateway}"))
    })
    .await;

    // The WebSocket survived the outage, and delivery resumed on it.
    let after = app.endpoints.notice(&admin, json!({"content": "after the outage"})).await;
    let frames = alice.frames_until(&after.message_id).await;
    assert!(frames.iter().any(|f| f.contains("after the outage")), "{frames:?}");
    assert!(frames.iter().all(|f| !f.contains("during")), "a refused notice was delivered: {frames:?}");

    // The user who was offline throughout gets what was accepted for them.
    let mut bob = app.endpoints.ws(&token(3, Role::User, "bob"), TokenVia::Query).await;
    let replayed: Value = serde_json::from_str(&bob.next_text().await).unwrap();
    assert_eq!(replayed["message_id"], offline_before.message_id.as_str());
    app.stop().await;
}

/// The type and depth RabbitMQ reports for the queue `name`.
fn queue_state(name: &str) -> Option<(String, u64)> {
    let listed = Command::new("rabbitmqctl")
        .args(["list_queues", "--quiet", "--formatter", "json", "name", "type", "messages"])
        .output()
        .expect("rabbitmqctl is needed");
    let queues: Vec<Value> = serde_json::from_slice(&listed.stdout).ok()?;
    let queue = queues.into_iter().find(|q| q["name"] == name)?;
    Some((queue["type"].as_str()?.to_owned(), queue["messages"].as_u64()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_in_quorum_queues_is_delivered_after_a_broker_restart() {
    let _turn = BROKER.lock().await;
    // No dispatcher: accepted notices wait in the ingress queue, on the broker only.
    let app = Distributed::spawn_custom(1, false).await;
    let admin = token(1, Role::Admin, "admin");
    let mut alice = app.endpoints.ws(&token(2, Role::User, "alice"), TokenVia::Query).await;
    // Broadcasts to everyone online: no inbox copy, so nothing but the broker keeps them.
    let mut accepted = Vec::new();
    for n in 0..30 {
        accepted.push(app.endpoints.notice(&admin, json!({"content": format!("backlog {n}")})).await.message_id);
    }
    let ingress = format!("{}.ingress", app.bus_settings().prefix);
    let (kind, depth) = eventually("the backlog counted by the broker", Duration::from_secs(20), || async {
        match queue_state(&ingress) {
            Some((kind, 30)) => Ok((kind, 30)),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!((kind.as_str(), depth), ("quorum", 30));

    let restart = BrokerStopped::stop();
    drop(restart);
    eventually("the services to recover after the broker restarted", Duration::from_secs(60), || async {
        let (api, gateway) = (ready(&app, &app.endpoints.api).await, ready(&app, &app.gateway_base).await);
        holds(api && gateway, format_args!("ingest-api ready: {api}, ws-gateway ready: {gateway}"))
    })
    .await;
    // A quorum queue counts its messages again once it has replayed its log.
    eventually("the backlog back after the restart", Duration::from_secs(30), || async {
        let depth = queue_state(&ingress).map(|(_, depth)| depth);
        holds(depth == Some(30), format_args!("{depth:?}"))
    })
    .await;

    // A dispatcher now: every accepted notice reaches Alice, once each, in order.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let settings = bus::BusSettings { dispatch: true, ..app.bus_settings().clone() };
    bus::Bus::start(&settings, shutdown.clone()).start_dispatcher(shutdown.clone());
    let frames = alice.frames_until(accepted.last().unwrap()).await;
    assert_eq!(helpers::message_ids(&frames), accepted, "the backlog as Alice received it");
    shutdown.cancel();
    app.stop().await;
}
