//! Idempotency keys: a sender's repeat of a request within the retention (24 hours) gets the
//! first answer back instead of being carried out again.
//!
//! A key is claimed before the work starts (so a concurrent duplicate is told the first is
//! still running), completed with the answer when it succeeds, and released when it fails (so a
//! retry is carried out). The request's fingerprint is kept beside the answer: the same key with
//! a different request is refused rather than answered with the wrong result.
//!
//! A claim expires with the request that made it: its value carries a deadline, and a claim
//! past its deadline is free for the next request. Claiming takes two steps, so that a claim
//! that reached the store late (after the request had given up on a stalled store, say) cannot
//! hold the key for long: the first write carries a deadline of [`CLAIM_GRACE`] only; once it is
//! known to have been taken, the deadline is extended to the request's whole budget.

use crate::LiveState;
use crate::live::now_ms;
use crate::settings::{RedisSettings, StateBackend};
use fred::prelude::*;
use fred::types::scripts::Script;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an answer is remembered.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long the first step of a claim holds the key (see the module documentation).
pub const CLAIM_GRACE: Duration = Duration::from_secs(2);
/// The most keys the in-process store holds; past it requests with a key are refused.
pub const MEMORY_CAPACITY: usize = 100_000;
const PENDING: &str = "pending";

/// Sets KEYS[1] to ARGV[1] for ARGV[2] ms if it holds ARGV[3], or if it is absent and ARGV[4] is
/// `1`; returns 1 if it did.
const SWAP: &str = r#"
local current = redis.call('GET', KEYS[1])
if (not current and ARGV[4] == '1') or (current and current == ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"#;

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours: carry the request out, then `complete` or `release` it.
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

impl From<sea_orm::DbErr> for IdempotencyError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self(err.to_string())
    }
}

/// Idempotency keys in Redis, in the database or in process. Cheap to clone.
#[derive(Clone, Debug)]
pub enum IdempotencyStore {
    /// Redis, shared by every replica.
    Redis(RedisKeys),
    /// The relational database (the all-in-one without Redis).
    Sql(LiveState),
    /// In process, lost on restart: for tests.
    Memory(MemoryKeys),
}

/// Keys in Redis: `{prefix}idempotency:{scope}:{key}` holds `pending:{fingerprint}:{deadline}`
/// or `{fingerprint}\n{answer}`.
#[derive(Clone)]
pub struct RedisKeys {
    client: Client,
    key_prefix: String,
    swap: Arc<Script>,
}

impl std::fmt::Debug for RedisKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKeys").field("key_prefix", &self.key_prefix).finish_non_exhaustive()
    }
}

/// Keys in process, with their expiry.
#[derive(Clone, Debug, Default)]
pub struct MemoryKeys {
    entries: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

/// A claim's value: the request's fingerprint and its deadline (Unix ms).
fn pending(fingerprint: &str, deadline_ms: i64) -> String {
    format!("{PENDING}:{fingerprint}:{deadline_ms}")
}

fn done(fingerprint: &str, answer: &str) -> String {
    format!("{fingerprint}\n{answer}")
}

/// What a stored value means to a request with `fingerprint` at `now_ms`.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// A claim past its deadline: the key is free.
    Expired,
    /// Anything else: the answer to give.
    Settled(Claim),
}

fn interpret(stored: &str, fingerprint: &str, now_ms: i64) -> Found {
    if let Some(claim) = stored.strip_prefix(PENDING).and_then(|rest| rest.strip_prefix(':')) {
        // `pending:{fingerprint}:{deadline}`; a claim written before deadlines existed has none
        // and lapses with its key's expiry.
        let (claimed, deadline) = match claim.split_once(':') {
            Some((claimed, deadline)) => (claimed, deadline.parse::<i64>().ok()),
            None => (claim, None),
        };
        if deadline.is_some_and(|deadline| deadline <= now_ms) {
            return Found::Expired;
        }
        return Found::Settled(if claimed == fingerprint { Claim::InProgress } else { Claim::Mismatch });
    }
    match stored.split_once('\n') {
        Some((stored_fingerprint, answer)) if stored_fingerprint == fingerprint => {
            Found::Settled(Claim::Done(answer.to_owned()))
        }
        _ => Found::Settled(Claim::Mismatch),
    }
}

impl IdempotencyStore {
    /// The store `redis.url` names (in the database: see `Stores::on`).
    pub fn start(redis: &RedisSettings) -> Result<Self, IdempotencyError> {
        match redis.backend() {
            StateBackend::Memory => Ok(IdempotencyStore::Memory(MemoryKeys::default())),
            StateBackend::Redis(_) => {
                let client = crate::redis::connect(redis).map_err(IdempotencyError)?;
                let swap = Arc::new(Script::from_lua(SWAP));
                Ok(IdempotencyStore::Redis(RedisKeys { client, key_prefix: redis.key_prefix.clone(), swap }))
            }
            StateBackend::Database => {
                Err(IdempotencyError("idempotency keys in the database are opened with Stores::on".into()))
            }
        }
    }

    /// A fingerprint of a request body, to tell a repeat from a different request.
    pub fn fingerprint(body: &str) -> String {
        fred::util::sha1_hash(body)
    }

    /// Claims `key` within `scope` (the sender) for a request with `fingerprint` that answers
    /// within `budget`; the claim lapses after that.
    pub async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        budget: Duration,
    ) -> Result<Claim, IdempotencyError> {
        let now = now_ms();
        let first = pending(fingerprint, now + CLAIM_GRACE.as_millis() as i64);
        let taken = match self.get(scope, key).await? {
            None => self.swap(scope, key, None, &first, CLAIM_GRACE).await?,
            Some(stored) => match interpret(&stored, fingerprint, now) {
                Found::Expired => self.swap(scope, key, Some(&stored), &first, CLAIM_GRACE).await?,
                Found::Settled(claim) => return Ok(claim),
            },
        };
        if !taken {
            // Another request took it between the two commands.
            return Ok(Claim::InProgress);
        }
        let extended = pending(fingerprint, now + budget.as_millis() as i64);
        if self.swap(scope, key, Some(&first), &extended, budget).await? {
            Ok(Claim::New)
        } else {
            // The first step lapsed before this one: someone may have the key now.
            Ok(Claim::InProgress)
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
        let value = done(fingerprint, answer);
        match self {
            IdempotencyStore::Redis(keys) => {
                let expiry = Some(Expiration::PX(RETENTION.as_millis() as i64));
                let _: Option<String> = keys.client.set(keys.name(scope, key), value, expiry, None, false).await?;
            }
            IdempotencyStore::Sql(state) => state.put_key(scope, key, &value, RETENTION).await?,
            IdempotencyStore::Memory(keys) => keys.put(scope, key, value, RETENTION)?,
        }
        Ok(())
    }

    /// Frees a claimed key whose request failed, so a retry is carried out.
    pub async fn release(&self, scope: &str, key: &str) -> Result<(), IdempotencyError> {
        match self {
            IdempotencyStore::Redis(keys) => {
                let _: i64 = keys.client.del(keys.name(scope, key)).await?;
            }
            IdempotencyStore::Sql(state) => state.delete_key(scope, key).await?,
            IdempotencyStore::Memory(keys) => {
                keys.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(&MemoryKeys::name(scope, key));
            }
        }
        Ok(())
    }

    async fn get(&self, scope: &str, key: &str) -> Result<Option<String>, IdempotencyError> {
        Ok(match self {
            IdempotencyStore::Redis(keys) => keys.client.get(keys.name(scope, key)).await?,
            IdempotencyStore::Sql(state) => state.key_value(scope, key).await?,
            IdempotencyStore::Memory(keys) => {
                let entries = keys.entries.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                entries.get(&MemoryKeys::name(scope, key)).filter(|(_, at)| *at > now).map(|(v, _)| v.clone())
            }
        })
    }

    /// Sets the key to `value` for `ttl` if it holds `expected` (`None`: if it is absent).
    async fn swap(
        &self,
        scope: &str,
        key: &str,
        expected: Option<&str>,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, IdempotencyError> {
        match self {
            IdempotencyStore::Redis(keys) => {
                let args: Vec<Value> = vec![
                    value.into(),
                    (ttl.as_millis() as i64).into(),
                    expected.unwrap_or_default().into(),
                    if expected.is_none() { "1" } else { "0" }.into(),
                ];
                let swapped: i64 =
                    keys.swap.evalsha_with_reload(&keys.client, vec![keys.name(scope, key)], args).await?;
                Ok(swapped == 1)
            }
            IdempotencyStore::Sql(state) => Ok(state.swap_key(scope, key, expected, value, ttl).await?),
            IdempotencyStore::Memory(keys) => {
                let entries = keys.entries.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                let name = MemoryKeys::name(scope, key);
                let current = entries.get(&name).filter(|(_, at)| *at > now).map(|(v, _)| v.as_str());
                if current != expected {
                    return Ok(false);
                }
                drop(entries);
                keys.put(scope, key, value.to_owned(), ttl)?;
                Ok(true)
            }
        }
    }

    /// Whether the store answers right now (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        match self {
            IdempotencyStore::Redis(keys) => keys.client.is_connected(),
            IdempotencyStore::Sql(_) | IdempotencyStore::Memory(_) => true,
        }
    }

    /// Waits until the store answers, for at most `limit`.
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        match self {
            IdempotencyStore::Redis(keys) => crate::redis::wait_connected(&keys.client, limit).await,
            IdempotencyStore::Sql(_) | IdempotencyStore::Memory(_) => true,
        }
    }
}

impl RedisKeys {
    fn name(&self, scope: &str, key: &str) -> String {
        format!("{}idempotency:{scope}:{key}", self.key_prefix)
    }
}

impl MemoryKeys {
    fn name(scope: &str, key: &str) -> String {
        format!("{scope}:{key}")
    }

    fn put(&self, scope: &str, key: &str, value: String, ttl: Duration) -> Result<(), IdempotencyError> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if entries.len() >= MEMORY_CAPACITY {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        let name = Self::name(scope, key);
        if entries.len() >= MEMORY_CAPACITY && !entries.contains_key(&name) {
            return Err(IdempotencyError(format!("the in-process idempotency keys are full ({MEMORY_CAPACITY})")));
        }
        entries.insert(name, (value, now + ttl));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_past_its_deadline_frees_the_key_and_answers_are_matched_by_fingerprint() {
        let claim = pending("abc", 1_000);
        assert_eq!(interpret(&claim, "abc", 999), Found::Settled(Claim::InProgress));
        assert_eq!(interpret(&claim, "xyz", 999), Found::Settled(Claim::Mismatch));
        assert_eq!(interpret(&claim, "abc", 1_000), Found::Expired);
        assert_eq!(interpret("pending:abc", "abc", i64::MAX), Found::Settled(Claim::InProgress));
        assert_eq!(interpret(&done("abc", "{}"), "abc", 0), Found::Settled(Claim::Done("{}".into())));
        assert_eq!(interpret(&done("abc", "{}"), "xyz", 0), Found::Settled(Claim::Mismatch));
    }

    #[tokio::test]
    async fn a_claim_lapses_after_its_budget_and_a_retry_gets_the_key() {
        let store = IdempotencyStore::Memory(MemoryKeys::default());
        let budget = Duration::from_millis(50);
        assert_eq!(store.claim("1", "k", "fp", budget).await.unwrap(), Claim::New);
        assert_eq!(store.claim("1", "k", "fp", budget).await.unwrap(), Claim::InProgress);
        // Letting the 50 ms budget pass is the point (the store keeps `std` instants).
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(store.claim("1", "k", "fp", budget).await.unwrap(), Claim::New);
        store.complete("1", "k", "fp", "answer").await.unwrap();
        assert_eq!(store.claim("1", "k", "fp", budget).await.unwrap(), Claim::Done("answer".into()));
        assert_eq!(store.claim("1", "k", "other", budget).await.unwrap(), Claim::Mismatch);
    }
}
