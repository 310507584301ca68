//! Delivery events (brief section 2.4): what became of a notice for one user, published on the
//! events exchange under `<event_type>.<user_id>` for the record-writer and the gateways.

use crate::{MessageId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryEventType {
    /// Handed to a connection or an inbox.
    Sent,
    /// The client acknowledged receipt.
    Delivered,
    /// Could not be delivered.
    Failed,
    /// The user read it.
    Read,
    /// The user confirmed it (for `need_confirm` notices).
    Confirmed,
}

impl DeliveryEventType {
    /// The name used on the wire and in routing keys.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryEventType::Sent => "sent",
            DeliveryEventType::Delivered => "delivered",
            DeliveryEventType::Failed => "failed",
            DeliveryEventType::Read => "read",
            DeliveryEventType::Confirmed => "confirmed",
        }
    }
}

impl fmt::Display for DeliveryEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event in a notice's life for one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryEvent {
    /// What happened.
    pub event_type: DeliveryEventType,
    /// The notice.
    pub message_id: MessageId,
    /// The user.
    pub user_id: UserId,
    /// The user's name, from their token.
    #[serde(default)]
    pub username: String,
    /// How it was reported: `websocket` (a client frame) or `rest` (an API call).
    pub channel: String,
    /// The WebSocket connection it came from (`<replica>-<n>`), when it came from one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub connection_id: String,
    /// When, `YYYY-MM-DD HH:MM:SS`.
    pub timestamp: String,
}

impl DeliveryEvent {
    /// The routing key on the events exchange: `<event_type>.<user_id>`.
    pub fn routing_key(&self) -> String {
        format!("{}.{}", self.event_type, self.user_id)
    }
}
