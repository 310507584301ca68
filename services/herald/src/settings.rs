//! Every setting Herald reads, in one configuration, each section owned by the crate it
//! configures. `[http]`, `[jwt]`, `[log]`, `[time]`: `runtime` (shared by every role). `[bus]`:
//! `bus`. `[redis]`, `[offline]`, `[presence]`: `state`. `[database]`: `database`. `[records]`:
//! `records`. `[limits]`: `ingest-api`. `[ws]`: `ws-gateway`. `[mobile]`: `mobile-push-worker`.
//! `[janitor]`: `janitor`.
//!
//! Keys are `<section>.<key>` in the TOML file and `HERALD_<SECTION>_<KEY>` in the environment,
//! the same for every role: one ConfigMap serves every Deployment.

use crate::Role;
use bus::BusSettings;
use database::DatabaseSettings;
use ingest_api::LimitSettings;
use janitor::JanitorSettings;
use mobile_push_worker::MobileSettings;
use records::RecordsSettings;
use runtime::{ConfigError, ConfigLoader, HttpSettings, JwtSettings, LogSettings, TimeSettings};
use serde::{Deserialize, Serialize};
use state::{OfflineSettings, PresenceSettings, RedisSettings};
use std::path::Path;
use ws_gateway::WsSettings;

/// Everything a Herald process reads from its configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where the HTTP server listens, and its limits (every role serves `/healthz`, `/readyz`).
    pub http: HttpSettings,
    /// How tokens are verified.
    pub jwt: JwtSettings,
    /// Log output.
    pub log: LogSettings,
    /// How times are rendered.
    pub time: TimeSettings,
    /// The message bus.
    pub bus: BusSettings,
    /// Where live state is kept (Redis, the database or in process).
    pub redis: RedisSettings,
    /// Offline inbox limits.
    pub offline: OfflineSettings,
    /// Presence timing.
    pub presence: PresenceSettings,
    /// The relational database.
    pub database: DatabaseSettings,
    /// Push records: where, batching, retention.
    pub records: RecordsSettings,
    /// Sending rate limits (ingest-api).
    pub limits: LimitSettings,
    /// WebSocket behaviour (ws-gateway).
    pub ws: WsSettings,
    /// Provider sends: concurrency, retries, timeouts (mobile-push-worker).
    pub mobile: MobileSettings,
    /// Scheduled jobs: when, the device rules' thresholds, the lease (janitor).
    pub janitor: JanitorSettings,
}

/// Which defaults a process starts from, below the file and the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defaults<'a> {
    /// The all-in-one: the in-process bus and live state in the database (SQLite by default), so
    /// that it runs with no servers.
    Embedded,
    /// Roles of the distributed deployment: RabbitMQ and Redis on this machine; a process that
    /// runs one role listens on that role's own port by default.
    Roles(&'a [Role]),
}

impl Settings {
    /// Loads the settings from `defaults`, then `config_file` (or the file `HERALD_CONFIG`
    /// names), then the `HERALD_*` environment, and validates them.
    pub fn load(config_file: Option<&Path>, defaults: Defaults<'_>) -> Result<Self, ConfigError> {
        let mut loader = ConfigLoader::new();
        match defaults {
            Defaults::Embedded => loader = loader.default_value("bus.url", "memory").default_value("redis.url", ""),
            Defaults::Roles([role]) => {
                loader = loader.default_value("http.addr", &format!("127.0.0.1:{}", role.port()))
            }
            Defaults::Roles(_) => {}
        }
        if let Some(path) = config_file {
            loader = loader.file(path);
        }
        let settings: Self = loader.load()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Rejects values Herald cannot run with; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate()?;
        self.jwt.validate()?;
        self.time.format()?;
        self.bus.validate()?;
        self.redis.validate()?;
        self.offline.validate()?;
        self.presence.validate()?;
        self.database.validate()?;
        self.records.validate()?;
        self.limits.validate()?;
        self.mobile.validate()?;
        self.janitor.validate()?;
        self.ws.validate()
    }
}
