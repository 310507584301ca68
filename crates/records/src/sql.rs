//! The SQL records store (sea-orm): SQLite, PostgreSQL, MySQL/MariaDB. Each batch is one
//! transaction of a handful of set-wise statements rather than a few per event: the events
//! already logged are read at once, the new ones logged in one insert, the receive records they
//! touch read at once with `FOR UPDATE` (PostgreSQL, MySQL; in id order), the missing ones
//! created as pending rows (`ON CONFLICT DO NOTHING`) and locked too, so two record-writers
//! never both create one record nor lose each other's update; folded in memory, and written once
//! each; then every touched notice's push record is locked, recounted with one grouped count
//! (read committed, so a concurrent writer's committed rows count) and updated only if its
//! counts changed. A transaction that meets a deadlock or lock wait is tried again.

use super::{
    Failure, LogPage, LogQuery, NewRecord, Purge, Purged, Receipt, RecordDetail, RecordPage, RecordQuery, RecordStats,
    RecordedEvent, RecordsError, device_info, event_id_of, log_status, merge, millis_of, now_millis, pending_receipt,
    pushed_millis, status_of,
};
use database::DatabaseSettings;
use database::entity::{notification_log, push_record, receive_record};
use model::{
    ClosedSet, DeliveryEventType, DeliveryStatus, NotificationLog, PushRecord, PushStatus, Target, TimeFormat,
};
use sea_orm::sea_query::{Expr, Func, LikeExpr, OnConflict, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ActiveValue::Unchanged, ColumnTrait, Condition,
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait, IsolationLevel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The escape character of `LIKE` patterns: not a backslash, which MySQL string literals treat
/// specially.
const LIKE_ESCAPE: char = '!';

/// `text` as a `LIKE` pattern that matches it literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_') || c == LIKE_ESCAPE {
            escaped.push(LIKE_ESCAPE);
        }
        escaped.push(c);
    }
    escaped
}

/// Rows per multi-row insert: well under every backend's bound-parameter limit.
const INSERT_CHUNK: usize = 400;
/// Times a write transaction is tried when it keeps meeting concurrent writers.
const CONFLICT_ATTEMPTS: u32 = 5;
/// The pauses between those tries: short, and jittered so two writers that collided do not
/// collide again.
const CONFLICT_RETRY: runtime::RetryPolicy =
    runtime::RetryPolicy::new(std::time::Duration::from_millis(5), std::time::Duration::from_millis(40)).jittered();
/// Values per `IN (...)` list, and events per round of statements.
const IN_LIST_CHUNK: usize = 500;

/// A stored receive record being folded, and whether an event changed it.
struct Slot {
    id: i64,
    dirty: bool,
    receipt: Receipt,
}

/// Records in a relational database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqlRecords {
    db: DatabaseConnection,
    time: TimeFormat,
    healthy: Arc<AtomicBool>,
}

impl SqlRecords {
    /// Opens (and migrates) the database; times are rendered with `time`.
    pub async fn open(settings: &DatabaseSettings, time: TimeFormat) -> Result<Self, RecordsError> {
        Ok(Self::on(database::connect(settings).await?, time))
    }

    /// The store on a pool already open (and migrated).
    pub fn on(db: DatabaseConnection, time: TimeFormat) -> Self {
        Self { db, time, healthy: Arc::new(AtomicBool::new(true)) }
    }

    /// Whether the database answered the last health probe (never the outcome of one query:
    /// a request that fails on its own input must not take the replica out of service).
    pub fn is_ready(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Whether the database answers right now.
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }

    pub(super) fn health(&self) -> &Arc<AtomicBool> {
        &self.healthy
    }

    /// A write transaction: read committed on PostgreSQL and MySQL (MySQL's default is
    /// repeatable read, whose snapshot would hide a concurrent writer's committed rows from the
    /// counts taken after its locks were released); on SQLite `BEGIN IMMEDIATE`, which waits for
    /// the write lock up front: a deferred transaction that reads first fails with "database is
    /// locked" (`SQLITE_BUSY_SNAPSHOT`) when another connection of the pool wrote meanwhile, and
    /// the soak saw the all-in-one's record-writer retry batches that way hundreds of times an
    /// hour.
    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        let options = match self.db.get_database_backend() {
            DbBackend::Sqlite => TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            },
            _ => TransactionOptions {
                isolation_level: Some(IsolationLevel::ReadCommitted),
                ..TransactionOptions::default()
            },
        };
        self.db.begin_with_options(options).await
    }

    fn observe<T>(&self, result: Result<T, DbErr>) -> Result<T, RecordsError> {
        result.map_err(RecordsError::from)
    }

    /// See [`super::RecordStore::write_messages`].
    pub async fn write_messages(&self, records: &[NewRecord]) -> Result<(), RecordsError> {
        retry_conflicts(|| self.write_messages_in_txn(records)).await
    }

    async fn write_messages_in_txn(&self, records: &[NewRecord]) -> Result<(), DbErr> {
        if records.is_empty() {
            return Ok(());
        }
        let now_ms = now_millis();
        let txn = self.begin().await?;
        // Only a record whose receive records were not all written here needs its counts taken
        // from the table: one whose events came first, one written before (a redelivered batch),
        // or one whose readers are not known by id (a broadcast, or an `admin` notice, whose
        // admins may have changed). The others are what this transaction writes: addressed
        // users, all pending. An insert's count says which: MySQL's counts a duplicate it skipped
        // as a row, so there every record is recounted.
        let exact_counts = txn.get_database_backend() != DbBackend::MySql;
        let mut recount: BTreeSet<String> = records
            .iter()
            .filter(|r| !exact_counts || !matches!(r.message.target, Target::Custom | Target::User))
            .map(|r| r.message.message_id.to_string())
            .collect();
        for chunk in records.chunks(INSERT_CHUNK) {
            let rows = chunk.iter().map(|r| {
                let m = &r.message;
                push_record::ActiveModel {
                    id: NotSet,
                    message_id: Set(m.message_id.to_string()),
                    content: Set(m.content.clone()),
                    message_type: Set(m.notification_type.as_str().to_owned()),
                    target: Set(m.target.as_str().to_owned()),
                    target_user_ids: Set(serde_json::to_string(&r.addressed).unwrap_or_else(|_| "[]".into())),
                    recipients_count: Set(m.target.recipients_count(m.explicit_recipients().count())),
                    status: Set(status_of(r.addressed.len() as i64, 0, 0).as_str().to_owned()),
                    success: Set(true),
                    error: Set(String::new()),
                    error_code: Set(String::new()),
                    push_ts: Set(pushed_millis(m, now_ms)),
                    created_ts: Set(now_ms),
                    updated_ts: Set(now_ms),
                    sender_id: Set(m.sender.id),
                    sender_name: Set(m.sender.name.clone()),
                    delivered_count: Set(0),
                    failed_count: Set(0),
                    total_count: Set(r.addressed.len() as i64),
                    priority: Set(i16::from(m.priority.as_u8())),
                    need_confirm: Set(m.need_confirm),
                    extra_data: Set(m.data.as_ref().map(|d| serde_json::Value::Object(d.clone()).to_string())),
                }
            });
            let inserted = push_record::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(push_record::Column::MessageId)
                        .do_nothing_on([push_record::Column::MessageId])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            if inserted < chunk.len() as u64 {
                recount.extend(chunk.iter().map(|r| r.message.message_id.to_string()));
            }
        }
        let pending: Vec<(String, receive_record::ActiveModel)> = records
            .iter()
            .flat_map(|r| r.addressed.iter().map(move |user| (r.message.message_id.to_string(), *user)))
            .map(|(message_id, user_id)| {
                let row = receipt_row(pending_receipt(&message_id, user_id, now_ms), None);
                (message_id, row)
            })
            .collect();
        for chunk in pending.chunks(INSERT_CHUNK) {
            let rows = chunk.iter().map(|(_, row)| row.clone()).collect();
            if insert_missing_receipts(&txn, rows).await? < chunk.len() as u64 {
                recount.extend(chunk.iter().map(|(message_id, _)| message_id.clone()));
            }
        }
        if !recount.is_empty() {
            self.recount(&txn, &recount, now_ms).await?;
        }
        txn.commit().await
    }

    /// See [`super::RecordStore::apply_events`].
    pub async fn apply_events(&self, events: &[RecordedEvent]) -> Result<(), RecordsError> {
        retry_conflicts(|| self.apply_events_in_txn(events)).await
    }

    async fn apply_events_in_txn(&self, events: &[RecordedEvent]) -> Result<(), DbErr> {
        if events.is_empty() {
            return Ok(());
        }
        let now_ms = now_millis();
        let txn = self.begin().await?;
        let mut touched = BTreeSet::new();
        for part in events.chunks(IN_LIST_CHUNK) {
            self.apply_part(&txn, part, now_ms, &mut touched).await?;
        }
        self.recount(&txn, &touched, now_ms).await?;
        txn.commit().await
    }

    /// Applies up to [`IN_LIST_CHUNK`] events in a handful of statements: which are new, their
    /// log entries, the receive records they touch (locked), their delivery counts; then one
    /// write per receive record that changed.
    async fn apply_part(
        &self,
        txn: &DatabaseTransaction,
        events: &[RecordedEvent],
        now_ms: i64,
        touched: &mut BTreeSet<String>,
    ) -> Result<(), DbErr> {
        let ids: Vec<String> = events.iter().map(event_id_of).collect();
        let mut seen: HashSet<String> = notification_log::Entity::find()
            .select_only()
            .column(notification_log::Column::EventId)
            .filter(notification_log::Column::EventId.is_in(ids.iter().map(String::as_str)))
            .into_tuple::<String>()
            .all(txn)
            .await?
            .into_iter()
            .collect();
        // New events only: not logged before, and the first of their id in this batch.
        let fresh: Vec<(&RecordedEvent, String)> =
            events.iter().zip(ids).filter(|(_, id)| seen.insert(id.clone())).collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let logs: Vec<notification_log::ActiveModel> =
            fresh.iter().map(|(recorded, id)| self.log_row(recorded, id.clone(), now_ms)).collect();
        for chunk in logs.chunks(INSERT_CHUNK) {
            let inserted = notification_log::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::column(notification_log::Column::EventId)
                        .do_nothing_on([notification_log::Column::EventId])
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await;
            match inserted {
                // Logged by another writer meanwhile: folding it again changes nothing.
                Ok(_) | Err(DbErr::RecordNotInserted) => {}
                Err(err) => return Err(err),
            }
        }

        let messages: BTreeSet<String> = fresh.iter().map(|(r, _)| r.event.message_id.to_string()).collect();
        let users: BTreeSet<i64> = fresh.iter().map(|(r, _)| r.event.user_id).collect();
        let keys: BTreeSet<(String, i64)> =
            fresh.iter().map(|(r, _)| (r.event.message_id.to_string(), r.event.user_id)).collect();
        let mut slots = Self::lock_receipts(txn, &messages, &users).await?;
        let missing: Vec<&(String, i64)> = keys.iter().filter(|key| !slots.contains_key(*key)).collect();
        if !missing.is_empty() {
            // Create the missing records as pending rows first, skipping any a concurrent writer
            // created meanwhile (the insert waits for it to commit), then lock them like the
            // others: two writers never both insert one record, and the second folds its
            // events into what the first wrote. In key order, so two writers take the same
            // locks in the same order.
            let rows: Vec<receive_record::ActiveModel> = missing
                .iter()
                .map(|(message_id, user_id)| receipt_row(pending_receipt(message_id, *user_id, now_ms), None))
                .collect();
            for chunk in rows.chunks(INSERT_CHUNK) {
                insert_missing_receipts(txn, chunk.to_vec()).await?;
            }
            let messages: BTreeSet<String> = missing.iter().map(|(message_id, _)| message_id.clone()).collect();
            let users: BTreeSet<i64> = missing.iter().map(|(_, user_id)| *user_id).collect();
            for (key, slot) in Self::lock_receipts(txn, &messages, &users).await? {
                slots.entry(key).or_insert(slot);
            }
        }
        // Deliveries logged per user and notice, this batch's included: every delivery after
        // the first is a retry.
        let deliveries: HashMap<(String, i64), i64> = notification_log::Entity::find()
            .select_only()
            .column(notification_log::Column::MessageId)
            .column(notification_log::Column::UserId)
            .column_as(SimpleExpr::from(Func::count(Expr::col(notification_log::Column::Id))), "n")
            .filter(notification_log::Column::MessageId.is_in(messages.iter().map(String::as_str)))
            .filter(notification_log::Column::UserId.is_in(users.iter().copied()))
            .filter(notification_log::Column::EventType.eq(DeliveryEventType::Delivered.as_str()))
            .group_by(notification_log::Column::MessageId)
            .group_by(notification_log::Column::UserId)
            .into_tuple::<(String, i64, i64)>()
            .all(txn)
            .await?
            .into_iter()
            .map(|(message_id, user_id, n)| ((message_id, user_id), n))
            .collect();

        for (recorded, _) in &fresh {
            let key = (recorded.event.message_id.to_string(), recorded.event.user_id);
            let delivered = deliveries.get(&key).copied().unwrap_or(0);
            let Some(slot) = slots.get_mut(&key) else {
                return Err(DbErr::RecordNotFound(format!("the receive record of {} for user {}", key.0, key.1)));
            };
            merge(&mut slot.receipt, recorded, u64::try_from(delivered).unwrap_or(0), &self.time, now_ms);
            slot.dirty = true;
            touched.insert(recorded.event.message_id.to_string());
        }
        for slot in slots.into_values().filter(|slot| slot.dirty) {
            receipt_row(slot.receipt, Some(slot.id)).update(txn).await?;
        }
        Ok(())
    }

    /// The receive records of `messages` x `users`, read with `FOR UPDATE` (PostgreSQL,
    /// MySQL; in id order, so two writers lock overlapping rows in the same order).
    async fn lock_receipts(
        txn: &DatabaseTransaction,
        messages: &BTreeSet<String>,
        users: &BTreeSet<i64>,
    ) -> Result<HashMap<(String, i64), Slot>, DbErr> {
        let mut existing = receive_record::Entity::find()
            .filter(receive_record::Column::MessageId.is_in(messages.iter().map(String::as_str)))
            .filter(receive_record::Column::UserId.is_in(users.iter().copied()))
            .order_by_asc(receive_record::Column::Id);
        if txn.get_database_backend() != DbBackend::Sqlite {
            existing = existing.lock_exclusive();
        }
        existing
            .all(txn)
            .await?
            .into_iter()
            .map(|m| {
                let key = (m.message_id.clone(), m.user_id);
                Ok((key, Slot { id: m.id, dirty: false, receipt: receipt_of(m)? }))
            })
            .collect()
    }

    fn log_row(&self, recorded: &RecordedEvent, event_id: String, now_ms: i64) -> notification_log::ActiveModel {
        let event = &recorded.event;
        notification_log::ActiveModel {
            id: NotSet,
            event_id: Set(event_id),
            message_id: Set(event.message_id.to_string()),
            user_id: Set(event.user_id),
            username: Set(event.username.clone()),
            event_type: Set(event.event_type.as_str().to_owned()),
            status: Set(log_status(event.event_type).as_str().to_owned()),
            ts: Set(millis_of(&self.time, &event.timestamp).unwrap_or(now_ms)),
            created_ts: Set(now_ms),
            error: Set(String::new()),
            device_info: Set(device_info(recorded).map(|info| serde_json::Value::Object(info).to_string())),
            client_ip: Set(event.client_ip.clone()),
            user_agent: Set(event.user_agent.clone()),
        }
    }

    /// Recounts the receive records of `messages` into their push records (those that exist
    /// yet): one grouped count, one read of the stored counts, and an update only where they
    /// differ.
    async fn recount<C: ConnectionTrait>(&self, db: &C, messages: &BTreeSet<String>, now_ms: i64) -> Result<(), DbErr> {
        let list: Vec<&str> = messages.iter().map(String::as_str).collect();
        for chunk in list.chunks(IN_LIST_CHUNK) {
            let mut stored_query = push_record::Entity::find()
                .select_only()
                .column(push_record::Column::MessageId)
                .column(push_record::Column::TotalCount)
                .column(push_record::Column::DeliveredCount)
                .column(push_record::Column::FailedCount)
                .filter(push_record::Column::MessageId.is_in(chunk.iter().copied()))
                .order_by_asc(push_record::Column::MessageId);
            if db.get_database_backend() != DbBackend::Sqlite {
                // Locked before counting, in message order: a second writer recounting the same
                // notice waits here for the first to commit, then counts what it wrote (read
                // committed), so the last count written is never a stale one.
                stored_query = stored_query.lock_exclusive();
            }
            let stored: HashMap<String, (i64, i64, i64)> = stored_query
                .into_tuple::<(String, i64, i64, i64)>()
                .all(db)
                .await?
                .into_iter()
                .map(|(message_id, total, delivered, failed)| (message_id, (total, delivered, failed)))
                .collect();
            let mut counts: HashMap<&str, (i64, i64, i64)> = chunk.iter().map(|m| (*m, (0, 0, 0))).collect();
            let groups: Vec<(String, bool, String, i64)> = receive_record::Entity::find()
                .select_only()
                .column(receive_record::Column::MessageId)
                .column(receive_record::Column::IsReceived)
                .column(receive_record::Column::DeliveryStatus)
                .column_as(SimpleExpr::from(Func::count(Expr::col(receive_record::Column::Id))), "n")
                .filter(receive_record::Column::MessageId.is_in(chunk.iter().copied()))
                .group_by(receive_record::Column::MessageId)
                .group_by(receive_record::Column::IsReceived)
                .group_by(receive_record::Column::DeliveryStatus)
                .into_tuple()
                .all(db)
                .await?;
            for (message_id, received, status, n) in &groups {
                if let Some(c) = counts.get_mut(message_id.as_str()) {
                    c.0 += n;
                    if *received {
                        c.1 += n;
                    }
                    if status == DeliveryStatus::Failed.as_str() {
                        c.2 += n;
                    }
                }
            }
            for (message_id, (total, delivered, failed)) in counts {
                // No record yet (its events came first), or nothing changed.
                if stored.get(message_id).is_none_or(|s| *s == (total, delivered, failed)) {
                    continue;
                }
                let status = status_of(total, delivered, failed);
                push_record::Entity::update_many()
                    .col_expr(push_record::Column::TotalCount, Expr::value(total))
                    .col_expr(push_record::Column::DeliveredCount, Expr::value(delivered))
                    .col_expr(push_record::Column::FailedCount, Expr::value(failed))
                    .col_expr(push_record::Column::Status, Expr::value(status.as_str()))
                    .col_expr(push_record::Column::Success, Expr::value(status != PushStatus::Failed))
                    .col_expr(push_record::Column::UpdatedTs, Expr::value(now_ms))
                    .filter(push_record::Column::MessageId.eq(message_id))
                    .exec(db)
                    .await?;
            }
        }
        Ok(())
    }

    fn filtered(query: &RecordQuery) -> Select<push_record::Entity> {
        let mut select = push_record::Entity::find();
        if let Some(t) = &query.message_type {
            select = select.filter(push_record::Column::MessageType.eq(t.as_str()));
        }
        if let Some(t) = &query.target {
            select = select.filter(push_record::Column::Target.eq(t.as_str()));
        }
        if let Some(s) = &query.status {
            select = select.filter(push_record::Column::Status.eq(s.as_str()));
        }
        if let Some(id) = query.sender_id {
            select = select.filter(push_record::Column::SenderId.eq(id));
        }
        if let Some(from) = query.from_ms {
            select = select.filter(push_record::Column::PushTs.gte(from));
        }
        if let Some(to) = query.to_ms {
            select = select.filter(push_record::Column::PushTs.lte(to));
        }
        if let Some(text) = &query.content {
            // A substring, literally: `%` and `_` in it are not wildcards.
            let pattern = format!("%{}%", escape_like(text));
            select = select.filter(sea_orm::sea_query::ExprTrait::like(
                Expr::col((push_record::Entity, push_record::Column::Content)),
                LikeExpr::new(pattern).escape(LIKE_ESCAPE),
            ));
        }
        select
    }

    /// See [`super::RecordStore::list`].
    pub async fn list(&self, query: &RecordQuery) -> Result<RecordPage, RecordsError> {
        let result = async {
            let total = Self::filtered(query).count(&self.db).await?;
            let failed_records = Self::filtered(query)
                .filter(push_record::Column::Status.eq(PushStatus::Failed.as_str()))
                .count(&self.db)
                .await?;
            // Sums, added up here: SUM's type differs between backends (MySQL: DECIMAL).
            let counts: Vec<(i64, i64, i64)> = Self::filtered(query)
                .select_only()
                .column(push_record::Column::TotalCount)
                .column(push_record::Column::DeliveredCount)
                .column(push_record::Column::FailedCount)
                .into_tuple()
                .all(&self.db)
                .await?;
            let page_size = query.page_size.max(1);
            let items = Self::filtered(query)
                .order_by_desc(push_record::Column::PushTs)
                .order_by_desc(push_record::Column::Id)
                .offset(query.page.saturating_sub(1).saturating_mul(page_size))
                .limit(page_size)
                .all(&self.db)
                .await?;
            let stats = RecordStats {
                total_records: total,
                success_records: total - failed_records,
                failed_records,
                total_recipients: counts.iter().map(|c| c.0).sum(),
                delivered_count: counts.iter().map(|c| c.1).sum(),
                failed_count: counts.iter().map(|c| c.2).sum(),
            };
            let items = items.into_iter().map(|m| push_view(m, &self.time)).collect::<Result<_, _>>()?;
            Ok::<_, DbErr>(RecordPage { total, items, stats })
        }
        .await;
        self.observe(result)
    }

    /// See [`super::RecordStore::detail`].
    pub async fn detail(&self, message_id: &str) -> Result<Option<RecordDetail>, RecordsError> {
        let result = async {
            let Some(record) =
                push_record::Entity::find().filter(push_record::Column::MessageId.eq(message_id)).one(&self.db).await?
            else {
                return Ok(None);
            };
            let receipts = receive_record::Entity::find()
                .filter(receive_record::Column::MessageId.eq(message_id))
                .order_by_asc(receive_record::Column::UserId)
                .all(&self.db)
                .await?;
            let logs = notification_log::Entity::find()
                .filter(notification_log::Column::MessageId.eq(message_id))
                .order_by_asc(notification_log::Column::Ts)
                .order_by_asc(notification_log::Column::Id)
                .all(&self.db)
                .await?;
            Ok::<_, DbErr>(Some(RecordDetail {
                record: push_view(record, &self.time)?,
                receipts: receipts.into_iter().map(|m| receipt_view(m, &self.time)).collect::<Result<_, _>>()?,
                logs: logs.into_iter().map(|m| log_view(m, &self.time)).collect::<Result<_, _>>()?,
            }))
        }
        .await;
        self.observe(result)
    }

    /// See [`super::RecordStore::logs`].
    pub async fn logs(&self, query: &LogQuery) -> Result<LogPage, RecordsError> {
        let mut condition = Condition::all();
        if let Some(id) = &query.message_id {
            condition = condition.add(notification_log::Column::MessageId.eq(id.as_str()));
        }
        if let Some(user) = query.user_id {
            condition = condition.add(notification_log::Column::UserId.eq(user));
        }
        if let Some(kind) = &query.event_type {
            condition = condition.add(notification_log::Column::EventType.eq(kind.as_str()));
        }
        if let Some(from) = query.from_ms {
            condition = condition.add(notification_log::Column::Ts.gte(from));
        }
        if let Some(to) = query.to_ms {
            condition = condition.add(notification_log::Column::Ts.lte(to));
        }
        let result = async {
            let select = notification_log::Entity::find().filter(condition);
            let total = select.clone().count(&self.db).await?;
            let page_size = query.page_size.max(1);
            let items = select
                .order_by_desc(notification_log::Column::Ts)
                .order_by_desc(notification_log::Column::Id)
                .offset(query.page.saturating_sub(1).saturating_mul(page_size))
                .limit(page_size)
                .all(&self.db)
                .await?;
            let items = items.into_iter().map(|m| log_view(m, &self.time)).collect::<Result<_, _>>()?;
            Ok::<_, DbErr>(LogPage { total, items })
        }
        .await;
        self.observe(result)
    }

    /// See [`super::RecordStore::purge`]. Each table is cut by its own time column, so a long
    /// retention pass never holds one big transaction.
    pub async fn purge(&self, purge: Purge) -> Result<Purged, RecordsError> {
        let result = async {
            let records = push_record::Entity::delete_many()
                .filter(push_record::Column::PushTs.lt(purge.records_before_ms))
                .exec(&self.db)
                .await?
                .rows_affected;
            let receipts = receive_record::Entity::delete_many()
                .filter(receive_record::Column::CreatedTs.lt(purge.records_before_ms))
                .exec(&self.db)
                .await?
                .rows_affected;
            let logs = notification_log::Entity::delete_many()
                .filter(notification_log::Column::Ts.lt(purge.logs_before_ms))
                .exec(&self.db)
                .await?
                .rows_affected;
            Ok::<_, DbErr>(Purged { records, receipts, logs })
        }
        .await;
        self.observe(result)
    }
}

/// Runs a write transaction, again when it met a concurrent writer's (a deadlock or a lock
/// wait the database broke, which rolled it back whole): a conflict is the normal cost of two
/// record-writers on overlapping records, not a failed batch.
async fn retry_conflicts<F, Fut>(mut write: F) -> Result<(), RecordsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), DbErr>>,
{
    let mut backoff = CONFLICT_RETRY.start();
    let mut attempt = 0;
    loop {
        let err = match write().await {
            Ok(()) => return Ok(()),
            Err(err) => RecordsError::from(err),
        };
        attempt += 1;
        if err.kind != Failure::Conflict || attempt >= CONFLICT_ATTEMPTS {
            return Err(err);
        }
        tracing::debug!(attempt, error = %err, "records write met a concurrent writer's; retrying");
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Inserts receive records, skipping those already there (a concurrent writer's included).
/// Inserts the receive records of `rows` that are not there yet; how many it inserted (on MySQL,
/// how many it found or inserted).
async fn insert_missing_receipts(
    txn: &DatabaseTransaction,
    rows: Vec<receive_record::ActiveModel>,
) -> Result<u64, DbErr> {
    let inserted = receive_record::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([receive_record::Column::MessageId, receive_record::Column::UserId])
                .do_nothing_on([receive_record::Column::MessageId])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await;
    match inserted {
        Ok(count) => Ok(count),
        Err(DbErr::RecordNotInserted) => Ok(0),
        Err(err) => Err(err),
    }
}

/// The row of a receive record: `id` for one already stored.
fn receipt_row(r: Receipt, id: Option<i64>) -> receive_record::ActiveModel {
    receive_record::ActiveModel {
        id: id.map_or(NotSet, Unchanged),
        message_id: Set(r.message_id),
        user_id: Set(r.user_id),
        username: Set(r.username),
        user_role: Set(r.user_role.map_or("", |role| role.as_str()).to_owned()),
        is_online: Set(r.is_online),
        is_received: Set(r.is_received),
        received_ts: Set(r.received_ms),
        is_read: Set(r.is_read),
        read_ts: Set(r.read_ms),
        is_confirmed: Set(r.is_confirmed),
        confirmed_ts: Set(r.confirmed_ms),
        device_type: Set(r.device_type),
        platform: Set(r.platform),
        browser: Set(r.browser),
        client_ip: Set(r.client_ip),
        user_agent: Set(r.user_agent),
        connection_id: Set(r.connection_id),
        push_channel: Set(r.push_channel.map_or("", |channel| channel.as_str()).to_owned()),
        delivery_status: Set(r.delivery_status.as_str().to_owned()),
        retry_count: Set(r.retry_count),
        error_message: Set(r.error_message),
        created_ts: Set(r.created_ms),
        updated_ts: Set(r.updated_ms),
    }
}

/// A closed set's member as stored in `column`: a name Herald did not write is a store error.
fn stored<T: ClosedSet>(column: &str, raw: &str) -> Result<T, DbErr> {
    T::parse(raw).ok_or_else(|| DbErr::Type(format!("{column} holds {raw:?}, which Herald does not write")))
}

/// A push record as the API shows it: its times rendered by `time`.
fn push_view(m: push_record::Model, time: &TimeFormat) -> Result<PushRecord, DbErr> {
    Ok(PushRecord {
        id: m.id.to_string(),
        message_id: m.message_id,
        content: m.content,
        message_type: m.message_type,
        target: stored("push_records.target", &m.target)?,
        target_user_ids: serde_json::from_str(&m.target_user_ids).unwrap_or_default(),
        recipients_count: m.recipients_count,
        status: stored("push_records.status", &m.status)?,
        success: m.success,
        error: m.error,
        error_code: m.error_code,
        push_time: time.format_millis(m.push_ts),
        created_at: time.format_millis(m.created_ts),
        updated_at: time.format_millis(m.updated_ts),
        sender_id: m.sender_id,
        sender_name: m.sender_name,
        delivered_count: m.delivered_count,
        failed_count: m.failed_count,
        total_count: m.total_count,
        priority: u8::try_from(m.priority).unwrap_or_default(),
        need_confirm: m.need_confirm,
        extra_data: m.extra_data.and_then(|raw| serde_json::from_str(&raw).ok()),
    })
}

/// A stored receive record, to fold events into.
fn receipt_of(m: receive_record::Model) -> Result<Receipt, DbErr> {
    Ok(Receipt {
        message_id: m.message_id,
        user_id: m.user_id,
        username: m.username,
        // Empty until an event names them.
        user_role: model::Role::parse(&m.user_role),
        is_online: m.is_online,
        is_received: m.is_received,
        received_ms: m.received_ts,
        is_read: m.is_read,
        read_ms: m.read_ts,
        is_confirmed: m.is_confirmed,
        confirmed_ms: m.confirmed_ts,
        device_type: m.device_type,
        platform: m.platform,
        browser: m.browser,
        client_ip: m.client_ip,
        user_agent: m.user_agent,
        connection_id: m.connection_id,
        push_channel: model::PushChannel::parse(&m.push_channel),
        delivery_status: stored("receive_records.delivery_status", &m.delivery_status)?,
        retry_count: m.retry_count,
        error_message: m.error_message,
        created_ms: m.created_ts,
        updated_ms: m.updated_ts,
    })
}

/// A receive record as the API shows it.
fn receipt_view(m: receive_record::Model, time: &TimeFormat) -> Result<model::AdminUserReceiveRecord, DbErr> {
    let id = m.id.to_string();
    Ok(receipt_of(m)?.view(id, time))
}

/// A log entry as the API shows it.
fn log_view(m: notification_log::Model, time: &TimeFormat) -> Result<NotificationLog, DbErr> {
    Ok(NotificationLog {
        id: m.id.to_string(),
        message_id: m.message_id,
        user_id: m.user_id,
        username: m.username,
        event_type: stored("notification_logs.event_type", &m.event_type)?,
        status: stored("notification_logs.status", &m.status)?,
        timestamp: time.format_millis(m.ts),
        created_at: time.format_millis(m.created_ts),
        error: m.error,
        device_info: m.device_info.and_then(|raw| serde_json::from_str(&raw).ok()),
        client_ip: m.client_ip,
        user_agent: m.user_agent,
    })
}
