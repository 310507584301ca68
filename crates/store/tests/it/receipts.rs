//! Receipts already recorded, on Redis, in the database and in memory: the first of a kind per
//! notice, user and device counts; repeats do not; a forgotten one counts again.

use model::{DeliveryEventType, MessageId};
use runtime::RedisSettings;
use store::{Receipt, ReceiptLedger};

#[tokio::test]
async fn only_the_first_receipt_of_a_kind_from_a_device_counts() {
    let url = std::env::var("HERALD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    let redis = RedisSettings { url: url.clone(), key_prefix: prefix.clone(), ..RedisSettings::default() };
    let databases = crate::live::LiveDatabases::open(&runtime::OfflineSettings::default()).await;
    let mut all = vec![
        ("redis", ReceiptLedger::start(&redis).unwrap()),
        ("memory", ReceiptLedger::start(&RedisSettings { url: "memory".into(), ..RedisSettings::default() }).unwrap()),
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
    store::purge_prefix(&RedisSettings { url, key_prefix: prefix, ..RedisSettings::default() }).await.unwrap();
}
