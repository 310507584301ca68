//! Delivery events (brief section 2.4): what became of a notice for one user, published on the
//! events exchange under `<event_type>.<user_id>` for the record-writer and the gateways.

use crate::{MessageId, Role, UserId};
use serde::{Deserialize, Serialize};

crate::closed_set! {
    /// What happened.
    pub enum DeliveryEventType {
        /// Handed to a connection or an inbox.
        Sent = "sent",
        /// The client acknowledged receipt.
        Delivered = "delivered",
        /// Could not be delivered.
        Failed = "failed",
        /// The user read it.
        Read = "read",
        /// The user confirmed it (for `need_confirm` notices).
        Confirmed = "confirmed",
    }
}

crate::closed_set! {
    /// How a receipt was reported.
    pub enum ReportChannel {
        /// A client frame on a WebSocket.
        Websocket = "websocket",
        /// A call to the REST API.
        Rest = "rest",
        /// The mobile-push-worker, from a push provider's answer.
        Mobile = "mobile",
    }
}

crate::closed_set! {
    /// How a notice reached a connection.
    pub enum PushChannel {
        /// Live: the user was online when it was pushed.
        Websocket = "websocket",
        /// Replayed from the offline inbox on connect.
        Offline = "offline",
        /// Pushed to the user's mobile devices (a provider took it).
        Mobile = "mobile",
    }
}

/// The longest `User-Agent` an event carries; longer ones are cut.
pub const MAX_USER_AGENT_CHARS: usize = 512;

/// One event in a notice's life for one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryEvent {
    /// Unique per event (32 hex), so a redelivered event is recognised and counted once.
    #[serde(default)]
    pub event_id: String,
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
    pub channel: ReportChannel,
    /// The WebSocket connection it came from (`<replica>-<n>`), when it came from one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub connection_id: String,
    /// When, `YYYY-MM-DD HH:MM:SS`.
    pub timestamp: String,
    /// The user's role, from their token (`admin` or `user`); written `""` when unknown, and an
    /// empty or unknown role reads back as unknown.
    #[serde(default, with = "crate::closed::or_empty")]
    pub user_role: Option<Role>,
    /// How the notice reached this connection: `websocket` (live, the user was online when it
    /// was pushed) or `offline` (replayed from the inbox on connect). Absent when unknown (REST);
    /// an empty or unknown value reads back as unknown.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::closed::or_empty")]
    pub push_channel: Option<PushChannel>,
    /// The client's address, as the gateway saw it (`X-Forwarded-For` from trusted proxies).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    /// The client's `User-Agent`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
}

impl DeliveryEvent {
    /// A fresh event id.
    pub fn new_event_id() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }
}

impl DeliveryEvent {
    /// The routing key on the events exchange: `<event_type>.<user_id>`.
    pub fn routing_key(&self) -> String {
        format!("{}.{}", self.event_type, self.user_id)
    }
}
