//! `message_push_manage` and `message_push_rule_log`: registered devices and the rules that
//! changed them.

use crate::{MobileStore, db_error, now_ms};
use database::DbError;
use database::entity::{push_device, push_rule_log};
use model::{DeviceStatus, DeviceType, UserId};
use sea_orm::SqlErr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

/// A device as a user's app registers it (already validated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The token's user.
    pub user_id: UserId,
    /// The token's tenant, if any: alarms reach the tenant's devices.
    pub tenant_id: Option<String>,
    /// The provider's id of the app install.
    pub push_id: String,
    /// Its operating system.
    pub device_type: DeviceType,
    /// A `web` device's Web Push subscription JSON (validated); `None` for the others.
    pub subscription: Option<String>,
}

/// What a registration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// A device Herald did not know.
    Created,
    /// The user's device, registered again: active (again), with the type and tenant given now.
    /// Its error count restarts at 0 when it was inactive.
    Renewed,
    /// A device another user had registered: it is this user's now, active, its error count
    /// and last push time restarted.
    Moved {
        /// Whose it was.
        from: UserId,
    },
}

/// A registered device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The row's id (a v4 UUID).
    pub id: String,
    /// Whose device it is.
    pub user_id: UserId,
    /// The tenant of the token that registered it.
    pub tenant_id: Option<String>,
    /// The provider's id of the app install.
    pub push_id: String,
    /// Its operating system, as stored.
    pub device_type: String,
    /// Active or not.
    pub status: DeviceStatus,
    /// The last successful push, Unix ms.
    pub last_push_time: Option<i64>,
    /// Failed sends since the last success (or registration).
    pub err_count: i32,
    /// When it became inactive, Unix ms.
    pub inactive_time: Option<i64>,
    /// When it was first registered, Unix ms.
    pub create_time: i64,
    /// Its last change, Unix ms.
    pub update_time: i64,
    /// A `web` device's Web Push subscription JSON (its keys: never shown by the API).
    pub subscription: Option<String>,
}

impl From<push_device::Model> for Device {
    fn from(row: push_device::Model) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            tenant_id: row.tenant_id,
            push_id: row.push_id,
            device_type: row.device_type,
            // Only 0 and 1 are ever written; anything else is not active.
            status: DeviceStatus::from_code(row.status).unwrap_or(DeviceStatus::Inactive),
            last_push_time: row.last_push_time,
            err_count: row.err_count,
            inactive_time: row.inactive_time,
            create_time: row.create_time,
            update_time: row.update_time,
            subscription: row.subscription,
        }
    }
}

/// Which devices [`MobileStore::devices`] lists.
#[derive(Clone, Debug, Default)]
pub struct DeviceQuery {
    /// Only this tenant's.
    pub tenant_id: Option<String>,
    /// Only this user's.
    pub user_id: Option<UserId>,
    /// Only in this state.
    pub status: Option<DeviceStatus>,
    /// Only of this type.
    pub device_type: Option<DeviceType>,
    /// 1-based page.
    pub page: u64,
    /// Devices per page.
    pub page_size: u64,
}

/// One page of devices, newest registration first.
#[derive(Clone, Debug)]
pub struct DevicePage {
    /// Devices matching the query, over all pages.
    pub total: u64,
    /// This page's.
    pub items: Vec<Device>,
}

/// Whose devices [`MobileStore::active_devices_after`] reads.
#[derive(Clone, Copy, Debug)]
pub enum DeviceScope<'a> {
    /// The devices registered with this tenant's tokens: an alarm's.
    Tenant(&'a str),
    /// These users' devices (keep the list to a few hundred: it is one `IN`).
    Users(&'a [UserId]),
    /// Every device: a notice for all.
    Everyone,
}

/// A rule that changed a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleLog {
    /// The device.
    pub push_id: String,
    /// The user it belonged to when the rule applied.
    pub user_id: UserId,
    /// `moved`, `logout`, or a cleanup rule's name.
    pub rule: String,
    /// Why, for a person.
    pub reason: String,
    /// When, Unix ms.
    pub create_time: i64,
}

/// How many times a registration is made in all when it loses races with others for the same
/// push id (the winner's row is there then).
const REGISTER_ATTEMPTS: usize = 5;

impl MobileStore {
    /// Registers `device` for its user: creates it, renews it, or moves it from the user who had
    /// it, in one transaction (a move writes the rule log in the same one).
    pub async fn register(&self, device: &Registration) -> Result<(Device, Registered), DbError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let txn = self.db.begin().await.map_err(db_error)?;
            let made = match register_in(&txn, device).await {
                Ok(done) => txn.commit().await.map(|()| done),
                Err(err) => Err(err),
            };
            match made {
                Ok(done) => return Ok(done),
                Err(err) if attempt < REGISTER_ATTEMPTS && is_lost_race(&err) => {
                    tracing::debug!(push_id = %device.push_id, error = %err, "a concurrent registration of the push id won; again");
                }
                Err(err) => return Err(db_error(err)),
            }
        }
    }

    /// Deactivates `user_id`'s device `push_id`: `None` when no such device is registered to
    /// that user (unknown, or another user's). Logging out a device already inactive changes
    /// nothing and returns it.
    pub async fn logout(&self, user_id: UserId, push_id: &str) -> Result<Option<Device>, DbError> {
        let txn = self.db.begin().await.map_err(db_error)?;
        let found = lock_by_push_id(&txn, push_id).await.map_err(db_error)?;
        let Some(row) = found.filter(|row| row.user_id == user_id) else {
            return Ok(None);
        };
        if row.status != DeviceStatus::Active.code() {
            return Ok(Some(row.into()));
        }
        let now = now_ms();
        let mut active = row.into_active_model();
        active.status = Set(DeviceStatus::Inactive.code());
        active.inactive_time = Set(Some(now));
        active.update_time = Set(now);
        let row = active.update(&txn).await.map_err(db_error)?;
        write_rule(&txn, push_id, user_id, "logout", "the user's app logged out", now).await.map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        Ok(Some(row.into()))
    }

    /// The device registered under `push_id`, if any.
    pub async fn device(&self, push_id: &str) -> Result<Option<Device>, DbError> {
        Ok(find_by_push_id(&self.db, push_id).await.map_err(db_error)?.map(Device::from))
    }

    /// A page of the devices `query` selects, newest registration first.
    pub async fn devices(&self, query: &DeviceQuery) -> Result<DevicePage, DbError> {
        let mut filter = Condition::all();
        if let Some(tenant) = &query.tenant_id {
            filter = filter.add(push_device::Column::TenantId.eq(tenant.as_str()));
        }
        if let Some(user) = query.user_id {
            filter = filter.add(push_device::Column::UserId.eq(user));
        }
        if let Some(status) = query.status {
            filter = filter.add(push_device::Column::Status.eq(status.code()));
        }
        if let Some(device_type) = query.device_type {
            filter = filter.add(push_device::Column::DeviceType.eq(device_type.as_str()));
        }
        let select = push_device::Entity::find().filter(filter);
        let total = select.clone().count(&self.db).await.map_err(db_error)?;
        let rows = select
            .order_by_desc(push_device::Column::CreateTime)
            .order_by_asc(push_device::Column::Id)
            .offset(query.page.saturating_sub(1).saturating_mul(query.page_size))
            .limit(query.page_size)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(DevicePage { total, items: rows.into_iter().map(Device::from).collect() })
    }

    /// Up to `limit` active devices in `scope` whose id comes after `after` (all of them, read
    /// in chunks in id order: a device changing state meanwhile moves no other across a
    /// chunk's edge).
    pub async fn active_devices_after(
        &self,
        scope: DeviceScope<'_>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Device>, DbError> {
        let mut select =
            push_device::Entity::find().filter(push_device::Column::Status.eq(DeviceStatus::Active.code()));
        select = match scope {
            DeviceScope::Tenant(tenant_id) => select.filter(push_device::Column::TenantId.eq(tenant_id)),
            DeviceScope::Users([]) => return Ok(Vec::new()),
            DeviceScope::Users(users) => select.filter(push_device::Column::UserId.is_in(users.iter().copied())),
            DeviceScope::Everyone => select,
        };
        if let Some(after) = after {
            select = select.filter(push_device::Column::Id.gt(after));
        }
        let rows = select.order_by_asc(push_device::Column::Id).limit(limit).all(&self.db).await.map_err(db_error)?;
        Ok(rows.into_iter().map(Device::from).collect())
    }

    /// The rules that changed `push_id`, oldest first.
    pub async fn rule_logs(&self, push_id: &str) -> Result<Vec<RuleLog>, DbError> {
        let rows = push_rule_log::Entity::find()
            .filter(push_rule_log::Column::PushId.eq(push_id))
            .order_by_asc(push_rule_log::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|row| RuleLog {
                push_id: row.push_id,
                user_id: row.user_id,
                rule: row.rule,
                reason: row.reason,
                create_time: row.create_time,
            })
            .collect())
    }
}

async fn register_in(txn: &DatabaseTransaction, device: &Registration) -> Result<(Device, Registered), sea_orm::DbErr> {
    let now = now_ms();
    let Some(row) = lock_by_push_id(txn, &device.push_id).await? else {
        let row = push_device::Model {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: device.user_id,
            tenant_id: device.tenant_id.clone(),
            push_id: device.push_id.clone(),
            device_type: device.device_type.as_str().to_owned(),
            status: DeviceStatus::Active.code(),
            last_push_time: None,
            err_count: 0,
            inactive_time: None,
            create_time: now,
            update_time: now,
            subscription: device.subscription.clone(),
        };
        push_device::Entity::insert(row.clone().into_active_model()).exec_without_returning(txn).await?;
        return Ok((row.into(), Registered::Created));
    };
    let previous = (row.user_id, row.status);
    let mut active = row.into_active_model();
    active.user_id = Set(device.user_id);
    active.tenant_id = Set(device.tenant_id.clone());
    active.device_type = Set(device.device_type.as_str().to_owned());
    // A browser registered again may bring new keys for its endpoint.
    active.subscription = Set(device.subscription.clone());
    active.status = Set(DeviceStatus::Active.code());
    active.inactive_time = Set(None);
    active.update_time = Set(now);
    let outcome = if previous.0 == device.user_id {
        if previous.1 != DeviceStatus::Active.code() {
            active.err_count = Set(0);
        }
        Registered::Renewed
    } else {
        active.err_count = Set(0);
        active.last_push_time = Set(None);
        Registered::Moved { from: previous.0 }
    };
    let row = active.update(txn).await?;
    if let Registered::Moved { from } = outcome {
        let reason = format!("registered by user {}; it was user {from}'s", device.user_id);
        write_rule(txn, &device.push_id, from, "moved", &reason, now).await?;
    }
    Ok((row.into(), outcome))
}

async fn find_by_push_id(
    db: &impl sea_orm::ConnectionTrait,
    push_id: &str,
) -> Result<Option<push_device::Model>, sea_orm::DbErr> {
    push_device::Entity::find().filter(push_device::Column::PushId.eq(push_id)).one(db).await
}

/// The device `push_id`, locked until the transaction ends (PostgreSQL and MariaDB; SQLite has
/// one writer at a time anyway), so that what a change reads is what it replaces.
async fn lock_by_push_id(
    txn: &DatabaseTransaction,
    push_id: &str,
) -> Result<Option<push_device::Model>, sea_orm::DbErr> {
    push_device::Entity::find().filter(push_device::Column::PushId.eq(push_id)).lock_exclusive().one(txn).await
}

async fn write_rule(
    txn: &DatabaseTransaction,
    push_id: &str,
    user_id: UserId,
    rule: &str,
    reason: &str,
    now: i64,
) -> Result<(), sea_orm::DbErr> {
    let row = push_rule_log::ActiveModel {
        push_id: Set(push_id.to_owned()),
        user_id: Set(user_id),
        rule: Set(rule.to_owned()),
        reason: Set(reason.to_owned()),
        create_time: Set(now),
        ..Default::default()
    };
    push_rule_log::Entity::insert(row).exec_without_returning(txn).await?;
    Ok(())
}

/// Whether `err` is a registration losing a race with another for the same push id: the other
/// inserted it first (a unique violation), or the database chose this transaction to break a
/// lock cycle (MariaDB's gap locks on a push id not yet there: SQLSTATE 40001; PostgreSQL's
/// deadlock, 40P01). Either way, trying again finds the other's row.
fn is_lost_race(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        return true;
    }
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx))) = err else {
        return false;
    };
    let code = sqlx.as_database_error().and_then(|db| db.code());
    matches!(code.as_deref(), Some("40001" | "40P01"))
}
