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
    /// Pool size. Unset: 10 connections to a server, 2 to a SQLite file (SQLite takes one
    /// writer at a time, and every pooled connection keeps a page cache of its own); an
    /// in-memory SQLite database always has exactly one.
    pub max_connections: Option<u32>,
    /// Milliseconds to wait for a connection from the pool or the server.
    pub connect_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://herald.db?mode=rwc".to_owned(),
            schema: String::new(),
            max_connections: None,
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
        if self.max_connections == Some(0) || self.connect_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be positive (database.connect_timeout_ms too)",
            ));
        }
        Ok(())
    }

    /// The pool's size: `max_connections`, or the backend's default when it is unset.
    pub fn pool_size(&self) -> u32 {
        if self.url.starts_with("sqlite:") && self.url.contains(":memory:") {
            1
        } else if self.url.starts_with("sqlite:") {
            self.max_connections.unwrap_or(2)
        } else {
            self.max_connections.unwrap_or(10)
        }
    }
}
