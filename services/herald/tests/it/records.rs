//! Push records end to end: a custom notice to two online users and one offline user is
//! recorded with its counts, which follow the receipts; the records and logs API answer in the
//! spec's shape and refuse bad parameters. Distributed (RabbitMQ, PostgreSQL) and embedded.

use crate::helpers::{Distributed, Embedded, Endpoints, TokenVia, assert_schema, token};
use runtime::Role;
use serde_json::{Value, json};
use std::time::Duration;

/// Polls the record of `message_id` until `done` holds; returns the detail's `data`.
async fn wait_for_record(app: &Endpoints, admin: &str, message_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = app.get(admin, &format!("/api/admin/push/records/{message_id}")).await;
        if status == 200 && done(&body["data"]) {
            assert_schema("push-record-detail-response.schema.json", &body);
            return body["data"].clone();
        }
        assert!(status == 200 || status == 404, "{body}");
        assert!(tokio::time::Instant::now() < deadline, "the record never got there: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
