//! The in-process bus for the all-in-one binary: the same topology and topic routing as
//! RabbitMQ, in memory. Bounded like the broker's queues; nothing survives a restart, which is
//! the embedded mode's documented trade-off.

use crate::topic::topic_matches;
use crate::{Acker, BusError, Exchange, Incoming, Lane, Subscription, SubscriptionSpec, Topology};
use bytes::Bytes;
use runtime::BusSettings;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;

/// The in-process bus. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MemoryBus {
    topology: Topology,
    queue_capacity: usize,
    backlog: u32,
    publish_timeout: Duration,
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
}

#[derive(Debug)]
struct Subscriber {
    exchange: Exchange,
    lanes: Vec<(Lane, mpsc::Sender<Incoming>)>,
}

impl Subscriber {
    /// The lane a routing key goes to, if any.
    fn lane_for(&self, routing_key: &str) -> Option<&(Lane, mpsc::Sender<Incoming>)> {
        if self.exchange == Exchange::Ingress {
            // The ingress queue is addressed by name and takes every routing key.
            return self.lanes.first();
        }
        self.lanes.iter().find(|(lane, _)| lane.bindings.iter().any(|b| topic_matches(b, routing_key)))
    }
}

/// Where a rejected in-process message goes back to.
#[derive(Clone, Debug)]
pub struct Requeue(mpsc::Sender<Incoming>);

impl Requeue {
    pub(crate) async fn send(&self, routing_key: String, payload: Bytes) {
        let incoming = Incoming { routing_key, payload, redelivered: true, acker: Acker::Memory(self.clone()) };
        // The subscription is gone when this fails: the message has no consumer left.
        let _ = self.0.send(incoming).await;
    }
}

impl MemoryBus {
    /// An empty bus; queues hold `settings.prefetch` messages each.
    pub fn new(settings: &BusSettings) -> Self {
        Self {
            topology: Topology::new(settings.prefix.clone()),
            queue_capacity: usize::from(settings.prefetch).max(1),
            backlog: settings.backlog.max(1),
            publish_timeout: Duration::from_millis(settings.publish_timeout_ms),
            subscribers: Arc::default(),
        }
    }

    /// The names this bus uses.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Delivers `payload` to every matching subscription, or to none: a bounded lane that is
    /// full refuses the whole publish with [`BusError::QueueFull`]; an unbounded one is waited on
    /// up to the publish timeout.
    pub async fn publish(&self, exchange: Exchange, routing_key: &str, payload: Bytes) -> Result<(), BusError> {
        let targets: Vec<(bool, mpsc::Sender<Incoming>)> = {
            let mut subscribers = self.subscribers.lock().unwrap_or_else(PoisonError::into_inner);
            subscribers.retain(|s| s.lanes.iter().all(|(_, tx)| !tx.is_closed()));
            subscribers
                .iter()
                .filter(|s| s.exchange == exchange)
                .filter_map(|s| s.lane_for(routing_key))
                .map(|(lane, tx)| (lane.max_length.is_some(), tx.clone()))
                .collect()
        };
        if exchange == Exchange::Ingress && targets.is_empty() {
            // In memory nothing keeps a notice no dispatcher takes: refuse rather than drop it.
            return Err(BusError::Unavailable("no dispatcher is running".into()));
        }
        // Reserve a place everywhere first, so a full lane refuses the message for all.
        let mut permits = Vec::with_capacity(targets.len());
        for (bounded, tx) in &targets {
            let permit = if *bounded {
                match tx.try_reserve() {
                    Ok(permit) => permit,
                    Err(mpsc::error::TrySendError::Full(())) => return Err(BusError::QueueFull),
                    Err(mpsc::error::TrySendError::Closed(())) => continue,
                }
            } else {
                match tokio::time::timeout(self.publish_timeout, tx.reserve()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) => continue,
                    Err(_) => return Err(BusError::Timeout(self.publish_timeout.as_millis() as u64)),
                }
            };
            permits.push((permit, tx.clone()));
        }
        for (permit, tx) in permits {
            permit.send(Incoming {
                routing_key: routing_key.to_owned(),
                payload: payload.clone(),
                redelivered: false,
                acker: Acker::Memory(Requeue(tx)),
            });
        }
        Ok(())
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
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Subscriber { exchange: spec.exchange, lanes });
        let (_, ready) = tokio::sync::watch::channel(true);
        Subscription { lanes: receivers, ready }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bus, QueueKind};

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
}
