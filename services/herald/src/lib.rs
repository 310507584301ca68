//! Herald all-in-one: every service in one process, on embedded defaults (the in-process bus),
//! so a newcomer runs Herald with one command and no servers.
//!
//! ingest-api and ws-gateway share one HTTP server (default 127.0.0.1:8080); the other services
//! run beside them. Every setting the separate services read applies here too, so
//! `HERALD_BUS_URL=amqp://...` runs the all-in-one against RabbitMQ.

use std::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The settings of the services the all-in-one runs, read from one configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// ingest-api's settings; its `[http]` section is the shared server's.
    pub ingest: ingest_api::Settings,
    /// ws-gateway's settings.
    pub gateway: ws_gateway::Settings,
    /// record-writer's settings (batching; it shares ingest-api's database and records store).
    pub writer: record_writer::Settings,
}

impl Settings {
    /// Loads every service's settings with the embedded defaults: bus and Redis `memory`, port 8080.
    pub fn load(config_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let mut loader =
            runtime::ConfigLoader::new().default_value("bus.url", "memory").default_value("redis.url", "memory");
        if let Some(path) = config_file {
            loader = loader.file(path);
        }
        let ingest: ingest_api::Settings = loader.load()?;
        let mut gateway: ws_gateway::Settings = loader.load()?;
        let mut writer: record_writer::Settings = loader.load()?;
        // One server serves all: the other services' own listening addresses do not apply.
        gateway.http = ingest.http.clone();
        writer.http = ingest.http.clone();
        ingest.validate()?;
        gateway.validate()?;
        writer.validate()?;
        Ok(Self { ingest, gateway, writer })
    }
}

/// Runs every service on `listener` until `shutdown`.
pub async fn run(settings: Settings, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let bus = bus::Bus::start(&settings.ingest.bus, shutdown.clone());
    // One set of stores for every service: in memory, they must share them.
    let stores =
        store::Stores::open(settings.ingest.stores(), shutdown.clone()).await.map_err(anyhow::Error::from_boxed)?;
    let dispatcher = ingest_api::start_dispatcher(&settings.ingest, &bus, shutdown.clone());
    let records = store::RecordStore::open(
        &settings.ingest.records,
        &settings.ingest.database,
        settings.ingest.time.format()?,
        shutdown.clone(),
    )
    .await?;
    let writer = record_writer::RecordWriter::start(
        &settings.writer,
        &bus,
        records.clone(),
        stores.directory.clone(),
        shutdown.clone(),
    );
    let janitor = janitor::Janitor::start(&settings.ingest.records, records.clone(), shutdown.clone());
    let api = ingest_api::IngestApi::new(&settings.ingest, bus.clone(), stores.clone(), records)?;
    let gateway = ws_gateway::Gateway::start(&settings.gateway, &bus, stores, shutdown.clone())?;
    let bus_ready = bus.clone();
    let readiness = api
        .readiness()
        .merge(dispatcher)
        .merge(gateway.readiness())
        .merge(mobile_push_worker::readiness())
        .merge(writer.readiness())
        .merge(janitor.readiness())
        .check("bus", move || bus_ready.is_ready());
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        bus = if bus.is_in_process() { "in-process" } else { "rabbitmq" },
        "Herald all-in-one listening: POST http://{addr}/api/admin/system/notice, WebSocket ws://{addr}/ws"
    );
    http_server::serve(listener, &settings.ingest.http, shutdown, move |cfg| {
        api.configure(cfg);
        gateway.configure(cfg);
        http_server::health_routes(readiness.clone())(cfg);
    })
    .await?;
    tracing::info!("Herald stopped");
    Ok(())
}
