//! Rate limits per sender and per client address; urgent notices are exempt.

use crate::helpers::{Embedded, assert_schema, token};
use runtime::Role;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_over_its_limit_gets_429_with_retry_after_but_urgent_notices_pass() {
    let app = Embedded::spawn_with(|s| {
        s.limits.sender_per_second = 1;
        s.limits.sender_burst = 2;
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
        s.limits.ip_per_second = 1;
        s.limits.ip_burst = 2;
    })
    .await;
    app.endpoints.notice(&token(1, Role::Admin, "a"), json!({"content": "1"})).await;
    app.endpoints.notice(&token(5, Role::Admin, "b"), json!({"content": "2"})).await;
    let (status, _, answer) =
        app.endpoints.post_notice(Some(&token(6, Role::Admin, "c")), &json!({"content": "3"})).await;
    assert_eq!(status, 429, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("address"), "{answer}");
}

/// Urgent notices skip the backlog and the rate limits, so how many are carried out at once is
/// bounded: with one in flight (held up by a stalled Redis), the next is refused with QUEUE_FULL
/// at once, and accepted again once the first is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urgent_notices_in_flight_are_bounded() {
    let redis = crate::helpers::redis_url();
    let proxy =
        crate::helpers::StallingProxy::start(redis.trim_start_matches("redis://").trim_end_matches('/').into()).await;
    let app = crate::helpers::Distributed::spawn_with_redis(format!("redis://{}", proxy.addr), |settings| {
        settings.limits.urgent_in_flight = 1;
    })
    .await;
    let admin = crate::helpers::token(1, runtime::Role::Admin, "admin");
    let urgent = serde_json::json!({"content": "now", "priority": "urgent", "target": "custom", "user_ids": [2]});
    proxy.pause();
    let stuck = {
        let (http, api, admin, urgent) =
            (app.endpoints.http.clone(), app.endpoints.api.clone(), admin.clone(), urgent.clone());
        tokio::spawn(async move {
            http.post(format!("{api}/api/admin/system/notice"))
                .bearer_auth(admin)
                .json(&urgent)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    // The first is in flight, holding the one slot, once its offline copy waits at the stalled
    // Redis (the slot is taken before the copy is written): the inbox's script being loaded,
    // or run on the inbox's key.
    proxy.until_holding(&["redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])", "offline_msg:2"]).await;
    let (status, headers, answer) = app.endpoints.post_notice(Some(&admin), &urgent).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["data"]["error_code"], "QUEUE_FULL", "{answer}");
    assert!(headers.contains_key("retry-after"));
    proxy.resume();
    let _ = stuck.await.unwrap();
    app.endpoints.notice(&admin, urgent).await;
    app.stop().await;
}
