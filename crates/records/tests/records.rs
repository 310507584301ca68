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
            channel: "websocket".into(),
            connection_id: format!("abc-{user}"),
            timestamp: TimeFormat::default().now(),
            user_role: "user".into(),
            push_channel: channel.into(),
            client_ip: "203.0.113.7".into(),
            user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)".into(),
        },
        device: DeviceInfo { device_type: "mobile".into(), platform: "ios".into(), browser: "safari".into() },
    }
}

async fn counts(store: &RecordStore, message: &NotificationMessage) -> (i64, i64, i64, String) {
    let detail = store.detail(message.message_id.as_str()).await.unwrap().unwrap();
    let r = detail.record;
    (r.total_count, r.delivered_count, r.failed_count, r.status)
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
    assert_eq!((two.client_ip.as_str(), two.push_channel.as_str()), ("203.0.113.7", "websocket"));
    let four = &detail.receipts[2];
    assert_eq!(
        (four.is_online, four.push_channel.as_str(), four.delivery_status.as_str()),
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
    let admin = store.list(&q(|q| q.target = Some("admin".into()))).await.unwrap();
    assert_eq!(admin.total, 60, "{backend:?}");
    let orders = store.list(&q(|q| q.message_type = Some("order_completed".into()))).await.unwrap();
    assert_eq!(orders.total, 151, "{backend:?}");
    let by_sender = store.list(&q(|q| q.sender_id = Some(1))).await.unwrap();
    assert_eq!(by_sender.total, 100, "{backend:?}");
    let delivered = store.list(&q(|q| q.status = Some("delivered".into()))).await.unwrap();
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
    let reads = LogQuery { page: 1, page_size: 50, event_type: Some("read".into()), ..LogQuery::default() };
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

#[tokio::test]
async fn the_sql_records_store_behaves_the_same_on_every_backend() {
    for backend in Backend::ALL {
        let scratch = ScratchDatabase::create(backend).await.unwrap_or_else(|err| panic!("{backend:?}: {err}"));
        let store = RecordStore::Sql(SqlRecords::open(&scratch.settings, TimeFormat::default()).await.unwrap());
        exercise(&store, backend).await;
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
    assert!(store.is_ready());
    db.drop().await.unwrap();
}
