//! APNs against the mock APNs (`mock_push::apns`), which takes HTTP/2 only as far as it records
//! the version, verifies every provider token's ES256 signature with the test key, its `kid`,
//! `iss` and age, and the topic: the exact request APNs receives, the provider token reused and
//! renewed after its lifetime, each answer classified; then the worker's side: a dead token
//! deactivates exactly its device, an iPhone registered with a UniPush client id stays with the
//! cloud function, and a refused key stops APNs only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use database::scratch::{Backend, ScratchDatabase};
use mobile::{MobileStore, Registration};
use mobile_push_worker::metrics::SendMetrics;
use mobile_push_worker::provider::apns::{Apns, ApnsConfig};
use mobile_push_worker::provider::{FailureReason, Outcome, ProviderTimeouts, Providers, UniPush};
use mobile_push_worker::send::{Attempted, PushSend, Sender};
use mock_push::apns::{ApnsAnswer, KEY_ID, TEAM_ID, TEST_PRIVATE_KEY, TOPIC, UNKNOWN_PRIVATE_KEY};
use mock_push::{MockApnsServer, MockProvider};
use model::{DeviceStatus, DeviceType};
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const PHONE: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const GONE: &str = "0000000000000000000000000000000000000000000000000000000000000dea";
const CLIENT_ID: &str = "00000000000000000000000000000c01";

fn send(send_id: &str, push_id: &str, priority: model::Priority) -> PushSend {
    PushSend {
        send_id: send_id.to_owned(),
        attempt: 1,
        message_id: "1706335800123456789-abc12345".to_owned(),
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

fn config(mock: &MockApnsServer, topic: &str) -> ApnsConfig {
    ApnsConfig {
        key_id: KEY_ID.to_owned(),
        team_id: TEAM_ID.to_owned(),
        topic: topic.to_owned(),
        base_url: mock.base_url(),
    }
}

fn timeouts() -> ProviderTimeouts {
    ProviderTimeouts { connect: Duration::from_secs(2), total: Duration::from_secs(5) }
}

fn failure(outcome: &Outcome) -> (FailureReason, String) {
    match outcome {
        Outcome::Failed { reason, message, .. } => (*reason, message.clone()),
        Outcome::Sent { answer } => panic!("sent: {answer}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_gets_http2_requests_with_a_verified_provider_token() {
    runtime::install_crypto_provider();
    let mock = MockApnsServer::start_local().unwrap();
    let apns = Apns::from_pem(TEST_PRIVATE_KEY.as_bytes(), config(&mock, TOPIC), timeouts())
        .unwrap()
        .with_token_lifetime(Duration::from_millis(1_100));

    let sent = apns.send(&send("s-1", PHONE, model::Priority::Urgent)).await;
    assert!(matches!(&sent, Outcome::Sent { answer } if answer.starts_with("apns-id ")), "{sent:?}");
    let received = mock.mock.received();
    assert_eq!(received.len(), 1);
    let first = &received[0];
    assert_eq!((first.version.as_str(), first.token.as_str()), ("HTTP/2.0", PHONE));
    let header = |name: &str| first.headers.get(name).map(String::as_str);
    assert_eq!(header("apns-topic"), Some(TOPIC));
    assert_eq!(header("apns-push-type"), Some("alert"));
    assert_eq!(header("apns-priority"), Some("10"));
    assert_eq!(header("apns-collapse-id"), Some("1706335800123456789-abc12345"));
    assert_eq!(
        first.body,
        json!({
            "aps": {"alert": {"title": "系统维护", "body": "今晚 22:00 维护"}, "sound": "default"},
            "messageId": "1706335800123456789-abc12345",
            "messageType": "system_notice",
            "category": "system_notice",
        })
    );
    // A normal notice: priority 5; the same provider token within its lifetime.
    assert!(matches!(apns.send(&send("s-2", PHONE, model::Priority::Normal)).await, Outcome::Sent { .. }));
    let second = &mock.mock.received()[1];
    assert_eq!(second.headers.get("apns-priority").map(String::as_str), Some("5"));
    assert_eq!(second.jwt, first.jwt);
    // After its lifetime a new one (a new `iat`), still verified.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(matches!(apns.send(&send("s-3", PHONE, model::Priority::Normal)).await, Outcome::Sent { .. }));
    assert_ne!(mock.mock.received()[2].jwt, first.jwt);
    assert_eq!(mock.mock.refused(), 0);

    // Each answer, classified.
    for (answer, want) in [
        (ApnsAnswer::Unregistered, FailureReason::Unregistered),
        (ApnsAnswer::BadDeviceToken, FailureReason::Unregistered),
        (ApnsAnswer::TooManyRequests, FailureReason::Throttled),
        (ApnsAnswer::Unavailable, FailureReason::HttpStatus),
    ] {
        mock.mock.answer_next(1, answer);
        let outcome = apns.send(&send("s-x", PHONE, model::Priority::Normal)).await;
        let (reason, message) = failure(&outcome);
        assert_eq!(reason, want, "{answer:?}: {message}");
    }
    // A key APNs does not know, and a topic it does not serve: the credential.
    let revoked = Apns::from_pem(UNKNOWN_PRIVATE_KEY.as_bytes(), config(&mock, TOPIC), timeouts()).unwrap();
    let (reason, message) = failure(&revoked.send(&send("s-r", PHONE, model::Priority::Normal)).await);
    assert_eq!(reason, FailureReason::Credential);
    assert!(message.contains("403 InvalidProviderToken"), "{message}");
    let other_app =
        Apns::from_pem(TEST_PRIVATE_KEY.as_bytes(), config(&mock, "com.example.other"), timeouts()).unwrap();
    let (reason, message) = failure(&other_app.send(&send("s-t", PHONE, model::Priority::Normal)).await);
    assert_eq!((reason, message.contains("BadTopic")), (FailureReason::Credential, true), "{message}");
    assert_eq!(mock.mock.refused(), 2);
    assert!(Apns::from_pem(b"not a key", config(&mock, TOPIC), timeouts()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_apns_token_deactivates_its_device_and_a_refused_key_stops_apns_only() {
    runtime::install_crypto_provider();
    let shutdown = CancellationToken::new();
    let scratch = ScratchDatabase::create(Backend::Sqlite).await.unwrap();
    let store = MobileStore::on(database::connect(&scratch.settings).await.unwrap(), shutdown.clone());
    let unipush = MockProvider::start_local().unwrap();
    store.set_provider_url(&unipush.push_url()).await.unwrap();
    let mock = MockApnsServer::start_local().unwrap();
    for push_id in [PHONE, GONE, CLIENT_ID] {
        let device = Registration {
            user_id: 9,
            tenant_id: None,
            push_id: push_id.into(),
            device_type: DeviceType::Ios,
            subscription: None,
        };
        store.register(&device).await.unwrap();
    }
    mock.mock.answer_token(GONE, ApnsAnswer::Unregistered);
    let apns = Apns::from_pem(TEST_PRIVATE_KEY.as_bytes(), config(&mock, TOPIC), timeouts()).unwrap();
    let providers = Providers::unipush(UniPush::new(timeouts()).unwrap()).with_apns(apns);
    let sender = Sender::new(store.clone(), providers, SendMetrics::new());

    let dead = sender.attempt(&send("d-1", GONE, model::Priority::Normal)).await.unwrap();
    assert!(matches!(&dead, Attempted::Dead { reason } if reason.contains("410 Unregistered")), "{dead:?}");
    assert_eq!(store.device(GONE).await.unwrap().unwrap().status, DeviceStatus::Inactive);
    let rules = store.rule_logs(GONE).await.unwrap();
    assert_eq!((rules.len(), rules[0].rule.as_str()), (1, mobile::RULE_UNREGISTERED), "{rules:?}");
    assert_eq!(sender.attempt(&send("p-1", PHONE, model::Priority::Normal)).await.unwrap(), Attempted::Sent);
    assert_eq!(store.device(PHONE).await.unwrap().unwrap().status, DeviceStatus::Active);
    // The iPhone registered with a UniPush client id stays with the cloud function.
    assert_eq!(sender.attempt(&send("c-1", CLIENT_ID, model::Priority::Normal)).await.unwrap(), Attempted::Sent);
    assert_eq!(unipush.mock.received().len(), 1);
    assert_eq!(unipush.mock.received()[0].push_id, CLIENT_ID);
    assert_eq!(mock.mock.received().len(), 2, "GONE once, PHONE once");

    // A revoked key: APNs stops, the cloud function goes on, no device is charged.
    let revoked = Apns::from_pem(UNKNOWN_PRIVATE_KEY.as_bytes(), config(&mock, TOPIC), timeouts()).unwrap();
    let metrics = SendMetrics::new();
    let providers = Providers::unipush(UniPush::new(timeouts()).unwrap()).with_apns(revoked);
    let sender = Sender::new(store.clone(), providers, metrics.clone());
    let refused = sender.attempt(&send("r-1", PHONE, model::Priority::Normal)).await.unwrap();
    assert!(
        matches!(&refused, Attempted::Retry { reason, .. } if reason.contains("InvalidProviderToken")),
        "{refused:?}"
    );
    let stopped = sender.attempt(&send("r-2", PHONE, model::Priority::Normal)).await.unwrap();
    assert!(matches!(&stopped, Attempted::Retry { reason, .. } if reason.contains("APNs refused")), "{stopped:?}");
    assert_eq!(mock.mock.refused(), 1, "no call while stopped");
    assert_eq!(sender.attempt(&send("c-2", CLIENT_ID, model::Priority::Normal)).await.unwrap(), Attempted::Sent);
    assert_eq!(store.device(PHONE).await.unwrap().unwrap().err_count, 0);
    let text = metrics.render();
    assert!(text.contains(r#"herald_mobile_push_provider_stopped{provider="apns"} 1"#), "{text}");
    assert!(text.contains(r#"herald_mobile_push_provider_stopped{provider="fcm"} 0"#), "{text}");

    shutdown.cancel();
    drop(store);
    scratch.drop_now().await.unwrap();
}
