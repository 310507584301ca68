//! RabbitMQ: durable topic exchanges, persistent messages with publisher confirms, consumers
//! with manual acks, and reconnection with capped exponential backoff.
//!
//! The publisher keeps one connection with a confirm-mode channel, owned by a supervisor task
//! that reconnects whenever it is lost; while it is down `publish` fails at once with
//! [`BusError::Unavailable`] instead of hanging.
//!
//! Publishes on one confirm channel are serialised up to the moment their frames are queued:
//! lapin numbers a publish (the delivery tag its confirm will carry) before it queues the
//! frames, so two threads publishing at once could put their frames on the wire in the other
//! order than their numbers, and each would then be answered with the other's confirm: a
//! notice refused by a full ingress queue reported as accepted, and the accepted one as refused.
//! Waiting for the confirm itself is not serialised. Each subscription owns its own connection and
//! re-declares its queue and bindings every time it reconnects.

use crate::BusSettings;
use crate::bundle;
use crate::{Acker, BusError, Exchange, Incoming, Lane, QueueKind, Subscription, SubscriptionSpec, Topology};
use bytes::Bytes;
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Event, ExchangeKind};
use runtime::Backoff;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a live connection's status is checked, besides its error events.
const HEALTH_CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long a subscription keeps its connection open after shutdown for in-flight acks.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a subscription that stops waits for the acks sent in the background.
const ACK_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Delay queues a publisher remembers having declared on its connection, at most.
const KNOWN_DELAY_QUEUES: usize = 1024;
/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;
/// The header that carries an ingress notice's (or a dead letter's) routing key.
const ROUTING_KEY_HEADER: &str = "x-herald-routing-key";
/// The header that carries why a message was dead-lettered.
const REASON_HEADER: &str = "x-herald-reason";
/// The header that names the queue a dead letter was taken from.
const QUEUE_HEADER: &str = "x-herald-queue";

/// A confirm-mode channel with the lock that keeps its publishes numbered in wire order.
#[derive(Clone, Debug)]
struct ConfirmChannel {
    /// Its connection, for declarations on channels of their own (see [`declare_queue`]).
    conn: Arc<Connection>,
    /// The delay queues declared on this connection, declared once each.
    delay_queues: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    channel: Channel,
    /// A channel of the same connection for passive queue declarations (queue depths): one that
    /// fails closes this channel only, never the publisher's.
    stats: Channel,
    /// Held from the moment a publish is numbered until its frames are queued (see the module
    /// documentation).
    order: Arc<tokio::sync::Mutex<()>>,
}

/// A message the broker has, whose confirm is still to come.
pub(crate) struct PendingConfirm {
    confirm: lapin::PublisherConfirm,
    /// Where it went, for the error should its queue be missing.
    key: String,
    inner: Arc<Inner>,
}

impl PendingConfirm {
    /// Waits for the confirm (up to `bus.confirm_timeout_ms`): `Ok` once the broker took the
    /// message for good.
    pub(crate) async fn confirmed(self) -> Result<(), BusError> {
        let confirm_ms = self.inner.settings.confirm_timeout_ms;
        match tokio::time::timeout(Duration::from_millis(confirm_ms), self.confirm).await {
            Err(_) => {
                // Recycle the connection so a stuck broker does not hold every later publish.
                self.inner.reconnect.notify_one();
                Err(BusError::Unconfirmed(format!("no confirm within {confirm_ms} ms")))
            }
            Ok(Err(err)) => {
                // The connection broke after the message was sent.
                self.inner.reconnect.notify_one();
                Err(BusError::Unconfirmed(err.to_string()))
            }
            // The broker nacks when a queue bounded with reject-publish is full.
            Ok(Ok(Confirmation::Nack(_))) => Err(BusError::QueueFull),
            Ok(Ok(Confirmation::Ack(Some(_)))) => {
                Err(BusError::Unavailable(format!("the queue {} is missing", self.key)))
            }
            Ok(Ok(Confirmation::Ack(None) | Confirmation::NotRequested)) => Ok(()),
        }
    }
}

/// The RabbitMQ bus. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AmqpBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: BusSettings,
    topology: Topology,
    publisher: RwLock<Option<ConfirmChannel>>,
    reconnect: Notify,
    shutdown: CancellationToken,
    dead_lettered: std::sync::atomic::AtomicU64,
}

impl AmqpBus {
    /// Starts the publisher's connection supervisor; it runs until `shutdown`.
    pub fn start(settings: BusSettings, shutdown: CancellationToken) -> Self {
        let inner = Arc::new(Inner {
            topology: Topology::new(settings.prefix.clone()),
            settings,
            publisher: RwLock::new(None),
            reconnect: Notify::new(),
            shutdown,
            dead_lettered: Default::default(),
        });
        tokio::spawn(supervise_publisher(inner.clone()));
        Self { inner }
    }

    /// The settings the bus runs with.
    pub fn settings(&self) -> &BusSettings {
        &self.inner.settings
    }

    /// The names this bus uses.
    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// Whether the publisher is connected right now.
    pub fn is_connected(&self) -> bool {
        self.current_channel().is_some_and(|c| c.channel.status().connected())
    }

    /// Waits until the publisher is connected, for at most `limit`.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.is_connected() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.is_connected()
    }

    fn current_channel(&self) -> Option<ConfirmChannel> {
        self.inner.publisher.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// How many messages wait in the durable queue `name` (under the prefix) on `exchange` (and
    /// its urgent lane, on the notifications exchange), as the broker counts them (ready, not
    /// yet delivered).
    pub async fn queue_depth(&self, exchange: Exchange, name: &str) -> Result<u64, BusError> {
        let publisher = self
            .current_channel()
            .filter(|c| c.stats.status().connected())
            .ok_or_else(|| BusError::Unavailable("not connected; reconnecting".into()))?;
        let queue = self.inner.topology.queue(name);
        let lanes = match exchange {
            Exchange::Notifications => vec![format!("{queue}.urgent"), queue],
            _ => vec![queue],
        };
        let mut depth = 0;
        for lane in lanes {
            let options = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
            let declared = publisher
                .stats
                .queue_declare(lane.as_str().into(), options, FieldTable::default())
                .await
                .map_err(|err| BusError::Unavailable(err.to_string()))?;
            depth += u64::from(declared.message_count());
        }
        Ok(depth)
    }

    /// Publishes persistently and waits for the broker's confirm, within the publish timeout.
    pub async fn publish(&self, exchange: Exchange, routing_key: &str, payload: Bytes) -> Result<(), BusError> {
        self.publish_with(exchange, routing_key, payload, FieldTable::default()).await
    }

    /// Gives up on `incoming`: publishes it to the dead-letter queue with `reason`, then acks it;
    /// requeues it if the dead-letter queue cannot take it.
    pub async fn dead_letter(&self, incoming: Incoming, reason: &str) {
        let mut headers = FieldTable::default();
        headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
        headers.insert(QUEUE_HEADER.into(), AMQPValue::LongString(incoming.queue.to_string().into()));
        let kept =
            self.publish_with(Exchange::DeadLetters, &incoming.routing_key, incoming.payload.clone(), headers).await;
        match kept {
            Ok(()) => {
                self.inner.dead_lettered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                incoming.ack().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "dead-letter queue unavailable; the message is requeued");
                incoming.reject(true).await;
            }
        }
    }

    /// Messages this process dead-lettered since it started.
    pub fn dead_lettered(&self) -> u64 {
        self.inner.dead_lettered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// See [`crate::Bus::publish_delayed`]: declares the delay queue (durable, `x-message-ttl`
    /// the delay, dead-lettering to `exchange` under `routing_key`), then publishes to it with
    /// a confirm.
    pub async fn publish_delayed(
        &self,
        exchange: Exchange,
        routing_key: &str,
        payload: Bytes,
        delay: Duration,
    ) -> Result<(), BusError> {
        let publisher = self
            .current_channel()
            .filter(|c| c.channel.status().connected())
            .ok_or_else(|| BusError::Unavailable("not connected; reconnecting".into()))?;
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX).max(1);
        let queue = self.inner.topology.delay_queue(exchange, routing_key, delay_ms);
        let declared = publisher.delay_queues.lock().unwrap_or_else(PoisonError::into_inner).contains(&queue);
        if !declared {
            let role = QueueRole::Delay {
                ttl_ms: delay_ms,
                exchange: self.inner.topology.exchange(exchange),
                routing_key: routing_key.to_owned(),
            };
            let timeout_ms = self.inner.settings.publish_timeout_ms;
            let declaring = declare_queue(&publisher.conn, &self.inner.settings, &queue, role);
            match tokio::time::timeout(Duration::from_millis(timeout_ms), declaring).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    self.inner.reconnect.notify_one();
                    return Err(BusError::Unavailable(err.to_string()));
                }
                Err(_) => return Err(BusError::Timeout(timeout_ms)),
            }
            let mut known = publisher.delay_queues.lock().unwrap_or_else(PoisonError::into_inner);
            if known.len() >= KNOWN_DELAY_QUEUES {
                // Delays a provider chose (Retry-After) can be many: forget, declare again.
                known.clear();
            }
            known.insert(queue.clone());
        }
        self.send_to(String::new(), queue, true, payload, FieldTable::default()).await?.confirmed().await
    }

    async fn publish_with(
        &self,
        exchange: Exchange,
        routing_key: &str,
        payload: Bytes,
        headers: FieldTable,
    ) -> Result<(), BusError> {
        self.send(exchange, routing_key, payload, headers).await?.confirmed().await
    }

    /// Hands a persistent message to the broker: returns once its frames are queued, in the
    /// order of the calls, with the confirm still to come. Pipelining goes through here: the
    /// dispatcher keeps many confirms outstanding, each publish in its place.
    pub(crate) async fn send(
        &self,
        exchange: Exchange,
        routing_key: &str,
        payload: Bytes,
        mut headers: FieldTable,
    ) -> Result<PendingConfirm, BusError> {
        // The ingress and dead-letter queues are addressed by name through the default
        // exchange; the routing key travels in a header. `mandatory` makes the broker return
        // the message, rather than drop it, should the queue be missing.
        let (exchange_name, key, mandatory) = match exchange {
            Exchange::Ingress | Exchange::DeadLetters => {
                headers.insert(ROUTING_KEY_HEADER.into(), AMQPValue::LongString(routing_key.into()));
                let queue = match exchange {
                    Exchange::Ingress => self.inner.topology.ingress_queue(),
                    _ => self.inner.topology.dead_letter_queue(),
                };
                (String::new(), queue, true)
            }
            // A notice no consumer is bound for (no gateway up) is not an error.
            other => (self.inner.topology.exchange(other), routing_key.to_owned(), false),
        };
        self.send_to(exchange_name, key, mandatory, payload, headers).await
    }

    /// [`Self::send`] to an exchange by name (empty: the default exchange, `key` a queue).
    async fn send_to(
        &self,
        exchange_name: String,
        key: String,
        mandatory: bool,
        payload: Bytes,
        mut headers: FieldTable,
    ) -> Result<PendingConfirm, BusError> {
        // The publishing span's trace goes with the message, unless it carries one already (a
        // notice the dispatcher moves on).
        if !headers.inner().contains_key(runtime::trace::TRACEPARENT)
            && let Some(traceparent) = runtime::trace::current_traceparent()
        {
            headers.insert(runtime::trace::TRACEPARENT.into(), AMQPValue::LongString(traceparent.into()));
        }
        let publisher = self
            .current_channel()
            .filter(|c| c.channel.status().connected())
            .ok_or_else(|| BusError::Unavailable("not connected; reconnecting".into()))?;
        let properties = BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_content_type("application/json".into())
            .with_headers(headers);
        let options = BasicPublishOptions { mandatory, ..BasicPublishOptions::default() };
        // Until the frames are queued nothing has left this process, so running out of time
        // then is a true refusal. Once queued they go out even if this future is dropped: from
        // there on only the confirm tells what became of the message.
        let timeout_ms = self.inner.settings.publish_timeout_ms;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        let order = tokio::time::timeout_at(deadline, publisher.order.lock())
            .await
            .map_err(|_| BusError::Timeout(timeout_ms))?;
        let published =
            publisher.channel.basic_publish(exchange_name.into(), key.as_str().into(), options, &payload, properties);
        let confirm = match tokio::time::timeout_at(deadline, published).await {
            Ok(Ok(confirm)) => confirm,
            Ok(Err(err)) => {
                // Refused before any frame was queued (the channel is closed): start over.
                self.inner.reconnect.notify_one();
                return Err(BusError::Unavailable(err.to_string()));
            }
            Err(_) => {
                self.inner.reconnect.notify_one();
                return Err(BusError::Unconfirmed("the broker did not take the message in time".into()));
            }
        };
        drop(order);
        Ok(PendingConfirm { confirm, key, inner: self.inner.clone() })
    }

    /// Starts a subscription whose task reconnects and re-declares until shutdown, or until
    /// the returned [`Subscription`] is dropped.
    pub fn subscribe(&self, spec: SubscriptionSpec) -> Subscription {
        let lanes = spec.lanes(self.inner.settings.backlog);
        let (senders, receivers): (Vec<_>, Vec<_>) =
            lanes.iter().map(|_| mpsc::channel(usize::from(self.inner.settings.prefetch))).unzip();
        let (ready_tx, ready) = watch::channel(false);
        tokio::spawn(run_subscription(self.inner.clone(), spec, lanes, senders, ready_tx));
        Subscription { lanes: receivers, ready }
    }

    /// Deletes this prefix's exchanges and the named durable queues (tests and operators).
    pub async fn delete_topology(&self, durable_queues: &[&str]) -> Result<(), lapin::Error> {
        Self::remove_topology(&self.inner.settings, durable_queues).await
    }

    /// Deletes the exchanges of `settings.prefix` and the named durable queues, over a connection
    /// of its own, without starting a bus (whose publisher would declare them again).
    pub async fn remove_topology(settings: &BusSettings, durable_queues: &[&str]) -> Result<(), lapin::Error> {
        let topology = Topology::new(settings.prefix.clone());
        let conn = connect(settings, "herald-admin").await?;
        let channel = conn.create_channel().await?;
        for queue in durable_queues {
            // A notifications subscription has an urgent lane beside it; deleting a queue that
            // does not exist is not an error.
            for name in [topology.queue(queue), format!("{}.urgent", topology.queue(queue))] {
                channel.queue_delete(name.into(), QueueDeleteOptions::default()).await?;
            }
        }
        for queue in [topology.ingress_queue(), topology.dead_letter_queue()] {
            channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await?;
        }
        for exchange in [Exchange::Notifications, Exchange::Events, Exchange::Mobile] {
            let name = topology.exchange(exchange);
            channel.exchange_delete(name.into(), ExchangeDeleteOptions::default()).await?;
        }
        conn.close(200, "done".into()).await
    }
}

/// Connects to the first of `bus.url`'s addresses that answers, trying them in order: the nodes
/// of a cluster, so a client whose node went away reconnects to another.
async fn connect(settings: &BusSettings, name: &str) -> Result<Connection, lapin::Error> {
    let mut last = None;
    for url in settings.url.addresses() {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, properties)).await {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(err)) => {
                tracing::debug!(broker = runtime::redact_url(url), error = %err, "broker address refused");
                last = Some(err);
            }
            Err(_) => {
                tracing::debug!(broker = runtime::redact_url(url), "broker address timed out");
                last = Some(lapin::Error::from(lapin::ErrorKind::IOError(Arc::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connection attempt timed out",
                )))));
            }
        }
    }
    // `Bus::start` hands this bus only AMQP URLs, at least one.
    Err(last.unwrap_or_else(|| {
        lapin::Error::from(lapin::ErrorKind::IOError(Arc::new(std::io::Error::other("no broker address"))))
    }))
}

async fn declare_exchange(channel: &Channel, topology: &Topology, exchange: Exchange) -> Result<(), lapin::Error> {
    if matches!(exchange, Exchange::Ingress | Exchange::DeadLetters) {
        return Ok(());
    }
    let options = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    channel
        .exchange_declare(topology.exchange(exchange).into(), ExchangeKind::Topic, options, FieldTable::default())
        .await
}

/// Resolves when the connection reports an error or stops being connected.
async fn connection_lost(conn: &Connection) {
    let mut events = conn.events_listener();
    let mut check = tokio::time::interval(HEALTH_CHECK_EVERY);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Event::Error(err)) => {
                    tracing::warn!(error = %err, "broker connection error");
                    return;
                }
                Some(_) => {}
                None => return,
            },
            _ = check.tick() => if !conn.status().connected() {
                return;
            },
        }
    }
}

async fn supervise_publisher(inner: Arc<Inner>) {
    let mut backoff = inner.settings.reconnect_policy().start();
    loop {
        if inner.shutdown.is_cancelled() {
            break;
        }
        match open_publisher(&inner).await {
            Ok((conn, channel)) => {
                *inner.publisher.write().unwrap_or_else(PoisonError::into_inner) = Some(channel);
                tracing::info!(prefix = inner.topology.prefix(), "bus publisher connected");
                backoff.reset();
                let stop = tokio::select! {
                    _ = inner.shutdown.cancelled() => true,
                    _ = inner.reconnect.notified() => false,
                    _ = connection_lost(&conn) => false,
                };
                inner.publisher.write().unwrap_or_else(PoisonError::into_inner).take();
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.close(200, "bye".into())).await;
                if stop {
                    break;
                }
                tracing::warn!("bus publisher lost its connection; reconnecting");
            }
            Err(err) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "bus publisher cannot connect");
                if !Backoff::wait(delay, &inner.shutdown).await {
                    break;
                }
                continue;
            }
        }
        if !backoff.pause(&inner.shutdown).await {
            break;
        }
    }
}

async fn open_publisher(inner: &Inner) -> Result<(Arc<Connection>, ConfirmChannel), lapin::Error> {
    let conn = connect(&inner.settings, &format!("{}-publisher", inner.topology.prefix())).await?;
    let channel = conn.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    for exchange in [Exchange::Notifications, Exchange::Events, Exchange::Mobile] {
        declare_exchange(&channel, &inner.topology, exchange).await?;
    }
    // Publishing to a queue that does not exist drops the message silently: declare it first.
    let dead_letters = inner.topology.dead_letter_queue();
    let ingress =
        QueueRole::Durable { max_length: Some(inner.settings.backlog), dead_letters: Some(dead_letters.clone()) };
    declare_queue(&conn, &inner.settings, &inner.topology.ingress_queue(), ingress).await?;
    let kept = QueueRole::Durable { max_length: None, dead_letters: None };
    declare_queue(&conn, &inner.settings, &dead_letters, kept).await?;
    let stats = conn.create_channel().await?;
    let conn = Arc::new(conn);
    let publisher =
        ConfirmChannel { conn: conn.clone(), delay_queues: Arc::default(), channel, stats, order: Arc::default() };
    Ok((conn, publisher))
}

/// What a queue is for, which decides how it is declared.
enum QueueRole {
    /// A gateway's own queue: exclusive to its connection and deleted with it; always classic
    /// (a quorum queue cannot be exclusive).
    Exclusive,
    /// A durable queue, bounded with reject-publish when `max_length` is set (a full queue makes
    /// the broker refuse the publish). On a quorum queue, messages past the broker's delivery
    /// limit (RabbitMQ 4 sets one by default) go to `dead_letters` rather than being dropped.
    Durable { max_length: Option<u32>, dead_letters: Option<String> },
    /// A delay queue: its messages move on to `exchange` under `routing_key` after `ttl_ms`.
    Delay { ttl_ms: u64, exchange: String, routing_key: String },
}

/// The declaration of a queue for `role`: its options and arguments.
fn queue_declaration(settings: &BusSettings, role: &QueueRole) -> (QueueDeclareOptions, FieldTable) {
    let text = |value: &str| AMQPValue::LongString(value.into());
    let mut arguments = FieldTable::default();
    if let QueueRole::Exclusive = role {
        let options = QueueDeclareOptions { durable: false, exclusive: true, auto_delete: true, ..Default::default() };
        return (options, arguments);
    }
    if settings.quorum_queues {
        arguments.insert("x-queue-type".into(), text("quorum"));
    }
    match role {
        QueueRole::Exclusive => {}
        QueueRole::Durable { max_length, dead_letters } => {
            if let Some(max_length) = max_length {
                // A quorum queue refuses publishes only once it holds more than its limit (it
                // takes limit + 1): one less is declared, so it holds `max_length`.
                let limit = if settings.quorum_queues { max_length.saturating_sub(1) } else { *max_length };
                arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(i64::from(limit)));
                arguments.insert("x-overflow".into(), text("reject-publish"));
            }
            if let (true, Some(queue)) = (settings.quorum_queues, dead_letters) {
                arguments.insert("x-dead-letter-exchange".into(), text(""));
                arguments.insert("x-dead-letter-routing-key".into(), text(queue));
            }
        }
        QueueRole::Delay { ttl_ms, exchange, routing_key } => {
            arguments
                .insert("x-message-ttl".into(), AMQPValue::LongLongInt(i64::try_from(*ttl_ms).unwrap_or(i64::MAX)));
            arguments.insert("x-dead-letter-exchange".into(), text(exchange));
            arguments.insert("x-dead-letter-routing-key".into(), text(routing_key));
        }
    }
    (QueueDeclareOptions { durable: true, ..Default::default() }, arguments)
}

/// Declares `queue` for `role` on a channel of its own, idempotently: a queue that already
/// exists with other arguments (the other type, another length bound) is used as it is, with a
/// warning, instead of failing every (re)connection. The broker closes a channel whose
/// declaration it refuses, which is why the declaration gets its own.
async fn declare_queue(
    conn: &Connection,
    settings: &BusSettings,
    queue: &str,
    role: QueueRole,
) -> Result<(), lapin::Error> {
    let (options, arguments) = queue_declaration(settings, &role);
    let channel = conn.create_channel().await?;
    let declared = channel.queue_declare(queue.into(), options, arguments).await;
    let outcome = match declared {
        Ok(_) => Ok(()),
        Err(err) if is_precondition_failed(&err) => {
            let passive = conn.create_channel().await?;
            let options = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
            let found = passive.queue_declare(queue.into(), options, FieldTable::default()).await.map(|_| ());
            if found.is_ok() {
                tracing::warn!(
                    queue,
                    error = %err,
                    "the queue exists with other arguments than these settings give it (its type, length \
                     bound or delay); it is used as it is: drain and delete it to have it declared anew"
                );
            }
            let _ = passive.close(200, "declared".into()).await;
            found
        }
        Err(err) => Err(err),
    };
    if channel.status().connected() {
        let _ = channel.close(200, "declared".into()).await;
    }
    outcome
}

/// Whether the broker refused a declaration as inequivalent to the queue that exists (406).
fn is_precondition_failed(err: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    matches!(err.kind(), lapin::ErrorKind::ProtocolError(e)
        if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)))
}

enum Ended {
    /// Shutdown, or the consumer dropped its subscription: stop for good.
    Stopped,
    /// The connection was lost after it had been established: reconnect promptly.
    Lost,
}

async fn run_subscription(
    inner: Arc<Inner>,
    spec: SubscriptionSpec,
    lanes: Vec<Lane>,
    senders: Vec<mpsc::Sender<Incoming>>,
    ready: watch::Sender<bool>,
) {
    let base = inner.topology.queue(&spec.queue);
    let queue = match spec.kind {
        QueueKind::Durable => base,
        QueueKind::Exclusive => format!("{base}.{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    };
    let mut backoff = inner.settings.reconnect_policy().start();
    loop {
        let outcome = consume(&inner, &spec, &queue, &lanes, &senders, &ready).await;
        ready.send_replace(false);
        let delay = match outcome {
            Ok(Ended::Stopped) => break,
            Ok(Ended::Lost) => {
                tracing::warn!(queue, "subscription lost its connection; reconnecting");
                backoff.reset();
                backoff.next_delay()
            }
            Err(err) => {
                let delay = backoff.next_delay();
                tracing::warn!(queue, error = %err, retry_in_ms = delay.as_millis() as u64, "subscription cannot connect");
                delay
            }
        };
        let closed = senders.iter().all(mpsc::Sender::is_closed);
        if closed || !Backoff::wait(delay, &inner.shutdown).await {
            break;
        }
    }
}

/// Sends `acker`'s ack without waiting for lapin to write it (see [`Incoming::ack`]).
pub(crate) fn ack_in_background(acker: lapin::Acker) {
    ACKS_IN_FLIGHT.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    tokio::spawn(async move {
        if let Err(err) = acker.ack(lapin::options::BasicAckOptions::default()).await {
            // The channel closed: the broker redelivers the message to the next consumer.
            tracing::warn!(error = %err, "ack failed; the message will be redelivered");
        }
        ACKS_IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    });
}

/// Acks sent in the background and not written yet, in this process.
static ACKS_IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Waits (up to [`ACK_FLUSH_TIMEOUT`]) until every ack sent in the background is written, so
/// that a subscription closing its connection does not leave its last acks behind.
async fn acks_written() {
    let deadline = tokio::time::Instant::now() + ACK_FLUSH_TIMEOUT;
    while ACKS_IN_FLIGHT.load(std::sync::atomic::Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A text header of a delivery.
fn header(delivery: &lapin::message::Delivery, name: &str) -> Option<String> {
    match delivery.properties.headers().as_ref().and_then(|headers| headers.inner().get(name)) {
        Some(AMQPValue::LongString(value)) => Some(value.to_string()),
        _ => None,
    }
}

/// The routing key a delivery stands for: the header an ingress notice carries, or its own.
fn dispatch_key(delivery: &lapin::message::Delivery) -> String {
    header(delivery, ROUTING_KEY_HEADER).unwrap_or_else(|| delivery.routing_key.to_string())
}

/// Hands a delivery to its lane: a message of its own as one [`Incoming`], a bundle as one per
/// part, in order, sharing the delivery's acknowledgement. `Err` once the consumer is gone.
async fn deliver(
    delivery: lapin::message::Delivery,
    queue: &Arc<str>,
    lane: &mpsc::Sender<Incoming>,
) -> Result<(), ()> {
    let (routing_key, dead_letter_reason) = (dispatch_key(&delivery), header(&delivery, REASON_HEADER));
    let traceparent = header(&delivery, runtime::trace::TRACEPARENT);
    let payload = Bytes::from(delivery.data);
    let Some(parts) = bundle::decode(delivery.properties.headers().as_ref(), &payload) else {
        let incoming = Incoming {
            routing_key,
            dead_letter_reason,
            traceparent,
            queue: queue.clone(),
            payload,
            redelivered: delivery.redelivered,
            acker: Acker::Amqp(delivery.acker),
        };
        return lane.send(incoming).await.map_err(drop);
    };
    let shared = bundle::SharedAcker::new(delivery.acker, parts.len());
    for part in parts {
        let incoming = Incoming {
            routing_key: routing_key.clone(),
            dead_letter_reason: dead_letter_reason.clone(),
            traceparent: part.traceparent,
            queue: queue.clone(),
            payload: part.payload,
            redelivered: delivery.redelivered,
            acker: Acker::Part(shared.clone()),
        };
        lane.send(incoming).await.map_err(drop)?;
    }
    Ok(())
}

/// Declares and binds a lane's queue and starts consuming it on `channel`.
async fn open_lane(
    conn: &Connection,
    channel: &Channel,
    inner: &Inner,
    spec: &SubscriptionSpec,
    queue: &str,
    lane: &Lane,
) -> Result<lapin::Consumer, lapin::Error> {
    channel.basic_qos(inner.settings.prefetch, BasicQosOptions::default()).await?;
    let role = match (&spec.kind, spec.exchange) {
        (QueueKind::Exclusive, _) => QueueRole::Exclusive,
        // The dead-letter queue keeps what it is given.
        (QueueKind::Durable, Exchange::DeadLetters) => {
            QueueRole::Durable { max_length: lane.max_length, dead_letters: None }
        }
        (QueueKind::Durable, _) => {
            QueueRole::Durable { max_length: lane.max_length, dead_letters: Some(inner.topology.dead_letter_queue()) }
        }
    };
    if spec.kind == QueueKind::Exclusive {
        // Exclusive to this connection: declared on the channel that consumes it.
        let (options, arguments) = queue_declaration(&inner.settings, &role);
        channel.queue_declare(queue.into(), options, arguments).await?;
    } else {
        declare_queue(conn, &inner.settings, queue, role).await?;
    }
    let exchange = inner.topology.exchange(spec.exchange);
    for binding in &lane.bindings {
        let (q, e, b) = (queue.into(), exchange.clone().into(), binding.as_str().into());
        channel.queue_bind(q, e, b, QueueBindOptions::default(), FieldTable::default()).await?;
    }
    let tag = format!("{queue}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    channel.basic_consume(queue.into(), tag.into(), BasicConsumeOptions::default(), FieldTable::default()).await
}

async fn consume(
    inner: &Inner,
    spec: &SubscriptionSpec,
    queue: &str,
    lanes: &[Lane],
    senders: &[mpsc::Sender<Incoming>],
    ready: &watch::Sender<bool>,
) -> Result<Ended, lapin::Error> {
    let conn = connect(&inner.settings, queue).await?;
    let mut streams = Vec::with_capacity(lanes.len());
    for (index, lane) in lanes.iter().enumerate() {
        // A channel per lane, so each has its own prefetch window.
        let channel = conn.create_channel().await?;
        declare_exchange(&channel, &inner.topology, spec.exchange).await?;
        let consumer = open_lane(&conn, &channel, inner, spec, &format!("{queue}{}", lane.suffix), lane).await?;
        streams.push(consumer.map(move |delivery| (index, delivery)));
    }
    let mut deliveries = futures_util::stream::select_all(streams);
    let queue_names: Vec<Arc<str>> = lanes.iter().map(|lane| Arc::from(format!("{queue}{}", lane.suffix))).collect();
    tracing::info!(queue, lanes = lanes.len(), "subscription consuming");
    ready.send_replace(true);
    let all_closed = async {
        for sender in senders {
            sender.closed().await;
        }
    };
    tokio::pin!(all_closed);
    let ended = loop {
        tokio::select! {
            _ = inner.shutdown.cancelled() => break Ended::Stopped,
            _ = &mut all_closed => break Ended::Stopped,
            delivery = deliveries.next() => match delivery {
                Some((lane, Ok(delivery))) => {
                    if deliver(delivery, &queue_names[lane], &senders[lane]).await.is_err() {
                        break Ended::Stopped;
                    }
                }
                Some((_, Err(err))) => {
                    tracing::warn!(queue, error = %err, "consumer error");
                    break Ended::Lost;
                }
                None => break Ended::Lost,
            },
        }
    };
    if matches!(ended, Ended::Stopped) {
        // Keep the channels open while the service acks what it already took, then close.
        let drained = async {
            for sender in senders {
                sender.closed().await;
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, drained).await;
        acks_written().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.close(200, "bye".into())).await;
    Ok(ended)
}
