//! Receipts already recorded, on Redis, in the database and in memory: the first of a kind per
//! notice, user and device counts; repeats do not; a forgotten one counts again.

use model::{DeliveryEventType, MessageId};
use state::RedisSettings;
use state::{Receipt, ReceiptLedger};

#[tokio::test]
async fn only_the_first_receipt_of_a_kind_from_a_device_counts() {
    let url = std::env::var("HERALD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    let redis = RedisSettings { key_prefix: prefix.clone(), ..RedisSettings::redis(url.clone()) };
    let databases = crate::live::LiveDatabases::open(&state::OfflineSettings::default()).await;
    let mut all = vec![
        ("redis", ReceiptLedger::start(&redis).unwrap()),
        ("memory", ReceiptLedger::start(&RedisSettings::in_process()).unwrap()),
    ];
    all.extend(databases.states.iter().map(|(name, live)| (*name, ReceiptLedger::Sql(live.clone()))));
    for (backend, ledger) in all {
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
    databases.drop_all().await;
    state::purge_prefix(&RedisSettings { key_prefix: prefix, ..RedisSettings::redis(url) }).await.unwrap();
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
