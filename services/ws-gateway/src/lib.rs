//! ws-gateway: the WebSocket endpoint. Each replica consumes every notification from its own
//! exclusive queue and delivers the spec 3.2 frame to the local connections it addresses.
//!
//! Cut along centrifuge's lines: [`Gateway`] is the process-wide node (a component of the
//! process it runs in), [`hub::Hub`] the sharded registry doing local fan-out, [`session`] one
//! task per socket, the bus for cross-replica fan-out.

mod fanout;
pub mod hub;
mod presence;
mod session;
mod settings;
mod transport;

pub use settings::WsSettings;

use actix_web::http::header::SEC_WEBSOCKET_PROTOCOL;
use actix_web::{HttpRequest, HttpResponse, web};
use bus::{Bus, Exchange, QueueKind, SubscriptionSpec};
use http_server::{Component, Failure};
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
    stores: Stores,
    seen: SeenRecorder,
    bus: Bus,
    /// This replica's id, the prefix of its connection ids (`<replica>-<n>`).
    replica: Arc<str>,
    verifier: JwtVerifier,
    trusted_proxies: Arc<[std::net::IpAddr]>,
    time: TimeFormat,
    settings: WsSettings,
    shutdown: CancellationToken,
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
        shutdown: CancellationToken,
    ) -> Self {
        let hub = Arc::new(Hub::new(settings.send_buffer, settings.max_connections_per_user));
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
        let closer = (hub.clone(), shutdown.clone());
        tokio::spawn(async move {
            closer.1.cancelled().await;
            closer.0.close_all(model::CloseCode::GOING_AWAY);
        });
        Self {
            hub,
            stores,
            seen,
            bus: bus.clone(),
            replica,
            verifier,
            trusted_proxies: http.trusted_proxies.clone().into(),
            time,
            settings: settings.clone(),
            shutdown,
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

/// `GET /ws`: authenticate, upgrade, register, and hand the socket to a session task.
async fn connect(req: HttpRequest, body: web::Payload, gateway: web::Data<Gateway>) -> Result<HttpResponse, Failure> {
    let (token, echo) =
        presented_token(&req).ok_or_else(|| Failure::new(ErrorCode::Unauthorized, AuthError::Missing.to_string()))?;
    let claims =
        gateway.verifier.verify(&token).map_err(|err| Failure::new(ErrorCode::Unauthorized, err.to_string()))?;
    http_server::check_claims(&claims)?;
    let protocols: Vec<&str> = echo.as_deref().into_iter().collect();
    let max = gateway.settings.max_frame_bytes;
    let body = transport::gated_payload(&req, body, max)
        .map_err(|err| Failure::new(ErrorCode::InternalError, format!("the request body cannot be read: {err}")))?;
    let (response, session, stream) = actix_ws::handle_with_protocols(&req, body, &protocols)
        .map_err(|err| Failure::new(ErrorCode::InvalidRequest, format!("not a WebSocket handshake: {err}")))?;
    let stream = stream.max_frame_size(max).aggregate_continuations().max_continuation_size(max);
    let Some(registration) = gateway.hub.register(claims.sub, claims.is_admin()) else {
        // Refused after the upgrade, so that a browser, which sees no HTTP status, gets a reason.
        let code = model::CloseCode::TOO_MANY_CONNECTIONS;
        tracing::warn!(user_id = claims.sub, "connection refused: too many connections for this user");
        let reason = actix_ws::CloseReason { code: code.code.into(), description: Some(code.reason.to_owned()) };
        actix_web::rt::spawn(async move {
            let _ = session.close(Some(reason)).await;
            drop(stream);
        });
        return Ok(response);
    };
    gateway.seen.seen(UserProfile {
        user_id: claims.sub,
        name: claims.name.clone(),
        role: claims.role,
        tenant_id: claims.tenant_id.clone(),
        groups: claims.groups.clone(),
    });
    let connection_id = format!("{}-{}", gateway.replica, registration.id);
    let context = session::SessionContext {
        hub: gateway.hub.clone(),
        inbox: gateway.stores.inbox.clone(),
        audience: gateway.stores.audience.clone(),
        receipts: gateway.stores.receipts.clone(),
        bus: gateway.bus.clone(),
        connection_id,
        registration,
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
        time: gateway.time,
        settings: gateway.settings.clone(),
        shutdown: gateway.shutdown.clone(),
    };
    // Sessions hold the request's payload stream, which is tied to this worker's thread.
    actix_web::rt::spawn(session::run(session, stream, context));
    Ok(response)
}
