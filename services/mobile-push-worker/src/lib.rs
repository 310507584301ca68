//! mobile-push-worker: provider sends (reqwest), push logs, retries and device error counts.
//!
//! The providers ([`provider`]: the original's UniPush-style cloud function; FCM HTTP v1 for
//! Android devices and APNs for iPhones, when configured) post one send and classify every
//! answer, and
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
/// Fails when a provider cannot be set up (FCM's or APNs's key file unreadable or not a key).
pub async fn component(
    settings: &MobileSettings,
    bus: &bus::Bus,
    stores: WorkerStores,
    time: model::TimeFormat,
    registry: &http_server::Registry,
    shutdown: CancellationToken,
) -> Result<Component, ProviderError> {
    let WorkerStores { mobile: store, directory, receipts } = stores;
    let metrics = SendMetrics::on(registry);
    let providers = providers(settings).await?;
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
    let notices =
        worker::start_notices(bus, store.clone(), directory.clone(), receipts.clone(), concurrency, shutdown.clone());
    let sends = worker::Sends {
        bus: bus.clone(),
        sender,
        retry_delays,
        directory: directory.clone(),
        receipts: receipts.clone(),
        time,
    };
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

/// A provider that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The HTTP client.
    #[error("the push provider's HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// FCM.
    #[error(transparent)]
    Fcm(#[from] provider::fcm::FcmError),
    /// APNs.
    #[error(transparent)]
    Apns(#[from] provider::apns::ApnsError),
    /// Web Push.
    #[error(transparent)]
    WebPush(#[from] provider::webpush::WebPushError),
}

/// The providers `settings` configure.
pub async fn providers(settings: &MobileSettings) -> Result<provider::Providers, ProviderError> {
    let mut providers = provider::Providers::unipush(provider::UniPush::new(settings.timeouts())?);
    if !settings.fcm_credentials_file.is_empty() {
        let project = Some(settings.fcm_project_id.as_str()).filter(|id| !id.is_empty());
        let key = std::path::Path::new(&settings.fcm_credentials_file);
        let fcm = provider::fcm::Fcm::from_file(key, project, &settings.fcm_url, settings.timeouts()).await?;
        tracing::info!(url = fcm.send_url(), "FCM sends for Android devices");
        providers = providers.with_fcm(fcm);
    }
    if !settings.apns_key_file.is_empty() {
        let config = provider::apns::ApnsConfig {
            key_id: settings.apns_key_id.clone(),
            team_id: settings.apns_team_id.clone(),
            topic: settings.apns_topic.clone(),
            base_url: settings.apns_url.clone(),
        };
        let key = std::path::Path::new(&settings.apns_key_file);
        let apns = provider::apns::Apns::from_file(key, config, settings.timeouts()).await?;
        tracing::info!(url = %settings.apns_url, topic = %settings.apns_topic, "APNs sends for iOS devices");
        providers = providers.with_apns(apns);
    }
    if !settings.web_push_vapid_key_file.is_empty() {
        let key = std::path::Path::new(&settings.web_push_vapid_key_file);
        let web_push = provider::webpush::WebPush::from_file(key, settings.web_push(), settings.timeouts()).await?;
        tracing::info!(
            application_server_key = %web_push.public_key(),
            hosts = ?settings.web_push_hosts,
            "Web Push sends for browsers"
        );
        providers = providers.with_web_push(web_push);
    }
    Ok(providers)
}
