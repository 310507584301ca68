//! Poison messages: a message the records store cannot hold goes to the dead-letter queue with
//! the store's reason, and the record-writer moves on to the next ones.

use crate::helpers::{Distributed, PATIENCE, token};
use bus::{Bus, Exchange, QueueKind, SubscriptionSpec};
use bytes::Bytes;
use model::{DeliveryEvent, DeliveryEventType, MessageId, NotificationMessage, NotificationType, Priority, Sender};
use runtime::Role;
use runtime::testing::eventually;
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn poisoned_notice() -> NotificationMessage {
    NotificationMessage {
        notification_type: NotificationType::SYSTEM_NOTICE,
        content: "poison \u{0} inside".into(),
        data: None,
        time: "2026-12-01 10:00:00".into(),
        priority: Priority::Urgent,
        target: model::Target::Custom,
        target_ids: vec![9],
        exclude_ids: vec![],
        need_confirm: false,
        message_id: MessageId::generate(),
        channels: Default::default(),
        fallback: None,
        sender: Sender { id: 1, name: "admin".into() },
    }
}

fn poisoned_event(message_id: MessageId) -> DeliveryEvent {
    DeliveryEvent {
        event_id: DeliveryEvent::new_event_id(),
        event_type: DeliveryEventType::Read,
        message_id,
        user_id: 9,
        username: "nul \u{0} name".into(),
        channel: model::ReportChannel::Websocket,
        connection_id: String::new(),
        timestamp: "2026-12-01 10:00:01".into(),
        user_role: Some(model::Role::User),
        push_channel: None,
        client_ip: String::new(),
        user_agent: String::new(),
    }
}

/// Waits until the records API knows `message_id`.
async fn until_recorded(app: &Distributed, admin: &str, message_id: &str) -> serde_json::Value {
    eventually(&format!("{message_id} to be recorded"), Duration::from_secs(20), || async {
        let (status, body) = app.endpoints.get(admin, &format!("/api/admin/push/records/{message_id}")).await;
        if status == 200 { Ok(body) } else { Err(format!("{status} {body}")) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_database_refuses_is_dead_lettered_and_later_ones_are_recorded() {
    let app = Distributed::spawn().await;
    let admin = token(1, Role::Admin, "admin");
    let shutdown = CancellationToken::new();
    let bus = Bus::start(app.bus_settings(), shutdown.clone());
    let Bus::Amqp(amqp) = &bus else { unreachable!() };
    assert!(amqp.wait_connected(PATIENCE).await);
    let mut dead_letters = bus.subscribe(SubscriptionSpec {
        queue: bus::DEAD_LETTERS.into(),
        kind: QueueKind::Durable,
        exchange: Exchange::DeadLetters,
        bindings: Vec::new(),
    });
    assert!(dead_letters.wait_ready(PATIENCE).await);

    // Straight onto the bus, as a buggy or older publisher would: PostgreSQL refuses U+0000.
    let notice = poisoned_notice();
    let notice_payload = Bytes::from(serde_json::to_vec(&notice).unwrap());
    bus.publish(Exchange::Notifications, &notice.routing_key(), notice_payload.clone()).await.unwrap();
    let good =
        app.endpoints.notice(&admin, json!({"content": "after the poison", "target": "custom", "user_ids": [9]})).await;
    let event = poisoned_event(MessageId::parse(&good.message_id).unwrap());
    let event_payload = Bytes::from(serde_json::to_vec(&event).unwrap());
    bus.publish(Exchange::Events, &event.routing_key(), event_payload.clone()).await.unwrap();
    let later =
        app.endpoints.notice(&admin, json!({"content": "later still", "target": "custom", "user_ids": [9]})).await;

    until_recorded(&app, &admin, &good.message_id).await;
    until_recorded(&app, &admin, &later.message_id).await;
    let (status, _) = app.endpoints.get(&admin, &format!("/api/admin/push/records/{}", notice.message_id)).await;
    assert_eq!(status, 404, "the poisoned notice cannot have a record");

    let mut letters = Vec::new();
    for _ in 0..2 {
        let letter = tokio::time::timeout(Duration::from_secs(30), dead_letters.next()).await.unwrap().unwrap();
        letters.push((letter.payload.clone(), letter.routing_key.clone(), letter.dead_letter_reason.clone()));
        letter.ack().await;
    }
    letters.sort_by_key(|(_, key, _)| key.clone());
    let prefix = app.bus_settings().prefix.clone();
    assert_eq!((&letters[0].0, letters[0].1.as_str()), (&notice_payload, "custom.urgent"));
    assert_eq!((&letters[1].0, letters[1].1.as_str()), (&event_payload, event.routing_key().as_str()));
    for (_, _, reason) in &letters {
        let reason = reason.as_deref().unwrap_or_default();
        assert!(reason.contains("refused") && reason.contains("0x00"), "{reason}");
    }
    assert!(letters[0].2.is_some() && !prefix.is_empty());
    shutdown.cancel();
    app.stop().await;
}
