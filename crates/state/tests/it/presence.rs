//! Presence, on Redis and in memory: per-replica entries merged, and expiring with their replica.

use state::{OnlineUser, Presence};
use state::{PresenceSettings, RedisSettings};
use std::time::Duration;

fn online(user_id: i64, connections: u64, replicas: &[&str]) -> OnlineUser {
    OnlineUser { user_id, connections, replicas: replicas.iter().map(|r| (*r).to_owned()).collect() }
}

#[tokio::test]
async fn presence_merges_replicas_and_forgets_those_that_stop_refreshing() {
    let url = std::env::var("HERALD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    let redis = RedisSettings { key_prefix: prefix, ..RedisSettings::redis(url) };
    let settings = PresenceSettings { refresh_secs: 1, ttl_secs: 2 };
    let memory = RedisSettings::in_process();
    for config in [&redis, &memory] {
        let presence = Presence::start(config, &settings).unwrap();
        let what = format!("{presence:?}");
        presence.refresh("a", &[(1, 1), (2, 2)]).await.unwrap();
        presence.refresh("b", &[(2, 1)]).await.unwrap();
        presence.update("b", &[(3, 1)]).await.unwrap();
        assert_eq!(
            presence.online_users().await.unwrap(),
            vec![online(1, 1, &["a"]), online(2, 3, &["a", "b"]), online(3, 1, &["b"])],
            "{what}"
        );
        presence.update("a", &[(1, 0), (2, 1)]).await.unwrap();
        assert!(!presence.is_online(1).await.unwrap(), "{what}");
        assert!(presence.is_online(2).await.unwrap(), "{what}");

        // `a` keeps refreshing, `b` stops (as if killed): after the TTL only `a` counts.
        // Real time passing is the point: `b`'s entry lapses on the store's clock (Redis TTLs),
        // while `a` refreshes a little more often than its refresh interval.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(900)).await;
            presence.refresh("a", &[(2, 1)]).await.unwrap();
        }
        assert_eq!(presence.online_users().await.unwrap(), vec![online(2, 1, &["a"])], "{what}");
        presence.withdraw("a").await.unwrap();
        assert_eq!(presence.online_users().await.unwrap(), vec![], "{what}");
    }
    state::purge_prefix(&redis).await.unwrap();
}
