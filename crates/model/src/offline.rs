//! Offline messages as kept in a user's inbox (spec 5.1).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The prefix the spec puts before replayed content.
pub const OFFLINE_PREFIX: &str = "[离线消息] ";

/// A notification kept for a user who was offline (spec 5.1), under `offline_msg:{user_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfflineMessage {
    /// The notification type.
    #[serde(rename = "type")]
    pub notification_type: String,
    /// The content, prefixed with [`OFFLINE_PREFIX`].
    pub content: String,
    /// `original_push_time` and the original data fields.
    pub data: Map<String, Value>,
    /// When the notification was pushed.
    pub time: String,
    /// The message id.
    pub message_id: String,
    /// When it was put in the inbox.
    pub saved_at: String,
}
