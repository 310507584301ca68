//! Idempotency keys, on Redis and in memory.

use crate::live::LiveDatabases;
use state::RedisSettings;
use state::{Claim, IdempotencyStore};
use std::time::Duration;

async fn backends() -> (Vec<(&'static str, IdempotencyStore)>, LiveDatabases) {
    let url = std::env::var("HERALD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = RedisSettings {
        url: state::StateBackend::Redis(url),
        key_prefix: format!("test-{}:", uuid::Uuid::new_v4().simple()),
        ..RedisSettings::default()
    };
    let on_redis = IdempotencyStore::start(&redis).unwrap();
    assert!(on_redis.wait_ready(Duration::from_secs(10)).await, "Redis is not reachable");
    let in_memory = IdempotencyStore::start(&RedisSettings::in_process()).unwrap();
    let databases = LiveDatabases::open(&state::OfflineSettings::default()).await;
    let mut all = vec![("redis", on_redis), ("memory", in_memory)];
    all.extend(databases.states.iter().map(|(name, live)| (*name, IdempotencyStore::Sql(live.clone()))));
    (all, databases)
}

/// A request's budget in these tests.
const BUDGET: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_completed_key_answers_repeats_and_refuses_other_requests() {
    let (all, databases) = backends().await;
    for (backend, store) in all {
        let (body, other) = (IdempotencyStore::fingerprint("{\"a\":1}"), IdempotencyStore::fingerprint("{\"a\":2}"));
        assert_eq!(store.claim("7", "k1", &body, BUDGET).await.unwrap(), Claim::New, "{backend}");
        assert_eq!(store.claim("7", "k1", &body, BUDGET).await.unwrap(), Claim::InProgress, "{backend}");
        assert_eq!(store.claim("7", "k1", &other, BUDGET).await.unwrap(), Claim::Mismatch, "{backend}");
        store.complete("7", "k1", &body, "{\"answer\":\"first\"}").await.unwrap();
        assert_eq!(
            store.claim("7", "k1", &body, BUDGET).await.unwrap(),
            Claim::Done("{\"answer\":\"first\"}".into()),
            "{backend}"
        );
        assert_eq!(store.claim("7", "k1", &other, BUDGET).await.unwrap(), Claim::Mismatch, "{backend}");
        assert_eq!(store.claim("8", "k1", &body, BUDGET).await.unwrap(), Claim::New, "{backend}: keys are per sender");
        for scope in ["7", "8"] {
            store.release(scope, "k1").await.unwrap();
        }
    }
    databases.drop_all().await;
}

#[tokio::test]
async fn a_released_key_is_free_for_a_retry() {
    let (all, databases) = backends().await;
    for (backend, store) in all {
        let body = IdempotencyStore::fingerprint("{}");
        assert_eq!(store.claim("7", "k2", &body, BUDGET).await.unwrap(), Claim::New, "{backend}");
        store.release("7", "k2").await.unwrap();
        assert_eq!(store.claim("7", "k2", &body, BUDGET).await.unwrap(), Claim::New, "{backend}");
        store.release("7", "k2").await.unwrap();
    }
    databases.drop_all().await;
}

#[tokio::test]
async fn a_claim_lapses_with_its_request_and_a_late_first_step_does_not_hold_the_key() {
    let (all, databases) = backends().await;
    for (backend, store) in all {
        let body = IdempotencyStore::fingerprint("{}");
        let short = Duration::from_millis(300);
        assert_eq!(store.claim("7", "k3", &body, short).await.unwrap(), Claim::New, "{backend}");
        assert_eq!(store.claim("7", "k3", &body, short).await.unwrap(), Claim::InProgress, "{backend}");
        // Letting the claim's 300 ms pass is the point: it lapses on the store's own clock.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(store.claim("7", "k3", &body, BUDGET).await.unwrap(), Claim::New, "{backend}: the claim lapsed");
        store.release("7", "k3").await.unwrap();
    }
    databases.drop_all().await;
}
