//! Receipts end to end: frames and REST, embedded and over RabbitMQ, with the events they publish.

use crate::helpers::{Distributed, Embedded, assert_schema};
use crate::scenario;
use bus::{Bus, Exchange, QueueKind, SubscriptionSpec};
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_sync_the_users_other_devices_embedded() {
    let app = Embedded::spawn().await;
    scenario::receipts_sync_the_users_other_devices(&app.endpoints).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_become_delivery_events_over_rabbitmq() {
    let app = Distributed::spawn().await;
    let shutdown = CancellationToken::new();
    let observer = Bus::start(app.bus_settings(), shutdown.clone());
    let mut events = observer.subscribe(SubscriptionSpec {
        queue: "event-observer".into(),
        kind: QueueKind::Exclusive,
        exchange: Exchange::Events,
        bindings: vec!["#".into()],
    });
    assert!(events.wait_ready(Duration::from_secs(10)).await);

    scenario::receipts_sync_the_users_other_devices(&app.endpoints).await;

    let mut seen = Vec::new();
    let mut event_ids = std::collections::HashSet::new();
    while let Ok(Some(incoming)) = tokio::time::timeout(Duration::from_secs(2), events.next()).await {
        let event: serde_json::Value = serde_json::from_slice(&incoming.payload).unwrap();
        assert_schema("delivery-event.schema.json", &event);
        assert_eq!(incoming.routing_key, format!("{}.2", event["event_type"].as_str().unwrap()));
        seen.push((event["event_type"].as_str().unwrap().to_owned(), event["channel"].as_str().unwrap().to_owned()));
        assert!(event_ids.insert(event["event_id"].as_str().unwrap().to_owned()), "a repeated event id: {event}");
        // What the record-writer needs of the connection travels with the event.
        assert_eq!((&event["user_role"], &event["client_ip"]), (&json!("user"), &json!("127.0.0.1")), "{event}");
        if event["channel"] == "websocket" {
            assert_eq!(event["push_channel"], "websocket", "a live notice's receipt: {event}");
        }
        incoming.ack().await;
    }
    for expected in [("read", "websocket"), ("confirmed", "websocket"), ("read", "rest")] {
        assert!(seen.contains(&(expected.0.to_owned(), expected.1.to_owned())), "{expected:?} missing from {seen:?}");
    }
    shutdown.cancel();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_recorded_once_however_often_they_are_sent_embedded() {
    let app = Embedded::spawn().await;
    scenario::receipts_are_recorded_once_however_often_they_are_sent(&app.endpoints).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_recorded_once_however_often_they_are_sent_over_rabbitmq_and_redis() {
    let app = Distributed::spawn().await;
    scenario::receipts_are_recorded_once_however_often_they_are_sent(&app.endpoints).await;
    app.stop().await;
}
