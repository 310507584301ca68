//! janitor: scheduled cleanup and retention.
//!
//! A skeleton for now: it starts, serves `/healthz` and `/readyz`, and stops cleanly on
//! shutdown. Its work lands with the issues that need it (see ARCHITECTURE.md).

use runtime::{HttpSettings, LogSettings};
use serde::{Deserialize, Serialize};
use std::net::{SocketAddr, TcpListener};
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
}

impl Default for Settings {
    fn default() -> Self {
        let http = HttpSettings { addr: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)), ..HttpSettings::default() };
        Self { http, log: LogSettings::default() }
    }
}

impl Settings {
    /// Rejects values the service cannot run with; the error names the key.
    pub fn validate(&self) -> Result<(), runtime::ConfigError> {
        self.http.validate()
    }
}

/// What janitor reports to `/readyz`: nothing to depend on yet.
pub fn readiness() -> http_server::Readiness {
    http_server::Readiness::default()
}

/// Runs janitor alone on `listener` until `shutdown`.
pub async fn run(settings: Settings, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "janitor listening");
    http_server::serve(listener, &settings.http, shutdown, |cfg| http_server::health_routes(readiness())(cfg)).await?;
    tracing::info!("janitor stopped");
    Ok(())
}
