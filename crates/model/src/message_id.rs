//! Message ids: `{unix_nanos}-{first 8 chars of a v4 uuid}` (spec 2.4).

use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

/// A message id such as `1706335800123456789-abc12345`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

/// Why a string is not a message id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a message id; expected {{unix_nanos}}-{{8 letters or digits}}, e.g. 1706335800123456789-abc12345"
)]
pub struct MessageIdError(String);

impl MessageId {
    /// A fresh id stamped with the current time.
    pub fn generate() -> Self {
        Self::from_parts(OffsetDateTime::now_utc().unix_timestamp_nanos(), Uuid::new_v4())
    }

    /// The id for a given time and uuid; `generate` with its inputs made explicit.
    pub fn from_parts(unix_nanos: i128, uuid: Uuid) -> Self {
        let mut suffix = uuid.simple().to_string();
        suffix.truncate(8);
        Self(format!("{unix_nanos}-{suffix}"))
    }

    /// Parses an id received from a client or another service.
    pub fn parse(raw: &str) -> Result<Self, MessageIdError> {
        let bad = || MessageIdError(raw.chars().take(64).collect());
        let (nanos, suffix) = raw.split_once('-').ok_or_else(bad)?;
        let nanos_ok = !nanos.is_empty()
            && nanos.len() <= 20
            && nanos.bytes().all(|b| b.is_ascii_digit())
            && nanos.parse::<u64>().is_ok();
        let suffix_ok = suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
        if nanos_ok && suffix_ok { Ok(Self(raw.to_owned())) } else { Err(bad()) }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The creation time encoded in the id, in nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> u64 {
        self.0.split_once('-').and_then(|(n, _)| n.parse().ok()).unwrap_or_default()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for MessageId {
    type Error = MessageIdError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_the_spec_shape_and_parse_back() {
        let id = MessageId::generate();
        let (nanos, suffix) = id.as_str().split_once('-').unwrap();
        assert!(nanos.len() >= 19 && nanos.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(suffix.len(), 8);
        assert!(suffix.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(MessageId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn suffix_is_the_first_eight_chars_of_the_uuid() {
        let uuid = Uuid::parse_str("abc12345-6789-4def-8123-456789abcdef").unwrap();
        let id = MessageId::from_parts(1_706_335_800_123_456_789, uuid);
        assert_eq!(id.as_str(), "1706335800123456789-abc12345");
        assert_eq!(id.unix_nanos(), 1_706_335_800_123_456_789);
    }

    #[test]
    fn the_spec_examples_parse() {
        for raw in ["1706335800123456789-abc12345", "1706335800123456789-ghi12345"] {
            assert!(MessageId::parse(raw).is_ok(), "{raw}");
        }
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for raw in
            ["", "-abc12345", "123", "123-abc1234", "123-abc123456", "12a-abc12345", "123-abc1234!", "123_abc12345"]
        {
            assert!(MessageId::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<MessageId>("\"nope\"").is_err());
        let id: MessageId = serde_json::from_str("\"1-abcdefgh\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"1-abcdefgh\"");
    }
}
