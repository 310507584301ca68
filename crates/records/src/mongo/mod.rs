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

mod documents;
mod queries;
#[cfg(test)]
mod tests;

use super::{
    Failure, LogPage, LogQuery, NewRecord, Purge, Purged, RecordDetail, RecordPage, RecordQuery, RecordStats,
    RecordedEvent, RecordsError, Retention, event_id_of, merge, now_millis, pending_receipt, status_of,
};
use documents::{NotificationLogDoc, PushRecordDoc, ReceiveRecordDoc};
use futures_util::TryStreamExt;
use model::{DeliveryEventType, PushStatus, TimeFormat};
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::{Client, Collection, Database};
use queries::{index_specs, log_filter, number, record_filter, recount_pipeline, stats_pipeline};
use serde::Serialize;
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
            db: db.clone(),
            records: db.collection(PUSH_RECORDS),
            receipts: db.collection(RECEIVE_RECORDS),
            logs: db.collection(NOTIFICATION_LOGS),
            time,
            healthy: Arc::new(AtomicBool::new(true)),
        })
    }

    /// Whether the server answered the last health probe (never the outcome of one query).
    pub fn is_ready(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Whether the server answers right now.
    pub async fn ping(&self) -> bool {
        self.db.run_command(doc! { "ping": 1 }).await.is_ok()
    }

    pub(super) fn health(&self) -> &Arc<AtomicBool> {
        &self.healthy
    }

    fn observe<T>(&self, result: Result<T, RecordsError>) -> Result<T, RecordsError> {
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
            .map(|(id, user)| ReceiveRecordDoc::new(pending_receipt(id, user, now_ms), None, created, 0, &self.time))
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
            self.fold(recorded, now_ms).await?;
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
    async fn fold(&self, recorded: &RecordedEvent, now_ms: i64) -> Result<(), RecordsError> {
        let e = &recorded.event;
        let message_id = e.message_id.as_str();
        let deliveries = if e.event_type == DeliveryEventType::Delivered {
            let logged = self
                .logs
                .count_documents(doc! { "message_id": message_id, "user_id": e.user_id, "event_type": DeliveryEventType::Delivered.as_str() })
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
                    let mut receipt = stored.receipt(&self.time);
                    merge(&mut receipt, recorded, deliveries, &self.time, now_ms);
                    let next = ReceiveRecordDoc::new(receipt, id, created_ts, rev + 1, &self.time);
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
                    let mut receipt = pending_receipt(message_id, e.user_id, now_ms);
                    merge(&mut receipt, recorded, deliveries, &self.time, now_ms);
                    let doc = ReceiveRecordDoc::new(receipt, None, DateTime::from_millis(now_ms), 0, &self.time);
                    match self.receipts.insert_one(&doc).await {
                        Ok(_) => return Ok(()),
                        Err(err) if is_duplicate_key(&err) => {} // created meanwhile: merge into it
                        Err(err) => return Err(err.into()),
                    }
                }
            }
        }
        Err(RecordsError::new(
            Failure::Conflict,
            format!(
                "the receive record of {message_id} for user {} kept changing under {FOLD_ATTEMPTS} attempts",
                e.user_id
            ),
        ))
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
                    "status": status.as_str(),
                    "success": status != PushStatus::Failed,
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
