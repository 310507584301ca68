//! Test apps (distributed, embedded, binary), clients, tokens and schema checks.

use bus::{BusSettings, BusUrl};
use database::DatabaseSettings;
use database::scratch::{Backend, ScratchDatabase};
use futures_util::{SinkExt, StreamExt};
use herald::Settings;
use ingest_api::LimitSettings;
use runtime::testing::eventually;
use runtime::{Claims, JwtIssuer, JwtSettings, Role};
use serde_json::Value;
use state::{OfflineSettings, PresenceSettings, RedisSettings};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// The JWT secret every test app uses.
pub const SECRET: &str = "herald-test-secret-0123456789";

/// How long a test waits for anything before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn jwt_settings() -> JwtSettings {
    JwtSettings { secret: SECRET.to_owned().into(), ..JwtSettings::default() }
}

pub fn redis_url() -> String {
    std::env::var("HERALD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// No Redis: live state in the database, as the all-in-one runs by default.
pub fn no_redis() -> RedisSettings {
    RedisSettings::database()
}

/// No rate limits: tests that post many notices set their own when they test limits.
pub fn no_limits() -> LimitSettings {
    LimitSettings { sender_per_second: 0, ip_per_second: 0, ..LimitSettings::default() }
}

pub fn amqp_url() -> String {
    std::env::var("HERALD_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Runs `roles` of Herald on `listener` with `settings` until `shutdown`, printing why it stopped
/// if it failed. The handle finishes once the process has stopped.
pub fn spawn_roles(
    settings: Settings,
    roles: &'static [herald::Role],
    listener: TcpListener,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let name = roles.iter().map(|role| role.name()).collect::<Vec<_>>().join(",");
        report(&name, herald::run(settings, roles, listener, shutdown)).await;
    })
}

/// Runs a process, printing why it stopped if it failed (a test then fails on readiness with
/// the cause in its output).
async fn report(name: &str, service: impl std::future::Future<Output = anyhow::Result<()>>) {
    if let Err(err) = service.await {
        eprintln!("{name} failed: {err:#}");
    }
}

/// WebSocket limits that tests sending thousands of frames do not run into (the limits have
/// tests of their own).
pub fn generous_ws() -> ws_gateway::WsSettings {
    ws_gateway::WsSettings { client_frames_per_second: 100_000, client_frame_burst: 100_000, ..Default::default() }
}

/// Presence that notices a vanished replica within seconds.
pub fn quick_presence() -> PresenceSettings {
    PresenceSettings { refresh_secs: 1, ttl_secs: 3 }
}

/// An in-memory SQLite database, gone with the process.
pub fn memory_database() -> DatabaseSettings {
    DatabaseSettings { url: "sqlite::memory:".into(), ..DatabaseSettings::default() }
}

/// A listener on a port no other listener of this test process was given. Tests that start a
/// child process take its port from here and close it for the child to bind: without the
/// registry the kernel could hand the same freed port to the next caller before the child bound
/// it, and two children would race for one port (one role's `/readyz` answering for another's).
pub fn listener() -> TcpListener {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    let mut refused = Vec::new();
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return listener;
        }
        // Held until a fresh port came, so that the kernel does not offer this one again.
        refused.push(listener);
    }
}

/// An address for a child process to listen on (see [`listener`]).
pub fn free_addr() -> SocketAddr {
    listener().local_addr().unwrap()
}

/// A signed token for `sub`.
pub fn token(sub: i64, role: Role, name: &str) -> String {
    JwtIssuer::new(&jwt_settings()).issue(&Claims::new(sub, name, role, Duration::from_secs(600))).unwrap()
}

/// A signed token for `sub` in `tenant`.
pub fn tenant_token(sub: i64, role: Role, name: &str, tenant: &str) -> String {
    let claims =
        Claims { tenant_id: Some(tenant.to_owned()), ..Claims::new(sub, name, role, Duration::from_secs(600)) };
    JwtIssuer::new(&jwt_settings()).issue(&claims).unwrap()
}

/// Validates `instance` against `proto-schemas/<name>`.
pub fn assert_schema(name: &str, instance: &Value) {
    let path = format!("{}/../../proto-schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{instance} violates {name}: {errors:#?}");
}

/// Where a running Herald answers: the API base and the WebSocket base, which differ when the
/// services run separately.
pub struct Endpoints {
    pub api: String,
    pub ws: String,
    pub http: reqwest::Client,
}

/// What an accepted notice's answer said.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub message_id: String,
    pub push_time: String,
}

impl Endpoints {
    pub fn new(api_addr: std::net::SocketAddr, ws_addr: std::net::SocketAddr) -> Self {
        runtime::install_crypto_provider();
        Self { api: format!("http://{api_addr}"), ws: format!("ws://{ws_addr}/ws"), http: reqwest::Client::new() }
    }

    /// Posts a notice as JSON; returns the status, the headers and the body.
    pub async fn post_notice(&self, token: Option<&str>, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
        self.post_notice_with(token, body, &[]).await
    }

    /// Posts a notice as JSON with extra headers.
    pub async fn post_notice_with(
        &self,
        token: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.post(format!("{}/api/admin/system/notice", self.api)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.unwrap())
    }

    /// `GET {api}{path}` with a bearer token; returns the status and the JSON body.
    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self.http.get(format!("{}{path}", self.api)).bearer_auth(token).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// `PUT {api}{path}` with a JSON body and a bearer token; returns the status and the JSON body.
    pub async fn put(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let response = self.http.put(format!("{}{path}", self.api)).bearer_auth(token).json(body).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// `DELETE {api}{path}` with a bearer token; returns the status and the JSON body.
    pub async fn delete(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self.http.delete(format!("{}{path}", self.api)).bearer_auth(token).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// `POST {api}{path}` with a JSON body and a bearer token (none when empty); returns the
    /// status and the JSON body.
    pub async fn post(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.api)).json(body);
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Posts a notice that must be accepted, checking the answer's shape.
    pub async fn notice(&self, token: &str, body: Value) -> Accepted {
        let (status, _, answer) = self.post_notice(Some(token), &body).await;
        assert_eq!(status, 200, "{answer}");
        assert_schema("push-success-response.schema.json", &answer);
        assert_eq!(answer["data"]["status"], "queued");
        Accepted {
            message_id: answer["data"]["message_id"].as_str().unwrap().to_owned(),
            push_time: answer["data"]["push_time"].as_str().unwrap().to_owned(),
        }
    }

    /// Waits until `/readyz` at `base` answers 200.
    pub async fn wait_ready(&self, base: &str) {
        eventually(&format!("{base} to become ready"), Duration::from_secs(30), || async {
            match self.http.get(format!("{base}/readyz")).send().await {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(format!("{} {}", response.status(), response.text().await.unwrap_or_default())),
                Err(err) => Err(err.to_string()),
            }
        })
        .await;
    }

    /// Opens a WebSocket presenting `token` the way `via` says.
    /// Opens a WebSocket presenting `token` the way `via` says, and waits until it is live.
    pub async fn ws(&self, token: &str, via: TokenVia) -> WsClient {
        let mut client =
            WsClient::connect(&self.ws, token, via).await.unwrap_or_else(|err| panic!("connect failed: {err}"));
        client.until_live().await;
        client
    }
}

/// How a WebSocket client presents its token.
#[derive(Clone, Copy, Debug)]
pub enum TokenVia {
    Query,
    Header,
    Subprotocol,
}

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames read while waiting for something else, returned first by `next_text`.
    pending: std::collections::VecDeque<String>,
}

impl WsClient {
    pub async fn connect(url: &str, token: &str, via: TokenVia) -> Result<Self, tungstenite::Error> {
        let url = match via {
            TokenVia::Query => format!("{url}?token={token}"),
            _ => url.to_owned(),
        };
        let mut request = url.into_client_request()?;
        match via {
            TokenVia::Header => {
                request.headers_mut().insert("Authorization", format!("Bearer {token}").parse().unwrap());
            }
            TokenVia::Subprotocol => {
                request.headers_mut().insert("Sec-WebSocket-Protocol", format!("bearer, {token}").parse().unwrap());
            }
            TokenVia::Query => {}
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { stream, pending: Default::default() })
    }

    /// Waits until the session is live, i.e. its offline replay is done: the gateway answers a
    /// ping only after it. Frames received meanwhile are kept for `next_text`.
    pub async fn until_live(&mut self) {
        self.send_text(r#"{"type":"ping"}"#).await;
        let mut before = Vec::new();
        loop {
            let frame = self.read_text().await;
            if serde_json::from_str::<Value>(&frame).is_ok_and(|v| v["type"] == "pong") {
                break;
            }
            before.push(frame);
        }
        self.pending.extend(before);
    }

    /// The frames read before the session went live (its offline replay), taken.
    pub fn replayed(&mut self) -> Vec<String> {
        self.pending.drain(..).collect()
    }

    /// The next text frame, answering pings on the way.
    pub async fn next_text(&mut self) -> String {
        match self.pending.pop_front() {
            Some(frame) => frame,
            None => self.read_text().await,
        }
    }

    async fn read_text(&mut self) -> String {
        loop {
            match tokio::time::timeout(PATIENCE, self.stream.next()).await.expect("no frame in time") {
                Some(Ok(Message::Text(text))) => return text.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Text frames up to and including the one carrying `message_id`.
    pub async fn frames_until(&mut self, message_id: &str) -> Vec<String> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next_text().await;
            let done = serde_json::from_str::<Value>(&frame).ok().is_some_and(|v| v["message_id"] == message_id);
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// The next text frame, or `None` once the connection is gone (for tests that kill servers).
    pub async fn try_next_text(&mut self) -> Option<String> {
        if let Some(frame) = self.pending.pop_front() {
            return Some(frame);
        }
        loop {
            match tokio::time::timeout(PATIENCE, self.stream.next()).await.ok()?? {
                Ok(Message::Text(text)) => return Some(text.to_string()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Sends a text frame, ignoring a connection that is already gone.
    pub async fn try_send_text(&mut self, text: &str) {
        let _ = self.stream.send(Message::text(text)).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    pub async fn send(&mut self, message: Message) {
        self.stream.send(message).await.unwrap();
    }

    /// Waits for the server's close frame and returns it.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match tokio::time::timeout(PATIENCE, self.stream.next()).await.expect("no close in time") {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                Some(Err(err)) => panic!("connection failed instead of closing: {err}"),
                None => return None,
            }
        }
    }
}

/// The message ids of the frames that carry one, in order.
pub fn message_ids(frames: &[String]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(f).ok()?["message_id"].as_str().map(str::to_owned))
        .collect()
}

/// The expected client frame (spec 3.2), written out by hand so the test does not share the
/// serialiser it checks.
pub fn expected_frame(
    kind: &str,
    content: &str,
    priority: u8,
    need_confirm: bool,
    extra: &str,
    accepted: &Accepted,
) -> String {
    format!(
        r#"{{"type":"{kind}","content":"{content}","data":{{"priority":{priority},"need_confirm":{need_confirm}{extra}}},"time":"{}","message_id":"{}"}}"#,
        accepted.push_time, accepted.message_id
    )
}

/// ingest-api and ws-gateway as separate servers in this process, over the real RabbitMQ and
/// Redis under a fresh prefix.
pub struct Distributed {
    pub endpoints: Endpoints,
    pub gateway_base: String,
    /// Every gateway replica's WebSocket URL; `endpoints.ws` is the first.
    pub gateway_ws: Vec<String>,
    /// The record-writer's and the mobile-push-worker's HTTP bases (`/readyz`, `/metrics`).
    pub writer_base: String,
    pub worker_base: String,
    shutdown: CancellationToken,
    /// The processes (`herald::run` tasks), which finish once they have stopped.
    processes: Vec<tokio::task::JoinHandle<()>>,
    bus_settings: BusSettings,
    leftovers: Option<Leftovers>,
}

/// The durable queues of a distributed test app: the record-writer's, the mobile-push-worker's
/// (sends, notices), its retry delay queues (at the default delays and `quick_retries`') and the
/// delay queues of 2-second fallbacks.
pub const DURABLE_QUEUES: &[&str] = &[
    "records",
    "records-events",
    "mobile-push-worker",
    "mobile-push-notices",
    "delay.mobile.send.5000",
    "delay.mobile.send.30000",
    "delay.mobile.send.120000",
    "delay.mobile.send.200",
    "delay.mobile.send.400",
    "delay.mobile.send.600",
    "delay.mobile.fallback.1000",
    "delay.mobile.fallback.2000",
];

/// Provider sends retried after 200, 400 and 600 ms, a call timing out after 800 ms: a send's
/// four attempts take a second or two.
pub fn quick_retries() -> mobile_push_worker::MobileSettings {
    mobile_push_worker::MobileSettings {
        retry_delays_ms: vec![200, 400, 600],
        connect_timeout_ms: 500,
        timeout_ms: 800,
        ..Default::default()
    }
}

/// What a distributed test app leaves on the servers.
struct Leftovers {
    bus_settings: BusSettings,
    database: ScratchDatabase,
}

impl Leftovers {
    /// Deletes every Redis key under the deployment's prefix, its queues and exchanges, and its
    /// database schema.
    async fn remove(self) {
        let redis =
            RedisSettings { key_prefix: format!("{}:", self.bus_settings.prefix), ..RedisSettings::redis(redis_url()) };
        // Every step is tried even if one fails, so one hiccup does not leave the rest behind.
        let purged = state::purge_prefix(&redis).await.map(|_| ());
        let removed = bus::amqp::AmqpBus::remove_topology(&self.bus_settings, DURABLE_QUEUES).await;
        let dropped = self.database.drop_now().await;
        purged.unwrap();
        removed.unwrap();
        dropped.unwrap();
    }
}

impl Distributed {
    pub async fn spawn() -> Self {
        Self::spawn_with_gateways(1).await
    }

    /// The scratch database the services use (records, directory).
    pub fn database(&self) -> DatabaseSettings {
        self.leftovers.as_ref().map(|l| l.database.settings.clone()).expect("the app is running")
    }

    /// ingest-api and `replicas` ws-gateway replicas sharing one broker and Redis.
    pub async fn spawn_with_gateways(replicas: usize) -> Self {
        Self::spawn_custom(replicas, true).await
    }

    /// One gateway; ingest-api reaches Redis at `redis` (a proxy in front of it, say) and takes
    /// the settings `adjust` makes.
    pub async fn spawn_with_redis(redis: String, adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_full(1, |_| {}, Some(redis), adjust, Default::default(), None).await
    }

    /// One gateway; every role keeps live state where `state` says (a Sentinel-watched set of
    /// test servers, say), under the deployment's key prefix.
    pub async fn spawn_with_state(state: RedisSettings) -> Self {
        Self::spawn_full(1, |_| {}, None, |_| {}, Default::default(), Some(state)).await
    }

    /// One gateway; the mobile-push-worker runs with `mobile`.
    pub async fn spawn_with_mobile(mobile: mobile_push_worker::MobileSettings) -> Self {
        Self::spawn_full(1, |_| {}, None, |_| {}, mobile, None).await
    }

    /// As `spawn_with_gateways`; with `dispatch` false no ingress dispatcher runs, so normal
    /// notices wait in the backlog (a paused consumer).
    pub async fn spawn_custom(replicas: usize, dispatch: bool) -> Self {
        Self::spawn_with_bus(replicas, |bus| bus.dispatch = dispatch).await
    }

    /// `replicas` gateways, with the bus settings `adjust` makes (a small backlog, say).
    pub async fn spawn_with_bus(replicas: usize, adjust: impl FnOnce(&mut BusSettings)) -> Self {
        Self::spawn_full(replicas, adjust, None, |_| {}, Default::default(), None).await
    }

    /// ingest-api, `replicas` ws-gateways and a record-writer, each a process of its own role
    /// (here: each its own `herald::run` in this test process), on one broker, Redis and
    /// PostgreSQL schema.
    async fn spawn_full(
        replicas: usize,
        adjust: impl FnOnce(&mut BusSettings),
        api_redis: Option<String>,
        adjust_ingest: impl FnOnce(&mut Settings),
        mobile: mobile_push_worker::MobileSettings,
        state: Option<RedisSettings>,
    ) -> Self {
        runtime::install_crypto_provider();
        let mut bus_settings = BusSettings {
            url: BusUrl::Amqp(amqp_url()),
            prefix: format!("test-e2e-{}", uuid::Uuid::new_v4().simple()),
            ..BusSettings::default()
        };
        adjust(&mut bus_settings);
        let redis = RedisSettings {
            key_prefix: format!("{}:", bus_settings.prefix),
            ..state.unwrap_or_else(|| RedisSettings::redis(redis_url()))
        };
        let inbox = state::OfflineInbox::start(&redis, &OfflineSettings::default()).unwrap();
        assert!(inbox.wait_ready(Duration::from_secs(10)).await, "Redis is not reachable at {:?}", redis.url);
        let database = ScratchDatabase::create(Backend::Postgres).await.expect("PostgreSQL is not reachable");
        let shutdown = CancellationToken::new();
        // What every role of this deployment shares.
        let base = Settings {
            jwt: jwt_settings(),
            bus: bus_settings.clone(),
            redis: redis.clone(),
            limits: no_limits(),
            presence: quick_presence(),
            database: database.settings.clone(),
            ws: generous_ws(),
            records: records::RecordsSettings { linger_ms: 5, ..Default::default() },
            mobile,
            ..Default::default()
        };
        let api_listener = listener();
        let api_addr = api_listener.local_addr().unwrap();
        let mut ingest = Settings {
            redis: RedisSettings {
                url: api_redis.map(state::StateBackend::Redis).unwrap_or_else(|| redis.url.clone()),
                ..redis.clone()
            },
            ..base.clone()
        };
        adjust_ingest(&mut ingest);
        let mut processes = vec![spawn_roles(ingest, &[herald::Role::IngestApi], api_listener, shutdown.clone())];
        let mut gateway_addrs = Vec::new();
        for _ in 0..replicas {
            let ws_listener = listener();
            gateway_addrs.push(ws_listener.local_addr().unwrap());
            processes.push(spawn_roles(base.clone(), &[herald::Role::WsGateway], ws_listener, shutdown.clone()));
        }
        let writer_listener = listener();
        let writer_addr = writer_listener.local_addr().unwrap();
        processes.push(spawn_roles(base.clone(), &[herald::Role::RecordWriter], writer_listener, shutdown.clone()));
        let worker_listener = listener();
        let worker_addr = worker_listener.local_addr().unwrap();
        processes.push(spawn_roles(base, &[herald::Role::MobilePushWorker], worker_listener, shutdown.clone()));
        let endpoints = Endpoints::new(api_addr, gateway_addrs[0]);
        endpoints.wait_ready(&endpoints.api.clone()).await;
        endpoints.wait_ready(&format!("http://{writer_addr}")).await;
        endpoints.wait_ready(&format!("http://{worker_addr}")).await;
        for addr in &gateway_addrs {
            endpoints.wait_ready(&format!("http://{addr}")).await;
        }
        let gateway_base = format!("http://{}", gateway_addrs[0]);
        let gateway_ws = gateway_addrs.iter().map(|addr| format!("ws://{addr}/ws")).collect();
        let leftovers = Some(Leftovers { bus_settings: bus_settings.clone(), database });
        let (writer_base, worker_base) = (format!("http://{writer_addr}"), format!("http://{worker_addr}"));
        Self {
            endpoints,
            gateway_base,
            gateway_ws,
            writer_base,
            worker_base,
            shutdown,
            processes,
            bus_settings,
            leftovers,
        }
    }

    /// Starts a janitor on the deployment's database and Redis (with its default schedules, so
    /// each job catches up on its last slot at once); returns its HTTP base.
    pub async fn spawn_janitor(&mut self) -> String {
        let settings = Settings {
            jwt: jwt_settings(),
            bus: self.bus_settings.clone(),
            redis: RedisSettings {
                key_prefix: format!("{}:", self.bus_settings.prefix),
                ..RedisSettings::redis(redis_url())
            },
            database: self.database(),
            ..Default::default()
        };
        let janitor_listener = listener();
        let base = format!("http://{}", janitor_listener.local_addr().unwrap());
        self.processes.push(spawn_roles(settings, &[herald::Role::Janitor], janitor_listener, self.shutdown.clone()));
        self.endpoints.wait_ready(&base).await;
        base
    }

    /// The bus settings the services run with (same broker, same prefix).
    pub fn bus_settings(&self) -> &BusSettings {
        &self.bus_settings
    }

    /// Stops the services and deletes what they left on the servers. (Dropping the app without
    /// `stop`, as a failing test does, cleans up too.)
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        // Let the services stop, closing their pools, before the schema goes. One that does not
        // stop in time is reported, and cleaned up after all.
        let processes = futures_util::future::join_all(std::mem::take(&mut self.processes));
        if tokio::time::timeout(PATIENCE, processes).await.is_err() {
            eprintln!("the services had not stopped {PATIENCE:?} after the shutdown; cleaning up anyway");
        }
        if let Some(leftovers) = self.leftovers.take() {
            leftovers.remove().await;
        }
    }
}

impl Drop for Distributed {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(leftovers) = self.leftovers.take() {
            leftovers.remove_blocking();
        }
    }
}

impl Leftovers {
    /// `remove` from a synchronous context (a `Drop` of a test that panicked): on a runtime of
    /// its own, as the test's may be gone.
    fn remove_blocking(self) {
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(self.remove());
        })
        .join();
    }
}

/// What processes a test started leave on the servers under a bus prefix (queues and exchanges,
/// Redis keys `<prefix>:*`) and a scratch database: removed by `remove`, or when dropped (a test
/// that failed).
pub struct ServerLeftovers(Option<Leftovers>);

impl ServerLeftovers {
    pub fn new(bus_settings: BusSettings, database: ScratchDatabase) -> Self {
        Self(Some(Leftovers { bus_settings, database }))
    }

    pub fn database(&self) -> &DatabaseSettings {
        &self.0.as_ref().expect("not removed yet").database.settings
    }

    pub async fn remove(mut self) {
        if let Some(leftovers) = self.0.take() {
            leftovers.remove().await;
        }
    }
}

impl Drop for ServerLeftovers {
    fn drop(&mut self) {
        if let Some(leftovers) = self.0.take() {
            leftovers.remove_blocking();
        }
    }
}

/// The all-in-one, in this process, as it runs by default: the in-process bus journaled in the
/// database, live state in the same database (here an in-memory SQLite).
pub struct Embedded {
    pub endpoints: Endpoints,
    pub shutdown: CancellationToken,
}

impl Embedded {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        runtime::install_crypto_provider();
        let mut settings = Settings {
            jwt: jwt_settings(),
            bus: BusSettings::in_process(),
            redis: no_redis(),
            limits: no_limits(),
            presence: quick_presence(),
            database: memory_database(),
            ws: generous_ws(),
            ..Default::default()
        };
        adjust(&mut settings);
        let shutdown = CancellationToken::new();
        let listener = listener();
        let addr = listener.local_addr().unwrap();
        spawn_roles(settings, &herald::Role::ALL, listener, shutdown.clone());
        let endpoints = Endpoints::new(addr, addr);
        endpoints.wait_ready(&endpoints.api.clone()).await;
        Self { endpoints, shutdown }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A TCP proxy that can stall: while paused it holds every byte in both directions (as a Redis
/// under `CLIENT PAUSE`, or a network hiccup, would), and lets them through on resume. Only the
/// connections of the test that made it go through it.
pub struct StallingProxy {
    pub addr: std::net::SocketAddr,
    paused: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    /// What the clients sent while paused, held back (lossy UTF-8): what a test waits on to know
    /// a request got as far as the stalled server.
    held: std::sync::Arc<std::sync::Mutex<String>>,
}

impl StallingProxy {
    pub async fn start(target: String) -> Self {
        let listener = listener();
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let addr = listener.local_addr().unwrap();
        let paused = std::sync::Arc::new(tokio::sync::watch::Sender::new(false));
        let held = std::sync::Arc::<std::sync::Mutex<String>>::default();
        let (flag, log) = (paused.clone(), held.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else { continue };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, flag.subscribe(), Some(log.clone())));
                tokio::spawn(pump(server_read, client_write, flag.subscribe(), None));
            }
        });
        Self { addr, paused, held }
    }

    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.held.lock().unwrap().clear();
        self.paused.send_replace(false);
    }

    /// Waits until a client has sent any of `texts` (a key name, a script, say) since the proxy
    /// was paused.
    pub async fn until_holding(&self, texts: &[&str]) {
        eventually(&format!("the stalled proxy to hold any of {texts:?}"), PATIENCE, || async {
            let held = self.held.lock().unwrap();
            if texts.iter().any(|text| held.contains(text)) { Ok(()) } else { Err(format!("{held:?}")) }
        })
        .await;
    }
}

/// Copies `from` to `to`, holding each read while `paused` (and noting it in `held`).
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    mut paused: tokio::sync::watch::Receiver<bool>,
    held: Option<std::sync::Arc<std::sync::Mutex<String>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if *paused.borrow_and_update() {
            if let Some(held) = &held {
                held.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            // Resumed, or the proxy is gone: either way the bytes go on.
            let _ = paused.wait_for(|paused| !paused).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}
