//! sea-orm entities of Herald's tables.

/// `herald_users`: the user directory.
pub mod user {
    use sea_orm::entity::prelude::*;

    /// One known user.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "herald_users")]
    pub struct Model {
        /// The user id (the token's `sub`).
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        /// Display name.
        pub name: String,
        /// `admin` or `user`.
        pub role: String,
        /// Tenant, if any.
        pub tenant_id: Option<String>,
        /// Group memberships, a JSON array of strings.
        pub groups: String,
        /// When Herald first heard of the user (UTC).
        pub created_at: TimeDateTime,
        /// Last change (UTC).
        pub updated_at: TimeDateTime,
        /// Last WebSocket connection (UTC), if ever.
        pub last_seen_at: Option<TimeDateTime>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
