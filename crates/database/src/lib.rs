//! The relational database (sea-orm): one connection pool per process, migrated at start-up,
//! on SQLite, PostgreSQL or MySQL/MariaDB (chosen by the URL scheme). Every table Herald keeps
//! there is defined here ([`entity`]) and created by one sequence of migrations ([`Migrator`]),
//! whichever crate reads it: the user directory and the live state (`state`), the push records
//! (`records`).

pub mod entity;
mod health;
pub mod jobs;
mod migration;
#[cfg(feature = "test-util")]
pub mod scratch;
mod settings;

pub use health::Health;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;
pub use settings::DatabaseSettings;
use std::time::Duration;

pub use migration::Migrator;

/// Prepared statements each SQLite connection keeps (sqlx's default: 100).
const SQLITE_STATEMENT_CACHE: usize = 24;
/// The page cache of each SQLite connection, in KiB (SQLite's default: 2000).
const SQLITE_PAGE_CACHE_KIB: u32 = 512;

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
    connect_migrated(settings, None).await
}

/// [`connect`], applying only the first `steps` migrations when given (tests of a migration).
async fn connect_migrated(settings: &DatabaseSettings, steps: Option<u32>) -> Result<DatabaseConnection, DbError> {
    let url = settings.url.replacen("mariadb://", "mysql://", 1);
    if !settings.schema.is_empty() && !url.starts_with("postgres") {
        return Err(DbError("database.schema applies to PostgreSQL only".to_owned()));
    }
    let timeout = Duration::from_millis(settings.connect_timeout_ms);
    let options = |max_connections: u32| {
        let mut options = ConnectOptions::new(url.clone());
        options.connect_timeout(timeout).acquire_timeout(timeout).sqlx_logging(false);
        options.max_connections(max_connections);
        if !settings.schema.is_empty() {
            options.set_schema_search_path(settings.schema.clone());
        }
        // A SQLite file keeps a write-ahead log with `synchronous = NORMAL`: a commit is on disk
        // (in the log) when it returns, so a killed process loses nothing committed; only a
        // power cut or kernel crash can lose the last commits. Writers wait for the lock.
        // Each connection keeps its prepared statements in an LRU cache; batch inserts and `IN`
        // lists give one distinct statement per batch size, so sqlx's default of 100 filled the
        // all-in-one's heap by a megabyte and more over the first hour of a soak. A small cache
        // keeps the hot fixed-shape statements and re-prepares the rest (microseconds, beside a
        // commit's fsync). Each connection's page cache grows as the file does until it holds
        // `cache_size` worth of pages; at SQLite's 2000 KiB per connection the all-in-one's heap
        // still grew by 2.2 MiB over a half-hour soak, at 512 KiB by 0.8 MiB (docs/benchmarks.md).
        // The pages left out are a `pread` away in the kernel's page cache.
        options.map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .statement_cache_capacity(SQLITE_STATEMENT_CACHE)
                .pragma("cache_size", format!("-{SQLITE_PAGE_CACHE_KIB}"))
        });
        options
    };
    // An in-memory SQLite database lives in its one connection: migrate through the pool itself.
    if url.starts_with("sqlite:") && url.contains(":memory:") {
        let db = Database::connect(options(1)).await?;
        migrate(&db, &settings.schema, steps).await?;
        return Ok(db);
    }
    // Replicas start together: each migrates on one connection under a database-wide lock, so
    // exactly one applies what is pending and the others find it done.
    let migrator = Database::connect(options(1)).await?;
    let migrated = migrate(&migrator, &settings.schema, steps).await;
    migrator.close().await?;
    migrated?;
    Ok(Database::connect(options(settings.pool_size())).await?)
}

/// Applies pending migrations on `db` (one connection) under the backend's lock.
async fn migrate(db: &DatabaseConnection, schema: &str, steps: Option<u32>) -> Result<(), DbError> {
    let backend = db.get_database_backend();
    let (lock, unlock) = match backend {
        DbBackend::Postgres => ("SELECT pg_advisory_lock(7305208841)", "SELECT pg_advisory_unlock(7305208841)"),
        DbBackend::MySql => ("SELECT GET_LOCK('herald_migrations', 60)", "SELECT RELEASE_LOCK('herald_migrations')"),
        _ => ("", ""),
    };
    if !lock.is_empty() {
        db.execute_raw(Statement::from_string(backend, lock)).await?;
    }
    let mut result = Ok(());
    if !schema.is_empty() {
        // `schema` is validated to letters, digits and `_` (DatabaseSettings::validate).
        let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        result = db.execute_raw(Statement::from_string(backend, create)).await.map(|_| ());
    }
    if result.is_ok() {
        result = Migrator::up(db, steps).await;
    }
    if !unlock.is_empty() {
        db.execute_raw(Statement::from_string(backend, unlock)).await?;
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool_of(url: &str, max_connections: Option<u32>) -> u32 {
        let settings = DatabaseSettings { url: url.to_owned(), max_connections, ..DatabaseSettings::default() };
        let db = connect(&settings).await.unwrap();
        let size = db.get_sqlite_connection_pool().options().get_max_connections();
        db.close().await.unwrap();
        size
    }

    #[tokio::test]
    async fn a_sqlite_file_gets_a_small_pool_unless_told_otherwise() {
        let dir = std::env::temp_dir().join(format!("herald-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("pool.db").display());
        assert_eq!(pool_of(&url, None).await, 2);
        assert_eq!(pool_of(&url, Some(1)).await, 1);
        assert_eq!(pool_of(&url, Some(6)).await, 6);
        assert_eq!(pool_of("sqlite::memory:", Some(6)).await, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_sqlite_connection_keeps_few_prepared_statements_and_a_small_page_cache() {
        use sea_orm::sqlx::{Connection, Executor};
        let dir = std::env::temp_dir().join(format!("herald-stmt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("stmt.db").display());
        let db = connect(&DatabaseSettings { url, ..DatabaseSettings::default() }).await.unwrap();
        let mut conn = db.get_sqlite_connection_pool().acquire().await.unwrap();
        // Batches of every size from 1 to 100, each its own statement.
        for rows in 1..=100 {
            let values = vec!["(?)"; rows].join(", ");
            let sql = format!("SELECT * FROM (VALUES {values})");
            let mut query = sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(sql));
            for row in 0..rows {
                query = query.bind(row as i64);
            }
            conn.fetch_all(query).await.unwrap();
        }
        assert_eq!(conn.cached_statements_size(), SQLITE_STATEMENT_CACHE);
        let (cache_size,): (i64,) = sea_orm::sqlx::query_as("PRAGMA cache_size").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(cache_size, -i64::from(SQLITE_PAGE_CACHE_KIB));
        drop(conn);
        db.close().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_server_gets_ten_connections_unless_told_otherwise() {
        let settings = DatabaseSettings { url: "postgres://db/herald".into(), ..DatabaseSettings::default() };
        assert_eq!(settings.pool_size(), 10);
        assert_eq!(DatabaseSettings { max_connections: Some(3), ..settings.clone() }.pool_size(), 3);
        assert!(DatabaseSettings { max_connections: Some(0), ..settings }.validate().is_err());
    }
}
