//! The hub: this replica's live connections and the local fan-out.
//!
//! A connection lives on the HTTP worker thread that accepted it, and so does everything that
//! touches it per message: each worker has a [`WorkerHub`] of its own connections (a
//! thread-local registry, no locks), fed by the process-wide [`Hub`] with one message per notice
//! per worker. The bus consumer hands a notice's frame, serialised and encoded once, to every
//! worker; each worker queues it on its addressed connections' outboxes and, once it has handed
//! out the batch of notices it took, writes each of those outboxes to its socket itself: one
//! vectored write per connection per batch, and no session woken unless its socket is full. A
//! notice crosses threads once per worker, not once per connection.
//!
//! The process-wide part keeps what must be counted across workers: each user's connections
//! (the per-user limit, presence, the online list) and the total.
//!
//! Fan-out never waits on a connection: an outbox is bounded, and a connection whose outbox is
//! full is a slow client, closed with 4001 (it replays on reconnect).

use crate::outbox::{Offered, Outbox, SharedFrame};
use bytes::Bytes;
use model::{CloseCode, NotificationMessage, Target, UserId};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// Shards of the per-user counts.
const SHARDS: usize = 16;

/// Commands a worker's queue holds before the bus consumer waits for it.
const WORKER_QUEUE: usize = 1024;
/// Commands a worker takes at once.
const WORKER_BATCH: usize = 64;
/// Outboxes a worker writes before it lets the thread's other tasks (HTTP requests, sessions)
/// run and takes the commands that came meanwhile.
const FLUSH_CHUNK: usize = 128;

/// A connection's id, unique within this process.
pub type ConnId = u64;

/// A notice on its way to the connections it addresses.
#[derive(Debug)]
pub struct Notice {
    /// The envelope: who it is for.
    pub message: NotificationMessage,
    /// Its client frame, encoded once.
    pub frame: Arc<SharedFrame>,
}

/// What a worker is told to do.
#[derive(Debug, Clone)]
enum WorkerCommand {
    /// Queue a notice on the connections it addresses.
    Notice(Arc<Notice>),
    /// Queue a frame on `user_id`'s connections, except the one the news came from.
    Sync { user_id: UserId, except: Option<ConnId>, frame: Bytes },
}

/// How one message was fanned out by one worker.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FanOut {
    /// Connections that got the frame queued.
    pub queued: usize,
    /// Connections closed as slow clients.
    pub slow: usize,
}

/// The replica's connections, as every worker shares them: counts, limits and the workers'
/// queues.
pub struct Hub {
    /// Tells this hub's worker hubs apart from another hub's in the same thread (tests run
    /// several gateways in one process).
    id: u64,
    workers: RwLock<Arc<[mpsc::Sender<WorkerCommand>]>>,
    users: Vec<Mutex<HashMap<UserId, usize>>>,
    next_id: AtomicU64,
    count: AtomicUsize,
    send_buffer: usize,
    max_per_user: usize,
    /// Users whose connection count changed since the presence reporter last looked.
    changed_users: Mutex<HashSet<UserId>>,
    changed: Notify,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("connections", &self.connection_count()).finish_non_exhaustive()
    }
}

/// A connection admitted under its user's limit; dropping it gives the place back.
#[derive(Debug)]
pub struct Admission {
    hub: Arc<Hub>,
    user_id: UserId,
    id: ConnId,
}

impl Admission {
    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.hub.release(self.user_id);
    }
}

static NEXT_HUB: AtomicU64 = AtomicU64::new(1);

impl Hub {
    /// An empty hub whose connections queue up to `send_buffer` frames, at most `max_per_user`
    /// connections a user; its workers stop at `shutdown`, closing their connections with 1001.
    pub fn new(send_buffer: usize, max_per_user: usize, shutdown: CancellationToken) -> Self {
        Self {
            id: NEXT_HUB.fetch_add(1, Ordering::Relaxed),
            workers: RwLock::new(Arc::from(Vec::new())),
            users: (0..SHARDS).map(|_| Mutex::default()).collect(),
            next_id: AtomicU64::new(1),
            count: AtomicUsize::new(0),
            send_buffer,
            max_per_user,
            changed_users: Mutex::default(),
            changed: Notify::new(),
            shutdown,
        }
    }

    fn shard(&self, user_id: UserId) -> &Mutex<HashMap<UserId, usize>> {
        &self.users[user_id.unsigned_abs() as usize % SHARDS]
    }

    /// Admits one more connection of `user_id`; `None` when the user already has as many as
    /// allowed on this replica.
    pub fn admit(self: &Arc<Self>, user_id: UserId) -> Option<Admission> {
        let mut shard = self.shard(user_id).lock().unwrap_or_else(PoisonError::into_inner);
        let count = shard.entry(user_id).or_default();
        if *count >= self.max_per_user {
            if *count == 0 {
                shard.remove(&user_id);
            }
            return None;
        }
        *count += 1;
        drop(shard);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.mark_changed(user_id);
        Some(Admission { hub: self.clone(), user_id, id: self.next_id.fetch_add(1, Ordering::Relaxed) })
    }

    fn release(&self, user_id: UserId) {
        let mut shard = self.shard(user_id).lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = shard.get_mut(&user_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                shard.remove(&user_id);
            }
        }
        drop(shard);
        self.count.fetch_sub(1, Ordering::Relaxed);
        self.mark_changed(user_id);
    }

    fn mark_changed(&self, user_id: UserId) {
        self.changed_users.lock().unwrap_or_else(PoisonError::into_inner).insert(user_id);
        self.changed.notify_one();
    }

    /// Waits until some user's connection count changed, gathers the changes of the next
    /// `linger` with it, then returns each such user with their current count (0: no connection
    /// left). For the presence reporter: a burst of connections is one update, not one each.
    pub async fn changed_users(&self, linger: std::time::Duration) -> Vec<(UserId, u64)> {
        loop {
            let changed = !self.changed_users.lock().unwrap_or_else(PoisonError::into_inner).is_empty();
            if changed {
                if !linger.is_zero() {
                    tokio::time::sleep(linger).await;
                }
                let users = std::mem::take(&mut *self.changed_users.lock().unwrap_or_else(PoisonError::into_inner));
                return users.into_iter().map(|user| (user, self.connections_of(user) as u64)).collect();
            }
            self.changed.notified().await;
        }
    }

    /// How many connections `user_id` has on this replica.
    pub fn connections_of(&self, user_id: UserId) -> usize {
        self.shard(user_id).lock().unwrap_or_else(PoisonError::into_inner).get(&user_id).copied().unwrap_or(0)
    }

    /// Every user with a connection here, with their connection count.
    pub fn user_counts(&self) -> Vec<(UserId, u64)> {
        let mut counts = Vec::new();
        for shard in &self.users {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            counts.extend(shard.iter().map(|(user, count)| (*user, *count as u64)));
        }
        counts
    }

    /// Live connections on this replica.
    pub fn connection_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Frames a connection may have queued.
    pub fn send_buffer(&self) -> usize {
        self.send_buffer
    }

    /// Hands `notice` to every worker, which queue it on the connections it addresses. Waits
    /// only for room in the workers' queues, never for a connection.
    pub async fn fan_out(&self, notice: Arc<Notice>) {
        self.to_workers(WorkerCommand::Notice(notice)).await;
    }

    /// Queues `frame` on every connection of `user_id` except `except` (the connection the news
    /// came from). A full outbox is left to the next fan-out.
    pub async fn send_to_user(&self, user_id: UserId, except: Option<ConnId>, frame: Bytes) {
        self.to_workers(WorkerCommand::Sync { user_id, except, frame }).await;
    }

    async fn to_workers(&self, command: WorkerCommand) {
        let workers = self.workers.read().unwrap_or_else(PoisonError::into_inner).clone();
        for worker in workers.iter() {
            // A worker that stopped (shutdown) has no connections left to miss it.
            let _ = worker.send(command.clone()).await;
        }
    }

    fn attach(&self, worker: mpsc::Sender<WorkerCommand>) {
        let mut workers = self.workers.write().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<_> = workers.iter().filter(|w| !w.is_closed()).cloned().collect();
        list.push(worker);
        *workers = Arc::from(list);
    }
}

thread_local! {
    /// This thread's worker hubs, one per hub that has connections here.
    static WORKERS: RefCell<Vec<(u64, Rc<WorkerHub>)>> = const { RefCell::new(Vec::new()) };
}

/// One worker thread's connections.
#[derive(Debug, Default)]
pub struct WorkerHub {
    conns: RefCell<HashMap<ConnId, Local>>,
    by_user: RefCell<HashMap<UserId, Vec<ConnId>>>,
    closed: std::cell::Cell<bool>,
    /// Outboxes that got frames and wait for the worker to write them, in the order they got
    /// their first.
    to_flush: RefCell<VecDeque<Rc<Outbox>>>,
}

#[derive(Debug)]
struct Local {
    user_id: UserId,
    is_admin: bool,
    outbox: Rc<Outbox>,
}

impl WorkerHub {
    /// This thread's worker hub of `hub`, started on first use: it takes `hub`'s commands
    /// until shutdown, then closes its connections with 1001. Call it on a worker thread (in a
    /// handler or a connection's task).
    pub fn current(hub: &Arc<Hub>) -> Rc<WorkerHub> {
        WORKERS.with(|workers| {
            let mut workers = workers.borrow_mut();
            if let Some((_, worker)) = workers.iter().find(|(id, _)| *id == hub.id) {
                return worker.clone();
            }
            let worker = Rc::new(WorkerHub::default());
            let (tx, rx) = mpsc::channel(WORKER_QUEUE);
            hub.attach(tx);
            workers.push((hub.id, worker.clone()));
            actix_web::rt::spawn(run_worker(worker.clone(), hub.id, rx, hub.shutdown.clone()));
            worker
        })
    }

    /// Adds a connection whose frames go to `outbox`. A worker that stopped already (shutdown)
    /// closes it at once with 1001.
    pub fn register(&self, id: ConnId, user_id: UserId, is_admin: bool, outbox: Rc<Outbox>) {
        if self.closed.get() {
            outbox.close(CloseCode::GOING_AWAY);
            return;
        }
        self.conns.borrow_mut().insert(id, Local { user_id, is_admin, outbox });
        self.by_user.borrow_mut().entry(user_id).or_default().push(id);
    }

    /// Removes a connection; harmless if it is already gone.
    pub fn unregister(&self, id: ConnId) {
        let Some(local) = self.conns.borrow_mut().remove(&id) else { return };
        let mut by_user = self.by_user.borrow_mut();
        if let Some(ids) = by_user.get_mut(&local.user_id) {
            ids.retain(|c| *c != id);
            if ids.is_empty() {
                by_user.remove(&local.user_id);
            }
        }
    }

    /// Queues `frame` on every connection here that `message` addresses.
    pub fn fan_out(&self, message: &NotificationMessage, frame: &Arc<SharedFrame>) -> FanOut {
        let mut result = FanOut::default();
        let conns = self.conns.borrow();
        let mut to_flush = self.to_flush.borrow_mut();
        let mut offer = |id: ConnId, local: &Local| match local.outbox.offer(frame) {
            Offered::Queued => {
                result.queued += 1;
                if local.outbox.claim_flush() {
                    to_flush.push_back(local.outbox.clone());
                }
            }
            Offered::Full => {
                tracing::warn!(user_id = local.user_id, conn = id, "slow client: send buffer full, closing");
                local.outbox.close(CloseCode::SLOW_CLIENT);
                result.slow += 1;
            }
            // A replayed copy, or a session that is ending and will unregister itself.
            Offered::Replayed | Offered::Closed => {}
        };
        match message.target {
            Target::All | Target::Admin | Target::Group => {
                for (id, local) in conns.iter() {
                    if message.addresses(local.user_id, local.is_admin) {
                        offer(*id, local);
                    }
                }
            }
            Target::User | Target::Custom => {
                let by_user = self.by_user.borrow();
                for user_id in message.target_ids.iter().filter(|id| !message.exclude_ids.contains(id)) {
                    for id in by_user.get(user_id).into_iter().flatten() {
                        if let Some(local) = conns.get(id) {
                            offer(*id, local);
                        }
                    }
                }
            }
        }
        result
    }

    /// Queues `frame` on every connection here of `user_id` except `except`; returns how many
    /// got it. A full outbox is skipped.
    pub fn send_to_user(&self, user_id: UserId, except: Option<ConnId>, frame: &Bytes) -> usize {
        let conns = self.conns.borrow();
        let by_user = self.by_user.borrow();
        let mut to_flush = self.to_flush.borrow_mut();
        let mut queued = 0;
        for local in
            by_user.get(&user_id).into_iter().flatten().filter(|id| Some(**id) != except).filter_map(|id| conns.get(id))
        {
            if local.outbox.offer_own(frame.clone()) == Offered::Queued {
                queued += 1;
                if local.outbox.claim_flush() {
                    to_flush.push_back(local.outbox.clone());
                }
            }
        }
        queued
    }

    /// Writes up to `max` of the outboxes waiting for it to their sockets, the longest waiting
    /// first; returns whether some still wait. Whatever an outbox got until its turn goes out
    /// in its one write.
    pub fn flush(&self, max: usize) -> bool {
        for _ in 0..max {
            // Not borrowed across the flush: it may wake a session, never re-enter the hub.
            let Some(outbox) = self.to_flush.borrow_mut().pop_front() else { return false };
            outbox.flush();
        }
        !self.to_flush.borrow().is_empty()
    }

    /// Asks every connection here to close with `code`, and any that registers later too.
    pub fn close_all(&self, code: CloseCode) {
        self.closed.set(true);
        for local in self.conns.borrow().values() {
            local.outbox.close(code);
        }
    }

    /// Connections registered here.
    #[cfg(test)]
    pub fn connections(&self) -> usize {
        self.conns.borrow().len()
    }
}

/// A worker's loop: the hub's commands, one after another, until shutdown.
async fn run_worker(
    worker: Rc<WorkerHub>,
    hub_id: u64,
    mut commands: mpsc::Receiver<WorkerCommand>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(WORKER_BATCH);
    loop {
        if worker.flush(FLUSH_CHUNK) {
            // Writing ten thousand sockets takes tens of milliseconds: between chunks the
            // thread's other tasks run, and notices that came meanwhile join the frames still
            // waiting, which then go out in the same writes (a burst batches itself).
            tokio::task::yield_now().await;
            if shutdown.is_cancelled() {
                break;
            }
            while batch.len() < WORKER_BATCH
                && let Ok(command) = commands.try_recv()
            {
                batch.push(command);
            }
        } else {
            let received = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                received = commands.recv_many(&mut batch, WORKER_BATCH) => received,
            };
            if received == 0 {
                break;
            }
        }
        for command in batch.drain(..) {
            match command {
                WorkerCommand::Notice(notice) => {
                    let fan_out = worker.fan_out(&notice.message, &notice.frame);
                    if fan_out.queued + fan_out.slow > 0 {
                        tracing::trace!(message_id = %notice.frame.message_id, queued = fan_out.queued, slow = fan_out.slow, "fanned out");
                    }
                }
                WorkerCommand::Sync { user_id, except, frame } => {
                    worker.send_to_user(user_id, except, &frame);
                }
            }
        }
    }
    worker.close_all(CloseCode::GOING_AWAY);
    WORKERS.with(|workers| workers.borrow_mut().retain(|(id, _)| *id != hub_id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{MessageId, NotificationType, Priority, Sender};
    use std::collections::HashSet;
    use std::time::Duration;

    fn frame() -> Arc<SharedFrame> {
        Arc::new(SharedFrame { message_id: MessageId::generate(), bytes: Bytes::from_static(b"f") })
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
            channels: Default::default(),
            fallback: None,
            sender: Sender { id: 1, name: "admin".into() },
        }
    }

    /// A live outbox (its replay done) registered on `worker` as connection `id` of `user`.
    fn connect(worker: &WorkerHub, id: ConnId, user: UserId, is_admin: bool, limit: usize) -> Rc<Outbox> {
        let outbox = Rc::new(Outbox::new(limit, None));
        outbox.replay_done(Vec::new(), HashSet::new());
        worker.register(id, user, is_admin, outbox.clone());
        outbox
    }

    #[test]
    fn fan_out_follows_targets_and_exclusions() {
        let worker = WorkerHub::default();
        let admin = connect(&worker, 1, 1, true, 8);
        let alice_phone = connect(&worker, 2, 2, false, 8);
        let alice_laptop = connect(&worker, 3, 2, false, 8);
        let bob = connect(&worker, 4, 3, false, 8);
        let frame = frame();

        assert_eq!(worker.fan_out(&message(Target::All, vec![], vec![3]), &frame).queued, 3);
        assert_eq!(worker.fan_out(&message(Target::Admin, vec![], vec![]), &frame).queued, 1);
        assert_eq!(worker.fan_out(&message(Target::Custom, vec![2, 3, 99], vec![3]), &frame).queued, 2);

        assert_eq!([admin.queued(), alice_phone.queued(), alice_laptop.queued(), bob.queued()], [2, 2, 2, 0]);
    }

    #[test]
    fn a_full_send_buffer_closes_only_that_connection() {
        let worker = WorkerHub::default();
        let slow = connect(&worker, 1, 5, false, 2);
        let fast = connect(&worker, 2, 6, false, 2);
        let all = message(Target::All, vec![], vec![]);
        for _ in 0..2 {
            assert_eq!(worker.fan_out(&all, &frame()).queued, 2);
            fast.write_with(|queue, _| Ok(queue.iter().map(|f| f.bytes().len()).sum())).unwrap();
        }
        let third = worker.fan_out(&all, &frame());
        assert_eq!((third.queued, third.slow), (1, 1));
        assert_eq!(slow.close_requested(), Some(CloseCode::SLOW_CLIENT));
        assert_eq!(fast.close_requested(), None);
        assert_eq!(worker.fan_out(&all, &frame()).queued, 1, "the fast client keeps receiving");
    }

    #[test]
    fn sync_frames_skip_the_origin_and_other_users() {
        let worker = WorkerHub::default();
        let phone = connect(&worker, 1, 7, false, 8);
        let laptop = connect(&worker, 2, 7, false, 8);
        let other = connect(&worker, 3, 8, false, 8);
        assert_eq!(worker.send_to_user(7, Some(1), &Bytes::from_static(b"sync")), 1);
        assert_eq!([phone.queued(), laptop.queued(), other.queued()], [0, 1, 0]);
    }

    #[test]
    fn unregister_forgets_the_connection_and_close_all_closes_later_ones_too() {
        let worker = WorkerHub::default();
        let outbox = connect(&worker, 1, 7, false, 8);
        worker.unregister(1);
        worker.unregister(1);
        assert_eq!(worker.connections(), 0);
        assert_eq!(worker.fan_out(&message(Target::Custom, vec![7], vec![]), &frame()).queued, 0);
        assert_eq!(outbox.queued(), 0);
        let open = connect(&worker, 2, 7, false, 8);
        worker.close_all(CloseCode::GOING_AWAY);
        assert_eq!(open.close_requested(), Some(CloseCode::GOING_AWAY));
        let late = connect(&worker, 3, 8, false, 8);
        assert_eq!(late.close_requested(), Some(CloseCode::GOING_AWAY));
    }

    #[test]
    fn a_user_past_the_connection_limit_is_refused_until_one_closes() {
        let hub = Arc::new(Hub::new(4, 2, CancellationToken::new()));
        let first = hub.admit(7).unwrap();
        let _second = hub.admit(7).unwrap();
        assert!(hub.admit(7).is_none());
        assert!(hub.admit(8).is_some(), "another user has their own allowance");
        drop(first);
        assert!(hub.admit(7).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn changes_within_the_linger_are_reported_together() {
        let hub = Arc::new(Hub::new(4, 16, CancellationToken::new()));
        let _a = hub.admit(7).unwrap();
        let reporter = {
            let hub = hub.clone();
            tokio::spawn(async move { hub.changed_users(Duration::from_millis(50)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let _b = hub.admit(8).unwrap();
        let mut changed = reporter.await.unwrap();
        changed.sort();
        assert_eq!(changed, vec![(7, 1), (8, 1)], "one update for both");
    }

    #[tokio::test]
    async fn connection_counts_and_their_changes_are_reported() {
        let hub = Arc::new(Hub::new(4, 16, CancellationToken::new()));
        let a = hub.admit(7).unwrap();
        let b = hub.admit(7).unwrap();
        let _c = hub.admit(8).unwrap();
        let mut changed = hub.changed_users(Duration::ZERO).await;
        changed.sort();
        assert_eq!(changed, vec![(7, 2), (8, 1)]);
        drop(a);
        assert_eq!(hub.changed_users(Duration::ZERO).await, vec![(7, 1)]);
        let nothing = tokio::time::timeout(Duration::from_millis(50), hub.changed_users(Duration::ZERO)).await;
        assert!(nothing.is_err(), "nothing changed");
        let mut counts = hub.user_counts();
        counts.sort();
        assert_eq!(counts, vec![(7, 1), (8, 1)]);
        assert_eq!(hub.connection_count(), 2);
        drop(b);
        assert_eq!(hub.connections_of(7), 0);
    }
}
