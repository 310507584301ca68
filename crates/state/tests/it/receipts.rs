//! Receipts already recorded, on Redis, in the database and in memory: the first of a kind per
//! notice, user and device counts; repeats do not; a forgotten one counts again.

use model::{DeliveryEventType, MessageId};
use state::RedisSettings;
use state::{Receipt, ReceiptLedger};

/// A ledger on every backend: Redis (under a key prefix of its own), memory, and each database.
struct Ledgers {
    all: Vec<(&'static str, ReceiptLedger)>,
    redis: RedisSettings,
    databases: crate::live::LiveDatabases,
}

impl Ledgers {
    async fn open() -> Self {
        let url = std::env::var("HERALD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
        let redis = RedisSettings { key_prefix: prefix, ..RedisSettings::redis(url) };
        let databases = crate::live::LiveDatabases::open(&state::OfflineSettings::default()).await;
        let mut all = vec![
            ("redis", ReceiptLedger::start(&redis).unwrap()),
            ("memory", ReceiptLedger::start(&RedisSettings::in_process()).unwrap()),
        ];
        all.extend(databases.states.iter().map(|(name, live)| (*name, ReceiptLedger::Sql(live.clone()))));
        Self { all, redis, databases }
    }

    /// Drops the scratch databases and the Redis keys.
    async fn remove(self) {
        self.databases.drop_all().await;
        state::purge_prefix(&self.redis).await.unwrap();
    }
}

#[tokio::test]
async fn only_the_first_receipt_of_a_kind_from_a_device_counts() {
    let ledgers = Ledgers::open().await;
    for (backend, ledger) in ledgers.all.clone() {
        let id = MessageId::generate();
        let read = |device| Receipt { message_id: &id, user_id: 7, event: DeliveryEventType::Read, device };
        assert!(ledger.first(read("a-1")).await.unwrap(), "{backend}");
        for _ in 0..5 {
            assert!(!ledger.first(read("a-1")).await.unwrap(), "{backend}: a repeat counted");
        }
        assert!(ledger.first(read("a-2")).await.unwrap(), "{backend}: another device counts");
        let confirm = Receipt { message_id: &id, user_id: 7, event: DeliveryEventType::Confirmed, device: "a-1" };
        assert!(ledger.first(confirm).await.unwrap(), "{backend}: another kind counts");
        ledger.forget(read("a-1")).await.unwrap();
        assert!(ledger.first(read("a-1")).await.unwrap(), "{backend}: forgotten, it counts again");
    }
    ledgers.remove().await;
}

/// Which users acknowledged a notice at all: any kind, any device; other notices' and other
/// users' receipts do not count; one forgotten (its event not published) still does in Redis.
#[tokio::test]
async fn the_ledger_says_which_users_acknowledged_a_notice() {
    let ledgers = Ledgers::open().await;
    for (backend, ledger) in ledgers.all.clone() {
        let (id, other) = (MessageId::generate(), MessageId::generate());
        let receipt = |message_id, user_id, event, device| Receipt { message_id, user_id, event, device };
        assert!(ledger.acknowledged(&id, &[1, 2, 3]).await.unwrap().is_empty(), "{backend}");
        assert!(ledger.acknowledged(&id, &[]).await.unwrap().is_empty(), "{backend}");
        ledger.first(receipt(&id, 1, DeliveryEventType::Delivered, "gw-1-1")).await.unwrap();
        ledger.first(receipt(&id, 3, DeliveryEventType::Confirmed, "rest")).await.unwrap();
        ledger.first(receipt(&other, 2, DeliveryEventType::Delivered, "gw-1-2")).await.unwrap();
        let forgotten = receipt(&id, 4, DeliveryEventType::Read, "gw-2-1");
        ledger.first(forgotten).await.unwrap();
        ledger.forget(forgotten).await.unwrap();
        let mut acked: Vec<i64> = ledger.acknowledged(&id, &[1, 2, 3, 4, 5]).await.unwrap().into_iter().collect();
        acked.sort_unstable();
        let want: &[i64] = if backend == "redis" { &[1, 3, 4] } else { &[1, 3] };
        assert_eq!(acked, want, "{backend}");
        let acked: Vec<i64> = ledger.acknowledged(&other, &[1, 2]).await.unwrap().into_iter().collect();
        assert_eq!(acked, [2], "{backend}");
    }
    ledgers.remove().await;
}

fn delivered(message_id: MessageId, user_id: i64) -> model::DeliveryEvent {
    model::DeliveryEvent {
        event_id: model::DeliveryEvent::new_event_id(),
        event_type: DeliveryEventType::Delivered,
        message_id,
        user_id,
        username: "u".into(),
        channel: model::ReportChannel::Websocket,
        connection_id: "gw-1".into(),
        timestamp: "2025-01-27 10:30:02".into(),
        user_role: None,
        push_channel: None,
        client_ip: String::new(),
        user_agent: String::new(),
    }
}

/// A receipt whose event the bus does not take is refused and leaves the inbox entry, so the
/// notice replays and its receipt is sent again; once the event is out, the entry goes.
#[tokio::test]
async fn a_receipt_whose_event_is_not_published_keeps_the_inbox_entry() {
    runtime::install_crypto_provider();
    let inbox = state::OfflineInbox::start(&RedisSettings::in_process(), &state::OfflineSettings::default()).unwrap();
    let ledger = ReceiptLedger::start(&RedisSettings::in_process()).unwrap();
    let entry = crate::inbox::entry(1);
    let id = MessageId::parse(&entry.message_id).unwrap();
    inbox.store(&[7], &entry).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    // A broker nobody listens on: every publish fails within its timeout.
    let dead = bus::BusSettings {
        url: bus::BusUrl::Amqp("amqp://guest:guest@127.0.0.1:1/%2f".into()),
        publish_timeout_ms: 200,
        ..bus::BusSettings::default()
    };
    let dead = bus::Bus::start(&dead, shutdown.clone());
    let refused = state::receipts::record(&inbox, &ledger, &dead, &delivered(id.clone(), 7), "gw-1-1").await;
    assert!(matches!(refused, Err(state::receipts::RecordError::Publish(_))), "{refused:?}");
    assert_eq!(inbox.replay(7).await.unwrap().entries.len(), 1, "the notice still replays");

    let working = bus::Bus::in_process(&bus::BusSettings::in_process(), None, shutdown.clone());
    state::receipts::record(&inbox, &ledger, &working, &delivered(id.clone(), 7), "gw-1-1").await.unwrap();
    assert_eq!(inbox.replay(7).await.unwrap().entries.len(), 0, "acknowledged once the event is out");
    // A repeat (the event is out already) clears an entry too.
    inbox.store(&[7], &entry).await.unwrap();
    state::receipts::record(&inbox, &ledger, &dead, &delivered(id, 7), "gw-1-1").await.unwrap();
    assert_eq!(inbox.replay(7).await.unwrap().entries.len(), 0);
    shutdown.cancel();
}
