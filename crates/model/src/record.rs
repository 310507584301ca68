//! Push records, receive records and notification logs (spec 4.1-4.3), as JSON.

use crate::{DeliveryEventType, PushChannel, PushStatus, Role, Target, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

crate::closed_set! {
    /// Where one user's copy of a notice stands (spec 4.2 `delivery_status`).
    #[derive(Default)]
    pub enum DeliveryStatus {
        /// Addressed to the user; nothing heard yet.
        #[default]
        Pending = "pending",
        /// The user received it.
        Delivered = "delivered",
        /// It could not be delivered to the user.
        Failed = "failed",
    }
}

crate::closed_set! {
    /// How an event in a notice's life went (spec 4.3 `status`).
    #[derive(Default)]
    pub enum LogStatus {
        /// Anything but a failure.
        #[default]
        Success = "success",
        /// A failed delivery.
        Failed = "failed",
    }
}

/// One notification and what became of it (spec 4.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushRecord {
    /// The store's id.
    pub id: String,
    /// The message id.
    pub message_id: String,
    /// The content.
    pub content: String,
    /// The notification type.
    pub message_type: String,
    /// The target.
    pub target: Target,
    /// The addressed users, for custom targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_user_ids: Vec<UserId>,
    /// A description of the recipients, e.g. `all_online_users`.
    pub recipients_count: String,
    /// `queued`, `partial`, `delivered` or `failed`.
    pub status: PushStatus,
    /// Whether the push succeeded.
    pub success: bool,
    /// The error, if it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The error code, if it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error_code: String,
    /// When it was pushed.
    pub push_time: String,
    /// When the record was created.
    pub created_at: String,
    /// When the record last changed.
    pub updated_at: String,
    /// The sender's id.
    pub sender_id: UserId,
    /// The sender's name.
    pub sender_name: String,
    /// How many recipients received it.
    pub delivered_count: i64,
    /// How many deliveries failed.
    pub failed_count: i64,
    /// How many recipients there were.
    pub total_count: i64,
    /// The priority, 0-3.
    pub priority: u8,
    /// Whether confirmation was requested.
    pub need_confirm: bool,
    /// Extra data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_data: Option<Map<String, Value>>,
}

/// One user's receipt of one notification (spec 4.2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdminUserReceiveRecord {
    /// The store's id.
    pub id: String,
    /// The message id.
    pub message_id: String,
    /// The user.
    pub user_id: UserId,
    /// The user's name.
    pub username: String,
    /// The user's role: `admin`, `user`, or `""` until an event names it.
    #[serde(default, with = "crate::closed::or_empty")]
    pub user_role: Option<Role>,
    /// Whether the user was online at push time.
    pub is_online: bool,
    /// Whether the user received it.
    pub is_received: bool,
    /// When.
    pub received_at: String,
    /// Whether the user read it.
    pub is_read: bool,
    /// When.
    pub read_at: String,
    /// Whether the user confirmed it.
    pub is_confirmed: bool,
    /// When.
    pub confirmed_at: String,
    /// `desktop`, `mobile` or `tablet`.
    pub device_type: String,
    /// `windows`, `mac`, `ios`, `android`, ...
    pub platform: String,
    /// The browser.
    pub browser: String,
    /// The client's IP address.
    pub client_ip: String,
    /// The User-Agent header.
    pub user_agent: String,
    /// The WebSocket connection id.
    pub connection_id: String,
    /// `websocket` or `offline`, or `""` until it was received.
    #[serde(default, with = "crate::closed::or_empty")]
    pub push_channel: Option<PushChannel>,
    /// `pending`, `delivered` or `failed`.
    pub delivery_status: DeliveryStatus,
    /// How many retries it took.
    pub retry_count: i32,
    /// The error, if any.
    pub error_message: String,
    /// When the record was created.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// One event in a notification's life (spec 4.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationLog {
    /// The store's id.
    pub id: String,
    /// The message id.
    pub message_id: String,
    /// The user.
    pub user_id: UserId,
    /// The user's name.
    pub username: String,
    /// `sent`, `delivered`, `failed`, `read` or `confirmed`.
    pub event_type: DeliveryEventType,
    /// How the event went: `success` or `failed`.
    pub status: LogStatus,
    /// When the event happened.
    pub timestamp: String,
    /// When the log entry was created.
    pub created_at: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Device details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_info: Option<Map<String, Value>>,
    /// The client's IP address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    /// The User-Agent header.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
}
