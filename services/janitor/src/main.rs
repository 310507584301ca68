//! The janitor binary: configuration, telemetry, then `janitor::run` until SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::install_crypto_provider();
    let settings: janitor::Settings = runtime::ConfigLoader::new().load()?;
    settings.validate()?;
    runtime::telemetry::install(runtime::telemetry::build_subscriber(&settings.log));
    let listener = http_server::bind(&settings.http)?;
    janitor::run(settings, listener, runtime::shutdown_on_signals()).await
}
