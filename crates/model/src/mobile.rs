//! The mobile half's wire types (mobile-push-analysis.md): device types and the registration
//! request mobile apps send. Field names are the original's (`pushId`, `deviceType`), which
//! existing apps speak.

use crate::UserId;
use serde::Deserialize;

crate::closed_set! {
    /// The operating system of a registered device; it decides the push id's format.
    pub enum DeviceType {
        /// Android (a UniPush client id, or a vendor or FCM token).
        Android = "android",
        /// iOS (a UniPush client id or an APNs device token).
        Ios = "ios",
        /// HarmonyOS (a UniPush client id or a Push Kit token).
        Harmony = "harmony",
        /// A browser (a Web Push subscription: registered as its JSON, kept under a push id
        /// derived from its endpoint).
        Web = "web",
    }
}

/// A device's state in `message_push_manage.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Logged out or deactivated by a cleanup rule: sent nothing.
    Inactive = 0,
    /// Registered and receiving pushes.
    Active = 1,
}

impl DeviceStatus {
    /// The stored number.
    pub const fn code(self) -> i16 {
        self as i16
    }

    /// The status stored as `code`, if any.
    pub fn from_code(code: i16) -> Option<Self> {
        match code {
            0 => Some(Self::Inactive),
            1 => Some(Self::Active),
            _ => None,
        }
    }
}

/// `POST /api/message_push`: the device a logged-in user's app registers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterDeviceRequest {
    /// The provider's id of the app install.
    #[serde(rename = "pushId")]
    pub push_id: String,
    /// `android`, `ios` or `harmony`.
    #[serde(rename = "deviceType")]
    pub device_type: String,
}

/// `POST /api/message_push/logout`: the device a user's app stops receiving on.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutDeviceRequest {
    /// The push id registered before.
    #[serde(rename = "pushId")]
    pub push_id: String,
}

/// `POST /api/message_push/config`: the provider's URL.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfigRequest {
    /// An absolute http or https URL.
    pub url: String,
}

crate::closed_set! {
    /// What became of one provider send attempt (`message_push_log.status`).
    pub enum PushLogStatus {
        /// The provider took it.
        Sent = "sent",
        /// It failed and will be tried again.
        Failed = "failed",
        /// It failed on its last attempt: dead-lettered, not tried again (until an admin retries it).
        Dead = "dead",
    }
}

/// `POST /api/message_push/alarm`: an alarm for every active device of a tenant (the
/// original's `AlarmMessagePushSend`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmRequest {
    /// The tenant whose devices get it.
    pub tenant_id: String,
    /// What triggered it: the title is `告警:<triggered>`.
    pub triggered: String,
    /// The alarm's configuration id, sent as `alarm_id`.
    pub alarm_config_id: String,
    /// The device that raised it: the content.
    pub device_number: String,
}

/// An alarm on its way to a tenant's devices: published once by ingest-api on the mobile
/// exchange (routing key `alarm`), expanded by the worker into one send per active device.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct AlarmJob {
    /// The alarm's id (a message id): each device's send is `<job_id>:<device id>`.
    pub job_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// `告警:<triggered>`.
    pub title: String,
    /// The device number.
    pub content: String,
    /// The alarm's configuration id.
    pub alarm_id: String,
}

/// The routing key of one send on the mobile exchange.
pub const SEND_ROUTING_KEY: &str = "send";
/// The routing key of an alarm job on the mobile exchange.
pub const ALARM_ROUTING_KEY: &str = "alarm";
/// The routing key of a notice whose mobile fallback is due (the envelope, delayed by its
/// `fallback.mobile_after_secs`) on the mobile exchange.
pub const FALLBACK_ROUTING_KEY: &str = "fallback";

/// One send: a notice or an alarm to one device, as the mobile-push-worker receives it on the
/// mobile exchange (routing key `send`), one message per attempt.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct PushSend {
    /// The same across the send's attempts (and a retry an admin asks for gets a new one).
    pub send_id: String,
    /// 1 for the first try.
    pub attempt: i32,
    /// The notice or alarm.
    pub message_id: String,
    /// The device's user.
    pub user_id: UserId,
    /// The device.
    pub push_id: String,
    /// The notice's type (`alarm` for alarms).
    pub message_type: String,
    /// The title.
    pub title: String,
    /// The text.
    pub content: String,
    /// The alarm's config id, for alarms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_id: Option<String>,
    /// The category passed to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The notice's priority (an alarm's is normal; FCM sends alarms as high anyway). Sends
    /// queued before it existed read as normal.
    #[serde(default)]
    pub priority: crate::Priority,
}

impl PushSend {
    /// Why the send cannot be logged as it is (a column it would not fit), if so: such a
    /// message is dead-lettered, never retried.
    pub fn malformed(&self) -> Option<String> {
        let fields = [
            ("send_id", &self.send_id, 128),
            ("message_id", &self.message_id, 40),
            ("push_id", &self.push_id, 255),
            ("message_type", &self.message_type, 64),
        ];
        for (name, value, max) in fields {
            if value.is_empty() || value.chars().count() > max {
                return Some(format!("{name} must be 1 to {max} characters"));
            }
        }
        if self.attempt < 1 {
            return Some(format!("attempt must be positive, got {}", self.attempt));
        }
        if [&self.title, &self.content].iter().any(|text| text.contains('\0')) {
            return Some("title and content must not hold NUL".to_owned());
        }
        None
    }

    /// The provider's `Idempotency-Key` of this attempt.
    pub fn key(&self) -> String {
        format!("{}:{}", self.send_id, self.attempt)
    }
}
