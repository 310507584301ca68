//! The push providers and what they have in common. A provider takes one send and tells what
//! became of it ([`Outcome`]); [`Providers`] picks the provider of a device by its type:
//! - `android` → Firebase Cloud Messaging HTTP v1 ([`fcm::Fcm`]) when FCM is configured (in the
//!   push config API, or `mobile.fcm_credentials_file`);
//! - `ios` with an APNs device token (64 hex digits) → APNs ([`apns::Apns`]) when APNs is
//!   configured (the API, or `mobile.apns_key_file`; an iOS device registered with a UniPush
//!   client id stays with the cloud function);
//! - `web` → Web Push ([`webpush::WebPush`]) when it is configured (the API, or
//!   `mobile.web_push_vapid_key_file`; else the send fails: the cloud function knows no browsers);
//! - everything else → the original's UniPush-style cloud function ([`UniPush`]) at the URL of
//!   the push config API.
//!
//! Which settings are in force, and switching to new ones while the worker runs, is [`load`]'s.
//!
//! A failure carries a reason (for metrics and for what the worker does next: a dead token
//! deactivates its device, a refused credential stops the provider, a `Retry-After` delays the
//! retry) and a message (for the push log).

pub mod apns;
pub mod fcm;
pub mod load;
mod unipush;
pub mod webpush;

pub use unipush::{PushPayload, UniPush};

use std::time::Duration;

/// The most bytes of an answer read; a longer one is cut there (and is a failure if that
/// leaves it unparsable).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The most characters of an answer kept in the push log.
pub const MAX_LOGGED_ANSWER_CHARS: usize = 2000;
/// The longest `Retry-After` honoured: a provider asking for more gets its retry then.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Why a send failed, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The provider answered JSON with a non-zero `errCode`.
    ErrCode,
    /// The answer was not JSON, or JSON without a numeric `errCode`.
    BadAnswer,
    /// An HTTP status other than 2xx (and none of the ones below).
    HttpStatus,
    /// No answer within the timeout.
    Timeout,
    /// The connection could not be made (refused, unreachable, TLS).
    Connect,
    /// Anything else on the way (a reset connection mid-answer, say).
    Transport,
    /// The provider says the device's token will never work again (FCM `UNREGISTERED`, APNs
    /// 410 or `BadDeviceToken`): the device is deactivated at once.
    Unregistered,
    /// The provider refused Herald's own credential (an OAuth2 grant refused, FCM 401/403,
    /// APNs 403 or a topic it does not serve):
    /// no device's fault; the provider's sends stop for `mobile.credential_pause_ms`.
    Credential,
    /// The provider asked to slow down (429), usually with a `Retry-After`.
    Throttled,
    /// Herald will not call where the device says to (a web device's endpoint on a host that is
    /// not a push service in `mobile.web_push_hosts`, or a subscription it cannot read): the
    /// send is dead at once, counted against the device.
    EndpointRefused,
}

impl FailureReason {
    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::ErrCode => "err_code",
            FailureReason::BadAnswer => "bad_answer",
            FailureReason::HttpStatus => "http_status",
            FailureReason::Timeout => "timeout",
            FailureReason::Connect => "connect",
            FailureReason::Transport => "transport",
            FailureReason::Unregistered => "unregistered",
            FailureReason::Credential => "credential",
            FailureReason::Throttled => "throttled",
            FailureReason::EndpointRefused => "endpoint_refused",
        }
    }

    /// Every reason.
    pub const ALL: [FailureReason; 10] = [
        FailureReason::ErrCode,
        FailureReason::BadAnswer,
        FailureReason::HttpStatus,
        FailureReason::Timeout,
        FailureReason::Connect,
        FailureReason::Transport,
        FailureReason::Unregistered,
        FailureReason::Credential,
        FailureReason::Throttled,
        FailureReason::EndpointRefused,
    ];
}

/// What became of a send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The provider took it.
    Sent {
        /// Its answer, cut to [`MAX_LOGGED_ANSWER_CHARS`].
        answer: String,
    },
    /// It did not.
    Failed {
        /// Why, as a label.
        reason: FailureReason,
        /// Why, for a person (the push log's `err_message`).
        message: String,
        /// The provider's answer, if any, cut to [`MAX_LOGGED_ANSWER_CHARS`].
        answer: String,
        /// The provider's `Retry-After`, at most [`MAX_RETRY_AFTER`].
        retry_after: Option<Duration>,
    },
}

impl Outcome {
    fn failed(reason: FailureReason, message: String, answer: String) -> Self {
        Outcome::Failed { reason, message, answer, retry_after: None }
    }
}

/// Timeouts of provider calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderTimeouts {
    /// To establish the connection.
    pub connect: Duration,
    /// For the whole call, answer included.
    pub total: Duration,
}

impl Default for ProviderTimeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(2), total: Duration::from_secs(5) }
    }
}

/// Which provider a send goes through, as the `provider` metric label and in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// The original's cloud function.
    UniPush,
    /// Firebase Cloud Messaging.
    Fcm,
    /// Apple's push service.
    Apns,
    /// Browsers' push services.
    WebPush,
}

impl ProviderKind {
    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::UniPush => "unipush",
            ProviderKind::Fcm => "fcm",
            ProviderKind::Apns => "apns",
            ProviderKind::WebPush => "webpush",
        }
    }

    /// For people.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::UniPush => "the push provider",
            ProviderKind::Fcm => "FCM",
            ProviderKind::Apns => "APNs",
            ProviderKind::WebPush => "Web Push",
        }
    }

    /// Every provider.
    pub const ALL: [ProviderKind; 4] =
        [ProviderKind::UniPush, ProviderKind::Fcm, ProviderKind::Apns, ProviderKind::WebPush];
}

/// A configurable provider's state in a worker.
#[derive(Debug)]
pub enum Slot<T> {
    /// Not configured: its devices go to the original's provider (browsers get nothing).
    Off,
    /// Configured and loaded.
    Ready(std::sync::Arc<T>),
    /// Configured, but its settings do not load (why, for the push log): its sends fail, not
    /// counted against the devices, until they do.
    Broken(std::sync::Arc<str>),
}

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        match self {
            Slot::Off => Slot::Off,
            Slot::Ready(provider) => Slot::Ready(provider.clone()),
            Slot::Broken(why) => Slot::Broken(why.clone()),
        }
    }
}

impl<T> Slot<T> {
    /// Whether it is configured at all.
    pub fn is_configured(&self) -> bool {
        !matches!(self, Slot::Off)
    }

    /// The provider, when loaded.
    pub fn ready(&self) -> Option<&std::sync::Arc<T>> {
        match self {
            Slot::Ready(provider) => Some(provider),
            _ => None,
        }
    }
}

/// The providers a worker sends through. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Providers {
    /// The original's provider (its URL comes from the push config API).
    pub unipush: UniPush,
    /// FCM.
    pub fcm: Slot<fcm::Fcm>,
    /// APNs.
    pub apns: Slot<apns::Apns>,
    /// Web Push.
    pub web_push: Slot<webpush::WebPush>,
}

impl Providers {
    /// Only the original's provider.
    pub fn unipush(unipush: UniPush) -> Self {
        Self { unipush, fcm: Slot::Off, apns: Slot::Off, web_push: Slot::Off }
    }

    /// With FCM for Android devices.
    pub fn with_fcm(self, fcm: fcm::Fcm) -> Self {
        Self { fcm: Slot::Ready(std::sync::Arc::new(fcm)), ..self }
    }

    /// With APNs for iOS devices registered with an APNs device token.
    pub fn with_apns(self, apns: apns::Apns) -> Self {
        Self { apns: Slot::Ready(std::sync::Arc::new(apns)), ..self }
    }

    /// With Web Push for browsers.
    pub fn with_web_push(self, web_push: webpush::WebPush) -> Self {
        Self { web_push: Slot::Ready(std::sync::Arc::new(web_push)), ..self }
    }

    /// The provider of a device of type `device_type` (as stored; a type Herald does not know
    /// goes to the original's provider, as every device did there) with `push_id`.
    pub fn kind_for(&self, device_type: &str, push_id: &str) -> ProviderKind {
        match model::DeviceType::parse(device_type) {
            Some(model::DeviceType::Android) if self.fcm.is_configured() => ProviderKind::Fcm,
            Some(model::DeviceType::Ios) if self.apns.is_configured() && apns::is_device_token(push_id) => {
                ProviderKind::Apns
            }
            Some(model::DeviceType::Web) => ProviderKind::WebPush,
            _ => ProviderKind::UniPush,
        }
    }
}

/// A client builder with the worker's user agent, `timeouts` and an idle pool of 90 s.
pub(crate) fn client_builder(timeouts: ProviderTimeouts) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.total)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("herald-mobile-push-worker/", env!("CARGO_PKG_VERSION")))
}

/// Whether `send` goes out at the provider's high priority: Herald's high and urgent notices,
/// and alarms.
pub(crate) fn is_high(send: &model::PushSend) -> bool {
    send.alarm_id.is_some() || send.priority >= model::Priority::High
}

/// The fields FCM and APNs carry beside the alert: `messageId`, `messageType`, and `alarmId` /
/// `category` when there are.
pub(crate) fn push_data(send: &model::PushSend) -> serde_json::Map<String, serde_json::Value> {
    let mut data = serde_json::Map::new();
    data.insert("messageId".into(), send.message_id.clone().into());
    data.insert("messageType".into(), send.message_type.clone().into());
    if let Some(alarm_id) = send.alarm_id.as_ref().filter(|id| !id.is_empty()) {
        data.insert("alarmId".into(), alarm_id.clone().into());
    }
    if let Some(category) = send.category.as_ref().filter(|c| !c.is_empty()) {
        data.insert("category".into(), category.clone().into());
    }
    data
}

/// The answer's text, at most [`MAX_ANSWER_BYTES`] of it.
pub(crate) async fn read_bounded(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `text`, at most `max` characters of it.
pub(crate) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// An error and its causes, on one line.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A reqwest error as a failure: timeout, connect or transport.
pub(crate) fn transport_failure(err: &reqwest::Error, timeouts: ProviderTimeouts, who: &str) -> Outcome {
    let (reason, message) = if err.is_timeout() {
        (FailureReason::Timeout, format!("no answer from {who} within {} ms", timeouts.total.as_millis()))
    } else if err.is_connect() {
        (FailureReason::Connect, format!("cannot connect to {who}: {}", chain(err)))
    } else {
        (FailureReason::Transport, format!("the call to {who} failed: {}", chain(err)))
    };
    Outcome::failed(reason, message, String::new())
}

/// A `Retry-After` header in seconds (the HTTP-date form is not used by FCM), at most
/// [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_answers_are_cut_on_a_character() {
        assert_eq!(cut("告警告警", 2), "告警…");
        assert_eq!(cut("ok", 2), "ok");
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_bounded() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(reqwest::header::RETRY_AFTER, "999999".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
