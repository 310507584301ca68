//! The mobile half's tables, named as in the original (mobile-push-analysis.md): the provider
//! configuration, the registered devices, one log row per provider send attempt, and the log of
//! the rules that changed a device (registration moves, logouts, cleanup). Times are Unix
//! milliseconds, like the records' `*_ts` columns; the API renders them in the spec's format.

use super::index;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, integer, small_integer, string_len, string_len_null, text,
};

#[derive(DeriveIden)]
enum MessagePushConfig {
    Table,
    Id,
    ConfigType,
    Url,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum MessagePushManage {
    Table,
    Id,
    UserId,
    TenantId,
    PushId,
    DeviceType,
    Status,
    LastPushTime,
    ErrCount,
    InactiveTime,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum MessagePushLog {
    Table,
    Id,
    SendId,
    MessageId,
    UserId,
    PushId,
    MessageType,
    AlarmId,
    Title,
    Content,
    Status,
    ErrMessage,
    Attempt,
    ProviderAnswer,
    CreateTime,
}

#[derive(DeriveIden)]
enum MessagePushRuleLog {
    Table,
    Id,
    PushId,
    UserId,
    Rule,
    Reason,
    CreateTime,
}

/// Creates `message_push_config`, `message_push_manage`, `message_push_log` and
/// `message_push_rule_log`, with the indexes of the admin queries.
pub(super) struct CreateMobilePush;

impl MigrationName for CreateMobilePush {
    fn name(&self) -> &str {
        "m20261203_000005_create_mobile_push"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateMobilePush {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MessagePushConfig::Table)
                    .if_not_exists()
                    .col(big_pk_auto(MessagePushConfig::Id))
                    .col(small_integer(MessagePushConfig::ConfigType))
                    .col(string_len(MessagePushConfig::Url, 2048))
                    .col(big_integer(MessagePushConfig::CreateTime))
                    .col(big_integer(MessagePushConfig::UpdateTime))
                    .to_owned(),
            )
            .await?;
        let config_type = vec![MessagePushConfig::ConfigType.into_iden()];
        manager
            .create_index(index("idx_message_push_config_type", MessagePushConfig::Table, &config_type, true))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MessagePushManage::Table)
                    .if_not_exists()
                    .col(string_len(MessagePushManage::Id, 36).primary_key())
                    .col(big_integer(MessagePushManage::UserId))
                    .col(string_len_null(MessagePushManage::TenantId, 64))
                    .col(string_len(MessagePushManage::PushId, 255))
                    .col(string_len(MessagePushManage::DeviceType, 16))
                    .col(small_integer(MessagePushManage::Status))
                    .col(big_integer_null(MessagePushManage::LastPushTime))
                    .col(integer(MessagePushManage::ErrCount))
                    .col(big_integer_null(MessagePushManage::InactiveTime))
                    .col(big_integer(MessagePushManage::CreateTime))
                    .col(big_integer(MessagePushManage::UpdateTime))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            // A push id names one device: it belongs to one user at a time.
            ("idx_message_push_manage_push_id", vec![MessagePushManage::PushId.into_iden()], true),
            (
                "idx_message_push_manage_tenant",
                vec![MessagePushManage::TenantId.into_iden(), MessagePushManage::Status.into_iden()],
                false,
            ),
            (
                "idx_message_push_manage_user",
                vec![MessagePushManage::UserId.into_iden(), MessagePushManage::Status.into_iden()],
                false,
            ),
            ("idx_message_push_manage_create_time", vec![MessagePushManage::CreateTime.into_iden()], false),
        ] {
            manager.create_index(index(name, MessagePushManage::Table, &columns, unique)).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(MessagePushLog::Table)
                    .if_not_exists()
                    .col(big_pk_auto(MessagePushLog::Id))
                    .col(string_len(MessagePushLog::SendId, 128))
                    .col(string_len(MessagePushLog::MessageId, 40))
                    .col(big_integer(MessagePushLog::UserId))
                    .col(string_len(MessagePushLog::PushId, 255))
                    .col(string_len(MessagePushLog::MessageType, 64))
                    .col(string_len(MessagePushLog::AlarmId, 128))
                    .col(text(MessagePushLog::Title))
                    .col(text(MessagePushLog::Content))
                    .col(string_len(MessagePushLog::Status, 16))
                    .col(text(MessagePushLog::ErrMessage))
                    .col(integer(MessagePushLog::Attempt))
                    .col(text(MessagePushLog::ProviderAnswer))
                    .col(big_integer(MessagePushLog::CreateTime))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            // One row per attempt of a send: a redelivered attempt is not logged twice.
            (
                "idx_message_push_log_send_attempt",
                vec![MessagePushLog::SendId.into_iden(), MessagePushLog::Attempt.into_iden()],
                true,
            ),
            (
                "idx_message_push_log_time",
                vec![MessagePushLog::CreateTime.into_iden(), MessagePushLog::Id.into_iden()],
                false,
            ),
            (
                "idx_message_push_log_user_time",
                vec![MessagePushLog::UserId.into_iden(), MessagePushLog::CreateTime.into_iden()],
                false,
            ),
            (
                "idx_message_push_log_push_id_time",
                vec![MessagePushLog::PushId.into_iden(), MessagePushLog::CreateTime.into_iden()],
                false,
            ),
            (
                "idx_message_push_log_status_time",
                vec![MessagePushLog::Status.into_iden(), MessagePushLog::CreateTime.into_iden()],
                false,
            ),
        ] {
            manager.create_index(index(name, MessagePushLog::Table, &columns, unique)).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(MessagePushRuleLog::Table)
                    .if_not_exists()
                    .col(big_pk_auto(MessagePushRuleLog::Id))
                    .col(string_len(MessagePushRuleLog::PushId, 255))
                    .col(big_integer(MessagePushRuleLog::UserId))
                    .col(string_len(MessagePushRuleLog::Rule, 32))
                    .col(text(MessagePushRuleLog::Reason))
                    .col(big_integer(MessagePushRuleLog::CreateTime))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_message_push_rule_log_push_id",
                vec![MessagePushRuleLog::PushId.into_iden(), MessagePushRuleLog::CreateTime.into_iden()],
            ),
            ("idx_message_push_rule_log_time", vec![MessagePushRuleLog::CreateTime.into_iden()]),
        ] {
            manager.create_index(index(name, MessagePushRuleLog::Table, &columns, false)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            MessagePushRuleLog::Table.into_iden(),
            MessagePushLog::Table.into_iden(),
            MessagePushManage::Table.into_iden(),
            MessagePushConfig::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
