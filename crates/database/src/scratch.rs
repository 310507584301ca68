//! Throw-away databases for tests (feature `test-util`): a unique SQLite file, PostgreSQL
//! schema or MariaDB database per test, dropped by [`ScratchDatabase::drop_now`]. The servers
//! come from `HERALD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and
//! `HERALD_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306`).

use crate::{DatabaseSettings, DbError};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend, Statement};

/// Which server a scratch database lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A file in the temporary directory.
    Sqlite,
    /// A schema in the test database.
    Postgres,
    /// A database on the MariaDB/MySQL server.
    MySql,
}

impl Backend {
    /// Every backend, for tests that run the same case on each.
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::MySql];
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct ScratchDatabase {
    /// Settings that open it.
    pub settings: DatabaseSettings,
    backend: Backend,
    name: String,
    server: String,
}

impl ScratchDatabase {
    /// Creates an empty database on `backend`.
    pub async fn create(backend: Backend) -> Result<Self, DbError> {
        let name = format!("herald_test_{}", uuid::Uuid::new_v4().simple());
        let (settings, server) = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                let url = format!("sqlite://{}?mode=rwc", path.display());
                (DatabaseSettings { url, ..DatabaseSettings::default() }, path.display().to_string())
            }
            Backend::Postgres => {
                let server = std::env::var("HERALD_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
                let settings = DatabaseSettings {
                    url: server.clone(),
                    schema: name.clone(),
                    max_connections: Some(4),
                    ..DatabaseSettings::default()
                };
                (settings, server)
            }
            Backend::MySql => {
                let server = std::env::var("HERALD_TEST_MYSQL_URL")
                    .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned())
                    .trim_end_matches('/')
                    .to_owned();
                execute(&server, DbBackend::MySql, &format!("CREATE DATABASE `{name}`")).await?;
                let settings = DatabaseSettings {
                    url: format!("{server}/{name}"),
                    max_connections: Some(4),
                    ..DatabaseSettings::default()
                };
                (settings, server)
            }
        };
        Ok(Self { settings, backend, name, server })
    }

    /// Opens it with only the first `steps` migrations applied, as a database written by an
    /// older Herald: what a test of a later migration starts from.
    pub async fn connect_at(&self, steps: u32) -> Result<sea_orm::DatabaseConnection, DbError> {
        crate::connect_migrated(&self.settings, Some(steps)).await
    }

    /// Removes the database and everything in it.
    pub async fn drop_now(self) -> Result<(), DbError> {
        match self.backend {
            Backend::Sqlite => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.server));
                }
                Ok(())
            }
            Backend::Postgres => {
                let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
                execute(&self.server, DbBackend::Postgres, &sql).await
            }
            Backend::MySql => {
                execute(&self.server, DbBackend::MySql, &format!("DROP DATABASE IF EXISTS `{}`", self.name)).await
            }
        }
    }
}

async fn execute(url: &str, backend: DbBackend, sql: &str) -> Result<(), DbError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(1).sqlx_logging(false);
    let db = Database::connect(options).await?;
    db.execute_raw(Statement::from_string(backend, sql.to_owned())).await?;
    db.close().await?;
    Ok(())
}
