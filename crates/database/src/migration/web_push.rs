//! Migration 7: the Web Push subscription of a browser registered as a `web` device.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::text_null;

#[derive(DeriveIden)]
enum MessagePushManage {
    Table,
    Subscription,
}

/// `message_push_manage.subscription`: a `web` device's subscription JSON (its endpoint and
/// keys, longer than a push id column holds and not to be indexed); NULL for every other device.
/// The device's `push_id` is derived from the endpoint (`web:` and its SHA-256).
pub(super) struct AddWebPushSubscription;

impl MigrationName for AddWebPushSubscription {
    fn name(&self) -> &str {
        "m20261203_000007_add_web_push_subscription"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddWebPushSubscription {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::alter()
            .table(MessagePushManage::Table)
            .add_column(text_null(MessagePushManage::Subscription))
            .to_owned();
        manager.alter_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table =
            Table::alter().table(MessagePushManage::Table).drop_column(MessagePushManage::Subscription).to_owned();
        manager.alter_table(table).await
    }
}
