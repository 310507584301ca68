//! Migrations, in code, applied at start-up by every service that opens the database. Each is
//! written once and never edited: a change is a new migration, with a new name
//! (`m<date>_<sequence>_<what>`; the name is what `herald_migrations` records as applied).

use sea_orm::{DbBackend, Statement};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, date_time, date_time_null, integer, small_integer, string_len,
    string_len_null, text, text_null,
};

/// Herald's migrations, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateUserDirectory),
            Box::new(CreatePushRecords),
            Box::new(CreateLiveState),
            Box::new(RecordTimesAsInstants),
        ]
    }

    fn migration_table_name() -> DynIden {
        "herald_migrations".into_iden()
    }
}

#[derive(DeriveIden)]
enum HeraldUsers {
    Table,
    UserId,
    Name,
    Role,
    TenantId,
    Groups,
    CreatedAt,
    UpdatedAt,
    LastSeenAt,
}

/// The user directory: who Herald knows, so `admin` and offline users are reachable.
struct CreateUserDirectory;

impl MigrationName for CreateUserDirectory {
    fn name(&self) -> &str {
        "m20261123_000001_create_user_directory"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateUserDirectory {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(HeraldUsers::Table)
                    .if_not_exists()
                    .col(big_integer(HeraldUsers::UserId).primary_key())
                    .col(string_len(HeraldUsers::Name, 128))
                    .col(string_len(HeraldUsers::Role, 16))
                    .col(string_len_null(HeraldUsers::TenantId, 64))
                    .col(text(HeraldUsers::Groups))
                    .col(date_time(HeraldUsers::CreatedAt))
                    .col(date_time(HeraldUsers::UpdatedAt))
                    .col(date_time_null(HeraldUsers::LastSeenAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_herald_users_role")
                    .table(HeraldUsers::Table)
                    .col(HeraldUsers::Role)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(HeraldUsers::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum PushRecords {
    Table,
    Id,
    MessageId,
    Content,
    MessageType,
    Target,
    TargetUserIds,
    RecipientsCount,
    Status,
    Success,
    Error,
    ErrorCode,
    PushTime,
    PushTs,
    CreatedAt,
    CreatedTs,
    UpdatedAt,
    UpdatedTs,
    SenderId,
    SenderName,
    DeliveredCount,
    FailedCount,
    TotalCount,
    Priority,
    NeedConfirm,
    ExtraData,
}

#[derive(DeriveIden)]
enum ReceiveRecords {
    Table,
    Id,
    MessageId,
    UserId,
    Username,
    UserRole,
    IsOnline,
    IsReceived,
    ReceivedAt,
    ReceivedTs,
    IsRead,
    ReadAt,
    ReadTs,
    IsConfirmed,
    ConfirmedAt,
    ConfirmedTs,
    DeviceType,
    Platform,
    Browser,
    ClientIp,
    UserAgent,
    ConnectionId,
    PushChannel,
    DeliveryStatus,
    RetryCount,
    ErrorMessage,
    CreatedAt,
    UpdatedAt,
    UpdatedTs,
    CreatedTs,
}

#[derive(DeriveIden)]
enum NotificationLogs {
    Table,
    Id,
    EventId,
    MessageId,
    UserId,
    Username,
    EventType,
    Status,
    Timestamp,
    Ts,
    CreatedAt,
    CreatedTs,
    Error,
    DeviceInfo,
    ClientIp,
    UserAgent,
}

/// Push records (spec 4.1), receive records (4.2) and notification logs (4.3). Times are kept
/// as the spec's strings for display and as Unix milliseconds (`*_ts`) for ordering, filters and
/// retention.
struct CreatePushRecords;

impl MigrationName for CreatePushRecords {
    fn name(&self) -> &str {
        "m20261124_000002_create_push_records"
    }
}

fn index(name: &str, table: impl IntoIden, columns: &[DynIden], unique: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table).if_not_exists();
    for column in columns {
        index.col(column.clone());
    }
    if unique {
        index.unique();
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePushRecords {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PushRecords::Table)
                    .if_not_exists()
                    .col(big_pk_auto(PushRecords::Id))
                    .col(string_len(PushRecords::MessageId, 40))
                    .col(text(PushRecords::Content))
                    .col(string_len(PushRecords::MessageType, 64))
                    .col(string_len(PushRecords::Target, 16))
                    .col(text(PushRecords::TargetUserIds))
                    .col(string_len(PushRecords::RecipientsCount, 32))
                    .col(string_len(PushRecords::Status, 16))
                    .col(boolean(PushRecords::Success))
                    .col(text(PushRecords::Error))
                    .col(string_len(PushRecords::ErrorCode, 32))
                    .col(string_len(PushRecords::PushTime, 19))
                    .col(big_integer(PushRecords::PushTs))
                    .col(string_len(PushRecords::CreatedAt, 19))
                    .col(string_len(PushRecords::UpdatedAt, 19))
                    .col(big_integer(PushRecords::SenderId))
                    .col(string_len(PushRecords::SenderName, 128))
                    .col(big_integer(PushRecords::DeliveredCount))
                    .col(big_integer(PushRecords::FailedCount))
                    .col(big_integer(PushRecords::TotalCount))
                    .col(small_integer(PushRecords::Priority))
                    .col(boolean(PushRecords::NeedConfirm))
                    .col(text_null(PushRecords::ExtraData))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            ("idx_push_records_message_id", vec![PushRecords::MessageId.into_iden()], true),
            ("idx_push_records_push_ts", vec![PushRecords::PushTs.into_iden(), PushRecords::Id.into_iden()], false),
            ("idx_push_records_sender_id", vec![PushRecords::SenderId.into_iden()], false),
        ] {
            manager.create_index(index(name, PushRecords::Table, &columns, unique)).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ReceiveRecords::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ReceiveRecords::Id))
                    .col(string_len(ReceiveRecords::MessageId, 40))
                    .col(big_integer(ReceiveRecords::UserId))
                    .col(string_len(ReceiveRecords::Username, 128))
                    .col(string_len(ReceiveRecords::UserRole, 16))
                    .col(boolean(ReceiveRecords::IsOnline))
                    .col(boolean(ReceiveRecords::IsReceived))
                    .col(string_len(ReceiveRecords::ReceivedAt, 19))
                    .col(boolean(ReceiveRecords::IsRead))
                    .col(string_len(ReceiveRecords::ReadAt, 19))
                    .col(boolean(ReceiveRecords::IsConfirmed))
                    .col(string_len(ReceiveRecords::ConfirmedAt, 19))
                    .col(string_len(ReceiveRecords::DeviceType, 16))
                    .col(string_len(ReceiveRecords::Platform, 32))
                    .col(string_len(ReceiveRecords::Browser, 64))
                    .col(string_len(ReceiveRecords::ClientIp, 64))
                    .col(text(ReceiveRecords::UserAgent))
                    .col(string_len(ReceiveRecords::ConnectionId, 64))
                    .col(string_len(ReceiveRecords::PushChannel, 16))
                    .col(string_len(ReceiveRecords::DeliveryStatus, 16))
                    .col(integer(ReceiveRecords::RetryCount))
                    .col(text(ReceiveRecords::ErrorMessage))
                    .col(string_len(ReceiveRecords::CreatedAt, 19))
                    .col(string_len(ReceiveRecords::UpdatedAt, 19))
                    .col(big_integer(ReceiveRecords::CreatedTs))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            (
                "idx_receive_records_message_user",
                vec![ReceiveRecords::MessageId.into_iden(), ReceiveRecords::UserId.into_iden()],
                true,
            ),
            ("idx_receive_records_user_id", vec![ReceiveRecords::UserId.into_iden()], false),
            ("idx_receive_records_created_ts", vec![ReceiveRecords::CreatedTs.into_iden()], false),
        ] {
            manager.create_index(index(name, ReceiveRecords::Table, &columns, unique)).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(NotificationLogs::Table)
                    .if_not_exists()
                    .col(big_pk_auto(NotificationLogs::Id))
                    .col(string_len(NotificationLogs::EventId, 40))
                    .col(string_len(NotificationLogs::MessageId, 40))
                    .col(big_integer(NotificationLogs::UserId))
                    .col(string_len(NotificationLogs::Username, 128))
                    .col(string_len(NotificationLogs::EventType, 16))
                    .col(string_len(NotificationLogs::Status, 16))
                    .col(string_len(NotificationLogs::Timestamp, 19))
                    .col(big_integer(NotificationLogs::Ts))
                    .col(string_len(NotificationLogs::CreatedAt, 19))
                    .col(text(NotificationLogs::Error))
                    .col(text_null(NotificationLogs::DeviceInfo))
                    .col(string_len(NotificationLogs::ClientIp, 64))
                    .col(text(NotificationLogs::UserAgent))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            ("idx_notification_logs_event_id", vec![NotificationLogs::EventId.into_iden()], true),
            ("idx_notification_logs_message_id", vec![NotificationLogs::MessageId.into_iden()], false),
            ("idx_notification_logs_user_id", vec![NotificationLogs::UserId.into_iden()], false),
            ("idx_notification_logs_ts", vec![NotificationLogs::Ts.into_iden()], false),
        ] {
            manager.create_index(index(name, NotificationLogs::Table, &columns, unique)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in
            [NotificationLogs::Table.into_iden(), ReceiveRecords::Table.into_iden(), PushRecords::Table.into_iden()]
        {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum HeraldInbox {
    Table,
    UserId,
    MessageId,
    Score,
    Entry,
}

#[derive(DeriveIden)]
enum HeraldInboxDropped {
    Table,
    UserId,
    Dropped,
}

#[derive(DeriveIden)]
enum HeraldAudiences {
    Table,
    MessageId,
    Audience,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum HeraldIdempotency {
    Table,
    Scope,
    IdemKey,
    Value,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum HeraldReceipts {
    Table,
    MessageId,
    UserId,
    Event,
    Device,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum HeraldBusJournal {
    Table,
    Id,
    Exchange,
    RoutingKey,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum HeraldDeadLetters {
    Table,
    Id,
    Queue,
    RoutingKey,
    Payload,
    Reason,
    CreatedAt,
}

/// Live state kept in the database when there is no Redis (the all-in-one): offline inboxes and
/// their dropped counts, notice audiences, idempotency keys, receipts already recorded, and the
/// in-process bus's journal and dead letters. Expiry times are Unix milliseconds.
struct CreateLiveState;

impl MigrationName for CreateLiveState {
    fn name(&self) -> &str {
        "m20261201_000003_create_live_state"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateLiveState {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(HeraldInbox::Table)
                    .if_not_exists()
                    .col(big_integer(HeraldInbox::UserId))
                    .col(string_len(HeraldInbox::MessageId, 40))
                    .col(big_integer(HeraldInbox::Score))
                    .col(text(HeraldInbox::Entry))
                    .primary_key(Index::create().col(HeraldInbox::UserId).col(HeraldInbox::MessageId))
                    .to_owned(),
            )
            .await?;
        let by_score = vec![HeraldInbox::UserId.into_iden(), HeraldInbox::Score.into_iden()];
        manager.create_index(index("idx_herald_inbox_user_score", HeraldInbox::Table, &by_score, false)).await?;
        manager
            .create_table(
                Table::create()
                    .table(HeraldInboxDropped::Table)
                    .if_not_exists()
                    .col(big_integer(HeraldInboxDropped::UserId).primary_key())
                    .col(big_integer(HeraldInboxDropped::Dropped))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HeraldAudiences::Table)
                    .if_not_exists()
                    .col(string_len(HeraldAudiences::MessageId, 40).primary_key())
                    .col(text(HeraldAudiences::Audience))
                    .col(big_integer(HeraldAudiences::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        let expiry = vec![HeraldAudiences::ExpiresAt.into_iden()];
        manager.create_index(index("idx_herald_audiences_expires", HeraldAudiences::Table, &expiry, false)).await?;
        manager
            .create_table(
                Table::create()
                    .table(HeraldIdempotency::Table)
                    .if_not_exists()
                    .col(string_len(HeraldIdempotency::Scope, 64))
                    .col(string_len(HeraldIdempotency::IdemKey, 200))
                    .col(text(HeraldIdempotency::Value))
                    .col(big_integer(HeraldIdempotency::ExpiresAt))
                    .primary_key(Index::create().col(HeraldIdempotency::Scope).col(HeraldIdempotency::IdemKey))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HeraldReceipts::Table)
                    .if_not_exists()
                    .col(string_len(HeraldReceipts::MessageId, 40))
                    .col(big_integer(HeraldReceipts::UserId))
                    .col(string_len(HeraldReceipts::Event, 16))
                    .col(string_len(HeraldReceipts::Device, 64))
                    .col(big_integer(HeraldReceipts::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(HeraldReceipts::MessageId)
                            .col(HeraldReceipts::UserId)
                            .col(HeraldReceipts::Event)
                            .col(HeraldReceipts::Device),
                    )
                    .to_owned(),
            )
            .await?;
        let expiry = vec![HeraldReceipts::ExpiresAt.into_iden()];
        manager.create_index(index("idx_herald_receipts_expires", HeraldReceipts::Table, &expiry, false)).await?;
        manager
            .create_table(
                Table::create()
                    .table(HeraldBusJournal::Table)
                    .if_not_exists()
                    .col(big_pk_auto(HeraldBusJournal::Id))
                    .col(string_len(HeraldBusJournal::Exchange, 32))
                    .col(string_len(HeraldBusJournal::RoutingKey, 255))
                    .col(text(HeraldBusJournal::Payload))
                    .col(big_integer(HeraldBusJournal::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HeraldDeadLetters::Table)
                    .if_not_exists()
                    .col(big_pk_auto(HeraldDeadLetters::Id))
                    .col(string_len(HeraldDeadLetters::Queue, 255))
                    .col(string_len(HeraldDeadLetters::RoutingKey, 255))
                    .col(text(HeraldDeadLetters::Payload))
                    .col(text(HeraldDeadLetters::Reason))
                    .col(big_integer(HeraldDeadLetters::CreatedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            HeraldDeadLetters::Table.into_iden(),
            HeraldBusJournal::Table.into_iden(),
            HeraldReceipts::Table.into_iden(),
            HeraldIdempotency::Table.into_iden(),
            HeraldAudiences::Table.into_iden(),
            HeraldInboxDropped::Table.into_iden(),
            HeraldInbox::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

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
struct RecordTimesAsInstants;

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
