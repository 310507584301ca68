//! Apple's push service (APNs), HTTP/2 with token-based authentication: `POST
//! {base}/3/device/{device token}` with a provider token (a JWT, ES256, signed by the team's
//! `.p8` key, header `kid`, claims `iss` = team id and `iat`) made once and reused for
//! [`TOKEN_LIFETIME`] (Apple refuses tokens older than an hour and throttles ones renewed more
//! often than every 20 minutes).
//!
//! Headers: `apns-topic` (the app's bundle id), `apns-push-type: alert`, `apns-priority` (10
//! for Herald's high and urgent notices and for alarms, else 5), `apns-collapse-id` = the
//! message id (a redelivered attempt replaces, not doubles, the notification on the phone).
//! Body: `{"aps": {"alert": {"title", "body"}, "sound": "default"}, "messageId", "messageType",
//! "alarmId"?, "category"?}`.
//!
//! Answers: 200 sent (`apns-id` kept as the answer); `410 Unregistered` and `400
//! BadDeviceToken`: the token is dead; 403 (`InvalidProviderToken`, `ExpiredProviderToken`,
//! `MissingProviderToken`) and `400 BadTopic` / `TopicDisallowed`: the credential; 429
//! throttled; anything else a failure, retried (`Retry-After` honoured when present).

use super::{
    FailureReason, MAX_LOGGED_ANSWER_CHARS, Outcome, ProviderTimeouts, client_builder, cut, is_high, push_data,
    read_bounded, retry_after, transport_failure,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use model::PushSend;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// APNs's production base URL (the sandbox is `https://api.sandbox.push.apple.com`).
pub const DEFAULT_URL: &str = "https://api.push.apple.com";
/// How long a provider token is used before a new one is made.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(50 * 60);

/// What APNs needs to know of the app and the key.
#[derive(Clone, Debug)]
pub struct ApnsConfig {
    /// The key's id (10 characters, from Apple's developer site).
    pub key_id: String,
    /// The team's id.
    pub team_id: String,
    /// The app's bundle id (`apns-topic`).
    pub topic: String,
    /// APNs's base URL.
    pub base_url: String,
}

/// An APNs client for one app. Cheap to share (`Arc`).
pub struct Apns {
    client: reqwest::Client,
    key: EncodingKey,
    config: ApnsConfig,
    lifetime: Duration,
    token: std::sync::Mutex<Option<(String, Instant)>>,
    timeouts: ProviderTimeouts,
}

impl std::fmt::Debug for Apns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apns").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Why APNs could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("APNs: {0}")]
pub struct ApnsError(String);

impl Apns {
    /// A client signing with the team's `.p8` key (its PEM).
    pub fn from_pem(pem: &[u8], config: ApnsConfig, timeouts: ProviderTimeouts) -> Result<Self, ApnsError> {
        // The error names the problem, never the key.
        let key = EncodingKey::from_ec_pem(pem)
            .map_err(|err| ApnsError(format!("the signing key is not a P-256 .p8 key: {err}")))?;
        for (name, value) in [("key id", &config.key_id), ("team id", &config.team_id), ("topic", &config.topic)] {
            if value.is_empty() {
                return Err(ApnsError(format!("no {name}")));
            }
        }
        let client = client_builder(timeouts)
            .http2_prior_knowledge()
            .pool_idle_timeout(Duration::from_secs(600))
            .http2_keep_alive_interval(Duration::from_secs(60))
            .build()
            .map_err(|err| ApnsError(format!("cannot build the HTTP/2 client: {err}")))?;
        Ok(Self { client, key, config, lifetime: TOKEN_LIFETIME, token: std::sync::Mutex::new(None), timeouts })
    }

    /// The same, making a new provider token every `lifetime` (tests).
    pub fn with_token_lifetime(self, lifetime: Duration) -> Self {
        Self { lifetime, ..self }
    }

    /// Where sends for `device_token` go.
    pub fn url(&self, device_token: &str) -> String {
        format!("{}/3/device/{device_token}", self.config.base_url.trim_end_matches('/'))
    }

    /// The current provider token, made anew when it is older than its lifetime.
    fn provider_token(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let mut token = self.token.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((jwt, made)) = token.as_ref()
            && made.elapsed() < self.lifetime
        {
            return Ok(jwt.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.config.key_id.clone());
        let iat = time::OffsetDateTime::now_utc().unix_timestamp();
        let jwt = jsonwebtoken::encode(&header, &json!({"iss": self.config.team_id, "iat": iat}), &self.key)?;
        *token = Some((jwt.clone(), Instant::now()));
        Ok(jwt)
    }

    /// Sends `send` and tells what became of it.
    pub async fn send(&self, send: &PushSend) -> Outcome {
        let jwt = match self.provider_token() {
            Ok(jwt) => jwt,
            Err(err) => {
                let message = format!("cannot sign the APNs provider token: {err}");
                return Outcome::failed(FailureReason::Credential, message, String::new());
            }
        };
        let request = self
            .client
            .post(self.url(&send.push_id))
            .header("authorization", format!("bearer {jwt}"))
            .header("apns-topic", &self.config.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", if is_high(send) { "10" } else { "5" })
            .header("apns-collapse-id", &send.message_id)
            .json(&payload(send));
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return transport_failure(&err, self.timeouts, "APNs"),
        };
        let status = response.status();
        let delay = retry_after(response.headers());
        let apns_id = response.headers().get("apns-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let answer = match read_bounded(response).await {
            Ok(answer) => answer,
            Err(err) => return transport_failure(&err, self.timeouts, "APNs"),
        };
        if status.is_success() {
            return Outcome::Sent { answer: format!("apns-id {apns_id}") };
        }
        let why = serde_json::from_str::<Value>(&answer)
            .ok()
            .and_then(|body| body.get("reason").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        let reason = match (status.as_u16(), why.as_str()) {
            (410, _) | (400, "BadDeviceToken") => FailureReason::Unregistered,
            (403, _) | (400, "BadTopic" | "TopicDisallowed") => FailureReason::Credential,
            (429, _) => FailureReason::Throttled,
            _ => FailureReason::HttpStatus,
        };
        let message =
            format!("APNs answered HTTP {} {}", status.as_u16(), if why.is_empty() { cut(&answer, 200) } else { why });
        Outcome::Failed { reason, message, answer: cut(&answer, MAX_LOGGED_ANSWER_CHARS), retry_after: delay }
    }
}

/// The APNs payload of `send`.
fn payload(send: &PushSend) -> Value {
    let mut body = push_data(send);
    body.insert("aps".into(), json!({"alert": {"title": send.title, "body": send.content}, "sound": "default"}));
    Value::Object(body)
}

/// Whether `push_id` is an APNs device token (32 bytes in hex), not a UniPush client id.
pub fn is_device_token(push_id: &str) -> bool {
    push_id.len() == 64 && push_id.bytes().all(|b| b.is_ascii_hexdigit())
}
