//! Receipts already recorded: the first `delivered`, `read` or `confirmed` a user reports about a
//! notice from one device (a WebSocket connection, or the REST API) is an event; a repeat changes
//! nothing, so a client that acks in a loop writes one log entry and sends one sync frame. Kept
//! for [`RETENTION`] in Redis (`receipt:{message_id}:{user_id}:{event}:{device}`), in the database
//! (`herald_receipts`), or in process.

use crate::settings::{RedisSettings, StateBackend};
use crate::{LiveState, OfflineInbox};
use bus::{Bus, BusError};
use fred::prelude::*;
use model::{DeliveryEvent, DeliveryEventType, MessageId, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a receipt is remembered: as long as the records it feeds.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long Redis remembers that a user acknowledged a notice at all (the set
/// `acked:{message_id}`, read by the mobile fallback): past the longest fallback.
pub const ACKNOWLEDGED_RETENTION: Duration = Duration::from_secs(model::MAX_FALLBACK_SECS as u64 + 3600);
/// The most receipts the in-process ledger holds; past it receipts are refused.
pub const MEMORY_CAPACITY: usize = 100_000;

/// The ledger failed; the receipt was not recorded.
#[derive(Debug, thiserror::Error)]
#[error("the receipt ledger is unavailable: {0}")]
pub struct ReceiptError(String);

impl From<fred::error::Error> for ReceiptError {
    fn from(err: fred::error::Error) -> Self {
        Self(err.to_string())
    }
}

impl From<sea_orm::DbErr> for ReceiptError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self(err.to_string())
    }
}

/// Why a receipt was not recorded; the client should send it again.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The ledger could not say whether it is the first.
    #[error(transparent)]
    Ledger(#[from] ReceiptError),
    /// Its event could not be published.
    #[error("the receipt's event was not published: {0}")]
    Publish(#[source] BusError),
}

/// Records a receipt, the same way wherever it came from (a WebSocket frame, the REST API): the
/// first time `device` reports it, `event` is published for the record-writer and the user's
/// other devices; then the user's inbox entry goes (nothing to replay any more). An event that
/// could not be published is forgotten again and the inbox entry kept, so the client's retry
/// counts, and a client that does not retry acknowledges the notice again when it is replayed:
/// a receipt is lost no more than a notice is.
pub async fn record(
    inbox: &OfflineInbox,
    ledger: &ReceiptLedger,
    bus: &Bus,
    event: &DeliveryEvent,
    device: &str,
) -> Result<(), RecordError> {
    let receipt = Receipt { message_id: &event.message_id, user_id: event.user_id, event: event.event_type, device };
    // A repeat: the event is out already.
    if ledger.first(receipt).await?
        && let Err(err) = bus.publish_event(event).await
    {
        if let Err(forget) = ledger.forget(receipt).await {
            tracing::warn!(error = %forget, "receipt not forgotten; a repeat will not be recorded");
        }
        return Err(RecordError::Publish(err));
    }
    if let Err(err) = inbox.acknowledge(event.user_id, &event.message_id).await {
        tracing::warn!(error = %err, message_id = %event.message_id, "inbox entry not cleared; the notice may replay");
    }
    Ok(())
}

/// One receipt: who reported what about which notice, from where.
#[derive(Clone, Copy, Debug)]
pub struct Receipt<'a> {
    /// The notice.
    pub message_id: &'a MessageId,
    /// The user.
    pub user_id: UserId,
    /// What they reported.
    pub event: DeliveryEventType,
    /// The device: a connection id, or `rest`.
    pub device: &'a str,
}

impl Receipt<'_> {
    fn key(&self) -> String {
        format!("{}:{}:{}:{}", self.message_id, self.user_id, self.event, self.device)
    }
}

/// The receipts recorded so far. Cheap to clone.
#[derive(Clone)]
pub enum ReceiptLedger {
    /// Redis, shared by every replica.
    Redis {
        /// The client.
        client: Client,
        /// The key prefix.
        key_prefix: String,
    },
    /// The relational database (the all-in-one without Redis).
    Sql(LiveState),
    /// In process, lost on restart: for tests.
    Memory(Arc<Mutex<HashMap<String, Instant>>>),
}

impl std::fmt::Debug for ReceiptLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReceiptLedger::Redis { .. } => "ReceiptLedger::Redis",
            ReceiptLedger::Sql(_) => "ReceiptLedger::Sql",
            ReceiptLedger::Memory(_) => "ReceiptLedger::Memory",
        })
    }
}

impl ReceiptLedger {
    /// The ledger `redis.url` names (in the database: see `Stores::on`).
    pub fn start(redis: &RedisSettings) -> Result<Self, ReceiptError> {
        match redis.backend() {
            StateBackend::Memory => Ok(ReceiptLedger::Memory(Arc::default())),
            StateBackend::Redis(_) => {
                let client = crate::redis::connect(redis).map_err(ReceiptError)?;
                Ok(ReceiptLedger::Redis { client, key_prefix: redis.key_prefix.clone() })
            }
            StateBackend::Database => Err(ReceiptError("receipts in the database are opened with Stores::on".into())),
        }
    }

    /// Records `receipt`; returns whether it is the first of its kind (an event to publish).
    pub async fn first(&self, receipt: Receipt<'_>) -> Result<bool, ReceiptError> {
        match self {
            ReceiptLedger::Redis { client, key_prefix } => {
                // One round trip: the receipt itself, and the user in the notice's set of those
                // who acknowledged it (what `acknowledged` reads without scanning receipts).
                let expiry = Some(Expiration::PX(RETENTION.as_millis() as i64));
                let name = format!("{key_prefix}receipt:{}", receipt.key());
                let acked = acknowledged_key(key_prefix, receipt.message_id);
                let pipeline = client.pipeline();
                let () = pipeline.set(name, 1, expiry, Some(SetOptions::NX), false).await?;
                let () = pipeline.sadd(&acked, receipt.user_id).await?;
                let () = pipeline.pexpire(&acked, ACKNOWLEDGED_RETENTION.as_millis() as i64, None).await?;
                let results: Vec<Value> = pipeline.all().await?;
                Ok(results.first().is_some_and(|set| !set.is_null()))
            }
            ReceiptLedger::Sql(state) => Ok(state
                .first_receipt(receipt.message_id, receipt.user_id, receipt.event.as_str(), receipt.device, RETENTION)
                .await?),
            ReceiptLedger::Memory(seen) => {
                let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                if seen.len() >= MEMORY_CAPACITY {
                    seen.retain(|_, expires| *expires > now);
                }
                let key = receipt.key();
                if seen.get(&key).is_some_and(|expires| *expires > now) {
                    return Ok(false);
                }
                if seen.len() >= MEMORY_CAPACITY {
                    return Err(ReceiptError(format!("the in-process receipt ledger is full ({MEMORY_CAPACITY})")));
                }
                seen.insert(key, now + RETENTION);
                Ok(true)
            }
        }
    }

    /// Which of `users` acknowledged `message_id` (a receipt of any event from any device).
    /// In Redis a receipt forgotten because its event was not published still counts (the
    /// user did see the notice, and their client sends it again); in the database it counts
    /// again once it is sent again.
    pub async fn acknowledged(
        &self,
        message_id: &MessageId,
        users: &[UserId],
    ) -> Result<HashSet<UserId>, ReceiptError> {
        if users.is_empty() {
            return Ok(HashSet::new());
        }
        match self {
            ReceiptLedger::Redis { client, key_prefix } => {
                let members: Vec<i64> = users.to_vec();
                let flags: Vec<bool> = client.smismember(acknowledged_key(key_prefix, message_id), members).await?;
                Ok(users.iter().zip(flags).filter(|(_, acked)| *acked).map(|(user, _)| *user).collect())
            }
            ReceiptLedger::Sql(state) => Ok(state.acknowledged(message_id, users).await?),
            ReceiptLedger::Memory(seen) => {
                let seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                Ok(users
                    .iter()
                    .copied()
                    .filter(|user| {
                        let prefix = format!("{message_id}:{user}:");
                        seen.iter().any(|(key, expires)| key.starts_with(&prefix) && *expires > now)
                    })
                    .collect())
            }
        }
    }

    /// Forgets `receipt` (its event could not be published: a repeat must count).
    pub async fn forget(&self, receipt: Receipt<'_>) -> Result<(), ReceiptError> {
        match self {
            ReceiptLedger::Redis { client, key_prefix } => {
                let _: i64 = client.del(format!("{key_prefix}receipt:{}", receipt.key())).await?;
            }
            ReceiptLedger::Sql(state) => {
                state
                    .forget_receipt(receipt.message_id, receipt.user_id, receipt.event.as_str(), receipt.device)
                    .await?
            }
            ReceiptLedger::Memory(seen) => {
                seen.lock().unwrap_or_else(PoisonError::into_inner).remove(&receipt.key());
            }
        }
        Ok(())
    }

    /// Whether the ledger answers right now (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        match self {
            ReceiptLedger::Redis { client, .. } => client.is_connected(),
            ReceiptLedger::Sql(_) | ReceiptLedger::Memory(_) => true,
        }
    }
}

/// The set of users who acknowledged `message_id`.
fn acknowledged_key(key_prefix: &str, message_id: &MessageId) -> String {
    format!("{key_prefix}acked:{message_id}")
}
