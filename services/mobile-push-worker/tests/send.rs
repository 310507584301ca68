//! One send's attempts through the mock provider, on SQLite and PostgreSQL: each logged once
//! with its outcome, the device's error count and last push time following, the last attempt
//! dead, a redelivered attempt neither made nor logged again, and an attempt repeated after a
//! crash between the provider's answer and the log not pushed twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use database::scratch::{Backend, ScratchDatabase};
use mobile::{LogQuery, MobileStore, Registration};
use mobile_push_worker::metrics::SendMetrics;
use mobile_push_worker::provider::{ProviderTimeouts, Providers, PushPayload, UniPush};
use mobile_push_worker::send::{Attempted, MAX_ATTEMPTS, PushSend, Sender};
use mock_push::{Answer, MockProvider};
use model::{DeviceType, PushLogStatus};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const PHONE: &str = "5d2c1b0a9f8e7d6c5b4a39281716a5b4";

fn send(send_id: &str, attempt: i32) -> PushSend {
    PushSend {
        send_id: send_id.to_owned(),
        attempt,
        message_id: "1706335800123456789-abc12345".to_owned(),
        user_id: 7,
        push_id: PHONE.to_owned(),
        message_type: "alarm".to_owned(),
        title: "告警:温度过高".to_owned(),
        content: "DEV-001".to_owned(),
        alarm_id: Some("cfg-42".to_owned()),
        category: None,
        priority: model::Priority::Normal,
    }
}

async fn statuses(store: &MobileStore, send_id: &str) -> Vec<(i32, PushLogStatus)> {
    let query = LogQuery { send_id: Some(send_id.to_owned()), page: 1, page_size: 50, ..LogQuery::default() };
    let mut rows: Vec<_> =
        store.logs(&query).await.unwrap().items.into_iter().map(|l| (l.attempt.attempt, l.attempt.status)).collect();
    rows.sort_by_key(|(attempt, _)| *attempt);
    rows
}

async fn attempts_are_logged_once_and_counted_on_the_device(backend: Backend) {
    let scratch = ScratchDatabase::create(backend).await.unwrap();
    let shutdown = CancellationToken::new();
    let store = MobileStore::on(database::connect(&scratch.settings).await.unwrap(), shutdown.clone());
    let provider = MockProvider::start_local().unwrap();
    let client = UniPush::new(ProviderTimeouts::default()).unwrap();
    let metrics = SendMetrics::new();
    let sender = Sender::new(store.clone(), Providers::unipush(client.clone()), metrics.clone());
    let registration = Registration {
        user_id: 7,
        tenant_id: Some("acme".into()),
        push_id: PHONE.into(),
        device_type: DeviceType::Android,
        subscription: None,
    };
    store.register(&registration).await.unwrap();
    let err_count = || async { store.device(PHONE).await.unwrap().unwrap().err_count };

    // No provider configured yet: a failure to retry, pushed nowhere.
    let outcome = sender.attempt(&send("s1", 1)).await.unwrap();
    assert!(
        matches!(&outcome, Attempted::Retry { reason, .. } if reason.contains("no push provider URL")),
        "{outcome:?}"
    );
    store.set_provider_url(&provider.push_url()).await.unwrap();

    // The provider refuses: failed until the last attempt, which is dead.
    provider.mock.answer_push_id(PHONE, Answer::ErrCode { err_code: 20001 });
    for attempt in 2..MAX_ATTEMPTS {
        let outcome = sender.attempt(&send("s1", attempt)).await.unwrap();
        assert!(
            matches!(&outcome, Attempted::Retry { reason, .. } if reason.contains("20001")),
            "{backend:?} {outcome:?}"
        );
    }
    let outcome = sender.attempt(&send("s1", MAX_ATTEMPTS)).await.unwrap();
    assert!(matches!(outcome, Attempted::Dead { .. }), "{backend:?} {outcome:?}");
    let expected: Vec<(i32, PushLogStatus)> = (1..=MAX_ATTEMPTS)
        .map(|a| (a, if a == MAX_ATTEMPTS { PushLogStatus::Dead } else { PushLogStatus::Failed }))
        .collect();
    assert_eq!(statuses(&store, "s1").await, expected, "{backend:?}");
    assert_eq!(err_count().await, MAX_ATTEMPTS, "{backend:?}");
    assert_eq!(provider.mock.received().len(), 3, "{backend:?}");
    assert_eq!(
        provider.mock.received()[0].body,
        json!({"push_clientid": PHONE, "title": "告警:温度过高", "content": "DEV-001", "alarm_id": "cfg-42"})
    );

    // A redelivered attempt: what it came to, without asking the provider or logging again.
    let again = sender.attempt(&send("s1", 2)).await.unwrap();
    assert!(matches!(again, Attempted::Retry { .. }), "{again:?}");
    assert_eq!((provider.mock.received().len(), statuses(&store, "s1").await.len()), (3, 4), "{backend:?}");

    // The worker died after the provider took s2's first attempt and before logging it: the
    // attempt is made again, with the same key, and the provider does not push it twice.
    provider.mock.answer_push_id(PHONE, Answer::Success);
    let s2 = send("s2", 1);
    let payload = PushPayload {
        push_clientid: PHONE.into(),
        title: s2.title.clone(),
        content: s2.content.clone(),
        alarm_id: s2.alarm_id.clone(),
        category: None,
        options: None,
    };
    client.send_once(&provider.push_url(), &payload, Some(&s2.key())).await;
    assert_eq!(sender.attempt(&s2).await.unwrap(), Attempted::Sent);
    assert_eq!((provider.mock.received().len(), provider.mock.duplicates()), (4, 1), "{backend:?}");
    let device = store.device(PHONE).await.unwrap().unwrap();
    assert_eq!(device.err_count, 0, "a success restarts the count ({backend:?})");
    assert!(device.last_push_time.is_some(), "{backend:?}");

    // A device logged out since: dead at once, nothing pushed.
    store.logout(7, PHONE).await.unwrap().unwrap();
    let outcome = sender.attempt(&send("s3", 1)).await.unwrap();
    assert!(matches!(&outcome, Attempted::Dead { reason } if reason.contains("logged out")), "{outcome:?}");
    assert_eq!(provider.mock.received().len(), 4, "{backend:?}");
    // Moved to another user: not pushed to its new owner.
    store.register(&Registration { user_id: 8, ..registration.clone() }).await.unwrap();
    let outcome = sender.attempt(&send("s4", 1)).await.unwrap();
    assert!(matches!(&outcome, Attempted::Dead { reason } if reason.contains("moved")), "{outcome:?}");
    assert_eq!(provider.mock.received().len(), 4, "{backend:?}");

    // Every attempt made is counted once, by what it came to and why; redeliveries are not.
    let text = metrics.render();
    let value = |series: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let sends = |outcome: &str, reason: &str| {
        value(&format!("herald_mobile_push_sends_total{{outcome=\"{outcome}\",reason=\"{reason}\"}}"))
    };
    assert_eq!(sends("failed", "no_provider"), 1.0, "{text}");
    assert_eq!(sends("failed", "err_code"), 2.0, "{text}");
    assert_eq!(sends("dead", "err_code"), 1.0, "{text}");
    assert_eq!(sends("sent", "none"), 1.0, "{text}");
    assert_eq!(sends("dead", "device_inactive"), 1.0, "{text}");
    assert_eq!(sends("dead", "device_moved"), 1.0, "{text}");
    assert_eq!(sends("failed", "timeout"), 0.0, "{text}");
    assert_eq!(value("herald_mobile_push_retries_total"), 3.0, "{text}");
    assert_eq!(value("herald_mobile_push_dead_letters_total"), 3.0, "{text}");
    assert_eq!(value("herald_mobile_push_send_duration_seconds_count"), 4.0, "{text}");
    assert!(text.contains("herald_mobile_push_send_duration_seconds_bucket{le=\"0.005\"}"), "{text}");

    provider.stop().await;
    shutdown.cancel();
    drop((sender, store));
    scratch.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_logged_once_on_sqlite() {
    attempts_are_logged_once_and_counted_on_the_device(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_logged_once_on_postgres() {
    attempts_are_logged_once_and_counted_on_the_device(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_logged_once_on_mariadb() {
    attempts_are_logged_once_and_counted_on_the_device(Backend::MySql).await;
}
