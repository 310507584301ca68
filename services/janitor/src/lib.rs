//! janitor: scheduled cleanup and retention.
//!
//! Every `records.purge_interval_secs` (and once at start) it deletes push records and receive
//! records older than `records.retention_days` and notification logs older than
//! `records.log_retention_days`. On MongoDB the TTL indexes expire documents on their own; the
//! pass only makes it prompt. Replicas may overlap: a delete that finds nothing does nothing.

use runtime::{DatabaseSettings, HttpSettings, LogSettings, RecordsSettings, TimeSettings};
use serde::{Deserialize, Serialize};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use store::RecordStore;
use store::records::{Purged, Retention};
use tokio_util::sync::CancellationToken;

/// The port janitor listens on by default.
pub const DEFAULT_PORT: u16 = 8084;

/// Everything janitor reads from its configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Listening address.
    pub http: HttpSettings,
    /// Log output.
    pub log: LogSettings,
    /// Time rendering (the records store's).
    pub time: TimeSettings,
    /// The relational database: the records live there unless `records.url` says otherwise.
    pub database: DatabaseSettings,
    /// Where records are, and how long they are kept.
    pub records: RecordsSettings,
}

impl Default for Settings {
    fn default() -> Self {
        let http = HttpSettings { addr: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)), ..HttpSettings::default() };
        Self {
            http,
            log: LogSettings::default(),
            time: TimeSettings::default(),
            database: DatabaseSettings::default(),
            records: RecordsSettings::default(),
        }
    }
}

impl Settings {
    /// Rejects values the service cannot run with; the error names the key.
    pub fn validate(&self) -> Result<(), runtime::ConfigError> {
        self.http.validate()?;
        self.database.validate()?;
        self.records.validate()?;
        self.time.format().map(|_| ())
    }
}

/// A running janitor: its retention task and what `/readyz` checks.
pub struct Janitor {
    readiness: http_server::Readiness,
}

impl Janitor {
    /// Starts the retention passes on `records` until `shutdown`.
    pub fn start(settings: &RecordsSettings, records: RecordStore, shutdown: CancellationToken) -> Self {
        let retention = Retention::of(settings);
        let every = Duration::from_secs(settings.purge_interval_secs);
        let ready = records.clone();
        tokio::spawn(async move {
            loop {
                if let Err(err) = purge_once(&records, retention).await {
                    tracing::warn!(%err, "retention pass failed; trying again at the next one");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
        let readiness = http_server::Readiness::default().check("records_store", move || ready.is_ready());
        Self { readiness }
    }

    /// What `/readyz` checks.
    pub fn readiness(&self) -> http_server::Readiness {
        self.readiness.clone()
    }
}

/// One retention pass: deletes what `retention` no longer keeps, as of now.
pub async fn purge_once(records: &RecordStore, retention: Retention) -> Result<Purged, store::records::RecordsError> {
    let purged = records.purge(retention.cutoffs_now()).await?;
    if purged != Purged::default() {
        tracing::info!(
            records = purged.records,
            receipts = purged.receipts,
            logs = purged.logs,
            "retention pass deleted old records"
        );
    }
    Ok(purged)
}

/// Runs janitor alone on `listener` until `shutdown`.
pub async fn run(settings: Settings, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let records =
        RecordStore::open(&settings.records, &settings.database, settings.time.format()?, shutdown.clone()).await?;
    let janitor = Janitor::start(&settings.records, records, shutdown.clone());
    let readiness = janitor.readiness();
    tracing::info!(addr = %listener.local_addr()?, "janitor listening");
    http_server::serve(listener, &settings.http, shutdown, move |cfg| {
        http_server::health_routes(readiness.clone())(cfg)
    })
    .await?;
    tracing::info!("janitor stopped");
    Ok(())
}
