//! ingest-api: the admin REST API. It validates notices, stamps them with a message id and the
//! server's time, publishes them on the bus with publisher confirms, and answers per spec 6.
//!
//! Two components: [`IngestApi::component`] (the routes) and [`dispatcher`] (moves notices from
//! the bounded ingress queue onward). The binary's `ingest-api` role runs both.

mod console;
pub mod dispatcher;
mod error;
mod intake;
mod limits;
mod metrics;
mod mobile;
mod notice;
pub mod openapi;
mod providers;
mod receipts;
mod records;
mod routes;
mod settings;
mod users;

pub use error::ApiError;
pub use settings::LimitSettings;

use ::records::RecordStore;
use actix_web::web;
use bus::Bus;
use http_server::Component;
use model::TimeFormat;
use runtime::HttpSettings;
use state::Stores;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// What the API's handlers share. Cheap to clone.
#[derive(Clone)]
pub struct IngestApi {
    bus: Bus,
    stores: Stores,
    records: RecordStore,
    mobile: ::mobile::MobileStore,
    intake: intake::Intake,
    /// How long a notice request may take, at most: its idempotency claim lapses after it.
    request_budget: Duration,
    urgent_slots: Arc<tokio::sync::Semaphore>,
    time: TimeFormat,
    max_body_bytes: usize,
    limits: Arc<limits::SendLimits>,
    trusted_proxies: Arc<[IpAddr]>,
    metrics: metrics::ApiMetrics,
}

impl IngestApi {
    /// The API over `bus`, `stores`, `records` and the `mobile` tables, with the sending `limits`
    /// and the process's `http` settings (body limit, trusted proxies).
    pub fn new(
        bus: Bus,
        stores: Stores,
        records: RecordStore,
        mobile: ::mobile::MobileStore,
        time: TimeFormat,
        limits: &LimitSettings,
        http: &HttpSettings,
    ) -> Self {
        Self {
            intake: intake::Intake::choose(&bus, &stores),
            request_budget: bus.publish_budget() + stores.command_budget(),
            bus,
            stores,
            records,
            mobile,
            urgent_slots: Arc::new(tokio::sync::Semaphore::new(limits.urgent_in_flight as usize)),
            time,
            max_body_bytes: http.max_body_bytes,
            limits: start_limits(limits),
            trusted_proxies: http.trusted_proxies.clone().into(),
            metrics: metrics::ApiMetrics::on(&http_server::Registry::new()),
        }
    }

    /// The API counting on the process's `registry` (served at `/metrics`).
    pub fn with_metrics(mut self, registry: &http_server::Registry) -> Self {
        self.metrics = metrics::ApiMetrics::on(registry);
        self
    }

    /// The API as a component of a process: its routes and readiness.
    pub fn component(&self) -> Component {
        let api = self.clone();
        Component::new("ingest-api").routes(move |cfg| api.configure(cfg)).readiness(self.readiness())
    }

    /// Mounts the API's routes.
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone())).app_data(http_server::json_config(self.max_body_bytes));
        routes::mount(cfg);
        console::mount(cfg);
    }

    /// Readiness: the bus can publish and the stores answer.
    fn readiness(&self) -> http_server::Readiness {
        let (bus, inbox, idempotency) = (self.bus.clone(), self.stores.inbox.clone(), self.stores.idempotency.clone());
        let (audience, presence) = (self.stores.audience.clone(), self.stores.presence.clone());
        let (directory, records) = (self.stores.directory.clone(), self.records.clone());
        let receipts = self.stores.receipts.clone();
        let mobile = self.mobile.clone();
        http_server::Readiness::default()
            .check("records_store", move || records.is_ready())
            .check("bus", move || bus.is_ready())
            .check("offline_inbox", move || inbox.is_ready())
            .check("audience", move || audience.is_ready())
            .check("idempotency", move || idempotency.is_ready())
            .check("presence", move || presence.is_ready())
            .check("user_directory", move || directory.is_ready())
            .check("receipts", move || receipts.is_ready())
            .check("device_registry", move || mobile.is_ready())
    }
}

/// The rate limiters, with a task that forgets idle keys every minute for as long as they live.
fn start_limits(settings: &LimitSettings) -> Arc<limits::SendLimits> {
    let limits = Arc::new(limits::SendLimits::new(settings));
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
