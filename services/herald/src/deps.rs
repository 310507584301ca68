//! What a process opens once and hands to every component it runs: the bus, the database pool,
//! the live-state stores, the user directory, the records store, the mobile tables, the token
//! verifier and the time format. Only what its roles use is opened (a janitor connects to no broker).

use crate::{Role, Settings};
use anyhow::Context;
use bus::{Bus, BusUrl};
use database::jobs::JobLeases;
use mobile::MobileStore;
use records::{RecordStore, RecordsBackend};
use sea_orm::DatabaseConnection;
use state::{LiveState, OfflineInbox, StateBackend, StoreSettings, Stores, UserDirectory};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The dependencies of a process's components. Cheap to clone.
#[derive(Clone)]
pub struct Deps {
    /// Token verification and time rendering, for every route.
    pub shared: http_server::Shared,
    bus: Option<Bus>,
    stores: Option<Stores>,
    directory: Option<UserDirectory>,
    records: Option<RecordStore>,
    mobile: Option<MobileStore>,
    leases: Option<JobLeases>,
    inbox: Option<OfflineInbox>,
}

impl Deps {
    /// Opens what `roles` use, as `settings` say. Background tasks (reconnection, probes) run
    /// until `shutdown`.
    pub async fn open(settings: &Settings, roles: &[Role], shutdown: &CancellationToken) -> anyhow::Result<Self> {
        let any = |uses: fn(Role) -> bool| roles.iter().copied().any(uses);
        let time = settings.time.format()?;
        let shared = http_server::Shared {
            verifier: runtime::JwtVerifier::new(&settings.jwt),
            time,
            metrics: http_server::Registry::new(),
        };
        let records_in_db = settings.records.url == RecordsBackend::Database;
        let db: Option<DatabaseConnection> = if any(Role::uses_live_state)
            || any(Role::uses_directory)
            || any(Role::uses_mobile)
            || any(Role::uses_jobs)
            || (any(Role::uses_records) && records_in_db)
        {
            Some(database::connect(&settings.database).await.context("the database")?)
        } else {
            None
        };
        let stores = match (&db, any(Role::uses_live_state)) {
            (Some(db), true) => {
                let store_settings = StoreSettings {
                    redis: &settings.redis,
                    offline: &settings.offline,
                    presence: &settings.presence,
                    database_wait: std::time::Duration::from_millis(settings.database.connect_timeout_ms),
                };
                Some(Stores::on(db.clone(), store_settings, shutdown.clone()).map_err(anyhow::Error::from_boxed)?)
            }
            _ => None,
        };
        let directory = match (&stores, &db) {
            (Some(stores), _) => Some(stores.directory.clone()),
            (None, Some(db)) if any(Role::uses_directory) => Some(UserDirectory::on(db.clone(), shutdown.clone())),
            _ => None,
        };
        let bus =
            any(Role::uses_bus).then(|| match (&settings.bus.url, stores.as_ref().and_then(|s| s.live.as_ref())) {
                // The in-process bus journals in the database the live state is in: durable.
                (BusUrl::InProcess, Some(live)) => {
                    let journal: Arc<dyn bus::Journal> = Arc::new(live.clone());
                    Bus::in_process(&settings.bus, Some(journal), shutdown.clone())
                }
                _ => Bus::start(&settings.bus, shutdown.clone()),
            });
        let records = match (any(Role::uses_records), &db) {
            (false, _) => None,
            // Records in the same database: on the same pool, so SQLite has a single writer.
            (true, Some(db)) if records_in_db => Some(RecordStore::on(db.clone(), time, shutdown.clone())),
            (true, _) => Some(
                RecordStore::open(&settings.records, &settings.database, time, shutdown.clone())
                    .await
                    .context("the records store")?,
            ),
        };
        let mobile = match (&db, any(Role::uses_mobile)) {
            (Some(db), true) => Some(MobileStore::on(db.clone(), shutdown.clone())),
            _ => None,
        };
        let leases = match (&db, any(Role::uses_jobs)) {
            (Some(db), true) => Some(JobLeases::new(db.clone(), holder_name(), settings.janitor.lease())),
            _ => None,
        };
        // The janitor trims the inboxes: those of the process's live state if it has one, else
        // its own handle on where they are kept.
        let inbox = match (&stores, &db, any(Role::uses_jobs)) {
            (_, _, false) => None,
            (Some(stores), _, true) => Some(stores.inbox.clone()),
            (None, Some(db), true) if *settings.redis.backend() == StateBackend::Database => {
                Some(OfflineInbox::Sql(LiveState::new(db.clone(), &settings.offline, shutdown.clone())))
            }
            (None, _, true) => {
                Some(OfflineInbox::start(&settings.redis, &settings.offline).context("the offline inboxes")?)
            }
        };
        Ok(Self { shared, bus, stores, directory, records, mobile, leases, inbox })
    }

    /// The bus.
    pub fn bus(&self) -> anyhow::Result<&Bus> {
        self.bus.as_ref().context("no bus was opened for this process's roles")
    }

    /// The live-state stores.
    pub fn stores(&self) -> anyhow::Result<&Stores> {
        self.stores.as_ref().context("no live state was opened for this process's roles")
    }

    /// The user directory.
    pub fn directory(&self) -> anyhow::Result<&UserDirectory> {
        self.directory.as_ref().context("no user directory was opened for this process's roles")
    }

    /// The records store.
    pub fn records(&self) -> anyhow::Result<&RecordStore> {
        self.records.as_ref().context("no records store was opened for this process's roles")
    }

    /// The mobile tables.
    pub fn mobile(&self) -> anyhow::Result<&MobileStore> {
        self.mobile.as_ref().context("no mobile tables were opened for this process's roles")
    }

    /// The job leases, for this process.
    pub fn leases(&self) -> anyhow::Result<&JobLeases> {
        self.leases.as_ref().context("no job leases were opened for this process's roles")
    }

    /// The offline inboxes, for the janitor.
    pub fn inbox(&self) -> anyhow::Result<&OfflineInbox> {
        self.inbox.as_ref().context("no offline inboxes were opened for this process's roles")
    }

    /// The bus, if the roles use one.
    pub fn bus_if_open(&self) -> Option<&Bus> {
        self.bus.as_ref()
    }

    /// Where live state is kept, for the start-up log.
    pub fn describe_state(&self) -> &'static str {
        self.stores.as_ref().map_or("not used by these roles", Stores::describe)
    }

    /// The bus's kind, for the start-up log.
    pub fn describe_bus(&self) -> &'static str {
        match &self.bus {
            None => "not used by these roles",
            Some(Bus::Amqp(_)) => "RabbitMQ",
            Some(Bus::Memory(memory)) if memory.is_durable() => "in-process, journaled in the database",
            Some(Bus::Memory(_)) => "in-process, in memory (lost on restart: for tests only)",
        }
    }
}

/// This process's name as a lease holder: the host (a pod's name in Kubernetes) and a random
/// suffix, so two processes on one host are two holders.
fn holder_name() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "herald".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", host.chars().take(100).collect::<String>(), &suffix[..8])
}
