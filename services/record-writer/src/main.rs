//! The record-writer binary: configuration, telemetry, then `record_writer::run` until SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::install_crypto_provider();
    let settings: record_writer::Settings = runtime::ConfigLoader::new().load()?;
    settings.validate()?;
    runtime::telemetry::install(runtime::telemetry::build_subscriber(&settings.log));
    let listener = http_server::bind(&settings.http)?;
    record_writer::run(settings, listener, runtime::shutdown_on_signals()).await
}
