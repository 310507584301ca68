//! The stores a service process opens, once: the all-in-one binary hands the same set to
//! every service it runs, which the in-process twins need (they share nothing otherwise).

use crate::{AudienceStore, OfflineInbox, Presence, UserDirectory};
use runtime::{DatabaseSettings, OfflineSettings, PresenceSettings, RedisSettings};
use tokio_util::sync::CancellationToken;

/// Every shared store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Stores {
    /// Offline inboxes (Redis).
    pub inbox: OfflineInbox,
    /// Who each notice was for (Redis).
    pub audience: AudienceStore,
    /// Who is online where (Redis).
    pub presence: Presence,
    /// Known users (SQL).
    pub directory: UserDirectory,
}

/// What [`Stores::open`] reads.
#[derive(Clone, Copy, Debug)]
pub struct StoreSettings<'a> {
    /// Redis, or `memory`.
    pub redis: &'a RedisSettings,
    /// Inbox limits.
    pub offline: &'a OfflineSettings,
    /// Presence timing.
    pub presence: &'a PresenceSettings,
    /// The relational database.
    pub database: &'a DatabaseSettings,
}

impl Stores {
    /// Opens every store; the database is migrated. Background tasks stop at `shutdown`.
    pub async fn open(
        settings: StoreSettings<'_>,
        shutdown: CancellationToken,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self {
            inbox: OfflineInbox::start(settings.redis, settings.offline)?,
            audience: AudienceStore::start(settings.redis)?,
            presence: Presence::start(settings.redis, settings.presence)?,
            directory: UserDirectory::open(settings.database, shutdown).await?,
        })
    }
}
