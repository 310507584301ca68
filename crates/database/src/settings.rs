//! The database's settings (`[database]`, `HERALD_DATABASE_*`).

use runtime::{ConfigError, string_like};
use serde::{Deserialize, Serialize};

/// The relational database (`[database]`, `HERALD_DATABASE_*`): the user directory, the live
/// state when there is no Redis, and the push records unless `records.url` names another store.
/// Migrations run at start-up.
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
