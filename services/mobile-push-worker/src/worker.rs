//! The worker's consumers. Notices from its queue on the notifications exchange
//! (`<prefix>.mobile-push-notices`) and alarm jobs (key `alarm` on the mobile exchange) become
//! one send per recipient device ([`crate::expand`]). Sends come from its durable queue
//! (`<prefix>.mobile-push-worker`, bound to the mobile exchange under `send` and `alarm`), at
//! most `mobile.concurrency` at a time. Each delivery is one attempt ([`Sender::attempt`]); then:
//! - sent: for a notice, a `sent` delivery event with `push_channel: mobile` goes to the records
//!   (its id made from the send's, so a redelivery records nothing twice); then acked;
//! - failed with retries left: the next attempt is published to the exchange with the retry's
//!   delay, or the provider's `Retry-After` when that is longer ([`Bus::publish_delayed`]: a TTL
//!   queue dead-lettering back on RabbitMQ, a journaled timer in process), and only then acked;
//! - dead (its last attempt, or a device that can no longer take it): moved to the dead-letter
//!   queue with the reason, which acks it;
//! - a delivery that is not a send: dead-lettered as such;
//! - a notice whose mobile fallback is due (key `fallback`): expanded to the devices of its
//!   recipients who have not acknowledged it ([`crate::expand`]);
//! - the database unavailable: requeued after a pause, the attempt neither made nor logged.
//!
//! A worker killed at any point loses nothing (a delivery is acked only once what follows it is
//! durable) and doubles nothing (an attempt already logged is not made again; the provider gets
//! the attempt's `Idempotency-Key`).

use crate::expand::{self, PAUSE};
use crate::metrics::SendMetrics;
use crate::send::{Attempted, PushSend, Sender};
use bus::{Bus, Exchange, Incoming, QueueKind, Subscription, SubscriptionSpec};
use bytes::Bytes;
use mobile::MobileStore;
use model::{DeliveryEvent, DeliveryEventType, MessageId, PushChannel, ReportChannel, TimeFormat};
use sha2::{Digest, Sha256};
use state::{ReceiptLedger, UserDirectory};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The worker's durable queue, under the bus prefix.
pub const QUEUE: &str = "mobile-push-worker";
/// The routing key of a send on the mobile exchange.
pub const SEND_KEY: &str = model::mobile::SEND_ROUTING_KEY;
/// The routing key of an alarm job on the mobile exchange.
pub const ALARM_KEY: &str = model::mobile::ALARM_ROUTING_KEY;
/// The routing key of a notice whose mobile fallback is due, on the mobile exchange.
pub const FALLBACK_KEY: &str = model::mobile::FALLBACK_ROUTING_KEY;
/// The worker's durable queue on the notifications exchange, under the bus prefix.
pub const NOTICE_QUEUE: &str = "mobile-push-notices";

/// Publishes `job` for the worker, which sends it to the tenant's active devices.
pub async fn publish_alarm(bus: &Bus, job: &model::AlarmJob) -> Result<(), bus::BusError> {
    let payload = serde_json::to_vec(job).map_err(|err| bus::BusError::Unavailable(err.to_string()))?;
    bus.publish(Exchange::Mobile, ALARM_KEY, Bytes::from(payload)).await
}

/// Publishes `send` for the worker (its first attempt, or any other).
pub async fn publish(bus: &Bus, send: &PushSend) -> Result<(), bus::BusError> {
    bus.publish(Exchange::Mobile, SEND_KEY, payload(send)).await
}

fn payload(send: &PushSend) -> Bytes {
    // A send is plain strings and numbers: serialising it cannot fail.
    Bytes::from(serde_json::to_vec(send).unwrap_or_default())
}

/// What the consumer of sends, alarm jobs and due fallbacks works with.
#[derive(Clone)]
pub struct Sends {
    /// The bus.
    pub bus: Bus,
    /// Makes the attempts.
    pub sender: Sender,
    /// The delay before each retry (the last repeated).
    pub retry_delays: Arc<[Duration]>,
    /// Who `admin` and `custom` notices are for.
    pub directory: UserDirectory,
    /// Who acknowledged which notice (for fallbacks).
    pub receipts: ReceiptLedger,
    /// How the records' events write their time.
    pub time: TimeFormat,
}

/// Consumes sends, alarm jobs and due fallbacks until `shutdown`; returns the subscription's
/// readiness.
pub fn start(sends: Sends, concurrency: usize, shutdown: CancellationToken) -> tokio::sync::watch::Receiver<bool> {
    let subscription = sends.bus.subscribe(SubscriptionSpec {
        queue: QUEUE.into(),
        kind: QueueKind::Durable,
        exchange: Exchange::Mobile,
        bindings: vec![SEND_KEY.into(), ALARM_KEY.into(), FALLBACK_KEY.into()],
    });
    let ready = subscription.readiness();
    let sends = Arc::new(sends);
    consume(subscription, concurrency, shutdown, move |incoming| {
        let sends = sends.clone();
        async move { handle(&sends, incoming).await }
    });
    ready
}

/// Consumes notices (every one: the worker's durable queue `<prefix>.mobile-push-notices` on
/// the notifications exchange) until `shutdown`, publishing a send to each recipient device of
/// those whose channels include mobile, and a timer for those with a fallback; returns the
/// subscription's readiness.
pub fn start_notices(
    bus: &Bus,
    store: MobileStore,
    directory: UserDirectory,
    receipts: ReceiptLedger,
    metrics: SendMetrics,
    concurrency: usize,
    shutdown: CancellationToken,
) -> tokio::sync::watch::Receiver<bool> {
    let notices = bus.subscribe(SubscriptionSpec {
        queue: NOTICE_QUEUE.into(),
        kind: QueueKind::Durable,
        exchange: Exchange::Notifications,
        bindings: Vec::new(),
    });
    let ready = notices.readiness();
    let bus = bus.clone();
    consume(notices, concurrency, shutdown, move |incoming| {
        let (bus, store, directory, receipts) = (bus.clone(), store.clone(), directory.clone(), receipts.clone());
        let metrics = metrics.clone();
        async move { expand::notice(&bus, &store, &directory, &receipts, &metrics, incoming).await }
    });
    ready
}

/// Runs `handle` on each delivery of `subscription`, at most `concurrency` at a time, until
/// `shutdown`; then lets those in hand finish (and be acked) before the subscription goes.
fn consume<F, Fut>(mut subscription: Subscription, concurrency: usize, shutdown: CancellationToken, handle: F)
where
    F: Fn(Incoming) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let concurrency = concurrency.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        while let Some(incoming) = subscription.next_until(&shutdown).await {
            let Ok(slot) = slots.clone().acquire_owned().await else { break };
            let handle = handle.clone();
            tokio::spawn(async move {
                handle(incoming).await;
                drop(slot);
            });
        }
        let _ = slots.acquire_many(u32::try_from(concurrency).unwrap_or(u32::MAX)).await;
        drop(subscription);
    });
}

async fn handle(sends: &Sends, incoming: Incoming) {
    if incoming.routing_key == FALLBACK_KEY {
        let (store, directory, receipts) = (sends.sender.store(), &sends.directory, &sends.receipts);
        let metrics = sends.sender.metrics();
        return expand::fallback(&sends.bus, store, directory, receipts, metrics, incoming).await;
    }
    let span =
        tracing::info_span!("mobile_send", routing_key = %incoming.routing_key, trace_id = tracing::field::Empty);
    let span = runtime::trace::continued(span, incoming.traceparent.as_deref());
    handle_in_span(sends, incoming).instrument(span).await;
}

async fn handle_in_span(sends: &Sends, incoming: Incoming) {
    let Sends { bus, sender, retry_delays, .. } = sends;
    if incoming.routing_key == ALARM_KEY {
        return expand::alarm(bus, sender.store(), incoming).await;
    }
    let send: PushSend = match serde_json::from_slice::<PushSend>(&incoming.payload) {
        Ok(send) => match send.malformed() {
            None => send,
            Some(why) => {
                tracing::warn!(%why, "a push send that cannot be logged");
                bus.dead_letter(incoming, &format!("not a valid push send: {why}")).await;
                return;
            }
        },
        Err(err) => {
            tracing::warn!(error = %err, "a delivery on the mobile queue is not a push send");
            bus.dead_letter(incoming, &format!("not a push send: {err}")).await;
            return;
        }
    };
    match sender.attempt(&send).await {
        Ok(Attempted::Sent) => match record_sent(bus, &sends.time, &send).await {
            Ok(()) => incoming.ack().await,
            Err(err) => {
                // The attempt is logged sent; the redelivery finds it so and publishes the event.
                tracing::warn!(error = %err, "the send's delivery event not published; the send is requeued");
                tokio::time::sleep(PAUSE).await;
                incoming.reject(true).await;
            }
        },
        Ok(Attempted::Dead { reason }) => {
            tracing::info!(send_id = %send.send_id, attempt = send.attempt, %reason, "push send dead");
            bus.dead_letter(incoming, &format!("attempt {}: {reason}", send.attempt)).await;
        }
        Ok(Attempted::Retry { reason, not_before }) => {
            let index = usize::try_from(send.attempt - 1).unwrap_or(0);
            let scheduled = retry_delays.get(index).or(retry_delays.last()).copied().unwrap_or(Duration::from_secs(1));
            // The provider's Retry-After (whole seconds, at most an hour) when it asks for longer.
            let delay = not_before.map_or(scheduled, |after| after.max(scheduled));
            let next = PushSend { attempt: send.attempt + 1, ..send };
            tracing::debug!(send_id = %next.send_id, attempt = next.attempt, %reason, ?delay, "push send retried later");
            match bus.publish_delayed(Exchange::Mobile, SEND_KEY, payload(&next), delay).await {
                Ok(()) => incoming.ack().await,
                Err(err) => {
                    // The attempt is logged; the redelivery finds it so and publishes the retry.
                    tracing::warn!(error = %err, "retry not published; the send is requeued");
                    tokio::time::sleep(PAUSE).await;
                    incoming.reject(true).await;
                }
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, "push send not attempted: the database is unavailable; requeued");
            tokio::time::sleep(PAUSE).await;
            incoming.reject(true).await;
        }
    }
}

/// Tells the records a notice reached `send`'s user through their phone: a `sent` event with
/// `push_channel: mobile`, its id made of the send's id (a redelivered send publishes the same
/// event, which the records take once). Alarms are not notices: they have no record.
async fn record_sent(bus: &Bus, time: &TimeFormat, send: &PushSend) -> Result<(), bus::BusError> {
    if send.alarm_id.is_some() {
        return Ok(());
    }
    let Ok(message_id) = MessageId::parse(&send.message_id) else { return Ok(()) };
    let digest = Sha256::digest(send.send_id.as_bytes());
    let event = DeliveryEvent {
        event_id: digest[..16].iter().map(|byte| format!("{byte:02x}")).collect(),
        event_type: DeliveryEventType::Sent,
        message_id,
        user_id: send.user_id,
        username: String::new(),
        channel: ReportChannel::Mobile,
        connection_id: String::new(),
        timestamp: time.format(time::OffsetDateTime::now_utc()),
        user_role: None,
        push_channel: Some(PushChannel::Mobile),
        client_ip: String::new(),
        user_agent: String::new(),
    };
    bus.publish_event(&event).await
}
