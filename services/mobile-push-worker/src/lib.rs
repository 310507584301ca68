//! mobile-push-worker: provider sends (reqwest), push logs, retries and device error counts.
//!
//! The providers ([`provider`]: the original's UniPush-style cloud function; FCM HTTP v1 for
//! Android devices, APNs for iPhones and Web Push for browsers, when configured in the config
//! file or the push config API, their settings kept current by [`provider::load`]) post one send
//! and classify every answer, and
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

/// What the worker reads besides its settings and the bus.
#[derive(Clone)]
pub struct WorkerStores {
    /// The devices and the push logs.
    pub mobile: ::mobile::MobileStore,
    /// Who `admin` and `custom` notices are for.
    pub directory: state::UserDirectory,
    /// Who acknowledged which notice, for fallbacks.
    pub receipts: state::ReceiptLedger,
}

/// The worker, as a component of a process: its consumers (see [`worker`]), its readiness, and
/// its metrics on `registry` (served at `/metrics`). Its records' events write times as `time`.
/// Fails when a provider the config file configures cannot be set up (its key unreadable or
/// not a key); the push config API's settings are loaded, and kept current, by
/// [`provider::load`].
pub async fn component(
    settings: &MobileSettings,
    bus: &bus::Bus,
    stores: WorkerStores,
    time: model::TimeFormat,
    registry: &http_server::Registry,
    shutdown: CancellationToken,
) -> Result<Component, provider::load::LoadError> {
    let WorkerStores { mobile: store, directory, receipts } = stores;
    let metrics = SendMetrics::on(registry);
    let mut loader = provider::load::ProviderLoader::new(settings.clone(), store.clone(), metrics.clone());
    let providers = loader.initial().await?;
    let sender = send::Sender::new(store.clone(), providers, metrics.clone())
        .with_max_attempts(settings.max_attempts())
        .with_credential_pause(settings.credential_pause());
    let retry_delays = settings.retry_delays_ms.iter().map(|&ms| Duration::from_millis(ms)).collect();
    let concurrency = settings.concurrency as usize;
    for (exchange, queue) in
        [(bus::Exchange::Mobile, worker::QUEUE), (bus::Exchange::Notifications, worker::NOTICE_QUEUE)]
    {
        bus.report_depth(exchange, queue, registry.queue_gauge(queue), shutdown.clone());
    }
    let notices = worker::start_notices(
        bus,
        store.clone(),
        directory.clone(),
        receipts.clone(),
        metrics,
        concurrency,
        shutdown.clone(),
    );
    let sends = worker::Sends {
        bus: bus.clone(),
        sender,
        retry_delays,
        directory: directory.clone(),
        receipts: receipts.clone(),
        time,
    };
    loader.watch(sends.sender.clone(), settings.provider_reload(), shutdown.clone());
    let ready = worker::start(sends, concurrency, shutdown);
    let bus = bus.clone();
    let readiness = http_server::Readiness::default()
        .check("mobile_subscription", move || *ready.borrow())
        .check("notice_subscription", move || *notices.borrow())
        .check("user_directory", move || directory.is_ready())
        .check("receipt_ledger", move || receipts.is_ready())
        .check("bus", move || bus.is_ready())
        .check("device_registry", move || store.is_ready());
    Ok(Component::new("mobile-push-worker").readiness(readiness))
}
