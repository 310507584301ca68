//! How an accepted notice is made durable before the API answers, chosen once per process:
//!
//! - **Brokered** (RabbitMQ): the recipients' inbox copies and the audience are written first
//!   (and confirmed by `redis.wait_replicas` replicas), then the envelope is published with a
//!   confirm; if either fails the copies are withdrawn. Once the broker confirmed, its queues
//!   keep the notice.
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
                if let Err(err) = stored {
                    // Some copies may have been written (or written and not confirmed by the
                    // replicas `redis.wait_replicas` asks for).
                    withdraw(&api.stores.inbox, recipients, &message.message_id).await;
                    return Err(ApiError::Inbox(err, boxed()));
                }
                remembered.map_err(|err| ApiError::Store(err.to_string(), boxed()))?;
                if let Err(err) = api.bus.publish_notification(message).await {
                    withdraw(&api.stores.inbox, recipients, &message.message_id).await;
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

/// How long withdrawals that failed are retried in the background, and how they wait.
const WITHDRAW_FOR: std::time::Duration = std::time::Duration::from_secs(30);
const WITHDRAW_RETRY: runtime::RetryPolicy =
    runtime::RetryPolicy::new(std::time::Duration::from_millis(200), std::time::Duration::from_secs(5));
/// Notices whose withdrawals may be retried in the background at once: a long outage refuses
/// many notices, and each would otherwise keep a task.
static RETRIED_WITHDRAWALS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1024);

/// Takes back the offline copies of a notice that was not accepted, so nobody is replayed a
/// notice its sender was told failed. Those that cannot be withdrawn now (Redis failing over:
/// the copy may live on in the replica about to be promoted) are retried in the background for
/// [`WITHDRAW_FOR`]; one still there after that is at worst a late delivery.
async fn withdraw(inbox: &state::OfflineInbox, recipients: &[UserId], message_id: &model::MessageId) {
    let failed = withdraw_once(inbox, recipients, message_id).await;
    if failed.is_empty() {
        return;
    }
    let Ok(permit) = RETRIED_WITHDRAWALS.try_acquire() else {
        tracing::warn!(%message_id, left = failed.len(), "could not withdraw every offline copy of a refused notice");
        return;
    };
    let (inbox, message_id) = (inbox.clone(), message_id.clone());
    tokio::spawn(async move {
        let _permit = permit;
        let deadline = tokio::time::Instant::now() + WITHDRAW_FOR;
        let mut backoff = WITHDRAW_RETRY.start();
        let mut pending = failed;
        while !pending.is_empty() {
            let delay = backoff.next_delay();
            if tokio::time::Instant::now() + delay > deadline {
                tracing::warn!(%message_id, left = pending.len(), "could not withdraw every offline copy of a refused notice");
                return;
            }
            tokio::time::sleep(delay).await;
            pending = withdraw_once(&inbox, &pending, &message_id).await;
        }
    });
}

/// One attempt at [`withdraw`]: the recipients whose copy could not be withdrawn.
async fn withdraw_once(
    inbox: &state::OfflineInbox,
    recipients: &[UserId],
    message_id: &model::MessageId,
) -> Vec<UserId> {
    let withdrawals = recipients.iter().map(|user| inbox.acknowledge(*user, message_id));
    let outcomes = futures_util::future::join_all(withdrawals).await;
    recipients.iter().zip(outcomes).filter(|(_, outcome)| outcome.is_err()).map(|(user, _)| *user).collect()
}
