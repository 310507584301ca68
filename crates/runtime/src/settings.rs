//! Settings sections shared by the services. Each service composes the sections it needs into
//! its own settings struct; a section's keys are `<section>.<key>` in the TOML file and
//! `HERALD_<SECTION>_<KEY>` in the environment.

use crate::config::ConfigError;
use model::TimeFormat;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::net::SocketAddr;

/// The signing secret used when none is configured. Fine on a laptop, refused nowhere, and
/// warned about at start-up.
pub const DEVELOPMENT_JWT_SECRET: &str = "herald-development-secret-change-me";

/// Where and how the HTTP server listens (`[http]`, `HERALD_HTTP_*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Seconds in-flight requests get to finish at shutdown.
    pub shutdown_timeout_secs: u64,
    /// Proxies whose `X-Forwarded-For` is believed (a load balancer, an ingress controller);
    /// from anyone else the header is ignored and the peer address is the client's.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 0,
            max_body_bytes: 64 * 1024,
            shutdown_timeout_secs: 10,
            trusted_proxies: Vec::new(),
        }
    }
}

impl HttpSettings {
    /// Rejects values the server cannot run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::invalid("http.max_body_bytes", "must be at least 1024"));
        }
        Ok(())
    }
}

/// How tokens are verified (`[jwt]`, `HERALD_JWT_*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtSettings {
    /// The HS256 secret.
    #[serde(serialize_with = "serialize_secret", deserialize_with = "deserialize_secret")]
    pub secret: SecretString,
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// The required `iss` claim, if any.
    pub issuer: Option<String>,
    /// The required `aud` claim, if any.
    pub audience: Option<String>,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self { secret: SecretString::from(DEVELOPMENT_JWT_SECRET), leeway_secs: 30, issuer: None, audience: None }
    }
}

impl JwtSettings {
    /// Whether the development secret is in use.
    pub fn uses_development_secret(&self) -> bool {
        self.secret.expose_secret() == DEVELOPMENT_JWT_SECRET
    }

    /// Rejects secrets too short to be safe.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.secret.expose_secret().len() < 16 {
            return Err(ConfigError::invalid("jwt.secret", "must be at least 16 bytes"));
        }
        Ok(())
    }
}

fn deserialize_secret<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    string_like(d).map(SecretString::from)
}

/// Reads a string, also from the number or boolean that an environment value such as
/// `HERALD_JWT_SECRET=1234567890123456` is parsed into.
pub fn string_like<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
        Bool(bool),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Text(s) => s,
        Raw::Unsigned(n) => n.to_string(),
        Raw::Signed(n) => n.to_string(),
        Raw::Float(n) => n.to_string(),
        Raw::Bool(b) => b.to_string(),
    })
}

fn serialize_secret<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    // Only used to seed the configuration's defaults layer.
    s.serialize_str(secret.expose_secret())
}

/// Which message bus `bus.url` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusBackend {
    /// RabbitMQ (`amqp://` or `amqps://`).
    Amqp,
    /// The in-process bus (`memory`), for one process: the all-in-one.
    InProcess,
}

/// The message bus (`[bus]`, `HERALD_BUS_*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusSettings {
    /// `amqp://user:pass@host:port/vhost` for RabbitMQ, or `memory` for the in-process bus.
    pub url: String,
    /// Prefix of every exchange and queue name, so deployments and tests can share a broker.
    #[serde(deserialize_with = "string_like")]
    pub prefix: String,
    /// Milliseconds a publish may wait to be handed to the broker before it is refused
    /// (nothing was sent then).
    pub publish_timeout_ms: u64,
    /// Milliseconds a message handed to the broker may wait for its confirm. Past it the
    /// outcome is unknown (the API says so); a healthy broker confirms in milliseconds.
    pub confirm_timeout_ms: u64,
    /// Deliveries a consumer may hold unacknowledged.
    pub prefetch: u16,
    /// Normal-priority notices the ingress queue may hold before publishing is refused with
    /// QUEUE_FULL (spec 8.2); urgent notices bypass it. Fixed when the queue is first declared:
    /// changing it needs `<prefix>.ingress` deleted (or a broker policy).
    pub backlog: u32,
    /// Whether this process moves notices from the ingress queue to the notifications exchange.
    /// On in every ingest-api replica by default; they share the work.
    pub dispatch: bool,
    /// Milliseconds of the first reconnection delay; it doubles up to `reconnect_max_ms`.
    pub reconnect_min_ms: u64,
    /// The longest reconnection delay, in milliseconds.
    pub reconnect_max_ms: u64,
}

impl Default for BusSettings {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            prefix: "herald".to_owned(),
            publish_timeout_ms: 2000,
            confirm_timeout_ms: 30_000,
            prefetch: 256,
            backlog: 1000,
            dispatch: true,
            reconnect_min_ms: 100,
            reconnect_max_ms: 5000,
        }
    }
}

impl BusSettings {
    /// The bus `url` names (`validate` refuses anything else).
    pub fn backend(&self) -> BusBackend {
        if self.url == "memory" { BusBackend::InProcess } else { BusBackend::Amqp }
    }

    /// Rejects an unusable bus configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let in_process = self.backend() == BusBackend::InProcess;
        if !in_process && !self.url.starts_with("amqp://") && !self.url.starts_with("amqps://") {
            return Err(ConfigError::invalid("bus.url", "must be `memory` or an amqp:// or amqps:// URL"));
        }
        let prefix_ok = !self.prefix.is_empty()
            && self.prefix.len() <= 100
            && self.prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !prefix_ok {
            return Err(ConfigError::invalid("bus.prefix", "must be 1-100 characters of a-z, A-Z, 0-9, - _ ."));
        }
        if self.publish_timeout_ms == 0 || self.confirm_timeout_ms == 0 || self.prefetch == 0 || self.backlog == 0 {
            return Err(ConfigError::invalid(
                "bus.publish_timeout_ms",
                "timeouts, prefetch and backlog must be positive",
            ));
        }
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            return Err(ConfigError::invalid(
                "bus.reconnect_max_ms",
                "must be at least bus.reconnect_min_ms, which must be positive",
            ));
        }
        Ok(())
    }
}

/// Log output (`[log]`, `HERALD_LOG_*`); `RUST_LOG`, when set, overrides `level`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `info,ws_gateway=debug`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: LogFormat::Pretty, level: "info".to_owned() }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// How times are rendered (`[time]`, `HERALD_TIME_*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeSettings {
    /// The UTC offset of every rendered time, e.g. `+08:00`.
    pub utc_offset: String,
}

impl Default for TimeSettings {
    fn default() -> Self {
        Self { utc_offset: "+00:00".to_owned() }
    }
}

impl TimeSettings {
    /// The time format these settings describe.
    pub fn format(&self) -> Result<TimeFormat, ConfigError> {
        TimeFormat::parse_offset(&self.utc_offset)
            .map(TimeFormat::new)
            .map_err(|reason| ConfigError::invalid("time.utc_offset", reason))
    }
}

/// Where live state (offline inboxes, audiences, idempotency keys, receipts, presence) is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateBackend {
    /// Redis (`redis.url` is a `redis://` URL): shared by every replica.
    Redis,
    /// The relational database (`redis.url` empty; the all-in-one's default): survives restarts,
    /// for one process (presence is kept in that process).
    Database,
    /// In the process (`redis.url = memory`): lost on restart, for tests.
    Memory,
}

/// Redis (`[redis]`, `HERALD_REDIS_*`): offline inboxes, audiences, idempotency keys, receipts,
/// presence.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db`; empty to keep live state in the relational database instead (one
    /// process only); `memory` for the in-process twin (tests: lost on restart).
    pub url: String,
    /// Prepended to every key, so deployments and tests can share a server. Empty by default,
    /// which keeps the spec's key names (`offline_msg:{user_id}`).
    #[serde(deserialize_with = "string_like")]
    pub key_prefix: String,
    /// Milliseconds a command may take before it fails (including while reconnecting).
    pub command_timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self { url: "redis://127.0.0.1:6379".to_owned(), key_prefix: String::new(), command_timeout_ms: 2000 }
    }
}

impl RedisSettings {
    /// Where live state is kept, as `url` says.
    pub fn backend(&self) -> StateBackend {
        match self.url.as_str() {
            "" => StateBackend::Database,
            "memory" => StateBackend::Memory,
            _ => StateBackend::Redis,
        }
    }

    /// Rejects an unusable Redis configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ok = matches!(self.backend(), StateBackend::Database | StateBackend::Memory)
            || self.url.starts_with("redis://")
            || self.url.starts_with("rediss://");
        if !ok {
            return Err(ConfigError::invalid(
                "redis.url",
                "must be a redis:// or rediss:// URL, empty (state in the database) or `memory`",
            ));
        }
        if self.command_timeout_ms == 0 {
            return Err(ConfigError::invalid("redis.command_timeout_ms", "must be positive"));
        }
        Ok(())
    }
}

/// Offline inboxes (`[offline]`, `HERALD_OFFLINE_*`; spec 5 and 8.3).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OfflineSettings {
    /// Messages kept per user; the oldest are dropped first.
    pub max_per_user: usize,
    /// Seconds a message is kept.
    pub ttl_secs: u64,
}

impl Default for OfflineSettings {
    fn default() -> Self {
        Self { max_per_user: 100, ttl_secs: 7 * 24 * 3600 }
    }
}

impl OfflineSettings {
    /// Rejects an unusable inbox configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_per_user == 0 || self.ttl_secs == 0 {
            return Err(ConfigError::invalid("offline.max_per_user", "limits must be positive (offline.ttl_secs too)"));
        }
        Ok(())
    }
}

/// Rate limits on sending (`[limits]`, `HERALD_LIMITS_*`), enforced by each ingest-api replica.
/// Urgent notices are exempt (spec 8.2). A rate of 0 turns that limit off.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Notices per second one sender (token `sub`) may post, sustained.
    pub sender_per_second: u32,
    /// Notices one sender may post in a burst.
    pub sender_burst: u32,
    /// Notices per second one client IP may post, sustained.
    pub ip_per_second: u32,
    /// Notices one client IP may post in a burst.
    pub ip_burst: u32,
    /// Urgent notices (exempt from the rate limits and the backlog) one ingest-api replica
    /// carries at once; past it they are refused with QUEUE_FULL. Bounds the work and memory a
    /// burst of urgent notices to large audiences can take.
    pub urgent_in_flight: u32,
    /// Receipts per second one user may report over REST (mark-read, confirm), sustained; 0
    /// turns the limit off. On the WebSocket, frames are limited per connection (`ws.*`).
    pub receipts_per_second: u32,
    /// Receipts one user may report over REST in a burst.
    pub receipts_burst: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            sender_per_second: 50,
            sender_burst: 100,
            ip_per_second: 100,
            ip_burst: 200,
            urgent_in_flight: 64,
            receipts_per_second: 20,
            receipts_burst: 200,
        }
    }
}

impl LimitSettings {
    /// Rejects a burst smaller than its rate.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sender_per_second > 0 && self.sender_burst == 0 {
            return Err(ConfigError::invalid(
                "limits.sender_burst",
                "must be positive when limits.sender_per_second is",
            ));
        }
        if self.ip_per_second > 0 && self.ip_burst == 0 {
            return Err(ConfigError::invalid("limits.ip_burst", "must be positive when limits.ip_per_second is"));
        }
        if self.urgent_in_flight == 0 {
            return Err(ConfigError::invalid("limits.urgent_in_flight", "must be positive"));
        }
        if self.receipts_per_second > 0 && self.receipts_burst == 0 {
            return Err(ConfigError::invalid(
                "limits.receipts_burst",
                "must be positive when limits.receipts_per_second is",
            ));
        }
        Ok(())
    }
}

/// The relational database (`[database]`, `HERALD_DATABASE_*`): the user directory today, push
/// configuration and SQL push records with later issues. Migrations run at start-up.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path?mode=rwc`, `sqlite::memory:`, `postgres://...` or `mysql://...`
    /// (MySQL and MariaDB).
    pub url: String,
    /// PostgreSQL only: the schema Herald's tables live in, created if missing. Empty means the
    /// server's default search path (usually `public`).
    #[serde(deserialize_with = "string_like")]
    pub schema: String,
    /// Pool size (SQLite uses one connection unless this is set above 1).
    pub max_connections: u32,
    /// Milliseconds to wait for a connection from the pool or the server.
    pub connect_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://herald.db?mode=rwc".to_owned(),
            schema: String::new(),
            max_connections: 10,
            connect_timeout_ms: 5000,
        }
    }
}

impl DatabaseSettings {
    /// Rejects an unusable database configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let known = ["sqlite:", "postgres://", "postgresql://", "mysql://", "mariadb://"];
        if !known.iter().any(|scheme| self.url.starts_with(scheme)) {
            return Err(ConfigError::invalid(
                "database.url",
                "must be a sqlite:, postgres:// or mysql:// (also mariadb://) URL",
            ));
        }
        if !self.schema.is_empty() && !self.schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::invalid("database.schema", "may hold only letters, digits and `_`"));
        }
        if self.max_connections == 0 || self.connect_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be positive (database.connect_timeout_ms too)",
            ));
        }
        Ok(())
    }
}

/// Presence (`[presence]`, `HERALD_PRESENCE_*`): each gateway replica publishes which users it
/// holds connections for; the entry of a replica that stops refreshing it expires.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceSettings {
    /// Seconds between a replica's full refreshes of its presence entry.
    pub refresh_secs: u64,
    /// Seconds after its last refresh that a replica's entry expires (a replica killed without
    /// a clean shutdown stops counting then).
    pub ttl_secs: u64,
}

impl Default for PresenceSettings {
    fn default() -> Self {
        Self { refresh_secs: 10, ttl_secs: 30 }
    }
}

impl PresenceSettings {
    /// Rejects an expiry that a healthy replica would not beat.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.refresh_secs == 0 || self.ttl_secs <= self.refresh_secs {
            return Err(ConfigError::invalid(
                "presence.ttl_secs",
                "must be greater than presence.refresh_secs, which must be positive",
            ));
        }
        Ok(())
    }
}

/// Push records (`[records]`, `HERALD_RECORDS_*`): where the record-writer writes them and the
/// records API reads them, and how it batches.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordsSettings {
    /// Empty: the relational database (`database.url`). A `mongodb://` or `mongodb+srv://` URL
    /// chooses MongoDB; a `sqlite:`, `postgres://` or `mysql://` URL a separate SQL database.
    pub url: String,
    /// The most messages or events the record-writer writes in one batch.
    pub batch_size: usize,
    /// Milliseconds the record-writer waits to fill a batch once it has one message.
    pub linger_ms: u64,
    /// Days push records and receive records are kept (MongoDB TTL indexes; the janitor on SQL).
    pub retention_days: u32,
    /// Days notification logs are kept.
    pub log_retention_days: u32,
    /// Seconds between the janitor's retention passes.
    pub purge_interval_secs: u64,
}

impl Default for RecordsSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            batch_size: 200,
            linger_ms: 20,
            retention_days: 30,
            log_retention_days: 7,
            purge_interval_secs: 3600,
        }
    }
}

impl RecordsSettings {
    /// Rejects an unusable records configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let known =
            ["", "sqlite:", "postgres://", "postgresql://", "mysql://", "mariadb://", "mongodb://", "mongodb+srv://"];
        if !known
            .iter()
            .any(|scheme| if scheme.is_empty() { self.url.is_empty() } else { self.url.starts_with(scheme) })
        {
            return Err(ConfigError::invalid(
                "records.url",
                "must be empty (the database) or a mongodb://, sqlite:, postgres:// or mysql:// URL",
            ));
        }
        if self.batch_size == 0 || self.batch_size > 1000 {
            return Err(ConfigError::invalid("records.batch_size", "must be 1 to 1000"));
        }
        if !(1..=3650).contains(&self.retention_days) {
            return Err(ConfigError::invalid("records.retention_days", "must be 1 to 3650 days"));
        }
        if !(1..=3650).contains(&self.log_retention_days) {
            return Err(ConfigError::invalid("records.log_retention_days", "must be 1 to 3650 days"));
        }
        if self.purge_interval_secs == 0 {
            return Err(ConfigError::invalid("records.purge_interval_secs", "must be at least 1 second"));
        }
        Ok(())
    }

    /// The SQL database records live in, when they live in one: `database` unless `url` names
    /// another.
    pub fn sql_database(&self, database: &DatabaseSettings) -> Option<DatabaseSettings> {
        if self.url.is_empty() {
            Some(database.clone())
        } else if self.url.starts_with("mongodb") {
            None
        } else {
            Some(DatabaseSettings { url: self.url.clone(), schema: String::new(), ..database.clone() })
        }
    }
}
