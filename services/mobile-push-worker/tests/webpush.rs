//! Web Push against the mock push service (`mock_push::webpush`), which verifies every VAPID
//! JWT's ES256 signature, audience, expiry and contact, and decrypts every payload with the
//! subscription's private key: the exact request a push service receives and what the browser's
//! service worker would be given, each answer classified; then the worker's side: a dead
//! subscription deactivates exactly its device, `Retry-After` is honoured, an endpoint outside the
//! allowed push services is never called, and a refused VAPID key stops Web Push only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use database::scratch::{Backend, ScratchDatabase};
use mobile::{MobileStore, Registration};
use mobile_push_worker::metrics::SendMetrics;
use mobile_push_worker::provider::webpush::{WebPush, WebPushConfig};
use mobile_push_worker::provider::{FailureReason, Outcome, ProviderTimeouts, Providers, UniPush};
use mobile_push_worker::send::{Attempted, PushSend, Sender};
use mock_push::webpush::{TEST_VAPID_KEY, TEST_VAPID_PUBLIC_KEY, UNKNOWN_VAPID_KEY, WebPushAnswer};
use mock_push::{MockProvider, MockWebPushServer};
use model::{DeviceStatus, DeviceType};
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const MESSAGE_ID: &str = "1706335800123456789-abc12345";

fn send(send_id: &str, push_id: &str, priority: model::Priority) -> PushSend {
    PushSend {
        send_id: send_id.to_owned(),
        attempt: 1,
        message_id: MESSAGE_ID.to_owned(),
        user_id: 9,
        push_id: push_id.to_owned(),
        message_type: "system_notice".to_owned(),
        title: "系统维护".to_owned(),
        content: "今晚 22:00 维护".to_owned(),
        alarm_id: None,
        category: Some("system_notice".to_owned()),
        priority,
    }
}

fn config(hosts: &[&str]) -> WebPushConfig {
    WebPushConfig {
        subject: "mailto:ops@example.com".to_owned(),
        ttl: Duration::from_secs(3600),
        hosts: hosts.iter().map(|host| (*host).to_owned()).collect(),
    }
}

fn timeouts() -> ProviderTimeouts {
    ProviderTimeouts { connect: Duration::from_secs(2), total: Duration::from_secs(5) }
}

fn web_push(key: &str, hosts: &[&str]) -> WebPush {
    WebPush::from_key(key, config(hosts), timeouts()).unwrap()
}

fn failure(outcome: &Outcome) -> (FailureReason, String, Option<Duration>) {
    match outcome {
        Outcome::Failed { reason, message, retry_after, .. } => (*reason, message.clone(), *retry_after),
        Outcome::Sent { answer } => panic!("sent: {answer}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_service_gets_an_encrypted_payload_signed_with_vapid() {
    let mock = MockWebPushServer::start_local().unwrap();
    let alice = mock.mock.subscribe("alice");
    let subscription = alice.json();
    let push = web_push(TEST_VAPID_KEY, &["127.0.0.1"]);
    assert_eq!(push.public_key(), TEST_VAPID_PUBLIC_KEY.trim(), "the applicationServerKey browsers subscribe with");

    let sent = push.send(&send("s-1", "web:alice", model::Priority::Urgent), Some(&subscription)).await;
    let base = format!("http://{}", mock.addr);
    assert_eq!(sent, Outcome::Sent { answer: format!("HTTP 201 {base}/message/1") });
    let received = mock.mock.received();
    assert_eq!((received.len(), received[0].id.as_str()), (1, "alice"));
    let first = &received[0];
    // What the browser's service worker is given, decrypted with the subscription's key.
    assert_eq!(
        first.payload,
        json!({
            "title": "系统维护",
            "body": "今晚 22:00 维护",
            "tag": MESSAGE_ID,
            "data": {"messageId": MESSAGE_ID, "messageType": "system_notice", "category": "system_notice"},
        })
    );
    let header = |name: &str| first.headers.get(name).map(String::as_str);
    assert_eq!(header("ttl"), Some("3600"));
    assert_eq!(header("urgency"), Some("high"));
    assert_eq!(header("content-encoding"), Some("aes128gcm"));
    let topic = header("topic").unwrap();
    assert!(topic.len() <= 32 && topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)), "{topic}");
    // The VAPID JWT (verified by the mock): the endpoint's origin, the contact, an hour's life.
    assert_eq!(first.claims["aud"], json!(base));
    assert_eq!(first.claims["sub"], json!("mailto:ops@example.com"));
    let lifetime = first.claims["exp"].as_u64().unwrap() - first.claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 3600);

    // A normal notice: normal urgency; a redelivered attempt, the same topic.
    assert!(matches!(
        push.send(&send("s-2", "web:alice", model::Priority::Normal), Some(&subscription)).await,
        Outcome::Sent { .. }
    ));
    let second = &mock.mock.received()[1];
    assert_eq!(second.headers.get("urgency").map(String::as_str), Some("normal"));
    assert_eq!(second.headers.get("topic").map(String::as_str), Some(topic));
    assert_eq!(mock.mock.refused(), 0);

    // Each answer, classified.
    for (answer, want, delay) in [
        (WebPushAnswer::Gone, FailureReason::Unregistered, None),
        (WebPushAnswer::NotFound, FailureReason::Unregistered, None),
        (
            WebPushAnswer::TooManyRequests { retry_after_secs: 7 },
            FailureReason::Throttled,
            Some(Duration::from_secs(7)),
        ),
        (WebPushAnswer::Unavailable, FailureReason::HttpStatus, None),
    ] {
        mock.mock.answer_next(1, answer);
        let outcome = push.send(&send("s-x", "web:alice", model::Priority::Normal), Some(&subscription)).await;
        let (reason, message, retry_after) = failure(&outcome);
        assert_eq!((reason, retry_after), (want, delay), "{answer:?}: {message}");
    }
    // A VAPID key the subscription was not made for: the credential.
    let wrong = web_push(UNKNOWN_VAPID_KEY, &["127.0.0.1"]);
    let (reason, message, _) =
        failure(&wrong.send(&send("s-w", "web:alice", model::Priority::Normal), Some(&subscription)).await);
    assert_eq!(reason, FailureReason::Credential, "{message}");
    assert!(message.contains("HTTP 403"), "{message}");
    assert_eq!(mock.mock.refused(), 1);
    // An endpoint on a host that is not an allowed push service is never called.
    let strict = web_push(TEST_VAPID_KEY, &["fcm.googleapis.com"]);
    let before = mock.mock.received().len();
    let (reason, message, _) =
        failure(&strict.send(&send("s-h", "web:alice", model::Priority::Normal), Some(&subscription)).await);
    assert_eq!(reason, FailureReason::EndpointRefused);
    assert!(message.contains("127.0.0.1 is not in mobile.web_push_hosts"), "{message}");
    assert_eq!((mock.mock.received().len(), mock.mock.refused()), (before, 1), "no call");
    let (reason, _, _) = failure(&push.send(&send("s-n", "web:alice", model::Priority::Normal), None).await);
    assert_eq!(reason, FailureReason::EndpointRefused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_subscription_deactivates_its_device_and_a_refused_key_stops_web_push_only() {
    runtime::install_crypto_provider();
    let shutdown = CancellationToken::new();
    let scratch = ScratchDatabase::create(Backend::Sqlite).await.unwrap();
    let store = MobileStore::on(database::connect(&scratch.settings).await.unwrap(), shutdown.clone());
    let unipush = MockProvider::start_local().unwrap();
    store.set_provider_url(&unipush.push_url()).await.unwrap();
    let mock = MockWebPushServer::start_local().unwrap();
    // Two browsers registered as the API registers them, and a phone.
    let mut push_ids = Vec::new();
    for id in ["alive", "gone", "busy"] {
        let web = validation::mobile::check_web_subscription(&mock.mock.subscribe(id).json()).unwrap();
        let device = Registration {
            user_id: 9,
            tenant_id: None,
            push_id: web.push_id.clone(),
            device_type: DeviceType::Web,
            subscription: Some(web.json),
        };
        store.register(&device).await.unwrap();
        push_ids.push(web.push_id);
    }
    let (alive, gone, busy) = (&push_ids[0], &push_ids[1], &push_ids[2]);
    let phone = "phone-token-0123456789";
    let android = Registration {
        user_id: 9,
        tenant_id: None,
        push_id: phone.into(),
        device_type: DeviceType::Android,
        subscription: None,
    };
    store.register(&android).await.unwrap();
    mock.mock.answer_subscription("gone", WebPushAnswer::Gone);
    mock.mock.answer_subscription("busy", WebPushAnswer::TooManyRequests { retry_after_secs: 30 });
    let providers =
        Providers::unipush(UniPush::new(timeouts()).unwrap()).with_web_push(web_push(TEST_VAPID_KEY, &["127.0.0.1"]));
    let sender = Sender::new(store.clone(), providers, SendMetrics::new());

    let dead = sender.attempt(&send("d-1", gone, model::Priority::Normal)).await.unwrap();
    assert!(matches!(&dead, Attempted::Dead { reason } if reason.contains("HTTP 410")), "{dead:?}");
    assert_eq!(store.device(gone).await.unwrap().unwrap().status, DeviceStatus::Inactive);
    let rules = store.rule_logs(gone).await.unwrap();
    assert_eq!((rules.len(), rules[0].rule.as_str()), (1, mobile::RULE_UNREGISTERED), "{rules:?}");
    assert_eq!(sender.attempt(&send("a-1", alive, model::Priority::Normal)).await.unwrap(), Attempted::Sent);
    assert_eq!(store.device(alive).await.unwrap().unwrap().status, DeviceStatus::Active);
    let throttled = sender.attempt(&send("b-1", busy, model::Priority::Normal)).await.unwrap();
    assert!(
        matches!(&throttled, Attempted::Retry { not_before: Some(delay), .. } if *delay == Duration::from_secs(30)),
        "{throttled:?}"
    );
    // The phone goes to the cloud function.
    assert_eq!(sender.attempt(&send("p-1", phone, model::Priority::Normal)).await.unwrap(), Attempted::Sent);
    assert_eq!(unipush.mock.received().len(), 1);
    let paths: Vec<_> = mock.mock.received().iter().map(|r| r.id.clone()).collect();
    assert_eq!(paths, ["gone", "alive", "busy"]);

    // Told to call only another push service: dead at once, charged to the device, no call.
    let strict = Providers::unipush(UniPush::new(timeouts()).unwrap())
        .with_web_push(web_push(TEST_VAPID_KEY, &["fcm.googleapis.com"]));
    let strict = Sender::new(store.clone(), strict, SendMetrics::new());
    let refused = strict.attempt(&send("h-1", alive, model::Priority::Normal)).await.unwrap();
    assert!(matches!(&refused, Attempted::Dead { reason } if reason.contains("web_push_hosts")), "{refused:?}");
    assert_eq!(store.device(alive).await.unwrap().unwrap().err_count, 1);
    assert_eq!(mock.mock.received().len(), 3);

    // A wrong VAPID key: Web Push stops, the cloud function goes on, no device is charged.
    let metrics = SendMetrics::new();
    let providers = Providers::unipush(UniPush::new(timeouts()).unwrap())
        .with_web_push(web_push(UNKNOWN_VAPID_KEY, &["127.0.0.1"]));
    let sender = Sender::new(store.clone(), providers, metrics.clone());
    let refused = sender.attempt(&send("r-1", alive, model::Priority::Normal)).await.unwrap();
    assert!(matches!(&refused, Attempted::Retry { reason, .. } if reason.contains("HTTP 403")), "{refused:?}");
    let stopped = sender.attempt(&send("r-2", alive, model::Priority::Normal)).await.unwrap();
    assert!(matches!(&stopped, Attempted::Retry { reason, .. } if reason.contains("Web Push refused")), "{stopped:?}");
    assert_eq!(mock.mock.refused(), 1, "no call while stopped");
    assert_eq!(sender.attempt(&send("p-2", phone, model::Priority::Normal)).await.unwrap(), Attempted::Sent);
    assert_eq!(store.device(alive).await.unwrap().unwrap().err_count, 1, "unchanged by the refused key");
    let text = metrics.render();
    assert!(text.contains(r#"herald_mobile_push_provider_stopped{provider="webpush"} 1"#), "{text}");
    assert!(text.contains(r#"herald_mobile_push_provider_stopped{provider="unipush"} 0"#), "{text}");

    shutdown.cancel();
    drop(store);
    scratch.drop_now().await.unwrap();
}
