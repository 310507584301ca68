//! Notification priorities (spec 2.2): integers on the wire, names in routing keys.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// How urgent a notification is. `Urgent` bypasses the bounded queue (spec 8.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// 0: may wait.
    Low,
    /// 1: the default.
    #[default]
    Normal,
    /// 2: ahead of normal traffic.
    High,
    /// 3: handled at once, never rate-limited or queued behind others.
    Urgent,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 4] = [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent];

    /// The spec's integer value.
    pub fn as_u8(self) -> u8 {
        match self {
            Priority::Low => 0,
            Priority::Normal => 1,
            Priority::High => 2,
            Priority::Urgent => 3,
        }
    }

    /// The name used in routing keys and accepted in requests.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// The priority with the spec's integer value.
    pub fn from_u8(value: u8) -> Option<Self> {
        Self::ALL.get(usize::from(value)).copied()
    }

    /// The priority with a name (`low`, `normal`, `high`, `urgent`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.as_u8())
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PriorityVisitor;
        impl Visitor<'_> for PriorityVisitor {
            type Value = Priority;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a priority: 0-3 or one of low, normal, high, urgent")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Priority, E> {
                u8::try_from(v)
                    .ok()
                    .and_then(Priority::from_u8)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Priority, E> {
                u64::try_from(v)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Priority, E> {
                Priority::from_name(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(PriorityVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_spec_integer() {
        assert_eq!(serde_json::to_string(&Priority::Urgent).unwrap(), "3");
        assert_eq!(serde_json::to_string(&Priority::default()).unwrap(), "1");
    }

    #[test]
    fn accepts_integers_and_names() {
        assert_eq!(serde_json::from_str::<Priority>("0").unwrap(), Priority::Low);
        assert_eq!(serde_json::from_str::<Priority>("\"high\"").unwrap(), Priority::High);
    }

    #[test]
    fn rejects_out_of_range_values() {
        for raw in ["4", "-1", "\"HIGH\"", "1.5", "null"] {
            assert!(serde_json::from_str::<Priority>(raw).is_err(), "{raw}");
        }
    }
}
