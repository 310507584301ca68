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
