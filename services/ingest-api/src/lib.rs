//! ingest-api: the admin REST API. It validates notices, stamps them with a message id and the
//! server's time, publishes them on the bus with publisher confirms, and answers per spec 6.
//!
//! `configure` mounts the routes on any actix app (the all-in-one binary mounts them beside the
//! gateway's); `run` serves them on their own.

mod error;
mod intake;
mod limits;
mod notice;
pub mod openapi;
mod receipts;
mod records;
mod routes;
mod settings;
mod users;

pub use error::ApiError;
pub use settings::Settings;

use actix_web::web;
use bus::Bus;
use model::TimeFormat;
use runtime::JwtVerifier;
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;
use store::{RecordStore, Stores};
use tokio_util::sync::CancellationToken;

/// What the API's handlers share. Cheap to clone.
#[derive(Clone)]
pub struct IngestApi {
    bus: Bus,
    stores: Stores,
    records: RecordStore,
    intake: intake::Intake,
    /// How long a notice request may take, at most: its idempotency claim lapses after it.
    request_budget: Duration,
    urgent_slots: Arc<tokio::sync::Semaphore>,
    time: TimeFormat,
    verifier: JwtVerifier,
    max_body_bytes: usize,
    limits: Arc<limits::SendLimits>,
    trusted_proxies: Arc<[IpAddr]>,
}

impl IngestApi {
    /// The API over `bus`, `stores` and `records`, configured by `settings`.
    pub fn new(settings: &Settings, bus: Bus, stores: Stores, records: RecordStore) -> anyhow::Result<Self> {
        let request_budget = Duration::from_millis(
            settings.bus.publish_timeout_ms
                + settings.bus.confirm_timeout_ms
                + 3 * settings.redis.command_timeout_ms
                + settings.database.connect_timeout_ms,
        );
        Ok(Self {
            intake: intake::Intake::choose(&bus, &stores),
            bus,
            stores,
            records,
            request_budget,
            urgent_slots: Arc::new(tokio::sync::Semaphore::new(settings.limits.urgent_in_flight as usize)),
            time: settings.time.format()?,
            verifier: JwtVerifier::new(&settings.jwt),
            max_body_bytes: settings.http.max_body_bytes,
            limits: start_limits(settings),
            trusted_proxies: settings.http.trusted_proxies.clone().into(),
        })
    }

    /// Mounts the API's routes.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .app_data(web::Data::new(self.verifier.clone()))
            .app_data(web::Data::new(self.time))
            .app_data(http_server::json_config(self.max_body_bytes));
        routes::mount(cfg);
    }

    /// Readiness: the bus can publish and the Redis-backed stores answer.
    pub fn readiness(&self) -> http_server::Readiness {
        let (bus, inbox, idempotency) = (self.bus.clone(), self.stores.inbox.clone(), self.stores.idempotency.clone());
        let (audience, presence) = (self.stores.audience.clone(), self.stores.presence.clone());
        let (directory, records) = (self.stores.directory.clone(), self.records.clone());
        let receipts = self.stores.receipts.clone();
        http_server::Readiness::default()
            .check("records_store", move || records.is_ready())
            .check("bus", move || bus.is_ready())
            .check("offline_inbox", move || inbox.is_ready())
            .check("audience", move || audience.is_ready())
            .check("idempotency", move || idempotency.is_ready())
            .check("presence", move || presence.is_ready())
            .check("user_directory", move || directory.is_ready())
            .check("receipts", move || receipts.is_ready())
    }
}

/// Starts the ingress dispatcher when `settings.bus.dispatch` says so (see `bus::Exchange::Ingress`),
/// and returns its readiness check.
pub fn start_dispatcher(settings: &Settings, bus: &Bus, shutdown: CancellationToken) -> http_server::Readiness {
    if !settings.bus.dispatch {
        tracing::info!("ingress dispatcher off (bus.dispatch = false)");
        return http_server::Readiness::default();
    }
    let ready = bus.start_dispatcher(shutdown);
    http_server::Readiness::default().check("ingress_dispatcher", move || *ready.borrow())
}

/// The rate limiters, with a task that forgets idle keys every minute for as long as they live.
fn start_limits(settings: &Settings) -> Arc<limits::SendLimits> {
    let limits = Arc::new(limits::SendLimits::new(&settings.limits));
    let weak = Arc::downgrade(&limits);
    tokio::spawn(async move {
        let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            match weak.upgrade() {
                Some(limits) => limits.forget_idle(),
                None => break,
            }
        }
    });
    limits
}

/// Runs ingest-api alone on `listener` until `shutdown`.
pub async fn run(settings: Settings, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let bus = Bus::start(&settings.bus, shutdown.clone());
    let stores = Stores::open(settings.stores(), shutdown.clone()).await.map_err(anyhow::Error::from_boxed)?;
    let dispatcher = start_dispatcher(&settings, &bus, shutdown.clone());
    let records =
        RecordStore::open(&settings.records, &settings.database, settings.time.format()?, shutdown.clone()).await?;
    let api = IngestApi::new(&settings, bus, stores, records)?;
    let readiness = api.readiness().merge(dispatcher);
    tracing::info!(addr = %listener.local_addr()?, "ingest-api listening");
    http_server::serve(listener, &settings.http, shutdown, move |cfg| {
        api.configure(cfg);
        http_server::health_routes(readiness.clone())(cfg);
    })
    .await?;
    Ok(())
}
