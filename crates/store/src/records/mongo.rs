//! The MongoDB records store (the official driver): collections `push_records` (spec 4.1),
//! `admin_user_receive_records` (4.2) and `notification_logs` (4.3), documents with the spec's
//! field names.
//!
//! Beyond the spec's fields each document carries a BSON date for time ranges, ordering and its
//! TTL index (`push_ts`, `created_ts`, `ts`), receive records a revision (`rev`) for optimistic
//! updates, and log entries the delivery event's id (`event_id`, unique) so that a redelivered
//! event is applied once. User and sender ids are 64-bit integers; `priority` and `retry_count`
//! 32-bit.
//!
//! No transactions (a standalone server has none). Idempotency comes from the unique indexes and
//! the order of writes: an event's receive record is folded *before* its log entry is inserted,
//! and an event whose log entry exists is skipped. A writer that dies between the two has its
//! event redelivered and folded again, which changes nothing (folding is idempotent), then
//! logged.

use super::{
    LogPage, LogQuery, NewRecord, Purge, Purged, RecordDetail, RecordPage, RecordQuery, RecordStats, RecordedEvent,
    RecordsError, Retention, device_info, event_id_of, log_status, merge, millis_of, now_millis, pending_receipt,
    pushed_millis, status_of,
};
use futures_util::TryStreamExt;
use model::{AdminUserReceiveRecord, DeliveryEventType, NotificationLog, PushRecord, TimeFormat, UserId};
use mongodb::bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Push records (spec 4.1).
pub const PUSH_RECORDS: &str = "push_records";
/// Receive records (spec 4.2).
pub const RECEIVE_RECORDS: &str = "admin_user_receive_records";
/// Notification logs (spec 4.3).
pub const NOTIFICATION_LOGS: &str = "notification_logs";
/// The database used when the URL names none.
pub const DEFAULT_DATABASE: &str = "herald";

/// MongoDB's duplicate-key error.
const DUPLICATE_KEY: i32 = 11000;
/// MongoDB's "an index with this name exists with other options" error.
const INDEX_OPTIONS_CONFLICT: i32 = 85;
/// Attempts at an optimistic receive-record update before giving up on a batch.
const FOLD_ATTEMPTS: usize = 16;

/// A push record as stored (spec 4.1 plus `push_ts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PushRecordDoc {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    id: Option<ObjectId>,
    message_id: String,
    content: String,
    message_type: String,
    target: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    target_user_ids: Vec<UserId>,
    recipients_count: String,
    status: String,
    success: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    error: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    error_code: String,
    push_time: String,
    created_at: String,
    updated_at: String,
    sender_id: UserId,
    sender_name: String,
    delivered_count: i64,
    failed_count: i64,
    total_count: i64,
    priority: i32,
    need_confirm: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extra_data: Option<Map<String, Value>>,
    /// When it was pushed: range filters, newest-first order, TTL.
    push_ts: DateTime,
}

impl PushRecordDoc {
    fn new(record: &NewRecord, now: &str, now_ms: i64) -> Self {
        let m = &record.message;
        let total = record.addressed.len() as i64;
        Self {
            id: None,
            message_id: m.message_id.to_string(),
            content: m.content.clone(),
            message_type: m.notification_type.as_str().to_owned(),
            target: m.target.as_str().to_owned(),
            target_user_ids: record.addressed.clone(),
            recipients_count: m.target.recipients_count(m.explicit_recipients().count()),
            status: status_of(total, 0, 0).to_owned(),
            success: true,
            error: String::new(),
            error_code: String::new(),
            push_time: m.time.clone(),
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            sender_id: m.sender.id,
            sender_name: m.sender.name.clone(),
            delivered_count: 0,
            failed_count: 0,
            total_count: total,
            priority: i32::from(m.priority.as_u8()),
            need_confirm: m.need_confirm,
            extra_data: m.data.clone(),
            push_ts: DateTime::from_millis(pushed_millis(m, now_ms)),
        }
    }

    fn into_view(self) -> PushRecord {
        PushRecord {
            id: self.id.map(|id| id.to_hex()).unwrap_or_default(),
            message_id: self.message_id,
            content: self.content,
            message_type: self.message_type,
            target: self.target,
            target_user_ids: self.target_user_ids,
            recipients_count: self.recipients_count,
            status: self.status,
            success: self.success,
            error: self.error,
            error_code: self.error_code,
            push_time: self.push_time,
            created_at: self.created_at,
            updated_at: self.updated_at,
            sender_id: self.sender_id,
            sender_name: self.sender_name,
            delivered_count: self.delivered_count,
            failed_count: self.failed_count,
            total_count: self.total_count,
            priority: u8::try_from(self.priority).unwrap_or_default(),
            need_confirm: self.need_confirm,
            extra_data: self.extra_data,
        }
    }
}

/// A receive record as stored (spec 4.2 plus `created_ts` and `rev`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReceiveRecordDoc {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    id: Option<ObjectId>,
    message_id: String,
    user_id: UserId,
    username: String,
    user_role: String,
    is_online: bool,
    is_received: bool,
    received_at: String,
    is_read: bool,
    read_at: String,
    is_confirmed: bool,
    confirmed_at: String,
    device_type: String,
    platform: String,
    browser: String,
    client_ip: String,
    user_agent: String,
    connection_id: String,
    push_channel: String,
    delivery_status: String,
    retry_count: i32,
    error_message: String,
    created_at: String,
    updated_at: String,
    /// When it was created: TTL.
    created_ts: DateTime,
    /// Bumped on every update; an update names the revision it read.
    #[serde(default)]
    rev: i64,
}

impl ReceiveRecordDoc {
    fn new(r: AdminUserReceiveRecord, id: Option<ObjectId>, created_ts: DateTime, rev: i64) -> Self {
        Self {
            id,
            message_id: r.message_id,
            user_id: r.user_id,
            username: r.username,
            user_role: r.user_role,
            is_online: r.is_online,
            is_received: r.is_received,
            received_at: r.received_at,
            is_read: r.is_read,
            read_at: r.read_at,
            is_confirmed: r.is_confirmed,
            confirmed_at: r.confirmed_at,
            device_type: r.device_type,
            platform: r.platform,
            browser: r.browser,
            client_ip: r.client_ip,
            user_agent: r.user_agent,
            connection_id: r.connection_id,
            push_channel: r.push_channel,
            delivery_status: r.delivery_status,
            retry_count: r.retry_count,
            error_message: r.error_message,
            created_at: r.created_at,
            updated_at: r.updated_at,
            created_ts,
            rev,
        }
    }

    fn into_view(self) -> AdminUserReceiveRecord {
        AdminUserReceiveRecord {
            id: self.id.map(|id| id.to_hex()).unwrap_or_default(),
            message_id: self.message_id,
            user_id: self.user_id,
            username: self.username,
            user_role: self.user_role,
            is_online: self.is_online,
            is_received: self.is_received,
            received_at: self.received_at,
            is_read: self.is_read,
            read_at: self.read_at,
            is_confirmed: self.is_confirmed,
            confirmed_at: self.confirmed_at,
            device_type: self.device_type,
            platform: self.platform,
            browser: self.browser,
            client_ip: self.client_ip,
            user_agent: self.user_agent,
            connection_id: self.connection_id,
            push_channel: self.push_channel,
            delivery_status: self.delivery_status,
            retry_count: self.retry_count,
            error_message: self.error_message,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A log entry as stored (spec 4.3 plus `event_id` and `ts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct NotificationLogDoc {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    id: Option<ObjectId>,
    /// The delivery event's id: one entry per event.
    event_id: String,
    message_id: String,
    user_id: UserId,
    username: String,
    event_type: String,
    status: String,
    timestamp: String,
    created_at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_info: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    client_ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    user_agent: String,
    /// The event's time: range filters, order, TTL.
    ts: DateTime,
}

impl NotificationLogDoc {
    fn new(recorded: &RecordedEvent, time: &TimeFormat, now: &str, now_ms: i64) -> Self {
        let e = &recorded.event;
        Self {
            id: None,
            event_id: event_id_of(recorded),
            message_id: e.message_id.to_string(),
            user_id: e.user_id,
            username: e.username.clone(),
            event_type: e.event_type.as_str().to_owned(),
            status: log_status(e.event_type).to_owned(),
            timestamp: e.timestamp.clone(),
            created_at: now.to_owned(),
            error: String::new(),
            device_info: device_info(recorded),
            client_ip: e.client_ip.clone(),
            user_agent: e.user_agent.clone(),
            ts: DateTime::from_millis(millis_of(time, &e.timestamp).unwrap_or(now_ms)),
        }
    }

    fn into_view(self) -> NotificationLog {
        NotificationLog {
            id: self.id.map(|id| id.to_hex()).unwrap_or_default(),
            message_id: self.message_id,
            user_id: self.user_id,
            username: self.username,
            event_type: self.event_type,
            status: self.status,
            timestamp: self.timestamp,
            created_at: self.created_at,
            error: self.error,
            device_info: self.device_info,
            client_ip: self.client_ip,
            user_agent: self.user_agent,
        }
    }
}

/// Every index Herald keeps, by collection: lookups by message, user and time, the uniqueness
/// that makes writes idempotent, and TTL indexes that expire old documents.
pub(crate) fn index_specs(retention: Retention) -> Vec<(&'static str, IndexModel)> {
    let index = |keys: Document, name: &str, unique: bool, ttl: Option<std::time::Duration>| {
        let mut options = IndexOptions::default();
        options.name = Some(name.to_owned());
        options.unique = unique.then_some(true);
        options.expire_after = ttl;
        IndexModel::builder().keys(keys).options(options).build()
    };
    vec![
        (PUSH_RECORDS, index(doc! { "message_id": 1 }, "message_id_unique", true, None)),
        (PUSH_RECORDS, index(doc! { "push_ts": 1 }, "push_ts_ttl", false, Some(retention.records))),
        (PUSH_RECORDS, index(doc! { "sender_id": 1, "push_ts": -1 }, "sender_id_push_ts", false, None)),
        (PUSH_RECORDS, index(doc! { "status": 1, "push_ts": -1 }, "status_push_ts", false, None)),
        (RECEIVE_RECORDS, index(doc! { "message_id": 1, "user_id": 1 }, "message_id_user_id_unique", true, None)),
        (RECEIVE_RECORDS, index(doc! { "user_id": 1, "created_ts": -1 }, "user_id_created_ts", false, None)),
        (RECEIVE_RECORDS, index(doc! { "created_ts": 1 }, "created_ts_ttl", false, Some(retention.records))),
        (NOTIFICATION_LOGS, index(doc! { "event_id": 1 }, "event_id_unique", true, None)),
        (NOTIFICATION_LOGS, index(doc! { "message_id": 1, "ts": 1 }, "message_id_ts", false, None)),
        (NOTIFICATION_LOGS, index(doc! { "user_id": 1, "ts": -1 }, "user_id_ts", false, None)),
        (NOTIFICATION_LOGS, index(doc! { "ts": 1 }, "ts_ttl", false, Some(retention.logs))),
    ]
}

/// The filter of a records query.
pub(crate) fn record_filter(query: &RecordQuery) -> Document {
    let mut filter = Document::new();
    if let Some(t) = &query.message_type {
        filter.insert("message_type", t.as_str());
    }
    if let Some(t) = &query.target {
        filter.insert("target", t.as_str());
    }
    if let Some(s) = &query.status {
        filter.insert("status", s.as_str());
    }
    if let Some(id) = query.sender_id {
        filter.insert("sender_id", id);
    }
    if let Some(range) = time_range(query.from_ms, query.to_ms) {
        filter.insert("push_ts", range);
    }
    if let Some(text) = &query.content {
        // A plain substring, not a pattern: nothing in `text` needs escaping.
        filter.insert("$expr", doc! { "$gte": [ { "$indexOfCP": ["$content", text.as_str()] }, 0 ] });
    }
    filter
}

/// The filter of a log query.
pub(crate) fn log_filter(query: &LogQuery) -> Document {
    let mut filter = Document::new();
    if let Some(id) = &query.message_id {
        filter.insert("message_id", id.as_str());
    }
    if let Some(user) = query.user_id {
        filter.insert("user_id", user);
    }
    if let Some(kind) = &query.event_type {
        filter.insert("event_type", kind.as_str());
    }
    if let Some(range) = time_range(query.from_ms, query.to_ms) {
        filter.insert("ts", range);
    }
    filter
}

fn time_range(from_ms: Option<i64>, to_ms: Option<i64>) -> Option<Document> {
    let mut range = Document::new();
    if let Some(from) = from_ms {
        range.insert("$gte", DateTime::from_millis(from));
    }
    if let Some(to) = to_ms {
        range.insert("$lte", DateTime::from_millis(to));
    }
    (!range.is_empty()).then_some(range)
}

/// Statistics over every record `filter` matches (spec 6.3 `stats`), in one pass.
pub(crate) fn stats_pipeline(filter: Document) -> Vec<Document> {
    vec![
        doc! { "$match": filter },
        doc! { "$group": {
            "_id": Bson::Null,
            "total_records": { "$sum": 1 },
            "failed_records": { "$sum": { "$cond": [ { "$eq": ["$status", "failed"] }, 1, 0 ] } },
            "total_recipients": { "$sum": "$total_count" },
            "delivered_count": { "$sum": "$delivered_count" },
            "failed_count": { "$sum": "$failed_count" },
        } },
    ]
}

/// A notice's counts from its receive records.
pub(crate) fn recount_pipeline(message_id: &str) -> Vec<Document> {
    vec![
        doc! { "$match": { "message_id": message_id } },
        doc! { "$group": {
            "_id": Bson::Null,
            "total": { "$sum": 1 },
            "delivered": { "$sum": { "$cond": ["$is_received", 1, 0] } },
            "failed": { "$sum": { "$cond": [ { "$eq": ["$delivery_status", "failed"] }, 1, 0 ] } },
        } },
    ]
}

/// A number from an aggregation result, whichever BSON width the server chose.
fn number(doc: &Document, key: &str) -> i64 {
    match doc.get(key) {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(n)) => *n as i64,
        _ => 0,
    }
}

fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    matches!(&*err.kind, ErrorKind::Write(WriteFailure::WriteError(e)) if e.code == DUPLICATE_KEY)
}

/// Records in MongoDB. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MongoRecords {
    db: Database,
    records: Collection<PushRecordDoc>,
    receipts: Collection<ReceiveRecordDoc>,
    logs: Collection<NotificationLogDoc>,
    time: TimeFormat,
    healthy: Arc<AtomicBool>,
}

impl MongoRecords {
    /// Connects to `url` (its database, or `herald`), checks the server answers and makes sure
    /// the indexes exist with the configured retention.
    pub async fn open(url: &str, retention: Retention, time: TimeFormat) -> Result<Self, RecordsError> {
        let client = Client::with_uri_str(url).await?;
        let db = client.default_database().unwrap_or_else(|| client.database(DEFAULT_DATABASE));
        Self::open_in(db, retention, time).await
    }

    /// [`MongoRecords::open`] on a database already chosen.
    pub async fn open_in(db: Database, retention: Retention, time: TimeFormat) -> Result<Self, RecordsError> {
        db.run_command(doc! { "ping": 1 }).await?;
        ensure_indexes(&db, retention).await?;
        Ok(Self {
            records: db.collection(PUSH_RECORDS),
            receipts: db.collection(RECEIVE_RECORDS),
            logs: db.collection(NOTIFICATION_LOGS),
            db,
            time,
            healthy: Arc::new(AtomicBool::new(true)),
        })
    }

    /// The database the collections are in.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Whether the last operation succeeded.
    pub fn is_ready(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn observe<T>(&self, result: Result<T, RecordsError>) -> Result<T, RecordsError> {
        self.healthy.store(result.is_ok(), Ordering::Relaxed);
        result
    }

    /// See [`super::RecordStore::write_messages`].
    pub async fn write_messages(&self, records: &[NewRecord]) -> Result<(), RecordsError> {
        let result = self.write_messages_unobserved(records).await;
        self.observe(result)
    }

    async fn write_messages_unobserved(&self, records: &[NewRecord]) -> Result<(), RecordsError> {
        if records.is_empty() {
            return Ok(());
        }
        let now = self.time.now();
        let now_ms = now_millis();
        let docs: Vec<PushRecordDoc> = records.iter().map(|r| PushRecordDoc::new(r, &now, now_ms)).collect();
        insert_new(&self.records, &docs).await?;
        let created = DateTime::from_millis(now_ms);
        let pending: Vec<ReceiveRecordDoc> = records
            .iter()
            .flat_map(|r| r.addressed.iter().map(move |user| (r.message.message_id.as_str(), *user)))
            .map(|(id, user)| ReceiveRecordDoc::new(pending_receipt(id, user, &now), None, created, 0))
            .collect();
        insert_new(&self.receipts, &pending).await?;
        // Events may have arrived first: count what is there.
        let ids: BTreeSet<&str> = records.iter().map(|r| r.message.message_id.as_str()).collect();
        for id in ids {
            self.recount(id, &now).await?;
        }
        Ok(())
    }

    /// See [`super::RecordStore::apply_events`].
    pub async fn apply_events(&self, events: &[RecordedEvent]) -> Result<(), RecordsError> {
        let result = self.apply_events_unobserved(events).await;
        self.observe(result)
    }

    async fn apply_events_unobserved(&self, events: &[RecordedEvent]) -> Result<(), RecordsError> {
        if events.is_empty() {
            return Ok(());
        }
        let now = self.time.now();
        let now_ms = now_millis();
        let ids: Vec<String> = events.iter().map(event_id_of).collect();
        let mut applied: HashSet<String> = self
            .logs
            .clone_with_type::<Document>()
            .find(doc! { "event_id": { "$in": &ids } })
            .projection(doc! { "event_id": 1, "_id": 0 })
            .await?
            .try_filter_map(|d| async move { Ok(d.get_str("event_id").ok().map(str::to_owned)) })
            .try_collect()
            .await?;
        let mut touched = BTreeSet::new();
        for (recorded, event_id) in events.iter().zip(ids) {
            if !applied.insert(event_id) {
                continue; // applied before, or twice in this batch
            }
            self.fold(recorded, &now, now_ms).await?;
            let log = NotificationLogDoc::new(recorded, &self.time, &now, now_ms);
            match self.logs.insert_one(&log).await {
                Ok(_) => {}
                Err(err) if is_duplicate_key(&err) => {} // another writer logged it meanwhile
                Err(err) => return Err(err.into()),
            }
            touched.insert(recorded.event.message_id.to_string());
        }
        for id in &touched {
            self.recount(id, &now).await?;
        }
        Ok(())
    }

    /// Folds one event into its receive record, optimistically: read, merge, replace if the
    /// revision is still the one read, else again.
    async fn fold(&self, recorded: &RecordedEvent, now: &str, now_ms: i64) -> Result<(), RecordsError> {
        let e = &recorded.event;
        let message_id = e.message_id.as_str();
        let deliveries = if e.event_type == DeliveryEventType::Delivered {
            let logged = self
                .logs
                .count_documents(doc! { "message_id": message_id, "user_id": e.user_id, "event_type": "delivered" })
                .await?;
            logged + 1 // this one, logged after the fold
        } else {
            0
        };
        for _ in 0..FOLD_ATTEMPTS {
            let current = self.receipts.find_one(doc! { "message_id": message_id, "user_id": e.user_id }).await?;
            match current {
                Some(stored) => {
                    let (id, created_ts, rev) = (stored.id, stored.created_ts, stored.rev);
                    let mut receipt = stored.into_view();
                    merge(&mut receipt, recorded, deliveries, now);
                    let next = ReceiveRecordDoc::new(receipt, id, created_ts, rev + 1);
                    // A document written without `rev` reads as revision 0.
                    let read = if rev == 0 {
                        doc! { "$in": [0_i64, Bson::Null] }
                    } else {
                        doc! { "$eq": rev }
                    };
                    let replaced = self.receipts.replace_one(doc! { "_id": id, "rev": read }, &next).await?;
                    if replaced.matched_count == 1 {
                        return Ok(());
                    }
                }
                None => {
                    let mut receipt = pending_receipt(message_id, e.user_id, now);
                    merge(&mut receipt, recorded, deliveries, now);
                    let doc = ReceiveRecordDoc::new(receipt, None, DateTime::from_millis(now_ms), 0);
                    match self.receipts.insert_one(&doc).await {
                        Ok(_) => return Ok(()),
                        Err(err) if is_duplicate_key(&err) => {} // created meanwhile: merge into it
                        Err(err) => return Err(err.into()),
                    }
                }
            }
        }
        Err(RecordsError(format!(
            "the receive record of {message_id} for user {} kept changing under {FOLD_ATTEMPTS} attempts",
            e.user_id
        )))
    }

    /// Recounts `message_id`'s receive records into its push record (if it is there yet).
    async fn recount(&self, message_id: &str, now: &str) -> Result<(), RecordsError> {
        let counts: Option<Document> = self.receipts.aggregate(recount_pipeline(message_id)).await?.try_next().await?;
        let counts = counts.unwrap_or_default();
        let (total, delivered, failed) =
            (number(&counts, "total"), number(&counts, "delivered"), number(&counts, "failed"));
        let status = status_of(total, delivered, failed);
        self.records
            .update_one(
                doc! { "message_id": message_id },
                doc! { "$set": {
                    "total_count": total,
                    "delivered_count": delivered,
                    "failed_count": failed,
                    "status": status,
                    "success": status != "failed",
                    "updated_at": now,
                } },
            )
            .await?;
        Ok(())
    }

    /// See [`super::RecordStore::list`].
    pub async fn list(&self, query: &RecordQuery) -> Result<RecordPage, RecordsError> {
        let result = async {
            let filter = record_filter(query);
            let totals: Option<Document> =
                self.records.aggregate(stats_pipeline(filter.clone())).await?.try_next().await?;
            let totals = totals.unwrap_or_default();
            let total = number(&totals, "total_records") as u64;
            let failed_records = number(&totals, "failed_records") as u64;
            let page_size = query.page_size.max(1);
            let items: Vec<PushRecordDoc> = self
                .records
                .find(filter)
                .sort(doc! { "push_ts": -1, "_id": -1 })
                .skip(query.page.saturating_sub(1).saturating_mul(page_size))
                .limit(i64::try_from(page_size).unwrap_or(i64::MAX))
                .await?
                .try_collect()
                .await?;
            let stats = RecordStats {
                total_records: total,
                success_records: total - failed_records,
                failed_records,
                total_recipients: number(&totals, "total_recipients"),
                delivered_count: number(&totals, "delivered_count"),
                failed_count: number(&totals, "failed_count"),
            };
            Ok::<_, RecordsError>(RecordPage {
                total,
                items: items.into_iter().map(PushRecordDoc::into_view).collect(),
                stats,
            })
        }
        .await;
        self.observe(result)
    }

    /// See [`super::RecordStore::detail`].
    pub async fn detail(&self, message_id: &str) -> Result<Option<RecordDetail>, RecordsError> {
        let result = async {
            let Some(record) = self.records.find_one(doc! { "message_id": message_id }).await? else {
                return Ok(None);
            };
            let receipts: Vec<ReceiveRecordDoc> = self
                .receipts
                .find(doc! { "message_id": message_id })
                .sort(doc! { "user_id": 1 })
                .await?
                .try_collect()
                .await?;
            let logs: Vec<NotificationLogDoc> = self
                .logs
                .find(doc! { "message_id": message_id })
                .sort(doc! { "ts": 1, "_id": 1 })
                .await?
                .try_collect()
                .await?;
            Ok::<_, RecordsError>(Some(RecordDetail {
                record: record.into_view(),
                receipts: receipts.into_iter().map(ReceiveRecordDoc::into_view).collect(),
                logs: logs.into_iter().map(NotificationLogDoc::into_view).collect(),
            }))
        }
        .await;
        self.observe(result)
    }

    /// See [`super::RecordStore::logs`].
    pub async fn logs(&self, query: &LogQuery) -> Result<LogPage, RecordsError> {
        let result = async {
            let filter = log_filter(query);
            let total = self.logs.count_documents(filter.clone()).await?;
            let page_size = query.page_size.max(1);
            let items: Vec<NotificationLogDoc> = self
                .logs
                .find(filter)
                .sort(doc! { "ts": -1, "_id": -1 })
                .skip(query.page.saturating_sub(1).saturating_mul(page_size))
                .limit(i64::try_from(page_size).unwrap_or(i64::MAX))
                .await?
                .try_collect()
                .await?;
            Ok::<_, RecordsError>(LogPage {
                total,
                items: items.into_iter().map(NotificationLogDoc::into_view).collect(),
            })
        }
        .await;
        self.observe(result)
    }

    /// See [`super::RecordStore::purge`].
    pub async fn purge(&self, purge: Purge) -> Result<Purged, RecordsError> {
        let result = async {
            let before = |ms| doc! { "$lt": DateTime::from_millis(ms) };
            let records = self.records.delete_many(doc! { "push_ts": before(purge.records_before_ms) }).await?;
            let receipts = self.receipts.delete_many(doc! { "created_ts": before(purge.records_before_ms) }).await?;
            let logs = self.logs.delete_many(doc! { "ts": before(purge.logs_before_ms) }).await?;
            Ok::<_, RecordsError>(Purged {
                records: records.deleted_count,
                receipts: receipts.deleted_count,
                logs: logs.deleted_count,
            })
        }
        .await;
        self.observe(result)
    }
}

/// Inserts `docs`, skipping those a unique index says are there already.
async fn insert_new<T: Serialize + Send + Sync>(coll: &Collection<T>, docs: &[T]) -> Result<(), mongodb::error::Error> {
    if docs.is_empty() {
        return Ok(());
    }
    match coll.insert_many(docs).ordered(false).await {
        Ok(_) => Ok(()),
        Err(err) => match &*err.kind {
            ErrorKind::InsertMany(failure)
                if failure.write_concern_error.is_none()
                    && failure.write_errors.as_deref().unwrap_or_default().iter().all(|e| e.code == DUPLICATE_KEY) =>
            {
                Ok(())
            }
            _ => Err(err),
        },
    }
}

/// Creates the indexes; a TTL index that exists with another retention is changed in place.
async fn ensure_indexes(db: &Database, retention: Retention) -> Result<(), mongodb::error::Error> {
    for (collection, model) in index_specs(retention) {
        let ttl = model.options.as_ref().and_then(|o| o.expire_after);
        let name = model.options.as_ref().and_then(|o| o.name.clone()).unwrap_or_default();
        match db.collection::<Document>(collection).create_index(model).await {
            Ok(_) => {}
            Err(err) => match (&*err.kind, ttl) {
                (ErrorKind::Command(command), Some(ttl)) if command.code == INDEX_OPTIONS_CONFLICT => {
                    tracing::info!(collection, index = %name, days = ttl.as_secs() / 86_400, "changing retention");
                    let seconds = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
                    db.run_command(doc! {
                        "collMod": collection,
                        "index": { "name": name, "expireAfterSeconds": seconds },
                    })
                    .await?;
                }
                _ => return Err(err),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{DeliveryEvent, MessageId, NotificationMessage, NotificationType, Priority, Sender, Target};
    use mongodb::bson::spec::ElementType as E;

    fn notice() -> NewRecord {
        let mut data = Map::new();
        data.insert("order_id".into(), Value::from("A-17"));
        data.insert("amount".into(), Value::from(42));
        let message = NotificationMessage {
            notification_type: NotificationType::parse("order_completed").unwrap_or(NotificationType::SYSTEM_NOTICE),
            content: "your order shipped".into(),
            data: Some(data),
            time: "2026-01-01 08:00:00".into(),
            priority: Priority::High,
            target: Target::Custom,
            target_ids: vec![2, 3],
            exclude_ids: Vec::new(),
            need_confirm: true,
            message_id: MessageId::from_parts(1_767_254_400_000_000_000, uuid::Uuid::nil()),
            sender: Sender { id: 1, name: "admin".into() },
        };
        NewRecord { addressed: vec![2, 3], message }
    }

    fn event(kind: DeliveryEventType) -> RecordedEvent {
        let record = notice();
        RecordedEvent {
            event: DeliveryEvent {
                event_id: "ev-1".into(),
                event_type: kind,
                message_id: record.message.message_id,
                user_id: 2,
                username: "alice".into(),
                channel: "websocket".into(),
                connection_id: "conn-1".into(),
                timestamp: "2026-01-01 08:00:05".into(),
                user_role: "user".into(),
                push_channel: "websocket".into(),
                client_ip: "203.0.113.7".into(),
                user_agent: "Mozilla/5.0".into(),
            },
            device: super::super::DeviceInfo {
                device_type: "desktop".into(),
                platform: "linux".into(),
                browser: "firefox".into(),
            },
        }
    }

    /// Field name to BSON type, in document order.
    fn shape(doc: &Document) -> Vec<(&str, E)> {
        doc.iter().map(|(k, v)| (k.as_str(), v.element_type())).collect()
    }

    #[test]
    fn a_push_record_document_has_the_spec_fields_and_types() {
        let doc = mongodb::bson::to_document(&PushRecordDoc::new(&notice(), "2026-01-01 08:00:01", 0)).unwrap();
        assert_eq!(
            shape(&doc),
            vec![
                ("message_id", E::String),
                ("content", E::String),
                ("message_type", E::String),
                ("target", E::String),
                ("target_user_ids", E::Array),
                ("recipients_count", E::String),
                ("status", E::String),
                ("success", E::Boolean),
                ("push_time", E::String),
                ("created_at", E::String),
                ("updated_at", E::String),
                ("sender_id", E::Int64),
                ("sender_name", E::String),
                ("delivered_count", E::Int64),
                ("failed_count", E::Int64),
                ("total_count", E::Int64),
                ("priority", E::Int32),
                ("need_confirm", E::Boolean),
                ("extra_data", E::EmbeddedDocument),
                ("push_ts", E::DateTime),
            ]
        );
        assert_eq!(doc.get_array("target_user_ids").unwrap(), &vec![Bson::Int64(2), Bson::Int64(3)]);
        assert_eq!(doc.get_str("status").unwrap(), "queued");
        assert_eq!(doc.get_i64("total_count").unwrap(), 2);
        assert_eq!(doc.get_i32("priority").unwrap(), 2);
        assert_eq!(doc.get_document("extra_data").unwrap().get_str("order_id").unwrap(), "A-17");
        assert_eq!(doc.get_datetime("push_ts").unwrap().timestamp_millis(), 1_767_254_400_000);
        assert!(!doc.contains_key("_id"), "the server assigns _id");
        assert!(!doc.contains_key("error") && !doc.contains_key("error_code"), "omitempty");
    }

    #[test]
    fn a_push_record_reads_back_as_the_model() {
        let stored = PushRecordDoc { id: Some(ObjectId::new()), ..PushRecordDoc::new(&notice(), "x", 0) };
        let doc = mongodb::bson::to_document(&stored).unwrap();
        let back: PushRecordDoc = mongodb::bson::from_document(doc).unwrap();
        assert_eq!(back, stored);
        let view = back.into_view();
        assert_eq!(view.id.len(), 24, "ObjectId as hex");
        assert_eq!((view.priority, view.need_confirm, view.target_user_ids), (2, true, vec![2, 3]));
        assert_eq!(view.extra_data.unwrap()["amount"], 42);
    }

    #[test]
    fn a_receive_record_document_has_the_spec_fields_and_types() {
        let mut receipt = pending_receipt("1-abcdefgh", 2, "2026-01-01 08:00:01");
        merge(&mut receipt, &event(DeliveryEventType::Delivered), 1, "2026-01-01 08:00:06");
        let doc =
            mongodb::bson::to_document(&ReceiveRecordDoc::new(receipt, None, DateTime::from_millis(5), 0)).unwrap();
        let strings = [
            "username",
            "user_role",
            "received_at",
            "read_at",
            "confirmed_at",
            "device_type",
            "platform",
            "browser",
            "client_ip",
            "user_agent",
            "connection_id",
            "push_channel",
            "delivery_status",
            "error_message",
            "created_at",
            "updated_at",
        ];
        for key in strings {
            assert_eq!(doc.get(key).map(Bson::element_type), Some(E::String), "{key}");
        }
        for key in ["is_online", "is_received", "is_read", "is_confirmed"] {
            assert_eq!(doc.get(key).map(Bson::element_type), Some(E::Boolean), "{key}");
        }
        assert_eq!(doc.get("message_id").map(Bson::element_type), Some(E::String));
        assert_eq!(doc.get("user_id").map(Bson::element_type), Some(E::Int64));
        assert_eq!(doc.get("retry_count").map(Bson::element_type), Some(E::Int32));
        assert_eq!(doc.get("created_ts").map(Bson::element_type), Some(E::DateTime));
        assert_eq!(doc.get("rev").map(Bson::element_type), Some(E::Int64));
        assert_eq!(doc.len(), strings.len() + 4 + 5, "no other fields: {doc:?}");
        assert_eq!(doc.get_str("delivery_status").unwrap(), "delivered");
        assert_eq!(doc.get_str("push_channel").unwrap(), "websocket");
        assert_eq!((doc.get_bool("is_received").unwrap(), doc.get_bool("is_online").unwrap()), (true, true));
        assert_eq!(doc.get_str("browser").unwrap(), "firefox");
    }

    #[test]
    fn a_log_document_has_the_spec_fields_and_omits_what_is_empty() {
        let time = TimeFormat::default();
        let doc = mongodb::bson::to_document(&NotificationLogDoc::new(
            &event(DeliveryEventType::Read),
            &time,
            "2026-01-01 08:00:06",
            0,
        ))
        .unwrap();
        assert_eq!(
            shape(&doc),
            vec![
                ("event_id", E::String),
                ("message_id", E::String),
                ("user_id", E::Int64),
                ("username", E::String),
                ("event_type", E::String),
                ("status", E::String),
                ("timestamp", E::String),
                ("created_at", E::String),
                ("device_info", E::EmbeddedDocument),
                ("client_ip", E::String),
                ("user_agent", E::String),
                ("ts", E::DateTime),
            ]
        );
        assert_eq!((doc.get_str("event_type").unwrap(), doc.get_str("status").unwrap()), ("read", "success"));
        assert_eq!(doc.get_document("device_info").unwrap().get_str("platform").unwrap(), "linux");
        assert_eq!(
            doc.get_datetime("ts").unwrap().timestamp_millis(),
            millis_of(&time, "2026-01-01 08:00:05").unwrap(),
            "the event's own time"
        );

        let mut bare = event(DeliveryEventType::Failed);
        bare.event.client_ip.clear();
        bare.event.user_agent.clear();
        bare.event.connection_id.clear();
        bare.device = super::super::DeviceInfo::default();
        let doc = mongodb::bson::to_document(&NotificationLogDoc::new(&bare, &time, "x", 0)).unwrap();
        for key in ["error", "device_info", "client_ip", "user_agent", "_id"] {
            assert!(!doc.contains_key(key), "{key} is omitted when empty: {doc:?}");
        }
        assert_eq!(doc.get_str("status").unwrap(), "failed");
    }

    #[test]
    fn the_indexes_cover_lookups_uniqueness_and_retention() {
        let retention = Retention {
            records: std::time::Duration::from_secs(30 * 86_400),
            logs: std::time::Duration::from_secs(7 * 86_400),
        };
        let specs: Vec<(&str, Document)> = index_specs(retention)
            .into_iter()
            .map(|(coll, model)| (coll, mongodb::bson::to_document(&model).unwrap()))
            .collect();
        let expected = vec![
            (PUSH_RECORDS, doc! { "key": { "message_id": 1 }, "name": "message_id_unique", "unique": true }),
            (PUSH_RECORDS, doc! { "key": { "push_ts": 1 }, "expireAfterSeconds": 2_592_000, "name": "push_ts_ttl" }),
            (PUSH_RECORDS, doc! { "key": { "sender_id": 1, "push_ts": -1 }, "name": "sender_id_push_ts" }),
            (PUSH_RECORDS, doc! { "key": { "status": 1, "push_ts": -1 }, "name": "status_push_ts" }),
            (
                RECEIVE_RECORDS,
                doc! { "key": { "message_id": 1, "user_id": 1 }, "name": "message_id_user_id_unique", "unique": true },
            ),
            (RECEIVE_RECORDS, doc! { "key": { "user_id": 1, "created_ts": -1 }, "name": "user_id_created_ts" }),
            (
                RECEIVE_RECORDS,
                doc! { "key": { "created_ts": 1 }, "expireAfterSeconds": 2_592_000, "name": "created_ts_ttl" },
            ),
            (NOTIFICATION_LOGS, doc! { "key": { "event_id": 1 }, "name": "event_id_unique", "unique": true }),
            (NOTIFICATION_LOGS, doc! { "key": { "message_id": 1, "ts": 1 }, "name": "message_id_ts" }),
            (NOTIFICATION_LOGS, doc! { "key": { "user_id": 1, "ts": -1 }, "name": "user_id_ts" }),
            (NOTIFICATION_LOGS, doc! { "key": { "ts": 1 }, "expireAfterSeconds": 604_800, "name": "ts_ttl" }),
        ];
        assert_eq!(specs.len(), expected.len());
        for ((coll, spec), (want_coll, want)) in specs.iter().zip(&expected) {
            assert_eq!(coll, want_coll);
            // Compare as sets of fields: the driver may order options differently.
            let mut got: Vec<_> = spec.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let mut exp: Vec<_> = want.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            exp.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(got, exp, "{coll}");
        }
    }

    #[test]
    fn queries_become_filters() {
        let query = RecordQuery {
            page: 2,
            page_size: 20,
            message_type: Some("system_notice".into()),
            target: Some("custom".into()),
            status: Some("partial".into()),
            sender_id: Some(7),
            from_ms: Some(1_000),
            to_ms: Some(2_000),
            content: Some("a.b*".into()),
        };
        assert_eq!(
            record_filter(&query),
            doc! {
                "message_type": "system_notice",
                "target": "custom",
                "status": "partial",
                "sender_id": 7_i64,
                "push_ts": { "$gte": DateTime::from_millis(1_000), "$lte": DateTime::from_millis(2_000) },
                "$expr": { "$gte": [ { "$indexOfCP": ["$content", "a.b*"] }, 0 ] },
            }
        );
        assert_eq!(record_filter(&RecordQuery::default()), Document::new());
        let logs = LogQuery {
            page: 1,
            page_size: 10,
            message_id: Some("1-abcdefgh".into()),
            user_id: Some(3),
            event_type: Some("read".into()),
            from_ms: Some(5),
            to_ms: None,
        };
        assert_eq!(
            log_filter(&logs),
            doc! { "message_id": "1-abcdefgh", "user_id": 3_i64, "event_type": "read", "ts": { "$gte": DateTime::from_millis(5) } }
        );
        let pipeline = stats_pipeline(doc! { "target": "all" });
        assert_eq!(pipeline[0], doc! { "$match": { "target": "all" } });
        assert_eq!(
            pipeline[1].get_document("$group").unwrap().get_document("total_recipients").unwrap(),
            &doc! { "$sum": "$total_count" }
        );
        assert_eq!(recount_pipeline("m")[0], doc! { "$match": { "message_id": "m" } });
    }

    #[test]
    fn aggregation_numbers_of_any_width_are_read() {
        let doc = doc! { "a": 3_i32, "b": 4_i64, "c": 5.0 };
        assert_eq!((number(&doc, "a"), number(&doc, "b"), number(&doc, "c"), number(&doc, "d")), (3, 4, 5, 0));
    }
}
