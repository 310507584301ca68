//! A mock of Firebase Cloud Messaging's HTTP v1 API and of Google's OAuth2 token endpoint,
//! checking what the real ones check, so that the worker's FCM provider is tested against the
//! requests the real service takes:
//!
//! - `POST /token`: the service-account grant (`grant_type =
//!   urn:ietf:params:oauth:grant-type:jwt-bearer`, `assertion` = an RS256 JWT). The assertion's
//!   signature is verified with [`TEST_PUBLIC_KEY`], and its `iss` ([`CLIENT_EMAIL`]), `aud` (this
//!   endpoint's URL), `scope` (holding [`SCOPE`]), `iat` and `exp`. Accepted: a new access token
//!   living [`MockFcm::set_token_lifetime`] seconds (3600 by default). Refused: `400
//!   {"error":"invalid_grant"}`, as Google answers a key it does not know.
//! - `POST /v1/projects/{project}/messages:send`: a send. It needs `Authorization: Bearer` with
//!   a token this mock issued and that has not expired (else `401 UNAUTHENTICATED`), the project
//!   [`PROJECT`] (else `404 NOT_FOUND` without an FCM error code), a JSON body with
//!   `message.token` (else `400 INVALID_ARGUMENT`). Answered as told ([`FcmAnswer`]): by
//!   default `200 {"name": "projects/…/messages/<n>"}`.
//! - `GET /mock/fcm/received`: the sends received, oldest first, and the tokens issued.
//!
//! Every error body has Google's shape: `{"error": {"code", "message", "status", "details":
//! [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode"}]}}`.

use actix_web::{HttpRequest, HttpResponse, web};
use http_server::Component;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The OAuth2 scope FCM sends need.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The project the mock serves.
pub const PROJECT: &str = "herald-test";
/// The service account the mock knows.
pub const CLIENT_EMAIL: &str = "herald-test@herald-test.iam.gserviceaccount.com";
/// The service account's private key (PKCS#8 PEM), made for tests only.
pub const TEST_PRIVATE_KEY: &str = include_str!("../keys/fcm-test.key.pem");
/// Its public key, which the token endpoint verifies assertions with.
pub const TEST_PUBLIC_KEY: &str = include_str!("../keys/fcm-test.pub.pem");
/// A private key the mock does not know: a revoked or wrong credential.
pub const UNKNOWN_PRIVATE_KEY: &str = include_str!("../keys/fcm-unknown.key.pem");
/// The most sends kept.
pub const MAX_KEPT: usize = 100_000;

/// How the mock answers one send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FcmAnswer {
    /// `200 {"name": …}`.
    Success,
    /// `404 NOT_FOUND`, error code `UNREGISTERED`: the app was uninstalled, the token is dead.
    Unregistered,
    /// `400 INVALID_ARGUMENT`, error code `INVALID_ARGUMENT`.
    InvalidArgument,
    /// `429 RESOURCE_EXHAUSTED`, error code `QUOTA_EXCEEDED`, with `Retry-After`.
    Quota {
        /// The `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
    /// `503 UNAVAILABLE`, error code `UNAVAILABLE`, with `Retry-After` when given.
    Unavailable {
        /// The `Retry-After` header, in seconds.
        retry_after_secs: Option<u64>,
    },
}

/// One send the mock received (and authenticated).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FcmReceived {
    /// 1 for the first.
    pub seq: u64,
    /// When it arrived, Unix ms.
    pub at_ms: i64,
    /// The access token it carried.
    pub access_token: String,
    /// Its `Content-Type` header.
    pub content_type: String,
    /// Its `message.token`.
    pub token: String,
    /// The body as received.
    pub body: Value,
    /// How it was answered.
    pub answer: FcmAnswer,
}

/// An access token the token endpoint issued.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Issued {
    /// The token.
    pub access_token: String,
    /// When, Unix ms.
    pub at_ms: i64,
    /// Its lifetime, in seconds.
    pub expires_in: u64,
}

struct State {
    token_uri: String,
    token_lifetime: u64,
    issued: Vec<Issued>,
    valid: HashMap<String, Instant>,
    refused_grants: u64,
    refused_sends: u64,
    received: VecDeque<FcmReceived>,
    seq: u64,
    answers: crate::answers::Answers<FcmAnswer>,
}

/// The mock FCM's state; clones share it.
#[derive(Clone)]
pub struct MockFcm {
    state: Arc<Mutex<State>>,
}

impl MockFcm {
    /// A mock whose token endpoint is at `token_uri` (the `aud` assertions must name).
    pub fn new(token_uri: &str) -> Self {
        let state = State {
            token_uri: token_uri.to_owned(),
            token_lifetime: 3600,
            issued: Vec::new(),
            valid: HashMap::new(),
            refused_grants: 0,
            refused_sends: 0,
            received: VecDeque::new(),
            seq: 0,
            answers: Default::default(),
        };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Access tokens issued from now on live `secs` seconds.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.lock().token_lifetime = secs;
    }

    /// Answers sends to the device token `token` with `answer` from now on.
    pub fn answer_token(&self, token: &str, answer: FcmAnswer) {
        self.lock().answers.for_key(token, answer);
    }

    /// Answers the next `count` sends, whatever their token, with `answer`.
    pub fn answer_next(&self, count: u32, answer: FcmAnswer) {
        self.lock().answers.next(count, answer);
    }

    /// The sends received, oldest first.
    pub fn received(&self) -> Vec<FcmReceived> {
        self.lock().received.iter().cloned().collect()
    }

    /// The access tokens issued, oldest first.
    pub fn issued(&self) -> Vec<Issued> {
        self.lock().issued.clone()
    }

    /// Grants refused (an assertion that did not verify).
    pub fn refused_grants(&self) -> u64 {
        self.lock().refused_grants
    }

    /// Sends refused for their authentication (no, unknown or expired token).
    pub fn refused_sends(&self) -> u64 {
        self.lock().refused_sends
    }

    /// The component serving the mock's routes.
    pub fn component(&self) -> Component {
        let mock = self.clone();
        Component::new("mock-fcm").routes(move |cfg| {
            cfg.app_data(web::Data::new(mock.clone()))
                .service(web::resource("/token").route(web::post().to(token)))
                .service(web::resource("/v1/projects/{project}/messages:send").route(web::post().to(send)))
                .service(web::resource("/mock/fcm/received").route(web::get().to(list)));
        })
    }
}

/// A service-account key file (the JSON Google's console gives) for the mock at `token_uri`,
/// signed with `private_key` ([`TEST_PRIVATE_KEY`] or [`UNKNOWN_PRIVATE_KEY`]).
pub fn service_account(token_uri: &str, private_key: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "0123456789abcdef",
        "private_key": private_key,
        "client_email": CLIENT_EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    })
    .to_string()
}

#[derive(Deserialize)]
struct Grant {
    grant_type: String,
    assertion: String,
}

#[derive(Deserialize)]
struct Assertion {
    iss: String,
    aud: String,
    scope: String,
    iat: i64,
    exp: i64,
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

async fn token(mock: web::Data<MockFcm>, form: web::Form<Grant>) -> HttpResponse {
    let token_uri = mock.lock().token_uri.clone();
    let verified = if form.grant_type == "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        verify(&form.assertion, &token_uri)
    } else {
        Err("unsupported grant_type".to_owned())
    };
    let mut state = mock.lock();
    match verified {
        Ok(()) => {
            state.seq += 1;
            let access_token = format!("ya29.mock-{}", state.seq);
            let expires_in = state.token_lifetime;
            state.valid.insert(access_token.clone(), Instant::now() + Duration::from_secs(expires_in));
            state.issued.push(Issued { access_token: access_token.clone(), at_ms: now_ms(), expires_in });
            HttpResponse::Ok()
                .json(json!({"access_token": access_token, "expires_in": expires_in, "token_type": "Bearer"}))
        }
        Err(why) => {
            state.refused_grants += 1;
            HttpResponse::BadRequest().json(json!({"error": "invalid_grant", "error_description": why}))
        }
    }
}

/// Checks a service-account assertion as Google does: an RS256 signature by the service
/// account's key over the first two segments as sent (Google takes base64url with or without
/// padding; yup-oauth2 pads), `iss`, `aud`, `scope`, and `iat` <= now < `exp` (an hour at most).
fn verify(assertion: &str, token_uri: &str) -> Result<(), String> {
    use base64::Engine as _;
    let decode = |segment: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment.trim_end_matches('='))
            .map_err(|err| format!("Invalid JWT: base64: {err}"))
    };
    let mut segments = assertion.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err("Invalid JWT: not three segments".to_owned());
    };
    let parsed_header: Value =
        serde_json::from_slice(&decode(header)?).map_err(|err| format!("Invalid JWT header: {err}"))?;
    if parsed_header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(format!("Invalid JWT: alg must be RS256: {parsed_header}"));
    }
    let key = DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()).map_err(|err| err.to_string())?;
    let message = format!("{header}.{claims}");
    let signed =
        jsonwebtoken::crypto::verify(signature.trim_end_matches('='), message.as_bytes(), &key, Algorithm::RS256)
            .map_err(|err| format!("Invalid JWT Signature: {err}"))?;
    if !signed {
        return Err("Invalid JWT Signature.".to_owned());
    }
    let claims: Assertion =
        serde_json::from_slice(&decode(claims)?).map_err(|err| format!("Invalid JWT claims: {err}"))?;
    if claims.iss != CLIENT_EMAIL {
        return Err(format!("Invalid JWT: iss {:?} is not the service account", claims.iss));
    }
    if claims.aud != token_uri {
        return Err(format!("Invalid JWT: aud {:?} is not {token_uri}", claims.aud));
    }
    if !claims.scope.split(' ').any(|scope| scope == SCOPE) {
        return Err(format!("the assertion's scope {:?} lacks {SCOPE}", claims.scope));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if claims.iat > now + 60 || claims.exp <= now || claims.exp - claims.iat > 3600 {
        return Err(format!("Invalid JWT: iat {} / exp {} at {now}", claims.iat, claims.exp));
    }
    Ok(())
}

fn google_error(code: u16, status: &str, message: &str, error_code: Option<&str>) -> Value {
    let details: Vec<Value> = error_code
        .map(|code| json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}))
        .into_iter()
        .collect();
    json!({"error": {"code": code, "message": message, "status": status, "details": details}})
}

fn status(code: u16) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(code).unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
}

async fn send(
    mock: web::Data<MockFcm>,
    req: HttpRequest,
    project: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let mut state = mock.lock();
    if state.valid.get(&bearer).is_none_or(|expiry| *expiry <= Instant::now()) {
        state.refused_sends += 1;
        let message = "Request had invalid authentication credentials. Expected OAuth 2 access token.";
        return HttpResponse::Unauthorized().json(google_error(401, "UNAUTHENTICATED", message, None));
    }
    if project.as_str() != PROJECT {
        let message = format!("Requested entity was not found: project {project}");
        return HttpResponse::NotFound().json(google_error(404, "NOT_FOUND", &message, None));
    }
    let parsed = serde_json::from_slice::<Value>(&body).ok();
    let Some(token) = parsed.as_ref().and_then(|body| body.pointer("/message/token")).and_then(Value::as_str) else {
        let message = "Invalid JSON payload: message.token is required";
        return HttpResponse::BadRequest().json(google_error(
            400,
            "INVALID_ARGUMENT",
            message,
            Some("INVALID_ARGUMENT"),
        ));
    };
    let token = token.to_owned();
    let answer = state.answers.take(&token).unwrap_or(FcmAnswer::Success);
    state.seq += 1;
    let seq = state.seq;
    if state.received.len() == MAX_KEPT {
        state.received.pop_front();
    }
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    state.received.push_back(FcmReceived {
        seq,
        at_ms: now_ms(),
        access_token: bearer,
        content_type,
        token,
        body: parsed.unwrap_or(Value::Null),
        answer,
    });
    drop(state);
    match answer {
        FcmAnswer::Success => HttpResponse::Ok().json(json!({"name": format!("projects/{PROJECT}/messages/{seq}")})),
        FcmAnswer::Unregistered => HttpResponse::NotFound().json(google_error(
            404,
            "NOT_FOUND",
            "Requested entity was not found.",
            Some("UNREGISTERED"),
        )),
        FcmAnswer::InvalidArgument => HttpResponse::BadRequest().json(google_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            Some("INVALID_ARGUMENT"),
        )),
        FcmAnswer::Quota { retry_after_secs } => HttpResponse::build(status(429))
            .insert_header(("retry-after", retry_after_secs.to_string()))
            .json(google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for sends", Some("QUOTA_EXCEEDED"))),
        FcmAnswer::Unavailable { retry_after_secs } => {
            let mut response = HttpResponse::build(status(503));
            if let Some(secs) = retry_after_secs {
                response.insert_header(("retry-after", secs.to_string()));
            }
            response.json(google_error(
                503,
                "UNAVAILABLE",
                "The service is currently unavailable.",
                Some("UNAVAILABLE"),
            ))
        }
    }
}

async fn list(mock: web::Data<MockFcm>) -> HttpResponse {
    let state = mock.lock();
    HttpResponse::Ok().json(json!({
        "items": state.received, "issued": state.issued,
        "refused_grants": state.refused_grants, "refused_sends": state.refused_sends,
    }))
}
