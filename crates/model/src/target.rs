//! Notification targets (spec 1.2, 2.3).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who a notification is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// One user (internal; the admin API addresses users through `custom`).
    User,
    /// Every user with the admin role.
    Admin,
    /// Every online user (a broadcast; offline users get no copy, per spec 1.2).
    All,
    /// The members of groups (internal, reserved).
    Group,
    /// An explicit list of user ids.
    Custom,
}

impl Target {
    /// The name used on the wire and in routing keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::User => "user",
            Target::Admin => "admin",
            Target::All => "all",
            Target::Group => "group",
            Target::Custom => "custom",
        }
    }

    /// The spec 6.1 `recipients_count` description for a target with `explicit` recipients.
    pub fn recipients_count(self, explicit: usize) -> String {
        match self {
            Target::All => "all_online_users".to_owned(),
            Target::Admin => "all_admin_users".to_owned(),
            Target::Group => "group_members".to_owned(),
            Target::User | Target::Custom => explicit.to_string(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
