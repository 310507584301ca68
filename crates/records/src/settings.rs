//! The records' settings (`[records]`, `HERALD_RECORDS_*`).

use database::DatabaseSettings;
use runtime::ConfigError;
use serde::{Deserialize, Serialize};

/// Where push records are kept: `records.url`, parsed once when the settings are read.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RecordsBackend {
    /// The relational database Herald already uses (`records.url` empty; `database.url`).
    Database,
    /// Another SQL database, at this `sqlite:`, `postgres://` or `mysql://` URL.
    Sql(String),
    /// MongoDB at this `mongodb://` or `mongodb+srv://` URL.
    Mongo(String),
}

impl TryFrom<String> for RecordsBackend {
    type Error = String;

    fn try_from(url: String) -> Result<Self, String> {
        const SQL: [&str; 5] = ["sqlite:", "postgres://", "postgresql://", "mysql://", "mariadb://"];
        if url.is_empty() {
            Ok(Self::Database)
        } else if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
            Ok(Self::Mongo(url))
        } else if SQL.iter().any(|scheme| url.starts_with(scheme)) {
            Ok(Self::Sql(url))
        } else {
            Err("must be empty (the database) or a mongodb://, sqlite:, postgres:// or mysql:// URL".to_owned())
        }
    }
}

impl std::str::FromStr for RecordsBackend {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        Self::try_from(url.to_owned())
    }
}

impl From<RecordsBackend> for String {
    fn from(backend: RecordsBackend) -> Self {
        match backend {
            RecordsBackend::Database => String::new(),
            RecordsBackend::Sql(url) | RecordsBackend::Mongo(url) => url,
        }
    }
}

/// The URL without its password, for logs and `Debug`.
impl std::fmt::Debug for RecordsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Database => f.write_str("the database"),
            Self::Sql(url) | Self::Mongo(url) => f.write_str(&runtime::redact_url(url)),
        }
    }
}

/// Push records (`[records]`, `HERALD_RECORDS_*`): where the record-writer writes them and the
/// records API reads them, and how it batches.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordsSettings {
    /// Empty: the relational database (`database.url`). A `mongodb://` or `mongodb+srv://` URL
    /// chooses MongoDB; a `sqlite:`, `postgres://` or `mysql://` URL a separate SQL database.
    pub url: RecordsBackend,
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
            url: RecordsBackend::Database,
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
        match &self.url {
            RecordsBackend::Database => Some(database.clone()),
            RecordsBackend::Sql(url) => {
                Some(DatabaseSettings { url: url.clone(), schema: String::new(), ..database.clone() })
            }
            RecordsBackend::Mongo(_) => None,
        }
    }
}
