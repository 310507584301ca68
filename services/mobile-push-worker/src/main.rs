//! The mobile-push-worker binary: configuration, telemetry, then `mobile_push_worker::run` until SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::install_crypto_provider();
    let settings: mobile_push_worker::Settings = runtime::ConfigLoader::new().load()?;
    settings.validate()?;
    runtime::telemetry::install(runtime::telemetry::build_subscriber(&settings.log));
    let listener = http_server::bind(&settings.http)?;
    mobile_push_worker::run(settings, listener, runtime::shutdown_on_signals()).await
}
