//! A mock browser push service (Web Push, RFC 8030), checking what the real ones (FCM's web
//! endpoint, Mozilla's autopush, Apple's) check, so that the worker's Web Push provider is
//! tested against the requests they take:
//!
//! - Subscriptions are made in the test ([`MockWebPush::subscribe`]): a P-256 key pair and an
//!   auth secret, as a browser makes them, held by the mock; the subscription's JSON is what the
//!   browser's app registers with Herald. Each is tied to the application server key it was
//!   made for ([`TEST_VAPID_KEY`]'s, unless said otherwise).
//! - `POST /push/{id}`: `Authorization: vapid t=<JWT>, k=<public key>` (RFC 8292): ES256, `aud`
//!   the endpoint's origin, `exp` in the future and at most 24 hours away, `sub` a `mailto:` or
//!   `https:` contact, `k` the subscription's application server key (else `401`/`403`, as FCM
//!   answers); `TTL` (else `400`); `Content-Encoding: aes128gcm` and a body the mock decrypts
//!   with the subscription's private key and auth secret (RFC 8291; else `400`). A body over
//!   4096 bytes is `413`.
//! - Answered as told ([`WebPushAnswer`]): by default `201 Created` with a `Location`.
//!
//! Each accepted send is kept with its decrypted payload, so a test reads what the browser's
//! service worker would have been given.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use web_push_native::jwt_simple::prelude::*;
use web_push_native::p256;

/// The VAPID key Herald signs with in tests (PKCS#8 PEM, P-256), made for tests only.
pub const TEST_VAPID_KEY: &str = include_str!("../keys/webpush-vapid-test.pem");
/// Its public key, base64url: the `applicationServerKey` a browser subscribes with.
pub const TEST_VAPID_PUBLIC_KEY: &str = include_str!("../keys/webpush-vapid-test.pub.b64url");
/// A VAPID key the mock's subscriptions were not made for (a rotated or wrong key).
pub const UNKNOWN_VAPID_KEY: &str = include_str!("../keys/webpush-vapid-unknown.pem");
/// The largest body a push service takes (RFC 8030 §7.2: at least 4096 bytes must be taken).
pub const MAX_BODY_BYTES: usize = 4096;

/// How the mock answers one push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WebPushAnswer {
    /// `201 Created`.
    Created,
    /// `410 Gone`: the browser unsubscribed.
    Gone,
    /// `404 Not Found`: the subscription expired.
    NotFound,
    /// `429 Too Many Requests` with `Retry-After`.
    TooManyRequests {
        /// The `Retry-After` in seconds.
        retry_after_secs: u64,
    },
    /// `503 Service Unavailable`.
    Unavailable,
}

/// A subscription the mock holds, as a browser's `PushSubscription.toJSON()`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Subscription {
    /// Where pushes for it go.
    pub endpoint: String,
    /// The browser's public key and auth secret, base64url.
    pub keys: SubscriptionKeys,
}

/// The keys of a [`Subscription`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubscriptionKeys {
    /// The browser's P-256 public key, uncompressed.
    pub p256dh: String,
    /// The 16-byte auth secret.
    pub auth: String,
}

impl Subscription {
    /// Its JSON, what the browser's app registers as a `web` device's `pushId`.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One push the mock received, authenticated and decrypted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WebPushReceived {
    /// 1 for the first.
    pub seq: u64,
    /// The subscription's id (the endpoint's last segment).
    pub id: String,
    /// The VAPID JWT's claims.
    pub claims: Value,
    /// `TTL`, `Urgency`, `Topic`, `Content-Encoding`, `Content-Type`, by lower-case name.
    pub headers: HashMap<String, String>,
    /// The decrypted payload, parsed as JSON (`null` when it is not JSON).
    pub payload: Value,
    /// How it was answered.
    pub answer: WebPushAnswer,
}

struct Held {
    secret: p256::SecretKey,
    auth: [u8; 16],
    /// The application server key (uncompressed point) the subscription was made for.
    server_key: Vec<u8>,
}

#[derive(Default)]
struct State {
    subscriptions: HashMap<String, Held>,
    received: VecDeque<WebPushReceived>,
    refused: u64,
    seq: u64,
    answers: crate::answers::Answers<WebPushAnswer>,
}

/// The mock push service's state; clones share it.
#[derive(Clone)]
pub struct MockWebPush {
    state: Arc<Mutex<State>>,
    base_url: String,
}

fn b64url() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

impl MockWebPush {
    /// A mock reached at `base_url` (`http://host:port`), for the endpoints it hands out.
    pub fn new(base_url: &str) -> Self {
        Self { state: Arc::default(), base_url: base_url.trim_end_matches('/').to_owned() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new subscription `id` for [`TEST_VAPID_KEY`]'s application server key.
    pub fn subscribe(&self, id: &str) -> Subscription {
        let server_key =
            ES256KeyPair::from_pem(TEST_VAPID_KEY).map(|key| key.public_key().public_key().to_bytes_uncompressed());
        self.subscribe_for(id, &server_key.unwrap_or_default())
    }

    /// A new subscription `id` for the application server key `server_key` (uncompressed).
    pub fn subscribe_for(&self, id: &str, server_key: &[u8]) -> Subscription {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let public = secret.public_key().to_encoded_point(false);
        let mut auth = [0_u8; 16];
        p256::elliptic_curve::rand_core::RngCore::fill_bytes(&mut p256::elliptic_curve::rand_core::OsRng, &mut auth);
        let subscription = Subscription {
            endpoint: format!("{}/push/{id}", self.base_url),
            keys: SubscriptionKeys { p256dh: b64url().encode(public.as_bytes()), auth: b64url().encode(auth) },
        };
        self.lock().subscriptions.insert(id.to_owned(), Held { secret, auth, server_key: server_key.to_vec() });
        subscription
    }

    /// Answers pushes to subscription `id` with `answer` from now on.
    pub fn answer_subscription(&self, id: &str, answer: WebPushAnswer) {
        self.lock().answers.for_key(id, answer);
    }

    /// Answers the next `count` pushes with `answer`.
    pub fn answer_next(&self, count: u32, answer: WebPushAnswer) {
        self.lock().answers.next(count, answer);
    }

    /// The pushes received, oldest first.
    pub fn received(&self) -> Vec<WebPushReceived> {
        self.lock().received.iter().cloned().collect()
    }

    /// Pushes refused for their authorization or encryption.
    pub fn refused(&self) -> u64 {
        self.lock().refused
    }

    /// The mock's route, for an actix-web `App`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .app_data(web::PayloadConfig::new(64 * 1024))
            .service(web::resource("/push/{id}").route(web::post().to(push)));
    }

    /// Checks a `vapid t=..., k=...` authorization for a subscription made for `server_key`:
    /// the JWT's claims, or the status and why.
    fn authorize(&self, authorization: &str, server_key: &[u8]) -> Result<Value, (u16, String)> {
        let mut token = None;
        let mut key = None;
        for part in authorization.strip_prefix("vapid ").unwrap_or_default().split(',') {
            match part.trim().split_once('=') {
                Some(("t", value)) => token = Some(value.trim()),
                Some(("k", value)) => key = Some(value.trim()),
                _ => {}
            }
        }
        let (Some(token), Some(key)) = (token, key) else {
            return Err((401, "missing or malformed vapid authorization".into()));
        };
        let key_bytes = b64url().decode(key).map_err(|_| (401, "k is not base64url".to_owned()))?;
        if key_bytes != server_key {
            return Err((403, "the VAPID key is not the one the subscription was made for".into()));
        }
        let public = ES256PublicKey::from_bytes(&key_bytes).map_err(|_| (401, "k is not a P-256 key".to_owned()))?;
        let origin = self.base_url.clone();
        let options = VerificationOptions {
            allowed_audiences: Some(HashSet::from_strings(&[origin])),
            time_tolerance: Some(Duration::from_secs(0)),
            ..VerificationOptions::default()
        };
        let claims = public
            .verify_token::<NoCustomClaims>(token, Some(options))
            .map_err(|err| (401, format!("the VAPID JWT does not verify: {err}")))?;
        let now = Clock::now_since_epoch();
        let expires = claims.expires_at.ok_or((401, "the VAPID JWT has no exp".to_owned()))?;
        if expires > now + Duration::from_hours(24) {
            return Err((401, "the VAPID JWT expires more than 24 hours from now".into()));
        }
        let subject = claims.subject.clone().unwrap_or_default();
        if !(subject.starts_with("mailto:") || subject.starts_with("https:")) {
            return Err((401, format!("the VAPID sub must be a mailto: or https: contact, got {subject:?}")));
        }
        serde_json::to_value(&claims).map_err(|err| (401, err.to_string()))
    }
}

fn refuse(mock: &MockWebPush, status: u16, why: &str) -> HttpResponse {
    mock.lock().refused += 1;
    let status = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status).body(why.to_owned())
}

async fn push(mock: web::Data<MockWebPush>, req: HttpRequest, id: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (secret, auth, server_key) = match mock.lock().subscriptions.get(id.as_str()) {
        Some(held) => (held.secret.clone(), held.auth, held.server_key.clone()),
        None => return HttpResponse::NotFound().body("no such subscription"),
    };
    let claims = match mock.authorize(&header("authorization").unwrap_or_default(), &server_key) {
        Ok(claims) => claims,
        Err((status, why)) => return refuse(&mock, status, &why),
    };
    if header("ttl").and_then(|ttl| ttl.parse::<u64>().ok()).is_none() {
        return refuse(&mock, 400, "a push needs a TTL header (seconds)");
    }
    if body.len() > MAX_BODY_BYTES {
        return refuse(&mock, 413, "the payload is over 4096 bytes");
    }
    if header("content-encoding").as_deref() != Some("aes128gcm") {
        return refuse(&mock, 400, "Content-Encoding must be aes128gcm");
    }
    let auth = web_push_native::Auth::clone_from_slice(&auth);
    let plain = match web_push_native::decrypt(body.to_vec(), &secret, &auth) {
        Ok(plain) => plain,
        Err(err) => return refuse(&mock, 400, &format!("the payload does not decrypt: {err}")),
    };
    let headers = ["ttl", "urgency", "topic", "content-encoding", "content-type"]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), header(name)?)))
        .collect();
    let mut state = mock.lock();
    let answer = state.answers.take(id.as_str()).unwrap_or(WebPushAnswer::Created);
    state.seq += 1;
    let seq = state.seq;
    if state.received.len() == crate::MAX_KEPT {
        state.received.pop_front();
    }
    let payload = serde_json::from_slice(&plain).unwrap_or(Value::Null);
    state.received.push_back(WebPushReceived { seq, id: id.into_inner(), claims, headers, payload, answer });
    drop(state);
    match answer {
        WebPushAnswer::Created => {
            HttpResponse::Created().insert_header(("location", format!("{}/message/{seq}", mock.base_url))).finish()
        }
        WebPushAnswer::Gone => HttpResponse::Gone().body("push subscription has unsubscribed or expired"),
        WebPushAnswer::NotFound => HttpResponse::NotFound().body("push subscription not found"),
        WebPushAnswer::TooManyRequests { retry_after_secs } => HttpResponse::TooManyRequests()
            .insert_header(("retry-after", retry_after_secs.to_string()))
            .body("too many requests"),
        WebPushAnswer::Unavailable => HttpResponse::ServiceUnavailable().body("try again later"),
    }
}
