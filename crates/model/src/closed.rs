//! Closed sets of names (a role, a channel, a status): enums with one fixed name per member on
//! the wire and in storage, parsed once where a name enters and compared as values after.

/// A closed set of names; [`closed_set!`] implements it, with the same methods inherently.
pub trait ClosedSet: Copy + 'static {
    /// The member's name on the wire and in storage.
    fn as_str(self) -> &'static str;
    /// The member named `raw`, if any.
    fn parse(raw: &str) -> Option<Self>;
}

/// Declares a closed set: the enum, serde by name, `ALL` and `NAMES` (in declaration order,
/// which is the order documents and error messages list them in), `as_str`, `parse` and
/// `Display`.
#[macro_export]
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every member, in the documented order.
            pub const ALL: [Self; [$($text),+].len()] = [$(Self::$variant),+];
            /// Every member's name, in the same order.
            pub const NAMES: [&'static str; [$($text),+].len()] = [$($text),+];

            /// The name on the wire and in storage.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The member named `raw` (exactly), if any.
            pub fn parse(raw: &str) -> Option<Self> {
                match raw {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::closed::ClosedSet for $name {
            fn as_str(self) -> &'static str {
                Self::as_str(self)
            }
            fn parse(raw: &str) -> Option<Self> {
                Self::parse(raw)
            }
        }
    };
}

/// Serde for an optional member written as its name, or `""` when absent: `None` is written
/// `""`, and `""`, `null` or a name outside the set read back as `None` (a value from an older
/// or newer producer is "unknown", never a reason to refuse the whole message). Use with
/// `#[serde(default, with = "model::closed::or_empty")]`.
pub mod or_empty {
    use super::ClosedSet;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::borrow::Cow;

    /// Writes the member's name, or `""`.
    pub fn serialize<T: ClosedSet, S: Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.map_or("", ClosedSet::as_str))
    }

    /// Reads a name; `""`, `null` and unknown names are `None`.
    pub fn deserialize<'de, T: ClosedSet, D: Deserializer<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
        let raw: Option<Cow<'de, str>> = Option::deserialize(deserializer)?;
        Ok(raw.as_deref().and_then(T::parse))
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        AdminUserReceiveRecord, DeliveryEvent, DeliveryEventType, DeliveryStatus, LogStatus, PushChannel, PushStatus,
        ReportChannel, Role, Target,
    };
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    /// Every member is written as its name, read back from it, and parsed from it.
    fn round_trips<T>(all: &[T], names: &[&str])
    where
        T: super::ClosedSet + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug + std::fmt::Display,
    {
        assert_eq!(all.len(), names.len());
        for (member, name) in all.iter().zip(names) {
            assert_eq!(serde_json::to_value(member).unwrap(), json!(name));
            assert_eq!(serde_json::from_value::<T>(json!(name)).unwrap(), *member);
            assert_eq!((member.as_str(), member.to_string()), (*name, name.to_string()));
            assert_eq!(T::parse(name), Some(*member));
        }
        assert_eq!(T::parse(""), None);
        assert_eq!(T::parse("Unknown"), None);
        assert!(serde_json::from_value::<T>(json!("Unknown")).is_err());
    }

    #[test]
    fn every_closed_set_round_trips_by_name() {
        round_trips(&Role::ALL, &["admin", "user"]);
        round_trips(&ReportChannel::ALL, &["websocket", "rest", "mobile"]);
        round_trips(&PushChannel::ALL, &["websocket", "offline", "mobile"]);
        round_trips(&DeliveryEventType::ALL, &["sent", "delivered", "failed", "read", "confirmed"]);
        round_trips(&PushStatus::ALL, &["queued", "partial", "delivered", "failed"]);
        round_trips(&DeliveryStatus::ALL, &["pending", "delivered", "failed"]);
        round_trips(&LogStatus::ALL, &["success", "failed"]);
        round_trips(&Target::ALL, &["user", "admin", "all", "group", "custom"]);
        round_trips(&crate::DeviceType::ALL, &["android", "ios", "harmony", "web"]);
        round_trips(&crate::PushLogStatus::ALL, &["sent", "failed", "dead"]);
        assert_eq!(PushStatus::NAMES, ["queued", "partial", "delivered", "failed"]);
    }

    fn event_json() -> serde_json::Value {
        json!({"event_id": "0123456789abcdef0123456789abcdef", "event_type": "delivered",
            "message_id": "1706335800123456789-abc12345", "user_id": 7, "username": "alice",
            "channel": "websocket", "timestamp": "2025-01-27 10:30:00", "user_role": "user",
            "push_channel": "offline"})
    }

    #[test]
    fn a_delivery_event_round_trips_with_every_role_and_push_channel() {
        for role in Role::ALL {
            for push_channel in PushChannel::ALL {
                let mut raw = event_json();
                raw["user_role"] = json!(role.as_str());
                raw["push_channel"] = json!(push_channel.as_str());
                let event: DeliveryEvent = serde_json::from_value(raw.clone()).unwrap();
                assert_eq!((event.user_role, event.push_channel), (Some(role), Some(push_channel)));
                assert_eq!(serde_json::to_value(&event).unwrap(), raw);
            }
        }
    }

    #[test]
    fn an_empty_missing_or_unknown_role_or_push_channel_reads_as_unknown() {
        for (role, push_channel) in
            [(json!(""), json!("")), (json!(null), json!(null)), (json!("superuser"), json!("carrier-pigeon"))]
        {
            let mut raw = event_json();
            raw["user_role"] = role;
            raw["push_channel"] = push_channel;
            let event: DeliveryEvent = serde_json::from_value(raw).unwrap();
            assert_eq!((event.user_role, event.push_channel), (None, None));
        }
        let mut raw = event_json();
        raw.as_object_mut().unwrap().remove("user_role");
        raw.as_object_mut().unwrap().remove("push_channel");
        let event: DeliveryEvent = serde_json::from_value(raw).unwrap();
        assert_eq!((event.user_role, event.push_channel), (None, None));
        // Written as before: an unknown role as "", an unknown push channel left out.
        let written = serde_json::to_value(&event).unwrap();
        assert_eq!(written["user_role"], "");
        assert!(written.get("push_channel").is_none(), "{written}");
    }

    #[test]
    fn a_report_channel_outside_the_set_is_refused() {
        let mut raw = event_json();
        raw["channel"] = json!("carrier-pigeon");
        assert!(serde_json::from_value::<DeliveryEvent>(raw).is_err());
    }

    #[test]
    fn a_receive_record_writes_unknown_role_and_push_channel_as_empty_strings() {
        let pending = AdminUserReceiveRecord::default();
        let written = serde_json::to_value(&pending).unwrap();
        assert_eq!((&written["user_role"], &written["push_channel"]), (&json!(""), &json!("")));
        assert_eq!(written["delivery_status"], "pending");
        assert_eq!(serde_json::from_value::<AdminUserReceiveRecord>(written).unwrap(), pending);
        let received = AdminUserReceiveRecord {
            user_role: Some(Role::Admin),
            push_channel: Some(PushChannel::Websocket),
            delivery_status: DeliveryStatus::Delivered,
            ..pending
        };
        let written = serde_json::to_value(&received).unwrap();
        assert_eq!((&written["user_role"], &written["push_channel"]), (&json!("admin"), &json!("websocket")));
        assert_eq!(serde_json::from_value::<AdminUserReceiveRecord>(written).unwrap(), received);
    }
}
