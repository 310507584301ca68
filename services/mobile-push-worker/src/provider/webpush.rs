//! Web Push (RFC 8030) to browsers: one `POST` to the subscription's endpoint, the payload
//! encrypted for the browser (`aes128gcm`, RFC 8291) and signed for the push service with
//! Herald's VAPID key (RFC 8292: `Authorization: vapid t=<JWT>, k=<public key>`, the JWT's `aud`
//! the endpoint's origin, `sub` the operator's contact, `exp` [`WebPushConfig::ttl`] away, at most
//! 24 hours): the encryption by the `web-push-native` crate, the JWT by its `jwt-simple`.
//!
//! Headers: `TTL` (how long the push service keeps it for a browser that is offline),
//! `Urgency` (`high` for Herald's high and urgent notices and for alarms, else `normal`), `Topic`
//! (from the message id: a redelivered attempt replaces, not doubles, one still waiting at the
//! push service). The payload, what the service worker's `push` event gets: `{"title", "body",
//! "tag": <message id>, "data": {"messageId", "messageType", "alarmId"?, "category"?}}`, the body
//! cut so that the whole fits a push message ([`MAX_PLAINTEXT_BYTES`]).
//!
//! Only endpoints on the push services in `mobile.web_push_hosts` are called: the endpoint comes
//! from a browser, and an endpoint anywhere else would make the worker post to a host of the
//! registrant's choosing.
//!
//! Answers: 2xx sent (the `Location` kept as the answer); 404 and 410: the subscription is dead;
//! 401 and 403: the VAPID key refused (the credential); 429 throttled (`Retry-After`); anything
//! else a failure, retried.

use super::{
    FailureReason, MAX_LOGGED_ANSWER_CHARS, Outcome, ProviderTimeouts, client_builder, cut, is_high, push_data,
    read_bounded, retry_after, transport_failure,
};
use base64::Engine as _;
use model::PushSend;
use serde_json::{Value, json};
use std::time::Duration;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike as _, ES256KeyPair};
use web_push_native::{Auth, WebPushBuilder, p256};

/// The largest payload before encryption: a push message is at most 4096 bytes, of which the
/// `aes128gcm` header (with the 65-byte key id) takes 86 and the record's padding delimiter and
/// tag 17.
pub const MAX_PLAINTEXT_BYTES: usize = 4096 - 86 - 17;
/// The longest `TTL` (and VAPID `exp`): push services refuse a JWT valid for more than 24 hours.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// The push services Herald sends to unless told otherwise (a host, or every subdomain of a
/// domain written with a leading dot).
pub const DEFAULT_HOSTS: [&str; 5] = [
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    ".push.apple.com",
    ".notify.windows.com",
    "push.services.mozilla.com",
];

/// What Web Push needs besides the key.
#[derive(Clone, Debug)]
pub struct WebPushConfig {
    /// The operator's contact, `mailto:...` or `https://...` (the JWT's `sub`).
    pub subject: String,
    /// How long a push service keeps a push for an offline browser (and the JWT's lifetime).
    pub ttl: Duration,
    /// The endpoint hosts sent to ([`DEFAULT_HOSTS`]).
    pub hosts: Vec<String>,
}

/// A Web Push sender for one VAPID key. Cheap to share (`Arc`).
pub struct WebPush {
    client: reqwest::Client,
    key: ES256KeyPair,
    config: WebPushConfig,
    timeouts: ProviderTimeouts,
}

impl std::fmt::Debug for WebPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPush").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Why Web Push could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("Web Push: {0}")]
pub struct WebPushError(String);

impl WebPush {
    /// A sender signing with the VAPID key: a PKCS#8 PEM, or the raw private key in base64url (what
    /// `web-push generate-vapid-keys` prints).
    pub fn from_key(key: &str, config: WebPushConfig, timeouts: ProviderTimeouts) -> Result<Self, WebPushError> {
        let key = key.trim();
        // The errors name the problem, never the key.
        let key = if key.starts_with("-----BEGIN") {
            ES256KeyPair::from_pem(key)
                .map_err(|_| WebPushError("the VAPID key is not a P-256 private key in PKCS#8 PEM".into()))?
        } else {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(key.trim_end_matches('='))
                .map_err(|_| WebPushError("the VAPID key is neither PEM nor base64url".into()))?;
            ES256KeyPair::from_bytes(&raw)
                .map_err(|_| WebPushError("the VAPID key is not a P-256 private key".into()))?
        };
        if !(config.subject.starts_with("mailto:") || config.subject.starts_with("https://")) {
            return Err(WebPushError("the subject must be a mailto: or https:// contact".into()));
        }
        if config.ttl.is_zero() || config.ttl > MAX_TTL {
            return Err(WebPushError("the TTL must be 1 s to 24 h".into()));
        }
        let client = client_builder(timeouts)
            .build()
            .map_err(|err| WebPushError(format!("cannot build the HTTP client: {err}")))?;
        Ok(Self { client, key, config, timeouts })
    }

    /// The application server key browsers subscribe with (`applicationServerKey`), base64url.
    pub fn public_key(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.key.public_key().public_key().to_bytes_uncompressed())
    }

    /// Whether the push service at `host` is one Herald sends to.
    pub fn allows_host(&self, host: &str) -> bool {
        self.config.hosts.iter().any(|allowed| match allowed.strip_prefix('.') {
            Some(domain) => host.strip_suffix(domain).is_some_and(|sub| sub.ends_with('.')),
            None => host.eq_ignore_ascii_case(allowed),
        })
    }

    /// Sends `send` to the browser subscribed as `subscription` (the device's stored JSON).
    pub async fn send(&self, send: &PushSend, subscription: Option<&str>) -> Outcome {
        let target = match self.target(subscription) {
            Ok(target) => target,
            Err(why) => return Outcome::failed(FailureReason::EndpointRefused, why, String::new()),
        };
        let authorization = match self.authorization(&target.origin) {
            Ok(authorization) => authorization,
            Err(err) => {
                let message = format!("cannot sign the VAPID token: {err}");
                return Outcome::failed(FailureReason::Credential, message, String::new());
            }
        };
        let builder =
            WebPushBuilder::new(target.endpoint, target.p256dh, target.auth).with_valid_duration(self.config.ttl);
        let request = match builder.build(payload(send)) {
            Ok(request) => request,
            Err(err) => {
                let message = format!("cannot encrypt the push: {err}");
                return Outcome::failed(FailureReason::EndpointRefused, message, String::new());
            }
        };
        let (parts, body) = request.into_parts();
        let mut request = self.client.post(parts.uri.to_string()).headers(parts.headers).body(body);
        request = request.header("authorization", authorization);
        request = request.header("urgency", if is_high(send) { "high" } else { "normal" });
        request = request.header("topic", topic(&send.message_id));
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return transport_failure(&err, self.timeouts, "the push service"),
        };
        let status = response.status();
        let delay = retry_after(response.headers());
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let answer = match read_bounded(response).await {
            Ok(answer) => answer,
            Err(err) => return transport_failure(&err, self.timeouts, "the push service"),
        };
        if status.is_success() {
            let answer = match location {
                Some(location) => format!("HTTP {} {location}", status.as_u16()),
                None => format!("HTTP {}", status.as_u16()),
            };
            return Outcome::Sent { answer: cut(&answer, MAX_LOGGED_ANSWER_CHARS) };
        }
        let reason = match status.as_u16() {
            404 | 410 => FailureReason::Unregistered,
            401 | 403 => FailureReason::Credential,
            429 => FailureReason::Throttled,
            _ => FailureReason::HttpStatus,
        };
        let message = format!("the push service answered HTTP {} {}", status.as_u16(), cut(answer.trim(), 200));
        Outcome::Failed { reason, message, answer: cut(&answer, MAX_LOGGED_ANSWER_CHARS), retry_after: delay }
    }

    /// The VAPID `Authorization` for the push service at `origin`. Made here rather than by the
    /// crate's `with_vapid`, whose `aud` drops the port: RFC 8292's `aud` is the origin, port
    /// included (push services listen on 443, where the two agree; a local one does not).
    fn authorization(&self, origin: &str) -> Result<String, web_push_native::jwt_simple::Error> {
        use web_push_native::jwt_simple::algorithms::ECDSAP256KeyPairLike as _;
        use web_push_native::jwt_simple::claims::Claims;
        let claims = Claims::create(self.config.ttl.into()).with_audience(origin).with_subject(&self.config.subject);
        Ok(format!("vapid t={}, k={}", self.key.sign(claims)?, self.public_key()))
    }

    /// Where and for whom `subscription` says to send, or why not.
    fn target(&self, subscription: Option<&str>) -> Result<Target, String> {
        let subscription = subscription.ok_or("the web device has no Web Push subscription stored")?;
        let parsed: Value =
            serde_json::from_str(subscription).map_err(|err| format!("the stored subscription: {err}"))?;
        let field = |pointer: &str| parsed.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
        let endpoint: url::Url =
            field("/endpoint").parse().map_err(|err| format!("the subscription's endpoint: {err}"))?;
        let host = endpoint.host_str().unwrap_or_default();
        if !self.allows_host(host) {
            return Err(format!("the subscription's push service {host} is not in mobile.web_push_hosts"));
        }
        let decode = |name: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(field(name).trim_end_matches('='))
                .map_err(|err| format!("the subscription's {name}: {err}"))
        };
        let p256dh = p256::PublicKey::from_sec1_bytes(&decode("/keys/p256dh")?)
            .map_err(|_| "the subscription's keys.p256dh is not a P-256 public key".to_owned())?;
        let auth = decode("/keys/auth")?;
        if auth.len() != 16 {
            return Err("the subscription's keys.auth is not 16 bytes".to_owned());
        }
        let origin = endpoint.origin().ascii_serialization();
        let endpoint = endpoint.as_str().parse().map_err(|err| format!("the subscription's endpoint: {err}"))?;
        Ok(Target { endpoint, origin, p256dh, auth: Auth::clone_from_slice(&auth) })
    }
}

struct Target {
    endpoint: http::Uri,
    /// `scheme://host[:port]`, the VAPID token's audience.
    origin: String,
    p256dh: p256::PublicKey,
    auth: Auth,
}

/// The `Topic` of a push for `message_id`: at most 32 characters of the URL-safe alphabet.
fn topic(message_id: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(message_id.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..24])
}

/// The payload of `send`, at most [`MAX_PLAINTEXT_BYTES`] (the body cut on a character).
fn payload(send: &PushSend) -> Vec<u8> {
    let render = |body: &str| {
        let data = Value::Object(push_data(send));
        json!({"title": send.title, "body": body, "tag": send.message_id, "data": data}).to_string().into_bytes()
    };
    let mut bytes = render(&send.content);
    let mut keep = send.content.chars().count();
    while bytes.len() > MAX_PLAINTEXT_BYTES && keep > 0 {
        // JSON escapes may make a character up to 6 bytes: cut by what is over, at least one.
        let over = (bytes.len() - MAX_PLAINTEXT_BYTES).div_ceil(6).max(1);
        keep = keep.saturating_sub(over);
        bytes = render(&cut(&send.content, keep));
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web_push(hosts: &[&str]) -> WebPush {
        let config = WebPushConfig {
            subject: "mailto:ops@example.com".into(),
            ttl: Duration::from_secs(60),
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        };
        let key = ES256KeyPair::generate().to_pem().unwrap();
        WebPush::from_key(&key, config, ProviderTimeouts::default()).unwrap()
    }

    #[test]
    fn only_the_listed_push_services_are_called() {
        let push = web_push(&DEFAULT_HOSTS);
        for host in ["fcm.googleapis.com", "web.push.apple.com", "wns2-par02p.notify.windows.com"] {
            assert!(push.allows_host(host), "{host}");
        }
        for host in ["push.apple.com.evil.example", "evilpush.apple.com", "127.0.0.1", "fcm.googleapis.com.example", ""]
        {
            assert!(!push.allows_host(host), "{host}");
        }
    }

    #[test]
    fn a_long_notice_is_cut_to_fit_one_push_message() {
        let send = PushSend {
            send_id: "s".into(),
            attempt: 1,
            message_id: "m".into(),
            user_id: 1,
            push_id: "web:x".into(),
            message_type: "system_notice".into(),
            title: "t".into(),
            content: "告\"".repeat(3000),
            alarm_id: None,
            category: None,
            priority: model::Priority::Normal,
        };
        let bytes = payload(&send);
        assert!(bytes.len() <= MAX_PLAINTEXT_BYTES, "{}", bytes.len());
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(body["body"].as_str().unwrap().ends_with('…'));
        assert!(bytes.len() > MAX_PLAINTEXT_BYTES - 64, "cut no more than needed: {}", bytes.len());
    }

    #[test]
    fn a_bad_key_or_subject_is_refused_without_showing_the_key() {
        let config = WebPushConfig { subject: "ops@example.com".into(), ttl: Duration::from_secs(60), hosts: vec![] };
        let key = ES256KeyPair::generate().to_pem().unwrap();
        assert!(WebPush::from_key(&key, config.clone(), ProviderTimeouts::default()).is_err());
        let config = WebPushConfig { subject: "mailto:ops@example.com".into(), ..config };
        let err = WebPush::from_key("not-a-key!", config, ProviderTimeouts::default()).unwrap_err().to_string();
        assert!(err.contains("neither PEM nor base64url") && !err.contains("not-a-key"), "{err}");
    }
}
