//! The ws-gateway binary: configuration, telemetry, then `ws_gateway::run` until SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::install_crypto_provider();
    let settings: ws_gateway::Settings = runtime::ConfigLoader::new().load()?;
    settings.validate()?;
    runtime::telemetry::install(runtime::telemetry::build_subscriber(&settings.log));
    runtime::warn_if_development_secret(&settings.jwt);
    let listener = http_server::bind(&settings.http)?;
    ws_gateway::run(settings, listener, runtime::shutdown_on_signals()).await
}
