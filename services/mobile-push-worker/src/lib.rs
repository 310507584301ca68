//! mobile-push-worker: provider sends (reqwest), push logs, retries and device error counts.
//!
//! The provider client ([`provider`]) posts one send to the original's UniPush-style provider and classifies every answer, and
//! one attempt of one send ([`send`]): made once, logged once, with what it did to the device,
//! and counted in the worker's Prometheus metrics ([`metrics`], served at `/metrics`); the
//! consumers ([`worker`]): of notices with the mobile channel and alarm jobs, each expanded into
//! one send per recipient device ([`expand`]), and of sends, retried and dead-lettered.

pub mod expand;
pub mod metrics;
pub mod provider;
pub mod send;
mod settings;
pub mod worker;

pub use settings::MobileSettings;

use http_server::Component;
use metrics::SendMetrics;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The worker, as a component of a process: its consumers (see [`worker`]), its readiness, and
/// its metrics on `registry` (served at `/metrics`). `directory` names the admins of `admin` notices.
pub fn component(
    settings: &MobileSettings,
    bus: &bus::Bus,
    store: ::mobile::MobileStore,
    directory: state::UserDirectory,
    registry: &http_server::Registry,
    shutdown: CancellationToken,
) -> Result<Component, reqwest::Error> {
    let metrics = SendMetrics::on(registry);
    let provider = provider::UniPush::new(settings.timeouts())?;
    let sender = send::Sender::new(store.clone(), provider, metrics.clone()).with_max_attempts(settings.max_attempts());
    let delays = settings.retry_delays_ms.iter().map(|&ms| Duration::from_millis(ms)).collect();
    let concurrency = settings.concurrency as usize;
    for (exchange, queue) in
        [(bus::Exchange::Mobile, worker::QUEUE), (bus::Exchange::Notifications, worker::NOTICE_QUEUE)]
    {
        bus.report_depth(exchange, queue, registry.queue_gauge(queue), shutdown.clone());
    }
    let notices = worker::start_notices(bus, store.clone(), directory.clone(), concurrency, shutdown.clone());
    let ready = worker::start(bus, sender, delays, concurrency, shutdown);
    let bus = bus.clone();
    let readiness = http_server::Readiness::default()
        .check("mobile_subscription", move || *ready.borrow())
        .check("notice_subscription", move || *notices.borrow())
        .check("user_directory", move || directory.is_ready())
        .check("bus", move || bus.is_ready())
        .check("device_registry", move || store.is_ready());
    Ok(Component::new("mobile-push-worker").readiness(readiness))
}
