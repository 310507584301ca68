//! `Idempotency-Key`: a repeat gets the first answer and delivers nothing again.

use crate::helpers::{Embedded, TokenVia, assert_schema, token};
use runtime::Role;
use runtime::testing::eventually;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_notice_gets_the_first_answer_and_is_delivered_once() {
    let app = Embedded::spawn().await;
    let admin = token(1, Role::Admin, "admin");
    let mut alice = app.endpoints.ws(&token(2, Role::User, "alice"), TokenVia::Query).await;
    let body = json!({"content": "once only"});
    let key = [("Idempotency-Key", "order-42-paid")];

    let (status, headers, first) = app.endpoints.post_notice_with(Some(&admin), &body, &key).await;
    assert_eq!(status, 200, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    let (status, headers, again) = app.endpoints.post_notice_with(Some(&admin), &body, &key).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(again, first, "the repeat must get the first answer, message_id included");

    let (status, _, reused) =
        app.endpoints.post_notice_with(Some(&admin), &json!({"content": "something else"}), &key).await;
    assert_eq!(status, 422, "{reused}");
    assert_schema("failure-response.schema.json", &reused);
    assert_eq!(reused["data"]["error_code"], "IDEMPOTENCY_KEY_REUSED");

    // Another sender's identical key is its own.
    let other = token(5, Role::Admin, "other");
    let (status, _, theirs) = app.endpoints.post_notice_with(Some(&other), &body, &key).await;
    assert_eq!(status, 200);
    assert_ne!(theirs["data"]["message_id"], first["data"]["message_id"]);

    // Alice got the notice once (and the other sender's), nothing more.
    let frames = alice.frames_until(theirs["data"]["message_id"].as_str().unwrap()).await;
    let ids: Vec<_> =
        frames.iter().map(|f| serde_json::from_str::<serde_json::Value>(f).unwrap()["message_id"].clone()).collect();
    assert_eq!(ids, [first["data"]["message_id"].clone(), theirs["data"]["message_id"].clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_frees_its_key_and_a_bad_key_is_refused() {
    let app = Embedded::spawn().await;
    let admin = token(1, Role::Admin, "admin");
    let key = [("Idempotency-Key", "retry-me")];
    let (status, _, _) =
        app.endpoints.post_notice_with(Some(&admin), &json!({"content": "x", "target": "custom"}), &key).await;
    assert_eq!(status, 400);
    let (status, _, answer) = app.endpoints.post_notice_with(Some(&admin), &json!({"content": "fixed"}), &key).await;
    assert_eq!(status, 200, "a corrected retry with the same key must be carried out: {answer}");

    let long = "k".repeat(201);
    let (status, _, answer) = app
        .endpoints
        .post_notice_with(Some(&admin), &json!({"content": "x"}), &[("Idempotency-Key", long.as_str())])
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["data"]["error_code"], "INVALID_REQUEST");
}

/// Redis stalls (every byte to it held for 5 s): the notice is refused with PUSH_FAILED, and once
/// Redis answers again the same request with the same key goes through at once, although the
/// commands sent during the stall reach Redis late. (A claim that ran late used to hold the key
/// for 60 s: 409 REQUEST_IN_PROGRESS, and the notice was never sent.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_after_a_redis_stall_goes_through() {
    let redis = crate::helpers::redis_url();
    let target = redis.trim_start_matches("redis://").trim_end_matches('/').to_owned();
    let proxy = crate::helpers::StallingProxy::start(target).await;
    let app = crate::helpers::Distributed::spawn_with_redis(format!("redis://{}", proxy.addr), |_| {}).await;
    let admin = token(1, Role::Admin, "admin");
    let mut alice = app.endpoints.ws(&token(2, Role::User, "alice"), TokenVia::Query).await;
    let body = json!({"content": "after the stall", "target": "custom", "user_ids": [2]});
    let key = [("Idempotency-Key", "stalled-1")];

    proxy.pause();
    let (status, _, refused) = app.endpoints.post_notice_with(Some(&admin), &body, &key).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["data"]["error_code"], "PUSH_FAILED");
    // The stall itself: how long Redis holds every byte is the scenario (the commands sent
    // meanwhile reach it well after the API gave up on them), not a wait for something.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    proxy.resume();

    // "At once": the retry must go through within a few seconds of Redis answering again.
    let accepted =
        eventually("the retry to be accepted after the stall", std::time::Duration::from_secs(4), || async {
            let (status, _, answer) = app.endpoints.post_notice_with(Some(&admin), &body, &key).await;
            if status == 200 { Ok(answer) } else { Err(format!("{status} {answer}")) }
        })
        .await;
    let id = accepted["data"]["message_id"].as_str().unwrap();
    let frames = alice.frames_until(id).await;
    assert_eq!(frames.iter().filter(|f| f.contains("after the stall")).count(), 1, "{frames:?}");
    app.stop().await;
}
