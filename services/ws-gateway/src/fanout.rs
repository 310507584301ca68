//! The gateway's bus consumer: one exclusive queue per replica bound to every notification,
//! each envelope serialised and encoded once into a WebSocket frame and handed to every worker
//! hub, which queues it on its local connections.

use crate::hub::{Hub, Notice};
use crate::outbox::SharedFrame;
use crate::transport;
use bus::{Bus, Incoming, Subscription};
use model::{DeliveryEvent, NoticeChannel, NotificationMessage, TimeFormat, WsMessage};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What to do with a delivery once handled.
#[derive(Debug)]
pub enum Outcome {
    /// Fan this notice out, then acknowledge.
    FanOut(Arc<Notice>),
    /// Not for WebSocket clients (a mobile-only notice): acknowledge.
    Skip,
    /// Never processable (a malformed envelope): to the dead-letter queue, with why.
    DeadLetter(String),
}

/// Handles one delivery: parse, and build the frame once.
pub fn handle(incoming: &Incoming) -> Outcome {
    let message: NotificationMessage = match serde_json::from_slice(&incoming.payload) {
        Ok(message) => message,
        Err(err) => return Outcome::DeadLetter(format!("malformed envelope: {err}")),
    };
    if !message.channels.has(NoticeChannel::Websocket) {
        return Outcome::Skip;
    }
    let text = match message.client_frame().to_json() {
        Ok(text) => text,
        Err(err) => return Outcome::DeadLetter(format!("the client frame cannot be built: {err}")),
    };
    let frame = Arc::new(SharedFrame { message_id: message.message_id.clone(), bytes: transport::text_frame(text) });
    Outcome::FanOut(Arc::new(Notice { message, frame }))
}

/// Consumes `subscription` until shutdown, acking each delivery once every worker has it.
pub async fn run(hub: Arc<Hub>, bus: Bus, mut subscription: Subscription, shutdown: CancellationToken) {
    while let Some(incoming) = subscription.next_until(&shutdown).await {
        let span =
            tracing::info_span!("ws_fan_out", message_id = tracing::field::Empty, trace_id = tracing::field::Empty);
        let span = runtime::trace::continued(span, incoming.traceparent.as_deref());
        match handle(&incoming) {
            Outcome::FanOut(notice) => {
                span.record("message_id", notice.frame.message_id.as_str());
                tracing::debug!(parent: &span, "fanning out");
                hub.fan_out(notice).instrument(span).await;
                incoming.ack().await;
            }
            Outcome::Skip => incoming.ack().await,
            Outcome::DeadLetter(reason) => bus.dead_letter(incoming, &reason).await,
        }
    }
}

/// Consumes read and confirmed events and tells the user's other local devices (a `sync`
/// frame), so a device coming online is not shown what was already dealt with elsewhere.
pub async fn run_sync(
    hub: Arc<Hub>,
    bus: Bus,
    replica: Arc<str>,
    time: TimeFormat,
    mut subscription: Subscription,
    shutdown: CancellationToken,
) {
    while let Some(incoming) = subscription.next_until(&shutdown).await {
        match serde_json::from_slice::<DeliveryEvent>(&incoming.payload) {
            Ok(event) => {
                // The device the receipt came from knows already.
                let origin = event
                    .connection_id
                    .strip_prefix(&*replica)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .and_then(|n| n.parse().ok());
                let sync = WsMessage::sync(event.event_type, event.message_id.as_str(), time.now());
                match sync.to_json() {
                    Ok(text) => {
                        hub.send_to_user(event.user_id, origin, transport::text_frame(text)).await;
                        incoming.ack().await;
                    }
                    Err(err) => bus.dead_letter(incoming, &format!("the sync frame cannot be built: {err}")).await,
                }
            }
            Err(err) => bus.dead_letter(incoming, &format!("malformed delivery event: {err}")).await,
        }
    }
}
