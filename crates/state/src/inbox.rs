//! Offline inboxes (spec 5): the notices a user has not acknowledged yet, kept under
//! `offline_msg:{user_id}`, at most `offline.max_per_user` per user (oldest dropped first) for
//! `offline.ttl_secs`.
//!
//! ingest-api stores an entry for each addressed user before it publishes; the gateway replays a
//! user's entries, oldest first, when they connect, and deletes an entry when the client acks it.
//! How many entries were dropped (overflow or age) is counted, so a replay can tell the client.
//!
//! In Redis an inbox is a sorted set scored by the message's creation time in microseconds
//! (from its id); each operation is one Lua script, so trimming and counting are atomic.

use crate::LiveState;
use crate::settings::{OfflineSettings, RedisSettings, StateBackend};
use fred::prelude::*;
use fred::types::scan::Scanner;
use fred::types::scripts::Script;
use model::{MessageId, OfflineMessage, UserId};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Adds an entry unless one with the same message id is there; trims by age and count.
/// KEYS: inbox, dropped counter. ARGV: score, entry, message id, max entries, ttl secs, oldest score.
const STORE: &str = r#"
local needle = '"message_id":"' .. ARGV[3] .. '"'
for _, existing in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])) do
  if string.find(existing, needle, 1, true) then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local dropped = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[6])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if over > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
  dropped = dropped + over
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
if dropped > 0 then
  redis.call('INCRBY', KEYS[2], dropped)
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
return dropped
"#;

/// Returns the dropped count (and resets it) followed by the entries, oldest first.
/// KEYS: inbox, dropped counter. ARGV: oldest score.
const REPLAY: &str = r#"
local expired = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local dropped = tonumber(redis.call('GET', KEYS[2]) or '0') + expired
redis.call('DEL', KEYS[2])
local entries = redis.call('ZRANGE', KEYS[1], 0, -1)
table.insert(entries, 1, tostring(dropped))
return entries
"#;

/// Removes the entry with a message id. KEYS: inbox. ARGV: score, message id.
const ACKNOWLEDGE: &str = r#"
local needle = '"message_id":"' .. ARGV[2] .. '"'
for _, existing in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])) do
  if string.find(existing, needle, 1, true) then
    redis.call('ZREM', KEYS[1], existing)
    return 1
  end
end
return 0
"#;

/// Trims an inbox to its limits, counting what goes as dropped.
/// KEYS: inbox, dropped counter. ARGV: max entries, ttl secs, oldest score.
const TRIM: &str = r#"
local dropped = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if over > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
  dropped = dropped + over
end
if dropped > 0 then
  redis.call('INCRBY', KEYS[2], dropped)
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return dropped
"#;

/// What trimming every inbox did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Inboxes that were past a limit.
    pub inboxes: u64,
    /// Entries that went (counted as dropped for the user's next replay).
    pub dropped: u64,
}

/// An inbox operation that failed; nothing is half-done.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// Redis is unreachable or answered with an error.
    #[error("the offline inbox store is unavailable: {0}")]
    Unavailable(String),
    /// The configuration cannot be used.
    #[error("invalid offline inbox configuration: {0}")]
    Config(String),
    /// The in-process inboxes hold as many entries as they may; nothing was stored.
    #[error("the offline inboxes are full ({0} entries in this process)")]
    Full(usize),
}

impl From<sea_orm::DbErr> for InboxError {
    fn from(err: sea_orm::DbErr) -> Self {
        InboxError::Unavailable(err.to_string())
    }
}

impl From<fred::error::Error> for InboxError {
    fn from(err: fred::error::Error) -> Self {
        InboxError::Unavailable(err.to_string())
    }
}

/// What a user gets replayed on connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    /// Entries dropped since the last replay (overflow or age).
    pub dropped: u64,
    /// The entries as stored (spec 5.1 JSON), oldest first.
    pub entries: Vec<String>,
}

/// The offline inboxes, in Redis, in the database or in process. Cheap to clone.
#[derive(Clone, Debug)]
pub enum OfflineInbox {
    /// Redis, shared by every service.
    Redis(RedisInbox),
    /// The relational database (the all-in-one without Redis): survives restarts.
    Sql(LiveState),
    /// In process, lost on restart: for tests.
    Memory(MemoryInbox),
}

impl OfflineInbox {
    /// The inbox `redis.url` names; a Redis inbox connects in the background and reconnects by
    /// itself, and its commands fail after `redis.command_timeout_ms` while it is down.
    pub fn start(redis: &RedisSettings, offline: &OfflineSettings) -> Result<Self, InboxError> {
        match redis.backend() {
            StateBackend::Memory => Ok(OfflineInbox::Memory(MemoryInbox::new(offline))),
            StateBackend::Redis(_) => RedisInbox::start(redis, offline).map(OfflineInbox::Redis),
            StateBackend::Database => {
                Err(InboxError::Config("inboxes in the database are opened with Stores::on".into()))
            }
        }
    }

    /// Keeps `entry` for each of `recipients`.
    pub async fn store(&self, recipients: &[UserId], entry: &OfflineMessage) -> Result<(), InboxError> {
        if recipients.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_string(entry).map_err(|err| InboxError::Unavailable(err.to_string()))?;
        let id = MessageId::parse(&entry.message_id).map_err(|err| InboxError::Config(err.to_string()))?;
        match self {
            OfflineInbox::Redis(inbox) => inbox.store(recipients, &id, json).await,
            OfflineInbox::Sql(state) => Ok(state.store(recipients, &id, &json).await?),
            OfflineInbox::Memory(inbox) => inbox.store(recipients, &id, json),
        }
    }

    /// What `user` has not acknowledged, oldest first, and how many were dropped since the last
    /// replay (the count is reset).
    pub async fn replay(&self, user: UserId) -> Result<Replay, InboxError> {
        match self {
            OfflineInbox::Redis(inbox) => inbox.replay(user).await,
            OfflineInbox::Sql(state) => Ok(state.replay(user).await?),
            OfflineInbox::Memory(inbox) => Ok(inbox.replay(user)),
        }
    }

    /// Removes `user`'s entry for `message_id`; returns whether there was one.
    pub async fn acknowledge(&self, user: UserId, message_id: &MessageId) -> Result<bool, InboxError> {
        match self {
            OfflineInbox::Redis(inbox) => inbox.acknowledge(user, message_id).await,
            OfflineInbox::Sql(state) => Ok(state.acknowledge(user, message_id).await?),
            OfflineInbox::Memory(inbox) => Ok(inbox.acknowledge(user, message_id)),
        }
    }

    /// Deletes everything kept for `user` (an account removed, or a test cleaning up).
    pub async fn forget(&self, user: UserId) -> Result<(), InboxError> {
        match self {
            OfflineInbox::Redis(inbox) => {
                let _: i64 = inbox.client.del(vec![inbox.inbox_key(user), inbox.dropped_key(user)]).await?;
            }
            OfflineInbox::Sql(state) => state.forget_inbox(user).await?,
            OfflineInbox::Memory(inbox) => {
                let mut users = inbox.users.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(removed) = users.remove(&user) {
                    inbox.total.fetch_sub(removed.entries.len(), Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    /// Trims every inbox to the limits: entries older than `offline.ttl_secs` go, and past
    /// `offline.max_per_user` the oldest, each counted as dropped as when a store trims. A store
    /// trims the inbox it writes to; this reaches the others (limits lowered since, entries
    /// aged in an inbox nobody wrote to). Safe to run while notices are stored and replayed.
    pub async fn trim_all(&self) -> Result<Trimmed, InboxError> {
        match self {
            OfflineInbox::Redis(inbox) => inbox.trim_all().await,
            OfflineInbox::Sql(state) => {
                let (inboxes, dropped) = state.trim_inboxes().await?;
                Ok(Trimmed { inboxes, dropped })
            }
            OfflineInbox::Memory(inbox) => Ok(inbox.trim_all()),
        }
    }

    /// Waits until the inbox is usable, for at most `limit`.
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        match self {
            OfflineInbox::Redis(inbox) => inbox.wait_connected(limit).await,
            OfflineInbox::Sql(_) | OfflineInbox::Memory(_) => true,
        }
    }

    /// Whether the inbox can be used right now (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        match self {
            OfflineInbox::Redis(inbox) => inbox.client.is_connected(),
            OfflineInbox::Sql(_) | OfflineInbox::Memory(_) => true,
        }
    }
}

/// `text` as a literal in a Redis glob pattern.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// The inbox score of a message: its creation time in microseconds, exact in an f64.
pub(crate) fn score(id: &MessageId) -> i64 {
    (id.unix_nanos() / 1000) as i64
}

/// Offline inboxes in Redis.
#[derive(Clone)]
pub struct RedisInbox {
    client: Client,
    key_prefix: String,
    max_per_user: usize,
    ttl: Duration,
    scripts: Arc<[Script; 4]>,
    /// Replicas that must confirm a stored copy (`redis.wait_replicas`), and for how long.
    wait_replicas: u8,
    wait_timeout: Duration,
}

impl std::fmt::Debug for RedisInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisInbox").field("key_prefix", &self.key_prefix).finish_non_exhaustive()
    }
}

impl RedisInbox {
    fn start(redis: &RedisSettings, offline: &OfflineSettings) -> Result<Self, InboxError> {
        let client = crate::redis::connect(redis).map_err(InboxError::Config)?;
        Ok(Self {
            client,
            key_prefix: redis.key_prefix.clone(),
            max_per_user: offline.max_per_user,
            ttl: Duration::from_secs(offline.ttl_secs),
            scripts: Arc::new([
                Script::from_lua(STORE),
                Script::from_lua(REPLAY),
                Script::from_lua(ACKNOWLEDGE),
                Script::from_lua(TRIM),
            ]),
            wait_replicas: redis.wait_replicas,
            wait_timeout: Duration::from_millis(redis.wait_timeout_ms),
        })
    }

    /// Waits until connected, for at most `limit`.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        crate::redis::wait_connected(&self.client, limit).await
    }

    fn inbox_key(&self, user: UserId) -> String {
        format!("{}offline_msg:{user}", self.key_prefix)
    }

    fn dropped_key(&self, user: UserId) -> String {
        format!("{}offline_dropped:{user}", self.key_prefix)
    }

    fn oldest_allowed(&self) -> i64 {
        now_micros() - self.ttl.as_micros() as i64
    }

    async fn store(&self, recipients: &[UserId], id: &MessageId, json: String) -> Result<(), InboxError> {
        let [store, _, _, _] = &*self.scripts;
        let oldest = self.oldest_allowed();
        // By hash (loading the script only if Redis does not know it: after a restart);
        // concurrent calls share one connection, which fred pipelines.
        let calls = recipients.iter().map(|user| {
            let keys = vec![self.inbox_key(*user), self.dropped_key(*user)];
            let args: Vec<Value> = vec![
                score(id).into(),
                json.as_str().into(),
                id.as_str().into(),
                (self.max_per_user as i64).into(),
                (self.ttl.as_secs() as i64).into(),
                oldest.into(),
            ];
            store.evalsha_with_reload::<i64, _, _>(&self.client, keys, args)
        });
        futures_util::future::try_join_all(calls).await?;
        if self.wait_replicas > 0 {
            // Every write of this connection so far, these included, on that many replicas: a
            // failover then promotes one that has them.
            let wanted = i64::from(self.wait_replicas);
            let confirmed: i64 = self.client.wait(wanted, self.wait_timeout.as_millis() as i64).await?;
            if confirmed < wanted {
                return Err(InboxError::Unavailable(format!(
                    "{confirmed} of the {wanted} replicas redis.wait_replicas asks for confirmed the offline copies \
                     within {} ms",
                    self.wait_timeout.as_millis()
                )));
            }
        }
        Ok(())
    }

    async fn replay(&self, user: UserId) -> Result<Replay, InboxError> {
        let [_, replay, _, _] = &*self.scripts;
        let keys = vec![self.inbox_key(user), self.dropped_key(user)];
        let mut values: Vec<String> =
            replay.evalsha_with_reload(&self.client, keys, vec![self.oldest_allowed()]).await?;
        if values.is_empty() {
            return Ok(Replay::default());
        }
        let dropped = values.remove(0).parse().unwrap_or(0);
        Ok(Replay { dropped, entries: values })
    }

    /// Every inbox key under the prefix, a page of `SCAN` at a time, each trimmed by one script.
    async fn trim_all(&self) -> Result<Trimmed, InboxError> {
        use futures_util::StreamExt;
        let [_, _, _, trim] = &*self.scripts;
        let inbox_prefix = format!("{}offline_msg:", self.key_prefix);
        let pattern = format!("{}*", glob_escape(&inbox_prefix));
        let mut trimmed = Trimmed::default();
        let mut pages = std::pin::pin!(self.client.scan(pattern, Some(500), None));
        while let Some(page) = pages.next().await {
            let mut page = page?;
            for key in page.take_results().unwrap_or_default() {
                let Some(user) = key.as_str().and_then(|k| k.strip_prefix(&inbox_prefix)).and_then(|u| u.parse().ok())
                else {
                    continue;
                };
                let keys = vec![self.inbox_key(user), self.dropped_key(user)];
                let args: Vec<Value> = vec![
                    (self.max_per_user as i64).into(),
                    (self.ttl.as_secs() as i64).into(),
                    self.oldest_allowed().into(),
                ];
                let dropped: i64 = trim.evalsha_with_reload(&self.client, keys, args).await?;
                if dropped > 0 {
                    trimmed.inboxes += 1;
                    trimmed.dropped += dropped as u64;
                }
            }
            // Dropping the page asks for the next one.
        }
        Ok(trimmed)
    }

    async fn acknowledge(&self, user: UserId, id: &MessageId) -> Result<bool, InboxError> {
        let [_, _, acknowledge, _] = &*self.scripts;
        let args: Vec<Value> = vec![score(id).into(), id.as_str().into()];
        let removed: i64 = acknowledge.evalsha_with_reload(&self.client, vec![self.inbox_key(user)], args).await?;
        Ok(removed == 1)
    }
}

/// The most entries the in-process inboxes hold together; past it a notice is refused.
pub const MEMORY_INBOX_CAPACITY: usize = 100_000;

/// Offline inboxes in this process: the same rules over a map, bounded as a whole.
#[derive(Clone, Debug)]
pub struct MemoryInbox {
    max_per_user: usize,
    ttl_micros: i64,
    users: Arc<Mutex<HashMap<UserId, UserInbox>>>,
    total: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct UserInbox {
    /// Keyed by (score, message id): oldest first, one entry per message.
    entries: BTreeMap<(i64, String), String>,
    dropped: u64,
}

impl UserInbox {
    fn expire(&mut self, oldest: i64) {
        let kept = self.entries.split_off(&(oldest, String::new()));
        self.dropped += self.entries.len() as u64;
        self.entries = kept;
    }
}

impl MemoryInbox {
    /// Empty inboxes with `offline`'s limits.
    pub fn new(offline: &OfflineSettings) -> Self {
        Self {
            max_per_user: offline.max_per_user,
            ttl_micros: (offline.ttl_secs as i64).saturating_mul(1_000_000),
            users: Arc::default(),
            total: Arc::default(),
        }
    }

    fn store(&self, recipients: &[UserId], id: &MessageId, json: String) -> Result<(), InboxError> {
        let oldest = now_micros() - self.ttl_micros;
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let total = self.total.load(Ordering::Relaxed);
        if total + recipients.len() > MEMORY_INBOX_CAPACITY {
            return Err(InboxError::Full(total));
        }
        for user in recipients {
            let inbox = users.entry(*user).or_default();
            let before = inbox.entries.len();
            inbox.entries.entry((score(id), id.to_string())).or_insert_with(|| json.clone());
            inbox.expire(oldest);
            while inbox.entries.len() > self.max_per_user {
                inbox.entries.pop_first();
                inbox.dropped += 1;
            }
            let after = inbox.entries.len();
            if after >= before {
                self.total.fetch_add(after - before, Ordering::Relaxed);
            } else {
                self.total.fetch_sub(before - after, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn replay(&self, user: UserId) -> Replay {
        let oldest = now_micros() - self.ttl_micros;
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(inbox) = users.get_mut(&user) else {
            return Replay::default();
        };
        let before = inbox.entries.len();
        inbox.expire(oldest);
        self.total.fetch_sub(before - inbox.entries.len(), Ordering::Relaxed);
        let replay =
            Replay { dropped: std::mem::take(&mut inbox.dropped), entries: inbox.entries.values().cloned().collect() };
        if inbox.entries.is_empty() {
            users.remove(&user);
        }
        replay
    }

    fn trim_all(&self) -> Trimmed {
        let oldest = now_micros() - self.ttl_micros;
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let mut trimmed = Trimmed::default();
        for inbox in users.values_mut() {
            let before = inbox.entries.len();
            inbox.expire(oldest);
            while inbox.entries.len() > self.max_per_user {
                inbox.entries.pop_first();
                inbox.dropped += 1;
            }
            let gone = before - inbox.entries.len();
            if gone > 0 {
                self.total.fetch_sub(gone, Ordering::Relaxed);
                trimmed.inboxes += 1;
                trimmed.dropped += gone as u64;
            }
        }
        trimmed
    }

    fn acknowledge(&self, user: UserId, id: &MessageId) -> bool {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let removed =
            users.get_mut(&user).is_some_and(|inbox| inbox.entries.remove(&(score(id), id.to_string())).is_some());
        if removed {
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_process_inboxes_refuse_past_their_capacity_and_free_room_as_entries_go() {
        let inbox = MemoryInbox::new(&OfflineSettings::default());
        let recipients: Vec<UserId> = (1..=1000).collect();
        let ids: Vec<MessageId> = (0..MEMORY_INBOX_CAPACITY / 1000).map(|_| MessageId::generate()).collect();
        for id in &ids {
            inbox.store(&recipients, id, "{}".to_owned()).unwrap();
        }
        let one_more = MessageId::generate();
        assert!(matches!(inbox.store(&[1], &one_more, "{}".to_owned()), Err(InboxError::Full(_))));
        assert!(inbox.acknowledge(1, &ids[0]));
        inbox.store(&[1], &one_more, "{}".to_owned()).unwrap();
        assert_eq!(inbox.replay(2).entries.len(), 100);
    }
}
