//! record-writer throughput on the SQL store against PostgreSQL: a backlog of notices and
//! delivery events is queued on RabbitMQ while no writer runs, then a writer drains it; prints
//! events and notices per second. Asserts nothing but completeness.
//!
//! `scripts/bench-records.sh` runs it (`cargo bench -p record-writer --bench throughput`).
//! Knobs: `BENCH_NOTICES` (default 2000; three events each), `BENCH_BATCH` (records.batch_size,
//! default 200). Servers: `HERALD_TEST_AMQP_URL`, `HERALD_TEST_POSTGRES_URL` (local defaults).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use bus::{Bus, Exchange};
use bus::{BusSettings, BusUrl};
use database::scratch::{Backend, ScratchDatabase};
use model::{
    DeliveryEvent, DeliveryEventType, MessageId, NotificationMessage, NotificationType, Priority, Sender, Target,
    TimeFormat,
};
use records::{LogQuery, RecordQuery, RecordStore, RecordsSettings, SqlRecords};
use runtime::testing::{eventually, holds};
use state::UserDirectory;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn event(kind: DeliveryEventType, message: &NotificationMessage, user: i64) -> DeliveryEvent {
    DeliveryEvent {
        event_id: DeliveryEvent::new_event_id(),
        event_type: kind,
        message_id: message.message_id.clone(),
        user_id: user,
        username: format!("user{user}"),
        channel: model::ReportChannel::Websocket,
        connection_id: format!("r1-{user}"),
        timestamp: TimeFormat::default().now(),
        user_role: Some(model::Role::User),
        push_channel: Some(model::PushChannel::Websocket),
        client_ip: "10.0.0.7".into(),
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36".into(),
    }
}

/// Waits until a writer whose shutdown fired stopped consuming: its two subscriptions end on
/// that one token, and it reports not ready once they have.
async fn until_stopped(writer: &http_server::Component) {
    eventually("the record-writer to stop consuming", Duration::from_secs(30), || async {
        holds(!writer.is_ready(), "still ready")
    })
    .await;
}

#[tokio::main]
async fn main() {
    runtime::install_crypto_provider();
    let notices_n = env_or("BENCH_NOTICES", 2000);
    let batch = env_or("BENCH_BATCH", 200);
    let amqp = std::env::var("HERALD_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let bus_settings = BusSettings {
        url: BusUrl::Amqp(amqp),
        prefix: format!("bench-rw-{}", uuid::Uuid::new_v4().simple()),
        prefetch: batch.max(1) as u16,
        ..Default::default()
    };
    let database = ScratchDatabase::create(Backend::Postgres).await.expect("PostgreSQL is needed");
    let time = TimeFormat::default();
    let batching =
        record_writer::Batching { size: batch, linger: Duration::from_millis(RecordsSettings::default().linger_ms) };
    let open = || async {
        let records = RecordStore::Sql(SqlRecords::open(&database.settings, time).await.unwrap());
        let db = database::connect(&database.settings).await.unwrap();
        let directory = UserDirectory::on(db, CancellationToken::new());
        (records, directory)
    };

    // Declare the durable queues, then stop, so the backlog waits on the broker.
    let shutdown = CancellationToken::new();
    let bus = Bus::start(&bus_settings, shutdown.clone());
    let (records, directory) = open().await;
    let declare = CancellationToken::new();
    let writer = record_writer::RecordWriter::start(
        batching,
        &bus,
        records,
        directory,
        &http_server::Registry::new(),
        declare.clone(),
    );
    eventually("the record-writer to declare its queues", Duration::from_secs(30), || async {
        holds(writer.is_ready(), "not ready")
    })
    .await;
    declare.cancel();
    until_stopped(&writer).await;

    let notices: Vec<NotificationMessage> = (0..notices_n)
        .map(|n| NotificationMessage {
            notification_type: NotificationType::SYSTEM_NOTICE,
            content: format!("bench notice {n}"),
            data: None,
            time: time.now(),
            priority: Priority::Normal,
            target: Target::Custom,
            target_ids: vec![1, 2, 3],
            exclude_ids: Vec::new(),
            need_confirm: false,
            message_id: MessageId::generate(),
            channels: Default::default(),
            fallback: None,
            sender: Sender { id: 1, name: "bench".into() },
        })
        .collect();
    let started = Instant::now();
    for message in &notices {
        let payload = serde_json::to_vec(message).unwrap();
        bus.publish(Exchange::Notifications, "custom.normal", payload.into()).await.unwrap();
        for e in [
            event(DeliveryEventType::Delivered, message, 1),
            event(DeliveryEventType::Delivered, message, 2),
            event(DeliveryEventType::Read, message, 1),
        ] {
            bus.publish(Exchange::Events, &e.routing_key(), serde_json::to_vec(&e).unwrap().into()).await.unwrap();
        }
    }
    let events_n = notices_n * 3;
    println!("queued {notices_n} notices and {events_n} events in {:.2?}", started.elapsed());

    let (records, directory) = open().await;
    let check = records.clone();
    let started = Instant::now();
    let writer = record_writer::RecordWriter::start(
        batching,
        &bus,
        records,
        directory,
        &http_server::Registry::new(),
        shutdown.clone(),
    );
    let all_logs = LogQuery { page: 1, page_size: 1, ..LogQuery::default() };
    let one = RecordQuery { page: 1, page_size: 1, ..RecordQuery::default() };
    eventually("the backlog to be written", Duration::from_secs(600), || async {
        let logs = check.logs(&all_logs).await.unwrap().total as usize;
        let stats = check.list(&one).await.unwrap().stats;
        let written = logs == events_n
            && stats.total_records as usize == notices_n
            && stats.delivered_count == 2 * notices_n as i64;
        holds(written, format_args!("{logs} logs, {stats:?}"))
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "record-writer on PostgreSQL, batch {batch}: drained {notices_n} notices and {events_n} events in {elapsed:.2} s"
    );
    println!("  events/s:  {:.0}", events_n as f64 / elapsed);
    println!("  notices/s: {:.0}", notices_n as f64 / elapsed);
    println!("  messages/s (both queues): {:.0}", (events_n + notices_n) as f64 / elapsed);

    shutdown.cancel();
    until_stopped(&writer).await;
    bus::amqp::AmqpBus::remove_topology(&bus_settings, &["records", "records-events"]).await.unwrap();
    drop(check);
    database.drop_now().await.unwrap();
}
