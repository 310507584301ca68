//! The worker's consumer over the real RabbitMQ (and the in-process bus), PostgreSQL and the
//! mock provider: a send that succeeds is logged sent once; one the provider keeps refusing is
//! retried after each delay (TTL queues dead-lettering back to the exchange), then dead,
//! in the dead-letter queue with the reason; a delivery that is not a send, or one no column
//! could hold, is dead-lettered at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bus::{Bus, BusSettings, BusUrl, Exchange, QueueKind, SubscriptionSpec};
use bytes::Bytes;
use database::scratch::{Backend, ScratchDatabase};
use mobile::{LogQuery, MobileStore, Registration};
use mobile_push_worker::metrics::SendMetrics;
use mobile_push_worker::provider::{ProviderTimeouts, Providers, UniPush};
use mobile_push_worker::send::{PushSend, Sender};
use mobile_push_worker::worker;
use mock_push::{Answer, MockProvider};
use model::{DeviceType, PushLogStatus};
use runtime::testing::{eventually, holds};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const GOOD: &str = "00000000000000000000000000000a01";
const BAD: &str = "00000000000000000000000000000b02";
const DELAYS_MS: [u64; 3] = [150, 300, 450];

fn send(send_id: &str, push_id: &str) -> PushSend {
    PushSend {
        send_id: send_id.to_owned(),
        attempt: 1,
        message_id: "1706335800123456789-abc12345".to_owned(),
        user_id: 7,
        push_id: push_id.to_owned(),
        message_type: "alarm".to_owned(),
        title: "告警:温度过高".to_owned(),
        content: "DEV-001".to_owned(),
        alarm_id: Some("cfg-1".to_owned()),
        category: None,
        priority: model::Priority::Normal,
    }
}

async fn statuses(store: &MobileStore, send_id: &str) -> Vec<(i32, PushLogStatus, i64)> {
    let query = LogQuery { send_id: Some(send_id.to_owned()), page: 1, page_size: 50, ..LogQuery::default() };
    let mut rows: Vec<_> = store
        .logs(&query)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|l| (l.attempt.attempt, l.attempt.status, l.attempt.create_time))
        .collect();
    rows.sort_by_key(|row| row.0);
    rows
}

async fn retries_then_dead_letters(bus: &Bus, shutdown: &CancellationToken) {
    let scratch = ScratchDatabase::create(Backend::Postgres).await.unwrap();
    let db = database::connect(&scratch.settings).await.unwrap();
    let store = MobileStore::on(db.clone(), shutdown.clone());
    let provider = MockProvider::start_local().unwrap();
    store.set_provider_url(&provider.push_url()).await.unwrap();
    for push_id in [GOOD, BAD] {
        let device = Registration {
            user_id: 7,
            tenant_id: None,
            push_id: push_id.into(),
            device_type: DeviceType::Android,
            subscription: None,
        };
        store.register(&device).await.unwrap();
    }
    provider.mock.answer_push_id(BAD, Answer::Http500);
    let metrics = SendMetrics::new();
    let sender = Sender::new(
        store.clone(),
        Providers::unipush(UniPush::new(ProviderTimeouts::default()).unwrap()),
        metrics.clone(),
    );
    let sends = worker::Sends {
        bus: bus.clone(),
        sender,
        retry_delays: DELAYS_MS.iter().map(|&ms| Duration::from_millis(ms)).collect(),
        directory: state::UserDirectory::on(db, shutdown.clone()),
        receipts: state::ReceiptLedger::start(&state::RedisSettings::in_process()).unwrap(),
        time: model::TimeFormat::default(),
    };
    let mut ready = worker::start(sends, 4, shutdown.clone());
    ready.wait_for(|ready| *ready).await.unwrap();
    let mut dead_letters = bus.subscribe(SubscriptionSpec {
        queue: bus::DEAD_LETTERS.into(),
        kind: QueueKind::Durable,
        exchange: Exchange::DeadLetters,
        bindings: Vec::new(),
    });

    let started = Instant::now();
    worker::publish(bus, &send("s-good", GOOD)).await.unwrap();
    worker::publish(bus, &send("s-bad", BAD)).await.unwrap();
    bus.publish(Exchange::Mobile, worker::SEND_KEY, Bytes::from_static(b"{\"not\":\"a send\"}")).await.unwrap();
    // One no column can hold: dead-lettered at once, never retried.
    worker::publish(bus, &send(&"x".repeat(200), GOOD)).await.unwrap();

    eventually("the refused send to be dead", Duration::from_secs(20), || async {
        let rows = statuses(&store, "s-bad").await;
        holds(rows.len() == 4, format_args!("{rows:?}"))
    })
    .await;
    let bad = statuses(&store, "s-bad").await;
    let kinds: Vec<PushLogStatus> = bad.iter().map(|row| row.1).collect();
    assert_eq!(kinds, [PushLogStatus::Failed, PushLogStatus::Failed, PushLogStatus::Failed, PushLogStatus::Dead]);
    // Each retry waited its delay at least (the log's times are milliseconds).
    for (window, delay) in bad.windows(2).zip(DELAYS_MS) {
        let waited = window[1].2 - window[0].2;
        assert!(waited >= i64::try_from(delay).unwrap() - 5, "retry after {waited} ms, not {delay}: {bad:?}");
    }
    assert!(started.elapsed() >= Duration::from_millis(DELAYS_MS.iter().sum()));
    assert_eq!(statuses(&store, "s-good").await.iter().map(|r| r.1).collect::<Vec<_>>(), [PushLogStatus::Sent]);
    assert_eq!(provider.mock.received().iter().filter(|r| r.push_id == BAD).count(), 4);
    assert_eq!(provider.mock.received().iter().filter(|r| r.push_id == GOOD).count(), 1);
    assert_eq!(store.device(BAD).await.unwrap().unwrap().err_count, 4);

    // The dead send and the delivery that was no send are in the dead-letter queue, with why.
    let mut reasons = Vec::new();
    if let Bus::Amqp(_) = bus {
        for _ in 0..3 {
            let letter = tokio::time::timeout(Duration::from_secs(10), dead_letters.next()).await.unwrap().unwrap();
            reasons.push(letter.dead_letter_reason.clone().unwrap_or_default());
            letter.ack().await;
        }
        reasons.sort();
        assert!(reasons[0].starts_with("attempt 4:") && reasons[0].contains("HTTP 500"), "{reasons:?}");
        assert!(reasons[1].starts_with("not a push send"), "{reasons:?}");
        assert!(reasons[2].starts_with("not a valid push send: send_id"), "{reasons:?}");
    }
    eventually("the three dead letters counted", Duration::from_secs(5), || async {
        holds(bus.dead_lettered() == 3, format_args!("{}", bus.dead_lettered()))
    })
    .await;
    let text = metrics.render();
    assert!(text.contains("herald_mobile_push_retries_total 3"), "{text}");
    assert!(text.contains("herald_mobile_push_dead_letters_total 1"), "{text}");
    drop(dead_letters);
    provider.stop().await;
    scratch.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rabbitmq_failed_sends_are_retried_after_their_delays_then_dead_lettered() {
    runtime::install_crypto_provider();
    let url = std::env::var("HERALD_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let settings = BusSettings {
        url: BusUrl::Amqp(url),
        prefix: format!("test-mobile-{}", uuid::Uuid::new_v4().simple()),
        ..BusSettings::default()
    };
    let shutdown = CancellationToken::new();
    let bus = Bus::start(&settings, shutdown.clone());
    let Bus::Amqp(amqp) = &bus else { unreachable!() };
    assert!(amqp.wait_connected(Duration::from_secs(10)).await, "RabbitMQ is not reachable");
    retries_then_dead_letters(&bus, &shutdown).await;
    shutdown.cancel();
    // The consumers go with the shutdown; then the queues and exchanges.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delay_queues: Vec<String> =
        DELAYS_MS.iter().map(|ms| format!("delay.mobile.{}.{ms}", worker::SEND_KEY)).collect();
    let mut queues: Vec<&str> = delay_queues.iter().map(String::as_str).collect();
    queues.push(worker::QUEUE);
    bus::amqp::AmqpBus::remove_topology(&settings, &queues).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_failed_sends_are_retried_after_their_delays_then_dead_lettered() {
    let shutdown = CancellationToken::new();
    let bus = Bus::in_process(&BusSettings::in_process(), None, shutdown.clone());
    retries_then_dead_letters(&bus, &shutdown).await;
    shutdown.cancel();
}
