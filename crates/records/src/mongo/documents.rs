//! The documents as stored: the spec's fields (4.1-4.3) and what Herald adds to them.

use super::super::{
    NewRecord, Receipt, RecordedEvent, device_info, event_id_of, log_status, millis_of, pushed_millis, status_of,
};
use model::{AdminUserReceiveRecord, DeliveryEventType, DeliveryStatus, LogStatus, NotificationLog, PushRecord};
use model::{PushChannel, PushStatus, Role, Target, TimeFormat, UserId};
use mongodb::bson::{DateTime, oid::ObjectId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A push record as stored (spec 4.1 plus `push_ts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct PushRecordDoc {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub(super) id: Option<ObjectId>,
    pub(super) message_id: String,
    pub(super) content: String,
    pub(super) message_type: String,
    pub(super) target: Target,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) target_user_ids: Vec<UserId>,
    pub(super) recipients_count: String,
    pub(super) status: PushStatus,
    pub(super) success: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) error: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) error_code: String,
    pub(super) push_time: String,
    pub(super) created_at: String,
    pub(super) updated_at: String,
    pub(super) sender_id: UserId,
    pub(super) sender_name: String,
    pub(super) delivered_count: i64,
    pub(super) failed_count: i64,
    pub(super) total_count: i64,
    pub(super) priority: i32,
    pub(super) need_confirm: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) extra_data: Option<Map<String, Value>>,
    /// When it was pushed: range filters, newest-first order, TTL.
    pub(super) push_ts: DateTime,
}

impl PushRecordDoc {
    pub(super) fn new(record: &NewRecord, now: &str, now_ms: i64) -> Self {
        let m = &record.message;
        let total = record.addressed.len() as i64;
        Self {
            id: None,
            message_id: m.message_id.to_string(),
            content: m.content.clone(),
            message_type: m.notification_type.as_str().to_owned(),
            target: m.target,
            target_user_ids: record.addressed.clone(),
            recipients_count: m.target.recipients_count(m.explicit_recipients().count()),
            status: status_of(total, 0, 0),
            success: true,
            error: String::new(),
            error_code: String::new(),
            push_time: m.time.clone(),
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            sender_id: m.sender.id,
            sender_name: m.sender.name.clone(),
            delivered_count: 0,
            failed_count: 0,
            total_count: total,
            priority: i32::from(m.priority.as_u8()),
            need_confirm: m.need_confirm,
            extra_data: m.data.clone(),
            push_ts: DateTime::from_millis(pushed_millis(m, now_ms)),
        }
    }

    pub(super) fn into_view(self) -> PushRecord {
        PushRecord {
            id: self.id.map(|id| id.to_hex()).unwrap_or_default(),
            message_id: self.message_id,
            content: self.content,
            message_type: self.message_type,
            target: self.target,
            target_user_ids: self.target_user_ids,
            recipients_count: self.recipients_count,
            status: self.status,
            success: self.success,
            error: self.error,
            error_code: self.error_code,
            push_time: self.push_time,
            created_at: self.created_at,
            updated_at: self.updated_at,
            sender_id: self.sender_id,
            sender_name: self.sender_name,
            delivered_count: self.delivered_count,
            failed_count: self.failed_count,
            total_count: self.total_count,
            priority: u8::try_from(self.priority).unwrap_or_default(),
            need_confirm: self.need_confirm,
            extra_data: self.extra_data,
        }
    }
}

/// A receive record as stored (spec 4.2 plus `created_ts` and `rev`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct ReceiveRecordDoc {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub(super) id: Option<ObjectId>,
    pub(super) message_id: String,
    pub(super) user_id: UserId,
    pub(super) username: String,
    #[serde(default, with = "model::closed::or_empty")]
    pub(super) user_role: Option<Role>,
    pub(super) is_online: bool,
    pub(super) is_received: bool,
    pub(super) received_at: String,
    pub(super) is_read: bool,
    pub(super) read_at: String,
    pub(super) is_confirmed: bool,
    pub(super) confirmed_at: String,
    pub(super) device_type: String,
    pub(super) platform: String,
    pub(super) browser: String,
    pub(super) client_ip: String,
    pub(super) user_agent: String,
    pub(super) connection_id: String,
    #[serde(default, with = "model::closed::or_empty")]
    pub(super) push_channel: Option<PushChannel>,
    pub(super) delivery_status: DeliveryStatus,
    pub(super) retry_count: i32,
    pub(super) error_message: String,
    pub(super) created_at: String,
    pub(super) updated_at: String,
    /// When it was created: TTL.
    pub(super) created_ts: DateTime,
    /// Bumped on every update; an update names the revision it read.
    #[serde(default)]
    pub(super) rev: i64,
}

impl ReceiveRecordDoc {
    /// The document of a folded receive record, its times rendered by `time` (the spec's
    /// strings are what the document keeps; see the module's documentation).
    pub(super) fn new(r: Receipt, id: Option<ObjectId>, created_ts: DateTime, rev: i64, time: &TimeFormat) -> Self {
        let render = |ms: Option<i64>| ms.map(|ms| time.format_millis(ms)).unwrap_or_default();
        Self {
            id,
            message_id: r.message_id,
            user_id: r.user_id,
            username: r.username,
            user_role: r.user_role,
            is_online: r.is_online,
            is_received: r.is_received,
            received_at: render(r.received_ms),
            is_read: r.is_read,
            read_at: render(r.read_ms),
            is_confirmed: r.is_confirmed,
            confirmed_at: render(r.confirmed_ms),
            device_type: r.device_type,
            platform: r.platform,
            browser: r.browser,
            client_ip: r.client_ip,
            user_agent: r.user_agent,
            connection_id: r.connection_id,
            push_channel: r.push_channel,
            delivery_status: r.delivery_status,
            retry_count: r.retry_count,
            error_message: r.error_message,
            created_at: time.format_millis(r.created_ms),
            updated_at: time.format_millis(r.updated_ms),
            created_ts,
            rev,
        }
    }

    /// The receive record to fold events into: its strings read back at `time`'s offset, the
    /// one they were rendered at.
    pub(super) fn receipt(self, time: &TimeFormat) -> Receipt {
        let instant = |raw: &str| millis_of(time, raw);
        let created_ms = instant(&self.created_at).unwrap_or(self.created_ts.timestamp_millis());
        Receipt {
            message_id: self.message_id,
            user_id: self.user_id,
            username: self.username,
            user_role: self.user_role,
            is_online: self.is_online,
            is_received: self.is_received,
            received_ms: instant(&self.received_at),
            is_read: self.is_read,
            read_ms: instant(&self.read_at),
            is_confirmed: self.is_confirmed,
            confirmed_ms: instant(&self.confirmed_at),
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
            created_ms,
            updated_ms: instant(&self.updated_at).unwrap_or(created_ms),
        }
    }

    pub(super) fn into_view(self) -> AdminUserReceiveRecord {
        AdminUserReceiveRecord {
            id: self.id.map(|id| id.to_hex()).unwrap_or_default(),
            message_id: self.message_id,
            user_id: self.user_id,
            username: self.username,
            user_role: self.user_role,
            is_online: self.is_online,
            is_received: self.is_received,
            received_at: self.received_at,
            is_read: self.is_read,
            read_at: self.read_at,
            is_confirmed: self.is_confirmed,
            confirmed_at: self.confirmed_at,
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
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A log entry as stored (spec 4.3 plus `event_id` and `ts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct NotificationLogDoc {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub(super) id: Option<ObjectId>,
    /// The delivery event's id: one entry per event.
    pub(super) event_id: String,
    pub(super) message_id: String,
    pub(super) user_id: UserId,
    pub(super) username: String,
    pub(super) event_type: DeliveryEventType,
    pub(super) status: LogStatus,
    pub(super) timestamp: String,
    pub(super) created_at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) device_info: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) client_ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) user_agent: String,
    /// The event's time: range filters, order, TTL.
    pub(super) ts: DateTime,
}

impl NotificationLogDoc {
    pub(super) fn new(recorded: &RecordedEvent, time: &TimeFormat, now: &str, now_ms: i64) -> Self {
        let e = &recorded.event;
        Self {
            id: None,
            event_id: event_id_of(recorded),
            message_id: e.message_id.to_string(),
            user_id: e.user_id,
            username: e.username.clone(),
            event_type: e.event_type,
            status: log_status(e.event_type),
            timestamp: e.timestamp.clone(),
            created_at: now.to_owned(),
            error: String::new(),
            device_info: device_info(recorded),
            client_ip: e.client_ip.clone(),
            user_agent: e.user_agent.clone(),
            ts: DateTime::from_millis(millis_of(time, &e.timestamp).unwrap_or(now_ms)),
        }
    }

    pub(super) fn into_view(self) -> NotificationLog {
        NotificationLog {
            id: self.id.map(|id| id.to_hex()).unwrap_or_default(),
            message_id: self.message_id,
            user_id: self.user_id,
            username: self.username,
            event_type: self.event_type,
            status: self.status,
            timestamp: self.timestamp,
            created_at: self.created_at,
            error: self.error,
            device_info: self.device_info,
            client_ip: self.client_ip,
            user_agent: self.user_agent,
        }
    }
}
