//! The records store on SQLite, PostgreSQL and MariaDB, and on MongoDB where
//! `HERALD_TEST_MONGODB_URL` points at a server: the same cases on each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use database::scratch::{Backend, ScratchDatabase};
use model::{
    DeliveryEvent, DeliveryEventType, MessageId, NotificationMessage, NotificationType, Priority, Sender, Target,
    TimeFormat,
};
use records::RecordStore;
use records::{DeviceInfo, LogQuery, MongoRecords, NewRecord, Purge, RecordQuery, RecordedEvent, SqlRecords};

fn message(n: u64, target: Target, ids: Vec<i64>, content: &str) -> NotificationMessage {
    // Ids one second apart from a fixed start, so ordering and time filters are predictable.
    let nanos = (1_767_225_600 + n as i128) * 1_000_000_000;
    let time = TimeFormat::default();
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap();
    NotificationMessage {
        notification_type: if n.is_multiple_of(2) {
            NotificationType::SYSTEM_NOTICE
        } else {
            NotificationType::parse("order_completed").unwrap()
        },
        content: content.to_owned(),
        data: None,
        time: time.format(at),
        priority: Priority::Normal,
        target,
        target_ids: ids,
        exclude_ids: Vec::new(),
        need_confirm: false,
        message_id: MessageId::from_parts(nanos, uuid::Uuid::new_v4()),
        channels: Default::default(),
        fallback: None,
        sender: Sender { id: if n.is_multiple_of(3) { 1 } else { 7 }, name: "admin".into() },
    }
}

fn event(kind: DeliveryEventType, message: &NotificationMessage, user: i64, channel: &str) -> RecordedEvent {
    RecordedEvent {
        event: DeliveryEvent {
            event_id: DeliveryEvent::new_event_id(),
            event_type: kind,
            message_id: message.message_id.clone(),
            user_id: user,
            username: format!("user{user}"),
            channel: model::ReportChannel::Websocket,
            connection_id: format!("abc-{user}"),
            timestamp: TimeFormat::default().now(),
            user_role: Some(model::Role::User),
            push_channel: model::PushChannel::parse(channel),
            client_ip: "203.0.113.7".into(),
            user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)".into(),
        },
        device: DeviceInfo { device_type: "mobile".into(), platform: "ios".into(), browser: "safari".into() },
    }
}

async fn counts(store: &RecordStore, message: &NotificationMessage) -> (i64, i64, i64, String) {
    let detail = store.detail(message.message_id.as_str()).await.unwrap().unwrap();
    let r = detail.record;
    (r.total_count, r.delivered_count, r.failed_count, r.status.as_str().to_owned())
}

async fn exercise(store: &RecordStore, backend: impl std::fmt::Debug + Copy) {
    let custom = message(1, Target::Custom, vec![2, 3, 4], "your order shipped");
    let record = NewRecord { addressed: custom.target_ids.clone(), message: custom.clone() };
    store.write_messages(std::slice::from_ref(&record)).await.unwrap();
    store.write_messages(&[record]).await.unwrap(); // redelivered: no second row
    assert_eq!(counts(store, &custom).await, (3, 0, 0, "queued".into()), "{backend:?}");

    // Two online users acknowledge; the same events arrive twice.
    let acks = vec![
        event(DeliveryEventType::Delivered, &custom, 2, "websocket"),
        event(DeliveryEventType::Delivered, &custom, 3, "websocket"),
    ];
    store.apply_events(&acks).await.unwrap();
    store.apply_events(&acks).await.unwrap();
    assert_eq!(counts(store, &custom).await, (3, 2, 0, "partial".into()), "{backend:?}");

    // The offline user connects and acknowledges the replay; user 2 reads and confirms, and
    // acknowledges again from a second device.
    let later = vec![
        event(DeliveryEventType::Delivered, &custom, 4, "offline"),
        event(DeliveryEventType::Read, &custom, 2, "websocket"),
        event(DeliveryEventType::Confirmed, &custom, 2, "websocket"),
        event(DeliveryEventType::Delivered, &custom, 2, "websocket"),
    ];
    store.apply_events(&later).await.unwrap();
    store.apply_events(&later[..2]).await.unwrap();
    assert_eq!(counts(store, &custom).await, (3, 3, 0, "delivered".into()), "{backend:?}");
    let detail = store.detail(custom.message_id.as_str()).await.unwrap().unwrap();
    assert_eq!(detail.receipts.len(), 3, "{backend:?}");
    let two = &detail.receipts[0];
    assert_eq!((two.user_id, two.is_read, two.is_confirmed, two.retry_count), (2, true, true, 1), "{backend:?}");
    assert!(two.is_online && !two.read_at.is_empty() && !two.received_at.is_empty(), "{backend:?}: {two:?}");
    assert_eq!((two.device_type.as_str(), two.platform.as_str(), two.browser.as_str()), ("mobile", "ios", "safari"));
    assert_eq!((two.client_ip.as_str(), two.push_channel.map_or("", |c| c.as_str())), ("203.0.113.7", "websocket"));
    let four = &detail.receipts[2];
    assert_eq!(
        (four.is_online, four.push_channel.map_or("", |c| c.as_str()), four.delivery_status.as_str()),
        (false, "offline", "delivered")
    );
    assert_eq!(detail.logs.len(), 6, "one log entry per distinct event ({backend:?})");
    let kinds: Vec<&str> = detail.logs.iter().map(|l| l.event_type.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "delivered").count(), 4, "{backend:?}: {kinds:?}");
    assert!(kinds.contains(&"read") && kinds.contains(&"confirmed"), "{backend:?}: {kinds:?}");
    assert_eq!(detail.logs[0].device_info.as_ref().unwrap()["platform"], "ios", "{backend:?}");

    // A broadcast's events may arrive before its record; an event twice in one batch counts once.
    let broadcast = message(2, Target::All, vec![], "maintenance tonight");
    let early = event(DeliveryEventType::Delivered, &broadcast, 9, "websocket");
    store.apply_events(&[early.clone(), early]).await.unwrap();
    store.write_messages(&[NewRecord { message: broadcast.clone(), addressed: vec![] }]).await.unwrap();
    assert_eq!(counts(store, &broadcast).await, (1, 1, 0, "delivered".into()), "{backend:?}");
    assert_eq!(store.detail("1-nothing0").await.unwrap().map(|d| d.record.id), None);

    // A few hundred more, for filters, paging and stats.
    let bulk: Vec<NewRecord> = (10_u64..310)
        .map(|n| {
            let target = if n.is_multiple_of(5) { Target::Admin } else { Target::Custom };
            let m = message(n, target, vec![100 + n as i64], &format!("bulk notice {n}"));
            NewRecord { addressed: vec![100 + n as i64], message: m }
        })
        .collect();
    store.write_messages(&bulk).await.unwrap();
    let all = store.list(&RecordQuery { page: 1, page_size: 20, ..RecordQuery::default() }).await.unwrap();
    assert_eq!(all.total, 302, "{backend:?}");
    assert_eq!(all.items.len(), 20);
    assert_eq!(all.items[0].content, "bulk notice 309", "newest first ({backend:?})");
    assert_eq!(all.stats.total_records, 302);
    assert_eq!((all.stats.total_recipients, all.stats.delivered_count, all.stats.failed_count), (304, 4, 0));
    assert_eq!((all.stats.success_records, all.stats.failed_records), (302, 0));
    let last = store.list(&RecordQuery { page: 16, page_size: 20, ..RecordQuery::default() }).await.unwrap();
    assert_eq!(last.items.len(), 2, "{backend:?}");
    assert_eq!(last.items[1].message_id, custom.message_id.as_str(), "oldest last ({backend:?})");
    // Pages never overlap or skip, even though many records share a second.
    let mut seen = std::collections::HashSet::new();
    for page in 1..=16 {
        let p = store.list(&RecordQuery { page, page_size: 20, ..RecordQuery::default() }).await.unwrap();
        for item in p.items {
            assert!(seen.insert(item.message_id), "{backend:?}: page {page} repeats a record");
        }
    }
    assert_eq!(seen.len(), 302);

    let q = |f: fn(&mut RecordQuery)| {
        let mut query = RecordQuery { page: 1, page_size: 500, ..RecordQuery::default() };
        f(&mut query);
        query
    };
    let admin = store.list(&q(|q| q.target = Some(Target::Admin))).await.unwrap();
    assert_eq!(admin.total, 60, "{backend:?}");
    let orders =
        store.list(&q(|q| q.message_type = Some(NotificationType::parse("order_completed").unwrap()))).await.unwrap();
    assert_eq!(orders.total, 151, "{backend:?}");
    let by_sender = store.list(&q(|q| q.sender_id = Some(1))).await.unwrap();
    assert_eq!(by_sender.total, 100, "{backend:?}");
    let delivered = store.list(&q(|q| q.status = Some(model::PushStatus::Delivered))).await.unwrap();
    assert_eq!(delivered.total, 2, "{backend:?}");
    let text = store.list(&q(|q| q.content = Some("notice 12".into()))).await.unwrap();
    assert_eq!(text.total, 11, "12 and 120-129 ({backend:?})");
    // The text is matched literally: `%`, `_` and the escape character are not wildcards.
    for literal in ["notice_12", "%", "notice%12", "!", "notice!12"] {
        let query = RecordQuery { page: 1, page_size: 5, content: Some(literal.into()), ..RecordQuery::default() };
        assert_eq!(store.list(&query).await.unwrap().total, 0, "{literal:?} ({backend:?})");
    }
    let start = (1_767_225_600_i64 + 100) * 1000;
    let window = q(|q| {
        q.from_ms = Some((1_767_225_600_i64 + 100) * 1000);
        q.to_ms = Some((1_767_225_600_i64 + 109) * 1000);
    });
    assert_eq!(store.list(&window).await.unwrap().total, 10, "{backend:?} from {start}");

    let logs = store.logs(&LogQuery { page: 1, page_size: 50, user_id: Some(2), ..LogQuery::default() }).await;
    assert_eq!(logs.unwrap().total, 4, "{backend:?}");
    let reads = LogQuery { page: 1, page_size: 50, event_type: Some(DeliveryEventType::Read), ..LogQuery::default() };
    assert_eq!(store.logs(&reads).await.unwrap().total, 1, "{backend:?}");
    let of_custom =
        LogQuery { page: 1, page_size: 2, message_id: Some(custom.message_id.to_string()), ..LogQuery::default() };
    let page = store.logs(&of_custom).await.unwrap();
    assert_eq!((page.total, page.items.len()), (6, 2), "{backend:?}");

    // Retention: records pushed before notice 100 go; receive records and logs are younger.
    let purge = Purge { records_before_ms: start, logs_before_ms: 0 };
    let purged = store.purge(purge).await.unwrap();
    assert_eq!((purged.records, purged.receipts, purged.logs), (92, 0, 0), "{backend:?}");
    assert_eq!(store.list(&q(|_| {})).await.unwrap().total, 210, "{backend:?}");
    assert!(store.detail(custom.message_id.as_str()).await.unwrap().is_none());
    let later = i64::MAX / 2;
    let purged = store.purge(Purge { records_before_ms: later, logs_before_ms: later }).await.unwrap();
    assert_eq!((purged.records, purged.receipts, purged.logs), (210, 304, 7), "{backend:?}");
    assert_eq!(store.list(&q(|_| {})).await.unwrap().total, 0, "{backend:?}");
}

/// A user a provider reached on their phone: the receive record names `mobile` whatever a
/// connection acknowledged before or after, and only an acknowledgement counts as received.
/// A custom notice's events may come before its record too: the record counts them (it finds
/// the receive records it meant to write already there), and written again changes nothing.
async fn events_before_a_custom_notices_record(store: &RecordStore, backend: impl std::fmt::Debug + Copy) {
    let custom = message(500, Target::Custom, vec![21, 22], "your order shipped");
    store.apply_events(&[event(DeliveryEventType::Delivered, &custom, 21, "websocket")]).await.unwrap();
    let record = NewRecord { addressed: vec![21, 22], message: custom.clone() };
    store.write_messages(std::slice::from_ref(&record)).await.unwrap();
    assert_eq!(counts(store, &custom).await, (2, 1, 0, "partial".into()), "{backend:?}");
    store.write_messages(&[record]).await.unwrap();
    assert_eq!(counts(store, &custom).await, (2, 1, 0, "partial".into()), "{backend:?}");
    // Without events first, the record's counts are its own: every addressed user pending.
    let quiet = message(501, Target::Custom, vec![23, 24, 25], "your order is packed");
    store.write_messages(&[NewRecord { addressed: vec![23, 24, 25], message: quiet.clone() }]).await.unwrap();
    assert_eq!(counts(store, &quiet).await, (3, 0, 0, "queued".into()), "{backend:?}");
}

async fn a_phone_push_names_the_channel(store: &RecordStore, backend: impl std::fmt::Debug + Copy) {
    let notice = message(400, Target::Custom, vec![5, 6, 7, 8], "fallback");
    let record = NewRecord { addressed: notice.target_ids.clone(), message: notice.clone() };
    store.write_messages(&[record]).await.unwrap();
    let phone = |user| {
        let mut sent = event(DeliveryEventType::Sent, &notice, user, "mobile");
        sent.event.channel = model::ReportChannel::Mobile;
        sent
    };
    let replayed = |user| event(DeliveryEventType::Delivered, &notice, user, "offline");
    store.apply_events(&[phone(5)]).await.unwrap();
    store.apply_events(&[replayed(5), replayed(6)]).await.unwrap();
    store
        .apply_events(&[phone(6), phone(7), event(DeliveryEventType::Delivered, &notice, 8, "websocket")])
        .await
        .unwrap();
    let detail = store.detail(notice.message_id.as_str()).await.unwrap().unwrap();
    let rows: Vec<(i64, &str, bool)> =
        detail.receipts.iter().map(|r| (r.user_id, r.push_channel.map_or("", |c| c.as_str()), r.is_received)).collect();
    let want = [(5, "mobile", true), (6, "mobile", true), (7, "mobile", false), (8, "websocket", true)];
    assert_eq!(rows, want, "{backend:?}");
    assert_eq!(counts(store, &notice).await, (4, 3, 0, "partial".into()), "{backend:?}");
    let sent = detail.logs.iter().filter(|l| l.event_type.as_str() == "sent").count();
    assert_eq!(sent, 3, "{backend:?}: a log entry per phone push");
}

#[tokio::test]
async fn the_sql_records_store_behaves_the_same_on_every_backend() {
    for backend in Backend::ALL {
        let scratch = ScratchDatabase::create(backend).await.unwrap_or_else(|err| panic!("{backend:?}: {err}"));
        let store = RecordStore::Sql(SqlRecords::open(&scratch.settings, TimeFormat::default()).await.unwrap());
        exercise(&store, backend).await;
        a_phone_push_names_the_channel(&store, backend).await;
        events_before_a_custom_notices_record(&store, backend).await;
        assert!(store.is_ready());
        drop(store);
        scratch.drop_now().await.unwrap();
    }
}

/// The same cases on MongoDB, in a database of its own that is dropped afterwards.
#[tokio::test]
#[cfg_attr(not(herald_mongodb), ignore = "needs a MongoDB server: set HERALD_TEST_MONGODB_URL")]
async fn the_mongodb_records_store_behaves_the_same() {
    let url = std::env::var("HERALD_TEST_MONGODB_URL").expect("HERALD_TEST_MONGODB_URL");
    let client = mongodb::Client::with_uri_str(&url).await.unwrap();
    let db = client.database(&format!("herald_test_{}", uuid::Uuid::new_v4().simple()));
    let retention = records::Retention::of(&records::RecordsSettings::default());
    let mongo = MongoRecords::open_in(db.clone(), retention, TimeFormat::default()).await.unwrap();
    // Opening again with another retention changes the TTL indexes in place.
    let shorter = records::Retention { logs: std::time::Duration::from_secs(86_400), ..retention };
    MongoRecords::open_in(db.clone(), shorter, TimeFormat::default()).await.unwrap();
    let store = RecordStore::Mongo(mongo);
    exercise(&store, "mongodb").await;
    a_phone_push_names_the_channel(&store, "mongodb").await;
    events_before_a_custom_notices_record(&store, "mongodb").await;
    assert!(store.is_ready());
    db.drop().await.unwrap();
}

/// Writes rows the way Herald did before its records' times became instants: every time a
/// `YYYY-MM-DD HH:MM:SS` string rendered at +08:00, some with a Unix-millisecond twin. Notice 2's
/// id was read from the clock just after its `push_time`, across the turn of a second.
async fn write_the_old_way(db: &sea_orm::DatabaseConnection) {
    use sea_orm::ConnectionTrait;
    // 2026-01-01 00:00:00 UTC, i.e. 08:00:00 at +08:00.
    const EPOCH_MS: i64 = 1_767_225_600_000;
    let statements = [
        format!(
            "INSERT INTO push_records (message_id, content, message_type, target, target_user_ids, recipients_count, \
             status, success, error, error_code, push_time, push_ts, created_at, updated_at, sender_id, sender_name, \
             delivered_count, failed_count, total_count, priority, need_confirm, extra_data) VALUES \
             ('1767225601250000000-aaaaaaaa', 'old notice 1', 'system_notice', 'custom', '[2,3]', '2', 'partial', \
              TRUE, '', '', '2026-01-01 08:00:01', {}, '2026-01-01 08:00:02', '2026-01-01 08:00:09', 1, 'admin', \
              1, 0, 2, 1, FALSE, NULL), \
             ('1767225606003000000-bbbbbbbb', 'old notice 2', 'order_completed', 'all', '[]', 'all_online_users', \
              'queued', TRUE, '', '', '2026-01-01 08:00:05', {}, '2026-01-01 08:00:06', '2026-01-01 08:00:06', 7, \
              'admin', 0, 0, 0, 2, TRUE, '{{\"order\":42}}')",
            EPOCH_MS + 1_250,
            EPOCH_MS + 6_003,
        ),
        format!(
            "INSERT INTO receive_records (message_id, user_id, username, user_role, is_online, is_received, \
             received_at, is_read, read_at, is_confirmed, confirmed_at, device_type, platform, browser, client_ip, \
             user_agent, connection_id, push_channel, delivery_status, retry_count, error_message, created_at, \
             updated_at, created_ts) VALUES \
             ('1767225601250000000-aaaaaaaa', 2, 'user2', 'user', TRUE, TRUE, '2026-01-01 08:00:05', TRUE, \
              '2026-01-01 08:00:07', FALSE, '', 'mobile', 'ios', 'safari', '203.0.113.7', 'Mozilla/5.0', 'abc-2', \
              'websocket', 'delivered', 1, '', '2026-01-01 08:00:02', '2026-01-01 08:00:07', {}), \
             ('1767225601250000000-aaaaaaaa', 3, '', '', FALSE, FALSE, '', FALSE, '', FALSE, '', '', '', '', '', '', \
              '', '', 'pending', 0, '', '2026-01-01 08:00:02', '2026-01-01 08:00:02', {})",
            EPOCH_MS + 2_010,
            EPOCH_MS + 1_999,
        ),
        format!(
            "INSERT INTO notification_logs (event_id, message_id, user_id, username, event_type, status, timestamp, \
             ts, created_at, error, device_info, client_ip, user_agent) VALUES \
             ('ev-1', '1767225601250000000-aaaaaaaa', 2, 'user2', 'delivered', 'success', '2026-01-01 08:00:05', {}, \
              '2026-01-01 08:00:06', '', NULL, '203.0.113.7', 'Mozilla/5.0'), \
             ('ev-2', '1767225601250000000-aaaaaaaa', 2, 'user2', 'read', 'success', '2026-01-01 08:00:07', {}, \
              '2026-01-01 08:00:07', '', NULL, '', '')",
            EPOCH_MS + 5_000,
            EPOCH_MS + 7_000,
        ),
    ];
    for sql in statements {
        db.execute_unprepared(&sql.replace("timestamp,", &quoted_timestamp(db))).await.unwrap();
    }
}

/// The `timestamp` column, quoted for the backend (it is a keyword in places).
fn quoted_timestamp(db: &sea_orm::DatabaseConnection) -> String {
    match db.get_database_backend() {
        sea_orm::DbBackend::MySql => "`timestamp`,".to_owned(),
        _ => "\"timestamp\",".to_owned(),
    }
}

#[tokio::test]
async fn rows_written_as_rendered_strings_read_back_identically_once_migrated() {
    let offset = TimeFormat::new(TimeFormat::parse_offset("+08:00").unwrap());
    for backend in Backend::ALL {
        let scratch = ScratchDatabase::create(backend).await.unwrap_or_else(|err| panic!("{backend:?}: {err}"));
        // The three migrations before times became instants.
        let old = scratch.connect_at(3).await.unwrap_or_else(|err| panic!("{backend:?}: {err}"));
        write_the_old_way(&old).await;
        old.close().await.unwrap();
        let store = RecordStore::Sql(SqlRecords::open(&scratch.settings, offset).await.unwrap());

        let one = store.detail("1767225601250000000-aaaaaaaa").await.unwrap().unwrap();
        let record = serde_json::to_value(&one.record).unwrap();
        assert_eq!(
            (&record["push_time"], &record["created_at"], &record["updated_at"]),
            (&"2026-01-01 08:00:01".into(), &"2026-01-01 08:00:02".into(), &"2026-01-01 08:00:09".into()),
            "{backend:?}: {record}"
        );
        assert_eq!(
            (&record["status"], &record["target"], &record["total_count"]),
            (&"partial".into(), &"custom".into(), &2.into())
        );
        let receipts = serde_json::to_value(&one.receipts).unwrap();
        assert_eq!(
            receipts,
            serde_json::json!([
                {"id": one.receipts[0].id, "message_id": "1767225601250000000-aaaaaaaa", "user_id": 2,
                 "username": "user2", "user_role": "user", "is_online": true, "is_received": true,
                 "received_at": "2026-01-01 08:00:05", "is_read": true, "read_at": "2026-01-01 08:00:07",
                 "is_confirmed": false, "confirmed_at": "", "device_type": "mobile", "platform": "ios",
                 "browser": "safari", "client_ip": "203.0.113.7", "user_agent": "Mozilla/5.0",
                 "connection_id": "abc-2", "push_channel": "websocket", "delivery_status": "delivered",
                 "retry_count": 1, "error_message": "", "created_at": "2026-01-01 08:00:02",
                 "updated_at": "2026-01-01 08:00:07"},
                {"id": one.receipts[1].id, "message_id": "1767225601250000000-aaaaaaaa", "user_id": 3,
                 "username": "", "user_role": "", "is_online": false, "is_received": false, "received_at": "",
                 "is_read": false, "read_at": "", "is_confirmed": false, "confirmed_at": "", "device_type": "",
                 "platform": "", "browser": "", "client_ip": "", "user_agent": "", "connection_id": "",
                 "push_channel": "", "delivery_status": "pending", "retry_count": 0, "error_message": "",
                 "created_at": "2026-01-01 08:00:02", "updated_at": "2026-01-01 08:00:02"},
            ]),
            "{backend:?}"
        );
        let logs: Vec<(String, String, String)> = one
            .logs
            .iter()
            .map(|l| (l.event_type.as_str().to_owned(), l.timestamp.clone(), l.created_at.clone()))
            .collect();
        assert_eq!(
            logs,
            [
                ("delivered".to_owned(), "2026-01-01 08:00:05".to_owned(), "2026-01-01 08:00:06".to_owned()),
                ("read".to_owned(), "2026-01-01 08:00:07".to_owned(), "2026-01-01 08:00:07".to_owned()),
            ],
            "{backend:?}"
        );
        // The id read just after the second turned still shows the push time it was given, and
        // filters and order still use the instant.
        let two = store.detail("1767225606003000000-bbbbbbbb").await.unwrap().unwrap().record;
        assert_eq!((two.push_time.as_str(), two.created_at.as_str()), ("2026-01-01 08:00:05", "2026-01-01 08:00:06"));
        let newest = store.list(&RecordQuery { page: 1, page_size: 10, ..RecordQuery::default() }).await.unwrap();
        let order: Vec<&str> = newest.items.iter().map(|r| r.content.as_str()).collect();
        assert_eq!(order, ["old notice 2", "old notice 1"], "{backend:?}");
        let from = offset.parse_millis("2026-01-01 08:00:05").unwrap();
        let window = RecordQuery { page: 1, page_size: 10, from_ms: Some(from), ..RecordQuery::default() };
        assert_eq!(store.list(&window).await.unwrap().total, 1, "{backend:?}");

        // New events fold into the migrated rows as into any other.
        let mut message = message(6, Target::Custom, vec![2, 3], "unused");
        message.message_id = MessageId::parse("1767225601250000000-aaaaaaaa").unwrap();
        let mut confirm = event(DeliveryEventType::Confirmed, &message, 3, "offline");
        confirm.event.timestamp = "2026-01-01 08:01:00".into();
        store.apply_events(&[confirm]).await.unwrap();
        let one = store.detail("1767225601250000000-aaaaaaaa").await.unwrap().unwrap();
        let three = &one.receipts[1];
        assert_eq!(
            (three.received_at.as_str(), three.confirmed_at.as_str()),
            ("2026-01-01 08:01:00", "2026-01-01 08:01:00")
        );
        assert_eq!((one.record.delivered_count, one.record.status.as_str()), (2, "delivered"), "{backend:?}");
        drop(store);
        scratch.drop_now().await.unwrap();
    }
}

/// Two record-writers folding events of the same notices and users at once (one has the
/// deliveries, the other the reads, in batches that overlap), on the servers where they can
/// run side by side: no batch fails, and every count comes out exact.
#[tokio::test]
async fn two_writers_on_the_same_records_fail_no_batch_and_count_exactly() {
    const USERS: i64 = 30;
    for backend in [Backend::Postgres, Backend::MySql] {
        let scratch = ScratchDatabase::create(backend).await.unwrap_or_else(|err| panic!("{backend:?}: {err}"));
        let first = SqlRecords::open(&scratch.settings, TimeFormat::default()).await.unwrap();
        let second = SqlRecords::open(&scratch.settings, TimeFormat::default()).await.unwrap();
        // Broadcasts: no receive record exists until the first event of each user.
        let notices: Vec<NotificationMessage> =
            (0..12).map(|n| message(n, Target::All, Vec::new(), "maintenance tonight")).collect();
        let records: Vec<NewRecord> =
            notices.iter().map(|m| NewRecord { message: m.clone(), addressed: Vec::new() }).collect();
        first.write_messages(&records).await.unwrap();
        let of_kind = |kind: DeliveryEventType| -> Vec<RecordedEvent> {
            notices.iter().flat_map(|m| (1..=USERS).map(move |user| event(kind, m, user, "websocket"))).collect()
        };
        let (delivered, read) = (of_kind(DeliveryEventType::Delivered), of_kind(DeliveryEventType::Read));
        for (a, b) in delivered.chunks(45).zip(read.chunks(45)) {
            let (left, right) = tokio::join!(first.apply_events(a), second.apply_events(b));
            left.unwrap_or_else(|err| panic!("{backend:?}: the first writer's batch failed: {err}"));
            right.unwrap_or_else(|err| panic!("{backend:?}: the second writer's batch failed: {err}"));
        }
        // The same events again, redelivered to the other writer: nothing changes.
        let (left, right) = tokio::join!(first.apply_events(&read[..90]), second.apply_events(&delivered[..90]));
        left.unwrap();
        right.unwrap();
        let store = RecordStore::Sql(first);
        for notice in &notices {
            assert_eq!(counts(&store, notice).await, (USERS, USERS, 0, "delivered".into()), "{backend:?}");
            let detail = store.detail(notice.message_id.as_str()).await.unwrap().unwrap();
            assert_eq!(detail.receipts.len(), USERS as usize, "{backend:?}: one receive record per user");
            assert!(detail.receipts.iter().all(|r| r.is_received && r.is_read), "{backend:?}");
            assert_eq!(detail.logs.len(), 2 * USERS as usize, "{backend:?}: each event logged once");
        }
        drop((store, second));
        scratch.drop_now().await.unwrap();
    }
}
