//! Who each notice was for, remembered so a receipt can be checked: a user may mark read or
//! confirm only a notice addressed to them. Kept for `RETENTION` (the records' 30 days) under
//! `audience:{message_id}` in Redis, in the database (`herald_audiences`), or in process.

use crate::LiveState;
use crate::settings::{RedisSettings, StateBackend};
use fred::prelude::*;
use model::{Audience, MessageId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an audience is remembered.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most audiences the in-process store holds; past it a notice is refused.
pub const MEMORY_CAPACITY: usize = 100_000;

/// The store failed.
#[derive(Debug, thiserror::Error)]
#[error("the audience store is unavailable: {0}")]
pub struct AudienceError(String);

impl From<fred::error::Error> for AudienceError {
    fn from(err: fred::error::Error) -> Self {
        Self(err.to_string())
    }
}

impl From<sea_orm::DbErr> for AudienceError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self(err.to_string())
    }
}

/// Audiences in Redis, in the database or in process. Cheap to clone.
#[derive(Clone)]
pub enum AudienceStore {
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
    Memory(Arc<Mutex<HashMap<MessageId, (Audience, Instant)>>>),
}

impl std::fmt::Debug for AudienceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AudienceStore::Redis { .. } => "AudienceStore::Redis",
            AudienceStore::Sql(_) => "AudienceStore::Sql",
            AudienceStore::Memory(_) => "AudienceStore::Memory",
        })
    }
}

impl AudienceStore {
    /// The store `redis.url` names (in the database: see `Stores::on`).
    pub fn start(redis: &RedisSettings) -> Result<Self, AudienceError> {
        match redis.backend() {
            StateBackend::Memory => Ok(AudienceStore::Memory(Arc::default())),
            StateBackend::Redis(_) => {
                let client = crate::redis::connect(redis).map_err(AudienceError)?;
                Ok(AudienceStore::Redis { client, key_prefix: redis.key_prefix.clone() })
            }
            StateBackend::Database => Err(AudienceError("audiences in the database are opened with Stores::on".into())),
        }
    }

    /// Remembers who `message_id` is for.
    pub async fn remember(&self, message_id: &MessageId, audience: &Audience) -> Result<(), AudienceError> {
        match self {
            AudienceStore::Redis { client, key_prefix } => {
                let value = serde_json::to_string(audience).map_err(|err| AudienceError(err.to_string()))?;
                let expiry = Some(Expiration::EX(RETENTION.as_secs() as i64));
                let _: Option<String> = client.set(key(key_prefix, message_id), value, expiry, None, false).await?;
            }
            AudienceStore::Sql(state) => state.remember(message_id, audience, RETENTION).await?,
            AudienceStore::Memory(audiences) => {
                let mut audiences = audiences.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                if audiences.len() >= MEMORY_CAPACITY {
                    audiences.retain(|_, (_, expires)| *expires > now);
                }
                if audiences.len() >= MEMORY_CAPACITY {
                    return Err(AudienceError(format!("the in-process audiences are full ({MEMORY_CAPACITY})")));
                }
                audiences.insert(message_id.clone(), (audience.clone(), now + RETENTION));
            }
        }
        Ok(())
    }

    /// Who `message_id` was for; `None` for a message Herald does not know (or no longer).
    pub async fn lookup(&self, message_id: &MessageId) -> Result<Option<Audience>, AudienceError> {
        match self {
            AudienceStore::Redis { client, key_prefix } => {
                let value: Option<String> = client.get(key(key_prefix, message_id)).await?;
                Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
            }
            AudienceStore::Sql(state) => Ok(state.lookup(message_id).await?),
            AudienceStore::Memory(audiences) => {
                let audiences = audiences.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(audiences.get(message_id).filter(|(_, expires)| *expires > Instant::now()).map(|(a, _)| a.clone()))
            }
        }
    }

    /// Forgets `message_id` (tests and operators).
    pub async fn forget(&self, message_id: &MessageId) -> Result<(), AudienceError> {
        match self {
            AudienceStore::Redis { client, key_prefix } => {
                let _: i64 = client.del(key(key_prefix, message_id)).await?;
            }
            AudienceStore::Sql(state) => state.forget_audience(message_id).await?,
            AudienceStore::Memory(audiences) => {
                audiences.lock().unwrap_or_else(PoisonError::into_inner).remove(message_id);
            }
        }
        Ok(())
    }

    /// Whether the store answers right now (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        match self {
            AudienceStore::Redis { client, .. } => client.is_connected(),
            AudienceStore::Sql(_) | AudienceStore::Memory(_) => true,
        }
    }

    /// Waits until the store answers, for at most `limit`.
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        match self {
            AudienceStore::Redis { client, .. } => crate::redis::wait_connected(client, limit).await,
            AudienceStore::Sql(_) | AudienceStore::Memory(_) => true,
        }
    }
}

fn key(prefix: &str, message_id: &MessageId) -> String {
    format!("{prefix}audience:{message_id}")
}
