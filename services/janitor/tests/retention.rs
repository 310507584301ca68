//! The janitor's retention passes against a real PostgreSQL: what is older than the retention
//! goes, the rest stays, and the scheduled job keeps doing it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use database::scratch::{Backend, ScratchDatabase};
use model::{DeliveryEvent, DeliveryEventType, MessageId, NotificationMessage, NotificationType, Priority, Sender};
use model::{Target, TimeFormat};
use records::RecordStore;
use records::RecordsSettings;
use records::{DeviceInfo, LogQuery, NewRecord, RecordQuery, RecordedEvent, Retention, SqlRecords};
use runtime::testing::{eventually, holds};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const DAY_NANOS: i128 = 86_400 * 1_000_000_000;

/// A notice pushed `days_ago` days ago, to user 5.
fn notice(days_ago: i128) -> NewRecord {
    let time = TimeFormat::default();
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() - days_ago * DAY_NANOS;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap();
    let message = NotificationMessage {
        notification_type: NotificationType::SYSTEM_NOTICE,
        content: format!("{days_ago} days old"),
        data: None,
        time: time.format(at),
        priority: Priority::Normal,
        target: Target::Custom,
        target_ids: vec![5],
        exclude_ids: Vec::new(),
        need_confirm: false,
        message_id: MessageId::from_parts(nanos, uuid::Uuid::new_v4()),
        channels: Default::default(),
        fallback: None,
        sender: Sender { id: 1, name: "admin".into() },
    };
    NewRecord { addressed: vec![5], message }
}

/// User 5 received `record` `days_ago` days ago.
fn received(record: &NewRecord, days_ago: i128) -> RecordedEvent {
    let time = TimeFormat::default();
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() - days_ago * DAY_NANOS;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap();
    RecordedEvent {
        event: DeliveryEvent {
            event_id: DeliveryEvent::new_event_id(),
            event_type: DeliveryEventType::Delivered,
            message_id: record.message.message_id.clone(),
            user_id: 5,
            username: "eve".into(),
            channel: model::ReportChannel::Websocket,
            connection_id: "c-1".into(),
            timestamp: time.format(at),
            user_role: Some(model::Role::User),
            push_channel: Some(model::PushChannel::Websocket),
            client_ip: String::new(),
            user_agent: String::new(),
        },
        device: DeviceInfo::default(),
    }
}

async fn totals(records: &RecordStore) -> (u64, u64) {
    let all = records.list(&RecordQuery { page: 1, page_size: 100, ..RecordQuery::default() }).await.unwrap();
    let logs = records.logs(&LogQuery { page: 1, page_size: 100, ..LogQuery::default() }).await.unwrap();
    (all.total, logs.total)
}

#[tokio::test]
async fn old_records_and_logs_are_purged_on_schedule() {
    let scratch = ScratchDatabase::create(Backend::Postgres).await.unwrap();
    let records = RecordStore::Sql(SqlRecords::open(&scratch.settings, TimeFormat::default()).await.unwrap());
    let (old, month, fresh) = (notice(45), notice(20), notice(0));
    records.write_messages(&[old.clone(), month.clone(), fresh.clone()]).await.unwrap();
    records
        .apply_events(&[received(&old, 44), received(&month, 10), received(&month, 3), received(&fresh, 0)])
        .await
        .unwrap();
    assert_eq!(totals(&records).await, (3, 4));

    // Defaults: records 30 days, logs 7. The 45-day notice goes; of the logs only the last two stay.
    let defaults = RecordsSettings { purge_interval_secs: 1, ..RecordsSettings::default() };
    let shutdown = CancellationToken::new();
    let every = Duration::from_secs(defaults.purge_interval_secs);
    let db = database::connect(&scratch.settings).await.unwrap();
    let context = janitor::Context {
        records: records.clone(),
        retention: Retention::of(&defaults),
        mobile: mobile::MobileStore::on(db.clone(), shutdown.clone()),
        inbox: state::OfflineInbox::start(&state::RedisSettings::in_process(), &state::OfflineSettings::default())
            .unwrap(),
        rules: mobile::DeviceRules::default(),
        device_chunk: janitor::DEVICE_CHUNK,
        leases: database::jobs::JobLeases::new(db.clone(), "janitor-test", Duration::from_secs(5)),
        lease: Duration::from_secs(5),
        metrics: janitor::JanitorMetrics::default(),
    };
    // No retention schedule: every `records.purge_interval_secs`, the last slot caught up at once.
    let settings = janitor::JanitorSettings::default();
    let janitor = janitor::Janitor::start(&settings, every, context, shutdown.clone()).unwrap();
    eventually("the first pass to purge", Duration::from_secs(10), || async {
        let totals = totals(&records).await;
        holds(totals == (2, 2), format_args!("still {totals:?}"))
    })
    .await;
    assert!(janitor.is_ready());
    let left = records.list(&RecordQuery { page: 1, page_size: 10, ..RecordQuery::default() }).await.unwrap();
    let contents: Vec<&str> = left.items.iter().map(|r| r.content.as_str()).collect();
    assert_eq!(contents, ["0 days old", "20 days old"]);

    // The next pass, a second later, finds new old records.
    let stale = notice(31);
    records.write_messages(std::slice::from_ref(&stale)).await.unwrap();
    eventually("the periodic pass to purge the stale record", Duration::from_secs(10), || async {
        let kept = records.detail(stale.message.message_id.as_str()).await.unwrap().is_some();
        holds(!kept, "the stale record is still there")
    })
    .await;
    shutdown.cancel();

    // A pass with a shorter retention, by hand: only today's notice stays.
    let short = Retention { records: Duration::from_secs(86_400), logs: Duration::from_secs(86_400) };
    let purged = janitor::purge_once(&records, short).await.unwrap();
    assert_eq!((purged.records, purged.logs), (1, 1));
    assert_eq!(totals(&records).await, (1, 1));
    drop((records, db));
    scratch.drop_now().await.unwrap();
}
