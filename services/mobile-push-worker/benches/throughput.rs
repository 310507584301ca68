//! mobile-push-worker throughput against the mock provider: a backlog of sends is queued on
//! RabbitMQ, then a worker drains it at the given concurrency, every attempt logged in
//! PostgreSQL; prints sends per second for each concurrency. Asserts nothing but completeness.
//!
//! `scripts/bench-push.sh` runs it (`cargo bench -p mobile-push-worker --bench throughput`).
//! Knobs: `BENCH_SENDS` (default 2000), `BENCH_CONCURRENCY` (a list, default `1,16,64`),
//! `BENCH_PROVIDER_MS` (the mock's answer delay, default 0). Servers: `HERALD_TEST_AMQP_URL`,
//! `HERALD_TEST_POSTGRES_URL` (local defaults).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use bus::{Bus, BusSettings, BusUrl};
use database::scratch::{Backend, ScratchDatabase};
use mobile::{LogQuery, MobileStore, Registration};
use mobile_push_worker::metrics::SendMetrics;
use mobile_push_worker::provider::{ProviderTimeouts, Providers, UniPush};
use mobile_push_worker::send::{PushSend, Sender};
use mobile_push_worker::worker;
use mock_push::{Answer, MockProvider};
use model::DeviceType;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn logged(store: &MobileStore) -> u64 {
    store.logs(&LogQuery { page: 1, page_size: 1, ..LogQuery::default() }).await.unwrap().total
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    runtime::install_crypto_provider();
    let sends: usize = env_or("BENCH_SENDS", "2000").parse().unwrap();
    let provider_ms: u64 = env_or("BENCH_PROVIDER_MS", "0").parse().unwrap();
    let concurrencies: Vec<usize> =
        env_or("BENCH_CONCURRENCY", "1,16,64").split(',').map(|c| c.trim().parse().unwrap()).collect();
    let amqp = std::env::var("HERALD_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let provider = MockProvider::start_local().unwrap();
    if provider_ms > 0 {
        provider.mock.answer_all(Answer::Slow { delay_ms: provider_ms });
    }
    println!("mobile-push-worker throughput: {sends} sends a run, mock provider answering after {provider_ms} ms,");
    println!("RabbitMQ + PostgreSQL on this machine; each run: queue the backlog, then one worker drains it");
    for concurrency in concurrencies {
        let scratch = ScratchDatabase::create(Backend::Postgres).await.unwrap();
        let shutdown = CancellationToken::new();
        let db = database::connect(&scratch.settings).await.unwrap();
        let store = MobileStore::on(db.clone(), shutdown.clone());
        store.set_provider_url(&provider.push_url()).await.unwrap();
        let push_id = "0123456789abcdef0123456789abcdef";
        store
            .register(&Registration {
                user_id: 7,
                tenant_id: None,
                push_id: push_id.into(),
                device_type: DeviceType::Android,
                subscription: None,
            })
            .await
            .unwrap();
        let settings = BusSettings {
            url: BusUrl::Amqp(amqp.clone()),
            prefix: format!("bench-push-{}", uuid::Uuid::new_v4().simple()),
            prefetch: u16::try_from(concurrency.max(16)).unwrap_or(u16::MAX),
            ..BusSettings::default()
        };
        let bus = Bus::start(&settings, shutdown.clone());
        let Bus::Amqp(amqp_bus) = &bus else { unreachable!() };
        assert!(amqp_bus.wait_connected(Duration::from_secs(10)).await, "RabbitMQ is not reachable");
        // Declare the queue, then stop consuming: the backlog waits in it.
        let worker_shutdown = CancellationToken::new();
        let sender = Sender::new(
            store.clone(),
            Providers::unipush(UniPush::new(ProviderTimeouts::default()).unwrap()),
            SendMetrics::new(),
        );
        let sends_of = |sender: Sender| worker::Sends {
            bus: bus.clone(),
            sender,
            retry_delays: [Duration::from_secs(1)].into(),
            directory: state::UserDirectory::on(db.clone(), shutdown.clone()),
            receipts: state::ReceiptLedger::start(&state::RedisSettings::in_process()).unwrap(),
            time: model::TimeFormat::default(),
        };
        let mut ready = worker::start(sends_of(sender.clone()), concurrency, worker_shutdown.clone());
        ready.wait_for(|ready| *ready).await.unwrap();
        worker_shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(500)).await;
        for i in 0..sends {
            let send = PushSend {
                send_id: format!("bench-{i}"),
                attempt: 1,
                message_id: "1706335800123456789-abc12345".into(),
                user_id: 7,
                push_id: push_id.into(),
                message_type: "alarm".into(),
                title: "告警:bench".into(),
                content: "DEV-001".into(),
                alarm_id: Some("cfg-1".into()),
                category: None,
                priority: model::Priority::Normal,
            };
            worker::publish(&bus, &send).await.unwrap();
        }
        let started = Instant::now();
        let mut ready = worker::start(sends_of(sender), concurrency, shutdown.clone());
        ready.wait_for(|ready| *ready).await.unwrap();
        loop {
            if logged(&store).await as usize >= sends {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(600), "the backlog did not drain");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed();
        println!(
            "concurrency {concurrency:>4}: {sends} sends in {:.2} s = {:.0} sends/s",
            elapsed.as_secs_f64(),
            sends as f64 / elapsed.as_secs_f64()
        );
        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(500)).await;
        bus::amqp::AmqpBus::remove_topology(&settings, &[worker::QUEUE, "delay.mobile.send.1000"]).await.unwrap();
        scratch.drop_now().await.unwrap();
    }
    provider.stop().await;
}
