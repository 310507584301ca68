//! The user directory: every user Herald knows, so that `admin`-targeted notices and offline
//! users are reachable when nobody is online. Users are upserted from their token claims when
//! they connect (batched, off the connection path: [`SeenRecorder`]) and by admins through the
//! API (`PUT /api/admin/users`). Stored in the relational database (`herald_users`).

use database::DatabaseSettings;
use database::{self as sql, DbError, entity::user};
use model::{NotificationMessage, Target, UserId};
use runtime::Role;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The most users one upsert may carry.
pub const MAX_BATCH: usize = 1000;

/// What is known of a user, as given to [`UserDirectory::upsert`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    /// The user id (the token's `sub`).
    pub user_id: UserId,
    /// Display name; an empty name from a token keeps the one already known.
    #[serde(default)]
    pub name: String,
    /// The role.
    pub role: Role,
    /// The tenant, if any.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Group memberships.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The profile.
    pub profile: UserProfile,
    /// When Herald first heard of the user.
    pub created_at: OffsetDateTime,
    /// The last change.
    pub updated_at: OffsetDateTime,
    /// The last WebSocket connection, if any.
    pub last_seen_at: Option<OffsetDateTime>,
}

/// Where an upsert comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// An admin: every field is taken as given.
    Admin,
    /// A token presented on connect: the user was seen now and has the token's role; a claim
    /// the token leaves out (empty name, no tenant, no groups) keeps what is known.
    Connection,
}

/// Which entries [`UserDirectory::list`] returns.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    /// Only this role.
    pub role: Option<Role>,
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// 1-based page.
    pub page: u64,
    /// Entries per page.
    pub page_size: u64,
}

/// One page of entries, ordered by user id.
#[derive(Clone, Debug)]
pub struct UserPage {
    /// Entries matching the query, over all pages.
    pub total: u64,
    /// This page's entries.
    pub items: Vec<DirectoryEntry>,
}

/// The users a notice is addressed to by id, the one rule every service applies: its explicit
/// recipients (`custom`) minus the exclusions; for `admin`, every admin of `admins` (the
/// directory's) minus the exclusions; nobody for a broadcast (it reaches whoever is online).
pub fn addressed_users(message: &NotificationMessage, admins: &[UserId]) -> Vec<UserId> {
    match message.target {
        Target::Admin => admins.iter().copied().filter(|id| !message.exclude_ids.contains(id)).collect(),
        _ => message.explicit_recipients().collect(),
    }
}

/// The directory over the relational database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct UserDirectory {
    db: DatabaseConnection,
    health: database::Health,
}

impl UserDirectory {
    /// Opens (and migrates) the database `settings` names, and checks it every few seconds for
    /// `/readyz` until `shutdown`.
    pub async fn open(settings: &DatabaseSettings, shutdown: CancellationToken) -> Result<Self, DbError> {
        Ok(Self::on(sql::connect(settings).await?, shutdown))
    }

    /// The directory on a pool already open (and migrated); checked every few seconds for
    /// `/readyz` until `shutdown`.
    pub fn on(db: DatabaseConnection, shutdown: CancellationToken) -> Self {
        Self { health: database::Health::watch(db.clone(), shutdown), db }
    }

    /// Whether the database answered the last check.
    pub fn is_ready(&self) -> bool {
        self.health.is_ready()
    }

    /// Whether the database answers right now.
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }

    /// Inserts or updates `users` (at most [`MAX_BATCH`]; a user listed twice counts once, the
    /// last wins). Returns how many distinct users were written.
    pub async fn upsert(&self, users: &[UserProfile], source: Source) -> Result<usize, DbError> {
        if users.len() > MAX_BATCH {
            return Err(DbError(format!("at most {MAX_BATCH} users per upsert")));
        }
        let mut latest: HashMap<UserId, &UserProfile> = HashMap::with_capacity(users.len());
        for user in users {
            latest.insert(user.user_id, user);
        }
        let now = utc_now();
        // One statement per set of columns to overwrite: an admin sets every field; a token
        // only those it carries.
        let mut by_columns: HashMap<Carried, Vec<&UserProfile>> = HashMap::new();
        for user in latest.values().copied() {
            let carried = match source {
                Source::Admin => Carried { name: true, tenant: true, groups: true },
                Source::Connection => Carried {
                    name: !user.name.is_empty(),
                    tenant: user.tenant_id.is_some(),
                    groups: !user.groups.is_empty(),
                },
            };
            by_columns.entry(carried).or_default().push(user);
        }
        for (carried, users) in by_columns {
            self.write(&users, source, now, carried).await?;
        }
        Ok(latest.len())
    }

    async fn write(
        &self,
        users: &[&UserProfile],
        source: Source,
        now: PrimitiveDateTime,
        carried: Carried,
    ) -> Result<(), DbError> {
        let seen = (source == Source::Connection).then_some(now);
        let rows = users.iter().map(|u| user::ActiveModel {
            user_id: Set(u.user_id),
            name: Set(u.name.clone()),
            role: Set(u.role.as_str().to_owned()),
            tenant_id: Set(u.tenant_id.clone()),
            groups: Set(serde_json::to_string(&u.groups).unwrap_or_else(|_| "[]".to_owned())),
            created_at: Set(now),
            updated_at: Set(now),
            last_seen_at: Set(seen),
        });
        let mut update = vec![user::Column::Role, user::Column::UpdatedAt];
        for (column, carried) in [
            (user::Column::Name, carried.name),
            (user::Column::TenantId, carried.tenant),
            (user::Column::Groups, carried.groups),
        ] {
            if carried {
                update.push(column);
            }
        }
        if seen.is_some() {
            update.push(user::Column::LastSeenAt);
        }
        let result = user::Entity::insert_many(rows)
            .on_conflict(OnConflict::column(user::Column::UserId).update_columns(update).to_owned())
            .exec_without_returning(&self.db)
            .await;
        self.observe(result.map(|_| ()))
    }

    /// One user's entry.
    pub async fn get(&self, user_id: UserId) -> Result<Option<DirectoryEntry>, DbError> {
        let found = self.observe(user::Entity::find_by_id(user_id).one(&self.db).await)?;
        Ok(found.map(entry))
    }

    /// A page of entries matching `query`, ordered by user id.
    pub async fn list(&self, query: &UserQuery) -> Result<UserPage, DbError> {
        let mut select = user::Entity::find();
        if let Some(role) = query.role {
            select = select.filter(user::Column::Role.eq(role.as_str()));
        }
        if let Some(tenant) = &query.tenant_id {
            select = select.filter(user::Column::TenantId.eq(tenant.as_str()));
        }
        let total = self.observe(select.clone().count(&self.db).await)?;
        let page_size = query.page_size.max(1);
        let items = self.observe(
            select
                .order_by_asc(user::Column::UserId)
                .offset(query.page.saturating_sub(1).saturating_mul(page_size))
                .limit(page_size)
                .all(&self.db)
                .await,
        )?;
        Ok(UserPage { total, items: items.into_iter().map(entry).collect() })
    }

    /// The users `message` is addressed to by id (see [`addressed_users`]), asking the directory
    /// for its admins only when the notice is for them.
    pub async fn recipients(&self, message: &NotificationMessage) -> Result<Vec<UserId>, DbError> {
        let admins = match message.target {
            Target::Admin => self.admin_ids().await?,
            _ => Vec::new(),
        };
        Ok(addressed_users(message, &admins))
    }

    /// Every user with the admin role, in id order: whom an `admin` notice is for.
    pub async fn admin_ids(&self) -> Result<Vec<UserId>, DbError> {
        let ids = user::Entity::find()
            .select_only()
            .column(user::Column::UserId)
            .filter(user::Column::Role.eq(Role::Admin.as_str()))
            .order_by_asc(user::Column::UserId)
            .into_tuple::<i64>()
            .all(&self.db)
            .await;
        self.observe(ids)
    }

    /// Maps a query's error. Readiness comes from the probe alone: a query that fails on its
    /// own input must not take the replica out of service.
    fn observe<T>(&self, result: Result<T, sea_orm::DbErr>) -> Result<T, DbError> {
        result.map_err(DbError::from)
    }

    /// A recorder of users seen on connect, writing in batches of up to `MAX_BATCH` until
    /// `shutdown`. At most `capacity` sightings wait; past that they are dropped (the user is
    /// recorded on their next connect).
    ///
    /// Connecting must stay cheap however many clients connect at once, so the recorder
    /// gathers sightings for [`SEEN_LINGER`] before it writes, and writes only what changed: a
    /// user seen again with the same profile within [`SEEN_REFRESH`] of the last write is not
    /// written again (`last_seen_at` is exact to that much).
    pub fn recorder(&self, capacity: usize, shutdown: CancellationToken) -> SeenRecorder {
        let (tx, mut rx) = mpsc::channel::<UserProfile>(capacity.max(1));
        let directory = self.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            let mut written = RecentlyWritten::default();
            loop {
                let received = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    n = rx.recv_many(&mut batch, MAX_BATCH) => n,
                };
                if received == 0 {
                    break;
                }
                // Gather the rest of a burst into the same write; sightings meanwhile do not wake
                // this task.
                if batch.len() < MAX_BATCH {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        () = tokio::time::sleep(SEEN_LINGER) => {}
                    }
                    while batch.len() < MAX_BATCH
                        && let Ok(user) = rx.try_recv()
                    {
                        batch.push(user);
                    }
                }
                let now = std::time::Instant::now();
                batch.retain(|user| written.needs_write(user, now));
                if !batch.is_empty() {
                    match directory.upsert(&batch, Source::Connection).await {
                        Ok(_) => batch.iter().for_each(|user| written.note(user, now)),
                        Err(err) => {
                            tracing::warn!(error = %err, users = batch.len(), "users seen on connect not recorded")
                        }
                    }
                }
                batch.clear();
            }
        });
        SeenRecorder { tx }
    }
}

/// How long the recorder gathers sightings before it writes them.
pub const SEEN_LINGER: Duration = Duration::from_millis(50);
/// How long a user written with a profile is not written again for the same profile.
pub const SEEN_REFRESH: Duration = Duration::from_secs(60);
/// Users the recorder remembers writing; past it, it forgets them all (and writes each again
/// once).
const REMEMBERED: usize = 100_000;

/// The profiles the recorder wrote lately: a fingerprint of each, and when.
#[derive(Default)]
struct RecentlyWritten(HashMap<UserId, (u64, std::time::Instant)>);

impl RecentlyWritten {
    fn fingerprint(user: &UserProfile) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&user.name, user.role.as_str(), &user.tenant_id, &user.groups).hash(&mut hasher);
        hasher.finish()
    }

    /// Whether `user` must be written: new, changed, or last written too long ago.
    fn needs_write(&self, user: &UserProfile, now: std::time::Instant) -> bool {
        match self.0.get(&user.user_id) {
            Some((fingerprint, at)) => {
                *fingerprint != Self::fingerprint(user) || now.duration_since(*at) >= SEEN_REFRESH
            }
            None => true,
        }
    }

    fn note(&mut self, user: &UserProfile, now: std::time::Instant) {
        if self.0.len() >= REMEMBERED {
            self.0.clear();
        }
        self.0.insert(user.user_id, (Self::fingerprint(user), now));
    }
}

/// Which optional fields an upsert overwrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Carried {
    name: bool,
    tenant: bool,
    groups: bool,
}

/// Records users seen on connect without waiting: see [`UserDirectory::recorder`].
#[derive(Clone, Debug)]
pub struct SeenRecorder {
    tx: mpsc::Sender<UserProfile>,
}

impl SeenRecorder {
    /// Queues `user` for the next batch; never waits.
    pub fn seen(&self, user: UserProfile) {
        if let Err(mpsc::error::TrySendError::Full(user)) = self.tx.try_send(user) {
            tracing::debug!(user_id = user.user_id, "directory recorder busy; sighting dropped");
        }
    }
}

fn utc_now() -> PrimitiveDateTime {
    let now = OffsetDateTime::now_utc();
    // The database keeps UTC without an offset; whole seconds, as every backend stores them.
    PrimitiveDateTime::new(now.date(), now.time().replace_nanosecond(0).unwrap_or(now.time()))
}

fn entry(model: user::Model) -> DirectoryEntry {
    let role = if model.role == Role::Admin.as_str() { Role::Admin } else { Role::User };
    DirectoryEntry {
        profile: UserProfile {
            user_id: model.user_id,
            name: model.name,
            role,
            tenant_id: model.tenant_id,
            groups: serde_json::from_str(&model.groups).unwrap_or_default(),
        },
        created_at: model.created_at.assume_utc(),
        updated_at: model.updated_at.assume_utc(),
        last_seen_at: model.last_seen_at.map(PrimitiveDateTime::assume_utc),
    }
}

#[cfg(test)]
mod addressed_tests {
    use super::*;
    use model::{MessageId, NotificationType, Priority, Sender};

    fn notice(target: Target, target_ids: Vec<UserId>, exclude_ids: Vec<UserId>) -> NotificationMessage {
        NotificationMessage {
            notification_type: NotificationType::SYSTEM_NOTICE,
            content: "x".into(),
            data: None,
            time: "2026-12-01 10:00:00".into(),
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

    #[test]
    fn a_notice_is_addressed_to_its_users_or_the_admins_minus_the_exclusions_and_a_broadcast_to_nobody() {
        let admins = [1, 2, 3];
        assert_eq!(addressed_users(&notice(Target::Custom, vec![5, 6, 7], vec![6]), &admins), [5, 7]);
        assert_eq!(addressed_users(&notice(Target::Admin, vec![], vec![2]), &admins), [1, 3]);
        assert!(addressed_users(&notice(Target::All, vec![], vec![]), &admins).is_empty());
    }
}

#[cfg(test)]
mod recorder_tests {
    use super::*;

    fn profile(name: &str) -> UserProfile {
        UserProfile { user_id: 7, name: name.into(), role: Role::User, tenant_id: None, groups: vec![] }
    }

    #[test]
    fn a_user_seen_again_unchanged_is_written_again_only_after_the_refresh() {
        let mut written = RecentlyWritten::default();
        let start = std::time::Instant::now();
        assert!(written.needs_write(&profile("ada"), start), "new");
        written.note(&profile("ada"), start);
        assert!(!written.needs_write(&profile("ada"), start + Duration::from_secs(59)), "unchanged, lately");
        assert!(written.needs_write(&profile("grace"), start + Duration::from_secs(1)), "renamed");
        let tenant = UserProfile { tenant_id: Some("acme".into()), ..profile("ada") };
        assert!(written.needs_write(&tenant, start + Duration::from_secs(1)), "moved to a tenant");
        assert!(written.needs_write(&profile("ada"), start + SEEN_REFRESH), "seen again after the refresh");
    }
}
