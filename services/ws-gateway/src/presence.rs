//! Publishes this replica's users to presence: changes as they happen (those of a moment
//! gathered into one update), a full refresh every `presence.refresh_secs`, and a withdrawal
//! on a clean shutdown.

use crate::hub::Hub;
use state::Presence;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long the reporter gathers connection changes before it publishes them: connecting
/// thousands of clients is a few updates, not thousands.
const GATHER: Duration = Duration::from_millis(50);

/// Runs until `shutdown`, then withdraws the replica.
pub async fn run(hub: Arc<Hub>, presence: Presence, replica: Arc<str>, refresh: Duration, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(refresh);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = every.tick() => {
                if let Err(err) = presence.refresh(&replica, &hub.user_counts()).await {
                    tracing::warn!(error = %err, "presence not refreshed");
                }
            }
            changed = hub.changed_users(GATHER) => {
                if let Err(err) = presence.update(&replica, &changed).await {
                    // The next refresh publishes the whole state again.
                    tracing::warn!(error = %err, users = changed.len(), "presence change not published");
                }
            }
        }
    }
    if let Err(err) = presence.withdraw(&replica).await {
        tracing::warn!(error = %err, "presence not withdrawn; it expires by itself");
    }
}
