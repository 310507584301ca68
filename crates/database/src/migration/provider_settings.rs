//! Migration 8: the settings of the push providers an admin configures through the push config
//! API.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::text_null;

#[derive(DeriveIden)]
enum MessagePushConfig {
    Table,
    Settings,
}

/// `message_push_config.settings`: a provider's settings as JSON (`config_type` 2 FCM, 3 APNs,
/// 4 Web Push; their secrets by reference, never the keys); NULL for the original's provider URL
/// (`config_type` 1), whose `url` is all there is.
pub(super) struct AddProviderSettings;

impl MigrationName for AddProviderSettings {
    fn name(&self) -> &str {
        "m20261206_000008_add_provider_settings"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddProviderSettings {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::alter()
            .table(MessagePushConfig::Table)
            .add_column(text_null(MessagePushConfig::Settings))
            .to_owned();
        manager.alter_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::alter().table(MessagePushConfig::Table).drop_column(MessagePushConfig::Settings).to_owned();
        manager.alter_table(table).await
    }
}
