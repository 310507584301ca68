//! The roles a Herald process can run, in the manner of Grafana Mimir's `-target`: `herald`
//! alone runs every one on embedded defaults; `herald run ws-gateway` (or several roles) runs
//! only those, so that each scales on its own from the one image.

/// One role: a service of the distributed deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Role {
    /// The REST API, and the ingress dispatcher (`bus.dispatch`).
    IngestApi,
    /// The WebSocket endpoint: live delivery, offline replay, receipts.
    WsGateway,
    /// Mobile pushes through providers: sends, retries, dead letters, push logs.
    MobilePushWorker,
    /// Push records, receive records and notification logs from the bus.
    RecordWriter,
    /// Retention passes.
    Janitor,
}

impl Role {
    /// Every role, in the order a process starts them.
    pub const ALL: [Role; 5] =
        [Role::IngestApi, Role::WsGateway, Role::MobilePushWorker, Role::RecordWriter, Role::Janitor];

    /// The role's name on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Role::IngestApi => "ingest-api",
            Role::WsGateway => "ws-gateway",
            Role::MobilePushWorker => "mobile-push-worker",
            Role::RecordWriter => "record-writer",
            Role::Janitor => "janitor",
        }
    }

    /// The port a process running only this role listens on by default (8080 to 8084, so that
    /// the roles can run side by side on one machine).
    pub fn port(self) -> u16 {
        match self {
            Role::IngestApi => 8080,
            Role::WsGateway => 8081,
            Role::MobilePushWorker => 8082,
            Role::RecordWriter => 8083,
            Role::Janitor => 8084,
        }
    }

    /// Whether the role sends or receives on the bus.
    pub fn uses_bus(self) -> bool {
        matches!(self, Role::IngestApi | Role::WsGateway | Role::RecordWriter | Role::MobilePushWorker)
    }

    /// Whether the role reads or writes live state (inboxes, audiences, idempotency keys,
    /// receipts, presence); the mobile-push-worker reads receipts, for fallbacks.
    pub fn uses_live_state(self) -> bool {
        matches!(self, Role::IngestApi | Role::WsGateway | Role::MobilePushWorker)
    }

    /// Whether the role reads the user directory.
    pub fn uses_directory(self) -> bool {
        matches!(self, Role::IngestApi | Role::WsGateway | Role::RecordWriter | Role::MobilePushWorker)
    }

    /// Whether the role reads or writes the mobile tables (devices, the provider's configuration).
    pub fn uses_mobile(self) -> bool {
        matches!(self, Role::IngestApi | Role::MobilePushWorker | Role::Janitor)
    }

    /// Whether the role runs scheduled jobs under leases in the database.
    pub fn uses_jobs(self) -> bool {
        matches!(self, Role::Janitor)
    }

    /// Whether the role reads or writes push records.
    pub fn uses_records(self) -> bool {
        matches!(self, Role::IngestApi | Role::RecordWriter | Role::Janitor)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
