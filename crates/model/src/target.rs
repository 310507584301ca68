//! Notification targets (spec 1.2, 2.3).

crate::closed_set! {
    /// Who a notification is for.
    pub enum Target {
        /// One user (internal; the admin API addresses users through `custom`).
        User = "user",
        /// Every user with the admin role.
        Admin = "admin",
        /// Every online user (a broadcast; offline users get no copy, per spec 1.2).
        All = "all",
        /// The members of groups (internal, reserved).
        Group = "group",
        /// An explicit list of user ids.
        Custom = "custom",
    }
}

impl Target {
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
