//! Idempotency keys: a sender's repeat of a request within the retention (24 hours) gets the
//! first answer back instead of being carried out again.
//!
//! A key is claimed before the work starts (so a concurrent duplicate is told the first is
//! still running), completed with the answer when it succeeds, and released when it fails (so a
//! retry is carried out). The request's fingerprint is kept beside the answer: the same key with
//! a different request is refused rather than answered with the wrong result.

use fred::prelude::*;
use runtime::RedisSettings;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an answer is remembered.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long a claim may stay unfinished (a crashed request) before the key is free again.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(60);
const PENDING: &str = "pending";

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: carry the request out, then `complete` or `release` it.
    New,
    /// The same request finished before; this was its answer.
    Done(String),
    /// The same key is being worked on right now.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// The store failed; the request should not be carried out unguarded.
#[derive(Debug, thiserror::Error)]
#[error("the idempotency store is unavailable: {0}")]
pub struct IdempotencyError(String);

impl From<fred::error::Error> for IdempotencyError {
    fn from(err: fred::error::Error) -> Self {
        Self(err.to_string())
    }
}

/// Idempotency keys in Redis or in process. Cheap to clone.
#[derive(Clone, Debug)]
pub enum IdempotencyStore {
    /// Redis, shared by every replica.
    Redis(RedisKeys),
    /// In process, for the all-in-one binary.
    Memory(MemoryKeys),
}

/// Keys in Redis: `{prefix}idempotency:{scope}:{key}` holds `pending:{fingerprint}` or
/// `{fingerprint}\n{answer}`.
#[derive(Clone)]
pub struct RedisKeys {
    client: Client,
    key_prefix: String,
}

impl std::fmt::Debug for RedisKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKeys").field("key_prefix", &self.key_prefix).finish_non_exhaustive()
    }
}

/// Keys in process.
#[derive(Clone, Debug, Default)]
pub struct MemoryKeys {
    entries: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

fn pending(fingerprint: &str) -> String {
    format!("{PENDING}:{fingerprint}")
}

fn done(fingerprint: &str, answer: &str) -> String {
    format!("{fingerprint}\n{answer}")
}

/// Interprets a stored value for a request with `fingerprint`.
fn interpret(stored: &str, fingerprint: &str) -> Claim {
    if let Some(claimed) = stored.strip_prefix(PENDING).and_then(|rest| rest.strip_prefix(':')) {
        return if claimed == fingerprint { Claim::InProgress } else { Claim::Mismatch };
    }
    match stored.split_once('\n') {
        Some((stored_fingerprint, answer)) if stored_fingerprint == fingerprint => Claim::Done(answer.to_owned()),
        _ => Claim::Mismatch,
    }
}

impl IdempotencyStore {
    /// The store `redis.url` names.
    pub fn start(redis: &RedisSettings) -> Result<Self, IdempotencyError> {
        if redis.url == "memory" {
            return Ok(IdempotencyStore::Memory(MemoryKeys::default()));
        }
        let client = crate::redis::connect(redis).map_err(IdempotencyError)?;
        Ok(IdempotencyStore::Redis(RedisKeys { client, key_prefix: redis.key_prefix.clone() }))
    }

    /// A fingerprint of a request body, to tell a repeat from a different request.
    pub fn fingerprint(body: &str) -> String {
        fred::util::sha1_hash(body)
    }

    /// Claims `key` within `scope` (the sender) for a request with `fingerprint`.
    pub async fn claim(&self, scope: &str, key: &str, fingerprint: &str) -> Result<Claim, IdempotencyError> {
        match self {
            IdempotencyStore::Redis(keys) => {
                let name = keys.name(scope, key);
                let expiry = Some(Expiration::EX(CLAIM_TIMEOUT.as_secs() as i64));
                let claimed: Option<String> =
                    keys.client.set(&name, pending(fingerprint), expiry, Some(SetOptions::NX), false).await?;
                if claimed.is_some() {
                    return Ok(Claim::New);
                }
                let stored: Option<String> = keys.client.get(&name).await?;
                // Gone between the two commands (released or expired): treat as in progress, and
                // the client's retry will find it free.
                Ok(stored.map_or(Claim::InProgress, |stored| interpret(&stored, fingerprint)))
            }
            IdempotencyStore::Memory(keys) => {
                let mut entries = keys.entries.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                entries.retain(|_, (_, expires)| *expires > now);
                let name = format!("{scope}:{key}");
                match entries.get(&name) {
                    Some((stored, _)) => Ok(interpret(stored, fingerprint)),
                    None => {
                        entries.insert(name, (pending(fingerprint), now + CLAIM_TIMEOUT));
                        Ok(Claim::New)
                    }
                }
            }
        }
    }

    /// Records the answer of a claimed key's successful request, for `RETENTION`.
    pub async fn complete(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        answer: &str,
    ) -> Result<(), IdempotencyError> {
        match self {
            IdempotencyStore::Redis(keys) => {
                let expiry = Some(Expiration::EX(RETENTION.as_secs() as i64));
                let _: Option<String> =
                    keys.client.set(keys.name(scope, key), done(fingerprint, answer), expiry, None, false).await?;
            }
            IdempotencyStore::Memory(keys) => {
                let mut entries = keys.entries.lock().unwrap_or_else(PoisonError::into_inner);
                entries.insert(format!("{scope}:{key}"), (done(fingerprint, answer), Instant::now() + RETENTION));
            }
        }
        Ok(())
    }

    /// Frees a claimed key whose request failed, so a retry is carried out.
    pub async fn release(&self, scope: &str, key: &str) -> Result<(), IdempotencyError> {
        match self {
            IdempotencyStore::Redis(keys) => {
                let _: i64 = keys.client.del(keys.name(scope, key)).await?;
            }
            IdempotencyStore::Memory(keys) => {
                keys.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(&format!("{scope}:{key}"));
            }
        }
        Ok(())
    }

    /// Whether the store answers right now (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        match self {
            IdempotencyStore::Redis(keys) => keys.client.is_connected(),
            IdempotencyStore::Memory(_) => true,
        }
    }

    /// Waits until the store answers, for at most `limit`.
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        match self {
            IdempotencyStore::Redis(keys) => crate::redis::wait_connected(&keys.client, limit).await,
            IdempotencyStore::Memory(_) => true,
        }
    }
}

impl RedisKeys {
    fn name(&self, scope: &str, key: &str) -> String {
        format!("{}idempotency:{scope}:{key}", self.key_prefix)
    }
}
