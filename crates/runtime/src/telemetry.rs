//! Telemetry in two steps: build the subscriber, install it.

use crate::{LogFormat, LogSettings};
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;

/// Builds the log subscriber described by `settings`; `RUST_LOG` overrides the level.
pub fn build_subscriber(settings: &LogSettings) -> Box<dyn Subscriber + Send + Sync> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match settings.format {
        LogFormat::Json => Box::new(builder.json().flatten_event(true).with_current_span(true).finish()),
        LogFormat::Pretty => Box::new(builder.compact().finish()),
    }
}

/// Installs `subscriber` as the process-wide default; a second call is ignored.
pub fn install(subscriber: Box<dyn Subscriber + Send + Sync>) {
    let _ = tracing::subscriber::set_global_default(subscriber);
}
