//! WebSocket frames (spec 3) and the gateway's typed close codes.

use crate::Priority;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// The base WebSocket message (spec 3.1), used for the gateway's own frames (`pong`, `error`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WsMessage {
    /// The frame type, e.g. `pong` or `error`.
    #[serde(rename = "type")]
    pub message_type: String,
    /// A human-readable text.
    pub content: String,
    /// Structured data (`null` when there is none).
    pub data: Value,
    /// The server's time, `YYYY-MM-DD HH:MM:SS`.
    pub time: String,
}

impl WsMessage {
    /// The frame as JSON text.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// An error frame: `{"type":"error","content":message,"data":{"code":code},...}`.
    pub fn error(code: &str, message: impl Into<String>, time: String) -> Self {
        let mut data = Map::new();
        data.insert("code".to_owned(), Value::String(code.to_owned()));
        Self { message_type: "error".to_owned(), content: message.into(), data: Value::Object(data), time }
    }

    /// Sent before a replay when older offline messages were dropped (inbox full or expired):
    /// `{"type":"offline_overflow","data":{"dropped":N},...}`.
    pub fn offline_overflow(dropped: u64, time: String) -> Self {
        let mut data = Map::new();
        data.insert("dropped".to_owned(), Value::from(dropped));
        Self {
            message_type: "offline_overflow".to_owned(),
            content: format!("{dropped} older notifications expired before you reconnected"),
            data: Value::Object(data),
            time,
        }
    }

    /// Tells a user's other devices that a notice was read or confirmed on one of them:
    /// `{"type":"sync","data":{"event":"read","message_id":...},...}`.
    pub fn sync(event: crate::DeliveryEventType, message_id: &str, time: String) -> Self {
        let mut data = Map::new();
        data.insert("event".to_owned(), Value::String(event.as_str().to_owned()));
        data.insert("message_id".to_owned(), Value::String(message_id.to_owned()));
        Self { message_type: "sync".to_owned(), content: String::new(), data: Value::Object(data), time }
    }

    /// The answer to a client's application-level `{"type":"ping"}`.
    pub fn pong(time: String) -> Self {
        Self { message_type: "pong".to_owned(), content: String::new(), data: Value::Null, time }
    }
}

/// A notification as a client receives it (spec 3.2), owned; for clients and tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WsNotification {
    /// The notification type.
    #[serde(rename = "type")]
    pub notification_type: String,
    /// The text to show.
    pub content: String,
    /// `priority`, `need_confirm` and the sender's own data fields.
    pub data: Map<String, Value>,
    /// When Herald accepted it.
    pub time: String,
    /// Its id, for deduplication and receipts.
    pub message_id: String,
}

/// The spec 3.2 frame, borrowed from a [`crate::NotificationMessage`] and serialised once per
/// message: `data` holds `priority` and `need_confirm` followed by the sender's fields.
#[derive(Clone, Copy, Debug)]
pub struct ClientFrame<'a> {
    pub(crate) notification_type: &'a str,
    pub(crate) content: &'a str,
    pub(crate) priority: Priority,
    pub(crate) need_confirm: bool,
    pub(crate) extra: Option<&'a Map<String, Value>>,
    pub(crate) time: &'a str,
    pub(crate) message_id: &'a str,
}

impl ClientFrame<'_> {
    /// The frame as JSON text.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

struct FrameData<'a>(&'a ClientFrame<'a>);

impl Serialize for FrameData<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let extra = self.0.extra;
        let mut map = s.serialize_map(Some(2 + extra.map_or(0, Map::len)))?;
        map.serialize_entry("priority", &self.0.priority)?;
        map.serialize_entry("need_confirm", &self.0.need_confirm)?;
        for (key, value) in extra.into_iter().flatten() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl Serialize for ClientFrame<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("type", self.notification_type)?;
        map.serialize_entry("content", self.content)?;
        map.serialize_entry("data", &FrameData(self))?;
        map.serialize_entry("time", self.time)?;
        map.serialize_entry("message_id", self.message_id)?;
        map.end()
    }
}

/// A WebSocket close code with the reason sent beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseCode {
    /// The numeric code (RFC 6455 section 7.4; 4000-4999 are Herald's own).
    pub code: u16,
    /// The reason text sent in the close frame.
    pub reason: &'static str,
}

impl CloseCode {
    /// 1000: the client asked to close.
    pub const NORMAL: Self = Self { code: 1000, reason: "closed" };
    /// 1001: the server is shutting down; reconnect to another replica.
    pub const GOING_AWAY: Self = Self { code: 1001, reason: "server shutting down" };
    /// 1003: the client sent a binary frame; Herald speaks JSON text only.
    pub const UNSUPPORTED_DATA: Self = Self { code: 1003, reason: "text frames only" };
    /// 1007: a text frame that is not valid UTF-8.
    pub const INVALID_PAYLOAD: Self = Self { code: 1007, reason: "text is not valid UTF-8" };
    /// 1008: the token expired while the connection was open.
    pub const POLICY_VIOLATION: Self = Self { code: 1008, reason: "token expired" };
    /// 1009: the client sent a frame over the size limit.
    pub const MESSAGE_TOO_BIG: Self = Self { code: 1009, reason: "frame too large" };
    /// 1011: an unexpected server-side error.
    pub const INTERNAL_ERROR: Self = Self { code: 1011, reason: "internal error" };
    /// 4000: no frame or pong from the client within the heartbeat timeout.
    pub const HEARTBEAT_TIMEOUT: Self = Self { code: 4000, reason: "heartbeat timeout" };
    /// 4001: the client could not keep up with its messages; reconnect to replay.
    pub const SLOW_CLIENT: Self = Self { code: 4001, reason: "slow client: send buffer full" };
    /// 4002: the client broke the WebSocket protocol.
    pub const PROTOCOL_ERROR: Self = Self { code: 4002, reason: "protocol error" };
    /// 4003: the user already has `ws.max_connections_per_user` connections on this replica;
    /// close one (or wait for a dead one's heartbeat to run out) before opening another.
    pub const TOO_MANY_CONNECTIONS: Self = Self { code: 4003, reason: "too many connections for this user" };
}
