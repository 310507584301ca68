//! A mock of Apple's push service (APNs, HTTP/2, token-based authentication), checking what
//! the real one checks, so that the worker's APNs provider is tested against the requests APNs
//! takes:
//!
//! - `POST /3/device/{device token}` over HTTP/2 (cleartext with prior knowledge: the mock has
//!   no TLS); each send records the HTTP version it came over, so a test checks it was HTTP/2.
//! - `authorization: bearer <JWT>`: ES256, header `kid` = [`KEY_ID`], claims `iss` = [`TEAM_ID`]
//!   and `iat`, signed by [`TEST_PRIVATE_KEY`]'s key (verified with [`TEST_PUBLIC_KEY`]); a token
//!   older than an hour is `403 ExpiredProviderToken`, a bad one `403 InvalidProviderToken`.
//! - `apns-topic` = [`TOPIC`] (else `400 BadTopic`); the body a JSON object with `aps` (else
//!   `400 PayloadEmpty` / `BadPayload`).
//! - Answered as told ([`ApnsAnswer`]): by default `200` with an `apns-id`.
//!
//! Error bodies are APNs's: `{"reason": "..."}` (and `timestamp` for `410 Unregistered`).

use actix_web::{HttpRequest, HttpResponse, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// The key id the mock knows.
pub const KEY_ID: &str = "HERALDKEY1";
/// The team the mock knows.
pub const TEAM_ID: &str = "HERALDTEAM";
/// The app's bundle id, the only topic the mock takes.
pub const TOPIC: &str = "com.example.herald";
/// The signing key (a `.p8`, PKCS#8 PEM, P-256), made for tests only.
pub const TEST_PRIVATE_KEY: &str = include_str!("../keys/apns-test.p8");
/// Its public key, which the mock verifies provider tokens with.
pub const TEST_PUBLIC_KEY: &str = include_str!("../keys/apns-test.pub.pem");
/// A key the mock does not know: a revoked one.
pub const UNKNOWN_PRIVATE_KEY: &str = include_str!("../keys/apns-unknown.p8");

/// How the mock answers one send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApnsAnswer {
    /// `200`, with an `apns-id`.
    Success,
    /// `410 Unregistered`: the app is gone from the device.
    Unregistered,
    /// `400 BadDeviceToken`.
    BadDeviceToken,
    /// `429 TooManyRequests`.
    TooManyRequests,
    /// `503 ServiceUnavailable`.
    Unavailable,
}

/// One send the mock received (and authenticated).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApnsReceived {
    /// 1 for the first.
    pub seq: u64,
    /// The HTTP version it came over (`HTTP/2.0`).
    pub version: String,
    /// The device token in the path.
    pub token: String,
    /// The provider token (JWT) it carried.
    pub jwt: String,
    /// The `apns-*` headers, by name.
    pub headers: HashMap<String, String>,
    /// The body as received.
    pub body: Value,
    /// How it was answered.
    pub answer: ApnsAnswer,
}

#[derive(Default)]
struct State {
    received: VecDeque<ApnsReceived>,
    refused: u64,
    seq: u64,
    answers: crate::answers::Answers<ApnsAnswer>,
}

/// The mock APNs's state; clones share it.
#[derive(Clone, Default)]
pub struct MockApns {
    state: Arc<Mutex<State>>,
}

impl MockApns {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers sends to `token` with `answer` from now on.
    pub fn answer_token(&self, token: &str, answer: ApnsAnswer) {
        self.lock().answers.for_key(token, answer);
    }

    /// Answers the next `count` sends with `answer`.
    pub fn answer_next(&self, count: u32, answer: ApnsAnswer) {
        self.lock().answers.next(count, answer);
    }

    /// The sends received, oldest first.
    pub fn received(&self) -> Vec<ApnsReceived> {
        self.lock().received.iter().cloned().collect()
    }

    /// Sends refused for their provider token or topic.
    pub fn refused(&self) -> u64 {
        self.lock().refused
    }

    /// The mock's route, for an actix-web `App` that speaks HTTP/2 (Herald's own HTTP server
    /// speaks HTTP/1 only, which APNs does not).
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .service(web::resource("/3/device/{token}").route(web::post().to(send)));
    }

    /// Serves the mock on `listener` (HTTP/1 and HTTP/2 with prior knowledge, one worker) until
    /// the returned server is stopped.
    pub fn serve(&self, listener: std::net::TcpListener) -> std::io::Result<actix_web::dev::Server> {
        let mock = self.clone();
        Ok(actix_web::HttpServer::new(move || actix_web::App::new().configure(|cfg| mock.configure(cfg)))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen_auto_h2c(listener)?
            .run())
    }
}

#[derive(Deserialize)]
struct ProviderClaims {
    iss: String,
    iat: i64,
}

fn reason(status: u16, reason: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status).json(json!({"reason": reason}))
}

/// Checks a provider token as APNs does: `None` if it is good, else the 403 reason.
fn verify(jwt: &str) -> Option<&'static str> {
    let Ok(header) = jsonwebtoken::decode_header(jwt) else { return Some("InvalidProviderToken") };
    if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(KEY_ID) {
        return Some("InvalidProviderToken");
    }
    let Ok(key) = DecodingKey::from_ec_pem(TEST_PUBLIC_KEY.as_bytes()) else { return Some("InvalidProviderToken") };
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_required_spec_claims::<&str>(&[]);
    validation.validate_exp = false;
    validation.set_issuer(&[TEAM_ID]);
    let Ok(token) = jsonwebtoken::decode::<ProviderClaims>(jwt, &key, &validation) else {
        return Some("InvalidProviderToken");
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if token.claims.iss != TEAM_ID || token.claims.iat > now + 60 {
        return Some("InvalidProviderToken");
    }
    (now - token.claims.iat > 3600).then_some("ExpiredProviderToken")
}

async fn send(mock: web::Data<MockApns>, req: HttpRequest, token: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let jwt = header("authorization").and_then(|v| v.strip_prefix("bearer ").map(str::to_owned)).unwrap_or_default();
    if jwt.is_empty() {
        mock.lock().refused += 1;
        return reason(403, "MissingProviderToken");
    }
    if let Some(why) = verify(&jwt) {
        mock.lock().refused += 1;
        return reason(403, why);
    }
    if header("apns-topic").as_deref() != Some(TOPIC) {
        mock.lock().refused += 1;
        return reason(400, "BadTopic");
    }
    if body.is_empty() {
        return reason(400, "PayloadEmpty");
    }
    let Some(parsed) =
        serde_json::from_slice::<Value>(&body).ok().filter(|b| b.get("aps").is_some_and(Value::is_object))
    else {
        return reason(400, "BadPayload");
    };
    let headers = req
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("apns-"))
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    let mut state = mock.lock();
    let answer = state.answers.take(token.as_str()).unwrap_or(ApnsAnswer::Success);
    state.seq += 1;
    let seq = state.seq;
    if state.received.len() == crate::MAX_KEPT {
        state.received.pop_front();
    }
    state.received.push_back(ApnsReceived {
        seq,
        version: format!("{:?}", req.version()),
        token: token.into_inner(),
        jwt,
        headers,
        body: parsed,
        answer,
    });
    drop(state);
    match answer {
        ApnsAnswer::Success => {
            HttpResponse::Ok().insert_header(("apns-id", format!("00000000-0000-0000-0000-{seq:012}"))).finish()
        }
        ApnsAnswer::Unregistered => {
            let millis = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
            HttpResponse::Gone().json(json!({"reason": "Unregistered", "timestamp": millis}))
        }
        ApnsAnswer::BadDeviceToken => reason(400, "BadDeviceToken"),
        ApnsAnswer::TooManyRequests => reason(429, "TooManyRequests"),
        ApnsAnswer::Unavailable => reason(503, "ServiceUnavailable"),
    }
}
