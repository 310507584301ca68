//! Whether a pool answers: what `/readyz` asks of every store on the relational database.

use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the pool is asked.
const EVERY: Duration = Duration::from_secs(5);

/// Whether a pool answered its last check (every five seconds, until a shutdown). Cheap to
/// clone: the clones share the answer.
#[derive(Clone, Debug)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    /// Checks `db` every five seconds until `shutdown`; healthy until a check says otherwise.
    pub fn watch(db: DatabaseConnection, shutdown: CancellationToken) -> Self {
        let health = Self(Arc::new(AtomicBool::new(true)));
        let answer = health.0.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(EVERY);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = every.tick() => answer.store(db.ping().await.is_ok(), Ordering::Relaxed),
                }
            }
        });
        health
    }

    /// Whether the database answered the last check.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
