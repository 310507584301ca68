//! The ingest-api binary: configuration, telemetry, then `ingest_api::run` until SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::install_crypto_provider();
    let settings: ingest_api::Settings = runtime::ConfigLoader::new().load()?;
    settings.validate()?;
    runtime::telemetry::install(runtime::telemetry::build_subscriber(&settings.log));
    runtime::warn_if_development_secret(&settings.jwt);
    let listener = http_server::bind(&settings.http)?;
    ingest_api::run(settings, listener, runtime::shutdown_on_signals()).await
}
