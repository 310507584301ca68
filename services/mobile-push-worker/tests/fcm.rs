//! FCM HTTP v1 against the mock FCM (`mock_push::fcm`), which verifies the service-account
//! assertion's RS256 signature with the test key and every send's bearer token: the exact
//! request FCM receives, the token refreshed when it expires, each answer classified; then the
//! worker's side: a dead token deactivates exactly its device with a rule-log row, a refused
//! credential stops FCM only (and counts against no device), and a 429's `Retry-After` delays
//! the retry at least that long over RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bus::{Bus, BusSettings, BusUrl};
use database::scratch::{Backend, ScratchDatabase};
use mobile::{LogQuery, MobileStore, Registration};
use mobile_push_worker::metrics::SendMetrics;
use mobile_push_worker::provider::fcm::Fcm;
use mobile_push_worker::provider::{FailureReason, Outcome, ProviderTimeouts, Providers, UniPush};
use mobile_push_worker::send::{Attempted, PushSend, Sender};
use mobile_push_worker::worker;
use mock_push::fcm::{FcmAnswer, TEST_PRIVATE_KEY, UNKNOWN_PRIVATE_KEY};
use mock_push::{MockFcmServer, MockProvider};
use model::{DeviceStatus, DeviceType, PushLogStatus};
use runtime::testing::{eventually, holds};
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn send(send_id: &str, push_id: &str, user_id: i64) -> PushSend {
    PushSend {
        send_id: send_id.to_owned(),
        attempt: 1,
        message_id: "1706335800123456789-abc12345".to_owned(),
        user_id,
        push_id: push_id.to_owned(),
        message_type: "order_completed".to_owned(),
        title: "订单已完成".to_owned(),
        content: "订单 #42 已送达".to_owned(),
        alarm_id: None,
        category: Some("order_completed".to_owned()),
        priority: model::Priority::High,
    }
}

fn timeouts() -> ProviderTimeouts {
    ProviderTimeouts { connect: Duration::from_secs(2), total: Duration::from_secs(5) }
}

async fn fcm(mock: &MockFcmServer, key: &str) -> Fcm {
    Fcm::from_json(mock.service_account(key).as_bytes(), None, &mock.base_url(), timeouts()).await.unwrap()
}

fn failure(outcome: &Outcome) -> (FailureReason, Option<Duration>, &str) {
    match outcome {
        Outcome::Failed { reason, retry_after, message, .. } => (*reason, *retry_after, message.as_str()),
        Outcome::Sent { answer } => panic!("sent: {answer}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_gets_the_v1_message_with_a_verified_token_refreshed_when_it_expires() {
    runtime::install_crypto_provider();
    let mock = MockFcmServer::start_local().unwrap();
    // yup-oauth2 refreshes a token a minute before it expires: one living 61 s is stale after 1 s.
    mock.mock.set_token_lifetime(61);
    let client = fcm(&mock, TEST_PRIVATE_KEY).await;
    assert_eq!(client.send_url(), format!("{}/v1/projects/herald-test/messages:send", mock.base_url()));

    let sent = client.send(&send("s-1", "fcm-token-a", 9)).await;
    assert!(matches!(&sent, Outcome::Sent { answer } if answer.contains("projects/herald-test/messages/")), "{sent:?}");
    let received = mock.mock.received();
    let issued = mock.mock.issued();
    assert_eq!((received.len(), issued.len(), mock.mock.refused_grants()), (1, 1, 0));
    assert_eq!(received[0].access_token, issued[0].access_token);
    assert_eq!(received[0].content_type, "application/json");
    assert_eq!(
        received[0].body,
        json!({"message": {
            "token": "fcm-token-a",
            "notification": {"title": "订单已完成", "body": "订单 #42 已送达"},
            "data": {
                "messageId": "1706335800123456789-abc12345",
                "messageType": "order_completed",
                "category": "order_completed",
            },
            "android": {"priority": "HIGH"},
        }})
    );

    // The token is stale a second later: a new grant, and the send carries the new token.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(matches!(client.send(&send("s-2", "fcm-token-a", 9)).await, Outcome::Sent { .. }));
    let (received, issued) = (mock.mock.received(), mock.mock.issued());
    assert_eq!(issued.len(), 2, "{issued:?}");
    assert_ne!(issued[0].access_token, issued[1].access_token);
    assert_eq!(received[1].access_token, issued[1].access_token);
    assert_eq!(mock.mock.refused_sends(), 0);

    // A long-lived token is cached: many sends, one grant.
    mock.mock.set_token_lifetime(3600);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for i in 0..3 {
        assert!(matches!(client.send(&send(&format!("s-c{i}"), "fcm-token-a", 9)).await, Outcome::Sent { .. }));
    }
    assert_eq!(mock.mock.issued().len(), 3);

    // Each answer, classified.
    mock.mock.answer_token("fcm-token-dead", FcmAnswer::Unregistered);
    let outcome = client.send(&send("s-3", "fcm-token-dead", 9)).await;
    let (reason, _, message) = failure(&outcome);
    assert_eq!(reason, FailureReason::Unregistered);
    assert!(message.contains("HTTP 404") && message.contains("UNREGISTERED"), "{message}");

    mock.mock.answer_next(1, FcmAnswer::Quota { retry_after_secs: 7 });
    let outcome = client.send(&send("s-4", "fcm-token-a", 9)).await;
    assert_eq!(failure(&outcome).0, FailureReason::Throttled);
    assert_eq!(failure(&outcome).1, Some(Duration::from_secs(7)));

    mock.mock.answer_next(1, FcmAnswer::Unavailable { retry_after_secs: Some(3) });
    let outcome = client.send(&send("s-5", "fcm-token-a", 9)).await;
    assert_eq!(failure(&outcome).0, FailureReason::HttpStatus);
    assert_eq!(failure(&outcome).1, Some(Duration::from_secs(3)));

    mock.mock.answer_next(1, FcmAnswer::InvalidArgument);
    let outcome = client.send(&send("s-6", "fcm-token-a", 9)).await;
    assert_eq!(failure(&outcome), (FailureReason::HttpStatus, None, failure(&outcome).2));

    // A key the token endpoint does not know: the credential, not the device.
    let refused = fcm(&mock, UNKNOWN_PRIVATE_KEY).await;
    let outcome = refused.send(&send("s-7", "fcm-token-a", 9)).await;
    let (reason, _, message) = failure(&outcome);
    assert_eq!(reason, FailureReason::Credential, "{message}");
    assert!(message.contains("invalid_grant"), "{message}");
    assert!(mock.mock.refused_grants() >= 1);
    // A base URL that is not FCM (404 without Google's error body) deactivates nothing.
    let elsewhere = Fcm::from_json(
        mock.service_account(TEST_PRIVATE_KEY).as_bytes(),
        None,
        &format!("{}/not-fcm", mock.base_url()),
        timeouts(),
    )
    .await
    .unwrap();
    let outcome = elsewhere.send(&send("s-8", "fcm-token-a", 9)).await;
    let (reason, _, message) = failure(&outcome);
    assert_eq!(reason, FailureReason::HttpStatus, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_on_a_cold_client_share_one_grant() {
    runtime::install_crypto_provider();
    let mock = MockFcmServer::start_local().unwrap();
    let client = std::sync::Arc::new(fcm(&mock, TEST_PRIVATE_KEY).await);
    let sends: Vec<_> = (0..8)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.send(&send(&format!("p-{i}"), "fcm-token-p", 9)).await })
        })
        .collect();
    for send in sends {
        assert!(matches!(send.await.unwrap(), Outcome::Sent { .. }));
    }
    assert_eq!((mock.mock.issued().len(), mock.mock.received().len()), (1, 8));
}

async fn register(store: &MobileStore, user_id: i64, push_id: &str, device_type: DeviceType) {
    let device = Registration { user_id, tenant_id: None, push_id: push_id.into(), device_type, subscription: None };
    store.register(&device).await.unwrap();
}

async fn logs_of(store: &MobileStore, send_id: &str) -> Vec<mobile::PushLog> {
    let query = LogQuery { send_id: Some(send_id.to_owned()), page: 1, page_size: 50, ..LogQuery::default() };
    store.logs(&query).await.unwrap().items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_token_deactivates_its_device_and_a_refused_credential_stops_fcm_only() {
    runtime::install_crypto_provider();
    for backend in Backend::ALL {
        let shutdown = CancellationToken::new();
        let scratch = ScratchDatabase::create(backend).await.unwrap();
        let store = MobileStore::on(database::connect(&scratch.settings).await.unwrap(), shutdown.clone());
        let unipush = MockProvider::start_local().unwrap();
        store.set_provider_url(&unipush.push_url()).await.unwrap();
        let mock = MockFcmServer::start_local().unwrap();
        register(&store, 9, "fcm-dead", DeviceType::Android).await;
        register(&store, 9, "fcm-alive", DeviceType::Android).await;
        register(&store, 9, "ios-cid-1", DeviceType::Ios).await;
        mock.mock.answer_token("fcm-dead", FcmAnswer::Unregistered);
        let providers =
            Providers::unipush(UniPush::new(timeouts()).unwrap()).with_fcm(fcm(&mock, TEST_PRIVATE_KEY).await);
        let sender = Sender::new(store.clone(), providers, SendMetrics::new());

        let dead = sender.attempt(&send("d-1", "fcm-dead", 9)).await.unwrap();
        assert!(matches!(&dead, Attempted::Dead { reason } if reason.contains("UNREGISTERED")), "{backend:?} {dead:?}");
        let device = store.device("fcm-dead").await.unwrap().unwrap();
        assert_eq!((device.status, device.err_count), (DeviceStatus::Inactive, 0), "{backend:?}");
        let rules = store.rule_logs("fcm-dead").await.unwrap();
        assert_eq!(rules.len(), 1, "{backend:?} {rules:?}");
        assert_eq!((rules[0].rule.as_str(), rules[0].user_id), (mobile::RULE_UNREGISTERED, 9));
        assert!(rules[0].reason.contains("UNREGISTERED") && rules[0].reason.contains("dead"), "{rules:?}");
        assert_eq!(logs_of(&store, "d-1").await[0].attempt.status, PushLogStatus::Dead);
        // Exactly that device: the user's other phone is active and gets its sends through FCM,
        // the iPhone through the original's provider.
        assert_eq!(store.device("fcm-alive").await.unwrap().unwrap().status, DeviceStatus::Active);
        assert_eq!(store.rule_logs("fcm-alive").await.unwrap().len(), 0);
        assert_eq!(sender.attempt(&send("a-1", "fcm-alive", 9)).await.unwrap(), Attempted::Sent);
        assert_eq!(sender.attempt(&send("i-1", "ios-cid-1", 9)).await.unwrap(), Attempted::Sent);
        assert_eq!(mock.mock.received().iter().filter(|r| r.token == "fcm-alive").count(), 1);
        assert_eq!(unipush.mock.received().len(), 1);
        assert_eq!(unipush.mock.received()[0].push_id, "ios-cid-1");
        // Sent again later, the dead device gets nothing (it is inactive).
        let again = sender.attempt(&send("d-2", "fcm-dead", 9)).await.unwrap();
        assert!(matches!(&again, Attempted::Dead { reason } if reason.contains("token dead")), "{again:?}");
        assert_eq!(mock.mock.received().iter().filter(|r| r.token == "fcm-dead").count(), 1);

        // A refused credential: FCM stops (no grant asked for during the pause), the iPhone's
        // sends go on, and no device's err_count grows.
        let metrics = SendMetrics::new();
        let providers =
            Providers::unipush(UniPush::new(timeouts()).unwrap()).with_fcm(fcm(&mock, UNKNOWN_PRIVATE_KEY).await);
        let sender =
            Sender::new(store.clone(), providers, metrics.clone()).with_credential_pause(Duration::from_millis(1_500));
        let grants = mock.mock.refused_grants();
        let refused = sender.attempt(&send("c-1", "fcm-alive", 9)).await.unwrap();
        assert!(matches!(&refused, Attempted::Retry { reason, .. } if reason.contains("refused")), "{refused:?}");
        let asked = mock.mock.refused_grants();
        assert!(asked > grants, "{backend:?}");
        let text = metrics.render();
        assert!(text.contains(r#"herald_mobile_push_credential_failures_total{provider="fcm"} 1"#), "{text}");
        assert!(text.contains(r#"herald_mobile_push_provider_stopped{provider="fcm"} 1"#), "{text}");
        assert!(text.contains(r#"herald_mobile_push_provider_stopped{provider="unipush"} 0"#), "{text}");
        let stopped = sender.attempt(&send("c-2", "fcm-alive", 9)).await.unwrap();
        assert!(
            matches!(&stopped, Attempted::Retry { reason, .. } if reason.contains("FCM refused Herald's credential")),
            "{stopped:?}"
        );
        assert_eq!(mock.mock.refused_grants(), asked, "no call while stopped");
        assert_eq!(sender.attempt(&send("i-2", "ios-cid-1", 9)).await.unwrap(), Attempted::Sent);
        assert_eq!(store.device("fcm-alive").await.unwrap().unwrap().err_count, 0, "{backend:?}");
        let text = metrics.render();
        assert!(text.contains(r#"outcome="failed",reason="provider_stopped"} 1"#), "{text}");
        // After the pause one send tries again.
        tokio::time::sleep(Duration::from_millis(1_600)).await;
        let retried = sender.attempt(&send("c-3", "fcm-alive", 9)).await.unwrap();
        assert!(matches!(&retried, Attempted::Retry { reason, .. } if reason.contains("invalid_grant")), "{retried:?}");
        assert!(mock.mock.refused_grants() > asked);

        shutdown.cancel();
        drop(store);
        scratch.drop_now().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rabbitmq_a_429_delays_the_retry_by_its_retry_after() {
    runtime::install_crypto_provider();
    let url = std::env::var("HERALD_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let settings = BusSettings {
        url: BusUrl::Amqp(url),
        prefix: format!("test-fcm-{}", uuid::Uuid::new_v4().simple()),
        ..BusSettings::default()
    };
    let shutdown = CancellationToken::new();
    let bus = Bus::start(&settings, shutdown.clone());
    let Bus::Amqp(amqp) = &bus else { unreachable!() };
    assert!(amqp.wait_connected(Duration::from_secs(10)).await, "RabbitMQ is not reachable");
    let scratch = ScratchDatabase::create(Backend::Postgres).await.unwrap();
    let db = database::connect(&scratch.settings).await.unwrap();
    let store = MobileStore::on(db.clone(), shutdown.clone());
    let mock = MockFcmServer::start_local().unwrap();
    register(&store, 9, "fcm-throttled", DeviceType::Android).await;
    mock.mock.answer_next(1, FcmAnswer::Quota { retry_after_secs: 2 });
    let providers = Providers::unipush(UniPush::new(timeouts()).unwrap()).with_fcm(fcm(&mock, TEST_PRIVATE_KEY).await);
    let sender = Sender::new(store.clone(), providers, SendMetrics::new());
    // The schedule says 100 ms; the provider says 2 s.
    let sends = worker::Sends {
        bus: bus.clone(),
        sender,
        retry_delays: [Duration::from_millis(100)].into(),
        directory: state::UserDirectory::on(db, shutdown.clone()),
        receipts: state::ReceiptLedger::start(&state::RedisSettings::in_process()).unwrap(),
        time: model::TimeFormat::default(),
    };
    let mut ready = worker::start(sends, 4, shutdown.clone());
    ready.wait_for(|ready| *ready).await.unwrap();

    worker::publish(&bus, &send("q-1", "fcm-throttled", 9)).await.unwrap();
    eventually("the retry to be sent", Duration::from_secs(20), || async {
        let logs = logs_of(&store, "q-1").await;
        holds(logs.iter().any(|l| l.attempt.status == PushLogStatus::Sent), format_args!("{logs:?}"))
    })
    .await;
    let received = mock.mock.received();
    assert_eq!(received.len(), 2, "{received:?}");
    let waited = received[1].at_ms - received[0].at_ms;
    assert!(waited >= 2_000, "the retry came {waited} ms after the 429, not 2 s");
    let logs = logs_of(&store, "q-1").await;
    let failed = logs.iter().find(|l| l.attempt.status == PushLogStatus::Failed).unwrap();
    assert!(failed.attempt.err_message.contains("HTTP 429"), "{failed:?}");
    // Throttling is not the device's fault either way: a success restarted the count.
    assert_eq!(store.device("fcm-throttled").await.unwrap().unwrap().err_count, 0);

    shutdown.cancel();
    // The consumers go with the shutdown; then the queues and exchanges.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delay_queues =
        [format!("delay.mobile.{}.100", worker::SEND_KEY), format!("delay.mobile.{}.2000", worker::SEND_KEY)];
    let mut queues: Vec<&str> = delay_queues.iter().map(String::as_str).collect();
    queues.push(worker::QUEUE);
    bus::amqp::AmqpBus::remove_topology(&settings, &queues).await.unwrap();
    drop(store);
    scratch.drop_now().await.unwrap();
}
