//! Back-pressure (spec 8.2): normal notices wait in a backlog of 1000; past it the API answers
//! QUEUE_FULL and delivers nothing; urgent notices bypass it and arrive first.

use crate::helpers::{Distributed, TokenVia, assert_schema, token};
use bus::Bus;
use bus::BusSettings;
use runtime::Role;
use runtime::testing::eventually;
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

/// 32 requests in flight against a backlog of 20 until it overflows, each a notice to one user
/// connected twice:
/// every notice answered 200 reaches each connection exactly once, and none answered 503 ever
/// arrives. (Publisher confirms crossed between concurrent publishes once made both false.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_overflow_every_answer_is_true() {
    use std::collections::HashMap;
    // A dispatcher that holds two notices at a time (a bundle of two at most) falls behind 32
    // posters, so the backlog overflows; with its default window it keeps up with them.
    let app = Distributed::spawn_with_bus(1, |bus| {
        bus.backlog = 20;
        bus.prefetch = 2;
    })
    .await;
    let admin = token(1, Role::Admin, "admin");
    let alice = token(2, Role::User, "alice");
    let mut phone = app.endpoints.ws(&alice, TokenVia::Query).await;
    let mut laptop = app.endpoints.ws(&alice, TokenVia::Header).await;

    let api = std::sync::Arc::new(app.endpoints.api.clone());
    // Each poster sends 40, and goes on (up to 400) until some answer was a refusal: on a busy
    // machine the dispatcher can keep up with 40 rounds, and the test is about the overflow.
    let overflowed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let posters: Vec<_> = (0..32)
        .map(|task| {
            let (http, api, admin) = (app.endpoints.http.clone(), api.clone(), admin.clone());
            let overflowed = overflowed.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for n in 0..400 {
                    if n >= 40 && overflowed.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let content = format!("n-{task}-{n}");
                    let body = json!({"content": content, "target": "custom", "user_ids": [2]});
                    let response = http
                        .post(format!("{api}/api/admin/system/notice"))
                        .bearer_auth(&admin)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    let answer: Value = response.json().await.unwrap();
                    assert!(status == 200 || answer["data"]["error_code"] == "QUEUE_FULL", "{status} {answer}");
                    if status != 200 {
                        overflowed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    answers.push((content, status == 200));
                }
                answers
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for poster in posters {
        for (content, ok) in poster.await.unwrap() {
            if ok { accepted.push(content) } else { refused.push(content) }
        }
    }
    assert!(!refused.is_empty() && !accepted.is_empty(), "{} accepted, {} refused", accepted.len(), refused.len());

    // A last notice, retried until accepted, closes the stream: the backlog is delivered in order.
    let barrier = eventually("the barrier notice to be accepted", std::time::Duration::from_secs(30), || async {
        let (status, _, answer) = app
            .endpoints
            .post_notice(Some(&admin), &json!({"content": "barrier", "target": "custom", "user_ids": [2]}))
            .await;
        if status == 200 { Ok(answer["data"]["message_id"].as_str().unwrap().to_owned()) } else { Err(answer) }
    })
    .await;
    for connection in [&mut phone, &mut laptop] {
        let mut received: HashMap<String, usize> = HashMap::new();
        for frame in connection.frames_until(&barrier).await {
            let frame: Value = serde_json::from_str(&frame).unwrap();
            *received.entry(frame["content"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
        }
        let lost: Vec<_> = accepted.iter().filter(|c| !received.contains_key(*c)).collect();
        let doubled: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
        let refused_but_delivered: Vec<_> = refused.iter().filter(|c| received.contains_key(*c)).collect();
        assert!(
            lost.is_empty() && doubled.is_empty() && refused_but_delivered.is_empty(),
            "{} accepted, {} refused: lost {lost:?}, doubled {doubled:?}, refused but delivered {refused_but_delivered:?}",
            accepted.len(),
            refused.len()
        );
    }
    app.stop().await;
}
