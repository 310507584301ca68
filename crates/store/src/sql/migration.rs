//! Migrations, in code, applied at start-up by every service that opens the database. Each is
//! written once and never edited: a change is a new migration.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, date_time, date_time_null, string_len, string_len_null, text};

/// Herald's migrations, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateUserDirectory)]
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
#[derive(DeriveMigrationName)]
struct CreateUserDirectory;

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
