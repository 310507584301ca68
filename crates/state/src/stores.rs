//! The stores a process opens, once, and hands to every component it runs: the in-process twins
//! and the database-backed state need them shared.

use crate::settings::{OfflineSettings, PresenceSettings, RedisSettings, StateBackend};
use crate::{AudienceStore, IdempotencyStore, LiveState, OfflineInbox, Presence, ReceiptLedger, UserDirectory};
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
    command_budget: std::time::Duration,
}

/// What [`Stores::on`] reads.
#[derive(Clone, Copy, Debug)]
pub struct StoreSettings<'a> {
    /// Redis, empty (the database) or `memory`.
    pub redis: &'a RedisSettings,
    /// Inbox limits.
    pub offline: &'a OfflineSettings,
    /// Presence timing.
    pub presence: &'a PresenceSettings,
    /// The longest a request may wait for a connection of the database's pool.
    pub database_wait: std::time::Duration,
}

impl Stores {
    /// Opens every store, over `db` (a pool of `settings.database`, migrated) where they are kept
    /// in the database. Background tasks stop at `shutdown`.
    pub fn on(
        db: DatabaseConnection,
        settings: StoreSettings<'_>,
        shutdown: CancellationToken,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        // A request may wait on a few commands, and a database connection, before it answers.
        let command_budget =
            std::time::Duration::from_millis(3 * settings.redis.command_timeout_ms) + settings.database_wait;
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
                    command_budget,
                }
            }
            StateBackend::Redis(_) | StateBackend::Memory => Self {
                inbox: OfflineInbox::start(settings.redis, settings.offline)?,
                audience: AudienceStore::start(settings.redis)?,
                idempotency: IdempotencyStore::start(settings.redis)?,
                receipts: ReceiptLedger::start(settings.redis)?,
                presence: Presence::start(settings.redis, settings.presence)?,
                directory,
                live: None,
                db,
                command_budget,
            },
        };
        Ok(stores)
    }

    /// The database pool the stores share (the all-in-one's records store uses it too, so that
    /// SQLite has one writer).
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The longest the stores may take over what one request asks of them (a few commands and a
    /// database connection), for request deadlines.
    pub fn command_budget(&self) -> std::time::Duration {
        self.command_budget
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
