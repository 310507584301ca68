//! The in-process bus for the all-in-one binary: the same topology and topic routing as
//! RabbitMQ, in memory. Bounded like the broker's queues; nothing survives a restart, which is
//! the embedded mode's documented trade-off.

use crate::topic::topic_matches;
use crate::{Acker, BusError, Exchange, Incoming, Subscription, SubscriptionSpec, Topology};
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
    publish_timeout: Duration,
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
}

#[derive(Debug)]
struct Subscriber {
    exchange: Exchange,
    bindings: Vec<String>,
    tx: mpsc::Sender<Incoming>,
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
            publish_timeout: Duration::from_millis(settings.publish_timeout_ms),
            subscribers: Arc::default(),
        }
    }

    /// The names this bus uses.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Delivers `payload` to every matching subscription, waiting for room in each queue up to
    /// the publish timeout.
    pub async fn publish(&self, exchange: Exchange, routing_key: &str, payload: Bytes) -> Result<(), BusError> {
        let targets: Vec<mpsc::Sender<Incoming>> = {
            let mut subscribers = self.subscribers.lock().unwrap_or_else(PoisonError::into_inner);
            subscribers.retain(|s| !s.tx.is_closed());
            subscribers
                .iter()
                .filter(|s| s.exchange == exchange && s.bindings.iter().any(|b| topic_matches(b, routing_key)))
                .map(|s| s.tx.clone())
                .collect()
        };
        for tx in targets {
            let incoming = Incoming {
                routing_key: routing_key.to_owned(),
                payload: payload.clone(),
                redelivered: false,
                acker: Acker::Memory(Requeue(tx.clone())),
            };
            match tx.send_timeout(incoming, self.publish_timeout).await {
                Ok(()) => {}
                Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                    return Err(BusError::Timeout(self.publish_timeout.as_millis() as u64));
                }
                // The consumer stopped between the lookup and the send: nobody to deliver to.
                Err(mpsc::error::SendTimeoutError::Closed(_)) => {}
            }
        }
        Ok(())
    }

    /// A subscription to `spec`'s bindings. In memory, a durable queue is just a queue.
    pub fn subscribe(&self, spec: SubscriptionSpec) -> Subscription {
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let subscriber = Subscriber { exchange: spec.exchange, bindings: spec.bindings, tx };
        self.subscribers.lock().unwrap_or_else(PoisonError::into_inner).push(subscriber);
        let (_, ready) = tokio::sync::watch::channel(true);
        Subscription { rx, ready }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueueKind;

    fn bus() -> MemoryBus {
        MemoryBus::new(&BusSettings { prefetch: 2, publish_timeout_ms: 50, ..BusSettings::default() })
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
    async fn messages_reach_every_matching_subscription_in_order() {
        let bus = bus();
        let mut all = bus.subscribe(spec(Exchange::Notifications, &["#"]));
        let mut urgent = bus.subscribe(spec(Exchange::Notifications, &["*.urgent"]));
        let mut events = bus.subscribe(spec(Exchange::Events, &["#"]));
        bus.publish(Exchange::Notifications, "all.normal", Bytes::from_static(b"1")).await.unwrap();
        bus.publish(Exchange::Notifications, "custom.urgent", Bytes::from_static(b"2")).await.unwrap();
        assert_eq!(all.next().await.unwrap().payload, "1");
        assert_eq!(all.next().await.unwrap().payload, "2");
        let got = urgent.next().await.unwrap();
        assert_eq!((got.routing_key.as_str(), &got.payload[..]), ("custom.urgent", &b"2"[..]));
        assert!(events.rx.try_recv().is_err(), "events exchange got a notification");
    }

    #[tokio::test]
    async fn a_full_queue_times_the_publish_out_instead_of_growing() {
        let bus = bus();
        let _slow = bus.subscribe(spec(Exchange::Notifications, &["#"]));
        for _ in 0..2 {
            bus.publish(Exchange::Notifications, "all.normal", Bytes::new()).await.unwrap();
        }
        let err = bus.publish(Exchange::Notifications, "all.normal", Bytes::new()).await.unwrap_err();
        assert!(matches!(err, BusError::Timeout(50)));
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
        drop(bus.subscribe(spec(Exchange::Notifications, &["#"])));
        for _ in 0..5 {
            bus.publish(Exchange::Notifications, "all.normal", Bytes::new()).await.unwrap();
        }
        assert!(bus.subscribers.lock().unwrap().is_empty());
    }
}
