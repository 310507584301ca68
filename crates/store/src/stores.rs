//! The stores a service process opens, once: the all-in-one binary hands the same set to
//! every service it runs, which the in-process twins and the database-backed state need.

use crate::{AudienceStore, IdempotencyStore, LiveState, OfflineInbox, Presence, ReceiptLedger, UserDirectory};
use runtime::{DatabaseSettings, OfflineSettings, PresenceSettings, RedisSettings, StateBackend};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

/// Every shared store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Stores {
    /// Offline inboxes.
    pub inbox: OfflineInbox,
    /// Who each notice was for.
    pub audience: AudienceStore,
    /// Idempotency keys of the notice API.
    pub idempotency: IdempotencyStore,
    /// Receipts already recorded.
    pub receipts: ReceiptLedger,
    /// Who is online where.
    pub presence: Presence,
    /// Known users (SQL).
    pub directory: UserDirectory,
    /// The live state, when it is kept in the database (no Redis): also the in-process bus's
    /// journal.
    pub live: Option<LiveState>,
    db: DatabaseConnection,
}

/// What [`Stores::open`] reads.
#[derive(Clone, Copy, Debug)]
pub struct StoreSettings<'a> {
    /// Redis, empty (the database) or `memory`.
    pub redis: &'a RedisSettings,
    /// Inbox limits.
    pub offline: &'a OfflineSettings,
    /// Presence timing.
    pub presence: &'a PresenceSettings,
    /// The relational database.
    pub database: &'a DatabaseSettings,
}

impl Stores {
    /// Opens every store over one database pool (migrated first). Background tasks stop at
    /// `shutdown`.
    pub async fn open(
        settings: StoreSettings<'_>,
        shutdown: CancellationToken,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let db = crate::sql::connect(settings.database).await?;
        let directory = UserDirectory::on(db.clone(), shutdown.clone());
        let stores = match settings.redis.backend() {
            StateBackend::Database => {
                let live = LiveState::new(db.clone(), settings.offline, shutdown);
                Self {
                    inbox: OfflineInbox::Sql(live.clone()),
                    audience: AudienceStore::Sql(live.clone()),
                    idempotency: IdempotencyStore::Sql(live.clone()),
                    receipts: ReceiptLedger::Sql(live.clone()),
                    presence: Presence::start(settings.redis, settings.presence)?,
                    directory,
                    live: Some(live),
                    db,
                }
            }
            StateBackend::Redis | StateBackend::Memory => Self {
                inbox: OfflineInbox::start(settings.redis, settings.offline)?,
                audience: AudienceStore::start(settings.redis)?,
                idempotency: IdempotencyStore::start(settings.redis)?,
                receipts: ReceiptLedger::start(settings.redis)?,
                presence: Presence::start(settings.redis, settings.presence)?,
                directory,
                live: None,
                db,
            },
        };
        Ok(stores)
    }

    /// The database pool the stores share (the all-in-one's records store uses it too, so that
    /// SQLite has one writer).
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Where live state is kept, for the start-up log.
    pub fn describe(&self) -> &'static str {
        match (&self.inbox, &self.live) {
            (_, Some(_)) => "the database (survives restarts)",
            (OfflineInbox::Redis(_), None) => "Redis",
            _ => "this process's memory (lost on restart: for tests only)",
        }
    }
}
