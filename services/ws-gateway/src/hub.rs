//! The hub: this replica's live connections, sharded by user id, and the local fan-out.
//!
//! Fan-out never waits on a connection: each one has a bounded queue fed with `try_send`, and a
//! connection whose queue is full is a slow client, closed with 4001 (it replays on reconnect).
//! Locks are std locks held only for map lookups, never across an await.

use bytestring::ByteString;
use model::{CloseCode, MessageId, NotificationMessage, Target, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use tokio::sync::{Notify, mpsc};

/// Shards of the registry; a user's connections all live in one.
const SHARDS: usize = 16;

/// A connection's id, unique within this process.
pub type ConnId = u64;

/// A message's client frame, serialised once and shared by every connection it goes to.
#[derive(Debug)]
pub struct OutboundFrame {
    /// The message's id, so a session can drop a live copy of what it just replayed; `None`
    /// for the gateway's own frames (sync).
    pub message_id: Option<MessageId>,
    /// The spec 3.2 frame.
    pub text: ByteString,
}

/// How the hub tells a session to close, and why.
#[derive(Debug, Default)]
pub struct ConnControl {
    reason: OnceLock<CloseCode>,
    notify: Notify,
}

impl ConnControl {
    /// Asks the session to close with `code`; the first reason wins.
    pub fn close(&self, code: CloseCode) {
        if self.reason.set(code).is_ok() {
            self.notify.notify_one();
        }
    }

    /// Resolves once `close` was called, with its reason.
    pub async fn closed(&self) -> CloseCode {
        loop {
            if let Some(code) = self.reason.get() {
                return *code;
            }
            self.notify.notified().await;
        }
    }
}

struct Conn {
    user_id: UserId,
    is_admin: bool,
    tx: mpsc::Sender<Arc<OutboundFrame>>,
    control: Arc<ConnControl>,
}

#[derive(Default)]
struct Shard {
    conns: HashMap<ConnId, Conn>,
    by_user: HashMap<UserId, Vec<ConnId>>,
}

/// What a registered connection receives.
pub struct Registration {
    /// The connection's id.
    pub id: ConnId,
    /// Its frames, in order.
    pub frames: mpsc::Receiver<Arc<OutboundFrame>>,
    /// Close requests from the hub.
    pub control: Arc<ConnControl>,
}

/// How one message was fanned out on this replica.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FanOut {
    /// Connections that got the frame queued.
    pub queued: usize,
    /// Connections closed as slow clients.
    pub slow: usize,
}

/// This replica's connections.
pub struct Hub {
    shards: Vec<RwLock<Shard>>,
    next_id: AtomicU64,
    count: AtomicUsize,
    send_buffer: usize,
    max_per_user: usize,
    /// Users whose connection count changed since the presence reporter last looked.
    changed_users: Mutex<HashSet<UserId>>,
    changed: Notify,
}

impl Hub {
    /// An empty hub whose connections queue up to `send_buffer` frames, at most `max_per_user`
    /// connections a user.
    pub fn new(send_buffer: usize, max_per_user: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            next_id: AtomicU64::new(1),
            count: AtomicUsize::new(0),
            send_buffer,
            max_per_user,
            changed_users: Mutex::default(),
            changed: Notify::new(),
        }
    }

    fn shard(&self, user_id: UserId) -> &RwLock<Shard> {
        &self.shards[user_id.unsigned_abs() as usize % SHARDS]
    }

    /// Adds a connection of `user_id`; `None` when the user already has as many as allowed.
    pub fn register(&self, user_id: UserId, is_admin: bool) -> Option<Registration> {
        let mut shard = self.shard(user_id).write().unwrap_or_else(PoisonError::into_inner);
        if shard.by_user.get(&user_id).map_or(0, Vec::len) >= self.max_per_user {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, frames) = mpsc::channel(self.send_buffer);
        let control = Arc::new(ConnControl::default());
        shard.conns.insert(id, Conn { user_id, is_admin, tx, control: control.clone() });
        shard.by_user.entry(user_id).or_default().push(id);
        self.count.fetch_add(1, Ordering::Relaxed);
        drop(shard);
        self.mark_changed(user_id);
        Some(Registration { id, frames, control })
    }

    /// Removes a connection; harmless if it is already gone.
    pub fn unregister(&self, user_id: UserId, id: ConnId) {
        let mut shard = self.shard(user_id).write().unwrap_or_else(PoisonError::into_inner);
        if shard.conns.remove(&id).is_none() {
            return;
        }
        self.count.fetch_sub(1, Ordering::Relaxed);
        if let Some(ids) = shard.by_user.get_mut(&user_id) {
            ids.retain(|c| *c != id);
            if ids.is_empty() {
                shard.by_user.remove(&user_id);
            }
        }
        drop(shard);
        self.mark_changed(user_id);
    }

    fn mark_changed(&self, user_id: UserId) {
        self.changed_users.lock().unwrap_or_else(PoisonError::into_inner).insert(user_id);
        self.changed.notify_one();
    }

    /// Waits until some user's connection count changed, then returns each such user with their
    /// current count (0: no connection left). For the presence reporter.
    pub async fn changed_users(&self) -> Vec<(UserId, u64)> {
        loop {
            let users = std::mem::take(&mut *self.changed_users.lock().unwrap_or_else(PoisonError::into_inner));
            if !users.is_empty() {
                return users.into_iter().map(|user| (user, self.connections_of(user) as u64)).collect();
            }
            self.changed.notified().await;
        }
    }

    /// How many connections `user_id` has on this replica.
    pub fn connections_of(&self, user_id: UserId) -> usize {
        self.shard(user_id).read().unwrap_or_else(PoisonError::into_inner).by_user.get(&user_id).map_or(0, Vec::len)
    }

    /// Every user with a connection here, with their connection count.
    pub fn user_counts(&self) -> Vec<(UserId, u64)> {
        let mut counts = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
            counts.extend(shard.by_user.iter().map(|(user, ids)| (*user, ids.len() as u64)));
        }
        counts
    }

    /// Live connections on this replica.
    pub fn connection_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Queues `frame` on every local connection `message` addresses.
    pub fn fan_out(&self, message: &NotificationMessage, frame: &Arc<OutboundFrame>) -> FanOut {
        let mut result = FanOut::default();
        let mut slow: Vec<(UserId, ConnId)> = Vec::new();
        let mut offer = |id: ConnId, conn: &Conn| match conn.tx.try_send(frame.clone()) {
            Ok(()) => result.queued += 1,
            Err(mpsc::error::TrySendError::Full(_)) => {
                conn.control.close(CloseCode::SLOW_CLIENT);
                slow.push((conn.user_id, id));
            }
            // The session is ending and will unregister itself.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        };
        match message.target {
            Target::All | Target::Admin | Target::Group => {
                for shard in &self.shards {
                    let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
                    for (id, conn) in &shard.conns {
                        if message.addresses(conn.user_id, conn.is_admin) {
                            offer(*id, conn);
                        }
                    }
                }
            }
            Target::User | Target::Custom => {
                for user_id in message.target_ids.iter().filter(|id| !message.exclude_ids.contains(id)) {
                    let shard = self.shard(*user_id).read().unwrap_or_else(PoisonError::into_inner);
                    for id in shard.by_user.get(user_id).into_iter().flatten() {
                        if let Some(conn) = shard.conns.get(id) {
                            offer(*id, conn);
                        }
                    }
                }
            }
        }
        result.slow = slow.len();
        for (user_id, id) in slow {
            tracing::warn!(user_id, conn = id, "slow client: send buffer full, closing");
            self.unregister(user_id, id);
        }
        result
    }

    /// Queues `frame` on every local connection of `user_id` except `except` (the connection the
    /// news came from); returns how many got it. A full queue is left to the next fan-out.
    pub fn send_to_user(&self, user_id: UserId, except: Option<ConnId>, frame: &Arc<OutboundFrame>) -> usize {
        let shard = self.shard(user_id).read().unwrap_or_else(PoisonError::into_inner);
        shard
            .by_user
            .get(&user_id)
            .into_iter()
            .flatten()
            .filter(|id| Some(**id) != except)
            .filter_map(|id| shard.conns.get(id))
            .filter(|conn| conn.tx.try_send(frame.clone()).is_ok())
            .count()
    }

    /// Asks every connection to close with `code` (shutdown).
    pub fn close_all(&self, code: CloseCode) {
        for shard in &self.shards {
            for conn in shard.read().unwrap_or_else(PoisonError::into_inner).conns.values() {
                conn.control.close(code);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{MessageId, NotificationType, Priority, Sender};

    fn outbound() -> Arc<OutboundFrame> {
        Arc::new(OutboundFrame { message_id: Some(MessageId::generate()), text: ByteString::from_static("f") })
    }

    fn message(target: Target, target_ids: Vec<UserId>, exclude_ids: Vec<UserId>) -> NotificationMessage {
        NotificationMessage {
            notification_type: NotificationType::SYSTEM_NOTICE,
            content: "x".into(),
            data: None,
            time: "2025-01-27 10:30:00".into(),
            priority: Priority::Normal,
            target,
            target_ids,
            exclude_ids,
            need_confirm: false,
            message_id: MessageId::generate(),
            sender: Sender { id: 1, name: "admin".into() },
        }
    }

    #[test]
    fn fan_out_follows_targets_and_exclusions() {
        let hub = Hub::new(8, 16);
        let mut admin = hub.register(1, true).unwrap();
        let mut alice_phone = hub.register(2, false).unwrap();
        let mut alice_laptop = hub.register(2, false).unwrap();
        let mut bob = hub.register(3, false).unwrap();
        let frame = outbound();

        assert_eq!(hub.fan_out(&message(Target::All, vec![], vec![3]), &frame).queued, 3);
        assert_eq!(hub.fan_out(&message(Target::Admin, vec![], vec![]), &frame).queued, 1);
        assert_eq!(hub.fan_out(&message(Target::Custom, vec![2, 3, 99], vec![3]), &frame).queued, 2);

        let count = |r: &mut Registration| std::iter::from_fn(|| r.frames.try_recv().ok()).count();
        assert_eq!(count(&mut admin), 2);
        assert_eq!(count(&mut alice_phone), 2);
        assert_eq!(count(&mut alice_laptop), 2);
        assert_eq!(count(&mut bob), 0);
    }

    #[tokio::test]
    async fn a_full_send_buffer_closes_only_that_connection() {
        let hub = Hub::new(2, 16);
        let slow = hub.register(5, false).unwrap();
        let mut fast = hub.register(6, false).unwrap();
        let frame = outbound();
        let all = message(Target::All, vec![], vec![]);
        for _ in 0..2 {
            assert_eq!(hub.fan_out(&all, &frame).queued, 2);
            fast.frames.recv().await.unwrap();
        }
        let third = hub.fan_out(&all, &frame);
        assert_eq!((third.queued, third.slow), (1, 1));
        assert_eq!(slow.control.closed().await, CloseCode::SLOW_CLIENT);
        assert_eq!(hub.connection_count(), 1);
        assert_eq!(hub.fan_out(&all, &frame).queued, 1, "the fast client keeps receiving");
    }

    #[test]
    fn a_user_past_the_connection_limit_is_refused_until_one_closes() {
        let hub = Hub::new(4, 2);
        let first = hub.register(7, false).unwrap();
        let _second = hub.register(7, false).unwrap();
        assert!(hub.register(7, false).is_none());
        assert!(hub.register(8, false).is_some(), "another user has their own allowance");
        hub.unregister(7, first.id);
        assert!(hub.register(7, false).is_some());
    }

    #[test]
    fn unregister_forgets_the_connection() {
        let hub = Hub::new(4, 16);
        let r = hub.register(7, false).unwrap();
        hub.unregister(7, r.id);
        hub.unregister(7, r.id);
        assert_eq!(hub.connection_count(), 0);
        assert_eq!(hub.fan_out(&message(Target::Custom, vec![7], vec![]), &outbound()).queued, 0);
    }

    #[tokio::test]
    async fn connection_counts_and_their_changes_are_reported() {
        let hub = Hub::new(4, 16);
        let a = hub.register(7, false).unwrap();
        let _b = hub.register(7, false).unwrap();
        let _c = hub.register(8, false).unwrap();
        let mut changed = hub.changed_users().await;
        changed.sort();
        assert_eq!(changed, vec![(7, 2), (8, 1)]);
        hub.unregister(7, a.id);
        assert_eq!(hub.changed_users().await, vec![(7, 1)]);
        hub.unregister(7, a.id);
        let nothing = tokio::time::timeout(std::time::Duration::from_millis(50), hub.changed_users()).await;
        assert!(nothing.is_err(), "a repeated unregister is no change");
        let mut counts = hub.user_counts();
        counts.sort();
        assert_eq!(counts, vec![(7, 1), (8, 1)]);
    }
}
