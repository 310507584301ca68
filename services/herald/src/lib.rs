//! Herald all-in-one: every service in one process, on embedded defaults, so a newcomer runs
//! Herald with one command and no servers: the in-process bus, journaled in the database, and
//! live state (offline inboxes, audiences, idempotency keys, receipts) in the same database
//! (SQLite by default), so that a restart or a SIGKILL loses nothing accepted.
//!
//! ingest-api and ws-gateway share one HTTP server (default 127.0.0.1:8080); the other services
//! run beside them. Every setting the separate services read applies here too, so
//! `HERALD_BUS_URL=amqp://...` runs the all-in-one against RabbitMQ and `HERALD_REDIS_URL` keeps
//! live state in Redis.

use std::net::TcpListener;
use std::sync::Arc;
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
    /// Loads every service's settings with the embedded defaults: the in-process bus, live state
    /// in the database (no Redis), port 8080.
    pub fn load(config_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let mut loader = runtime::ConfigLoader::new().default_value("bus.url", "memory").default_value("redis.url", "");
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
    // One set of stores for every service: in memory or in the database, they must share them.
    let stores =
        store::Stores::open(settings.ingest.stores(), shutdown.clone()).await.map_err(anyhow::Error::from_boxed)?;
    let bus = match (&stores.live, settings.ingest.bus.backend()) {
        // The in-process bus journals in the database the live state is in: durable.
        (Some(live), runtime::BusBackend::InProcess) => {
            let journal: Arc<dyn bus::Journal> = Arc::new(live.clone());
            bus::Bus::in_process(&settings.ingest.bus, Some(journal), shutdown.clone())
        }
        _ => bus::Bus::start(&settings.ingest.bus, shutdown.clone()),
    };
    let dispatcher = ingest_api::start_dispatcher(&settings.ingest, &bus, shutdown.clone());
    let time = settings.ingest.time.format()?;
    let records = match settings.ingest.records.url.as_str() {
        // Records in the same database: on the same pool, so SQLite has a single writer.
        "" => store::RecordStore::on(stores.database().clone(), time, shutdown.clone()),
        _ => {
            store::RecordStore::open(&settings.ingest.records, &settings.ingest.database, time, shutdown.clone())
                .await?
        }
    };
    let writer = record_writer::RecordWriter::start(
        &settings.writer,
        &bus,
        records.clone(),
        stores.directory.clone(),
        shutdown.clone(),
    );
    let janitor = janitor::Janitor::start(&settings.ingest.records, records.clone(), shutdown.clone());
    let state = stores.describe();
    let api = ingest_api::IngestApi::new(&settings.ingest, bus.clone(), stores.clone(), records)?;
    let gateway = ws_gateway::Gateway::start(&settings.gateway, &bus, stores, shutdown.clone())?;
    // Every consumer is subscribed: what a previous run accepted and did not finish goes out now.
    let recovered = bus.recover().await?;
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
    let bus_kind = match &bus {
        bus::Bus::Amqp(_) => "RabbitMQ",
        bus::Bus::Memory(memory) if memory.is_durable() => "in-process, journaled in the database",
        bus::Bus::Memory(_) => "in-process, in memory (lost on restart: for tests only)",
    };
    tracing::info!(
        %addr,
        bus = bus_kind,
        live_state = state,
        database = %redact(&settings.ingest.database.url),
        recovered,
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

/// A database URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
