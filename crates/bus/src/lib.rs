//! The message bus: how services hand NotificationMessage envelopes and delivery events to
//! each other.
//!
//! Two implementations sit behind one [`Bus`] type: RabbitMQ ([`amqp`]) for the distributed
//! services, with durable topic exchanges, persistent messages, publisher confirms, manual acks
//! and reconnection with backoff; and an in-process twin ([`memory`]) for the all-in-one binary.
//! Consumers see the same [`Subscription`] and [`Incoming`] either way.

pub mod amqp;
mod bundle;
mod journal;
pub mod memory;
mod settings;
mod topic;

pub use journal::{DeadLetter, Journal, JournalEntry, JournalFuture};
pub use settings::{BusSettings, BusUrl};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::stream::{FuturesOrdered, StreamExt};
use model::{DeliveryEvent, NotificationMessage};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use topic::topic_matches;

/// How the dispatcher waits before it retries moving a notice on (the broker refused or is away).
const DISPATCH_RETRY: runtime::RetryPolicy =
    runtime::RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(2));

/// Where a notice is published, and under which routing key: urgent ones straight to the
/// notifications exchange, any other into the bounded ingress queue (spec 8.2).
pub fn notification_route(message: &NotificationMessage) -> (Exchange, String) {
    let exchange =
        if message.priority == model::Priority::Urgent { Exchange::Notifications } else { Exchange::Ingress };
    (exchange, message.routing_key())
}

/// The envelope as published: serialised once.
pub fn notification_payload(message: &NotificationMessage) -> Result<Bytes, BusError> {
    // Serialising a validated envelope cannot fail; an error here would be a bug worth a 503.
    serde_json::to_vec(message).map(Bytes::from).map_err(|err| BusError::Unavailable(err.to_string()))
}

/// Where a message is published: the two exchanges of the topology, or the ingress queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// `<prefix>.notifications`: envelopes, routing key `<target>.<priority>`.
    Notifications,
    /// `<prefix>.events`: delivery events, routing key `<event>.<target>`.
    Events,
    /// `<prefix>.ingress`: the bounded queue normal-priority notices wait in (spec 8.2) until a
    /// dispatcher moves them to `Notifications`; a full one refuses the publish as a whole.
    Ingress,
    /// `<prefix>.dead-letters`: messages a consumer gave up on, each with the reason, for an
    /// operator to inspect (and republish once the cause is fixed).
    DeadLetters,
    /// `<prefix>.mobile`: the mobile-push-worker's sends, routing key `send`; retries come
    /// back to it after their delay ([`Bus::publish_delayed`]).
    Mobile,
}

impl Exchange {
    /// A stable name, for the in-process bus's journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Exchange::Notifications => "notifications",
            Exchange::Events => "events",
            Exchange::Ingress => "ingress",
            Exchange::DeadLetters => "dead-letters",
            Exchange::Mobile => "mobile",
        }
    }

    /// The exchange `as_str` named.
    pub fn parse(name: &str) -> Option<Self> {
        [Exchange::Notifications, Exchange::Events, Exchange::Ingress, Exchange::DeadLetters, Exchange::Mobile]
            .into_iter()
            .find(|e| e.as_str() == name)
    }
}

/// Exchange and queue names under one prefix, so deployments and tests can share a broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    /// The topology under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The exchange's full name, e.g. `herald.notifications`; the ingress queue is reached
    /// through the default exchange, whose name is empty.
    pub fn exchange(&self, exchange: Exchange) -> String {
        match exchange {
            Exchange::Notifications => format!("{}.notifications", self.prefix),
            Exchange::Events => format!("{}.events", self.prefix),
            Exchange::Mobile => format!("{}.mobile", self.prefix),
            Exchange::Ingress | Exchange::DeadLetters => String::new(),
        }
    }

    /// The ingress queue's name, e.g. `herald.ingress`.
    pub fn ingress_queue(&self) -> String {
        self.queue(INGRESS)
    }

    /// The dead-letter queue's name, e.g. `herald.dead-letters`.
    pub fn dead_letter_queue(&self) -> String {
        self.queue(DEAD_LETTERS)
    }

    /// The queue a message for `exchange` under `routing_key` waits `delay_ms` in before it is
    /// routed there (RabbitMQ: a TTL queue dead-lettering to the exchange), e.g.
    /// `herald.delay.mobile.send.5000`.
    pub fn delay_queue(&self, exchange: Exchange, routing_key: &str, delay_ms: u64) -> String {
        self.queue(&format!("delay.{}.{routing_key}.{delay_ms}", exchange.as_str()))
    }

    /// A queue's full name, e.g. `herald.record-writer.notifications`.
    pub fn queue(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }
}

/// How a subscription's queue lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueKind {
    /// One per process, deleted when its connection closes (a gateway replica's fan-out queue).
    Exclusive,
    /// Shared by every replica of a service and kept across restarts (record-writer, worker).
    Durable,
}

/// What a consumer wants to receive.
///
/// A subscription to the notifications exchange receives every notice, in two lanes: a queue
/// bound to `*.low`, `*.normal` and `*.high`, and an `.urgent` queue bound to `*.urgent`, which
/// [`Subscription::next`] always serves first. A subscription to the events exchange has one
/// queue with the given bindings. The ingress "subscription" is the dispatcher's.
#[derive(Clone, Debug)]
pub struct SubscriptionSpec {
    /// The queue's name under the prefix; exclusive queues get a unique suffix.
    pub queue: String,
    /// Exclusive or durable.
    pub kind: QueueKind,
    /// The exchange to bind to.
    pub exchange: Exchange,
    /// Binding patterns for the events exchange (`#`, `read.*`, ...); unused for notifications.
    pub bindings: Vec<String>,
}

/// The ingress queue's name under the prefix.
pub const INGRESS: &str = "ingress";
/// The dead-letter queue's name under the prefix.
pub const DEAD_LETTERS: &str = "dead-letters";

/// One queue of a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lane {
    /// Appended to the subscription's queue name.
    pub suffix: &'static str,
    /// Routing-key patterns bound to it.
    pub bindings: Vec<String>,
    /// The queue's bound, past which publishing is refused.
    pub max_length: Option<u32>,
}

impl SubscriptionSpec {
    /// The subscription's queues, urgent first.
    pub(crate) fn lanes(&self, backlog: u32) -> Vec<Lane> {
        match self.exchange {
            Exchange::Notifications => vec![
                Lane { suffix: ".urgent", bindings: vec!["*.urgent".into()], max_length: None },
                Lane {
                    suffix: "",
                    bindings: vec!["*.low".into(), "*.normal".into(), "*.high".into()],
                    max_length: None,
                },
            ],
            Exchange::Events | Exchange::Mobile => {
                vec![Lane { suffix: "", bindings: self.bindings.clone(), max_length: None }]
            }
            Exchange::Ingress => vec![Lane { suffix: "", bindings: Vec::new(), max_length: Some(backlog) }],
            Exchange::DeadLetters => vec![Lane { suffix: "", bindings: Vec::new(), max_length: None }],
        }
    }
}

/// Why a publish failed. Nothing is accepted unless `publish` returned `Ok`.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// No connection to the broker right now; the bus is reconnecting.
    #[error("the message broker is unreachable: {0}")]
    Unavailable(String),
    /// The message could not be handed to the broker in time; it was not sent.
    #[error("the message broker did not take the message within {0} ms")]
    Timeout(u64),
    /// The message reached the broker, but its confirm never came (no confirm in time, or the
    /// connection broke first): it may or may not have been taken. The only answer that cannot
    /// be made truthful, so it is kept rare: the confirm wait (`bus.confirm_timeout_ms`) is long.
    #[error("the message broker did not confirm the message; it may still be delivered: {0}")]
    Unconfirmed(String),
    /// The normal-priority backlog (the ingress queue, bounded by `bus.backlog`) is full; it
    /// accepts again once drained. Urgent notices bypass it. Nothing was delivered anywhere.
    #[error("the normal-priority backlog is full")]
    QueueFull,
    /// The bus was shut down.
    #[error("the bus is shut down")]
    Closed,
}

/// A message taken from a subscription; acknowledge it once its work is done.
#[derive(Debug)]
pub struct Incoming {
    /// The routing key it was published with.
    pub routing_key: String,
    /// The payload (JSON).
    pub payload: Bytes,
    /// Whether the broker delivered it before (the previous consumer did not ack).
    pub redelivered: bool,
    /// The queue it was taken from (full name).
    pub queue: Arc<str>,
    /// Why it was given up on, for a message read from the dead-letter queue.
    pub dead_letter_reason: Option<String>,
    /// The trace context it was published in (W3C `traceparent`), if any: the parent of the
    /// consumer's span (`runtime::trace::continue_trace`).
    pub traceparent: Option<String>,
    acker: Acker,
}

#[derive(Debug)]
enum Acker {
    Amqp(lapin::Acker),
    /// One part of a bundle (see [`bundle`]).
    Part(Arc<bundle::SharedAcker>),
    Memory(memory::MemoryAcker),
}

impl Incoming {
    /// Acknowledges the message: the broker forgets it. On RabbitMQ the ack is sent in the
    /// background: an ack has no answer, and waiting for lapin to write each one (a hop to its
    /// I/O thread and back, about half a millisecond) capped a consumer that acks one message
    /// after another near 2,000 a second. Should it never reach the broker (the connection
    /// went), the message is redelivered, as after any lost ack.
    pub async fn ack(self) {
        match self.acker {
            Acker::Amqp(acker) => amqp::ack_in_background(acker),
            Acker::Part(acker) => acker.settle(false).await,
            Acker::Memory(acker) => acker.settle(),
        }
    }

    /// Acknowledges the message and every earlier one of its channel not acknowledged yet (on
    /// RabbitMQ; in process, just this one).
    async fn ack_through(self) {
        match self.acker {
            Acker::Amqp(acker) => {
                let options = lapin::options::BasicAckOptions { multiple: true };
                if let Err(err) = acker.ack(options).await {
                    tracing::warn!(error = %err, "ack failed; the messages will be redelivered");
                }
            }
            // Only the dispatcher acks through, on the ingress queue, where nothing is bundled.
            Acker::Part(acker) => acker.settle(false).await,
            Acker::Memory(acker) => acker.settle(),
        }
    }

    /// Refuses the message: `requeue` hands it back for redelivery, otherwise it is dropped
    /// (use [`Bus::dead_letter`] to keep it with a reason instead).
    pub async fn reject(self, requeue: bool) {
        match self.acker {
            Acker::Amqp(acker) => {
                let options = lapin::options::BasicRejectOptions { requeue };
                if let Err(err) = acker.reject(options).await {
                    tracing::warn!(error = %err, "reject failed; the message will be redelivered");
                }
            }
            Acker::Part(acker) => acker.settle(requeue).await,
            Acker::Memory(acker) if requeue => {
                acker.requeue(self.routing_key, self.traceparent, self.payload, self.queue).await
            }
            Acker::Memory(acker) => acker.settle(),
        }
    }
}

/// The messages of one queue, in order; `next` returns `None` once the bus shuts down.
#[derive(Debug)]
pub struct Subscription {
    /// One receiver per lane, urgent first.
    lanes: Vec<mpsc::Receiver<Incoming>>,
    ready: watch::Receiver<bool>,
}

impl Subscription {
    /// Whether the queue is declared, bound and being consumed right now.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// A handle that reports readiness after the subscription moved into a consumer task.
    pub fn readiness(&self) -> watch::Receiver<bool> {
        self.ready.clone()
    }

    /// Waits until the subscription is ready, for at most `limit`; returns whether it is.
    pub async fn wait_ready(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.ready.wait_for(|ready| *ready)).await.is_ok_and(|r| r.is_ok())
    }

    /// The next message unless `shutdown` fires first; `None` once it has (or the bus stopped).
    /// What a consumer loop is built on.
    pub async fn next_until(&mut self, shutdown: &CancellationToken) -> Option<Incoming> {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => None,
            incoming = self.next() => incoming,
        }
    }

    /// The next message, urgent ones before any other; waits for one; `None` after shutdown.
    pub async fn next(&mut self) -> Option<Incoming> {
        for lane in &mut self.lanes {
            if let Ok(incoming) = lane.try_recv() {
                return Some(incoming);
            }
        }
        let (first, rest) = self.lanes.split_first_mut()?;
        match rest.first_mut() {
            None => first.recv().await,
            Some(second) => tokio::select! {
                biased;
                Some(incoming) = first.recv() => Some(incoming),
                incoming = second.recv() => incoming,
            },
        }
    }
}

/// An onward publish handed over, its confirm to come.
enum Forwarded {
    /// On RabbitMQ: the broker's confirm.
    Amqp(amqp::PendingConfirm),
    /// In process: done.
    Done,
}

impl Forwarded {
    async fn confirmed(self) -> Result<(), BusError> {
        match self {
            Forwarded::Amqp(pending) => pending.confirmed().await,
            Forwarded::Done => Ok(()),
        }
    }
}

/// Deliveries whose work is done, not acknowledged yet: on RabbitMQ one ack (`multiple`)
/// covers a run of them, in process each is settled.
#[derive(Default)]
struct Confirmed(Vec<Incoming>);

impl Confirmed {
    fn extend(&mut self, run: Vec<Incoming>) {
        self.0.extend(run);
    }

    async fn ack(&mut self) {
        let Some(last) = self.0.pop() else { return };
        if matches!(last.acker, Acker::Amqp(_)) {
            // Deliveries of one channel, in order: the last one's ack covers those before it
            // (those of a channel lost meanwhile are redelivered whatever is acked here).
            self.0.clear();
            last.ack_through().await;
        } else {
            for incoming in self.0.drain(..) {
                incoming.ack().await;
            }
            last.ack().await;
        }
    }
}

/// The bus, whichever implementation backs it. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Bus {
    /// RabbitMQ.
    Amqp(amqp::AmqpBus),
    /// The in-process twin.
    Memory(memory::MemoryBus),
}

impl Bus {
    /// The bus `settings.url` names (`memory` or an AMQP URL). An AMQP bus connects in the
    /// background and keeps reconnecting until `shutdown`; it never fails to start.
    pub fn start(settings: &BusSettings, shutdown: CancellationToken) -> Self {
        match &settings.url {
            BusUrl::InProcess => Bus::Memory(memory::MemoryBus::new(settings)),
            BusUrl::Amqp(_) => Bus::Amqp(amqp::AmqpBus::start(settings.clone(), shutdown)),
        }
    }

    /// The names this bus uses.
    pub fn topology(&self) -> &Topology {
        match self {
            Bus::Amqp(bus) => bus.topology(),
            Bus::Memory(bus) => bus.topology(),
        }
    }

    /// The in-process bus; with a `journal` it is durable (see [`memory`]).
    pub fn in_process(settings: &BusSettings, journal: Option<Arc<dyn Journal>>, shutdown: CancellationToken) -> Self {
        match journal {
            Some(journal) => Bus::Memory(memory::MemoryBus::with_journal(settings, journal, shutdown)),
            None => Bus::Memory(memory::MemoryBus::new(settings)),
        }
    }

    /// Publishes `payload` persistently and returns once the broker confirmed it.
    pub async fn publish(&self, exchange: Exchange, routing_key: &str, payload: Bytes) -> Result<(), BusError> {
        match self {
            Bus::Amqp(bus) => bus.publish(exchange, routing_key, payload).await,
            Bus::Memory(bus) => bus.publish(exchange, routing_key, payload).await,
        }
    }

    /// Publishes `payload` for `exchange` under `routing_key` to be routed there after `delay`:
    /// returns once it is durably taken (confirmed, or journaled). RabbitMQ keeps it in a
    /// durable TTL queue per exchange, routing key and delay, which dead-letters it to the
    /// exchange when it expires; the in-process bus journals it at once and routes it when the
    /// delay is over (after a restart, the journal delivers it at once).
    pub async fn publish_delayed(
        &self,
        exchange: Exchange,
        routing_key: &str,
        payload: Bytes,
        delay: Duration,
    ) -> Result<(), BusError> {
        match self {
            Bus::Amqp(bus) => bus.publish_delayed(exchange, routing_key, payload, delay).await,
            Bus::Memory(bus) => bus.publish_delayed(exchange, routing_key, payload, delay).await,
        }
    }

    /// Publishes an envelope under `<target>.<priority>`: an urgent one straight to the
    /// notifications exchange, any other into the bounded ingress queue (spec 8.2).
    pub async fn publish_notification(&self, message: &NotificationMessage) -> Result<(), BusError> {
        let (exchange, routing_key) = notification_route(message);
        self.publish(exchange, &routing_key, notification_payload(message)?).await
    }

    /// Publishes a delivery event on the events exchange under its routing key
    /// (`<event>.<user_id>`), for the record-writer and the gateways.
    pub async fn publish_event(&self, event: &DeliveryEvent) -> Result<(), BusError> {
        // Serialising an event cannot fail; if it ever did, the receipt is refused, never sent empty.
        let payload =
            serde_json::to_vec(event).map(Bytes::from).map_err(|err| BusError::Unavailable(err.to_string()))?;
        self.publish(Exchange::Events, &event.routing_key(), payload).await
    }

    /// Starts moving notices from the ingress queue to the notifications exchange until
    /// `shutdown`, acking each once the broker confirmed its onward publish. Several dispatchers
    /// share the queue. Returns the dispatcher's readiness.
    pub fn start_dispatcher(&self, shutdown: CancellationToken) -> watch::Receiver<bool> {
        let ingress = self.subscribe(SubscriptionSpec {
            queue: INGRESS.into(),
            kind: QueueKind::Durable,
            exchange: Exchange::Ingress,
            bindings: Vec::new(),
        });
        let ready = ingress.readiness();
        tokio::spawn(self.clone().dispatch(ingress, shutdown));
        ready
    }

    /// Moves notices on with up to `bus.prefetch` of them in flight: each is handed to the
    /// broker in the order it came, their confirms are awaited together and taken in that order,
    /// and the ingress deliveries behind them are acknowledged together (one ack for a run of
    /// confirmed ones). A notice is acknowledged only once its onward publish is confirmed.
    /// Notices the ingress queue has delivered already go on in bundles (see [`bundle`]):
    /// consecutive ones with the same routing key as one message, up to `bus.bundle_max`.
    async fn dispatch(self, mut ingress: Subscription, shutdown: CancellationToken) {
        let window = self.dispatch_window();
        let mut in_flight = FuturesOrdered::new();
        let mut notices_in_flight = 0usize;
        let mut confirmed = Confirmed::default();
        loop {
            tokio::select! {
                biased;
                Some((run, result)) = in_flight.next(), if !in_flight.is_empty() => {
                    let mut next = Some((run, result));
                    // Take every confirm already in, so that one ack covers them.
                    while let Some((run, result)) = next.take() {
                        let run: Vec<Incoming> = run;
                        notices_in_flight -= run.len();
                        match result {
                            Ok(()) => confirmed.extend(run),
                            Err(err) => {
                                // Everything before it is through; it is retried in place (later
                                // notices may then overtake it).
                                confirmed.ack().await;
                                tracing::warn!(error = %err, "dispatch failed; retrying");
                                if !self.forward_until_confirmed(&run, &shutdown).await {
                                    return;
                                }
                                confirmed.extend(run);
                            }
                        }
                        next = in_flight.next().now_or_never().flatten();
                    }
                    confirmed.ack().await;
                }
                incoming = ingress.next_until(&shutdown), if notices_in_flight < window => {
                    let Some(first) = incoming else { break };
                    // What else the ingress queue has delivered already, up to the window.
                    let mut taken = vec![first];
                    while notices_in_flight + taken.len() < window {
                        match ingress.next().now_or_never() {
                            Some(Some(incoming)) => taken.push(incoming),
                            _ => break,
                        }
                    }
                    for run in self.runs(taken) {
                        notices_in_flight += run.len();
                        let pending = self.start_forward(&run, Exchange::Notifications).await;
                        in_flight.push_back(async move {
                            let result = match pending {
                                Ok(pending) => pending.confirmed().await,
                                Err(err) => Err(err),
                            };
                            (run, result)
                        });
                    }
                }
            }
        }
        // Shutdown: what is in flight is left unacknowledged, and redelivered.
        confirmed.ack().await;
    }

    /// How many notices the dispatcher keeps in flight.
    fn dispatch_window(&self) -> usize {
        match self {
            Bus::Amqp(bus) => usize::from(bus.settings().prefetch).max(1),
            // In process a forward is done when it returns: nothing to overlap.
            Bus::Memory(_) => 1,
        }
    }

    /// `taken`, in order, cut into the runs that go on as one message each: consecutive notices
    /// with the same routing key, at most `bus.bundle_max` of them and (but for a run of one)
    /// [`bundle::MAX_BUNDLE_BYTES`] of payload.
    fn runs(&self, taken: Vec<Incoming>) -> Vec<Vec<Incoming>> {
        let most = match self {
            Bus::Amqp(bus) => usize::from(bus.settings().bundle_max).max(1),
            Bus::Memory(_) => 1,
        };
        let mut runs: Vec<Vec<Incoming>> = Vec::new();
        let mut bytes = 0;
        for incoming in taken {
            match runs.last_mut() {
                Some(run)
                    if run.len() < most
                        && run[0].routing_key == incoming.routing_key
                        && bytes + incoming.payload.len() <= bundle::MAX_BUNDLE_BYTES =>
                {
                    bytes += incoming.payload.len();
                    run.push(incoming);
                }
                _ => {
                    bytes = incoming.payload.len();
                    runs.push(vec![incoming]);
                }
            }
        }
        runs
    }

    /// Retries moving `run` on until its publish is confirmed; `false` at shutdown.
    async fn forward_until_confirmed(&self, run: &[Incoming], shutdown: &CancellationToken) -> bool {
        let mut backoff = DISPATCH_RETRY.start();
        loop {
            let result = match self.start_forward(run, Exchange::Notifications).await {
                Ok(pending) => pending.confirmed().await,
                Err(err) => Err(err),
            };
            match result {
                Ok(()) => return true,
                Err(err) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "dispatch failed; retrying");
                    if !runtime::Backoff::wait(delay, shutdown).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Hands a run of deliveries (one message, or a bundle of several) on to `exchange` under
    /// their routing key; in process, the journal entry it came with then waits for the new
    /// deliveries too (and it is done at once). The confirm is still to come.
    async fn start_forward(&self, run: &[Incoming], exchange: Exchange) -> Result<Forwarded, BusError> {
        // A run is never empty; one would have nothing to move on.
        let Some(first) = run.first() else { return Ok(Forwarded::Done) };
        match self {
            Bus::Amqp(bus) if run.len() > 1 => {
                let (payload, headers) =
                    bundle::encode(run.iter().map(|incoming| (&incoming.payload, incoming.traceparent.as_deref())));
                let pending = bus.send(exchange, &first.routing_key, payload, headers).await?;
                Ok(Forwarded::Amqp(pending))
            }
            Bus::Amqp(bus) => {
                // The notice's trace goes on with it.
                let mut headers = lapin::types::FieldTable::default();
                if let Some(traceparent) = &first.traceparent {
                    headers.insert(
                        runtime::trace::TRACEPARENT.into(),
                        lapin::types::AMQPValue::LongString(traceparent.as_str().into()),
                    );
                }
                let pending = bus.send(exchange, &first.routing_key, first.payload.clone(), headers).await?;
                Ok(Forwarded::Amqp(pending))
            }
            Bus::Memory(bus) => bus.forward(first, exchange).await.map(|()| Forwarded::Done),
        }
    }

    /// Gives up on a message no consumer can process (it failed the same way too many times, or
    /// cannot be parsed): it goes to the dead-letter queue with `reason` and is acknowledged, so
    /// the consumer moves on. Should the dead-letter queue itself be unreachable the message is
    /// requeued instead, never dropped.
    pub async fn dead_letter(&self, incoming: Incoming, reason: &str) {
        tracing::error!(
            queue = %incoming.queue,
            routing_key = %incoming.routing_key,
            reason,
            "message dead-lettered"
        );
        match self {
            Bus::Amqp(bus) => bus.dead_letter(incoming, reason).await,
            Bus::Memory(bus) => bus.dead_letter(incoming, reason).await,
        }
    }

    /// Messages this process dead-lettered since it started.
    pub fn dead_lettered(&self) -> u64 {
        match self {
            Bus::Amqp(bus) => bus.dead_lettered(),
            Bus::Memory(bus) => bus.dead_lettered(),
        }
    }

    /// Delivers what a journaled in-process bus kept from before a restart (nothing for
    /// RabbitMQ, whose queues keep it themselves). Call it once every consumer has subscribed;
    /// returns how many messages it delivered.
    pub async fn recover(&self) -> Result<usize, BusError> {
        match self {
            Bus::Amqp(_) => Ok(0),
            Bus::Memory(bus) => bus.recover().await,
        }
    }

    /// How many messages wait in the durable queue `name` (under the prefix) on `exchange`.
    pub async fn queue_depth(&self, exchange: Exchange, name: &str) -> Result<u64, BusError> {
        match self {
            Bus::Amqp(bus) => bus.queue_depth(exchange, name).await,
            Bus::Memory(bus) => Ok(bus.queue_depth(name)),
        }
    }

    /// Keeps `gauge` at the depth of the durable queue `name` on `exchange`, read every 5
    /// seconds until `shutdown` (a read that fails leaves the last value).
    pub fn report_depth(&self, exchange: Exchange, name: &str, gauge: metrics::Gauge, shutdown: CancellationToken) {
        let (bus, name) = (self.clone(), name.to_owned());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = every.tick() => {
                        if let Ok(depth) = bus.queue_depth(exchange, &name).await {
                            gauge.set(depth as f64);
                        }
                    }
                }
            }
        });
    }

    /// Starts consuming `spec`; the subscription re-establishes itself after broker outages.
    pub fn subscribe(&self, spec: SubscriptionSpec) -> Subscription {
        match self {
            Bus::Amqp(bus) => bus.subscribe(spec),
            Bus::Memory(bus) => bus.subscribe(spec),
        }
    }

    /// The longest a publish can take before its answer is known (`bus.publish_timeout_ms` to
    /// hand it over, `bus.confirm_timeout_ms` for the confirm).
    pub fn publish_budget(&self) -> Duration {
        match self {
            Bus::Amqp(bus) => bus.settings().publish_budget(),
            Bus::Memory(bus) => bus.publish_budget(),
        }
    }

    /// Whether the bus can publish right now (for `/readyz`; always, in process).
    pub fn is_ready(&self) -> bool {
        match self {
            Bus::Amqp(bus) => bus.is_connected(),
            Bus::Memory(_) => true,
        }
    }

    /// Whether this is the in-process bus.
    pub fn is_in_process(&self) -> bool {
        matches!(self, Bus::Memory(_))
    }
}
