//! The original's `MessagePushMangeClear`: the device rules the janitor applies.
//!
//! - `failing`: an active device with more than `max_err_count` failed sends in a row and no
//!   successful push for `silent_days` (counted from its registration when it never had one) is
//!   marked inactive, with `inactive_time`.
//! - `expired`: a device inactive for `remove_after_days` (logged out, or marked by `failing`)
//!   and not registered again since is removed; registering its push id again later creates it
//!   anew.
//!
//! Each change is made in chunks, each chunk one transaction that reads the devices it changes
//! with a lock (`FOR UPDATE` where the database has it) and re-checks the rule, then writes the
//! change and one `message_push_rule_log` row per device. A registration racing with the rule
//! therefore either comes first (and the device no longer matches) or waits and undoes it. A
//! run interrupted between chunks has made whole chunks only; running it again finishes the rest.
//!
//! One more rule is the worker's, not the janitor's: `unregistered` marks a device inactive at
//! once when its provider answers that the token is dead (FCM `UNREGISTERED`, APNs 410), with
//! the provider's answer as the reason.

use crate::{Device, MobileStore, db_error};
use database::DbError;
use database::entity::{push_device, push_rule_log};
use model::DeviceStatus;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

/// The rule that marks failing devices inactive.
pub const RULE_FAILING: &str = "failing";
/// The rule that removes devices inactive for long.
pub const RULE_EXPIRED: &str = "expired";
/// The rule that marks a device inactive whose provider said its token is dead.
pub const RULE_UNREGISTERED: &str = "unregistered";

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The device rules' thresholds (`[janitor]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRules {
    /// Failed sends in a row past which (strictly more) a device may be marked inactive: 3.
    pub max_err_count: i32,
    /// Days without a successful push after which such a device is marked inactive: 30.
    pub silent_days: u32,
    /// Days after which an inactive device is removed: 7.
    pub remove_after_days: u32,
}

impl Default for DeviceRules {
    fn default() -> Self {
        Self { max_err_count: 3, silent_days: 30, remove_after_days: 7 }
    }
}

impl MobileStore {
    /// Applies `failing` as of `now` (Unix ms) to at most `limit` devices; returns those it
    /// marked inactive (fewer than `limit`: none is left).
    pub async fn deactivate_failing(&self, rules: &DeviceRules, now: i64, limit: u64) -> Result<Vec<Device>, DbError> {
        let cutoff = now - i64::from(rules.silent_days) * DAY_MS;
        let matches = Condition::all()
            .add(push_device::Column::Status.eq(DeviceStatus::Active.code()))
            .add(push_device::Column::ErrCount.gt(rules.max_err_count))
            .add(
                Condition::any().add(push_device::Column::LastPushTime.lte(cutoff)).add(
                    Condition::all()
                        .add(push_device::Column::LastPushTime.is_null())
                        .add(push_device::Column::CreateTime.lte(cutoff)),
                ),
            );
        let reason = |device: &Device| {
            format!(
                "{} failed sends in a row (more than {}) and no successful push for {} days: marked inactive",
                device.err_count, rules.max_err_count, rules.silent_days
            )
        };
        self.change_chunk(matches, limit, Change::Deactivate, reason, now).await
    }

    /// Applies `expired` as of `now` (Unix ms) to at most `limit` devices; returns those it
    /// removed (fewer than `limit`: none is left).
    pub async fn remove_expired(&self, rules: &DeviceRules, now: i64, limit: u64) -> Result<Vec<Device>, DbError> {
        let cutoff = now - i64::from(rules.remove_after_days) * DAY_MS;
        let matches = Condition::all()
            .add(push_device::Column::Status.eq(DeviceStatus::Inactive.code()))
            .add(push_device::Column::InactiveTime.lte(cutoff));
        let reason = |_: &Device| {
            format!("inactive for {} days or more, not registered again: removed", rules.remove_after_days)
        };
        self.change_chunk(matches, limit, Change::Remove, reason, now).await
    }

    /// Marks `push_id` inactive as of `now`, with a rule-log row saying `reason`, because its
    /// provider said the token is dead; only while it is active and `user_id`'s. Returns whether
    /// it did.
    pub async fn deactivate_unregistered(
        &self,
        push_id: &str,
        user_id: model::UserId,
        reason: &str,
        now: i64,
    ) -> Result<bool, DbError> {
        let matches = Condition::all()
            .add(push_device::Column::PushId.eq(push_id))
            .add(push_device::Column::UserId.eq(user_id))
            .add(push_device::Column::Status.eq(DeviceStatus::Active.code()));
        let changed = self.change_chunk(matches, 1, Change::Unregistered, |_| reason.to_owned(), now).await?;
        Ok(!changed.is_empty())
    }

    /// One chunk of a rule: up to `limit` devices matching `matches`, read with a lock in id
    /// order, changed as `change` says, each with a rule-log row, in one transaction.
    async fn change_chunk(
        &self,
        matches: Condition,
        limit: u64,
        change: Change,
        reason: impl Fn(&Device) -> String,
        now: i64,
    ) -> Result<Vec<Device>, DbError> {
        let txn = self.db.begin().await.map_err(db_error)?;
        let rows = push_device::Entity::find()
            .filter(matches)
            .order_by_asc(push_device::Column::Id)
            .limit(limit)
            .lock_exclusive()
            .all(&txn)
            .await
            .map_err(db_error)?;
        if rows.is_empty() {
            txn.rollback().await.map_err(db_error)?;
            return Ok(Vec::new());
        }
        let devices: Vec<Device> = rows.into_iter().map(Device::from).collect();
        change.apply(&txn, devices.iter().map(|d| d.id.clone()).collect(), now).await.map_err(db_error)?;
        let logs = devices.iter().map(|device| push_rule_log::ActiveModel {
            push_id: Set(device.push_id.clone()),
            user_id: Set(device.user_id),
            rule: Set(change.rule().to_owned()),
            reason: Set(reason(device)),
            create_time: Set(now),
            ..Default::default()
        });
        push_rule_log::Entity::insert_many(logs).exec_without_returning(&txn).await.map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        Ok(devices)
    }
}

/// What a rule does to the devices it matches.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// `failing`: inactive as of now.
    Deactivate,
    /// `unregistered`: inactive as of now.
    Unregistered,
    /// `expired`: removed.
    Remove,
}

impl Change {
    fn rule(self) -> &'static str {
        match self {
            Change::Deactivate => RULE_FAILING,
            Change::Unregistered => RULE_UNREGISTERED,
            Change::Remove => RULE_EXPIRED,
        }
    }

    async fn apply(self, txn: &DatabaseTransaction, ids: Vec<String>, now: i64) -> Result<(), sea_orm::DbErr> {
        match self {
            Change::Deactivate | Change::Unregistered => {
                push_device::Entity::update_many()
                    .col_expr(push_device::Column::Status, Expr::value(DeviceStatus::Inactive.code()))
                    .col_expr(push_device::Column::InactiveTime, Expr::value(now))
                    .col_expr(push_device::Column::UpdateTime, Expr::value(now))
                    .filter(push_device::Column::Id.is_in(ids))
                    .exec(txn)
                    .await?;
            }
            Change::Remove => {
                push_device::Entity::delete_many().filter(push_device::Column::Id.is_in(ids)).exec(txn).await?;
            }
        }
        Ok(())
    }
}
