//! Migration 6: the janitor's job leases and run history.

use super::index;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_integer_null, big_pk_auto, string_len, text};

#[derive(DeriveIden)]
enum HeraldJobLeases {
    Table,
    Job,
    Holder,
    Fence,
    ExpiresAt,
    DoneSlot,
}

#[derive(DeriveIden)]
enum HeraldJobRuns {
    Table,
    Id,
    Job,
    Slot,
    Holder,
    Fence,
    StartedAt,
    FinishedAt,
    Summary,
}

/// `herald_job_leases`: one row per scheduled job: who holds it (until `expires_at`, Unix ms),
/// the fence (incremented by every claim, so a holder that lost its lease cannot act as the
/// new one), and the last scheduled slot a run finished. `herald_job_runs`: one row per run
/// that finished, with what it changed.
pub(super) struct CreateJobLeases;

impl MigrationName for CreateJobLeases {
    fn name(&self) -> &str {
        "m20261203_000006_create_job_leases"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateJobLeases {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(HeraldJobLeases::Table)
                    .if_not_exists()
                    .col(string_len(HeraldJobLeases::Job, 64).primary_key())
                    .col(string_len(HeraldJobLeases::Holder, 128))
                    .col(big_integer(HeraldJobLeases::Fence))
                    .col(big_integer(HeraldJobLeases::ExpiresAt))
                    .col(big_integer(HeraldJobLeases::DoneSlot))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HeraldJobRuns::Table)
                    .if_not_exists()
                    .col(big_pk_auto(HeraldJobRuns::Id))
                    .col(string_len(HeraldJobRuns::Job, 64))
                    .col(big_integer_null(HeraldJobRuns::Slot))
                    .col(string_len(HeraldJobRuns::Holder, 128))
                    .col(big_integer(HeraldJobRuns::Fence))
                    .col(big_integer(HeraldJobRuns::StartedAt))
                    .col(big_integer(HeraldJobRuns::FinishedAt))
                    .col(text(HeraldJobRuns::Summary))
                    .to_owned(),
            )
            .await?;
        let by_job = vec![HeraldJobRuns::Job.into_iden(), HeraldJobRuns::StartedAt.into_iden()];
        manager.create_index(index("idx_herald_job_runs_job_started", HeraldJobRuns::Table, &by_job, false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(HeraldJobRuns::Table).if_exists().to_owned()).await?;
        manager.drop_table(Table::drop().table(HeraldJobLeases::Table).if_exists().to_owned()).await
    }
}
