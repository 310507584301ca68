//! The record-writer role (`herald run record-writer`) over the real RabbitMQ and PostgreSQL:
//! killed with SIGKILL in the middle of a stream and restarted, then handed every message and
//! event a second time (as a broker redelivers what was not acknowledged), it ends with exactly
//! the counts of one pass.

use bus::{Bus, BusSettings, BusUrl, Exchange};
use database::DatabaseSettings;
use database::scratch::{Backend, ScratchDatabase};
use model::{
    DeliveryEvent, DeliveryEventType, MessageId, NotificationMessage, NotificationType, Priority, Sender, Target,
    TimeFormat,
};
use records::{LogQuery, RecordQuery, RecordStore, SqlRecords};
use runtime::testing::{eventually, holds};
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

const NOTICES: usize = 150;

async fn writer(bus: &BusSettings, database: &DatabaseSettings) -> Child {
    let addr = crate::helpers::free_addr();
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["run", "record-writer"])
        .env("HERALD_HTTP_ADDR", addr.to_string())
        .env("HERALD_LOG_LEVEL", "warn")
        .env("HERALD_BUS_URL", String::from(bus.url.clone()))
        .env("HERALD_BUS_PREFIX", &bus.prefix)
        .env("HERALD_DATABASE_URL", &database.url)
        .env("HERALD_DATABASE_SCHEMA", &database.schema)
        .env("HERALD_RECORDS_BATCH_SIZE", "25")
        .env_remove("HERALD_CONFIG")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    eventually("the record-writer to become ready", Duration::from_secs(30), || async {
        match client.get(format!("http://{addr}/readyz")).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("{} {}", response.status(), response.text().await.unwrap_or_default())),
            Err(err) => Err(err.to_string()),
        }
    })
    .await;
    child
}

fn notice(n: usize) -> NotificationMessage {
    NotificationMessage {
        notification_type: NotificationType::SYSTEM_NOTICE,
        content: format!("notice {n}"),
        data: None,
        time: TimeFormat::default().now(),
        priority: Priority::Normal,
        target: Target::Custom,
        target_ids: vec![1, 2, 3],
        exclude_ids: Vec::new(),
        need_confirm: false,
        message_id: MessageId::generate(),
        channels: Default::default(),
        fallback: None,
        sender: Sender { id: 9, name: "admin".into() },
    }
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
        client_ip: "127.0.0.1".into(),
        user_agent: String::new(),
    }
}

/// Publishes every notice and event once, in a stream.
async fn publish_all(bus: &Bus, notices: &[NotificationMessage], events: &[DeliveryEvent]) {
    for (n, message) in notices.iter().enumerate() {
        let key = format!("{}.{}", message.target.as_str(), message.priority.as_str());
        bus.publish(Exchange::Notifications, &key, serde_json::to_vec(message).unwrap().into()).await.unwrap();
        for event in &events[n * 3..n * 3 + 3] {
            bus.publish(Exchange::Events, &event.routing_key(), serde_json::to_vec(event).unwrap().into())
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_stream_and_fed_everything_twice_counts_once() {
    runtime::install_crypto_provider();
    let amqp = std::env::var("HERALD_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let bus_settings = BusSettings {
        url: BusUrl::Amqp(amqp),
        prefix: format!("test-rw-{}", uuid::Uuid::new_v4().simple()),
        ..Default::default()
    };
    let database = ScratchDatabase::create(Backend::Postgres).await.unwrap();
    let shutdown = CancellationToken::new();
    let bus = Bus::start(&bus_settings, shutdown.clone());

    // The first writer declares the durable queues, so nothing published is lost while none runs.
    let mut first = writer(&bus_settings, &database.settings).await;
    let notices: Vec<NotificationMessage> = (0..NOTICES).map(notice).collect();
    // Per notice: users 1 and 2 receive it; user 1 reads it.
    let events: Vec<DeliveryEvent> = notices
        .iter()
        .flat_map(|m| {
            [
                event(DeliveryEventType::Delivered, m, 1),
                event(DeliveryEventType::Delivered, m, 2),
                event(DeliveryEventType::Read, m, 1),
            ]
        })
        .collect();
    let half = NOTICES / 2;
    publish_all(&bus, &notices[..half], &events[..half * 3]).await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    publish_all(&bus, &notices[half..], &events[half * 3..]).await;
    let _second = writer(&bus_settings, &database.settings).await;
    // Everything again: what a broker redelivers after a crash between write and ack.
    publish_all(&bus, &notices, &events).await;

    let records = RecordStore::Sql(SqlRecords::open(&database.settings, TimeFormat::default()).await.unwrap());
    let all_logs = LogQuery { page: 1, page_size: 1, ..LogQuery::default() };
    eventually("everything to be written", Duration::from_secs(60), || async {
        let logs = records.logs(&all_logs).await.unwrap().total;
        let page = records.list(&RecordQuery { page: 1, page_size: 1, ..RecordQuery::default() }).await.unwrap();
        let written = logs == events.len() as u64 && page.stats.delivered_count == 2 * NOTICES as i64;
        holds(written, format_args!("{logs} logs, {:?}", page.stats))
    })
    .await;
    // Let the second pass finish, then check nothing counted twice. A bounded wait, on purpose:
    // a correct second pass changes nothing the store shows, and the broker tells how many
    // messages wait in a queue but not how many a consumer holds unacknowledged, so there is no
    // condition to wait for; a double count, if any, shows within these 2 s.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let page = records.list(&RecordQuery { page: 1, page_size: 100, ..RecordQuery::default() }).await.unwrap();
    assert_eq!(page.stats.total_records, NOTICES as u64);
    assert_eq!(page.stats.total_recipients, 3 * NOTICES as i64);
    assert_eq!(page.stats.delivered_count, 2 * NOTICES as i64);
    assert_eq!(records.logs(&all_logs).await.unwrap().total, events.len() as u64);
    let detail = records.detail(notices[half].message_id.as_str()).await.unwrap().unwrap();
    assert_eq!((detail.record.total_count, detail.record.delivered_count), (3, 2));
    assert_eq!(detail.record.status.as_str(), "partial");
    let one = detail.receipts.iter().find(|r| r.user_id == 1).unwrap();
    assert!(one.is_read && one.retry_count == 0, "{one:?}");

    drop(_second);
    shutdown.cancel();
    bus::amqp::AmqpBus::remove_topology(&bus_settings, &["records", "records-events"]).await.unwrap();
    drop(records);
    database.drop_now().await.unwrap();
}
