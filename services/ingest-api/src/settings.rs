//! ingest-api's settings: `[http]`, `[jwt]`, `[bus]`, `[log]`, `[time]`.

use runtime::{
    BusSettings, ConfigError, HttpSettings, JwtSettings, LimitSettings, LogSettings, OfflineSettings, RedisSettings,
    TimeSettings,
};
use serde::{Deserialize, Serialize};

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
        self.time.format().map(|_| ())
    }
}
