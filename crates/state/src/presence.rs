//! Presence: which users are online, on which gateway replica, with how many connections.
//!
//! Each replica owns one Redis hash, `{prefix}presence:replica:{replica}` (user id to
//! connection count), that only it writes: changes as users come and go, and a full refresh
//! every `presence.refresh_secs`. The hash expires `presence.ttl_secs` after the last refresh,
//! and the sorted set `{prefix}presence:replicas` holds each replica's deadline, so a replica
//! killed without a clean shutdown stops counting by itself. Readers merge the live replicas'
//! hashes. The in-process twin keeps the same shape for the all-in-one binary.

use crate::settings::{PresenceSettings, RedisSettings, StateBackend};
use fred::prelude::*;
use model::UserId;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The store failed.
#[derive(Debug, thiserror::Error)]
#[error("presence is unavailable: {0}")]
pub struct PresenceError(String);

impl From<fred::error::Error> for PresenceError {
    fn from(err: fred::error::Error) -> Self {
        Self(err.to_string())
    }
}

/// A user who is online somewhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OnlineUser {
    /// The user.
    pub user_id: UserId,
    /// Open WebSocket connections, over every replica.
    pub connections: u64,
    /// The replicas holding them, sorted.
    pub replicas: Vec<String>,
}

type MemoryReplicas = HashMap<String, (HashMap<UserId, u64>, Instant)>;

/// Presence in Redis or in process. Cheap to clone.
#[derive(Clone)]
pub struct Presence {
    backend: Backend,
    ttl: Duration,
    refresh_every: Duration,
}

#[derive(Clone)]
enum Backend {
    Redis { client: Client, key_prefix: String },
    Memory(Arc<Mutex<MemoryReplicas>>),
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.backend {
            Backend::Redis { .. } => "Presence::Redis",
            Backend::Memory(_) => "Presence::Memory",
        })
    }
}

impl Presence {
    /// Presence where `redis.url` says (`memory`: in process).
    pub fn start(redis: &RedisSettings, settings: &PresenceSettings) -> Result<Self, PresenceError> {
        let ttl = Duration::from_secs(settings.ttl_secs);
        let backend = match redis.backend() {
            // Without Redis one process holds every connection: presence lives there.
            StateBackend::Memory | StateBackend::Database => Backend::Memory(Arc::default()),
            StateBackend::Redis(_) => {
                let client = crate::redis::connect(redis).map_err(PresenceError)?;
                Backend::Redis { client, key_prefix: redis.key_prefix.clone() }
            }
        };
        Ok(Self { backend, ttl, refresh_every: Duration::from_secs(settings.refresh_secs) })
    }

    /// How often a replica refreshes its entry in full (`presence.refresh_secs`); the entry
    /// expires if it misses a few.
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_every
    }

    /// Records `replica`'s connection counts for some users; a count of 0 removes the user.
    pub async fn update(&self, replica: &str, counts: &[(UserId, u64)]) -> Result<(), PresenceError> {
        if counts.is_empty() {
            return Ok(());
        }
        match &self.backend {
            Backend::Redis { client, key_prefix } => {
                let key = replica_key(key_prefix, replica);
                let (gone, here): (Vec<_>, Vec<_>) = counts.iter().partition(|(_, n)| *n == 0);
                let trx = client.multi();
                if !gone.is_empty() {
                    let fields: Vec<Key> = gone.iter().map(|(user, _)| Key::from(user.to_string())).collect();
                    let _: Value = trx.hdel(&key, fields).await?;
                }
                if !here.is_empty() {
                    let _: Value = trx.hset(&key, field_values(here.iter().copied())).await?;
                    let _: Value = trx.pexpire(&key, self.ttl.as_millis() as i64, None).await?;
                }
                let _: Value = trx.exec(true).await?;
            }
            Backend::Memory(replicas) => {
                let mut replicas = replicas.lock().unwrap_or_else(PoisonError::into_inner);
                let (users, deadline) =
                    replicas.entry(replica.to_owned()).or_insert_with(|| (HashMap::new(), Instant::now() + self.ttl));
                for &(user, count) in counts {
                    if count == 0 {
                        users.remove(&user);
                    } else {
                        users.insert(user, count);
                    }
                }
                *deadline = (*deadline).max(Instant::now() + self.ttl);
            }
        }
        Ok(())
    }

    /// Replaces everything `replica` published with `counts` and extends its life by the TTL.
    pub async fn refresh(&self, replica: &str, counts: &[(UserId, u64)]) -> Result<(), PresenceError> {
        match &self.backend {
            Backend::Redis { client, key_prefix } => {
                let key = replica_key(key_prefix, replica);
                let deadline = unix_millis() + self.ttl.as_millis() as i64;
                let trx = client.multi();
                let _: Value = trx.del(&key).await?;
                let counts: Vec<_> = counts.iter().copied().filter(|(_, n)| *n > 0).collect();
                if !counts.is_empty() {
                    let _: Value = trx.hset(&key, field_values(counts.into_iter())).await?;
                    let _: Value = trx.pexpire(&key, self.ttl.as_millis() as i64, None).await?;
                }
                let _: Value =
                    trx.zadd(replicas_key(key_prefix), None, None, false, false, (deadline as f64, replica)).await?;
                // The index of replicas outlives none of them (a retired deployment leaves nothing).
                let _: Value = trx.pexpire(replicas_key(key_prefix), self.ttl.as_millis() as i64, None).await?;
                let _: Value = trx.exec(true).await?;
            }
            Backend::Memory(replicas) => {
                let users = counts.iter().copied().filter(|(_, n)| *n > 0).collect();
                let mut replicas = replicas.lock().unwrap_or_else(PoisonError::into_inner);
                replicas.insert(replica.to_owned(), (users, Instant::now() + self.ttl));
            }
        }
        Ok(())
    }

    /// Removes `replica` at once (a clean shutdown).
    pub async fn withdraw(&self, replica: &str) -> Result<(), PresenceError> {
        match &self.backend {
            Backend::Redis { client, key_prefix } => {
                let trx = client.multi();
                let _: Value = trx.del(replica_key(key_prefix, replica)).await?;
                let _: Value = trx.zrem(replicas_key(key_prefix), replica).await?;
                let _: Value = trx.exec(true).await?;
            }
            Backend::Memory(replicas) => {
                replicas.lock().unwrap_or_else(PoisonError::into_inner).remove(replica);
            }
        }
        Ok(())
    }

    /// Every online user, by user id, over the replicas that are alive.
    pub async fn online_users(&self) -> Result<Vec<OnlineUser>, PresenceError> {
        let per_replica = self.live_replicas().await?;
        let mut users: BTreeMap<UserId, OnlineUser> = BTreeMap::new();
        for (replica, counts) in per_replica {
            for (user_id, connections) in counts {
                let entry = users.entry(user_id).or_insert_with(|| OnlineUser {
                    user_id,
                    connections: 0,
                    replicas: Vec::new(),
                });
                entry.connections += connections;
                entry.replicas.push(replica.clone());
            }
        }
        let mut users: Vec<OnlineUser> = users.into_values().collect();
        for user in &mut users {
            user.replicas.sort();
        }
        Ok(users)
    }

    /// Whether `user_id` has a connection on any live replica.
    pub async fn is_online(&self, user_id: UserId) -> Result<bool, PresenceError> {
        Ok(self.live_replicas().await?.iter().any(|(_, counts)| counts.contains_key(&user_id)))
    }

    /// The live replicas and their users; forgets replicas past their deadline.
    async fn live_replicas(&self) -> Result<Vec<(String, HashMap<UserId, u64>)>, PresenceError> {
        match &self.backend {
            Backend::Redis { client, key_prefix } => {
                let now = unix_millis();
                let _: i64 = client.zremrangebyscore(replicas_key(key_prefix), f64::NEG_INFINITY, now as f64).await?;
                let replicas: Vec<String> =
                    client.zrangebyscore(replicas_key(key_prefix), now as f64, f64::INFINITY, false, None).await?;
                let mut live = Vec::with_capacity(replicas.len());
                for replica in replicas {
                    let raw: HashMap<String, u64> = client.hgetall(replica_key(key_prefix, &replica)).await?;
                    let counts = raw.into_iter().filter_map(|(user, n)| Some((user.parse().ok()?, n))).collect();
                    live.push((replica, counts));
                }
                Ok(live)
            }
            Backend::Memory(replicas) => {
                let mut replicas = replicas.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                replicas.retain(|_, (_, deadline)| *deadline > now);
                Ok(replicas.iter().map(|(replica, (users, _))| (replica.clone(), users.clone())).collect())
            }
        }
    }

    /// Whether the store answers right now (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        match &self.backend {
            Backend::Redis { client, .. } => client.is_connected(),
            Backend::Memory(_) => true,
        }
    }
}

fn field_values(counts: impl Iterator<Item = (UserId, u64)>) -> HashMap<String, u64> {
    counts.map(|(user, n)| (user.to_string(), n)).collect()
}

fn replica_key(prefix: &str, replica: &str) -> String {
    format!("{prefix}presence:replica:{replica}")
}

fn replicas_key(prefix: &str) -> String {
    format!("{prefix}presence:replicas")
}

fn unix_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
