//! The relational database (sea-orm): one connection pool per process, migrated at start-up,
//! on SQLite, PostgreSQL or MySQL/MariaDB (chosen by the URL scheme).

pub mod entity;
mod migration;
#[cfg(feature = "test-util")]
pub mod scratch;

use runtime::DatabaseSettings;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

pub use migration::Migrator;

/// The database could not be reached or migrated.
#[derive(Debug, thiserror::Error)]
#[error("the database is unavailable: {0}")]
pub struct DbError(pub String);

impl From<sea_orm::DbErr> for DbError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self(err.to_string())
    }
}

/// Connects to `settings.url`, creates `settings.schema` (PostgreSQL) if missing, and applies
/// every pending migration.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbError> {
    let url = settings.url.replacen("mariadb://", "mysql://", 1);
    let timeout = Duration::from_millis(settings.connect_timeout_ms);
    let mut options = ConnectOptions::new(url.clone());
    options.connect_timeout(timeout).acquire_timeout(timeout).sqlx_logging(false);
    // SQLite serialises writers anyway; in memory, every pooled connection would be its own
    // database. One connection unless the operator asks for more.
    if !url.starts_with("sqlite:") || settings.max_connections > 1 && !url.contains(":memory:") {
        options.max_connections(settings.max_connections);
    }
    if !settings.schema.is_empty() {
        if !url.starts_with("postgres") {
            return Err(DbError("database.schema applies to PostgreSQL only".to_owned()));
        }
        create_schema(&url, &settings.schema, timeout).await?;
        options.set_schema_search_path(settings.schema.clone());
    }
    let db = Database::connect(options).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

async fn create_schema(url: &str, schema: &str, timeout: Duration) -> Result<(), DbError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.connect_timeout(timeout).max_connections(1).sqlx_logging(false);
    let db = Database::connect(options).await?;
    // `schema` is validated to letters, digits and `_` (runtime::DatabaseSettings).
    db.execute_raw(Statement::from_string(DbBackend::Postgres, format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")))
        .await?;
    db.close().await?;
    Ok(())
}
