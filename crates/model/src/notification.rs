//! The bus envelope (spec 2.1): a `NotificationMessage` with the fields the spec keeps internal.

use crate::offline::{OFFLINE_PREFIX, OfflineMessage};
use crate::ws::ClientFrame;
use crate::{Channels, Fallback, MessageId, NotificationType, Priority, Target, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who posted a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// The sender's user id (the JWT `sub`).
    #[serde(rename = "sender_id")]
    pub id: UserId,
    /// The sender's display name (the JWT `name`).
    #[serde(rename = "sender_name")]
    pub name: String,
}

/// A notification as it travels between services on the bus.
///
/// Unlike the client frame, the envelope carries the spec's internal fields (`priority`,
/// `target`, `target_ids`, `exclude_ids`, `need_confirm`) and the sender; clients only ever see
/// [`NotificationMessage::client_frame`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationMessage {
    /// The notification type.
    #[serde(rename = "type")]
    pub notification_type: NotificationType,
    /// The text shown to the user.
    pub content: String,
    /// The sender's structured data, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// When Herald accepted the notification, `YYYY-MM-DD HH:MM:SS`.
    pub time: String,
    /// The notification's priority.
    pub priority: Priority,
    /// Who it is for.
    pub target: Target,
    /// The addressed users, for `custom` and `user` targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_ids: Vec<UserId>,
    /// Users who must not receive it, whatever the target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_ids: Vec<UserId>,
    /// Whether recipients are asked to confirm it.
    #[serde(default)]
    pub need_confirm: bool,
    /// The message id.
    pub message_id: MessageId,
    /// The channels it goes out on; left out when WebSocket only (the default), so such an
    /// envelope reads the same as before channels existed.
    #[serde(default, skip_serializing_if = "Channels::is_default")]
    pub channels: Channels,
    /// When its recipients who have not acknowledged it get it on their phones; left out
    /// when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// Who posted it.
    #[serde(flatten)]
    pub sender: Sender,
}

impl NotificationMessage {
    /// The routing key on the notifications exchange: `<target>.<priority>`.
    pub fn routing_key(&self) -> String {
        format!("{}.{}", self.target.as_str(), self.priority.as_str())
    }

    /// The frame a client receives (spec 3.2), borrowing from this message.
    pub fn client_frame(&self) -> ClientFrame<'_> {
        ClientFrame {
            notification_type: self.notification_type.as_str(),
            content: &self.content,
            priority: self.priority,
            need_confirm: self.need_confirm,
            extra: self.data.as_ref(),
            time: &self.time,
            message_id: self.message_id.as_str(),
        }
    }

    /// The entry kept in an offline inbox (spec 5.1): the content prefixed, `data` holding
    /// `priority`, `need_confirm`, the sender's fields and `original_push_time`.
    pub fn offline_entry(&self, saved_at: String) -> OfflineMessage {
        let mut data = Map::new();
        data.insert("priority".to_owned(), Value::from(self.priority.as_u8()));
        data.insert("need_confirm".to_owned(), Value::Bool(self.need_confirm));
        for (key, value) in self.data.iter().flatten() {
            data.insert(key.clone(), value.clone());
        }
        data.insert("original_push_time".to_owned(), Value::String(self.time.clone()));
        OfflineMessage {
            notification_type: self.notification_type.as_str().to_owned(),
            content: format!("{OFFLINE_PREFIX}{}", self.content),
            data,
            time: self.time.clone(),
            message_id: self.message_id.to_string(),
            saved_at,
        }
    }

    /// The users a `user`/`custom` message is for, exclusions applied; empty for broadcasts.
    pub fn explicit_recipients(&self) -> impl Iterator<Item = UserId> + '_ {
        self.target_ids.iter().copied().filter(|id| !self.exclude_ids.contains(id))
    }

    /// Whether a user with `user_id` and the admin role or not is addressed by this message.
    pub fn addresses(&self, user_id: UserId, is_admin: bool) -> bool {
        addresses(self.target, &self.target_ids, &self.exclude_ids, user_id, is_admin)
    }

    /// Who the message is for, without its content: what a receipt is checked against.
    pub fn audience(&self) -> Audience {
        Audience { target: self.target, target_ids: self.target_ids.clone(), exclude_ids: self.exclude_ids.clone() }
    }
}

/// Who a message is for: its target, ids and exclusions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    /// The target.
    pub target: Target,
    /// The addressed users, for `custom` and `user` targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_ids: Vec<UserId>,
    /// Users left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_ids: Vec<UserId>,
}

impl Audience {
    /// Whether a user with `user_id` and the admin role or not is in this audience.
    pub fn includes(&self, user_id: UserId, is_admin: bool) -> bool {
        addresses(self.target, &self.target_ids, &self.exclude_ids, user_id, is_admin)
    }
}

fn addresses(target: Target, target_ids: &[UserId], exclude_ids: &[UserId], user_id: UserId, is_admin: bool) -> bool {
    if exclude_ids.contains(&user_id) {
        return false;
    }
    match target {
        Target::All => true,
        Target::Admin => is_admin,
        Target::User | Target::Custom => target_ids.contains(&user_id),
        // Groups are resolved to user ids before publishing; an unresolved group reaches no one.
        Target::Group => false,
    }
}
