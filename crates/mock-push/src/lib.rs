//! A mock of the original's push provider (a UniPush-style cloud function): it takes the sends
//! Herald's mobile-push-worker posts, keeps them for tests to read, and answers each the way it
//! was told, so every answer shape the worker must handle can be produced on demand.
//!
//! - `POST /push`: a provider send, `{"push_clientid", "title", "content", "alarm_id",
//!   "category", "options"}`. Answered, by default, `200 {"errCode":0,"errMsg":"success"}`.
//! - `POST /mock/answers`: how to answer, `{"answer", "push_id"?, "next"?, "err_code"?,
//!   "delay_ms"?}`: for one push id (until told otherwise), or for the next N sends whatever
//!   their push id (these come first), or as the default. `answer` is `success`, `err_code`
//!   (`{"errCode": err_code}`, default 40001), `http_500`, `slow` (success after `delay_ms`,
//!   default 10 s: longer than a worker's timeout) or `not_json` (200 with an HTML body).
//! - `GET /mock/received[?push_id=]`: what was received, oldest first, each with the answer it
//!   got; at most [`MAX_KEPT`] are kept (the oldest go first, counted in `dropped`).
//! - A send with an `Idempotency-Key` header already seen is answered as the first was and not
//!   kept again (counted in `duplicates`): the provider side of "none doubled".
//! - `DELETE /mock/received`, `DELETE /mock/answers`: forget them.
//!
//! Run it alone (`herald-mock-push --addr 127.0.0.1:9300`, which also serves the mock FCM) or in
//! process ([`MockProvider`]). [`fcm`] mocks Firebase Cloud Messaging ([`MockFcmServer`]),
//! [`apns`] Apple's push service ([`MockApnsServer`]), [`webpush`] a browser push service
//! ([`MockWebPushServer`]).

mod answers;
pub mod apns;
pub mod fcm;
pub mod webpush;

use actix_web::{HttpRequest, HttpResponse, web};
use http_server::Component;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The most sends kept for `GET /mock/received`.
pub const MAX_KEPT: usize = 100_000;
/// The most instructions for "the next N sends" waiting at once.
pub const MAX_QUEUED: u32 = 100_000;
/// How long a `slow` answer waits when no `delay_ms` is given.
pub const DEFAULT_DELAY: Duration = Duration::from_secs(10);
/// The `errCode` of an `err_code` answer when none is given.
pub const DEFAULT_ERR_CODE: i64 = 40001;

/// How the mock answers one send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    /// `200 {"errCode":0,"errMsg":"success"}`.
    Success,
    /// `200 {"errCode":<code>,"errMsg":"..."}`.
    ErrCode {
        /// The code.
        err_code: i64,
    },
    /// `500` with a JSON body.
    #[serde(rename = "http_500")]
    Http500,
    /// A success, after `delay_ms`.
    Slow {
        /// How long to wait first.
        delay_ms: u64,
    },
    /// `200` with an HTML body.
    NotJson,
}

/// One send the mock received.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Received {
    /// 1 for the first send since the mock started (or was reset), and so on.
    pub seq: u64,
    /// When it arrived, Unix ms.
    pub at_ms: i64,
    /// Its `push_clientid`, empty when it had none.
    pub push_id: String,
    /// The body as received.
    pub body: Value,
    /// How it was answered.
    pub answer: Answer,
}

#[derive(Default)]
struct State {
    received: VecDeque<Received>,
    /// `Idempotency-Key`s seen, with the answer given, oldest first (at most [`MAX_KEPT`]).
    keys: HashMap<String, Answer>,
    key_order: VecDeque<String>,
    duplicates: u64,
    dropped: u64,
    seq: u64,
    answers: answers::Answers<Answer>,
}

impl State {
    /// The answer for a send to `push_id`, using up one of the queued "next N".
    fn answer_for(&mut self, push_id: &str) -> Answer {
        self.answers.take(push_id).unwrap_or(Answer::Success)
    }

    fn keep(&mut self, push_id: String, body: Value, answer: Answer) -> u64 {
        self.seq += 1;
        if self.received.len() == MAX_KEPT {
            self.received.pop_front();
            self.dropped += 1;
        }
        let at_ms = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        self.received.push_back(Received { seq: self.seq, at_ms, push_id, body, answer });
        self.seq
    }
}

/// The mock's state; clones share it.
#[derive(Clone, Default)]
pub struct Mock {
    state: Arc<Mutex<State>>,
}

impl Mock {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding it leaves plain data behind: keep going.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers sends to `push_id` with `answer` from now on.
    pub fn answer_push_id(&self, push_id: &str, answer: Answer) {
        self.lock().answers.for_key(push_id, answer);
    }

    /// Answers the next `count` sends, whatever their push id, with `answer`.
    pub fn answer_next(&self, count: u32, answer: Answer) {
        self.lock().answers.next(count, answer);
    }

    /// Answers every send no other instruction covers with `answer`.
    pub fn answer_all(&self, answer: Answer) {
        self.lock().answers.all(answer);
    }

    /// What was received, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.iter().cloned().collect()
    }

    /// How many posts repeated an `Idempotency-Key` already taken (answered, not kept again).
    pub fn duplicates(&self) -> u64 {
        self.lock().duplicates
    }

    /// Forgets what was received and every instruction.
    pub fn reset(&self) {
        *self.lock() = State::default();
    }

    /// The component serving the mock's routes.
    pub fn component(&self) -> Component {
        let mock = self.clone();
        Component::new("mock-push").routes(move |cfg| {
            cfg.app_data(web::Data::new(mock.clone()))
                .app_data(web::JsonConfig::default().limit(1 << 20))
                .service(web::resource("/push").route(web::post().to(push)))
                .service(
                    web::resource("/mock/answers")
                        .route(web::post().to(instruct))
                        .route(web::delete().to(forget_answers)),
                )
                .service(
                    web::resource("/mock/received").route(web::get().to(list)).route(web::delete().to(forget_received)),
                );
        })
    }
}

async fn push(mock: web::Data<Mock>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().json(json!({"errCode": 400, "errMsg": "the body is not JSON"}));
    };
    let push_id = body.get("push_clientid").and_then(Value::as_str).unwrap_or_default().to_owned();
    let key = req.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let answer = {
        let mut state = mock.lock();
        // A key seen before: the same answer again, and nothing pushed twice.
        match key.as_ref().and_then(|key| state.keys.get(key).copied()) {
            Some(answer) => {
                state.duplicates += 1;
                answer
            }
            None => {
                let answer = state.answer_for(&push_id);
                state.keep(push_id.clone(), body, answer);
                if let Some(key) = key {
                    if state.key_order.len() == MAX_KEPT
                        && let Some(oldest) = state.key_order.pop_front()
                    {
                        state.keys.remove(&oldest);
                    }
                    state.keys.insert(key.clone(), answer);
                    state.key_order.push_back(key);
                }
                answer
            }
        }
    };
    match answer {
        Answer::Success => success(),
        Answer::ErrCode { err_code } => HttpResponse::Ok()
            .json(json!({"errCode": err_code, "errMsg": format!("mock error {err_code} for {push_id}")})),
        Answer::Http500 => HttpResponse::InternalServerError().json(json!({"message": "mock internal error"})),
        Answer::Slow { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            success()
        }
        Answer::NotJson => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body("<html><body>502 Bad Gateway (mock)</body></html>"),
    }
}

fn success() -> HttpResponse {
    HttpResponse::Ok().json(json!({"errCode": 0, "errMsg": "success", "data": {}}))
}

/// `POST /mock/answers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Instruction {
    answer: String,
    #[serde(default)]
    push_id: Option<String>,
    #[serde(default)]
    next: Option<u32>,
    #[serde(default)]
    err_code: Option<i64>,
    #[serde(default)]
    delay_ms: Option<u64>,
}

fn refused(message: String) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": message}))
}

async fn instruct(mock: web::Data<Mock>, body: web::Bytes) -> HttpResponse {
    let instruction: Instruction = match serde_json::from_slice(&body) {
        Ok(instruction) => instruction,
        Err(err) => return refused(format!("invalid instruction: {err}")),
    };
    let answer = match instruction.answer.as_str() {
        "success" => Answer::Success,
        "err_code" => match instruction.err_code.unwrap_or(DEFAULT_ERR_CODE) {
            0 => return refused("err_code 0 is a success; use answer success".to_owned()),
            err_code => Answer::ErrCode { err_code },
        },
        "http_500" => Answer::Http500,
        "slow" => Answer::Slow {
            delay_ms: instruction.delay_ms.unwrap_or(u64::try_from(DEFAULT_DELAY.as_millis()).unwrap_or(u64::MAX)),
        },
        "not_json" => Answer::NotJson,
        other => {
            return refused(format!("answer must be success, err_code, http_500, slow or not_json; got {other:?}"));
        }
    };
    match (instruction.push_id, instruction.next) {
        (Some(_), Some(_)) => return refused("give push_id or next, not both".to_owned()),
        (Some(push_id), None) => mock.answer_push_id(&push_id, answer),
        (None, Some(count)) if (1..=MAX_QUEUED).contains(&count) => mock.answer_next(count, answer),
        (None, Some(_)) => return refused(format!("next must be 1 to {MAX_QUEUED}")),
        (None, None) => mock.answer_all(answer),
    }
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn forget_answers(mock: web::Data<Mock>) -> HttpResponse {
    let mut state = mock.lock();
    state.answers.clear();
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn list(mock: web::Data<Mock>, req: HttpRequest) -> HttpResponse {
    let push_id = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|query| query.get("push_id").cloned());
    let state = mock.lock();
    let items: Vec<&Received> =
        state.received.iter().filter(|r| push_id.as_ref().is_none_or(|id| &r.push_id == id)).collect();
    HttpResponse::Ok().json(json!({
        "total": items.len(), "dropped": state.dropped, "duplicates": state.duplicates, "items": items,
    }))
}

async fn forget_received(mock: web::Data<Mock>) -> HttpResponse {
    let mut state = mock.lock();
    state.received.clear();
    state.dropped = 0;
    state.seq = 0;
    state.keys.clear();
    state.key_order.clear();
    state.duplicates = 0;
    HttpResponse::Ok().json(json!({"ok": true}))
}

/// A mock provider serving in this process until dropped (or [`MockProvider::stop`]).
pub struct MockProvider {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state: instruct it and read what it received without HTTP.
    pub mock: Mock,
    shutdown: CancellationToken,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl MockProvider {
    /// Serves a new mock on `listener`.
    pub fn start(listener: TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let mock = Mock::default();
        let shutdown = CancellationToken::new();
        let served = tokio::spawn(serve(listener, mock.clone(), shutdown.clone()));
        Ok(Self { addr, mock, shutdown, served: Some(served) })
    }

    /// Serves a new mock on a free port of 127.0.0.1.
    pub fn start_local() -> std::io::Result<Self> {
        Self::start(TcpListener::bind("127.0.0.1:0")?)
    }

    /// The URL sends are posted to, for `POST /api/message_push/config`.
    pub fn push_url(&self) -> String {
        format!("http://{}/push", self.addr)
    }

    /// Stops it and waits until it has.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(served) = self.served.take() {
            let _ = served.await;
        }
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A mock FCM (and its token endpoint) serving in this process until dropped.
pub struct MockFcmServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state: instruct it and read what it received.
    pub mock: fcm::MockFcm,
    shutdown: CancellationToken,
}

impl MockFcmServer {
    /// Serves a new mock FCM on a free port of 127.0.0.1.
    pub fn start_local() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mock = fcm::MockFcm::new(&format!("http://{addr}/token"));
        let shutdown = CancellationToken::new();
        tokio::spawn(serve_components(listener, vec![mock.component()], shutdown.clone()));
        Ok(Self { addr, mock, shutdown })
    }

    /// FCM's base URL (`mobile.fcm_url`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A service-account key file for it, signed with `private_key`
    /// ([`fcm::TEST_PRIVATE_KEY`], or [`fcm::UNKNOWN_PRIVATE_KEY`] for a refused one).
    pub fn service_account(&self, private_key: &str) -> String {
        fcm::service_account(&format!("http://{}/token", self.addr), private_key)
    }
}

impl Drop for MockFcmServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A mock APNs serving in this process (HTTP/2) until dropped.
pub struct MockApnsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state.
    pub mock: apns::MockApns,
    server: actix_web::dev::ServerHandle,
}

impl MockApnsServer {
    /// Serves a new mock APNs on a free port of 127.0.0.1.
    pub fn start_local() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mock = apns::MockApns::default();
        let server = mock.serve(listener)?;
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self { addr, mock, server: handle })
    }

    /// APNs's base URL (`mobile.apns_url`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MockApnsServer {
    fn drop(&mut self) {
        let stopped = self.server.stop(false);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(stopped);
        }
    }
}

/// A mock browser push service ([`webpush::MockWebPush`]) served in process, stopped when
/// dropped.
pub struct MockWebPushServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state (subscriptions are made here).
    pub mock: webpush::MockWebPush,
    server: actix_web::dev::ServerHandle,
}

impl MockWebPushServer {
    /// Serves a new mock push service on a free port of 127.0.0.1.
    pub fn start_local() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mock = webpush::MockWebPush::new(&format!("http://{addr}"));
        let app = mock.clone();
        let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(|cfg| app.configure(cfg)))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)?
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self { addr, mock, server: handle })
    }
}

impl Drop for MockWebPushServer {
    fn drop(&mut self) {
        let stopped = self.server.stop(false);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(stopped);
        }
    }
}

/// Serves `mock` on `listener` until `shutdown`, on one worker thread.
pub async fn serve(listener: TcpListener, mock: Mock, shutdown: CancellationToken) -> std::io::Result<()> {
    serve_components(listener, vec![mock.component()], shutdown).await
}

/// Serves the mocks' `components` on `listener` until `shutdown`, on one worker thread.
pub async fn serve_components(
    listener: TcpListener,
    components: Vec<Component>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let settings = runtime::HttpSettings { workers: 1, shutdown_timeout_secs: 1, ..runtime::HttpSettings::default() };
    let shared = http_server::Shared {
        verifier: runtime::JwtVerifier::new(&runtime::JwtSettings::default()),
        time: model::TimeFormat::default(),
        metrics: http_server::Registry::new(),
    };
    http_server::serve(listener, &settings, shared, components, shutdown).await
}
