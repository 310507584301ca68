//! The mock provider over HTTP: default success, answers per push id and for the next N sends,
//! every answer shape, and what it received.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mock_push::MockProvider;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn send(http: &reqwest::Client, url: &str, push_id: &str) -> (u16, String, String) {
    let body = json!({"push_clientid": push_id, "title": "告警:温度过高", "content": "DEV-001", "alarm_id": "a1"});
    let response = http.post(url).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
    (status, kind, response.text().await.unwrap())
}

async fn instruct(http: &reqwest::Client, base: &str, instruction: Value) -> u16 {
    http.post(format!("{base}/mock/answers")).json(&instruction).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_answers_as_told_and_keeps_what_it_received() {
    let provider = MockProvider::start_local().unwrap();
    let base = format!("http://{}", provider.addr);
    let url = provider.push_url();
    let http = reqwest::Client::new();

    let (status, _, body) = send(&http, &url, "phone-a").await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &answer["errCode"]), (200, &json!(0)), "{body}");

    assert_eq!(instruct(&http, &base, json!({"answer": "http_500", "push_id": "phone-b"})).await, 200);
    assert_eq!(instruct(&http, &base, json!({"answer": "err_code", "err_code": 20001, "next": 2})).await, 200);
    // The next two sends get the errCode, whoever they are for; then phone-b's own answer.
    for push_id in ["phone-b", "phone-a"] {
        let (status, _, body) = send(&http, &url, push_id).await;
        assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()["errCode"].clone()), (200, json!(20001)));
    }
    let (status, _, _) = send(&http, &url, "phone-b").await;
    assert_eq!(status, 500);
    let (status, _, _) = send(&http, &url, "phone-a").await;
    assert_eq!(status, 200);

    assert_eq!(instruct(&http, &base, json!({"answer": "not_json", "next": 1})).await, 200);
    let (status, kind, body) = send(&http, &url, "phone-a").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html") && serde_json::from_str::<Value>(&body).is_err(), "{kind} {body}");

    assert_eq!(instruct(&http, &base, json!({"answer": "slow", "delay_ms": 300, "next": 1})).await, 200);
    let started = Instant::now();
    let (status, _, _) = send(&http, &url, "phone-a").await;
    assert!(status == 200 && started.elapsed() >= Duration::from_millis(300));

    for bad in [
        json!({"answer": "maybe"}),
        json!({"answer": "success", "push_id": "x", "next": 1}),
        json!({"answer": "success", "next": 0}),
        json!({"answer": "err_code", "err_code": 0}),
        json!({"answer": "success", "colour": "red"}),
    ] {
        assert_eq!(instruct(&http, &base, bad.clone()).await, 400, "{bad}");
    }

    let listed: Value =
        http.get(format!("{base}/mock/received?push_id=phone-b")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["total"], 2, "{listed}");
    assert_eq!(listed["items"][0]["body"]["title"], "告警:温度过高");
    assert_eq!(listed["items"][1]["answer"]["kind"], "http_500");
    let all = provider.mock.received();
    assert_eq!(all.len(), 7);
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());

    assert_eq!(http.delete(format!("{base}/mock/answers")).send().await.unwrap().status(), 200);
    assert_eq!(http.delete(format!("{base}/mock/received")).send().await.unwrap().status(), 200);
    let (status, _, _) = send(&http, &url, "phone-b").await;
    assert_eq!(status, 200, "phone-b's answer was forgotten");
    assert_eq!(provider.mock.received().len(), 1);
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    provider.stop().await;
}
