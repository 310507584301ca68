//! The in-process bus for the all-in-one binary: the same topology and topic routing as
//! RabbitMQ, in memory, bounded like the broker's queues.
//!
//! With a [`Journal`] (the embedded database; the all-in-one's default) it is durable the way
//! the broker is: a publish returns once the message is in the journal, the entry stays until
//! every subscription it went to has settled it, and [`MemoryBus::recover`] delivers what a
//! stopped or killed process left unsettled. Without one (tests) nothing survives a restart.

use crate::BusSettings;
use crate::journal::{DeadLetter, Journal, Journaled, Ticket};
use crate::topic::topic_matches;
use crate::{Acker, BusError, Exchange, Incoming, Lane, QueueKind, Subscription, SubscriptionSpec, Topology};
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The in-process bus. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MemoryBus {
    topology: Topology,
    queue_capacity: usize,
    backlog: u32,
    publish_timeout: Duration,
    /// What `Bus::publish_budget` answers.
    publish_budget: Duration,
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
    journaled: Option<Journaled>,
    dead_lettered: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Subscriber {
    queue: Arc<str>,
    exchange: Exchange,
    /// A durable queue: what is routed to it while its consumer is away is kept (journaled).
    durable: bool,
    lanes: Vec<(Lane, mpsc::Sender<Incoming>)>,
}

impl Subscriber {
    /// Whether its consumer still takes messages.
    fn is_open(&self) -> bool {
        self.lanes.iter().all(|(_, tx)| !tx.is_closed())
    }

    /// The lane a routing key goes to, if any.
    fn lane_for(&self, routing_key: &str) -> Option<&(Lane, mpsc::Sender<Incoming>)> {
        if matches!(self.exchange, Exchange::Ingress | Exchange::DeadLetters) {
            // These queues are addressed by name and take every routing key.
            return self.lanes.first();
        }
        self.lanes.iter().find(|(lane, _)| lane.bindings.iter().any(|b| topic_matches(b, routing_key)))
    }
}

/// Forgets the subscriptions whose consumer has gone, but for (`keeps`, on a journaled bus) one
/// per durable queue no open subscription takes: what is routed there stays in the journal.
fn forget_closed(subscribers: &mut Vec<Subscriber>, keeps: bool) {
    let open: HashSet<Arc<str>> = subscribers.iter().filter(|s| s.is_open()).map(|s| s.queue.clone()).collect();
    let mut closed = HashSet::new();
    subscribers
        .retain(|s| s.is_open() || (keeps && s.durable && !open.contains(&s.queue) && closed.insert(s.queue.clone())));
}

/// How an in-process delivery is settled: where a rejected message goes back to, and the journal
/// entry it counts towards.
#[derive(Debug)]
pub struct MemoryAcker {
    requeue: mpsc::Sender<Incoming>,
    ticket: Option<Arc<Ticket>>,
}

impl MemoryAcker {
    /// The delivery is done with (acknowledged, or dropped for good).
    pub(crate) fn settle(self) {
        if let Some(ticket) = self.ticket {
            ticket.settle();
        }
    }

    /// Hands the message back to its queue; it stays unsettled.
    pub(crate) async fn requeue(
        self,
        routing_key: String,
        traceparent: Option<String>,
        payload: Bytes,
        queue: Arc<str>,
    ) {
        let to = self.requeue.clone();
        let incoming = Incoming {
            routing_key,
            traceparent,
            payload,
            redelivered: true,
            queue,
            dead_letter_reason: None,
            acker: Acker::Memory(self),
        };
        // The subscription is gone when this fails: the message waits in the journal for the
        // next start.
        let _ = to.send(incoming).await;
    }
}

/// How long a reservation may wait for room in an unbounded lane.
#[derive(Clone, Copy, Debug)]
enum Wait {
    /// Up to the publish timeout.
    Timeout,
    /// As long as it takes, in bounded queues too (replaying the journal at start-up, when the
    /// backlog may hold more than it refuses: notices already dispatched are replayed through
    /// it again).
    Forever,
}

/// Places reserved in every queue a message goes to: sending it can no longer fail. Take one
/// before writing anything durable, so that a full backlog refuses the message before it exists.
#[derive(Debug)]
pub struct Reservation {
    routing_key: String,
    /// The trace context of the span that reserved it, handed to each delivery.
    traceparent: Option<String>,
    /// Each queue's place, its sender (where a rejected message goes back to) and its name.
    permits: Vec<(mpsc::OwnedPermit<Incoming>, mpsc::Sender<Incoming>, Arc<str>)>,
    /// Deliveries owed to durable queues whose consumer has stopped (the process is shutting
    /// down): they never settle here, so the journal entry stays for the next start.
    held: usize,
    journaled: Option<Journaled>,
}

impl Reservation {
    /// Whether the message must be journaled (by the caller, with [`Journal::append`] or in a
    /// transaction of its own) before it is sent.
    pub fn needs_journal(&self) -> bool {
        self.journaled.is_some()
    }

    /// Delivers `payload` to every reserved queue; `journal_id` is the journal entry it was
    /// written under, when the bus is journaled.
    pub fn send(self, journal_id: Option<i64>, payload: Bytes) {
        let ticket = match (&self.journaled, journal_id) {
            (Some(journaled), Some(id)) => Some(journaled.ticket(id, self.deliveries())),
            _ => None,
        };
        self.send_with(ticket, payload);
    }

    /// The deliveries its journal entry waits for: one per reserved queue, and those held.
    fn deliveries(&self) -> usize {
        self.permits.len() + self.held
    }

    fn send_with(self, ticket: Option<Arc<Ticket>>, payload: Bytes) {
        for (permit, requeue, queue) in self.permits {
            permit.send(Incoming {
                routing_key: self.routing_key.clone(),
                traceparent: self.traceparent.clone(),
                payload: payload.clone(),
                redelivered: false,
                queue,
                dead_letter_reason: None,
                acker: Acker::Memory(MemoryAcker { requeue, ticket: ticket.clone() }),
            });
        }
    }
}

impl MemoryBus {
    /// An empty bus without a journal; queues hold `settings.prefetch` messages each.
    pub fn new(settings: &BusSettings) -> Self {
        Self {
            topology: Topology::new(settings.prefix.clone()),
            queue_capacity: usize::from(settings.prefetch).max(1),
            backlog: settings.backlog.max(1),
            publish_timeout: Duration::from_millis(settings.publish_timeout_ms),
            publish_budget: settings.publish_budget(),
            subscribers: Arc::default(),
            journaled: None,
            dead_lettered: Arc::default(),
        }
    }

    /// A durable bus: every message is journaled before delivery, settled entries are removed
    /// by a task that runs until `shutdown`.
    pub fn with_journal(settings: &BusSettings, journal: Arc<dyn Journal>, shutdown: CancellationToken) -> Self {
        Self { journaled: Some(Journaled::start(journal, shutdown)), ..Self::new(settings) }
    }

    /// Whether messages are journaled (survive a restart).
    pub fn is_durable(&self) -> bool {
        self.journaled.is_some()
    }

    /// The longest a publish can take before its answer is known.
    pub fn publish_budget(&self) -> Duration {
        self.publish_budget
    }

    /// The names this bus uses.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Messages given up on since start.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }

    /// Reserves a place for a message in every queue it routes to, or in none: a bounded queue
    /// that is full refuses it with [`BusError::QueueFull`]; an unbounded one is waited on up to
    /// the publish timeout. Nothing is delivered until [`Reservation::send`].
    pub async fn reserve(&self, exchange: Exchange, routing_key: &str) -> Result<Reservation, BusError> {
        self.reserve_waiting(exchange, routing_key, Wait::Timeout).await
    }

    async fn reserve_waiting(
        &self,
        exchange: Exchange,
        routing_key: &str,
        wait: Wait,
    ) -> Result<Reservation, BusError> {
        // A durable queue keeps what is routed to it while its consumer is away, as RabbitMQ's
        // do: on a journaled bus a durable subscription that closed (its consumer stopped, at
        // shutdown) is remembered until another takes its queue, and a message routed to it
        // meanwhile stays in the journal, delivered at the next start. Forgetting it lost the
        // push record of a notice accepted while the process was stopping.
        let keeps = self.journaled.is_some();
        let mut held = 0;
        let mut targets: Vec<(bool, bool, mpsc::Sender<Incoming>, Arc<str>)> = Vec::new();
        {
            let mut subscribers = self.subscribers.lock().unwrap_or_else(PoisonError::into_inner);
            if subscribers.iter().any(|s| !s.is_open()) {
                forget_closed(&mut subscribers, keeps);
            }
            for s in subscribers.iter().filter(|s| s.exchange == exchange) {
                let Some((lane, tx)) = s.lane_for(routing_key) else { continue };
                if s.is_open() {
                    targets.push((lane.max_length.is_some(), keeps && s.durable, tx.clone(), s.queue.clone()));
                } else {
                    held += 1;
                }
            }
        }
        if exchange == Exchange::Ingress && targets.is_empty() {
            // In memory nothing keeps a notice no dispatcher takes: refuse rather than drop it.
            return Err(BusError::Unavailable("no dispatcher is running".into()));
        }
        let mut permits = Vec::with_capacity(targets.len());
        for (bounded, kept, tx, queue) in targets {
            let requeue = tx.clone();
            // A queue whose consumer stopped just now: held, if it is a durable one.
            let gone = usize::from(kept);
            let permit = if bounded && matches!(wait, Wait::Timeout) {
                match tx.try_reserve_owned() {
                    Ok(permit) => permit,
                    Err(mpsc::error::TrySendError::Full(_)) => return Err(BusError::QueueFull),
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        held += gone;
                        continue;
                    }
                }
            } else {
                let reserved = match wait {
                    Wait::Timeout => tokio::time::timeout(self.publish_timeout, tx.reserve_owned())
                        .await
                        .map_err(|_| BusError::Timeout(self.publish_timeout.as_millis() as u64))?,
                    Wait::Forever => tx.reserve_owned().await,
                };
                match reserved {
                    Ok(permit) => permit,
                    Err(_) => {
                        held += gone;
                        continue;
                    }
                }
            };
            permits.push((permit, requeue, queue));
        }
        Ok(Reservation {
            routing_key: routing_key.to_owned(),
            traceparent: runtime::trace::current_traceparent(),
            permits,
            held,
            journaled: self.journaled.clone(),
        })
    }

    /// Delivers `payload` to every matching subscription, or to none (see [`Self::reserve`]);
    /// a durable bus journals it first.
    pub async fn publish(&self, exchange: Exchange, routing_key: &str, payload: Bytes) -> Result<(), BusError> {
        let reservation = self.reserve(exchange, routing_key).await?;
        let journal_id = self.append(exchange, routing_key, &payload).await?;
        reservation.send(journal_id, payload);
        Ok(())
    }

    /// See [`crate::Bus::publish_delayed`]: journaled now, routed when `delay` is over (to the
    /// subscriptions there are then, waiting for room as a recovery does).
    pub async fn publish_delayed(
        &self,
        exchange: Exchange,
        routing_key: &str,
        payload: Bytes,
        delay: Duration,
    ) -> Result<(), BusError> {
        let journal_id = self.append(exchange, routing_key, &payload).await?;
        let (bus, routing_key) = (self.clone(), routing_key.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            match bus.reserve_waiting(exchange, &routing_key, Wait::Forever).await {
                Ok(reservation) => {
                    let ticket = match (&bus.journaled, journal_id) {
                        (Some(journaled), Some(id)) => Some(journaled.ticket(id, reservation.deliveries())),
                        _ => None,
                    };
                    reservation.send_with(ticket, payload);
                }
                // Journaled, it is delivered on the next start.
                Err(err) => tracing::error!(error = %err, "delayed message not delivered"),
            }
        });
        Ok(())
    }

    async fn append(&self, exchange: Exchange, routing_key: &str, payload: &[u8]) -> Result<Option<i64>, BusError> {
        let Some(journaled) = &self.journaled else { return Ok(None) };
        journaled.journal.append(exchange, routing_key, payload).await.map(Some).map_err(BusError::Unavailable)
    }

    /// Moves a delivery on to `exchange` under the same journal entry, which then also waits
    /// for the new deliveries (the dispatcher moving a notice out of the ingress queue).
    pub(crate) async fn forward(&self, incoming: &Incoming, exchange: Exchange) -> Result<(), BusError> {
        let mut reservation = self.reserve(exchange, &incoming.routing_key).await?;
        reservation.traceparent.clone_from(&incoming.traceparent);
        let ticket = match &incoming.acker {
            Acker::Memory(acker) => acker.ticket.clone(),
            Acker::Amqp(_) | Acker::Part(_) => None,
        };
        if let Some(ticket) = &ticket {
            ticket.expect(reservation.deliveries());
        }
        reservation.send_with(ticket, incoming.payload.clone());
        Ok(())
    }

    /// Delivers what the journal holds (left by a process that stopped before its consumers
    /// settled it), oldest first, to the subscriptions there are now. Call it once every
    /// consumer has subscribed; returns how many messages it delivered.
    pub async fn recover(&self) -> Result<usize, BusError> {
        let Some(journaled) = &self.journaled else { return Ok(0) };
        let pending = journaled.journal.pending().await.map_err(BusError::Unavailable)?;
        let mut count = 0;
        for entry in pending {
            match self.reserve_waiting(entry.exchange, &entry.routing_key, Wait::Forever).await {
                Ok(reservation) => {
                    let ticket = journaled.ticket(entry.id, reservation.deliveries());
                    reservation.send_with(Some(ticket), entry.payload);
                    count += 1;
                }
                // It stays in the journal for the next start.
                Err(err) => tracing::error!(id = entry.id, error = %err, "journaled message not recovered"),
            }
        }
        Ok(count)
    }

    /// Gives up on a delivery: kept in the journal's dead letters (when there is a journal) with
    /// `reason`, counted, and settled.
    pub(crate) async fn dead_letter(&self, incoming: Incoming, reason: &str) {
        let Acker::Memory(acker) = incoming.acker else { return };
        if let Some(journaled) = &self.journaled {
            let letter = DeadLetter {
                queue: incoming.queue.to_string(),
                routing_key: incoming.routing_key.clone(),
                payload: incoming.payload.clone(),
                reason: reason.to_owned(),
            };
            if let Err(err) = journaled.journal.dead_letter(&letter).await {
                // Unsettled, the message is delivered again after a restart.
                tracing::error!(error = %err, "dead letter not stored; the message stays in the journal");
                return;
            }
        }
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        acker.settle();
    }

    /// How many messages wait in the subscriptions to the queue `name` (under the prefix).
    pub fn queue_depth(&self, name: &str) -> u64 {
        let queue = self.topology.queue(name);
        let subscribers = self.subscribers.lock().unwrap_or_else(PoisonError::into_inner);
        subscribers
            .iter()
            .filter(|s| *s.queue == *queue)
            .flat_map(|s| s.lanes.iter())
            .map(|(_, tx)| (tx.max_capacity() - tx.capacity()) as u64)
            .sum()
    }

    /// A subscription to `spec`'s lanes. In memory, a durable queue is just a queue.
    pub fn subscribe(&self, spec: SubscriptionSpec) -> Subscription {
        let mut receivers = Vec::new();
        let mut lanes = Vec::new();
        for lane in spec.lanes(self.backlog) {
            let capacity = lane.max_length.map_or(self.queue_capacity, |max| max as usize);
            let (tx, rx) = mpsc::channel(capacity);
            receivers.push(rx);
            lanes.push((lane, tx));
        }
        let queue: Arc<str> = self.topology.queue(&spec.queue).into();
        self.subscribers.lock().unwrap_or_else(PoisonError::into_inner).push(Subscriber {
            queue,
            exchange: spec.exchange,
            durable: spec.kind == QueueKind::Durable,
            lanes,
        });
        let (_, ready) = tokio::sync::watch::channel(true);
        Subscription { lanes: receivers, ready }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::Bus;
    use runtime::testing::{eventually, holds};

    fn bus() -> MemoryBus {
        MemoryBus::new(&BusSettings { prefetch: 2, backlog: 2, publish_timeout_ms: 50, ..BusSettings::default() })
    }

    fn spec(exchange: Exchange, bindings: &[&str]) -> SubscriptionSpec {
        SubscriptionSpec {
            queue: "q".into(),
            kind: QueueKind::Exclusive,
            exchange,
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
        }
    }

    #[tokio::test]
    async fn notices_reach_every_subscription_and_events_follow_bindings() {
        let bus = bus();
        let mut first = bus.subscribe(spec(Exchange::Notifications, &[]));
        let mut second = bus.subscribe(spec(Exchange::Notifications, &[]));
        let mut reads = bus.subscribe(spec(Exchange::Events, &["read.*"]));
        bus.publish(Exchange::Notifications, "all.normal", Bytes::from_static(b"1")).await.unwrap();
        bus.publish(Exchange::Notifications, "custom.low", Bytes::from_static(b"2")).await.unwrap();
        bus.publish(Exchange::Events, "confirmed.custom", Bytes::from_static(b"c")).await.unwrap();
        bus.publish(Exchange::Events, "read.custom", Bytes::from_static(b"r")).await.unwrap();
        for sub in [&mut first, &mut second] {
            assert_eq!(sub.next().await.unwrap().payload, "1");
            assert_eq!(sub.next().await.unwrap().payload, "2");
        }
        assert_eq!(reads.next().await.unwrap().payload, "r");
        assert!(reads.lanes[0].try_recv().is_err(), "an unbound event arrived");
    }

    #[tokio::test]
    async fn a_full_ingress_refuses_normal_notices_while_urgent_ones_pass() {
        let bus = bus();
        // A dispatcher that is paused: it holds the ingress subscription and takes nothing.
        let _paused = bus.subscribe(spec(Exchange::Ingress, &[]));
        let mut gateway = bus.subscribe(spec(Exchange::Notifications, &[]));
        for n in [b"1", b"2"] {
            bus.publish(Exchange::Ingress, "all.normal", Bytes::from_static(n)).await.unwrap();
        }
        let err = bus.publish(Exchange::Ingress, "all.high", Bytes::new()).await.unwrap_err();
        assert!(matches!(err, BusError::QueueFull), "{err}");
        bus.publish(Exchange::Notifications, "all.urgent", Bytes::from_static(b"!")).await.unwrap();
        assert_eq!(gateway.next().await.unwrap().payload, "!");
        assert!(gateway.lanes.iter_mut().all(|lane| lane.try_recv().is_err()), "a refused notice went through");
    }

    #[tokio::test]
    async fn the_dispatcher_moves_the_backlog_on_and_urgent_notices_overtake_it() {
        let bus = Bus::Memory(bus());
        let mut gateway = bus.subscribe(spec(Exchange::Notifications, &[]));
        let paused = bus.subscribe(spec(Exchange::Ingress, &[]));
        bus.publish(Exchange::Ingress, "all.normal", Bytes::from_static(b"1")).await.unwrap();
        bus.publish(Exchange::Notifications, "custom.urgent", Bytes::from_static(b"!")).await.unwrap();
        drop(paused);
        let shutdown = tokio_util::sync::CancellationToken::new();
        bus.start_dispatcher(shutdown.clone());
        bus.publish(Exchange::Ingress, "all.normal", Bytes::from_static(b"2")).await.unwrap();
        assert_eq!(gateway.next().await.unwrap().payload, "!");
        let moved = gateway.next().await.unwrap();
        assert_eq!((moved.routing_key.as_str(), &moved.payload[..]), ("all.normal", &b"2"[..]));
        shutdown.cancel();
    }

    #[tokio::test]
    async fn without_a_dispatcher_the_ingress_refuses_instead_of_dropping() {
        let bus = bus();
        let err = bus.publish(Exchange::Ingress, "all.normal", Bytes::new()).await.unwrap_err();
        assert!(matches!(err, BusError::Unavailable(_)), "{err}");
    }

    #[tokio::test]
    async fn a_rejected_message_is_redelivered_when_requeued() {
        let bus = bus();
        let mut sub = bus.subscribe(spec(Exchange::Events, &["#"]));
        bus.publish(Exchange::Events, "read.custom", Bytes::from_static(b"e")).await.unwrap();
        sub.next().await.unwrap().reject(true).await;
        let again = sub.next().await.unwrap();
        assert!(again.redelivered);
        assert_eq!(again.payload, "e");
    }

    #[tokio::test]
    async fn dropped_subscriptions_are_forgotten() {
        let bus = bus();
        drop(bus.subscribe(spec(Exchange::Notifications, &[])));
        for _ in 0..5 {
            bus.publish(Exchange::Notifications, "all.normal", Bytes::new()).await.unwrap();
        }
        assert!(bus.subscribers.lock().unwrap().is_empty());
    }

    /// A journal in a map, standing in for the embedded database.
    #[derive(Debug, Default)]
    struct MapJournal {
        entries: Mutex<std::collections::BTreeMap<i64, crate::JournalEntry>>,
        dead: Mutex<Vec<DeadLetter>>,
    }

    impl Journal for MapJournal {
        fn append<'a>(
            &'a self,
            exchange: Exchange,
            routing_key: &'a str,
            payload: &'a [u8],
        ) -> crate::JournalFuture<'a, i64> {
            Box::pin(async move {
                let mut entries = self.entries.lock().unwrap();
                let id = entries.keys().last().map_or(1, |last| last + 1);
                let entry = crate::JournalEntry {
                    id,
                    exchange,
                    routing_key: routing_key.to_owned(),
                    payload: Bytes::copy_from_slice(payload),
                };
                entries.insert(id, entry);
                Ok(id)
            })
        }

        fn remove<'a>(&'a self, ids: &'a [i64]) -> crate::JournalFuture<'a, ()> {
            Box::pin(async move {
                let mut entries = self.entries.lock().unwrap();
                ids.iter().for_each(|id| {
                    entries.remove(id);
                });
                Ok(())
            })
        }

        fn pending(&self) -> crate::JournalFuture<'_, Vec<crate::JournalEntry>> {
            Box::pin(async move { Ok(self.entries.lock().unwrap().values().cloned().collect()) })
        }

        fn dead_letter<'a>(&'a self, letter: &'a DeadLetter) -> crate::JournalFuture<'a, ()> {
            Box::pin(async move {
                self.dead.lock().unwrap().push(letter.clone());
                Ok(())
            })
        }
    }

    fn journaled(journal: &Arc<MapJournal>, shutdown: &CancellationToken) -> Bus {
        let settings = BusSettings { prefetch: 8, backlog: 4, publish_timeout_ms: 50, ..BusSettings::default() };
        Bus::in_process(&settings, Some(journal.clone()), shutdown.clone())
    }

    async fn until_empty(journal: &MapJournal) {
        eventually("the journal to be empty", Duration::from_secs(1), || async {
            let entries = journal.entries.lock().unwrap();
            holds(entries.is_empty(), format_args!("it kept {:?}", entries.keys().collect::<Vec<_>>()))
        })
        .await;
    }

    #[tokio::test]
    async fn a_journaled_message_stays_until_every_subscription_settled_it() {
        let (journal, shutdown) = (Arc::new(MapJournal::default()), CancellationToken::new());
        let bus = journaled(&journal, &shutdown);
        let mut gateway = bus.subscribe(spec(Exchange::Notifications, &[]));
        let mut writer = bus.subscribe(spec(Exchange::Notifications, &[]));
        bus.publish(Exchange::Notifications, "all.normal", Bytes::from_static(b"1")).await.unwrap();
        assert_eq!(journal.entries.lock().unwrap().len(), 1);
        gateway.next().await.unwrap().ack().await;
        // Proving that something does not happen: a removal would follow the ack within these
        // 20 ms (it takes microseconds in process).
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(journal.entries.lock().unwrap().len(), 1, "removed before the writer settled it");
        writer.next().await.unwrap().ack().await;
        until_empty(&journal).await;
        shutdown.cancel();
    }

    #[tokio::test]
    async fn what_a_stopped_bus_left_unsettled_is_delivered_again_through_the_dispatcher() {
        let journal = Arc::new(MapJournal::default());
        let first = CancellationToken::new();
        let bus = journaled(&journal, &first);
        let mut gateway = bus.subscribe(spec(Exchange::Notifications, &[]));
        bus.start_dispatcher(first.clone());
        bus.publish(Exchange::Ingress, "custom.normal", Bytes::from_static(b"queued")).await.unwrap();
        bus.publish(Exchange::Notifications, "custom.urgent", Bytes::from_static(b"urgent")).await.unwrap();
        // Taken but never acknowledged: the process stops (is killed) first.
        let _taken = [gateway.next().await.unwrap(), gateway.next().await.unwrap()];
        first.cancel();
        drop(bus);

        let second = CancellationToken::new();
        let bus = journaled(&journal, &second);
        let mut gateway = bus.subscribe(spec(Exchange::Notifications, &[]));
        bus.start_dispatcher(second.clone());
        assert_eq!(bus.recover().await.unwrap(), 2);
        let mut again = Vec::new();
        for _ in 0..2 {
            let incoming = gateway.next().await.unwrap();
            again.push(incoming.payload.clone());
            incoming.ack().await;
        }
        again.sort();
        assert_eq!(again, [Bytes::from_static(b"queued"), Bytes::from_static(b"urgent")]);
        until_empty(&journal).await;
        second.cancel();
    }

    /// The record-writer's subscription is durable: while the process stops, its consumer may
    /// stop before the API takes its last notice in. Such a notice must stay in the journal for
    /// the record-writer of the next start, even once every live consumer has it.
    #[tokio::test]
    async fn a_notice_routed_while_a_durable_consumer_is_stopped_waits_in_the_journal_for_it() {
        let durable = |name: &str| SubscriptionSpec {
            queue: name.into(),
            kind: QueueKind::Durable,
            ..spec(Exchange::Notifications, &["#"])
        };
        let journal = Arc::new(MapJournal::default());
        let first = CancellationToken::new();
        let bus = journaled(&journal, &first);
        let mut gateway = bus.subscribe(spec(Exchange::Notifications, &[]));
        drop(bus.subscribe(durable("records")));
        bus.publish(Exchange::Notifications, "custom.normal", Bytes::from_static(b"late")).await.unwrap();
        gateway.next().await.unwrap().ack().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(journal.entries.lock().unwrap().len(), 1, "forgotten, though the records queue never had it");
        first.cancel();
        drop(bus);

        let second = CancellationToken::new();
        let bus = journaled(&journal, &second);
        let mut records = bus.subscribe(durable("records"));
        assert_eq!(bus.recover().await.unwrap(), 1);
        let incoming = records.next().await.unwrap();
        assert_eq!(incoming.payload, Bytes::from_static(b"late"));
        incoming.ack().await;
        until_empty(&journal).await;
        // A durable queue taken by a new consumer is no longer held for.
        drop(records);
        let mut records = bus.subscribe(durable("records"));
        bus.publish(Exchange::Notifications, "custom.normal", Bytes::from_static(b"next")).await.unwrap();
        records.next().await.unwrap().ack().await;
        until_empty(&journal).await;
        second.cancel();
    }

    #[tokio::test]
    async fn recovery_waits_for_room_when_the_journal_holds_more_than_the_backlog() {
        let journal = Arc::new(MapJournal::default());
        for n in 0..10_u8 {
            journal.append(Exchange::Ingress, "custom.normal", &[n]).await.unwrap();
        }
        let shutdown = CancellationToken::new();
        let bus = journaled(&journal, &shutdown);
        let mut gateway = bus.subscribe(spec(Exchange::Notifications, &[]));
        bus.start_dispatcher(shutdown.clone());
        let consumer = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..10 {
                let incoming = gateway.next().await.unwrap();
                seen.push(incoming.payload[0]);
                incoming.ack().await;
            }
            seen
        });
        assert_eq!(bus.recover().await.unwrap(), 10);
        assert_eq!(consumer.await.unwrap(), (0..10).collect::<Vec<u8>>(), "in journal order");
        until_empty(&journal).await;
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_dead_letter_is_kept_with_its_reason_and_settles_its_entry() {
        let (journal, shutdown) = (Arc::new(MapJournal::default()), CancellationToken::new());
        let bus = journaled(&journal, &shutdown);
        let mut writer = bus.subscribe(spec(Exchange::Events, &["#"]));
        bus.publish(Exchange::Events, "read.custom", Bytes::from_static(b"poison")).await.unwrap();
        bus.dead_letter(writer.next().await.unwrap(), "cannot be stored").await;
        until_empty(&journal).await;
        let dead = journal.dead.lock().unwrap().clone();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].reason.as_str(), dead[0].queue.as_str()), ("cannot be stored", "herald.q"));
        assert_eq!(bus.dead_lettered(), 1);
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_delayed_message_is_journaled_at_once_and_delivered_after_its_delay() {
        let journal = Arc::new(MapJournal::default());
        let shutdown = CancellationToken::new();
        let Bus::Memory(bus) = journaled(&journal, &shutdown) else { unreachable!() };
        let mut worker = bus.subscribe(spec(Exchange::Mobile, &["send"]));
        let started = tokio::time::Instant::now();
        bus.publish_delayed(Exchange::Mobile, "send", Bytes::from_static(b"later"), Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(journal.entries.lock().unwrap().len(), 1, "journaled before the delay is over");
        assert!(tokio::time::timeout(Duration::from_millis(150), worker.next()).await.is_err(), "delivered early");
        let incoming = worker.next().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(incoming.payload, Bytes::from_static(b"later"));
        incoming.ack().await;
        until_empty(&journal).await;
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_full_backlog_refuses_before_anything_is_journaled() {
        let (journal, shutdown) = (Arc::new(MapJournal::default()), CancellationToken::new());
        let bus = journaled(&journal, &shutdown);
        let _paused = bus.subscribe(spec(Exchange::Ingress, &[]));
        for _ in 0..4 {
            bus.publish(Exchange::Ingress, "all.normal", Bytes::new()).await.unwrap();
        }
        let err = bus.publish(Exchange::Ingress, "all.normal", Bytes::new()).await.unwrap_err();
        assert!(matches!(err, BusError::QueueFull), "{err}");
        assert_eq!(journal.entries.lock().unwrap().len(), 4);
        shutdown.cancel();
    }
}
