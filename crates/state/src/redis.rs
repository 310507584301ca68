//! One way to open a Redis client for every store: reconnecting in the background with capped
//! backoff, and failing commands after `redis.command_timeout_ms` instead of queueing them.

use crate::settings::{RedisSettings, StateBackend};
use fred::prelude::*;
use std::time::Duration;

/// A client for the Redis `settings.url` names, already connecting; an invalid URL (or live state
/// kept elsewhere) is an error.
pub fn connect(settings: &RedisSettings) -> Result<Client, String> {
    let StateBackend::Redis(url) = &settings.url else {
        return Err(format!("live state is not kept in Redis (redis.url = {:?})", settings.url));
    };
    let config = Config::from_url(url).map_err(|err| err.to_string())?;
    let timeout = Duration::from_millis(settings.command_timeout_ms);
    let client = Builder::from_config(config)
        .with_performance_config(|performance| performance.default_command_timeout = timeout)
        .with_connection_config(|connection| {
            connection.connection_timeout = timeout;
            connection.internal_command_timeout = timeout;
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5000, 2))
        .build()
        .map_err(|err| err.to_string())?;
    // The connection task keeps reconnecting in the background; commands fail fast meanwhile.
    client.connect();
    Ok(client)
}

/// Waits until `client` is connected, for at most `limit`. A failed attempt (a connect slower
/// than `redis.command_timeout_ms` on a busy machine, say) is not the end: the client keeps
/// reconnecting in the background, and this waits for the next attempt until `limit`.
pub async fn wait_connected(client: &Client, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if client.is_connected() {
            return true;
        }
        match tokio::time::timeout_at(deadline, client.wait_for_connect()).await {
            Ok(Ok(())) => return true,
            Ok(Err(err)) => tracing::debug!(%err, "Redis connection attempt failed; waiting for the next"),
            Err(_) => return false,
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deletes every key under `settings.key_prefix` (SCAN, not KEYS, so the server is not
/// blocked); returns how many. For tearing down a test run or a retired deployment prefix; an
/// empty prefix is refused, as it would mean every key.
pub async fn purge_prefix(settings: &RedisSettings) -> Result<u64, String> {
    if settings.key_prefix.is_empty() {
        return Err("refusing to purge an empty key prefix".to_owned());
    }
    // A teardown runs when the machine may be at its busiest (a test suite in parallel): be
    // patient, and try again rather than leave keys behind.
    let patient = RedisSettings { command_timeout_ms: settings.command_timeout_ms.max(10_000), ..settings.clone() };
    let mut last = String::new();
    for _ in 0..3 {
        match purge_once(&patient).await {
            Ok(deleted) => return Ok(deleted),
            Err(err) => last = err,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last)
}

async fn purge_once(settings: &RedisSettings) -> Result<u64, String> {
    use futures_util::TryStreamExt;
    let client = connect(settings)?;
    if !wait_connected(&client, Duration::from_secs(30)).await {
        return Err("Redis is not reachable".to_owned());
    }
    let pattern = format!("{}*", settings.key_prefix);
    let keys: Vec<Key> =
        client.scan_buffered(pattern, Some(500), None).try_collect().await.map_err(|err| err.to_string())?;
    let mut deleted = 0;
    for chunk in keys.chunks(500) {
        let removed: i64 = client.del(chunk.to_vec()).await.map_err(|err| err.to_string())?;
        deleted += removed as u64;
    }
    let _ = client.quit().await;
    Ok(deleted)
}
