//! Telemetry in two steps: build the subscriber, install it.
//!
//! Log lines go to stderr, pretty or JSON (`log.format`). Spans also go to OpenTelemetry: a
//! tracer provider is always there, so trace ids are made and carried across the bus
//! ([`crate::trace`]) even when nothing is exported; with `log.otlp_endpoint` set, spans are
//! batched to that OTLP/HTTP collector, from a thread of the exporter's own (its blocking HTTP
//! client never runs on the async runtime).

use crate::{LogFormat, LogSettings, OtlpProtocol};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The tracer provider behind a subscriber: shut it down before the process exits, so the
/// spans still batched are exported.
#[must_use = "shut the telemetry down at exit, or the last spans are lost"]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Exports what is batched and stops the exporter (a few seconds at most).
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("telemetry: spans not all exported at shutdown: {err}");
        }
    }
}

/// The crates whose spans (info and above) are exported, whatever `log.level` says.
const HERALD_CRATES: [&str; 12] = [
    "herald",
    "ingest_api",
    "ws_gateway",
    "mobile_push_worker",
    "record_writer",
    "janitor",
    "bus",
    "state",
    "records",
    "mobile",
    "http_server",
    "runtime",
];

/// Builds the subscriber `settings` describe for `service` (the OpenTelemetry `service.name`);
/// `RUST_LOG` overrides the level. Fails only for an OTLP endpoint it cannot use.
pub fn build_subscriber(
    settings: &LogSettings,
    service: &str,
) -> Result<(Box<dyn Subscriber + Send + Sync>, Telemetry), String> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt: Box<dyn Layer<_> + Send + Sync> = match settings.format {
        LogFormat::Json => {
            Box::new(fmt.json().flatten_event(true).with_current_span(true).with_span_list(false).with_filter(filter))
        }
        LogFormat::Pretty => Box::new(fmt.compact().with_filter(filter)),
    };
    let resource = Resource::builder().with_service_name(service.to_owned()).build();
    let mut provider = SdkTracerProvider::builder().with_resource(resource);
    let endpoint = settings.otlp_endpoint.trim().trim_end_matches('/');
    if !endpoint.is_empty() {
        let protocol = match settings.otlp_protocol {
            OtlpProtocol::Protobuf => Protocol::HttpBinary,
            OtlpProtocol::Json => Protocol::HttpJson,
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(format!("{endpoint}/v1/traces"))
            .build()
            .map_err(|err| format!("log.otlp_endpoint {endpoint}: {err}"))?;
        provider = provider.with_batch_exporter(exporter);
    }
    let provider = provider.build();
    // Herald's own spans, whatever the log level: a quiet log keeps its traces.
    // A WebSocket session's span lasts as long as its connection: exporting it would keep span
    // data per connection for hours, for a trace of little use (its receipts start their own).
    let herald_spans = HERALD_CRATES
        .iter()
        .fold(Targets::new(), |targets, krate| targets.with_target(*krate, Level::INFO))
        .with_target("ws_gateway::session", tracing_subscriber::filter::LevelFilter::OFF);
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("herald")).with_filter(herald_spans);
    let subscriber = tracing_subscriber::registry().with(fmt).with(otel);
    Ok((Box::new(subscriber), Telemetry { provider }))
}

/// Installs `subscriber` as the process-wide default; a second call is ignored.
pub fn install(subscriber: Box<dyn Subscriber + Send + Sync>) {
    let _ = tracing::subscriber::set_global_default(subscriber);
}
