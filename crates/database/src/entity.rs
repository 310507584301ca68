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

/// `push_records`: one row per notice (spec 4.1).
pub mod push_record {
    use sea_orm::entity::prelude::*;

    /// A push record; field meanings are the spec's.
    #[allow(missing_docs)]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "push_records")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub message_id: String,
        pub content: String,
        pub message_type: String,
        pub target: String,
        /// JSON array of user ids.
        pub target_user_ids: String,
        pub recipients_count: String,
        pub status: String,
        pub success: bool,
        pub error: String,
        pub error_code: String,
        /// When it was pushed (the message id's time), Unix milliseconds: the spec's
        /// `push_time`, rendered when read.
        pub push_ts: i64,
        /// `created_at`, Unix milliseconds.
        pub created_ts: i64,
        /// `updated_at`, Unix milliseconds.
        pub updated_ts: i64,
        pub sender_id: i64,
        pub sender_name: String,
        pub delivered_count: i64,
        pub failed_count: i64,
        pub total_count: i64,
        pub priority: i16,
        pub need_confirm: bool,
        /// JSON object, if any.
        pub extra_data: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `receive_records`: one row per notice and addressed user (spec 4.2).
pub mod receive_record {
    use sea_orm::entity::prelude::*;

    /// A receive record; field meanings are the spec's.
    #[allow(missing_docs)]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "receive_records")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub message_id: String,
        pub user_id: i64,
        pub username: String,
        pub user_role: String,
        pub is_online: bool,
        pub is_received: bool,
        /// `received_at`, Unix milliseconds; none until received.
        pub received_ts: Option<i64>,
        pub is_read: bool,
        /// `read_at`, Unix milliseconds; none until read.
        pub read_ts: Option<i64>,
        pub is_confirmed: bool,
        /// `confirmed_at`, Unix milliseconds; none until confirmed.
        pub confirmed_ts: Option<i64>,
        pub device_type: String,
        pub platform: String,
        pub browser: String,
        pub client_ip: String,
        pub user_agent: String,
        pub connection_id: String,
        pub push_channel: String,
        pub delivery_status: String,
        pub retry_count: i32,
        pub error_message: String,
        /// `created_at`, Unix milliseconds (and retention).
        pub created_ts: i64,
        /// `updated_at`, Unix milliseconds.
        pub updated_ts: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `notification_logs`: one row per delivery event (spec 4.3).
pub mod notification_log {
    use sea_orm::entity::prelude::*;

    /// A log entry; field meanings are the spec's.
    #[allow(missing_docs)]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notification_logs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The event's id: a redelivered event is written once.
        #[sea_orm(unique)]
        pub event_id: String,
        pub message_id: String,
        pub user_id: i64,
        pub username: String,
        pub event_type: String,
        pub status: String,
        /// The event's `timestamp`, Unix milliseconds.
        pub ts: i64,
        /// `created_at`, Unix milliseconds.
        pub created_ts: i64,
        pub error: String,
        /// JSON object, if any.
        pub device_info: Option<String>,
        pub client_ip: String,
        pub user_agent: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Declares an entity without relations and with the default behaviour (the live-state and the
/// mobile tables).
macro_rules! live_state_entity {
    ($(#[$doc:meta])* $module:ident, $table:literal, { $($body:tt)* }) => {
        $(#[$doc])*
        pub mod $module {
            use sea_orm::entity::prelude::*;

            /// A row.
            #[allow(missing_docs)]
            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model { $($body)* }

            /// No relations.
            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

live_state_entity!(
    /// `herald_inbox`: offline inbox entries (spec 5.1 JSON), scored by creation time (micros).
    inbox_entry, "herald_inbox", {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub message_id: String,
        pub score: i64,
        pub entry: String,
    }
);

live_state_entity!(
    /// `herald_inbox_dropped`: entries dropped from a user's inbox since their last replay.
    inbox_dropped, "herald_inbox_dropped", {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        pub dropped: i64,
    }
);

live_state_entity!(
    /// `herald_audiences`: who each notice was for (JSON), until `expires_at` (Unix ms).
    audience, "herald_audiences", {
        #[sea_orm(primary_key, auto_increment = false)]
        pub message_id: String,
        pub audience: String,
        pub expires_at: i64,
    }
);

live_state_entity!(
    /// `herald_idempotency`: idempotency keys and their claims or answers.
    idempotency_key, "herald_idempotency", {
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub idem_key: String,
        pub value: String,
        pub expires_at: i64,
    }
);

live_state_entity!(
    /// `herald_receipts`: receipts already recorded, per message, user, event and device.
    receipt, "herald_receipts", {
        #[sea_orm(primary_key, auto_increment = false)]
        pub message_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub device: String,
        pub expires_at: i64,
    }
);

live_state_entity!(
    /// `herald_bus_journal`: messages the in-process bus has not finished delivering.
    bus_journal, "herald_bus_journal", {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub exchange: String,
        pub routing_key: String,
        pub payload: String,
        pub created_at: i64,
    }
);

live_state_entity!(
    /// `herald_dead_letters`: messages a consumer of the in-process bus gave up on.
    dead_letter, "herald_dead_letters", {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub queue: String,
        pub routing_key: String,
        pub payload: String,
        pub reason: String,
        pub created_at: i64,
    }
);

live_state_entity!(
    /// `message_push_config`: the push provider's configuration, one row per `config_type`
    /// (1: the provider URL, as in the original; 2, 3, 4: FCM's, APNs's and Web Push's settings
    /// as JSON in `settings`, their base URL, if set, in `url`).
    push_config, "message_push_config", {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub config_type: i16,
        pub url: String,
        pub create_time: i64,
        pub update_time: i64,
        pub settings: Option<String>,
    }
);

live_state_entity!(
    /// `message_push_manage`: one registered device (push id) per row, with the user and tenant
    /// of the token that registered it. `status` 1 is active, 0 inactive; times are Unix ms.
    push_device, "message_push_manage", {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: i64,
        pub tenant_id: Option<String>,
        #[sea_orm(unique)]
        pub push_id: String,
        pub device_type: String,
        pub status: i16,
        pub last_push_time: Option<i64>,
        pub err_count: i32,
        pub inactive_time: Option<i64>,
        pub create_time: i64,
        pub update_time: i64,
        /// A `web` device's Web Push subscription JSON; NULL for the others.
        #[sea_orm(column_type = "Text", nullable)]
        pub subscription: Option<String>,
    }
);

live_state_entity!(
    /// `message_push_log`: one row per provider send attempt (`send_id`, `attempt` unique).
    push_log, "message_push_log", {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub send_id: String,
        pub message_id: String,
        pub user_id: i64,
        pub push_id: String,
        pub message_type: String,
        /// The alarm's configuration id; empty for a notice.
        pub alarm_id: String,
        pub title: String,
        pub content: String,
        pub status: String,
        pub err_message: String,
        pub attempt: i32,
        pub provider_answer: String,
        pub create_time: i64,
    }
);

live_state_entity!(
    /// `message_push_rule_log`: a rule that changed a device (moved, logout, cleanup) and why.
    push_rule_log, "message_push_rule_log", {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub push_id: String,
        pub user_id: i64,
        pub rule: String,
        pub reason: String,
        pub create_time: i64,
    }
);

live_state_entity!(
    /// `herald_job_leases`: a scheduled job's lease (holder, fence, expiry in Unix ms) and the
    /// last scheduled slot a run of it finished.
    job_lease, "herald_job_leases", {
        #[sea_orm(primary_key, auto_increment = false)]
        pub job: String,
        pub holder: String,
        pub fence: i64,
        pub expires_at: i64,
        pub done_slot: i64,
    }
);

live_state_entity!(
    /// `herald_job_runs`: a finished run of a job (its slot, `None` when run by hand) and what
    /// it changed.
    job_run, "herald_job_runs", {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub job: String,
        pub slot: Option<i64>,
        pub holder: String,
        pub fence: i64,
        pub started_at: i64,
        pub finished_at: i64,
        pub summary: String,
    }
);
