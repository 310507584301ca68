//! Back-pressure (spec 8.2): normal notices wait in a backlog of 1000; past it the API answers
//! QUEUE_FULL and delivers nothing; urgent notices bypass it and arrive first.

use crate::helpers::{Distributed, TokenVia, assert_schema, token};
use bus::Bus;
use runtime::{BusSettings, Role};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_backlog_answers_queue_full_while_urgent_notices_pass_and_overtake() {
    // No dispatcher: the consumers of the backlog are paused.
    let app = Distributed::spawn_custom(1, false).await;
    let admin = token(1, Role::Admin, "admin");
    let mut alice = app.endpoints.ws(&token(2, Role::User, "alice"), TokenVia::Query).await;

    let mut backlog = Vec::new();
    for n in 0..1000 {
        backlog.push(app.endpoints.notice(&admin, json!({"content": format!("backlog {n}")})).await.message_id);
    }
    let (status, headers, answer) = app.endpoints.post_notice(Some(&admin), &json!({"content": "one too many"})).await;
    assert_eq!(status, 503, "{answer}");
    assert_schema("failure-response.schema.json", &answer);
    assert_eq!(answer["data"]["error_code"], "QUEUE_FULL");
    assert!(headers.contains_key("retry-after"));

    let urgent = app.endpoints.notice(&admin, json!({"content": "urgent", "priority": "urgent"})).await;
    let first: Value = serde_json::from_str(&alice.next_text().await).unwrap();
    assert_eq!(first["message_id"], urgent.message_id.as_str(), "the urgent notice must come before the backlog");

    // The consumers resume: the backlog follows, in order, and the refused notice never comes.
    let shutdown = CancellationToken::new();
    let settings = BusSettings { dispatch: true, ..app.bus_settings().clone() };
    Bus::start(&settings, shutdown.clone()).start_dispatcher(shutdown.clone());
    let ids: Vec<String> = alice
        .frames_until(backlog.last().unwrap())
        .await
        .iter()
        .map(|f| serde_json::from_str::<Value>(f).unwrap()["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids == backlog, "the backlog arrived out of order or incomplete ({} of {})", ids.len(), backlog.len());
    // Drained: accepted again.
    app.endpoints.notice(&admin, json!({"content": "accepted again"})).await;
    shutdown.cancel();
    app.stop().await;
}
