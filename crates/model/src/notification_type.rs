//! Notification types (spec 1.3): an open set of lower_snake_case names.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// The longest type name accepted.
pub const MAX_TYPE_LEN: usize = 64;

/// A notification type such as `system_notice` or `order_completed`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NotificationType(Cow<'static, str>);

/// Why a string is not a notification type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "type must be lower_snake_case (a-z, 0-9 and single underscores, starting with a letter), at most {MAX_TYPE_LEN} characters"
)]
pub struct NotificationTypeError;

impl NotificationType {
    /// A system notice; the default when a request names no type.
    pub const SYSTEM_NOTICE: Self = Self(Cow::Borrowed("system_notice"));
    /// A maintenance announcement.
    pub const SYSTEM_MAINTAIN: Self = Self(Cow::Borrowed("system_maintain"));
    /// An upgrade announcement.
    pub const SYSTEM_UPGRADE: Self = Self(Cow::Borrowed("system_upgrade"));
    /// A new order.
    pub const ORDER_CREATED: Self = Self(Cow::Borrowed("order_created"));
    /// An order was paid.
    pub const ORDER_PAID: Self = Self(Cow::Borrowed("order_paid"));
    /// An order was cancelled.
    pub const ORDER_CANCELLED: Self = Self(Cow::Borrowed("order_cancelled"));
    /// An order was refunded.
    pub const ORDER_REFUNDED: Self = Self(Cow::Borrowed("order_refunded"));
    /// A login happened.
    pub const USER_LOGIN: Self = Self(Cow::Borrowed("user_login"));
    /// A payment succeeded.
    pub const PAYMENT_SUCCESS: Self = Self(Cow::Borrowed("payment_success"));
    /// A message arrived.
    pub const MESSAGE_RECEIVED: Self = Self(Cow::Borrowed("message_received"));

    /// The ten types the spec names.
    pub const KNOWN: [Self; 10] = [
        Self::SYSTEM_NOTICE,
        Self::SYSTEM_MAINTAIN,
        Self::SYSTEM_UPGRADE,
        Self::ORDER_CREATED,
        Self::ORDER_PAID,
        Self::ORDER_CANCELLED,
        Self::ORDER_REFUNDED,
        Self::USER_LOGIN,
        Self::PAYMENT_SUCCESS,
        Self::MESSAGE_RECEIVED,
    ];

    /// Parses a type name: any lower_snake_case name is accepted, not only the known ten.
    pub fn parse(raw: &str) -> Result<Self, NotificationTypeError> {
        if let Some(known) = Self::KNOWN.iter().find(|t| t.as_str() == raw) {
            return Ok(known.clone());
        }
        let bytes = raw.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= MAX_TYPE_LEN
            && bytes[0].is_ascii_lowercase()
            && bytes.last().is_some_and(|b| *b != b'_')
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
            && !raw.contains("__");
        if ok { Ok(Self(Cow::Owned(raw.to_owned()))) } else { Err(NotificationTypeError) }
    }

    /// The type name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is one of the ten types the spec names.
    pub fn is_known(&self) -> bool {
        Self::KNOWN.contains(self)
    }
}

impl Default for NotificationType {
    fn default() -> Self {
        Self::SYSTEM_NOTICE
    }
}

impl fmt::Display for NotificationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for NotificationType {
    type Error = NotificationTypeError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<NotificationType> for String {
    fn from(t: NotificationType) -> Self {
        t.0.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ten_spec_types_are_known() {
        for t in NotificationType::KNOWN {
            assert!(NotificationType::parse(t.as_str()).unwrap().is_known());
        }
    }

    #[test]
    fn other_snake_case_types_are_accepted() {
        let t = NotificationType::parse("order_completed").unwrap();
        assert!(!t.is_known());
        assert!(NotificationType::parse("alarm2").is_ok());
    }

    #[test]
    fn malformed_types_are_rejected() {
        let too_long = "a".repeat(MAX_TYPE_LEN + 1);
        for raw in ["", "Order", "order-paid", "_x", "x_", "a__b", "9lives", "订单", too_long.as_str()] {
            assert!(NotificationType::parse(raw).is_err(), "{raw}");
        }
        assert!(NotificationType::parse(&"a".repeat(MAX_TYPE_LEN)).is_ok());
    }
}
