//! Audiences, on Redis, in the database and in memory.

use model::{Audience, MessageId, Target};
use state::AudienceStore;
use state::RedisSettings;
use std::time::Duration;

#[tokio::test]
async fn a_remembered_audience_answers_who_a_message_was_for() {
    let url = std::env::var("HERALD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = RedisSettings {
        url: state::StateBackend::Redis(url),
        key_prefix: format!("test-{}:", uuid::Uuid::new_v4().simple()),
        ..RedisSettings::default()
    };
    let on_redis = AudienceStore::start(&redis).unwrap();
    assert!(on_redis.wait_ready(Duration::from_secs(10)).await);
    let in_memory = AudienceStore::start(&RedisSettings::in_process()).unwrap();
    let databases = crate::live::LiveDatabases::open(&state::OfflineSettings::default()).await;
    let mut all = vec![on_redis, in_memory];
    all.extend(databases.states.iter().map(|(_, live)| AudienceStore::Sql(live.clone())));
    for store in all {
        let id = MessageId::generate();
        let audience = Audience { target: Target::Custom, target_ids: vec![2, 3], exclude_ids: vec![3] };
        assert_eq!(store.lookup(&id).await.unwrap(), None, "{store:?}");
        store.remember(&id, &audience).await.unwrap();
        let found = store.lookup(&id).await.unwrap().unwrap();
        assert!(found.includes(2, false) && !found.includes(3, false) && !found.includes(4, true), "{store:?}");
        store.forget(&id).await.unwrap();
    }
    databases.drop_all().await;
}
