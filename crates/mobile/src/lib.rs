//! The mobile half's tables (mobile-push-analysis.md): the devices users register
//! (`message_push_manage`), the push provider's configuration (`message_push_config`) and the
//! log of the rules that changed a device (`message_push_rule_log`), and the log of provider
//! send attempts (`message_push_log`) with what each does to its device. ingest-api's mobile routes
//! read and write them; the mobile-push-worker reads the devices and the configuration.
//!
//! One push id names one device, so it is one row: registering it again re-activates that row,
//! and registering it as another user moves the row to that user (a phone changed hands), with
//! the move written to the rule log.

mod cleanup;
mod config;
mod devices;
mod logs;

pub use cleanup::{DeviceRules, RULE_EXPIRED, RULE_FAILING, RULE_UNREGISTERED};
pub use config::{PROVIDER_URL, ProviderConfig, StoredProvider};
pub use devices::{Device, DevicePage, DeviceQuery, DeviceScope, Registered, Registration, RuleLog};
pub use logs::{LogPage, LogQuery, PushAttempt, PushLog};

use database::DbError;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

/// The mobile tables over the relational database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MobileStore {
    db: DatabaseConnection,
    health: database::Health,
}

impl MobileStore {
    /// The store on a pool already open (and migrated); checked every few seconds for
    /// `/readyz` until `shutdown`.
    pub fn on(db: DatabaseConnection, shutdown: CancellationToken) -> Self {
        Self { health: database::Health::watch(db.clone(), shutdown), db }
    }

    /// Whether the database answered the last check.
    pub fn is_ready(&self) -> bool {
        self.health.is_ready()
    }
}

/// Now, as Unix milliseconds.
pub fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn db_error(err: sea_orm::DbErr) -> DbError {
    DbError::from(err)
}
