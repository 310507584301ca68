//! Herald's wire types, shared by every service: the notification envelope, WebSocket frames,
//! records, offline messages, API envelopes and the error-code table of the message-format spec.

pub mod api;
pub mod channel;
pub mod closed;
pub mod error_code;
pub mod event;
pub mod message_id;
pub mod mobile;
pub mod notification;
pub mod notification_type;
pub mod offline;
pub mod priority;
pub mod push_provider;
pub mod record;
pub mod role;
pub mod target;
pub mod time_format;
pub mod ws;

pub use api::{ApiResponse, FailureData, PushRecordItem, PushRecordPage, PushRecordStats, PushResult, PushStatus};
pub use channel::{Channels, Fallback, MAX_FALLBACK_SECS, NoticeChannel};
pub use closed::ClosedSet;
pub use error_code::ErrorCode;
pub use event::{DeliveryEvent, DeliveryEventType, MAX_USER_AGENT_CHARS, PushChannel, ReportChannel};
pub use message_id::{MessageId, MessageIdError};
pub use mobile::{
    AlarmJob, AlarmRequest, DeviceStatus, DeviceType, LogoutDeviceRequest, PushConfigRequest, PushLogStatus, PushSend,
    RegisterDeviceRequest,
};
pub use notification::{Audience, NotificationMessage, Sender};
pub use notification_type::{NotificationType, NotificationTypeError};
pub use offline::OfflineMessage;
pub use priority::Priority;
pub use push_provider::{ApnsSettings, FcmSettings, ProviderSettings, PushProvider, SecretRef, WebPushSettings};
pub use record::{AdminUserReceiveRecord, DeliveryStatus, LogStatus, NotificationLog, PushRecord};
pub use role::Role;
pub use target::Target;
pub use time_format::TimeFormat;
pub use ws::{ClientFrame, CloseCode, WsMessage, WsNotification};

/// A user's id: the spec's `int`, always positive.
pub type UserId = i64;
