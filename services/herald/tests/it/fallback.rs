//! The ack-driven mobile fallback end to end: a WebSocket notice with
//! `"fallback": {"mobile_after_secs": 2}` reaches on their phones, once each and no sooner than
//! 2 s after it was accepted, exactly the recipients who did not acknowledge it (an offline
//! user, and an online one whose client never acks); one who acknowledged gets nothing on
//! mobile, and the record names the channel that reached each. Over RabbitMQ (the timer in a TTL
//! queue), in the all-in-one (journaled in process), and with the mobile-push-worker a process
//! of its own, killed and restarted while the timers are pending.

use crate::helpers::{Distributed, Embedded, Endpoints, ServerLeftovers, TokenVia, assert_schema, token};
use crate::roles::{run_role, run_worker};
use database::scratch::{Backend, ScratchDatabase};
use mock_push::{MockProvider, Received};
use runtime::Role;
use runtime::testing::{eventually, holds};
use serde_json::json;
use std::time::Duration;

const AFTER_SECS: u64 = 2;

/// Registers `push_id` as `user`'s Android phone.
async fn phone(app: &Endpoints, user: i64, push_id: &str) {
    let body = json!({"pushId": push_id, "deviceType": "android"});
    let (status, answer) = app.post(&token(user, Role::User, "u"), "/api/message_push", &body).await;
    assert_eq!(status, 200, "{answer}");
}

/// Unix milliseconds of the instant in a message id (when the notice was accepted).
fn accepted_ms(message_id: &str) -> i64 {
    (model::MessageId::parse(message_id).unwrap().unix_nanos() / 1_000_000) as i64
}

/// Waits for `count` pushes, then a while longer for any more; returns them all.
async fn pushes(provider: &MockProvider, count: usize) -> Vec<Received> {
    eventually("the fallbacks to be pushed", Duration::from_secs(30), || async {
        let got = provider.mock.received().len();
        holds(got >= count, format_args!("{got} of {count}"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    provider.mock.received()
}

/// Each push went to one of `phones`, once each, at least the fallback's wait after `message_id`
/// was accepted.
fn pushed_once_each_after_the_wait(received: &[Received], phones: &[&str], message_id: &str, content: &str) {
    let mut to: Vec<&str> = received.iter().map(|r| r.push_id.as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, phones, "{received:#?}");
    let due = accepted_ms(message_id) + (AFTER_SECS * 1000) as i64;
    for push in received {
        assert!(push.at_ms >= due, "pushed {} ms before the fallback was due: {push:?}", due - push.at_ms);
        assert_eq!(push.body["content"], content, "{push:?}");
    }
}

async fn only_who_did_not_acknowledge_gets_it_on_mobile(app: &Endpoints, worker_base: &str) {
    let admin = token(1, Role::Admin, "root");
    let provider = MockProvider::start_local().unwrap();
    let (status, answer) = app.post(&admin, "/api/message_push/config", &json!({"url": provider.push_url()})).await;
    assert_eq!(status, 200, "{answer}");
    let (acking, silent, away) = (61, 62, 63);
    let phones =
        ["0000000000000000000000000000f061", "0000000000000000000000000000f062", "0000000000000000000000000000f063"];
    for (user, push_id) in [acking, silent, away].into_iter().zip(phones) {
        phone(app, user, push_id).await;
    }
    let mut acking_socket = app.ws(&token(acking, Role::User, "acks"), TokenVia::Query).await;
    let mut silent_socket = app.ws(&token(silent, Role::User, "never acks"), TokenVia::Query).await;

    // A fallback on a notice that goes to phones at once is refused, naming the field.
    let refused = json!({"content": "x", "channels": ["websocket", "mobile"], "fallback": {"mobile_after_secs": 2}});
    let (status, _, answer) = app.post_notice(Some(&admin), &refused).await;
    let refusal = (status, &answer["data"]["error_code"], &answer["data"]["field"]);
    assert_eq!(refusal, (400, &json!("INVALID_REQUEST"), &json!("fallback")), "{answer}");

    let body = json!({"content": "请确认停机", "target": "custom", "user_ids": [acking, silent, away],
        "need_confirm": true, "fallback": {"mobile_after_secs": AFTER_SECS}});
    assert_schema("notice-request.schema.json", &body);
    let notice = app.notice(&admin, body).await;
    let id = notice.message_id.as_str();
    acking_socket.frames_until(id).await;
    acking_socket.send_text(&json!({"type": "ack", "message_id": id}).to_string()).await;
    silent_socket.frames_until(id).await;

    let received = pushes(&provider, 2).await;
    pushed_once_each_after_the_wait(&received, &phones[1..], id, "请确认停机");
    // The worker counts what the fallback did: one due, two phones pushed, one spared.
    let text = crate::metrics::scrape(app, worker_base).await;
    let counted = [
        "herald_mobile_push_fallbacks_total",
        r#"herald_mobile_push_fallback_devices_total{outcome="pushed"}"#,
        r#"herald_mobile_push_fallback_devices_total{outcome="spared"}"#,
    ]
    .map(|series| crate::metrics::value(&text, series));
    assert_eq!(counted, [Some(1.0), Some(2.0), Some(1.0)], "{text}");

    // The record: the acknowledging user reached live, the other two on their phones.
    let record = eventually("the record to name each channel", Duration::from_secs(15), || async {
        let (status, body) = app.get(&admin, &format!("/api/admin/push/records/{id}")).await;
        let channel = |user: i64| {
            body["data"]["receive_records"]
                .as_array()
                .and_then(|rows| rows.iter().find(|r| r["user_id"] == user))
                .map(|r| r["push_channel"].clone())
        };
        let want = [Some(json!("websocket")), Some(json!("mobile")), Some(json!("mobile"))];
        holds(status == 200 && [acking, silent, away].map(channel) == want, body.clone()).map(|()| body)
    })
    .await;
    assert_schema("push-record-detail-response.schema.json", &record);
    let row = |user: i64| record["data"]["receive_records"].as_array().unwrap().iter().find(|r| r["user_id"] == user);
    assert_eq!(row(acking).unwrap()["is_received"], true, "{record}");
    assert_eq!(row(silent).unwrap()["is_received"], false, "{record}");
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_fallback_reaches_only_who_did_not_acknowledge() {
    let app = Distributed::spawn().await;
    only_who_did_not_acknowledge_gets_it_on_mobile(&app.endpoints, &app.worker_base).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_fallback_reaches_only_who_did_not_acknowledge() {
    let app = Embedded::spawn().await;
    only_who_did_not_acknowledge_gets_it_on_mobile(&app.endpoints, &app.endpoints.api.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_worker_killed_while_fallbacks_wait_sends_each_once() {
    let prefix = format!("test-fallback-{}", uuid::Uuid::new_v4().simple());
    let bus_settings = bus::BusSettings {
        url: bus::BusUrl::Amqp(crate::helpers::amqp_url()),
        prefix: prefix.clone(),
        ..Default::default()
    };
    let leftovers = ServerLeftovers::new(
        bus_settings.clone(),
        ScratchDatabase::create(Backend::Postgres).await.expect("PostgreSQL is not reachable"),
    );
    let database = leftovers.database().clone();
    let (mut api, api_addr) = run_role("ingest-api", &prefix, &database);
    let (mut worker, worker_addr) = run_worker(&prefix, &database);
    let app = Endpoints::new(api_addr, api_addr);
    for addr in [api_addr, worker_addr] {
        app.wait_ready(&format!("http://{addr}")).await;
    }
    let admin = token(1, Role::Admin, "root");
    let provider = MockProvider::start_local().unwrap();
    let (status, answer) = app.post(&admin, "/api/message_push/config", &json!({"url": provider.push_url()})).await;
    assert_eq!(status, 200, "{answer}");
    // Users 71-80 offline; 71 and 72 acknowledge over REST (they read it in another tab).
    let users: Vec<i64> = (71..=80).collect();
    let phones: Vec<String> = users.iter().map(|user| format!("00000000000000000000000000000{user:03}")).collect();
    for (user, push_id) in users.iter().zip(&phones) {
        phone(&app, *user, push_id).await;
    }
    let bus_shutdown = tokio_util::sync::CancellationToken::new();
    let bus = bus::Bus::start(&bus_settings, bus_shutdown.clone());
    let bus::Bus::Amqp(amqp) = &bus else { unreachable!() };
    assert!(amqp.wait_connected(Duration::from_secs(10)).await, "RabbitMQ is not reachable");

    let mut notices = Vec::new();
    for n in 0..3 {
        let body = json!({"content": format!("fallback {n}"), "target": "custom", "user_ids": users,
            "fallback": {"mobile_after_secs": AFTER_SECS}});
        notices.push(app.notice(&admin, body).await.message_id.to_string());
    }
    for id in &notices {
        for user in [71, 72] {
            let url = format!("{}/api/admin/notification/mark-read", app.api);
            let answer =
                app.http.post(&url).bearer_auth(token(user, Role::User, "reader")).json(&json!({"message_id": id}));
            let answer = answer.send().await.unwrap();
            assert_eq!(answer.status().as_u16(), 200, "{:?}", answer.text().await);
        }
    }
    // The worker took the notices (their timers are in the broker), then dies before they fire.
    eventually("the worker to take the notices", Duration::from_secs(10), || async {
        let depth = amqp.queue_depth(bus::Exchange::Notifications, "mobile-push-notices").await;
        holds(matches!(depth, Ok(0)), format_args!("{depth:?}"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    assert!(provider.mock.received().is_empty(), "pushed before the fallback was due");
    tokio::time::sleep(Duration::from_secs(AFTER_SECS + 1)).await;
    let (mut worker, worker_addr) = run_worker(&prefix, &database);
    app.wait_ready(&format!("http://{worker_addr}")).await;

    let unread: Vec<&str> = phones[2..].iter().map(String::as_str).collect();
    let received = pushes(&provider, notices.len() * unread.len()).await;
    for (n, id) in notices.iter().enumerate() {
        let content = format!("fallback {n}");
        let of_notice: Vec<Received> = received.iter().filter(|r| r.body["content"] == content).cloned().collect();
        pushed_once_each_after_the_wait(&of_notice, &unread, id, &content);
    }
    assert_eq!(received.len(), notices.len() * unread.len(), "{received:#?}");

    for child in [&mut api, &mut worker] {
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
    provider.stop().await;
    bus_shutdown.cancel();
    leftovers.remove().await;
}
