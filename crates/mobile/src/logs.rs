//! `message_push_log`: one row per provider send attempt, and what an attempt does to its
//! device (`err_count`, `last_push_time`), written together so that a redelivered attempt
//! changes nothing twice.

use crate::{MobileStore, db_error};
use database::DbError;
use database::entity::{push_device, push_log};
use model::{PushLogStatus, UserId};
use sea_orm::SqlErr;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

/// One attempt of one send, as the worker logs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushAttempt {
    /// The send (one device, one notice or alarm): the same across its attempts.
    pub send_id: String,
    /// 1 for the first try.
    pub attempt: i32,
    /// The notice or alarm it carries.
    pub message_id: String,
    /// The device's user.
    pub user_id: UserId,
    /// The device.
    pub push_id: String,
    /// The notice's type (`alarm` for alarms).
    pub message_type: String,
    /// The alarm's configuration id; empty for a notice.
    pub alarm_id: String,
    /// The title sent.
    pub title: String,
    /// The text sent.
    pub content: String,
    /// What became of it.
    pub status: PushLogStatus,
    /// Why it failed; empty when sent.
    pub err_message: String,
    /// The provider's answer, as far as it was kept.
    pub provider_answer: String,
    /// When it was made, Unix ms.
    pub create_time: i64,
}

/// A logged attempt, with its row id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushLog {
    /// The row's id.
    pub id: i64,
    /// The attempt.
    pub attempt: PushAttempt,
}

/// Which log rows [`MobileStore::logs`] lists.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    /// From this time on (Unix ms, inclusive).
    pub start_ms: Option<i64>,
    /// Up to this time (Unix ms, inclusive).
    pub end_ms: Option<i64>,
    /// Only in this state.
    pub status: Option<PushLogStatus>,
    /// Only this user's.
    pub user_id: Option<UserId>,
    /// Only this device's.
    pub push_id: Option<String>,
    /// Only this send's.
    pub send_id: Option<String>,
    /// 1-based page.
    pub page: u64,
    /// Rows per page.
    pub page_size: u64,
}

/// One page of log rows, newest first.
#[derive(Clone, Debug)]
pub struct LogPage {
    /// Rows matching the query, over all pages.
    pub total: u64,
    /// This page's.
    pub items: Vec<PushLog>,
}

impl MobileStore {
    /// Logs `attempt` and applies it to its device in one transaction: a success restarts the
    /// device's `err_count` and sets `last_push_time`, a failure adds one to `err_count` when
    /// `device_at_fault` (not when the provider refused Herald's own credential; an inactive
    /// device is left as it is).
    /// Returns `false`, changing nothing, when this attempt of this send was logged already (a
    /// redelivered message).
    pub async fn record_attempt(&self, attempt: &PushAttempt, device_at_fault: bool) -> Result<bool, DbError> {
        let txn = self.db.begin().await.map_err(db_error)?;
        let row = push_log::ActiveModel {
            send_id: Set(attempt.send_id.clone()),
            message_id: Set(attempt.message_id.clone()),
            user_id: Set(attempt.user_id),
            push_id: Set(attempt.push_id.clone()),
            message_type: Set(attempt.message_type.clone()),
            alarm_id: Set(attempt.alarm_id.clone()),
            title: Set(attempt.title.clone()),
            content: Set(attempt.content.clone()),
            status: Set(attempt.status.as_str().to_owned()),
            err_message: Set(attempt.err_message.clone()),
            attempt: Set(attempt.attempt),
            provider_answer: Set(attempt.provider_answer.clone()),
            create_time: Set(attempt.create_time),
            ..Default::default()
        };
        // A plain insert, its unique index saying whether the attempt is new: portable, where
        // `ON CONFLICT DO NOTHING` is not (MariaDB).
        match push_log::Entity::insert(row).exec_without_returning(&txn).await {
            Ok(_) => {}
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => return Ok(false),
            Err(err) => return Err(db_error(err)),
        }
        // An inactive device's counts stay as they were when it stopped.
        let device = push_device::Entity::update_many()
            .filter(push_device::Column::PushId.eq(attempt.push_id.as_str()))
            .filter(push_device::Column::Status.eq(model::DeviceStatus::Active.code()));
        let device = match attempt.status {
            PushLogStatus::Sent => device
                .col_expr(push_device::Column::ErrCount, Expr::value(0))
                .col_expr(push_device::Column::LastPushTime, Expr::value(attempt.create_time)),
            PushLogStatus::Failed | PushLogStatus::Dead if device_at_fault => {
                device.col_expr(push_device::Column::ErrCount, Expr::col(push_device::Column::ErrCount).add(1))
            }
            PushLogStatus::Failed | PushLogStatus::Dead => {
                txn.commit().await.map_err(db_error)?;
                return Ok(true);
            }
        };
        device
            .col_expr(push_device::Column::UpdateTime, Expr::value(attempt.create_time))
            .exec(&txn)
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        Ok(true)
    }

    /// The attempt `attempt` of `send_id`, if it was logged.
    pub async fn logged_attempt(&self, send_id: &str, attempt: i32) -> Result<Option<PushLog>, DbError> {
        let row = push_log::Entity::find()
            .filter(push_log::Column::SendId.eq(send_id))
            .filter(push_log::Column::Attempt.eq(attempt))
            .one(&self.db)
            .await
            .map_err(db_error)?;
        Ok(row.map(PushLog::from))
    }

    /// The log row `id`, if any.
    pub async fn log(&self, id: i64) -> Result<Option<PushLog>, DbError> {
        Ok(push_log::Entity::find_by_id(id).one(&self.db).await.map_err(db_error)?.map(PushLog::from))
    }

    /// A page of the log rows `query` selects, newest first.
    pub async fn logs(&self, query: &LogQuery) -> Result<LogPage, DbError> {
        let select = push_log::Entity::find().filter(log_filter(query));
        let total = select.clone().count(&self.db).await.map_err(db_error)?;
        let rows = select
            .order_by_desc(push_log::Column::CreateTime)
            .order_by_desc(push_log::Column::Id)
            .offset(query.page.saturating_sub(1).saturating_mul(query.page_size))
            .limit(query.page_size)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(LogPage { total, items: rows.into_iter().map(PushLog::from).collect() })
    }

    /// Up to `limit` of the rows `query` selects (its paging ignored), oldest first, after the
    /// row `after` (its `create_time` and id): an export reads them all this way in bounded
    /// chunks, each an index range scan however far it has got.
    pub async fn logs_after(
        &self,
        query: &LogQuery,
        after: Option<(i64, i64)>,
        limit: u64,
    ) -> Result<Vec<PushLog>, DbError> {
        let mut filter = log_filter(query);
        if let Some((time, id)) = after {
            filter = filter.add(
                Condition::any()
                    .add(push_log::Column::CreateTime.gt(time))
                    .add(Condition::all().add(push_log::Column::CreateTime.eq(time)).add(push_log::Column::Id.gt(id))),
            );
        }
        let rows = push_log::Entity::find()
            .filter(filter)
            .order_by_asc(push_log::Column::CreateTime)
            .order_by_asc(push_log::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(PushLog::from).collect())
    }
}

/// The rows `query` selects, paging aside.
fn log_filter(query: &LogQuery) -> Condition {
    let mut filter = Condition::all();
    if let Some(start) = query.start_ms {
        filter = filter.add(push_log::Column::CreateTime.gte(start));
    }
    if let Some(end) = query.end_ms {
        filter = filter.add(push_log::Column::CreateTime.lte(end));
    }
    if let Some(status) = query.status {
        filter = filter.add(push_log::Column::Status.eq(status.as_str()));
    }
    if let Some(user) = query.user_id {
        filter = filter.add(push_log::Column::UserId.eq(user));
    }
    if let Some(push_id) = &query.push_id {
        filter = filter.add(push_log::Column::PushId.eq(push_id.as_str()));
    }
    if let Some(send_id) = &query.send_id {
        filter = filter.add(push_log::Column::SendId.eq(send_id.as_str()));
    }
    filter
}

impl From<push_log::Model> for PushLog {
    fn from(row: push_log::Model) -> Self {
        Self {
            id: row.id,
            attempt: PushAttempt {
                send_id: row.send_id,
                attempt: row.attempt,
                message_id: row.message_id,
                user_id: row.user_id,
                push_id: row.push_id,
                message_type: row.message_type,
                alarm_id: row.alarm_id,
                title: row.title,
                content: row.content,
                // Only the set's names are ever written.
                status: PushLogStatus::parse(&row.status).unwrap_or(PushLogStatus::Failed),
                err_message: row.err_message,
                provider_answer: row.provider_answer,
                create_time: row.create_time,
            },
        }
    }
}
