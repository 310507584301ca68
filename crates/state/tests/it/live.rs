//! The live state in the database on each SQL backend, for the suites that also run on Redis
//! and in memory, and what only it does: accepting a notice in one transaction, the journal.

use bus::{DeadLetter, Exchange, Journal};
use database::scratch::{Backend, ScratchDatabase};
use model::{Audience, MessageId, Target};
use state::LiveState;
use state::OfflineSettings;
use state::live::JournalRow;
use tokio_util::sync::CancellationToken;

/// A live state on a scratch database of each backend; dropped with `drop_all`, or when a
/// failing test drops it.
pub struct LiveDatabases {
    pub states: Vec<(&'static str, LiveState)>,
    scratch: Vec<ScratchDatabase>,
    shutdown: CancellationToken,
}

impl Drop for LiveDatabases {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let scratch = std::mem::take(&mut self.scratch);
        if scratch.is_empty() {
            return;
        }
        // A test that panicked: clean up on a runtime of our own, as the test's may be gone.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                for database in scratch {
                    let _ = database.drop_now().await;
                }
            });
        })
        .join();
    }
}

impl LiveDatabases {
    pub async fn open(offline: &OfflineSettings) -> Self {
        let shutdown = CancellationToken::new();
        let (mut states, mut scratch) = (Vec::new(), Vec::new());
        for (name, backend) in
            [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres), ("mariadb", Backend::MySql)]
        {
            let database = ScratchDatabase::create(backend).await.unwrap_or_else(|err| panic!("{name}: {err}"));
            let db = database::connect(&database.settings).await.unwrap();
            states.push((name, LiveState::new(db, offline, shutdown.clone())));
            scratch.push(database);
        }
        Self { states, scratch, shutdown }
    }

    pub async fn drop_all(mut self) {
        self.shutdown.cancel();
        self.states.clear();
        for database in std::mem::take(&mut self.scratch) {
            database.drop_now().await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_notice_is_accepted_with_its_inbox_copies_audience_and_journal_entry_at_once() {
    let databases = LiveDatabases::open(&OfflineSettings::default()).await;
    for (backend, live) in &databases.states {
        let id = MessageId::generate();
        let audience = Audience { target: Target::Custom, target_ids: vec![5, 6], exclude_ids: vec![] };
        let entry = format!(r#"{{"message_id":"{id}","content":"x"}}"#);
        let journal = JournalRow { exchange: Exchange::Ingress, routing_key: "custom.normal", payload: b"{\"n\":1}" };
        let retention = std::time::Duration::from_secs(60);
        let journal_id = live.accept_notice(&id, &[5, 6], &entry, &audience, retention, journal).await.unwrap();
        let pending = live.pending().await.unwrap();
        assert_eq!(pending.len(), 1, "{backend}");
        assert_eq!(
            (pending[0].id, pending[0].exchange, pending[0].routing_key.as_str()),
            (journal_id, Exchange::Ingress, "custom.normal")
        );
        assert_eq!(&pending[0].payload[..], b"{\"n\":1}", "{backend}");
        let inbox = state::OfflineInbox::Sql(live.clone());
        assert_eq!(inbox.replay(6).await.unwrap().entries, vec![entry.clone()], "{backend}");
        let audiences = state::AudienceStore::Sql(live.clone());
        assert!(audiences.lookup(&id).await.unwrap().unwrap().includes(5, false), "{backend}");
        live.remove(&[journal_id]).await.unwrap();
        assert!(live.pending().await.unwrap().is_empty(), "{backend}");
        let letter = DeadLetter {
            queue: "herald.records".into(),
            routing_key: "custom.urgent".into(),
            payload: bytes::Bytes::from_static(b"bad \0 bytes"),
            reason: "refused".into(),
        };
        live.dead_letter(&letter).await.unwrap();
    }
    databases.drop_all().await;
}
