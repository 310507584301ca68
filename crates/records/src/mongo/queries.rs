//! Index specs, filters and aggregation pipelines: pure functions, pinned by unit tests.

use super::super::{LogQuery, RecordQuery, Retention};
use super::{NOTIFICATION_LOGS, PUSH_RECORDS, RECEIVE_RECORDS};
use model::{DeliveryStatus, PushStatus};
use mongodb::IndexModel;
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::options::IndexOptions;

/// Every index Herald keeps, by collection: lookups by message, user and time, the uniqueness
/// that makes writes idempotent, and TTL indexes that expire old documents.
pub(super) fn index_specs(retention: Retention) -> Vec<(&'static str, IndexModel)> {
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
pub(super) fn record_filter(query: &RecordQuery) -> Document {
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
pub(super) fn log_filter(query: &LogQuery) -> Document {
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
pub(super) fn stats_pipeline(filter: Document) -> Vec<Document> {
    vec![
        doc! { "$match": filter },
        doc! { "$group": {
            "_id": Bson::Null,
            "total_records": { "$sum": 1 },
            "failed_records": { "$sum": { "$cond": [ { "$eq": ["$status", PushStatus::Failed.as_str()] }, 1, 0 ] } },
            "total_recipients": { "$sum": "$total_count" },
            "delivered_count": { "$sum": "$delivered_count" },
            "failed_count": { "$sum": "$failed_count" },
        } },
    ]
}

/// A notice's counts from its receive records.
pub(super) fn recount_pipeline(message_id: &str) -> Vec<Document> {
    vec![
        doc! { "$match": { "message_id": message_id } },
        doc! { "$group": {
            "_id": Bson::Null,
            "total": { "$sum": 1 },
            "delivered": { "$sum": { "$cond": ["$is_received", 1, 0] } },
            "failed": { "$sum": { "$cond": [ { "$eq": ["$delivery_status", DeliveryStatus::Failed.as_str()] }, 1, 0 ] } },
        } },
    ]
}

/// A number from an aggregation result, whichever BSON width the server chose.
pub(super) fn number(doc: &Document, key: &str) -> i64 {
    match doc.get(key) {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(n)) => *n as i64,
        _ => 0,
    }
}
