//! Migration 4: the records' times as instants (Unix milliseconds) instead of rendered strings.

use super::{NotificationLogs, PushRecords, ReceiveRecords};
use sea_orm::{DbBackend, Statement};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_integer_null};

/// The records' times become instants (Unix milliseconds, `BIGINT`), rendered in
/// `time.utc_offset` only when the records API answers; until now they were kept as the
/// rendered `YYYY-MM-DD HH:MM:SS` strings. Each string column gives way to a `*_ts` column
/// (nullable for the receipt times, which are empty until the event happens), except where a
/// twin already held the same instant: `push_time` is `push_ts` (the message id's time) and a
/// log entry's `timestamp` is its `ts`.
///
/// Rendered strings carry no offset. They were all rendered at `time.utc_offset`, so that offset
/// is read back from the rows themselves: a log entry's `timestamp` and its `ts` (parsed from it
/// at that offset) differ by exactly the offset, a push record's `push_time` and `push_ts` by
/// the offset and a fraction of a second; the most common difference over the newest rows, to
/// the minute, is taken. The assumption, written down in ARCHITECTURE.md: every string was
/// rendered at the one configured offset, never changed while the data was kept.
///
/// So that the API answers byte for byte as before, an instant that was stored beside its
/// rendered string (`push_ts`, a receive record's `created_ts`) but from another reading of the
/// clock that fell in the next second is moved back into the rendered second (by at most the
/// time between the two readings, milliseconds). A string Herald did not render (not in the
/// spec's format) gives way to its row's other instants.
pub(super) struct RecordTimesAsInstants;

impl MigrationName for RecordTimesAsInstants {
    fn name(&self) -> &str {
        "m20261202_000004_record_times_as_instants"
    }
}

/// Rows whose strings and instants are compared to find the offset they were rendered at.
const OFFSET_SAMPLE: u32 = 500;

impl RecordTimesAsInstants {
    /// `column`, quoted for `backend` (`timestamp` is a keyword in places).
    fn quoted(backend: DbBackend, column: &str) -> String {
        match backend {
            DbBackend::MySql => format!("`{column}`"),
            _ => format!("\"{column}\""),
        }
    }

    /// SQL for the Unix seconds of `column`'s `YYYY-MM-DD HH:MM:SS` read as UTC; NULL for an
    /// empty string or anything else not in that format.
    fn utc_seconds(backend: DbBackend, column: &str) -> String {
        let c = Self::quoted(backend, column);
        match backend {
            DbBackend::Sqlite => format!(
                "(CASE WHEN {c} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]' \
                 THEN CAST(strftime('%s', {c}) AS INTEGER) END)"
            ),
            DbBackend::Postgres => format!(
                "(CASE WHEN {c} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}$' \
                 THEN CAST(EXTRACT(EPOCH FROM CAST({c} AS TIMESTAMP)) AS BIGINT) END)"
            ),
            _ => format!(
                "(CASE WHEN {c} REGEXP '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}$' \
                 THEN TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', STR_TO_DATE({c}, '%Y-%m-%d %H:%i:%s')) END)"
            ),
        }
    }

    /// SQL for the instant (Unix milliseconds) `column` was rendered from at `offset` seconds
    /// east of UTC, or NULL.
    fn instant(backend: DbBackend, column: &str, offset: i64) -> String {
        format!("(({} - ({offset})) * 1000)", Self::utc_seconds(backend, column))
    }

    /// SQL moving the instant `ts` into the second `rendered` names when it fell in the next
    /// (or the previous) one: two readings of the clock either side of a second's turn.
    fn into_rendered_second(backend: DbBackend, ts: &str, rendered: &str, offset: i64) -> String {
        let r = Self::instant(backend, rendered, offset);
        format!(
            "(CASE WHEN {r} IS NULL THEN {ts} \
             WHEN {ts} < {r} AND {r} - {ts} < 1000 THEN {r} \
             WHEN {ts} >= {r} + 1000 AND {ts} < {r} + 2000 THEN {r} + 999 \
             ELSE {ts} END)"
        )
    }

    /// The offset (seconds east of UTC) the stored strings were rendered at: the most common
    /// difference, to the minute, between a string and the instant stored beside it.
    async fn rendered_offset(manager: &SchemaManager<'_>) -> Result<i64, DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let mut votes: std::collections::HashMap<i64, u32> = std::collections::HashMap::new();
        for (table, text, ts) in [
            ("notification_logs", "timestamp", "ts"),
            ("push_records", "push_time", "push_ts"),
            ("receive_records", "created_at", "created_ts"),
        ] {
            let sql = format!(
                "SELECT {} AS rendered, {ts} AS instant FROM {table} ORDER BY id DESC LIMIT {OFFSET_SAMPLE}",
                Self::quoted(backend, text)
            );
            for row in db.query_all_raw(Statement::from_string(backend, sql)).await? {
                let (rendered, instant): (String, i64) = (row.try_get("", "rendered")?, row.try_get("", "instant")?);
                let Ok(local) = model::TimeFormat::default().parse(&rendered) else { continue };
                let difference = local.unix_timestamp() - instant.div_euclid(1000);
                let minutes = (difference as f64 / 60.0).round() as i64;
                // Offsets in use lie within a day of UTC; anything else is not a rendering.
                if minutes.abs() < 24 * 60 {
                    *votes.entry(minutes * 60).or_default() += 1;
                }
            }
        }
        Ok(votes.into_iter().max_by_key(|(offset, n)| (*n, -offset.abs())).map_or(0, |(offset, _)| offset))
    }

    async fn add(manager: &SchemaManager<'_>, table: impl IntoIden, mut column: ColumnDef) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(table).add_column(&mut column).to_owned()).await
    }

    async fn drop(manager: &SchemaManager<'_>, table: impl IntoIden, columns: &[DynIden]) -> Result<(), DbErr> {
        let table = table.into_iden();
        // One column per statement: SQLite alters one thing at a time.
        for column in columns {
            manager.alter_table(Table::alter().table(table.clone()).drop_column(column.clone()).to_owned()).await?;
        }
        Ok(())
    }

    async fn run(manager: &SchemaManager<'_>, sql: String) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager.get_connection().execute_raw(Statement::from_string(backend, sql)).await.map(|_| ())
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RecordTimesAsInstants {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let offset = Self::rendered_offset(manager).await?;
        let at = |column: &str| Self::instant(backend, column, offset);

        Self::add(manager, PushRecords::Table, big_integer(PushRecords::CreatedTs).default(0).to_owned()).await?;
        Self::add(manager, PushRecords::Table, big_integer(PushRecords::UpdatedTs).default(0).to_owned()).await?;
        Self::run(
            manager,
            format!(
                "UPDATE push_records SET created_ts = COALESCE({created}, push_ts), \
                 updated_ts = COALESCE({updated}, {created}, push_ts), push_ts = {push}",
                created = at("created_at"),
                updated = at("updated_at"),
                push = Self::into_rendered_second(backend, "push_ts", "push_time", offset),
            ),
        )
        .await?;
        Self::drop(
            manager,
            PushRecords::Table,
            &[
                PushRecords::PushTime.into_iden(),
                PushRecords::CreatedAt.into_iden(),
                PushRecords::UpdatedAt.into_iden(),
            ],
        )
        .await?;

        for column in [ReceiveRecords::ReceivedTs, ReceiveRecords::ReadTs, ReceiveRecords::ConfirmedTs] {
            Self::add(manager, ReceiveRecords::Table, big_integer_null(column).to_owned()).await?;
        }
        Self::add(manager, ReceiveRecords::Table, big_integer(ReceiveRecords::UpdatedTs).default(0).to_owned()).await?;
        Self::run(
            manager,
            format!(
                "UPDATE receive_records SET received_ts = {received}, read_ts = {read}, confirmed_ts = {confirmed}, \
                 updated_ts = COALESCE({updated}, created_ts), created_ts = {created}",
                received = at("received_at"),
                read = at("read_at"),
                confirmed = at("confirmed_at"),
                updated = at("updated_at"),
                created = Self::into_rendered_second(backend, "created_ts", "created_at", offset),
            ),
        )
        .await?;
        Self::drop(
            manager,
            ReceiveRecords::Table,
            &[
                ReceiveRecords::ReceivedAt.into_iden(),
                ReceiveRecords::ReadAt.into_iden(),
                ReceiveRecords::ConfirmedAt.into_iden(),
                ReceiveRecords::CreatedAt.into_iden(),
                ReceiveRecords::UpdatedAt.into_iden(),
            ],
        )
        .await?;

        Self::add(manager, NotificationLogs::Table, big_integer(NotificationLogs::CreatedTs).default(0).to_owned())
            .await?;
        Self::run(
            manager,
            format!(
                "UPDATE notification_logs SET created_ts = COALESCE({created}, ts), ts = {ts}",
                created = at("created_at"),
                ts = Self::into_rendered_second(backend, "ts", "timestamp", offset),
            ),
        )
        .await?;
        Self::drop(
            manager,
            NotificationLogs::Table,
            &[NotificationLogs::Timestamp.into_iden(), NotificationLogs::CreatedAt.into_iden()],
        )
        .await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the records' times cannot go back to strings: the offset is not known here".to_owned()))
    }
}
