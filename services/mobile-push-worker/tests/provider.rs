//! The provider client against the mock provider, over HTTP: every answer shape the original
//! had to handle, and the exact payload the provider received.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mobile_push_worker::provider::{FailureReason, Outcome, ProviderTimeouts, PushPayload, UniPush};
use mock_push::{Answer, MockProvider};
use serde_json::json;
use std::time::Duration;

fn payload(push_id: &str) -> PushPayload {
    PushPayload {
        push_clientid: push_id.to_owned(),
        title: "告警:温度过高".to_owned(),
        content: "DEV-001".to_owned(),
        alarm_id: Some("alarm-7".to_owned()),
        category: None,
        options: None,
    }
}

fn failed(outcome: &Outcome) -> (FailureReason, &str, &str) {
    match outcome {
        Outcome::Failed { reason, message, answer, .. } => (*reason, message.as_str(), answer.as_str()),
        Outcome::Sent { answer } => panic!("sent: {answer}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_shape_is_a_success_or_a_failure_with_its_reason() {
    let provider = MockProvider::start_local().unwrap();
    let timeouts = ProviderTimeouts { connect: Duration::from_millis(500), total: Duration::from_millis(400) };
    let client = UniPush::new(timeouts).unwrap();
    let url = provider.push_url();

    let sent = client.send(&url, &payload("cid-ok")).await;
    assert!(matches!(&sent, Outcome::Sent { answer } if answer.contains("\"errCode\":0")), "{sent:?}");
    let received = provider.mock.received();
    assert_eq!(
        received[0].body,
        json!({"push_clientid": "cid-ok", "title": "告警:温度过高", "content": "DEV-001", "alarm_id": "alarm-7"})
    );

    provider.mock.answer_push_id("cid-refused", Answer::ErrCode { err_code: 20001 });
    let outcome = client.send(&url, &payload("cid-refused")).await;
    let (reason, message, answer) = failed(&outcome);
    assert_eq!(reason, FailureReason::ErrCode);
    assert!(message.contains("errCode 20001") && answer.contains("20001"), "{message} / {answer}");

    provider.mock.answer_push_id("cid-500", Answer::Http500);
    let outcome = client.send(&url, &payload("cid-500")).await;
    let (reason, message, _) = failed(&outcome);
    assert_eq!(reason, FailureReason::HttpStatus);
    assert!(message.contains("HTTP 500"), "{message}");

    provider.mock.answer_push_id("cid-html", Answer::NotJson);
    let outcome = client.send(&url, &payload("cid-html")).await;
    let (reason, message, answer) = failed(&outcome);
    assert_eq!(reason, FailureReason::BadAnswer);
    assert!(message.contains("not JSON") && answer.contains("<html>"), "{message}");

    provider.mock.answer_push_id("cid-slow", Answer::Slow { delay_ms: 2_000 });
    let outcome = client.send(&url, &payload("cid-slow")).await;
    let (reason, message, _) = failed(&outcome);
    assert_eq!(reason, FailureReason::Timeout);
    assert!(message.contains("400 ms"), "{message}");

    let addr = provider.addr;
    provider.stop().await;
    let outcome = client.send(&format!("http://{addr}/push"), &payload("cid-nobody")).await;
    let (reason, message, _) = failed(&outcome);
    assert_eq!(reason, FailureReason::Connect, "{message}");
    assert!(message.contains("cannot connect"), "{message}");
}
