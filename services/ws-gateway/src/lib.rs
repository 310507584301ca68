//! ws-gateway: the WebSocket endpoint. Each replica consumes every notification from its own
//! exclusive queue and delivers the spec 3.2 frame to the local connections it addresses.
//!
//! Cut along centrifuge's lines: [`Gateway`] is the process-wide node (a component of the
//! process it runs in), [`hub`] the registry of local connections (a worker hub per HTTP worker
//! thread doing the local fan-out there), [`session`] one task per socket, owning it after the
//! handshake, the bus for cross-replica fan-out.

mod fanout;
pub mod hub;
mod metrics;
mod outbox;
mod presence;
mod session;
mod settings;
mod transport;

pub use settings::WsSettings;

use actix_web::http::header::SEC_WEBSOCKET_PROTOCOL;
use actix_web::{HttpRequest, HttpResponse, web};
use bus::{Bus, Exchange, QueueKind, SubscriptionSpec};
use http_server::{Component, Failure, Takeover};
use hub::Hub;
use model::{ErrorCode, TimeFormat};
use runtime::{AuthError, HttpSettings, JwtVerifier};
use state::{SeenRecorder, Stores, UserProfile};
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Sightings of connecting users that may wait for the directory before some are dropped.
const SEEN_BACKLOG: usize = 10_000;

/// The subprotocol a browser offers beside its token: `new WebSocket(url, ["bearer", token])`.
pub const BEARER_SUBPROTOCOL: &str = "bearer";

/// The process-wide gateway node. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    hub: Arc<Hub>,
    /// What every session uses.
    sessions: Arc<session::Shared>,
    stores: Stores,
    seen: SeenRecorder,
    bus: Bus,
    verifier: JwtVerifier,
    trusted_proxies: Arc<[std::net::IpAddr]>,
    subscribed: watch::Receiver<bool>,
}

impl Gateway {
    /// Subscribes to the bus and starts fanning out; runs until `shutdown`. Connecting users get
    /// what their inbox kept for them replayed, are recorded in the directory and counted in
    /// presence. `verifier` checks their tokens; `http` names the proxies whose
    /// `X-Forwarded-For` is believed.
    pub fn start(
        settings: &WsSettings,
        http: &HttpSettings,
        (verifier, time): (JwtVerifier, TimeFormat),
        bus: &Bus,
        stores: Stores,
        registry: &http_server::Registry,
        shutdown: CancellationToken,
    ) -> Self {
        let hub = Arc::new(Hub::new(settings.send_buffer, settings.max_connections_per_user, shutdown.clone()));
        let subscription = bus.subscribe(SubscriptionSpec {
            queue: "gateway".into(),
            kind: QueueKind::Exclusive,
            exchange: Exchange::Notifications,
            bindings: Vec::new(),
        });
        let replica: Arc<str> = uuid::Uuid::new_v4().simple().to_string()[..8].into();
        let receipts = bus.subscribe(SubscriptionSpec {
            queue: "gateway-receipts".into(),
            kind: QueueKind::Exclusive,
            exchange: Exchange::Events,
            bindings: vec!["read.*".into(), "confirmed.*".into()],
        });
        let (subscribed, receipts_subscribed) = (subscription.readiness(), receipts.readiness());
        let subscribed = combine(subscribed, receipts_subscribed);
        tokio::spawn(fanout::run(hub.clone(), bus.clone(), subscription, shutdown.clone()));
        tokio::spawn(fanout::run_sync(hub.clone(), bus.clone(), replica.clone(), time, receipts, shutdown.clone()));
        let refresh = stores.presence.refresh_interval();
        let reporter = presence::run(hub.clone(), stores.presence.clone(), replica.clone(), refresh, shutdown.clone());
        tokio::spawn(reporter);
        let seen = stores.directory.recorder(SEEN_BACKLOG, shutdown.clone());
        // At shutdown each worker hub closes its connections with 1001.
        let sessions = Arc::new(session::Shared {
            hub: hub.clone(),
            inbox: stores.inbox.clone(),
            metrics: metrics::GatewayMetrics::on(registry),
            audience: stores.audience.clone(),
            receipts: stores.receipts.clone(),
            bus: bus.clone(),
            replica,
            time,
            settings: settings.clone(),
        });
        Self {
            hub,
            sessions,
            stores,
            seen,
            bus: bus.clone(),
            verifier,
            trusted_proxies: http.trusted_proxies.clone().into(),
            subscribed,
        }
    }

    /// The gateway as a component of a process: `GET /ws` and its readiness.
    pub fn component(&self) -> Component {
        let gateway = self.clone();
        Component::new("ws-gateway").routes(move |cfg| gateway.configure(cfg)).readiness(self.readiness())
    }

    /// Live connections on this replica.
    pub fn connection_count(&self) -> usize {
        self.hub.connection_count()
    }

    /// Mounts `GET /ws`.
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        // No default service: actix's own answers another method with 405 and an `Allow` header.
        cfg.app_data(web::Data::new(self.clone())).service(web::resource("/ws").route(web::get().to(connect)));
    }

    /// Readiness: the replica's queue is bound and consumed, the bus is up and the stores answer.
    fn readiness(&self) -> http_server::Readiness {
        let (subscribed, inbox, bus) = (self.subscribed.clone(), self.stores.inbox.clone(), self.bus.clone());
        let (presence, directory) = (self.stores.presence.clone(), self.stores.directory.clone());
        let receipts = self.stores.receipts.clone();
        http_server::Readiness::default()
            .check("bus_subscription", move || *subscribed.borrow())
            .check("bus", move || bus.is_ready())
            .check("offline_inbox", move || inbox.is_ready())
            .check("presence", move || presence.is_ready())
            .check("user_directory", move || directory.is_ready())
            .check("receipts", move || receipts.is_ready())
    }
}

/// A readiness flag that is true while both `a` and `b` are.
fn combine(a: watch::Receiver<bool>, b: watch::Receiver<bool>) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(*a.borrow() && *b.borrow());
    tokio::spawn(async move {
        let (mut a, mut b) = (a, b);
        loop {
            tokio::select! {
                changed = a.changed() => if changed.is_err() { break },
                changed = b.changed() => if changed.is_err() { break },
            }
            if tx.send(*a.borrow() && *b.borrow()).is_err() {
                break;
            }
        }
    });
    rx
}

/// The token a WebSocket client presents, and the subprotocol to echo for it.
fn presented_token(req: &HttpRequest) -> Option<(String, Option<String>)> {
    if let Ok(query) = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        && let Some(token) = query.get("token").filter(|t| !t.is_empty())
    {
        return Some((token.clone(), None));
    }
    if let Some(token) = http_server::bearer_token(req) {
        return Some((token.to_owned(), None));
    }
    let offered = req.headers().get(SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    let protocols: Vec<&str> = offered.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    let token = protocols.iter().find(|p| p.split('.').count() == 3)?;
    // Browsers fail the handshake unless the server echoes one offered subprotocol: `bearer`,
    // offered beside the token for that reason. The token itself is never echoed, so it does
    // not travel back in a response header (and into proxies' logs).
    let echo =
        protocols.iter().any(|p| p.eq_ignore_ascii_case(BEARER_SUBPROTOCOL)).then(|| BEARER_SUBPROTOCOL.to_owned());
    Some(((*token).to_owned(), echo))
}

/// `GET /ws`: authenticate, answer the handshake, and take the connection over for its session
/// (`http_server::Takeover`): from the 101 on, the session owns the socket.
async fn connect(req: HttpRequest, gateway: web::Data<Gateway>) -> Result<HttpResponse, Failure> {
    let (token, echo) =
        presented_token(&req).ok_or_else(|| Failure::new(ErrorCode::Unauthorized, AuthError::Missing.to_string()))?;
    let claims =
        gateway.verifier.verify(&token).map_err(|err| Failure::new(ErrorCode::Unauthorized, err.to_string()))?;
    http_server::check_claims(&claims)?;
    let mut handshake = actix_http::ws::handshake(req.head())
        .map_err(|err| Failure::new(ErrorCode::InvalidRequest, format!("not a WebSocket handshake: {err}")))?;
    if let Some(protocol) = echo {
        handshake.insert_header((SEC_WEBSOCKET_PROTOCOL, protocol));
    }
    // Refused after the upgrade, so that a browser, which sees no HTTP status, gets a reason.
    let admission = gateway.hub.admit(claims.sub);
    if admission.is_some() {
        gateway.seen.seen(UserProfile {
            user_id: claims.sub,
            name: claims.name.clone(),
            role: claims.role,
            tenant_id: claims.tenant_id.clone(),
            groups: claims.groups.clone(),
        });
    }
    let context = session::SessionContext {
        shared: gateway.sessions.clone(),
        claims,
        client: session::ClientInfo {
            ip: http_server::client_ip(&req, &gateway.trusted_proxies).map(|ip| ip.to_string()).unwrap_or_default(),
            user_agent: req
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(model::MAX_USER_AGENT_CHARS).collect())
                .unwrap_or_default(),
        },
    };
    let mut response = HttpResponse::from(handshake.finish()).map_into_boxed_body();
    Takeover::new(move |upgraded| session::run(upgraded, context, admission)).attach(&mut response);
    Ok(response)
}
