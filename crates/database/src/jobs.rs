//! Leases for scheduled jobs (the janitor's), so that one replica at a time runs each, and each
//! scheduled slot is run to the end once.
//!
//! A job's row in `herald_job_leases` says who holds it and until when. A claim takes the row
//! when nobody holds it (its lease expired) and, for a scheduled slot, when no run finished that
//! slot yet; every claim increments the fence, and renewing or finishing a lease needs its fence,
//! so a holder that lost its lease (paused past its expiry, say) cannot act as the new one. A
//! holder killed half-way leaves the lease to expire; the slot is not done, and the next claim
//! (another replica retrying, or the next start) runs it again. Jobs are written so that a run
//! repeated after an interruption converges to the same state.

use crate::DbError;
use crate::entity::{job_lease, job_run};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use std::time::Duration;

/// What a claim came to.
#[derive(Debug)]
pub enum Claim {
    /// The job is this holder's until the lease expires (renew it while running).
    Acquired(Lease),
    /// Another holder has it now.
    Held {
        /// Who.
        holder: String,
    },
    /// A run already finished this slot.
    Done,
}

/// A job held by this holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job: String,
    /// The slot being run (Unix ms of the scheduled time), or `None` for a run by hand.
    pub slot: Option<i64>,
    /// This claim's fence.
    pub fence: i64,
    /// When the run started, Unix ms.
    pub started_at: i64,
}

/// A finished run, as `herald_job_runs` keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRun {
    /// The job.
    pub job: String,
    /// Its slot, `None` for a run by hand.
    pub slot: Option<i64>,
    /// Who ran it.
    pub holder: String,
    /// When it started and finished, Unix ms.
    pub started_at: i64,
    /// When it finished, Unix ms.
    pub finished_at: i64,
    /// What it changed (JSON).
    pub summary: String,
}

/// Job leases over the relational database, for one holder (a process). Cheap to clone.
#[derive(Clone, Debug)]
pub struct JobLeases {
    db: DatabaseConnection,
    holder: String,
    lease: Duration,
}

impl JobLeases {
    /// Leases on `db` for `holder` (unique per process), each valid `lease` unless renewed.
    pub fn new(db: DatabaseConnection, holder: impl Into<String>, lease: Duration) -> Self {
        Self { db, holder: holder.into(), lease }
    }

    /// This holder's name.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Claims `job`, for the scheduled `slot` or (`None`) for a run by hand.
    pub async fn claim(&self, job: &str, slot: Option<i64>) -> Result<Claim, DbError> {
        let now = now_ms();
        let blank = job_lease::ActiveModel {
            job: Set(job.to_owned()),
            holder: Set(String::new()),
            fence: Set(0),
            expires_at: Set(0),
            done_slot: Set(0),
        };
        job_lease::Entity::insert(blank)
            .on_conflict_do_nothing_on([job_lease::Column::Job])
            .exec_without_returning(&self.db)
            .await?;
        let mut take = job_lease::Entity::update_many()
            .col_expr(job_lease::Column::Holder, Expr::value(self.holder.clone()))
            .col_expr(job_lease::Column::Fence, Expr::col(job_lease::Column::Fence).add(1))
            .col_expr(job_lease::Column::ExpiresAt, Expr::value(now + self.lease_ms()))
            .filter(job_lease::Column::Job.eq(job))
            .filter(job_lease::Column::ExpiresAt.lt(now));
        if let Some(slot) = slot {
            take = take.filter(job_lease::Column::DoneSlot.lt(slot));
        }
        let taken = take.exec(&self.db).await?.rows_affected == 1;
        let row = job_lease::Entity::find_by_id(job.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| DbError(format!("the lease row of job {job} is gone")))?;
        if taken && row.holder == self.holder {
            return Ok(Claim::Acquired(Lease { job: job.to_owned(), slot, fence: row.fence, started_at: now }));
        }
        match slot {
            Some(slot) if row.done_slot >= slot => Ok(Claim::Done),
            _ => Ok(Claim::Held { holder: row.holder }),
        }
    }

    /// Extends `lease` by the lease period; `false` when it is no longer this holder's (the run
    /// must stop).
    pub async fn renew(&self, lease: &Lease) -> Result<bool, DbError> {
        let now = now_ms();
        let renewed = job_lease::Entity::update_many()
            .col_expr(job_lease::Column::ExpiresAt, Expr::value(now + self.lease_ms()))
            .filter(job_lease::Column::Job.eq(lease.job.as_str()))
            .filter(job_lease::Column::Fence.eq(lease.fence))
            .filter(job_lease::Column::ExpiresAt.gte(now))
            .exec(&self.db)
            .await?;
        Ok(renewed.rows_affected == 1)
    }

    /// Ends `lease` after a complete run: its slot is done, the job free, and the run kept with
    /// `summary`. `false` when the lease was lost meanwhile (nothing is recorded then; the work
    /// done is not undone, and the next run converges).
    pub async fn finish(&self, lease: Lease, summary: &str) -> Result<bool, DbError> {
        let now = now_ms();
        let txn = self.db.begin().await?;
        let mut release = job_lease::Entity::update_many()
            .col_expr(job_lease::Column::ExpiresAt, Expr::value(0_i64))
            .filter(job_lease::Column::Job.eq(lease.job.as_str()))
            .filter(job_lease::Column::Fence.eq(lease.fence));
        if let Some(slot) = lease.slot {
            release = release.col_expr(job_lease::Column::DoneSlot, Expr::value(slot));
        }
        if release.exec(&txn).await?.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        let run = job_run::ActiveModel {
            job: Set(lease.job),
            slot: Set(lease.slot),
            holder: Set(self.holder.clone()),
            fence: Set(lease.fence),
            started_at: Set(lease.started_at),
            finished_at: Set(now),
            summary: Set(summary.to_owned()),
            ..Default::default()
        };
        job_run::Entity::insert(run).exec_without_returning(&txn).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Gives `lease` up without finishing its slot (a run that failed): another claim may take
    /// the job at once.
    pub async fn abandon(&self, lease: &Lease) -> Result<(), DbError> {
        job_lease::Entity::update_many()
            .col_expr(job_lease::Column::ExpiresAt, Expr::value(0_i64))
            .filter(job_lease::Column::Job.eq(lease.job.as_str()))
            .filter(job_lease::Column::Fence.eq(lease.fence))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The finished runs of `job`, oldest first.
    pub async fn runs(&self, job: &str) -> Result<Vec<JobRun>, DbError> {
        let rows = job_run::Entity::find()
            .filter(job_run::Column::Job.eq(job))
            .order_by_asc(job_run::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| JobRun {
                job: row.job,
                slot: row.slot,
                holder: row.holder,
                started_at: row.started_at,
                finished_at: row.finished_at,
                summary: row.summary,
            })
            .collect())
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
