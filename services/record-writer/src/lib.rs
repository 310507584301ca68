//! record-writer: turns what happens on the bus into push records, receive records and
//! notification logs (spec 4).
//!
//! Two durable queues, shared by every replica: `<prefix>.records` on the notifications exchange
//! (one push record per notice) and `<prefix>.records-events` on the events exchange (receipts
//! into receive records and logs). Each consumer gathers a batch (up to `records.batch_size`,
//! waiting at most `records.linger_ms` once it has one), writes it in one transaction, and only
//! then acknowledges it; the store is idempotent, so a redelivered batch changes nothing.
//!
//! A failed write is one of two things. While the store does not answer (it is down), the batch
//! is retried with backoff, unacknowledged, until it succeeds or the service stops (the broker
//! then redelivers it to another replica). When the store answers but refused the batch, one of
//! its messages is at fault (text the database cannot hold, say): each message is then written
//! alone, and one that fails alone [`MAX_ATTEMPTS`] times while the store answers goes to the
//! dead-letter queue with the database's reason, so the rest keep flowing. A payload that does
//! not parse is dead-lettered at once.

mod device;

pub use device::parse_user_agent;

use bus::{Bus, Exchange, Incoming, QueueKind, Subscription, SubscriptionSpec};
use http_server::Component;
use model::{DeliveryEvent, NotificationMessage, Target};
use records::{Failure, NewRecord, RecordStore, RecordedEvent, RecordsError};
use state::UserDirectory;
use state::directory::addressed_users;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many times a message is written alone, failing while the store answers, before it is
/// dead-lettered.
pub const MAX_ATTEMPTS: u32 = 3;

/// How a consumer waits before it writes again after a failure.
const STORE_RETRY: runtime::RetryPolicy = runtime::RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(5));

/// The record-writer's consumers, as a component of a process.
pub struct RecordWriter;

impl RecordWriter {
    /// Starts both consumers on `bus`, writing into `records` in `batching`'s batches;
    /// `directory` names the admins of `admin` notices. Runs until `shutdown`.
    pub fn start(
        batching: Batching,
        bus: &Bus,
        records: RecordStore,
        directory: UserDirectory,
        registry: &http_server::Registry,
        shutdown: CancellationToken,
    ) -> Component {
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
        for (exchange, queue) in [(Exchange::Notifications, "records"), (Exchange::Events, "records-events")] {
            bus.report_depth(exchange, queue, registry.queue_gauge(queue), shutdown.clone());
        }
        let (notices_ready, events_ready, bus_ready) = (notices.readiness(), events.readiness(), bus.clone());
        let writer =
            NoticeWriter { records: records.clone(), directory, metrics: WriteMetrics::on(registry, "notices") };
        let consumer = Consumer { bus: bus.clone(), batching, shutdown: shutdown.clone() };
        tokio::spawn(consumer.clone().run(notices, writer));
        let events_writer = EventWriter { records: records.clone(), metrics: WriteMetrics::on(registry, "events") };
        tokio::spawn(consumer.run(events, events_writer));
        let readiness = http_server::Readiness::default()
            .check("records_subscription", move || *notices_ready.borrow())
            .check("records_events_subscription", move || *events_ready.borrow())
            .check("records_store", move || records.is_ready())
            .check("bus", move || bus_ready.is_ready());
        Component::new("record-writer").readiness(readiness)
    }
}

/// How the record-writer batches (`records.batch_size`, `records.linger_ms`).
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// The most messages or events written in one batch.
    pub size: usize,
    /// How long a consumer waits to fill a batch once it has one message.
    pub linger: Duration,
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
    fn write(&self, items: &[Self::Item]) -> impl std::future::Future<Output = Result<(), RecordsError>> + Send;
    /// Whether the stores it writes to answer right now: a failure then is the batch's fault.
    fn stores_answer(&self) -> impl std::future::Future<Output = bool> + Send;
}

/// What a writer records of each batch it wrote: its size and its items; for notices, also how
/// long after its acceptance each was written.
struct WriteMetrics {
    batch_size: metrics::Histogram,
    written: metrics::Counter,
    lag: Option<metrics::Histogram>,
}

impl WriteMetrics {
    fn on(registry: &http_server::Registry, kind: &'static str) -> Self {
        let labels = [("kind", kind)];
        Self {
            batch_size: registry.histogram(
                "herald_record_batch_size",
                "Items per batch the record-writer wrote",
                &labels,
            ),
            written: registry.counter("herald_records_written_total", "Items the record-writer wrote", &labels),
            lag: (kind == "notices").then(|| {
                registry.histogram(
                    "herald_record_lag_seconds",
                    "From a notice's acceptance (its message id's time) to its push record written",
                    &[],
                )
            }),
        }
    }

    /// A batch of `count` items was written; `accepted` are its notices' acceptance times (Unix
    /// nanos).
    fn wrote(&self, count: usize, accepted: impl Iterator<Item = u64>) {
        self.batch_size.record(count as f64);
        self.written.increment(count as u64);
        if let Some(lag) = &self.lag {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            for at in accepted {
                lag.record(now.saturating_sub(u128::from(at)) as f64 / 1e9);
            }
        }
    }
}

struct NoticeWriter {
    records: RecordStore,
    directory: UserDirectory,
    metrics: WriteMetrics,
}

impl BatchWriter for NoticeWriter {
    type Item = NotificationMessage;
    const WHAT: &'static str = "notice";

    fn parse(&self, incoming: &Incoming) -> Result<NotificationMessage, String> {
        serde_json::from_slice(&incoming.payload).map_err(|err| err.to_string())
    }

    async fn write(&self, items: &[NotificationMessage]) -> Result<(), RecordsError> {
        // The directory's admins, asked once per batch that has an `admin` notice.
        let admins = match items.iter().any(|message| message.target == Target::Admin) {
            true => self.directory.admin_ids().await.map_err(|err| {
                RecordsError::new(Failure::Unavailable, format!("the user directory did not answer: {err}"))
            })?,
            false => Vec::new(),
        };
        let batch: Vec<NewRecord> = items
            .iter()
            .map(|message| NewRecord { message: message.clone(), addressed: addressed_users(message, &admins) })
            .collect();
        self.records.write_messages(&batch).await?;
        self.metrics.wrote(items.len(), items.iter().map(|message| message.message_id.unix_nanos()));
        Ok(())
    }

    async fn stores_answer(&self) -> bool {
        self.records.ping().await && self.directory.ping().await
    }
}

struct EventWriter {
    records: RecordStore,
    metrics: WriteMetrics,
}

impl BatchWriter for EventWriter {
    type Item = RecordedEvent;
    const WHAT: &'static str = "delivery event";

    fn parse(&self, incoming: &Incoming) -> Result<RecordedEvent, String> {
        let event: DeliveryEvent = serde_json::from_slice(&incoming.payload).map_err(|err| err.to_string())?;
        let device = parse_user_agent(&event.user_agent);
        Ok(RecordedEvent { event, device })
    }

    async fn write(&self, items: &[RecordedEvent]) -> Result<(), RecordsError> {
        self.records.apply_events(items).await?;
        self.metrics.wrote(items.len(), std::iter::empty());
        Ok(())
    }

    async fn stores_answer(&self) -> bool {
        self.records.ping().await
    }
}

/// A consumer loop's surroundings: the bus (for dead letters), batching and the stop signal.
#[derive(Clone)]
struct Consumer {
    bus: Bus,
    batching: Batching,
    shutdown: CancellationToken,
}

/// Whether a consumer goes on after a batch.
enum Flow {
    Continue,
    Stop,
}

impl Consumer {
    /// Gathers batches from `subscription` and writes them with `writer` until shutdown.
    async fn run<W: BatchWriter>(self, mut subscription: Subscription, writer: W) {
        loop {
            let Some(first) = subscription.next_until(&self.shutdown).await else { break };
            let mut deliveries = vec![first];
            let deadline = tokio::time::Instant::now() + self.batching.linger;
            while deliveries.len() < self.batching.size {
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
                    Err(reason) => self.bus.dead_letter(incoming, &format!("unreadable {}: {reason}", W::WHAT)).await,
                }
            }
            // A span per message that comes in a trace (a notice), lasting while its batch is
            // written; the many delivery events, which come in none, start no trace of their own.
            let spans: Vec<tracing::Span> = accepted
                .iter()
                .filter_map(|incoming| incoming.traceparent.as_deref())
                .map(|traceparent| {
                    let span = tracing::info_span!("record_write", what = W::WHAT, trace_id = tracing::field::Empty);
                    runtime::trace::continued(span, Some(traceparent))
                })
                .collect();
            let flow = self.write_batch(&writer, items, accepted).await;
            drop(spans);
            if let Flow::Stop = flow {
                // Stopping: unacknowledged, the batch goes back to the broker.
                break;
            }
        }
    }

    /// Writes a batch and acknowledges it; retries while the stores are down; when they answer
    /// but refuse the batch, writes its messages one by one.
    async fn write_batch<W: BatchWriter>(&self, writer: &W, items: Vec<W::Item>, deliveries: Vec<Incoming>) -> Flow {
        if items.is_empty() {
            return Flow::Continue;
        }
        let mut backoff = STORE_RETRY.start();
        loop {
            let err = match writer.write(&items).await {
                Ok(()) => {
                    for incoming in deliveries {
                        incoming.ack().await;
                    }
                    return Flow::Continue;
                }
                Err(err) => err,
            };
            if refused(writer, &err).await {
                tracing::warn!(what = W::WHAT, count = items.len(), reason = %err, "batch refused; writing its messages one by one");
                break;
            }
            tracing::warn!(what = W::WHAT, count = items.len(), reason = %err, "batch not written; retrying");
            if !backoff.pause(&self.shutdown).await {
                return Flow::Stop;
            }
        }
        for (item, incoming) in items.into_iter().zip(deliveries) {
            if let Flow::Stop = self.write_alone(writer, item, incoming).await {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Writes one message; dead-letters it after [`MAX_ATTEMPTS`] failures while the stores
    /// answer (failures while they are down do not count).
    async fn write_alone<W: BatchWriter>(&self, writer: &W, item: W::Item, incoming: Incoming) -> Flow {
        let item = [item];
        let (mut attempts, mut backoff) = (0, STORE_RETRY.start());
        loop {
            let err = match writer.write(&item).await {
                Ok(()) => {
                    incoming.ack().await;
                    return Flow::Continue;
                }
                Err(err) => err,
            };
            if refused(writer, &err).await {
                attempts += 1;
                if attempts >= MAX_ATTEMPTS {
                    let reason = format!("the records store refused this {} {attempts} times: {err}", W::WHAT);
                    self.bus.dead_letter(incoming, &reason).await;
                    return Flow::Continue;
                }
            }
            tracing::warn!(what = W::WHAT, attempts, reason = %err, "record not written; retrying");
            if !backoff.pause(&self.shutdown).await {
                return Flow::Stop;
            }
        }
    }
}

/// Whether `err` is the batch's own fault: the store refused it and answers right now. A store
/// that is away or busy with a concurrent writer (which the store retried already) is retried
/// without counting towards dead-lettering.
async fn refused<W: BatchWriter>(writer: &W, err: &RecordsError) -> bool {
    !err.is_transient() && writer.stores_answer().await
}
