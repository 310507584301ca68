//! The channels a notice goes out on: WebSocket clients (live, or their offline inbox) and the
//! recipients' registered mobile devices.

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

crate::closed_set! {
    /// One way a notice reaches its recipients (the request's `channels`).
    pub enum NoticeChannel {
        /// WebSocket clients: a frame to those online, an offline-inbox entry for the others
        /// of a user-addressed notice.
        Websocket = "websocket",
        /// The recipients' active mobile devices, through the push provider.
        Mobile = "mobile",
    }
}

/// The longest `fallback.mobile_after_secs`: a day.
pub const MAX_FALLBACK_SECS: u32 = 86_400;

/// A WebSocket notice's fallback to mobile (the request's `fallback`): a recipient who has not
/// acknowledged it (a `delivered`, `read` or `confirmed` receipt from any connection, or the
/// REST API) `mobile_after_secs` after it was accepted gets it on their active devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    /// Seconds after acceptance, 1 to [`MAX_FALLBACK_SECS`].
    pub mobile_after_secs: u32,
}

/// A notice's channels: a non-empty set, written as a list in [`NoticeChannel::ALL`] order.
/// The default, when a request or an envelope names none, is WebSocket only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Channels {
    websocket: bool,
    mobile: bool,
}

impl Default for Channels {
    fn default() -> Self {
        Self::WEBSOCKET
    }
}

impl Channels {
    /// WebSocket only: what a notice goes out on unless its request says otherwise.
    pub const WEBSOCKET: Self = Self { websocket: true, mobile: false };

    /// The set of `channels`, or `None` when it is empty.
    pub fn of(channels: impl IntoIterator<Item = NoticeChannel>) -> Option<Self> {
        let mut set = Self { websocket: false, mobile: false };
        for channel in channels {
            match channel {
                NoticeChannel::Websocket => set.websocket = true,
                NoticeChannel::Mobile => set.mobile = true,
            }
        }
        (set.websocket || set.mobile).then_some(set)
    }

    /// Whether `channel` is in the set.
    pub fn has(self, channel: NoticeChannel) -> bool {
        match channel {
            NoticeChannel::Websocket => self.websocket,
            NoticeChannel::Mobile => self.mobile,
        }
    }

    /// Whether this is the default set (an envelope leaves it out).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The members, in documented order.
    pub fn iter(self) -> impl Iterator<Item = NoticeChannel> {
        NoticeChannel::ALL.into_iter().filter(move |channel| self.has(*channel))
    }
}

impl Serialize for Channels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for channel in self.iter() {
            seq.serialize_element(&channel)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Channels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChannelList;

        impl<'de> Visitor<'de> for ChannelList {
            type Value = Channels;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a non-empty list of channels ({})", NoticeChannel::NAMES.join(", "))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Channels, A::Error> {
                let mut members = Vec::with_capacity(NoticeChannel::ALL.len());
                while let Some(channel) = seq.next_element::<NoticeChannel>()? {
                    if members.contains(&channel) {
                        return Err(serde::de::Error::custom(format!("channel `{channel}` is listed twice")));
                    }
                    members.push(channel);
                }
                Channels::of(members).ok_or_else(|| serde::de::Error::custom("the list of channels is empty"))
            }
        }

        deserializer.deserialize_seq(ChannelList)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn channels_are_written_as_a_list_in_documented_order() {
        let both = Channels::of([NoticeChannel::Mobile, NoticeChannel::Websocket]).unwrap();
        assert_eq!(serde_json::to_value(both).unwrap(), json!(["websocket", "mobile"]));
        let mobile: Channels = serde_json::from_value(json!(["mobile"])).unwrap();
        assert!(mobile.has(NoticeChannel::Mobile) && !mobile.has(NoticeChannel::Websocket));
        assert!(Channels::default().is_default() && Channels::default().has(NoticeChannel::Websocket));
    }

    #[test]
    fn an_empty_repeated_or_unknown_list_is_refused() {
        for bad in [json!([]), json!(["mobile", "mobile"]), json!(["sms"]), json!("mobile"), json!([1])] {
            assert!(serde_json::from_value::<Channels>(bad.clone()).is_err(), "{bad} should be refused");
        }
    }
}
