//! How an accepted notice is made durable before the API answers, chosen once per process:
//!
//! - **Brokered** (RabbitMQ): the recipients' inbox copies and the audience are written first,
//!   then the envelope is published with a confirm; if the publish fails the copies are
//!   withdrawn. Once the broker confirmed, its queues keep the notice.
//! - **Embedded** (the all-in-one: the in-process bus journaled in the database): a place is
//!   reserved in every queue the notice goes to (a full backlog refuses it here, before anything
//!   is written), then the inbox copies, the audience and the bus journal entry are written in
//!   one transaction, then the notice is handed to the queues. A process killed at any point
//!   either never wrote the notice (and never answered 200) or finds it in the journal at the
//!   next start.

use crate::IngestApi;
use crate::error::{ApiError, NoticeContext};
use bus::Bus;
use bus::memory::MemoryBus;
use model::{NotificationMessage, UserId};
use state::live::JournalRow;
use state::{LiveState, Stores};

/// The way notices are made durable here.
#[derive(Clone, Debug)]
pub(crate) enum Intake {
    /// Inbox and audience stores, then the broker.
    Brokered,
    /// One database transaction, then the journaled in-process bus.
    Embedded {
        /// Where the transaction goes.
        live: LiveState,
        /// The journaled bus.
        bus: MemoryBus,
    },
}

impl Intake {
    /// The intake `bus` and `stores` allow.
    pub(crate) fn choose(bus: &Bus, stores: &Stores) -> Self {
        match (bus, &stores.live) {
            (Bus::Memory(memory), Some(live)) if memory.is_durable() => {
                Intake::Embedded { live: live.clone(), bus: memory.clone() }
            }
            _ => Intake::Brokered,
        }
    }

    /// Makes `message` durable with its inbox copies for `recipients` and its audience; an error
    /// means nothing was accepted.
    pub(crate) async fn accept(
        &self,
        api: &IngestApi,
        message: &NotificationMessage,
        recipients: &[UserId],
        context: &NoticeContext,
    ) -> Result<(), ApiError> {
        let boxed = || Box::new(context.clone());
        let entry = message.offline_entry(api.time.now());
        match self {
            Intake::Brokered => {
                // Offline copies first: once the bus has the message, a recipient who is offline
                // (or reconnecting) must find it in their inbox.
                // Both at once: they go to Redis together, in one round trip.
                let audience = message.audience();
                let (stored, remembered) = tokio::join!(
                    api.stores.inbox.store(recipients, &entry),
                    api.stores.audience.remember(&message.message_id, &audience)
                );
                stored.map_err(|err| ApiError::Inbox(err, boxed()))?;
                remembered.map_err(|err| ApiError::Store(err.to_string(), boxed()))?;
                if let Err(err) = api.bus.publish_notification(message).await {
                    // Not accepted: take the copies back so nobody is replayed a notice the
                    // sender was told failed. Best effort; a leftover copy is at worst a late
                    // delivery.
                    let withdrawals =
                        recipients.iter().map(|user| api.stores.inbox.acknowledge(*user, &message.message_id));
                    if futures_util::future::join_all(withdrawals).await.iter().any(Result::is_err) {
                        tracing::warn!("could not withdraw every offline copy of a failed notice");
                    }
                    return Err(ApiError::Publish(err, boxed()));
                }
                Ok(())
            }
            Intake::Embedded { live, bus } => {
                let (exchange, routing_key) = bus::notification_route(message);
                let payload = bus::notification_payload(message).map_err(|err| ApiError::Publish(err, boxed()))?;
                let reservation =
                    bus.reserve(exchange, &routing_key).await.map_err(|err| ApiError::Publish(err, boxed()))?;
                let entry = serde_json::to_string(&entry).map_err(|err| ApiError::Store(err.to_string(), boxed()))?;
                let journal = JournalRow { exchange, routing_key: &routing_key, payload: &payload };
                let journal_id = live
                    .accept_notice(
                        &message.message_id,
                        recipients,
                        &entry,
                        &message.audience(),
                        state::audience::RETENTION,
                        journal,
                    )
                    .await
                    .map_err(|err| ApiError::Store(err.to_string(), boxed()))?;
                reservation.send(Some(journal_id), payload);
                Ok(())
            }
        }
    }
}
