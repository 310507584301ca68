//! The live state's settings: where it is kept (`[redis]`), the offline inboxes' limits
//! (`[offline]`) and presence timing (`[presence]`).

use runtime::{ConfigError, string_like};
use serde::{Deserialize, Serialize};

/// The value of `redis.url` that names the in-process twin.
const IN_PROCESS: &str = "memory";

/// Where live state (offline inboxes, audiences, idempotency keys, receipts, presence) is kept:
/// `redis.url`, parsed once when the settings are read.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StateBackend {
    /// Redis at this `redis://` or `rediss://` URL, or the primary a set of Sentinels names
    /// (`redis-sentinel://` or `rediss-sentinel://`, see [`RedisSettings::url`]): shared by
    /// every replica.
    Redis(String),
    /// The relational database (`redis.url` empty; the all-in-one's default): survives restarts,
    /// for one process (presence is kept in that process).
    Database,
    /// In the process (`redis.url = memory`): lost on restart, for tests.
    Memory,
}

impl TryFrom<String> for StateBackend {
    type Error = String;

    fn try_from(url: String) -> Result<Self, String> {
        if url.is_empty() {
            Ok(Self::Database)
        } else if url == IN_PROCESS {
            Ok(Self::Memory)
        } else if ["redis://", "rediss://", "redis-sentinel://", "rediss-sentinel://"]
            .iter()
            .any(|s| url.starts_with(s))
        {
            if url.contains("-sentinel://") && !url.contains("sentinelServiceName=") {
                return Err(
                    "a redis-sentinel:// URL must name the monitored primary: ?sentinelServiceName=<name>".to_owned()
                );
            }
            Ok(Self::Redis(url))
        } else {
            Err("must be a redis://, rediss://, redis-sentinel:// or rediss-sentinel:// URL, empty (state in the \
                 database) or `memory`"
                .to_owned())
        }
    }
}

impl std::str::FromStr for StateBackend {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        Self::try_from(url.to_owned())
    }
}

impl From<StateBackend> for String {
    fn from(backend: StateBackend) -> Self {
        match backend {
            StateBackend::Redis(url) => url,
            StateBackend::Database => String::new(),
            StateBackend::Memory => IN_PROCESS.to_owned(),
        }
    }
}

/// The URL without its password, for logs and `Debug`.
impl std::fmt::Debug for StateBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redis(url) => f.write_str(&runtime::redact_url(url)),
            Self::Database => f.write_str("the database"),
            Self::Memory => f.write_str(IN_PROCESS),
        }
    }
}

/// Redis (`[redis]`, `HERALD_REDIS_*`): offline inboxes, audiences, idempotency keys, receipts,
/// presence.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db`; or, behind Redis Sentinel,
    /// `redis-sentinel://[:password@]sentinel1:26379/db?sentinelServiceName=<primary>&node=sentinel2:26379`
    /// (each `node` another Sentinel; the password is the data nodes'), which follows the primary
    /// through a failover; empty to keep live state in the relational database instead (one
    /// process only); `memory` for the in-process twin (tests: lost on restart).
    pub url: StateBackend,
    /// Prepended to every key, so deployments and tests can share a server. Empty by default,
    /// which keeps the spec's key names (`offline_msg:{user_id}`).
    #[serde(deserialize_with = "string_like")]
    pub key_prefix: String,
    /// Milliseconds a command may take before it fails (including while reconnecting).
    pub command_timeout_ms: u64,
    /// Replicas that must have an offline copy before a notice is accepted (Redis `WAIT`): 0
    /// (the default) trusts the primary alone, whose asynchronous replication can lose the last
    /// writes in a failover; 1 or more makes a failover lose nothing accepted, at the price of
    /// refusing notices (503) while fewer replicas are in sync.
    pub wait_replicas: u8,
    /// Milliseconds to wait for those replicas before the notice is refused.
    pub wait_timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: StateBackend::Redis("redis://127.0.0.1:6379".to_owned()),
            key_prefix: String::new(),
            command_timeout_ms: 2000,
            wait_replicas: 0,
            wait_timeout_ms: 1000,
        }
    }
}

impl RedisSettings {
    /// Live state in this process's memory, every other setting at its default (tests).
    pub fn in_process() -> Self {
        Self { url: StateBackend::Memory, ..Self::default() }
    }

    /// Live state in the relational database (no Redis).
    pub fn database() -> Self {
        Self { url: StateBackend::Database, ..Self::default() }
    }

    /// Redis at `url`, every other setting at its default.
    pub fn redis(url: impl Into<String>) -> Self {
        Self { url: StateBackend::Redis(url.into()), ..Self::default() }
    }

    /// Where live state is kept, as `url` says.
    pub fn backend(&self) -> &StateBackend {
        &self.url
    }

    /// Rejects an unusable Redis configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.command_timeout_ms == 0 {
            return Err(ConfigError::invalid("redis.command_timeout_ms", "must be positive"));
        }
        if self.wait_replicas > 0 && (self.wait_timeout_ms == 0 || self.wait_timeout_ms >= self.command_timeout_ms) {
            return Err(ConfigError::invalid(
                "redis.wait_timeout_ms",
                "must be positive and below redis.command_timeout_ms when redis.wait_replicas is set",
            ));
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
