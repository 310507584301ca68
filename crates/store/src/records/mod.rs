//! Push records (spec 4.1), receive records (4.2) and notification logs (4.3): what was sent,
//! to whom, and what became of it. Written by the record-writer, read by the records API.
//!
//! Counts are never incremented: after every write the store recounts a notice's receive
//! records (`total_count` = addressed or reached users, `delivered_count` = those who received
//! it, `failed_count` = those it failed for), so a redelivered message or event cannot count
//! twice. A notice's addressed users get a `pending` receive record when the notice is written;
//! a broadcast's receive records appear as users acknowledge it.

mod sql;

pub use sql::SqlRecords;

use model::{AdminUserReceiveRecord, NotificationLog, NotificationMessage, PushRecord, TimeFormat};
use model::{DeliveryEvent, UserId};

/// A records store failed.
#[derive(Debug, thiserror::Error)]
#[error("the records store is unavailable: {0}")]
pub struct RecordsError(pub String);

impl From<sea_orm::DbErr> for RecordsError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self(err.to_string())
    }
}

impl From<crate::DbError> for RecordsError {
    fn from(err: crate::DbError) -> Self {
        Self(err.0)
    }
}

/// A notice to record, with the users it was addressed to (empty for broadcasts).
#[derive(Clone, Debug)]
pub struct NewRecord {
    /// The envelope as it was published.
    pub message: NotificationMessage,
    /// The users it was addressed to: `custom` recipients, or the admins of an `admin` notice.
    pub addressed: Vec<UserId>,
}

/// What the record-writer learnt of the client's device from its `User-Agent`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `desktop`, `mobile`, `tablet`, `bot` or empty.
    pub device_type: String,
    /// `windows`, `mac`, `linux`, `ios`, `android`, ... or empty.
    pub platform: String,
    /// `chrome`, `safari`, `firefox`, ... or empty.
    pub browser: String,
}

/// A delivery event with its parsed device.
#[derive(Clone, Debug)]
pub struct RecordedEvent {
    /// The event.
    pub event: DeliveryEvent,
    /// The device its `User-Agent` describes.
    pub device: DeviceInfo,
}

/// Filters and paging of `GET /api/admin/push/records`.
#[derive(Clone, Debug, Default)]
pub struct RecordQuery {
    /// 1-based page.
    pub page: u64,
    /// Records per page.
    pub page_size: u64,
    /// Only this notification type.
    pub message_type: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Only this status (`queued`, `partial`, `delivered`, `failed`).
    pub status: Option<String>,
    /// Only this sender.
    pub sender_id: Option<UserId>,
    /// Pushed at or after, Unix milliseconds.
    pub from_ms: Option<i64>,
    /// Pushed at or before, Unix milliseconds.
    pub to_ms: Option<i64>,
    /// Content containing this text.
    pub content: Option<String>,
}

/// Statistics over every record a query matches (spec 6.3 `stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecordStats {
    /// Matching records.
    pub total_records: u64,
    /// Of those, not failed.
    pub success_records: u64,
    /// Of those, failed.
    pub failed_records: u64,
    /// Sum of their `total_count`.
    pub total_recipients: i64,
    /// Sum of their `delivered_count`.
    pub delivered_count: i64,
    /// Sum of their `failed_count`.
    pub failed_count: i64,
}

/// One page of records, newest first, with statistics over all pages.
#[derive(Clone, Debug)]
pub struct RecordPage {
    /// Matching records over all pages.
    pub total: u64,
    /// This page.
    pub items: Vec<PushRecord>,
    /// Statistics over every matching record.
    pub stats: RecordStats,
}

/// A record with everything known of it.
#[derive(Clone, Debug)]
pub struct RecordDetail {
    /// The push record.
    pub record: PushRecord,
    /// Its receive records, by user id.
    pub receipts: Vec<AdminUserReceiveRecord>,
    /// Its log, oldest first.
    pub logs: Vec<NotificationLog>,
}

/// Filters and paging of `GET /api/admin/notification/logs`.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    /// 1-based page.
    pub page: u64,
    /// Entries per page.
    pub page_size: u64,
    /// Only this notice.
    pub message_id: Option<String>,
    /// Only this user.
    pub user_id: Option<UserId>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// At or after, Unix milliseconds.
    pub from_ms: Option<i64>,
    /// At or before, Unix milliseconds.
    pub to_ms: Option<i64>,
}

/// A page of log entries, newest first.
#[derive(Clone, Debug)]
pub struct LogPage {
    /// Matching entries over all pages.
    pub total: u64,
    /// This page.
    pub items: Vec<NotificationLog>,
}

/// The records store the configuration names. Cheap to clone.
#[derive(Clone, Debug)]
pub enum RecordStore {
    /// SQL (sea-orm): SQLite, PostgreSQL, MySQL/MariaDB.
    Sql(SqlRecords),
}

impl RecordStore {
    /// The store `records.url` names: the SQL database (`database` unless the URL names
    /// another) or MongoDB. SQL databases are migrated first.
    pub async fn open(
        records: &runtime::RecordsSettings,
        database: &runtime::DatabaseSettings,
        time: TimeFormat,
    ) -> Result<Self, RecordsError> {
        match records.sql_database(database) {
            Some(sql) => Ok(RecordStore::Sql(SqlRecords::open(&sql, time).await?)),
            None => Err(RecordsError("the MongoDB records backend is not available in this build yet".to_owned())),
        }
    }

    /// Records a batch of notices; a notice already recorded is left as it is.
    pub async fn write_messages(&self, records: &[NewRecord]) -> Result<(), RecordsError> {
        match self {
            RecordStore::Sql(sql) => sql.write_messages(records).await,
        }
    }

    /// Applies a batch of delivery events; an event already applied (same `event_id`) is
    /// skipped.
    pub async fn apply_events(&self, events: &[RecordedEvent]) -> Result<(), RecordsError> {
        match self {
            RecordStore::Sql(sql) => sql.apply_events(events).await,
        }
    }

    /// A page of records, newest first.
    pub async fn list(&self, query: &RecordQuery) -> Result<RecordPage, RecordsError> {
        match self {
            RecordStore::Sql(sql) => sql.list(query).await,
        }
    }

    /// One record with its receive records and log.
    pub async fn detail(&self, message_id: &str) -> Result<Option<RecordDetail>, RecordsError> {
        match self {
            RecordStore::Sql(sql) => sql.detail(message_id).await,
        }
    }

    /// A page of log entries, newest first.
    pub async fn logs(&self, query: &LogQuery) -> Result<LogPage, RecordsError> {
        match self {
            RecordStore::Sql(sql) => sql.logs(query).await,
        }
    }

    /// Whether the store answered its last query (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        match self {
            RecordStore::Sql(sql) => sql.is_ready(),
        }
    }
}

/// A record's status from its counts: `queued` until someone received it, `partial` while some
/// have, `delivered` once all have, `failed` when it failed for everyone.
pub fn status_of(total: i64, delivered: i64, failed: i64) -> &'static str {
    if total > 0 && failed == total {
        "failed"
    } else if total > 0 && delivered >= total {
        "delivered"
    } else if delivered > 0 {
        "partial"
    } else {
        "queued"
    }
}

/// Unix milliseconds of a spec time string at `time`'s offset, if it parses.
pub(crate) fn millis_of(time: &TimeFormat, raw: &str) -> Option<i64> {
    time.parse(raw).ok().map(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_counts() {
        assert_eq!(status_of(0, 0, 0), "queued");
        assert_eq!(status_of(3, 0, 0), "queued");
        assert_eq!(status_of(3, 2, 0), "partial");
        assert_eq!(status_of(3, 3, 0), "delivered");
        assert_eq!(status_of(3, 0, 3), "failed");
        assert_eq!(status_of(3, 2, 1), "partial");
    }
}
