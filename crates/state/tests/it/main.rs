//! Store tests. Redis-backed stores run against the real Redis at `HERALD_TEST_REDIS_URL`
//! (default: the local server) under a unique key prefix, and the same cases against the
//! database-backed live state and the in-process twin; the SQL stores run on a scratch SQLite
//! file, PostgreSQL schema and MariaDB database each (`database::scratch`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audience;
mod directory;
mod idempotency;
mod inbox;
mod live;
mod presence;
mod receipts;
