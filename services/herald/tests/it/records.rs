//! Push records end to end: a custom notice to two online users and one offline user is
//! recorded with its counts, which follow the receipts; the records and logs API answer in the
//! spec's shape and refuse bad parameters. Distributed (RabbitMQ, PostgreSQL) and embedded.

use crate::helpers::{Distributed, Embedded, Endpoints, TokenVia, assert_schema, token};
use runtime::Role;
use runtime::testing::eventually;
use serde_json::{Value, json};
use std::time::Duration;

/// Polls the record of `message_id` until `done` holds; returns the detail's `data`.
async fn wait_for_record(app: &Endpoints, admin: &str, message_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("the record of {message_id}"), Duration::from_secs(15), || async {
        let (status, body) = app.get(admin, &format!("/api/admin/push/records/{message_id}")).await;
        if status == 200 && done(&body["data"]) {
            assert_schema("push-record-detail-response.schema.json", &body);
            return Ok(body["data"].clone());
        }
        assert!(status == 200 || status == 404, "{body}");
        Err(body)
    })
    .await
}

fn counts(data: &Value) -> (i64, i64, i64) {
    let r = &data["record"];
    (r["total_count"].as_i64().unwrap(), r["delivered_count"].as_i64().unwrap(), r["failed_count"].as_i64().unwrap())
}

fn receipt(data: &Value, user: i64) -> Value {
    data["receive_records"].as_array().unwrap().iter().find(|r| r["user_id"] == user).unwrap().clone()
}

async fn records_follow_delivery(app: &Endpoints) {
    let admin = token(1, Role::Admin, "admin");
    let mut two = app.ws(&token(2, Role::User, "two"), TokenVia::Query).await;
    let mut three = app.ws(&token(3, Role::User, "three"), TokenVia::Query).await;
    two.until_live().await;
    three.until_live().await;
    let body = json!({"content": "order shipped", "type": "order_completed", "target": "custom",
                      "user_ids": [2, 3, 4], "need_confirm": true, "data": {"order_no": "A-1"}});
    let notice = app.notice(&admin, body).await;
    let id = notice.message_id.clone();
    for client in [&mut two, &mut three] {
        client.frames_until(&id).await;
        client.send_text(&json!({"type": "ack", "message_id": id}).to_string()).await;
    }
    let data = wait_for_record(app, &admin, &id, |d| counts(d) == (3, 2, 0)).await;
    assert_eq!(data["record"]["status"], "partial", "{data}");
    assert_eq!(receipt(&data, 4)["delivery_status"], "pending", "{data}");
    let two_receipt = receipt(&data, 2);
    assert_eq!((&two_receipt["is_online"], &two_receipt["push_channel"]), (&json!(true), &json!("websocket")));
    assert_eq!(two_receipt["username"], "two");

    // The offline user connects, gets the replay and acknowledges it.
    let mut four = app.ws(&token(4, Role::User, "four"), TokenVia::Query).await;
    four.frames_until(&id).await;
    four.send_text(&json!({"type": "ack", "message_id": id}).to_string()).await;
    let data = wait_for_record(app, &admin, &id, |d| counts(d) == (3, 3, 0)).await;
    assert_eq!(data["record"]["status"], "delivered", "{data}");
    let four_receipt = receipt(&data, 4);
    assert_eq!((&four_receipt["is_online"], &four_receipt["push_channel"]), (&json!(false), &json!("offline")));

    // Read on the socket, confirm over REST: both in the receive record and the log.
    two.send_text(&json!({"type": "read", "message_id": id}).to_string()).await;
    let confirm = app
        .http
        .post(format!("{}/api/admin/notification/confirm", app.api))
        .bearer_auth(token(2, Role::User, "two"))
        .header("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148 Safari/604.1")
        .json(&json!({"message_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status().as_u16(), 200);
    let data = wait_for_record(app, &admin, &id, |d| {
        let r = receipt(d, 2);
        r["is_read"] == true && r["is_confirmed"] == true
    })
    .await;
    assert_eq!(counts(&data), (3, 3, 0), "receipts after delivery change no count");
    let kinds: Vec<&str> = data["logs"].as_array().unwrap().iter().map(|l| l["event_type"].as_str().unwrap()).collect();
    for kind in ["delivered", "read", "confirmed"] {
        assert!(kinds.contains(&kind), "{kind} missing from the log: {kinds:?}");
    }
    let from_rest = data["logs"].as_array().unwrap().iter().find(|l| l["event_type"] == "confirmed").unwrap();
    assert_eq!(from_rest["device_info"]["platform"], "ios", "{from_rest}");

    // The listing (spec 6.3) and the log.
    let (status, list) = app.get(&admin, "/api/admin/push/records?target=custom&message_type=order_completed").await;
    assert_eq!(status, 200, "{list}");
    assert_schema("push-records-response.schema.json", &list);
    let item = list["data"]["items"].as_array().unwrap().iter().find(|i| i["message_id"] == id.as_str()).unwrap();
    assert_eq!((&item["delivered_count"], &item["sender_name"]), (&json!(3), &json!("admin")), "{item}");
    assert!(list["data"]["stats"]["delivered_count"].as_i64().unwrap() >= 3, "{list}");
    let (status, logs) = app.get(&admin, &format!("/api/admin/notification/logs?message_id={id}&user_id=2")).await;
    assert_eq!(status, 200, "{logs}");
    assert_schema("notification-logs-response.schema.json", &logs);
    assert_eq!(logs["data"]["total"], 3, "{logs}");
}

async fn bad_parameters_are_refused(app: &Endpoints) {
    let admin = token(1, Role::Admin, "admin");
    for (path, names) in [
        ("/api/admin/push/records?page_size=101", "page_size"),
        ("/api/admin/push/records?page=0", "page"),
        ("/api/admin/push/records?status=lost", "status"),
        ("/api/admin/push/records?target=everyone", "target"),
        ("/api/admin/push/records?start_time=yesterday", "start_time"),
        ("/api/admin/push/records?start_time=2026-01-02%2000:00:00&end_time=2026-01-01%2000:00:00", "start_time"),
        ("/api/admin/push/records?sender=1", "sender"),
        ("/api/admin/push/records?sender_id=abc", "sender_id"),
        ("/api/admin/push/records/not-an-id", "message_id"),
        ("/api/admin/notification/logs?event_type=opened", "event_type"),
        ("/api/admin/notification/logs?user_id=-3", "user_id"),
    ] {
        let (status, body) = app.get(&admin, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_schema("failure-response.schema.json", &body);
        assert_eq!(body["data"]["error_code"], "INVALID_REQUEST", "{path}: {body}");
        assert!(body["data"]["error"].as_str().unwrap().contains(names), "{path}: {body}");
    }
    let (status, body) = app.get(&admin, "/api/admin/push/records/1706335800123456789-abc12345").await;
    assert_eq!((status, &body["data"]["error_code"]), (404, &json!("NOT_FOUND")), "{body}");
    let (status, _) = app.get(&token(2, Role::User, "two"), "/api/admin/push/records").await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_over_rabbitmq_and_postgres() {
    let app = Distributed::spawn().await;
    records_follow_delivery(&app.endpoints).await;
    bad_parameters_are_refused(&app.endpoints).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_embedded() {
    let app = Embedded::spawn().await;
    records_follow_delivery(&app.endpoints).await;
    bad_parameters_are_refused(&app.endpoints).await;
}

/// One seeded notice of the scale test, and what the API must say of it.
struct Seeded {
    n: i64,
    message_type: &'static str,
    target: &'static str,
    sender_id: i64,
    content: String,
    time: String,
    status: &'static str,
    total: i64,
    delivered: i64,
    failed: i64,
}

/// Which seeded notices a query must return.
type Selection = Box<dyn Fn(&Seeded) -> bool>;

/// 3000 notices one second apart: mixed types, targets, senders and outcomes.
fn seeded() -> Vec<Seeded> {
    let time = model::TimeFormat::default();
    (0..3000_i64)
        .map(|n| {
            let at = time::OffsetDateTime::from_unix_timestamp(1_750_000_000 + n).unwrap();
            let target = ["admin", "all", "custom", "custom"][(n % 4) as usize];
            let (status, total, delivered, failed) = match (target, n % 10) {
                ("custom", 2 | 3) => ("delivered", 1, 1, 0),
                ("custom", 6 | 7) => ("failed", 1, 0, 1),
                ("custom", _) => ("queued", 1, 0, 0),
                _ => ("queued", 0, 0, 0),
            };
            Seeded {
                n,
                message_type: if n % 3 == 0 { "order_completed" } else { "system_notice" },
                target,
                sender_id: if n % 5 == 0 { 9 } else { 1 },
                content: format!("seeded notice {n}"),
                time: time.format(at),
                status,
                total,
                delivered,
                failed,
            }
        })
        .collect()
}

/// Writes the seeded notices and their outcomes straight into the records store.
async fn seed(database: &database::DatabaseSettings, notices: &[Seeded]) {
    use model::{DeliveryEvent, DeliveryEventType, MessageId, NotificationMessage, NotificationType, Sender, Target};
    use records::{DeviceInfo, NewRecord, RecordedEvent, SqlRecords};
    let records = SqlRecords::open(database, model::TimeFormat::default()).await.unwrap();
    let mut batch = Vec::new();
    let mut events = Vec::new();
    for s in notices {
        let target = match s.target {
            "admin" => Target::Admin,
            "all" => Target::All,
            _ => Target::Custom,
        };
        let ids = if target == Target::Custom { vec![1000 + s.n % 50] } else { Vec::new() };
        let message = NotificationMessage {
            notification_type: NotificationType::parse(s.message_type).unwrap(),
            content: s.content.clone(),
            data: None,
            time: s.time.clone(),
            priority: model::Priority::Normal,
            target,
            target_ids: ids.clone(),
            exclude_ids: Vec::new(),
            need_confirm: false,
            message_id: MessageId::from_parts(i128::from(1_750_000_000 + s.n) * 1_000_000_000, uuid::Uuid::new_v4()),
            channels: Default::default(),
            fallback: None,
            sender: Sender { id: s.sender_id, name: format!("sender{}", s.sender_id) },
        };
        let kind = match s.status {
            "delivered" => Some(DeliveryEventType::Delivered),
            "failed" => Some(DeliveryEventType::Failed),
            _ => None,
        };
        if let Some(kind) = kind {
            events.push(RecordedEvent {
                event: DeliveryEvent {
                    event_id: DeliveryEvent::new_event_id(),
                    event_type: kind,
                    message_id: message.message_id.clone(),
                    user_id: ids[0],
                    username: String::new(),
                    channel: model::ReportChannel::Websocket,
                    connection_id: String::new(),
                    timestamp: s.time.clone(),
                    user_role: Some(model::Role::User),
                    push_channel: Some(model::PushChannel::Websocket),
                    client_ip: String::new(),
                    user_agent: String::new(),
                },
                device: DeviceInfo::default(),
            });
        }
        batch.push(NewRecord { message, addressed: ids });
    }
    for chunk in batch.chunks(500) {
        records.write_messages(chunk).await.unwrap();
    }
    for chunk in events.chunks(200) {
        records.apply_events(chunk).await.unwrap();
    }
}

/// The spec's 6.3 stats of `notices`, worked out here rather than by the store.
fn expected_stats(notices: &[&Seeded]) -> Value {
    let failed_records = notices.iter().filter(|s| s.status == "failed").count();
    json!({
        "total_records": notices.len(),
        "success_records": notices.len() - failed_records,
        "failed_records": failed_records,
        "total_recipients": notices.iter().map(|s| s.total).sum::<i64>(),
        "delivered_count": notices.iter().map(|s| s.delivered).sum::<i64>(),
        "failed_count": notices.iter().map(|s| s.failed).sum::<i64>(),
    })
}

/// The records API over a few thousand records: paging, order, stats and every filter, each
/// checked against what the seeded data says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_api_pages_filters_and_counts_thousands_of_records() {
    let app = Distributed::spawn().await;
    let notices = seeded();
    seed(&app.database(), &notices).await;
    let admin = token(1, Role::Admin, "admin");
    let api = &app.endpoints;

    // Every page, newest first, nothing repeated or skipped.
    let mut seen = Vec::new();
    for page in 1..=30 {
        let (status, body) = api.get(&admin, &format!("/api/admin/push/records?page={page}&page_size=100")).await;
        assert_eq!(status, 200, "{body}");
        let data = &body["data"];
        assert_eq!((&data["total"], &data["page"], &data["page_size"]), (&json!(3000), &json!(page), &json!(100)));
        if page == 1 {
            assert_schema("push-records-response.schema.json", &body);
            assert_eq!(data["stats"], expected_stats(&notices.iter().collect::<Vec<_>>()), "{}", data["stats"]);
        }
        seen.extend(data["items"].as_array().unwrap().iter().map(|i| i["content"].as_str().unwrap().to_owned()));
    }
    let newest_first: Vec<String> = notices.iter().rev().map(|s| s.content.clone()).collect();
    assert_eq!(seen, newest_first);
    let (_, past) = api.get(&admin, "/api/admin/push/records?page=31&page_size=100").await;
    assert_eq!((&past["data"]["total"], &past["data"]["items"]), (&json!(3000), &json!([])));
    let (_, default) = api.get(&admin, "/api/admin/push/records").await;
    assert_eq!((&default["data"]["page_size"], default["data"]["items"].as_array().unwrap().len()), (&json!(20), 20));

    // Each filter, and a combination, against the same selection made here.
    let time = |n: usize| notices[n].time.replace(' ', "%20");
    let filters: Vec<(String, Selection)> = vec![
        ("message_type=order_completed".into(), Box::new(|s| s.message_type == "order_completed")),
        ("type=system_notice".into(), Box::new(|s| s.message_type == "system_notice")),
        ("target=admin".into(), Box::new(|s| s.target == "admin")),
        ("status=delivered".into(), Box::new(|s| s.status == "delivered")),
        ("status=failed".into(), Box::new(|s| s.status == "failed")),
        ("status=queued".into(), Box::new(|s| s.status == "queued")),
        ("sender_id=9".into(), Box::new(|s| s.sender_id == 9)),
        ("content=notice%2012".into(), Box::new(|s| s.content.contains("notice 12"))),
        (format!("start_time={}&end_time={}", time(1000), time(1099)), Box::new(|s| (1000..=1099).contains(&s.n))),
        (format!("start_time={}", time(2990)), Box::new(|s| s.n >= 2990)),
        (
            format!("target=custom&status=failed&sender_id=1&type=order_completed&end_time={}", time(1500)),
            Box::new(|s| {
                s.target == "custom"
                    && s.status == "failed"
                    && s.sender_id == 1
                    && s.message_type == "order_completed"
                    && s.n <= 1500
            }),
        ),
    ];
    for (query, keep) in &filters {
        let want: Vec<&Seeded> = notices.iter().filter(|s| keep(s)).collect();
        assert!(!want.is_empty(), "{query} selects something");
        let (status, body) = api.get(&admin, &format!("/api/admin/push/records?{query}&page_size=100")).await;
        assert_eq!(status, 200, "{query}: {body}");
        let data = &body["data"];
        assert_eq!(data["total"], want.len(), "{query}");
        assert_eq!(data["stats"], expected_stats(&want), "{query}");
        let contents: Vec<&str> =
            data["items"].as_array().unwrap().iter().map(|i| i["content"].as_str().unwrap()).collect();
        let newest: Vec<&str> = want.iter().rev().take(100).map(|s| s.content.as_str()).collect();
        assert_eq!(contents, newest, "{query}");
        for item in data["items"].as_array().unwrap() {
            let s = &notices[item["content"].as_str().unwrap()["seeded notice ".len()..].parse::<usize>().unwrap()];
            assert_eq!(
                (&item["status"], &item["delivered_count"], &item["failed_count"], &item["push_time"]),
                (&json!(s.status), &json!(s.delivered), &json!(s.failed), &json!(s.time)),
                "{query}"
            );
        }
    }
    app.stop().await;
}
