//! Push records (spec 4.1), receive records (4.2) and notification logs (4.3): what was sent,
//! to whom, and what became of it. Written by the record-writer, read by the records API.
//!
//! Counts are never incremented: after every write the store recounts a notice's receive
//! records (`total_count` = addressed or reached users, `delivered_count` = those who received
//! it, `failed_count` = those it failed for), so a redelivered message or event cannot count
//! twice. A notice's addressed users get a `pending` receive record when the notice is written;
//! a broadcast's receive records appear as users acknowledge it.

mod mongo;
mod settings;
mod sql;

pub use mongo::MongoRecords;
pub use settings::{RecordsBackend, RecordsSettings};
pub use sql::SqlRecords;

use model::{AdminUserReceiveRecord, NotificationLog, NotificationMessage, PushRecord, TimeFormat};
use model::{DeliveryEvent, DeliveryEventType, DeliveryStatus, LogStatus, NotificationType, PushChannel, PushStatus};
use model::{Role, Target, UserId};
use serde_json::{Map, Value};

/// Seconds between readiness probes of a records store.
const PROBE_EVERY_SECS: u64 = 2;

/// What kind of failure a records store reported, which decides what a writer does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The store could not be reached, or did not answer in time: retry once it answers.
    Unavailable,
    /// The write met a concurrent writer's (a deadlock, a serialisation failure, a lock wait, a
    /// row created meanwhile): the store is fine and the same write succeeds when retried.
    Conflict,
    /// The store answered and refused this write for what it holds: retrying changes nothing.
    Refused,
}

/// A records store failed, and how.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", match kind {
    Failure::Unavailable => "the records store is unavailable",
    Failure::Conflict => "the write met a concurrent writer's",
    Failure::Refused => "the records store refused the write",
})]
pub struct RecordsError {
    /// How it failed.
    pub kind: Failure,
    /// What the store said.
    pub message: String,
}

impl RecordsError {
    /// A failure of `kind` saying `message`.
    pub fn new(kind: Failure, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// Whether retrying the same write can succeed without anything changing in its input: the
    /// store was away or busy with another writer.
    pub fn is_transient(&self) -> bool {
        self.kind != Failure::Refused
    }
}

/// Markers of errors that are about the moment, not the data: lock waits, deadlocks,
/// serialisation failures and timeouts, as PostgreSQL, MySQL/MariaDB and SQLite word them.
const CONFLICT_MARKERS: [&str; 7] = [
    "deadlock",
    "could not serialize",
    "lock wait timeout",
    "database is locked",
    "database table is locked",
    "timed out",
    "statement timeout",
];

impl From<sea_orm::DbErr> for RecordsError {
    fn from(err: sea_orm::DbErr) -> Self {
        use sea_orm::{DbErr, SqlErr};
        let message = err.to_string();
        let lower = message.to_ascii_lowercase();
        let kind = match &err {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => Failure::Unavailable,
            _ if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Failure::Conflict,
            _ if CONFLICT_MARKERS.iter().any(|marker| lower.contains(marker)) => Failure::Conflict,
            // A connection lost in the middle of a statement.
            _ if lower.contains("connection") && (lower.contains("closed") || lower.contains("reset")) => {
                Failure::Unavailable
            }
            _ => Failure::Refused,
        };
        Self { kind, message }
    }
}

impl From<database::DbError> for RecordsError {
    fn from(err: database::DbError) -> Self {
        Self::new(Failure::Unavailable, err.0)
    }
}

impl From<mongodb::error::Error> for RecordsError {
    fn from(err: mongodb::error::Error) -> Self {
        use mongodb::error::ErrorKind;
        let kind = match err.kind.as_ref() {
            ErrorKind::Io(_) | ErrorKind::ServerSelection { .. } | ErrorKind::ConnectionPoolCleared { .. } => {
                Failure::Unavailable
            }
            _ if err.contains_label(mongodb::error::RETRYABLE_WRITE_ERROR)
                || err.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR) =>
            {
                Failure::Conflict
            }
            _ => Failure::Refused,
        };
        Self::new(kind, err.to_string())
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
    pub message_type: Option<NotificationType>,
    /// Only this target.
    pub target: Option<Target>,
    /// Only this status.
    pub status: Option<PushStatus>,
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
    pub event_type: Option<DeliveryEventType>,
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

/// How long records are kept (`records.retention_days`, `records.log_retention_days`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Push records and receive records.
    pub records: std::time::Duration,
    /// Notification logs.
    pub logs: std::time::Duration,
}

impl Retention {
    /// The retention `settings` configure.
    pub fn of(settings: &RecordsSettings) -> Self {
        const DAY: u64 = 24 * 60 * 60;
        Self {
            records: std::time::Duration::from_secs(u64::from(settings.retention_days) * DAY),
            logs: std::time::Duration::from_secs(u64::from(settings.log_retention_days) * DAY),
        }
    }

    /// The purge that applies at `now_ms` (Unix milliseconds).
    pub fn cutoffs(&self, now_ms: i64) -> Purge {
        let before =
            |keep: std::time::Duration| now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
        Purge { records_before_ms: before(self.records), logs_before_ms: before(self.logs) }
    }

    /// The purge that applies now.
    pub fn cutoffs_now(&self) -> Purge {
        self.cutoffs(now_millis())
    }
}

/// What a retention pass deletes: rows older than these instants (Unix milliseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purge {
    /// Push records pushed, and receive records created, before this.
    pub records_before_ms: i64,
    /// Notification logs timestamped before this.
    pub logs_before_ms: i64,
}

/// What a retention pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Push records.
    pub records: u64,
    /// Receive records.
    pub receipts: u64,
    /// Notification logs.
    pub logs: u64,
}

/// The records store the configuration names. Cheap to clone.
#[derive(Clone, Debug)]
pub enum RecordStore {
    /// SQL (sea-orm): SQLite, PostgreSQL, MySQL/MariaDB.
    Sql(SqlRecords),
    /// MongoDB: collections `push_records`, `admin_user_receive_records`, `notification_logs`.
    Mongo(MongoRecords),
}

impl RecordStore {
    /// The store `records.url` names: the SQL database (`database` unless the URL names
    /// another) or MongoDB. SQL databases are migrated first.
    /// A task probes it every few seconds for `/readyz` until `shutdown`.
    pub async fn open(
        records: &RecordsSettings,
        database: &database::DatabaseSettings,
        time: TimeFormat,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<Self, RecordsError> {
        let store = match records.sql_database(database) {
            Some(sql) => RecordStore::Sql(SqlRecords::open(&sql, time).await?),
            None => {
                let url = String::from(records.url.clone());
                RecordStore::Mongo(MongoRecords::open(&url, Retention::of(records), time).await?)
            }
        };
        store.start_probe(shutdown);
        Ok(store)
    }

    fn start_probe(&self, shutdown: tokio_util::sync::CancellationToken) {
        let probe = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(PROBE_EVERY_SECS));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = every.tick() => {
                        let healthy = probe.ping().await;
                        probe.health().store(healthy, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        });
    }

    /// The SQL store on a pool already open (and migrated), probed like [`RecordStore::open`].
    pub fn on(
        db: sea_orm::DatabaseConnection,
        time: TimeFormat,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        let store = RecordStore::Sql(SqlRecords::on(db, time));
        store.start_probe(shutdown);
        store
    }

    /// Whether the store answers right now: the readiness probe, and how a consumer tells a
    /// store that is down (retry) from a message the store refuses (dead-letter it).
    pub async fn ping(&self) -> bool {
        match self {
            RecordStore::Sql(sql) => sql.ping().await,
            RecordStore::Mongo(mongo) => mongo.ping().await,
        }
    }

    fn health(&self) -> &std::sync::Arc<std::sync::atomic::AtomicBool> {
        match self {
            RecordStore::Sql(sql) => sql.health(),
            RecordStore::Mongo(mongo) => mongo.health(),
        }
    }

    /// Deletes what is older than `purge` says. MongoDB's TTL indexes do the same on their own;
    /// an explicit pass there only makes it prompt.
    pub async fn purge(&self, purge: Purge) -> Result<Purged, RecordsError> {
        match self {
            RecordStore::Sql(sql) => sql.purge(purge).await,
            RecordStore::Mongo(mongo) => mongo.purge(purge).await,
        }
    }

    /// Records a batch of notices; a notice already recorded is left as it is.
    pub async fn write_messages(&self, records: &[NewRecord]) -> Result<(), RecordsError> {
        match self {
            RecordStore::Sql(sql) => sql.write_messages(records).await,
            RecordStore::Mongo(mongo) => mongo.write_messages(records).await,
        }
    }

    /// Applies a batch of delivery events; an event already applied (same `event_id`) is
    /// skipped.
    pub async fn apply_events(&self, events: &[RecordedEvent]) -> Result<(), RecordsError> {
        match self {
            RecordStore::Sql(sql) => sql.apply_events(events).await,
            RecordStore::Mongo(mongo) => mongo.apply_events(events).await,
        }
    }

    /// A page of records, newest first.
    pub async fn list(&self, query: &RecordQuery) -> Result<RecordPage, RecordsError> {
        match self {
            RecordStore::Sql(sql) => sql.list(query).await,
            RecordStore::Mongo(mongo) => mongo.list(query).await,
        }
    }

    /// One record with its receive records and log.
    pub async fn detail(&self, message_id: &str) -> Result<Option<RecordDetail>, RecordsError> {
        match self {
            RecordStore::Sql(sql) => sql.detail(message_id).await,
            RecordStore::Mongo(mongo) => mongo.detail(message_id).await,
        }
    }

    /// A page of log entries, newest first.
    pub async fn logs(&self, query: &LogQuery) -> Result<LogPage, RecordsError> {
        match self {
            RecordStore::Sql(sql) => sql.logs(query).await,
            RecordStore::Mongo(mongo) => mongo.logs(query).await,
        }
    }

    /// Whether the store answered its last health probe (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        match self {
            RecordStore::Sql(sql) => sql.is_ready(),
            RecordStore::Mongo(mongo) => mongo.is_ready(),
        }
    }
}

/// A record's status from its counts: `queued` until someone received it, `partial` while some
/// have, `delivered` once all have, `failed` when it failed for everyone.
pub fn status_of(total: i64, delivered: i64, failed: i64) -> PushStatus {
    if total > 0 && failed == total {
        PushStatus::Failed
    } else if total > 0 && delivered >= total {
        PushStatus::Delivered
    } else if delivered > 0 {
        PushStatus::Partial
    } else {
        PushStatus::Queued
    }
}

/// The current time in Unix milliseconds.
pub(crate) fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix milliseconds a notice was pushed at: from its id, or `now_ms` for an id without a time.
pub(crate) fn pushed_millis(message: &NotificationMessage, now_ms: i64) -> i64 {
    match message.message_id.unix_nanos() {
        0 => now_ms,
        nanos => (nanos / 1_000_000) as i64,
    }
}

/// The id a log entry is kept under: the event's own, or for an event published before events
/// had ids, one made of what it says.
pub(crate) fn event_id_of(recorded: &RecordedEvent) -> String {
    let e = &recorded.event;
    if !e.event_id.is_empty() {
        return e.event_id.clone();
    }
    format!("{}:{}:{}:{}:{}", e.message_id, e.user_id, e.event_type, e.connection_id, e.timestamp)
        .chars()
        .take(40)
        .collect()
}

/// A log entry's `status`: `failed` for failures, `success` otherwise.
pub(crate) fn log_status(event_type: DeliveryEventType) -> LogStatus {
    match event_type {
        DeliveryEventType::Failed => LogStatus::Failed,
        _ => LogStatus::Success,
    }
}

/// A log entry's `device_info`: the parsed device and the connection, if anything is known.
pub(crate) fn device_info(recorded: &RecordedEvent) -> Option<Map<String, Value>> {
    let DeviceInfo { device_type, platform, browser } = &recorded.device;
    let e = &recorded.event;
    if device_type.is_empty() && platform.is_empty() && browser.is_empty() && e.connection_id.is_empty() {
        return None;
    }
    let mut info = Map::new();
    info.insert("device_type".into(), device_type.as_str().into());
    info.insert("platform".into(), platform.as_str().into());
    info.insert("browser".into(), browser.as_str().into());
    info.insert("connection_id".into(), e.connection_id.as_str().into());
    info.insert("channel".into(), e.channel.as_str().into());
    Some(info)
}

/// A receive record as the stores fold it: times are instants (Unix milliseconds), rendered
/// in `time.utc_offset` only when the record is read ([`Receipt::view`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Receipt {
    pub(crate) message_id: String,
    pub(crate) user_id: UserId,
    pub(crate) username: String,
    pub(crate) user_role: Option<Role>,
    pub(crate) is_online: bool,
    pub(crate) is_received: bool,
    pub(crate) received_ms: Option<i64>,
    pub(crate) is_read: bool,
    pub(crate) read_ms: Option<i64>,
    pub(crate) is_confirmed: bool,
    pub(crate) confirmed_ms: Option<i64>,
    pub(crate) device_type: String,
    pub(crate) platform: String,
    pub(crate) browser: String,
    pub(crate) client_ip: String,
    pub(crate) user_agent: String,
    pub(crate) connection_id: String,
    pub(crate) push_channel: Option<PushChannel>,
    pub(crate) delivery_status: DeliveryStatus,
    pub(crate) retry_count: i32,
    pub(crate) error_message: String,
    pub(crate) created_ms: i64,
    pub(crate) updated_ms: i64,
}

impl Receipt {
    /// The spec 4.2 record, its times rendered by `time` (empty until the event happened).
    pub(crate) fn view(self, id: String, time: &TimeFormat) -> AdminUserReceiveRecord {
        let render = |ms: Option<i64>| ms.map(|ms| time.format_millis(ms)).unwrap_or_default();
        AdminUserReceiveRecord {
            id,
            message_id: self.message_id,
            user_id: self.user_id,
            username: self.username,
            user_role: self.user_role,
            is_online: self.is_online,
            is_received: self.is_received,
            received_at: render(self.received_ms),
            is_read: self.is_read,
            read_at: render(self.read_ms),
            is_confirmed: self.is_confirmed,
            confirmed_at: render(self.confirmed_ms),
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
            created_at: time.format_millis(self.created_ms),
            updated_at: time.format_millis(self.updated_ms),
        }
    }
}

/// The receive record of a user a notice is addressed to, before anything happened to it.
pub(crate) fn pending_receipt(message_id: &str, user_id: UserId, now_ms: i64) -> Receipt {
    Receipt {
        message_id: message_id.to_owned(),
        user_id,
        delivery_status: DeliveryStatus::Pending,
        created_ms: now_ms,
        updated_ms: now_ms,
        ..Receipt::default()
    }
}

/// Folds one event into a receive record; `deliveries` is how many `delivered` events the user
/// has logged for the notice, this one included. Receipt flags only ever go from false to true
/// and keep their first time, so applying events in any order gives the same record. The
/// event's time is its `timestamp` read at `time`'s offset (the one it was rendered at), or
/// `now_ms` when it is not one.
pub(crate) fn merge(row: &mut Receipt, recorded: &RecordedEvent, deliveries: u64, time: &TimeFormat, now_ms: i64) {
    let e = &recorded.event;
    let at = millis_of(time, &e.timestamp).unwrap_or(now_ms);
    if !e.username.is_empty() {
        row.username.clone_from(&e.username);
    }
    if e.user_role.is_some() {
        row.user_role = e.user_role;
    }
    let received =
        matches!(e.event_type, DeliveryEventType::Delivered | DeliveryEventType::Read | DeliveryEventType::Confirmed);
    if received {
        if !row.is_received {
            row.is_received = true;
            row.received_ms = Some(at);
            // Online at push time: it reached a connection live rather than from the inbox.
            row.is_online = e.push_channel == Some(PushChannel::Websocket);
            if e.push_channel.is_some() && row.push_channel != Some(PushChannel::Mobile) {
                row.push_channel = e.push_channel;
            }
        }
        row.delivery_status = DeliveryStatus::Delivered;
        row.error_message.clear();
    }
    match e.event_type {
        DeliveryEventType::Read if !row.is_read => {
            row.is_read = true;
            row.read_ms = Some(at);
        }
        DeliveryEventType::Confirmed if !row.is_confirmed => {
            row.is_confirmed = true;
            row.confirmed_ms = Some(at);
        }
        DeliveryEventType::Delivered => {
            // Every delivery after the first (another device, a replay) is a retry.
            row.retry_count = i32::try_from(deliveries.saturating_sub(1)).unwrap_or(i32::MAX);
        }
        DeliveryEventType::Failed if !row.is_received => {
            row.delivery_status = DeliveryStatus::Failed;
        }
        // A provider took it for one of the user's phones (the mobile channel, or a fallback):
        // that is the channel the record names, whatever a connection acknowledged before or
        // after, so the record is the same in any order of events.
        DeliveryEventType::Sent if e.push_channel == Some(PushChannel::Mobile) => {
            row.push_channel = Some(PushChannel::Mobile);
        }
        _ => {}
    }
    if !e.connection_id.is_empty() || !e.user_agent.is_empty() {
        let d = &recorded.device;
        row.connection_id.clone_from(&e.connection_id);
        row.client_ip.clone_from(&e.client_ip);
        row.user_agent.clone_from(&e.user_agent);
        row.device_type.clone_from(&d.device_type);
        row.platform.clone_from(&d.platform);
        row.browser.clone_from(&d.browser);
    }
    row.updated_ms = now_ms;
}

/// Unix milliseconds of a spec time string at `time`'s offset, if it parses.
pub(crate) fn millis_of(time: &TimeFormat, raw: &str) -> Option<i64> {
    time.parse_millis(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::{Failure, RecordsError};
    use sea_orm::{DbErr, RuntimeErr};

    fn kind_of(message: &str) -> Failure {
        RecordsError::from(DbErr::Exec(RuntimeErr::Internal(message.to_owned()))).kind
    }

    #[test]
    fn lock_and_timeout_errors_are_conflicts_and_data_errors_refusals() {
        for conflict in [
            "Execution Error: error returned from database: deadlock detected",
            "error returned from database: could not serialize access due to concurrent update",
            "error returned from database: 1205 (HY000): Lock wait timeout exceeded; try restarting transaction",
            "Execution Error: error returned from database: (code: 5) database is locked",
        ] {
            assert_eq!(kind_of(conflict), Failure::Conflict, "{conflict}");
        }
        for refused in [
            "Execution Error: error returned from database: invalid byte sequence for encoding \"UTF8\": 0x00",
            "error returned from database: 1406 (22001): Data too long for column 'connection_id' at row 1",
        ] {
            assert_eq!(kind_of(refused), Failure::Refused, "{refused}");
        }
        let away = RecordsError::from(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout));
        assert_eq!(away.kind, Failure::Unavailable);
        assert!(away.to_string().starts_with("the records store is unavailable"), "{away}");
        assert!(!RecordsError::new(Failure::Refused, "x").is_transient());
    }

    use super::*;

    #[test]
    fn status_follows_the_counts() {
        assert_eq!(status_of(0, 0, 0).as_str(), "queued");
        assert_eq!(status_of(3, 0, 0).as_str(), "queued");
        assert_eq!(status_of(3, 2, 0).as_str(), "partial");
        assert_eq!(status_of(3, 3, 0).as_str(), "delivered");
        assert_eq!(status_of(3, 0, 3).as_str(), "failed");
        assert_eq!(status_of(3, 2, 1).as_str(), "partial");
    }
}
