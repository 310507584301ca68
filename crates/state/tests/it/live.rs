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
    /// The same databases, read and written with other limits (a process configured anew).
    pub async fn with_limits(&self, offline: &OfflineSettings) -> Vec<(&'static str, LiveState)> {
        let mut states = Vec::new();
        for ((name, _), database) in self.states.iter().zip(&self.scratch) {
            let db = database::connect(&database.settings).await.unwrap();
            states.push((*name, LiveState::new(db, offline, self.shutdown.clone())));
        }
        states
    }

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

/// Notices accepted at the same moment share a transaction (a group commit): each still gets
/// its own journal entry, inbox copies and audience, and on PostgreSQL, which refuses U+0000 in
/// text, the one notice carrying it fails alone while the others of its batch are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_accepted_together_each_get_their_own_rows_and_a_refused_one_fails_alone() {
    let databases = LiveDatabases::open(&OfflineSettings::default()).await;
    for (backend, live) in &databases.states {
        let accepts = (0..40).map(|n: i64| {
            let live = live.clone();
            tokio::spawn(async move {
                let id = MessageId::generate();
                let user = 7_000 + n;
                let audience = Audience { target: Target::Custom, target_ids: vec![user], exclude_ids: vec![] };
                let poison = if n == 17 { "\u{0}" } else { "" };
                let entry = format!(r#"{{"message_id":"{id}","content":"notice {n}{poison}"}}"#);
                let payload = format!(r#"{{"n":{n}}}"#);
                let journal = JournalRow {
                    exchange: Exchange::Ingress,
                    routing_key: "custom.normal",
                    payload: payload.as_bytes(),
                };
                let accepted = live
                    .accept_notice(&id, &[user], &entry, &audience, std::time::Duration::from_secs(60), journal)
                    .await;
                (n, user, id, entry, accepted)
            })
        });
        let mut journal_ids = std::collections::BTreeSet::new();
        for accepted in futures_util::future::join_all(accepts).await {
            let (n, user, id, entry, accepted) = accepted.unwrap();
            let inbox = state::OfflineInbox::Sql(live.clone());
            let audiences = state::AudienceStore::Sql(live.clone());
            if n == 17 && *backend == "postgres" {
                assert!(accepted.is_err(), "{backend}: PostgreSQL stores no U+0000");
                assert!(inbox.replay(user).await.unwrap().entries.is_empty(), "{backend}: nothing half-written");
                assert!(audiences.lookup(&id).await.unwrap().is_none(), "{backend}: nothing half-written");
                continue;
            }
            let journal_id = accepted.unwrap_or_else(|err| panic!("{backend}: notice {n}: {err}"));
            assert!(journal_ids.insert(journal_id), "{backend}: journal id {journal_id} given twice");
            assert_eq!(inbox.replay(user).await.unwrap().entries, vec![entry], "{backend}: notice {n}");
            assert!(audiences.lookup(&id).await.unwrap().unwrap().includes(user, false), "{backend}: notice {n}");
        }
        let pending = live.pending().await.unwrap();
        assert_eq!(pending.iter().map(|e| e.id).collect::<std::collections::BTreeSet<_>>(), journal_ids, "{backend}");
        live.remove(&journal_ids.iter().copied().collect::<Vec<_>>()).await.unwrap();
    }
    databases.drop_all().await;
}
