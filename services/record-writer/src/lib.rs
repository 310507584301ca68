//! record-writer: turns what happens on the bus into push records, receive records and
//! notification logs (spec 4).
//!
//! Two durable queues, shared by every replica: `<prefix>.records` on the notifications exchange
//! (one push record per notice) and `<prefix>.records-events` on the events exchange (receipts
//! into receive records and logs). Each consumer gathers a batch (up to `records.batch_size`,
//! waiting at most `records.linger_ms` once it has one), writes it in one transaction, and only
//! then acknowledges it. A write that fails is retried with backoff, unacknowledged, until it
//! succeeds or the service stops (the broker then redelivers the batch to another replica);
//! the store is idempotent, so a redelivered batch changes nothing. A payload that does not
//! parse is rejected without requeueing, with a warning.

mod device;

pub use device::parse_user_agent;

use bus::{Bus, Exchange, Incoming, QueueKind, Subscription, SubscriptionSpec};
use model::{DeliveryEvent, NotificationMessage, Target, TimeFormat};
use runtime::{BusSettings, DatabaseSettings, HttpSettings, LogSettings, RecordsSettings, TimeSettings};
use serde::{Deserialize, Serialize};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use store::records::{NewRecord, RecordedEvent};
use store::{RecordStore, UserDirectory};
use tokio_util::sync::CancellationToken;

/// The port record-writer listens on by default.
pub const DEFAULT_PORT: u16 = 8083;

/// Everything record-writer reads from its configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Listening address.
    pub http: HttpSettings,
    /// Log output.
    pub log: LogSettings,
    /// The message bus.
    pub bus: BusSettings,
    /// Time rendering (records' `created_at`, `updated_at`).
    pub time: TimeSettings,
    /// The relational database: the user directory (admins of `admin` notices), and the records
    /// unless `records.url` says otherwise.
    pub database: DatabaseSettings,
    /// Where records go, and batching.
    pub records: RecordsSettings,
}

impl Default for Settings {
    fn default() -> Self {
        let http = HttpSettings { addr: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)), ..HttpSettings::default() };
        Self {
            http,
            log: LogSettings::default(),
            bus: BusSettings::default(),
            time: TimeSettings::default(),
            database: DatabaseSettings::default(),
            records: RecordsSettings::default(),
        }
    }
}

impl Settings {
    /// Rejects values the service cannot run with; the error names the key.
    pub fn validate(&self) -> Result<(), runtime::ConfigError> {
        self.http.validate()?;
        self.bus.validate()?;
        self.database.validate()?;
        self.records.validate()?;
        self.time.format().map(|_| ())
    }
}

/// A running record-writer: its consumers and what `/readyz` checks.
pub struct RecordWriter {
    readiness: http_server::Readiness,
}

impl RecordWriter {
    /// Starts both consumers on `bus`, writing into `records`; `directory` names the admins of
    /// `admin` notices. Runs until `shutdown`.
    pub fn start(
        settings: &Settings,
        bus: &Bus,
        records: RecordStore,
        directory: UserDirectory,
        shutdown: CancellationToken,
    ) -> Self {
        let batching =
            Batching { size: settings.records.batch_size, linger: Duration::from_millis(settings.records.linger_ms) };
        let notices = bus.subscribe(SubscriptionSpec {
            queue: "records".into(),
            kind: QueueKind::Durable,
            exchange: Exchange::Notifications,
            bindings: Vec::new(),
        });
        let events = bus.subscribe(SubscriptionSpec {
            queue: "records-events".into(),
            kind: QueueKind::Durable,
            exchange: Exchange::Events,
            bindings: vec!["#".into()],
        });
        let (notices_ready, events_ready) = (notices.readiness(), events.readiness());
        let writer = NoticeWriter { records: records.clone(), directory };
        tokio::spawn(consume(notices, batching, shutdown.clone(), writer));
        tokio::spawn(consume(events, batching, shutdown, EventWriter { records: records.clone() }));
        let readiness = http_server::Readiness::default()
            .check("records_subscription", move || *notices_ready.borrow())
            .check("records_events_subscription", move || *events_ready.borrow())
            .check("records_store", move || records.is_ready());
        Self { readiness }
    }

    /// What `/readyz` checks.
    pub fn readiness(&self) -> http_server::Readiness {
        self.readiness.clone()
    }
}

#[derive(Clone, Copy, Debug)]
struct Batching {
    size: usize,
    linger: Duration,
}

/// Writes one kind of batch.
trait BatchWriter: Send + 'static {
    /// What one payload parses into.
    type Item: Send;
    /// What the queue carries, for logs.
    const WHAT: &'static str;
    /// Parses a payload.
    fn parse(&self, incoming: &Incoming) -> Result<Self::Item, String>;
    /// Writes a batch; an error means nothing was acknowledged and the batch is retried.
    fn write(&self, items: &[Self::Item]) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

struct NoticeWriter {
    records: RecordStore,
    directory: UserDirectory,
}

impl BatchWriter for NoticeWriter {
    type Item = NotificationMessage;
    const WHAT: &'static str = "notice";

    fn parse(&self, incoming: &Incoming) -> Result<NotificationMessage, String> {
        serde_json::from_slice(&incoming.payload).map_err(|err| err.to_string())
    }

    async fn write(&self, items: &[NotificationMessage]) -> Result<(), String> {
        let mut admins: Option<Vec<i64>> = None;
        let mut batch = Vec::with_capacity(items.len());
        for message in items {
            let addressed = match message.target {
                Target::Admin => {
                    if admins.is_none() {
                        admins = Some(self.directory.admin_ids().await.map_err(|err| err.to_string())?);
                    }
                    let all = admins.as_deref().unwrap_or_default();
                    all.iter().copied().filter(|id| !message.exclude_ids.contains(id)).collect()
                }
                _ => message.explicit_recipients().collect(),
            };
            batch.push(NewRecord { message: message.clone(), addressed });
        }
        self.records.write_messages(&batch).await.map_err(|err| err.to_string())
    }
}

struct EventWriter {
    records: RecordStore,
}

impl BatchWriter for EventWriter {
    type Item = RecordedEvent;
    const WHAT: &'static str = "delivery event";

    fn parse(&self, incoming: &Incoming) -> Result<RecordedEvent, String> {
        let event: DeliveryEvent = serde_json::from_slice(&incoming.payload).map_err(|err| err.to_string())?;
        let device = parse_user_agent(&event.user_agent);
        Ok(RecordedEvent { event, device })
    }

    async fn write(&self, items: &[RecordedEvent]) -> Result<(), String> {
        self.records.apply_events(items).await.map_err(|err| err.to_string())
    }
}

/// Gathers batches from `subscription` and writes them with `writer` until `shutdown`.
async fn consume<W: BatchWriter>(
    mut subscription: Subscription,
    batching: Batching,
    shutdown: CancellationToken,
    writer: W,
) {
    loop {
        let Some(first) = subscription.next_until(&shutdown).await else { break };
        let mut deliveries = vec![first];
        let deadline = tokio::time::Instant::now() + batching.linger;
        while deliveries.len() < batching.size {
            match tokio::time::timeout_at(deadline, subscription.next()).await {
                Ok(Some(incoming)) => deliveries.push(incoming),
                Ok(None) | Err(_) => break,
            }
        }
        let mut items = Vec::with_capacity(deliveries.len());
        let mut accepted = Vec::with_capacity(deliveries.len());
        for incoming in deliveries {
            match writer.parse(&incoming) {
                Ok(item) => {
                    items.push(item);
                    accepted.push(incoming);
                }
                Err(reason) => {
                    tracing::warn!(what = W::WHAT, %reason, routing_key = %incoming.routing_key, "unreadable payload dropped");
                    incoming.reject(false).await;
                }
            }
        }
        if !write_until_done(&writer, &items, &shutdown).await {
            // Stopping: unacknowledged, the batch goes back to the broker.
            break;
        }
        for incoming in accepted {
            incoming.ack().await;
        }
    }
}

/// Writes `items`, retrying with capped backoff; false if `shutdown` came first.
async fn write_until_done<W: BatchWriter>(writer: &W, items: &[W::Item], shutdown: &CancellationToken) -> bool {
    if items.is_empty() {
        return true;
    }
    let mut wait = Duration::from_millis(100);
    loop {
        match writer.write(items).await {
            Ok(()) => return true,
            Err(reason) => {
                tracing::warn!(what = W::WHAT, count = items.len(), %reason, "records not written; retrying");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// Runs record-writer alone on `listener` until `shutdown`.
pub async fn run(settings: Settings, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let bus = Bus::start(&settings.bus, shutdown.clone());
    let time: TimeFormat = settings.time.format()?;
    let records = RecordStore::open(&settings.records, &settings.database, time).await?;
    let directory = UserDirectory::open(&settings.database, shutdown.clone()).await?;
    let writer = RecordWriter::start(&settings, &bus, records, directory, shutdown.clone());
    let bus_ready = bus.clone();
    let readiness = writer.readiness().check("bus", move || bus_ready.is_ready());
    tracing::info!(addr = %listener.local_addr()?, "record-writer listening");
    http_server::serve(listener, &settings.http, shutdown, move |cfg| {
        http_server::health_routes(readiness.clone())(cfg)
    })
    .await?;
    tracing::info!("record-writer stopped");
    Ok(())
}
