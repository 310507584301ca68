//! ingest-api's settings: `[http]`, `[jwt]`, `[bus]`, `[log]`, `[time]`, `[redis]`, `[offline]`, `[limits]`,
//! `[presence]` and `[database]`.

use runtime::{
    BusSettings, ConfigError, DatabaseSettings, HttpSettings, JwtSettings, LimitSettings, LogSettings, OfflineSettings,
    PresenceSettings, RecordsSettings, RedisSettings, TimeSettings,
};
use serde::{Deserialize, Serialize};
use store::StoreSettings;

/// Everything ingest-api reads from its configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Listening address and body limit.
    pub http: HttpSettings,
    /// Token verification.
    pub jwt: JwtSettings,
    /// The message bus.
    pub bus: BusSettings,
    /// Log output.
    pub log: LogSettings,
    /// Time rendering.
    pub time: TimeSettings,
    /// Redis, for offline inboxes.
    pub redis: RedisSettings,
    /// Offline inbox limits.
    pub offline: OfflineSettings,
    /// Sending rate limits.
    pub limits: LimitSettings,
    /// Presence timing.
    pub presence: PresenceSettings,
    /// The relational database (the user directory).
    pub database: DatabaseSettings,
    /// Where push records are read from.
    pub records: RecordsSettings,
}

impl Settings {
    /// Rejects values the service cannot run with; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate()?;
        self.jwt.validate()?;
        self.bus.validate()?;
        self.redis.validate()?;
        self.offline.validate()?;
        self.limits.validate()?;
        self.presence.validate()?;
        self.database.validate()?;
        self.records.validate()?;
        self.time.format().map(|_| ())
    }

    /// The settings the shared stores open with.
    pub fn stores(&self) -> StoreSettings<'_> {
        StoreSettings { redis: &self.redis, offline: &self.offline, presence: &self.presence, database: &self.database }
    }
}
