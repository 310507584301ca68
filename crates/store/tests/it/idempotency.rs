//! Idempotency keys, on Redis and in memory.

use runtime::RedisSettings;
use std::time::Duration;
use store::{Claim, IdempotencyStore};

async fn backends() -> Vec<(&'static str, IdempotencyStore)> {
    let url = std::env::var("HERALD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = RedisSettings {
        url,
        key_prefix: format!("test-{}:", uuid::Uuid::new_v4().simple()),
        ..RedisSettings::default()
    };
    let on_redis = IdempotencyStore::start(&redis).unwrap();
    assert!(on_redis.wait_ready(Duration::from_secs(10)).await, "Redis is not reachable");
    let in_memory =
        IdempotencyStore::start(&RedisSettings { url: "memory".into(), ..RedisSettings::default() }).unwrap();
    vec![("redis", on_redis), ("memory", in_memory)]
}

#[tokio::test]
async fn a_completed_key_answers_repeats_and_refuses_other_requests() {
    for (backend, store) in backends().await {
        let (body, other) = (IdempotencyStore::fingerprint("{\"a\":1}"), IdempotencyStore::fingerprint("{\"a\":2}"));
        assert_eq!(store.claim("7", "k1", &body).await.unwrap(), Claim::New, "{backend}");
        assert_eq!(store.claim("7", "k1", &body).await.unwrap(), Claim::InProgress, "{backend}");
        assert_eq!(store.claim("7", "k1", &other).await.unwrap(), Claim::Mismatch, "{backend}");
        store.complete("7", "k1", &body, "{\"answer\":\"first\"}").await.unwrap();
        assert_eq!(
            store.claim("7", "k1", &body).await.unwrap(),
            Claim::Done("{\"answer\":\"first\"}".into()),
            "{backend}"
        );
        assert_eq!(store.claim("7", "k1", &other).await.unwrap(), Claim::Mismatch, "{backend}");
        assert_eq!(store.claim("8", "k1", &body).await.unwrap(), Claim::New, "{backend}: keys are per sender");
        for scope in ["7", "8"] {
            store.release(scope, "k1").await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_released_key_is_free_for_a_retry() {
    for (backend, store) in backends().await {
        let body = IdempotencyStore::fingerprint("{}");
        assert_eq!(store.claim("7", "k2", &body).await.unwrap(), Claim::New, "{backend}");
        store.release("7", "k2").await.unwrap();
        assert_eq!(store.claim("7", "k2", &body).await.unwrap(), Claim::New, "{backend}");
        store.release("7", "k2").await.unwrap();
    }
}
