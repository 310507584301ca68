//! One way to open a Redis client for every store: reconnecting in the background with capped
//! backoff, and failing commands after `redis.command_timeout_ms` instead of queueing them.

use fred::prelude::*;
use runtime::RedisSettings;
use std::time::Duration;

/// A client for `settings.url`, already connecting; an invalid URL is an error.
pub fn connect(settings: &RedisSettings) -> Result<Client, String> {
    let config = Config::from_url(&settings.url).map_err(|err| err.to_string())?;
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

/// Waits until `client` is connected, for at most `limit`.
pub async fn wait_connected(client: &Client, limit: Duration) -> bool {
    tokio::time::timeout(limit, client.wait_for_connect()).await.is_ok_and(|r| r.is_ok())
}
