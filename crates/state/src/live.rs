//! Live state in the relational database, for a Herald without Redis (the all-in-one's default):
//! offline inboxes, notice audiences, idempotency keys, receipts already recorded, and the
//! in-process bus's journal and dead letters, all in the one database the directory uses, so
//! that a restart (or a SIGKILL) loses none of it.
//!
//! The same rules as the Redis stores (limits, expiry, atomicity), expressed as transactions.
//! [`LiveState::accept_notice`] writes a notice's inbox copies, its audience and its bus journal
//! entry in one transaction: once the API answers, all three exist or none does.

use crate::inbox::{Replay, score};
use crate::settings::OfflineSettings;
use bus::{DeadLetter, Exchange, Journal, JournalEntry, JournalFuture};
use bytes::Bytes;
use database::entity::{audience, bus_journal, dead_letter, idempotency_key, inbox_dropped, inbox_entry, receipt};
use model::{Audience, MessageId, UserId};
use sea_orm::sea_query::{Expr, Func, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Rows per multi-row insert: under every backend's bound-parameter limit.
const INSERT_CHUNK: usize = 200;
/// How often expired audiences, keys and receipts are deleted.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Replays waiting for the batcher before a connecting user waits for room.
const REPLAY_QUEUE: usize = 4096;
/// Users one replay batch reads at most.
const REPLAY_BATCH: usize = 200;

/// Notices one acceptance transaction carries at most.
const ACCEPT_BATCH: usize = 64;

/// A notice's inbox copies: its entry for each recipient.
struct InboxCopies<'a> {
    recipients: &'a [UserId],
    id: &'a MessageId,
    entry: &'a str,
}

/// A notice to accept: its inbox copies, its audience and its journal entry.
struct Acceptance {
    id: MessageId,
    recipients: Vec<UserId>,
    entry: String,
    audience: Audience,
    retention: Duration,
    exchange: Exchange,
    routing_key: String,
    payload: Vec<u8>,
}

/// A notice waiting for the acceptance batcher, and where its journal id goes.
type AcceptRequest = (Acceptance, oneshot::Sender<Result<i64, DbErr>>);

/// A connecting user's replay, waiting for the batcher.
type ReplayRequest = (UserId, oneshot::Sender<Result<Replay, DbErr>>);

/// The live state over one database connection pool. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LiveState {
    db: DatabaseConnection,
    max_per_user: usize,
    ttl: Duration,
    /// Replays go through one task that reads them in batches: connecting users then cost the
    /// database a few statements per batch, not per user.
    replays: mpsc::Sender<ReplayRequest>,
    /// Notices accepted together share one transaction (a group commit).
    acceptances: mpsc::Sender<AcceptRequest>,
    /// On SQLite, which Herald opens from one process only: the users whose inbox may hold
    /// something, so that connecting users who never had an entry cost no query at all.
    holders: Option<Arc<InboxHolders>>,
}

/// The users an inbox was written for: everyone with entries or a dropped count is in it (it
/// may name users whose inbox emptied since). It grows from the database at start and from
/// every store, before the store commits; it is only trusted once loaded, and given up past
/// [`MAX_HOLDERS`] users.
#[derive(Debug, Default)]
struct InboxHolders {
    loaded: AtomicBool,
    users: Mutex<HashSet<UserId>>,
}

/// Users [`InboxHolders`] keeps before it stops answering (every replay then queries).
const MAX_HOLDERS: usize = 1_000_000;

impl InboxHolders {
    fn add(&self, users: &[UserId]) {
        let mut held = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        held.extend(users.iter().copied());
        if held.len() > MAX_HOLDERS {
            // Too many to keep in memory: answer nothing from here on.
            self.loaded.store(false, Ordering::Release);
            held.clear();
            held.shrink_to_fit();
        }
    }

    /// Whether `user`'s inbox is known to be empty.
    fn surely_empty(&self, user: UserId) -> bool {
        self.loaded.load(Ordering::Acquire)
            && !self.users.lock().unwrap_or_else(PoisonError::into_inner).contains(&user)
    }
}

/// The journal entry a notice is accepted with.
#[derive(Clone, Copy, Debug)]
pub struct JournalRow<'a> {
    /// Where the notice is published.
    pub exchange: Exchange,
    /// Its routing key.
    pub routing_key: &'a str,
    /// The envelope.
    pub payload: &'a [u8],
}

impl LiveState {
    /// The live state in `db` (already migrated), with `offline`'s inbox limits; expired rows are
    /// deleted every hour until `shutdown`.
    pub fn new(db: DatabaseConnection, offline: &OfflineSettings, shutdown: CancellationToken) -> Self {
        let (replays, requests) = mpsc::channel(REPLAY_QUEUE);
        let (acceptances, accepting) = mpsc::channel(ACCEPT_BATCH * 4);
        let holders = (db.get_database_backend() == DatabaseBackend::Sqlite).then(Arc::default);
        let state = Self {
            db,
            max_per_user: offline.max_per_user,
            ttl: Duration::from_secs(offline.ttl_secs),
            replays,
            acceptances,
            holders,
        };
        tokio::spawn(state.clone().housekeeping(shutdown.clone()));
        tokio::spawn(state.clone().replay_batches(requests, shutdown.clone()));
        tokio::spawn(state.clone().accept_batches(accepting, shutdown));
        state
    }

    /// Whether the database answers right now.
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }

    fn oldest_score(&self) -> i64 {
        now_ms().saturating_mul(1000) - self.ttl.as_micros() as i64
    }

    // Offline inboxes ------------------------------------------------------------------------

    /// Keeps `entry` (spec 5.1 JSON) for each of `recipients`, trimming by age and count.
    pub(crate) async fn store(&self, recipients: &[UserId], id: &MessageId, entry: &str) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        self.store_in(&txn, recipients, id, entry).await?;
        txn.commit().await
    }

    async fn store_in<C: ConnectionTrait>(
        &self,
        db: &C,
        recipients: &[UserId],
        id: &MessageId,
        entry: &str,
    ) -> Result<(), DbErr> {
        self.store_many_in(db, &[InboxCopies { recipients, id, entry }]).await
    }

    /// Keeps each notice's entry for its recipients, then trims every inbox touched by age and
    /// count once (which drops what trimming after each would have).
    async fn store_many_in<C: ConnectionTrait>(&self, db: &C, notices: &[InboxCopies<'_>]) -> Result<(), DbErr> {
        if let Some(holders) = &self.holders {
            // Before the commit: a replay that reads the index after it then queries.
            for notice in notices {
                holders.add(notice.recipients);
            }
        }
        let rows: Vec<inbox_entry::ActiveModel> = notices
            .iter()
            .flat_map(|notice| {
                notice.recipients.iter().map(|user| inbox_entry::ActiveModel {
                    user_id: Set(*user),
                    message_id: Set(notice.id.to_string()),
                    score: Set(score(notice.id)),
                    entry: Set(notice.entry.to_owned()),
                })
            })
            .collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            inbox_entry::Entity::insert_many(chunk.to_vec())
                .on_conflict_do_nothing_on([inbox_entry::Column::UserId, inbox_entry::Column::MessageId])
                .exec_without_returning(db)
                .await?;
        }
        let mut users: Vec<UserId> = notices.iter().flat_map(|notice| notice.recipients.iter().copied()).collect();
        users.sort_unstable();
        users.dedup();
        self.trim_in(db, &users).await?;
        Ok(())
    }

    /// Trims the inboxes of `users` to the limits (entries past their age, then the oldest past
    /// the count), counting what goes as dropped; returns how many went.
    async fn trim_in<C: ConnectionTrait>(&self, db: &C, users: &[UserId]) -> Result<u64, DbErr> {
        let oldest = self.oldest_score();
        let mut total = 0_u64;
        for users in users.chunks(INSERT_CHUNK) {
            let mut dropped: HashMap<UserId, i64> = HashMap::new();
            // Each inbox's size, and how much of it is too old (what a Redis inbox's trimming
            // drops), in one read.
            let counts: Vec<(i64, i64, i64)> = inbox_entry::Entity::find()
                .select_only()
                .column(inbox_entry::Column::UserId)
                .column_as(inbox_entry::Column::MessageId.count(), "n")
                .column_as(Expr::from(Func::count(Expr::case(inbox_entry::Column::Score.lt(oldest), 1))), "expired")
                .filter(inbox_entry::Column::UserId.is_in(users.iter().copied()))
                .group_by(inbox_entry::Column::UserId)
                .into_tuple()
                .all(db)
                .await?;
            let expired: Vec<UserId> = counts.iter().filter(|(_, _, old)| *old > 0).map(|(user, _, _)| *user).collect();
            if !expired.is_empty() {
                inbox_entry::Entity::delete_many()
                    .filter(inbox_entry::Column::UserId.is_in(expired))
                    .filter(inbox_entry::Column::Score.lt(oldest))
                    .exec(db)
                    .await?;
            }
            for (user, count, old) in counts {
                if old > 0 {
                    *dropped.entry(user).or_default() += old;
                }
                // Too many: the oldest go.
                let over = count - old - self.max_per_user as i64;
                if over <= 0 {
                    continue;
                }
                let oldest_ids: Vec<String> = inbox_entry::Entity::find()
                    .select_only()
                    .column(inbox_entry::Column::MessageId)
                    .filter(inbox_entry::Column::UserId.eq(user))
                    .order_by_asc(inbox_entry::Column::Score)
                    .order_by_asc(inbox_entry::Column::MessageId)
                    .limit(over as u64)
                    .into_tuple()
                    .all(db)
                    .await?;
                inbox_entry::Entity::delete_many()
                    .filter(inbox_entry::Column::UserId.eq(user))
                    .filter(inbox_entry::Column::MessageId.is_in(oldest_ids))
                    .exec(db)
                    .await?;
                *dropped.entry(user).or_default() += over;
            }
            for (user, count) in dropped {
                total += u64::try_from(count).unwrap_or(0);
                add_dropped(db, user, count).await?;
            }
        }
        Ok(total)
    }

    /// What `user` has not acknowledged, oldest first, and how many were dropped since the last
    /// replay (the count is reset). Read together with the other users connecting meanwhile.
    pub(crate) async fn replay(&self, user: UserId) -> Result<Replay, DbErr> {
        if self.holders.as_ref().is_some_and(|holders| holders.surely_empty(user)) {
            return Ok(Replay::default());
        }
        let (tx, rx) = oneshot::channel();
        let gone = || DbErr::Custom("the live state is shut down".to_owned());
        self.replays.send((user, tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Serves replays until shutdown: whatever accumulated while the last batch was read is the
    /// next batch (no waiting to fill one: one user alone is read at once).
    async fn replay_batches(self, mut requests: mpsc::Receiver<ReplayRequest>, shutdown: CancellationToken) {
        if let Some(holders) = &self.holders {
            match self.inbox_holders().await {
                Ok(users) => {
                    holders.add(&users);
                    holders.loaded.store(
                        holders.users.lock().unwrap_or_else(PoisonError::into_inner).len() <= MAX_HOLDERS,
                        Ordering::Release,
                    );
                }
                // Every replay queries, as without the index.
                Err(err) => tracing::warn!(error = %err, "inbox holders not loaded"),
            }
        }
        let mut batch = Vec::with_capacity(REPLAY_BATCH);
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => break,
                n = requests.recv_many(&mut batch, REPLAY_BATCH) => n,
            };
            if received == 0 {
                break;
            }
            let mut users: Vec<UserId> = batch.iter().map(|(user, _)| *user).collect();
            users.sort_unstable();
            users.dedup();
            match self.replay_many(&users).await {
                Ok(mut replays) => {
                    for (user, answer) in batch.drain(..) {
                        // A user connecting twice at once gets the entries on both connections,
                        // and the dropped count (which a replay resets) on the first, as two
                        // replays one after the other would.
                        let replay = replays.get_mut(&user).map(|replay| {
                            let first = replay.clone();
                            replay.dropped = 0;
                            first
                        });
                        let _ = answer.send(Ok(replay.unwrap_or_default()));
                    }
                }
                Err(err) => {
                    for (_, answer) in batch.drain(..) {
                        let _ = answer.send(Err(DbErr::Custom(err.to_string())));
                    }
                }
            }
        }
    }

    /// Every user with inbox entries or a dropped count.
    async fn inbox_holders(&self) -> Result<Vec<UserId>, DbErr> {
        let mut users: Vec<UserId> = inbox_entry::Entity::find()
            .select_only()
            .column(inbox_entry::Column::UserId)
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await?;
        let dropped: Vec<UserId> = inbox_dropped::Entity::find()
            .select_only()
            .column(inbox_dropped::Column::UserId)
            .into_tuple()
            .all(&self.db)
            .await?;
        users.extend(dropped);
        Ok(users)
    }

    /// The replays of `users` (distinct) in one transaction: expired entries deleted and counted
    /// with the dropped ones, those counts reset, the entries read.
    async fn replay_many(&self, users: &[UserId]) -> Result<HashMap<UserId, Replay>, DbErr> {
        let mut replays: HashMap<UserId, Replay> = HashMap::new();
        let oldest = self.oldest_score();
        let txn = self.db.begin().await?;
        for users in users.chunks(REPLAY_BATCH) {
            let expired: Vec<(i64, i64)> = inbox_entry::Entity::find()
                .select_only()
                .column(inbox_entry::Column::UserId)
                .column_as(inbox_entry::Column::MessageId.count(), "n")
                .filter(inbox_entry::Column::UserId.is_in(users.iter().copied()))
                .filter(inbox_entry::Column::Score.lt(oldest))
                .group_by(inbox_entry::Column::UserId)
                .into_tuple()
                .all(&txn)
                .await?;
            if !expired.is_empty() {
                inbox_entry::Entity::delete_many()
                    .filter(inbox_entry::Column::UserId.is_in(expired.iter().map(|(user, _)| *user)))
                    .filter(inbox_entry::Column::Score.lt(oldest))
                    .exec(&txn)
                    .await?;
            }
            let counted = inbox_dropped::Entity::find()
                .filter(inbox_dropped::Column::UserId.is_in(users.iter().copied()))
                .all(&txn)
                .await?;
            if !counted.is_empty() {
                inbox_dropped::Entity::delete_many()
                    .filter(inbox_dropped::Column::UserId.is_in(counted.iter().map(|row| row.user_id)))
                    .exec(&txn)
                    .await?;
            }
            for (user, n) in expired {
                replays.entry(user).or_default().dropped += n.max(0) as u64;
            }
            for row in counted {
                replays.entry(row.user_id).or_default().dropped += row.dropped.max(0) as u64;
            }
            let entries: Vec<(i64, String)> = inbox_entry::Entity::find()
                .select_only()
                .column(inbox_entry::Column::UserId)
                .column(inbox_entry::Column::Entry)
                .filter(inbox_entry::Column::UserId.is_in(users.iter().copied()))
                .order_by_asc(inbox_entry::Column::UserId)
                .order_by_asc(inbox_entry::Column::Score)
                .order_by_asc(inbox_entry::Column::MessageId)
                .into_tuple()
                .all(&txn)
                .await?;
            for (user, entry) in entries {
                replays.entry(user).or_default().entries.push(entry);
            }
        }
        txn.commit().await?;
        Ok(replays)
    }

    /// Removes `user`'s entry for `id`; returns whether there was one.
    pub(crate) async fn acknowledge(&self, user: UserId, id: &MessageId) -> Result<bool, DbErr> {
        let removed = inbox_entry::Entity::delete_many()
            .filter(inbox_entry::Column::UserId.eq(user))
            .filter(inbox_entry::Column::MessageId.eq(id.as_str()))
            .exec(&self.db)
            .await?;
        Ok(removed.rows_affected == 1)
    }

    /// Deletes everything kept for `user`.
    pub(crate) async fn forget_inbox(&self, user: UserId) -> Result<(), DbErr> {
        inbox_entry::Entity::delete_many().filter(inbox_entry::Column::UserId.eq(user)).exec(&self.db).await?;
        inbox_dropped::Entity::delete_by_id(user).exec(&self.db).await?;
        Ok(())
    }

    // Audiences ------------------------------------------------------------------------------

    /// Remembers who `id` was for, for `retention`.
    pub(crate) async fn remember(&self, id: &MessageId, who: &Audience, retention: Duration) -> Result<(), DbErr> {
        remember_in(&self.db, id, who, retention).await
    }

    /// Who `id` was for, unless unknown or expired.
    pub(crate) async fn lookup(&self, id: &MessageId) -> Result<Option<Audience>, DbErr> {
        let row = audience::Entity::find_by_id(id.to_string())
            .filter(audience::Column::ExpiresAt.gt(now_ms()))
            .one(&self.db)
            .await?;
        Ok(row.and_then(|row| serde_json::from_str(&row.audience).ok()))
    }

    /// Forgets `id`.
    pub(crate) async fn forget_audience(&self, id: &MessageId) -> Result<(), DbErr> {
        audience::Entity::delete_by_id(id.to_string()).exec(&self.db).await.map(|_| ())
    }

    // Idempotency keys -----------------------------------------------------------------------

    /// The stored value of a key, unless expired.
    pub(crate) async fn key_value(&self, scope: &str, key: &str) -> Result<Option<String>, DbErr> {
        let row = idempotency_key::Entity::find_by_id((scope.to_owned(), key.to_owned()))
            .filter(idempotency_key::Column::ExpiresAt.gt(now_ms()))
            .one(&self.db)
            .await?;
        Ok(row.map(|row| row.value))
    }

    /// Sets a key's value for `ttl` if it holds `expected` (`None`: if it is absent or expired);
    /// returns whether it did.
    pub(crate) async fn swap_key(
        &self,
        scope: &str,
        key: &str,
        expected: Option<&str>,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, DbErr> {
        let now = now_ms();
        let expires_at = now + ttl.as_millis() as i64;
        let update = idempotency_key::Entity::update_many()
            .col_expr(idempotency_key::Column::Value, Expr::value(value))
            .col_expr(idempotency_key::Column::ExpiresAt, Expr::value(expires_at))
            .filter(idempotency_key::Column::Scope.eq(scope))
            .filter(idempotency_key::Column::IdemKey.eq(key));
        let updated = match expected {
            Some(expected) => update.filter(idempotency_key::Column::Value.eq(expected)).exec(&self.db).await?,
            None => {
                // An expired row counts as absent: take it over, else insert.
                let taken = update.filter(idempotency_key::Column::ExpiresAt.lte(now)).exec(&self.db).await?;
                if taken.rows_affected == 1 {
                    return Ok(true);
                }
                let row = idempotency_key::ActiveModel {
                    scope: Set(scope.to_owned()),
                    idem_key: Set(key.to_owned()),
                    value: Set(value.to_owned()),
                    expires_at: Set(expires_at),
                };
                return inserted_unless_present(
                    idempotency_key::Entity::insert(row).exec_without_returning(&self.db).await,
                );
            }
        };
        Ok(updated.rows_affected == 1)
    }

    /// Sets a key's value for `ttl` whatever it held.
    pub(crate) async fn put_key(&self, scope: &str, key: &str, value: &str, ttl: Duration) -> Result<(), DbErr> {
        let row = idempotency_key::ActiveModel {
            scope: Set(scope.to_owned()),
            idem_key: Set(key.to_owned()),
            value: Set(value.to_owned()),
            expires_at: Set(now_ms() + ttl.as_millis() as i64),
        };
        let keys = OnConflict::columns([idempotency_key::Column::Scope, idempotency_key::Column::IdemKey])
            .update_columns([idempotency_key::Column::Value, idempotency_key::Column::ExpiresAt])
            .to_owned();
        idempotency_key::Entity::insert(row).on_conflict(keys).exec_without_returning(&self.db).await.map(|_| ())
    }

    /// Deletes a key.
    pub(crate) async fn delete_key(&self, scope: &str, key: &str) -> Result<(), DbErr> {
        idempotency_key::Entity::delete_by_id((scope.to_owned(), key.to_owned())).exec(&self.db).await.map(|_| ())
    }

    // Receipts -------------------------------------------------------------------------------

    /// Records that `user` reported `event` about `id` from `device`, for `retention`; returns
    /// whether it is the first such report.
    pub(crate) async fn first_receipt(
        &self,
        id: &MessageId,
        user: UserId,
        event: &str,
        device: &str,
        retention: Duration,
    ) -> Result<bool, DbErr> {
        let row = receipt::ActiveModel {
            message_id: Set(id.to_string()),
            user_id: Set(user),
            event: Set(event.to_owned()),
            device: Set(device.to_owned()),
            expires_at: Set(now_ms() + retention.as_millis() as i64),
        };
        inserted_unless_present(receipt::Entity::insert(row).exec_without_returning(&self.db).await)
    }

    /// Forgets a receipt (its event could not be published, so a repeat must count again).
    pub(crate) async fn forget_receipt(
        &self,
        id: &MessageId,
        user: UserId,
        event: &str,
        device: &str,
    ) -> Result<(), DbErr> {
        receipt::Entity::delete_by_id((id.to_string(), user, event.to_owned(), device.to_owned()))
            .exec(&self.db)
            .await
            .map(|_| ())
    }

    /// Which of `users` have a receipt of `id` (any event, any device) not yet expired.
    pub(crate) async fn acknowledged(&self, id: &MessageId, users: &[UserId]) -> Result<HashSet<UserId>, DbErr> {
        if users.is_empty() {
            return Ok(HashSet::new());
        }
        let rows: Vec<UserId> = receipt::Entity::find()
            .select_only()
            .column(receipt::Column::UserId)
            .distinct()
            .filter(receipt::Column::MessageId.eq(id.to_string()))
            .filter(receipt::Column::UserId.is_in(users.iter().copied()))
            .filter(receipt::Column::ExpiresAt.gt(now_ms()))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().collect())
    }

    // Accepting a notice ---------------------------------------------------------------------

    /// Accepts a notice in one transaction with the others accepted at the same moment (a group
    /// commit): its inbox copies for `recipients`, its audience `who` (kept for
    /// `audience_retention`) and its bus journal entry, all written or none. Returns the journal
    /// entry's id once committed.
    pub async fn accept_notice(
        &self,
        id: &MessageId,
        recipients: &[UserId],
        entry: &str,
        who: &Audience,
        audience_retention: Duration,
        journal: JournalRow<'_>,
    ) -> Result<i64, DbErr> {
        let acceptance = Acceptance {
            id: id.clone(),
            recipients: recipients.to_vec(),
            entry: entry.to_owned(),
            audience: who.clone(),
            retention: audience_retention,
            exchange: journal.exchange,
            routing_key: journal.routing_key.to_owned(),
            payload: journal.payload.to_vec(),
        };
        let (tx, rx) = oneshot::channel();
        let gone = || DbErr::Custom("the live state is shut down".to_owned());
        self.acceptances.send((acceptance, tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Accepts notices until shutdown: whatever accumulated while the last transaction ran is
    /// the next one. Should a shared transaction fail, each of its notices is tried alone, so
    /// that one the database refuses does not take the others with it.
    async fn accept_batches(self, mut requests: mpsc::Receiver<AcceptRequest>, shutdown: CancellationToken) {
        let mut batch = Vec::with_capacity(ACCEPT_BATCH);
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => break,
                n = requests.recv_many(&mut batch, ACCEPT_BATCH) => n,
            };
            if received == 0 {
                break;
            }
            let notices: Vec<&Acceptance> = batch.iter().map(|(acceptance, _)| acceptance).collect();
            match self.accept_in_one(&notices).await {
                Ok(ids) => {
                    for ((_, answer), id) in batch.drain(..).zip(ids) {
                        let _ = answer.send(Ok(id));
                    }
                }
                Err(err) if batch.len() == 1 => {
                    if let Some((_, answer)) = batch.pop() {
                        let _ = answer.send(Err(err));
                    }
                }
                Err(_) => {
                    for (acceptance, answer) in batch.drain(..) {
                        let _ = answer.send(self.accept_in_one(&[&acceptance]).await.map(|ids| ids[0]));
                    }
                }
            }
        }
    }

    /// `notices` in one transaction; their journal ids, in order.
    async fn accept_in_one(&self, notices: &[&Acceptance]) -> Result<Vec<i64>, DbErr> {
        let txn = self.db.begin().await?;
        let copies: Vec<InboxCopies<'_>> = notices
            .iter()
            .map(|notice| InboxCopies { recipients: &notice.recipients, id: &notice.id, entry: &notice.entry })
            .collect();
        self.store_many_in(&txn, &copies).await?;
        remember_many_in(&txn, notices.iter().map(|notice| (&notice.id, &notice.audience, notice.retention))).await?;
        let mut ids = Vec::with_capacity(notices.len());
        for notice in notices {
            ids.push(append_in(&txn, notice.exchange, &notice.routing_key, &notice.payload).await?);
        }
        txn.commit().await?;
        Ok(ids)
    }

    // Housekeeping ---------------------------------------------------------------------------

    /// Trims every inbox past a limit (entries older than `offline.ttl_secs`, more than
    /// `offline.max_per_user`), a page of users per transaction; returns how many inboxes were
    /// past one and how many entries went (counted as dropped for the next replay).
    pub(crate) async fn trim_inboxes(&self) -> Result<(u64, u64), DbErr> {
        use sea_orm::sea_query::ExprTrait as _;
        let max = i64::try_from(self.max_per_user).unwrap_or(i64::MAX);
        let (mut after, mut inboxes, mut dropped) = (0_i64, 0_u64, 0_u64);
        loop {
            let past_a_limit = Condition::any()
                .add(Expr::expr(Func::count(Expr::col(inbox_entry::Column::MessageId))).gt(max))
                .add(Expr::expr(Func::min(Expr::col(inbox_entry::Column::Score))).lt(self.oldest_score()));
            let users: Vec<UserId> = inbox_entry::Entity::find()
                .select_only()
                .column(inbox_entry::Column::UserId)
                .filter(inbox_entry::Column::UserId.gt(after))
                .group_by(inbox_entry::Column::UserId)
                .having(past_a_limit)
                .order_by_asc(inbox_entry::Column::UserId)
                .limit(INSERT_CHUNK as u64)
                .into_tuple()
                .all(&self.db)
                .await?;
            let Some(&last) = users.last() else { return Ok((inboxes, dropped)) };
            let txn = self.db.begin().await?;
            dropped += self.trim_in(&txn, &users).await?;
            txn.commit().await?;
            inboxes += users.len() as u64;
            after = last;
        }
    }

    /// Deletes expired audiences, keys and receipts, and inbox entries past their age.
    pub async fn delete_expired(&self) -> Result<u64, DbErr> {
        let now = now_ms();
        let mut deleted = 0;
        deleted += audience::Entity::delete_many()
            .filter(audience::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?
            .rows_affected;
        deleted += idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?
            .rows_affected;
        deleted += receipt::Entity::delete_many()
            .filter(receipt::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?
            .rows_affected;
        deleted += inbox_entry::Entity::delete_many()
            .filter(inbox_entry::Column::Score.lt(self.oldest_score()))
            .exec(&self.db)
            .await?
            .rows_affected;
        Ok(deleted)
    }

    async fn housekeeping(self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(HOUSEKEEPING_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = every.tick() => match self.delete_expired().await {
                    Ok(deleted) => tracing::debug!(deleted, "expired live state deleted"),
                    Err(err) => tracing::warn!(error = %err, "expired live state not deleted"),
                },
            }
        }
    }
}

/// Whether a plain insert (outside a transaction) inserted its row: a unique violation means the
/// row was there. (Not `ON CONFLICT DO NOTHING`: MySQL's stand-in for it reports a found row as
/// affected, so the two cannot be told apart there.)
fn inserted_unless_present<T>(result: Result<T, DbErr>) -> Result<bool, DbErr> {
    match result {
        Ok(_) => Ok(true),
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(err) => Err(err),
    }
}

async fn add_dropped<C: ConnectionTrait>(db: &C, user: UserId, count: i64) -> Result<(), DbErr> {
    let row = inbox_dropped::ActiveModel { user_id: Set(user), dropped: Set(count) };
    let on_conflict = OnConflict::column(inbox_dropped::Column::UserId)
        .value(
            inbox_dropped::Column::Dropped,
            sea_orm::sea_query::ExprTrait::add(
                Expr::col((inbox_dropped::Entity, inbox_dropped::Column::Dropped)),
                count,
            ),
        )
        .to_owned();
    inbox_dropped::Entity::insert(row).on_conflict(on_conflict).exec_without_returning(db).await.map(|_| ())
}

/// Remembers each notice's audience (one insert for them all).
async fn remember_many_in<'a, C: ConnectionTrait>(
    db: &C,
    notices: impl Iterator<Item = (&'a MessageId, &'a Audience, Duration)>,
) -> Result<(), DbErr> {
    let now = now_ms();
    let mut rows = Vec::new();
    for (id, who, retention) in notices {
        rows.push(audience::ActiveModel {
            message_id: Set(id.to_string()),
            audience: Set(serde_json::to_string(who).map_err(|err| DbErr::Custom(err.to_string()))?),
            expires_at: Set(now + retention.as_millis() as i64),
        });
    }
    for chunk in rows.chunks(INSERT_CHUNK) {
        let on_conflict = OnConflict::column(audience::Column::MessageId)
            .update_columns([audience::Column::Audience, audience::Column::ExpiresAt])
            .to_owned();
        audience::Entity::insert_many(chunk.to_vec()).on_conflict(on_conflict).exec_without_returning(db).await?;
    }
    Ok(())
}

async fn remember_in<C: ConnectionTrait>(
    db: &C,
    id: &MessageId,
    who: &Audience,
    retention: Duration,
) -> Result<(), DbErr> {
    let row = audience::ActiveModel {
        message_id: Set(id.to_string()),
        audience: Set(serde_json::to_string(who).map_err(|err| DbErr::Custom(err.to_string()))?),
        expires_at: Set(now_ms() + retention.as_millis() as i64),
    };
    let on_conflict = OnConflict::column(audience::Column::MessageId)
        .update_columns([audience::Column::Audience, audience::Column::ExpiresAt])
        .to_owned();
    audience::Entity::insert(row).on_conflict(on_conflict).exec_without_returning(db).await.map(|_| ())
}

async fn append_in<C: ConnectionTrait>(
    db: &C,
    exchange: Exchange,
    routing_key: &str,
    payload: &[u8],
) -> Result<i64, DbErr> {
    let row = bus_journal::ActiveModel {
        exchange: Set(exchange.as_str().to_owned()),
        routing_key: Set(routing_key.to_owned()),
        payload: Set(String::from_utf8_lossy(payload).into_owned()),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    Ok(bus_journal::Entity::insert(row).exec(db).await?.last_insert_id)
}

impl Journal for LiveState {
    fn append<'a>(&'a self, exchange: Exchange, routing_key: &'a str, payload: &'a [u8]) -> JournalFuture<'a, i64> {
        Box::pin(
            async move { append_in(&self.db, exchange, routing_key, payload).await.map_err(|err| err.to_string()) },
        )
    }

    fn remove<'a>(&'a self, ids: &'a [i64]) -> JournalFuture<'a, ()> {
        Box::pin(async move {
            bus_journal::Entity::delete_many()
                .filter(bus_journal::Column::Id.is_in(ids.iter().copied()))
                .exec(&self.db)
                .await
                .map(|_| ())
                .map_err(|err| err.to_string())
        })
    }

    fn pending(&self) -> JournalFuture<'_, Vec<JournalEntry>> {
        Box::pin(async move {
            let rows = bus_journal::Entity::find()
                .order_by_asc(bus_journal::Column::Id)
                .all(&self.db)
                .await
                .map_err(|err| err.to_string())?;
            let mut entries = Vec::with_capacity(rows.len());
            for row in rows {
                let Some(exchange) = Exchange::parse(&row.exchange) else {
                    tracing::error!(
                        id = row.id,
                        exchange = row.exchange,
                        "journal entry for an unknown exchange skipped"
                    );
                    continue;
                };
                entries.push(JournalEntry {
                    id: row.id,
                    exchange,
                    routing_key: row.routing_key,
                    payload: Bytes::from(row.payload),
                });
            }
            Ok(entries)
        })
    }

    fn dead_letter<'a>(&'a self, letter: &'a DeadLetter) -> JournalFuture<'a, ()> {
        Box::pin(async move {
            let row = dead_letter::ActiveModel {
                queue: Set(letter.queue.clone()),
                routing_key: Set(letter.routing_key.clone()),
                // Whatever it holds, a dead letter must be storable: it may be here for a NUL.
                payload: Set(String::from_utf8_lossy(&letter.payload).replace('\0', "\u{FFFD}")),
                reason: Set(letter.reason.replace('\0', "\u{FFFD}")),
                created_at: Set(now_ms()),
                ..Default::default()
            };
            dead_letter::Entity::insert(row).exec(&self.db).await.map(|_| ()).map_err(|err| err.to_string())
        })
    }
}
