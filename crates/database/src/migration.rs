//! Migrations, in code, applied at start-up by every service that opens the database. Each is
//! written once and never edited: a change is a new migration, with a new name
//! (`m<date>_<sequence>_<what>`; the name is what `herald_migrations` records as applied).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, boolean, date_time, date_time_null, integer, small_integer, string_len, string_len_null,
    text, text_null,
};

mod jobs;
mod mobile_push;
mod provider_settings;
mod record_times;
mod web_push;

use jobs::CreateJobLeases;
use mobile_push::CreateMobilePush;
use provider_settings::AddProviderSettings;
use record_times::RecordTimesAsInstants;
use web_push::AddWebPushSubscription;

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
            Box::new(CreateMobilePush),
            Box::new(CreateJobLeases),
            Box::new(AddWebPushSubscription),
            Box::new(AddProviderSettings),
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
