//! Rate limits per sender and per client address; urgent notices are exempt.

use crate::helpers::{Embedded, assert_schema, token};
use runtime::Role;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_over_its_limit_gets_429_with_retry_after_but_urgent_notices_pass() {
    let app = Embedded::spawn_with(|s| {
        s.ingest.limits.sender_per_second = 1;
        s.ingest.limits.sender_burst = 2;
    })
    .await;
    let (admin, other) = (token(1, Role::Admin, "admin"), token(5, Role::Admin, "other"));
    for _ in 0..2 {
        app.endpoints.notice(&admin, json!({"content": "within the burst"})).await;
    }
    let (status, headers, answer) = app.endpoints.post_notice(Some(&admin), &json!({"content": "one too many"})).await;
    assert_eq!(status, 429, "{answer}");
    assert_schema("failure-response.schema.json", &answer);
    assert_eq!(answer["data"]["error_code"], "RATE_LIMIT_EXCEEDED");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");

    app.endpoints.notice(&admin, json!({"content": "urgent goes through", "priority": "urgent"})).await;
    app.endpoints.notice(&admin, json!({"content": "so does 3", "priority": 3})).await;
    app.endpoints.notice(&other, json!({"content": "another sender has its own allowance"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_is_limited_across_senders() {
    let app = Embedded::spawn_with(|s| {
        s.ingest.limits.ip_per_second = 1;
        s.ingest.limits.ip_burst = 2;
    })
    .await;
    app.endpoints.notice(&token(1, Role::Admin, "a"), json!({"content": "1"})).await;
    app.endpoints.notice(&token(5, Role::Admin, "b"), json!({"content": "2"})).await;
    let (status, _, answer) =
        app.endpoints.post_notice(Some(&token(6, Role::Admin, "c")), &json!({"content": "3"})).await;
    assert_eq!(status, 429, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("address"), "{answer}");
}
