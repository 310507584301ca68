//! REST response envelopes (spec 6.1-6.3).

use crate::ErrorCode;
use serde::{Deserialize, Serialize};

/// The numeric `code` of a successful response.
pub const CODE_OK: i32 = 200;

/// Every REST response: `{"code": ..., "message": ..., "data": ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiResponse<T> {
    /// 200 on success, the error's numeric code otherwise.
    pub code: i32,
    /// `OK`, or a human-readable error.
    pub message: String,
    /// The payload.
    pub data: T,
}

impl<T> ApiResponse<T> {
    /// A success envelope around `data`.
    pub fn ok(data: T) -> Self {
        Self { code: CODE_OK, message: "OK".to_owned(), data }
    }
}

crate::closed_set! {
    /// What happened to a notification: as far as the API can tell when it answers (spec 6.1),
    /// and a push record's status as its receipts arrive (spec 4.1).
    pub enum PushStatus {
        /// Durably accepted by the bus; delivery follows.
        Queued = "queued",
        /// Delivered to some recipients.
        Partial = "partial",
        /// Delivered to every recipient.
        Delivered = "delivered",
        /// Not delivered.
        Failed = "failed",
    }
}

/// The data of a successful push (spec 6.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushResult {
    /// Always `true` here.
    pub success: bool,
    /// The notification's content.
    pub message: String,
    /// When Herald accepted it.
    pub push_time: String,
    /// The target name.
    pub target: String,
    /// The notification type.
    pub message_type: String,
    /// A description of the recipients, e.g. `all_online_users` or `3`.
    pub recipients_count: String,
    /// The message id.
    pub message_id: String,
    /// `queued`: the bus confirmed it; see ARCHITECTURE.md for the later statuses.
    pub status: PushStatus,
}

/// The data of a failed request (spec 6.2); the push fields are there when the request got far
/// enough to have them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureData {
    /// Always `false`.
    pub success: bool,
    /// The notification's content, when the request had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the request was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_time: Option<String>,
    /// The requested target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The requested type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    /// Always `failed`.
    pub status: PushStatus,
    /// What went wrong, for a person.
    pub error: String,
    /// What went wrong, for a program: a code of the error table.
    pub error_code: String,
    /// The request field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The message id of a notice whose outcome is unknown (the bus took it but never
    /// confirmed it): look it up in the records API before sending the notice again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

impl FailureData {
    /// The failure data for `code` with a message, no push context.
    pub fn new(code: ErrorCode, error: impl Into<String>) -> Self {
        Self {
            success: false,
            message: None,
            push_time: None,
            target: None,
            message_type: None,
            status: PushStatus::Failed,
            error: error.into(),
            error_code: code.as_str().to_owned(),
            field: None,
            message_id: None,
        }
    }
}

impl ApiResponse<FailureData> {
    /// The failure envelope: the numeric code, the message, and the failure data.
    pub fn failure(code: ErrorCode, data: FailureData) -> Self {
        Self { code: code.numeric(), message: data.error.clone(), data }
    }
}

/// One row of the push record list (spec 6.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushRecordItem {
    /// The store's id.
    pub id: String,
    /// The message id.
    pub message_id: String,
    /// The content.
    pub content: String,
    /// The type.
    pub message_type: String,
    /// The target.
    pub target: String,
    /// The status.
    pub status: String,
    /// Whether it succeeded.
    pub success: bool,
    /// When it was pushed.
    pub push_time: String,
    /// Who sent it.
    pub sender_name: String,
    /// Deliveries.
    pub delivered_count: i64,
    /// Failures.
    pub failed_count: i64,
}

/// Aggregates over the filtered records (spec 6.3).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PushRecordStats {
    /// Records matching the filter.
    pub total_records: i64,
    /// Of those, successful.
    pub success_records: i64,
    /// Of those, failed.
    pub failed_records: i64,
    /// Recipients over all of them.
    pub total_recipients: i64,
    /// Deliveries over all of them.
    pub delivered_count: i64,
    /// Failures over all of them.
    pub failed_count: i64,
}

/// A page of push records (spec 6.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushRecordPage {
    /// Records matching the filter.
    pub total: i64,
    /// The page number, from 1.
    pub page: u32,
    /// The page size.
    pub page_size: u32,
    /// The records of this page.
    pub items: Vec<PushRecordItem>,
    /// Aggregates.
    pub stats: PushRecordStats,
}
