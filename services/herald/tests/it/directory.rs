//! The user directory and presence, end to end: admins upserted through the API or seen on
//! connect receive `admin` notices while offline; the online-users endpoint follows
//! connections. Distributed (RabbitMQ, Redis, PostgreSQL) and embedded.

use crate::helpers::{Distributed, Embedded, Endpoints, TokenVia, assert_schema, token};
use runtime::Role;
use runtime::testing::eventually;
use serde_json::{Value, json};
use std::time::Duration;

/// Polls `path` until `done` holds for the answer's items; returns the answer.
async fn wait_for(app: &Endpoints, admin: &str, path: &str, done: impl Fn(&[Value]) -> bool) -> Value {
    eventually(&format!("{path} to show what was expected"), Duration::from_secs(15), || async {
        let (status, body) = app.get(admin, path).await;
        assert_eq!(status, 200, "{body}");
        if done(body["data"]["items"].as_array().unwrap()) { Ok(body) } else { Err(body) }
    })
    .await
}

fn ids(items: &[Value]) -> Vec<i64> {
    items.iter().map(|u| u["user_id"].as_i64().unwrap()).collect()
}

async fn offline_admins_get_admin_notices(app: &Endpoints) {
    let admin = token(1, Role::Admin, "root");
    // 10 is an admin Herald learns of from the API only; 12 from their token, on connect.
    let batch = json!({"users": [
        {"user_id": 10, "name": "Ada", "role": "admin", "tenant_id": "acme", "groups": ["ops"]},
        {"user_id": 11, "name": "Bob"},
    ]});
    assert_schema("user-upsert-request.schema.json", &batch);
    let (status, answer) = app.put(&admin, "/api/admin/users", &batch).await;
    assert_eq!((status, &answer["data"]["upserted"]), (200, &json!(2)), "{answer}");

    let grace = token(12, Role::Admin, "Grace");
    let mut seen = app.ws(&grace, TokenVia::Query).await;
    seen.until_live().await;
    let listed = wait_for(app, &admin, "/api/admin/users?role=admin", |items| ids(items).contains(&12)).await;
    assert_schema("user-page-response.schema.json", &listed);
    let grace_entry = listed["data"]["items"].as_array().unwrap().iter().find(|u| u["user_id"] == 12).unwrap();
    assert_eq!((&grace_entry["name"], &grace_entry["is_online"]), (&json!("Grace"), &json!(true)), "{grace_entry}");
    assert!(grace_entry["last_seen_at"].is_string(), "{grace_entry}");
    drop(seen);

    // The root admin is online; 10 and 12 are not. 11 is no admin.
    let mut root = app.ws(&admin, TokenVia::Query).await;
    root.until_live().await;
    let notice = app.notice(&admin, json!({"content": "maintenance at noon", "target": "admin"})).await;
    let live: Value = serde_json::from_str(&root.frames_until(&notice.message_id).await.pop().unwrap()).unwrap();
    assert_eq!(live["content"], "maintenance at noon");

    for (id, name) in [(10, "Ada"), (12, "Grace")] {
        let mut later = app.ws(&token(id, Role::Admin, name), TokenVia::Query).await;
        let frame: Value = serde_json::from_str(&later.frames_until(&notice.message_id).await.pop().unwrap()).unwrap();
        assert_eq!(frame["type"], "system_notice", "{name}: {frame}");
        assert!(frame["content"].as_str().unwrap().contains("maintenance at noon"), "{name}: {frame}");
        assert!(frame["data"]["original_push_time"].is_string(), "{name} got it as an offline message: {frame}");
    }
    let mut bob = app.ws(&token(11, Role::User, "Bob"), TokenVia::Query).await;
    bob.send_text(r#"{"type":"ping"}"#).await;
    let first: Value = serde_json::from_str(&bob.next_text().await).unwrap();
    assert_eq!(first["type"], "pong", "a user got an admin notice: {first}");

    // Listing: paging, filters, and the user's fields. Sightings are recorded in batches, a
    // moment after the connection.
    let page = eventually("every user seen to be listed", Duration::from_secs(15), || async {
        let (status, page) = app.get(&admin, "/api/admin/users?page=1&page_size=2").await;
        assert_eq!(status, 200, "{page}");
        if page["data"]["total"] == 4 { Ok(page) } else { Err(page) }
    })
    .await;
    assert_schema("user-page-response.schema.json", &page);
    assert_eq!(ids(page["data"]["items"].as_array().unwrap()), vec![1, 10]);
    let (_, acme) = app.get(&admin, "/api/admin/users?tenant_id=acme").await;
    let ada = &acme["data"]["items"][0];
    assert_eq!((&ada["user_id"], &ada["groups"], &ada["role"]), (&json!(10), &json!(["ops"]), &json!("admin")));
}

async fn presence_follows_connections(app: &Endpoints, gateways: &[String]) {
    let admin = token(1, Role::Admin, "root");
    let alice = token(2, Role::User, "alice");
    let mut first = crate::helpers::WsClient::connect(&gateways[0], &alice, TokenVia::Query).await.unwrap();
    let last = gateways.last().unwrap();
    let mut second = crate::helpers::WsClient::connect(last, &alice, TokenVia::Header).await.unwrap();
    first.until_live().await;
    second.until_live().await;
    let online = wait_for(app, &admin, "/api/admin/users/online", |items| {
        items.iter().any(|u| u["user_id"] == 2 && u["connections"] == 2)
    })
    .await;
    assert_schema("online-users-response.schema.json", &online);
    let entry = online["data"]["items"].as_array().unwrap().iter().find(|u| u["user_id"] == 2).unwrap().clone();
    assert_eq!(entry["replicas"].as_array().unwrap().len(), gateways.len().min(2), "{entry}");

    drop(first);
    wait_for(app, &admin, "/api/admin/users/online", |items| {
        items.iter().any(|u| u["user_id"] == 2 && u["connections"] == 1)
    })
    .await;
    drop(second);
    wait_for(app, &admin, "/api/admin/users/online", |items| !ids(items).contains(&2)).await;
}

async fn bad_requests_are_refused_clearly(app: &Endpoints) {
    let admin = token(1, Role::Admin, "root");
    let refused = |status: u16, body: &Value, expected: u16, code: &str, names: &str| {
        assert_eq!(status, expected, "{body}");
        assert_schema("failure-response.schema.json", body);
        assert_eq!(body["data"]["error_code"], code, "{body}");
        assert!(body["data"]["error"].as_str().unwrap().contains(names), "{body}");
    };
    let (s, b) = app.put(&admin, "/api/admin/users", &json!({"users": [{"user_id": 5}, {"user_id": 0}]})).await;
    refused(s, &b, 400, "INVALID_REQUEST", "users[1].user_id");
    let (s, b) = app.put(&admin, "/api/admin/users", &json!({"users": []})).await;
    refused(s, &b, 400, "INVALID_REQUEST", "1 to 1000");
    let (s, b) = app.put(&admin, "/api/admin/users", &json!({"users": [{"user_id": 5, "role": "root"}]})).await;
    refused(s, &b, 400, "INVALID_REQUEST", "role");
    let (s, b) = app.put(&admin, "/api/admin/users", &json!({"users": [{"user_id": 5, "nmae": "x"}]})).await;
    refused(s, &b, 400, "INVALID_REQUEST", "nmae");
    let many: Vec<Value> = (1..=1001).map(|id| json!({"user_id": id})).collect();
    let (s, b) = app.put(&admin, "/api/admin/users", &json!({ "users": many })).await;
    refused(s, &b, 400, "INVALID_REQUEST", "1 to 1000");
    let (s, b) = app.get(&admin, "/api/admin/users?page_size=201").await;
    refused(s, &b, 400, "INVALID_REQUEST", "page_size");
    let (s, b) = app.get(&admin, "/api/admin/users?page=0").await;
    refused(s, &b, 400, "INVALID_REQUEST", "page");
    let (s, b) = app.get(&admin, "/api/admin/users?colour=red").await;
    refused(s, &b, 400, "INVALID_REQUEST", "colour");
    let (s, b) = app.get(&admin, "/api/admin/users/online?page=x").await;
    refused(s, &b, 400, "INVALID_REQUEST", "page");
    let user = token(2, Role::User, "alice");
    let (s, b) = app.get(&user, "/api/admin/users").await;
    refused(s, &b, 403, "FORBIDDEN", "admin");
    let (s, b) = app.put(&user, "/api/admin/users", &json!({"users": [{"user_id": 2, "role": "admin"}]})).await;
    refused(s, &b, 403, "FORBIDDEN", "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_directory_and_presence() {
    let app = Distributed::spawn_with_gateways(2).await;
    offline_admins_get_admin_notices(&app.endpoints).await;
    presence_follows_connections(&app.endpoints, &app.gateway_ws).await;
    bad_requests_are_refused_clearly(&app.endpoints).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_directory_and_presence() {
    let app = Embedded::spawn().await;
    offline_admins_get_admin_notices(&app.endpoints).await;
    let gateways = vec![app.endpoints.ws.clone()];
    presence_follows_connections(&app.endpoints, &gateways).await;
    bad_requests_are_refused_clearly(&app.endpoints).await;
}
