//! The user directory on SQLite, PostgreSQL and MariaDB: the same cases on each.

use database::scratch::{Backend, ScratchDatabase};
use runtime::Role;
use runtime::testing::{eventually, holds};
use state::{Source, UserDirectory, UserProfile, UserQuery};
use tokio_util::sync::CancellationToken;

fn profile(user_id: i64, name: &str, role: Role) -> UserProfile {
    UserProfile { user_id, name: name.to_owned(), role, tenant_id: None, groups: Vec::new() }
}

async fn exercise(directory: &UserDirectory, backend: Backend) {
    let admins = [profile(1, "Ada", Role::Admin), profile(7, "Grace", Role::Admin)];
    let users: Vec<UserProfile> = (100..150).map(|id| profile(id, &format!("user {id}"), Role::User)).collect();
    assert_eq!(directory.upsert(&admins, Source::Admin).await.unwrap(), 2, "{backend:?}");
    assert_eq!(directory.upsert(&users, Source::Admin).await.unwrap(), 50, "{backend:?}");
    assert_eq!(directory.admin_ids().await.unwrap(), vec![1, 7], "{backend:?}");

    // A user listed twice in one batch counts once; the last entry wins.
    let twice = [profile(200, "first", Role::User), profile(200, "second", Role::Admin)];
    assert_eq!(directory.upsert(&twice, Source::Admin).await.unwrap(), 1, "{backend:?}");
    let entry = directory.get(200).await.unwrap().unwrap();
    assert_eq!((entry.profile.name.as_str(), entry.profile.role), ("second", Role::Admin), "{backend:?}");
    assert_eq!(entry.last_seen_at, None, "an admin upsert is not a sighting ({backend:?})");

    // A connection with a nameless token keeps the known name, takes the token's role, tenant
    // and groups, and records the sighting; an admin demoted by their token leaves the admin
    // list. A token without tenant or groups keeps the known ones.
    let seen = UserProfile { tenant_id: Some("acme".into()), groups: vec!["ops".into()], ..profile(7, "", Role::User) };
    directory.upsert(&[seen, profile(300, "new", Role::User)], Source::Connection).await.unwrap();
    let grace = directory.get(7).await.unwrap().unwrap();
    assert_eq!(grace.profile.name, "Grace", "{backend:?}");
    assert_eq!(grace.profile.role, Role::User, "{backend:?}");
    assert_eq!(grace.profile.tenant_id.as_deref(), Some("acme"), "{backend:?}");
    assert_eq!(grace.profile.groups, vec!["ops".to_owned()], "{backend:?}");
    assert!(grace.last_seen_at.is_some(), "{backend:?}");
    assert!(grace.created_at <= grace.updated_at, "{backend:?}");
    assert_eq!(directory.admin_ids().await.unwrap(), vec![1, 200], "{backend:?}");
    assert_eq!(directory.get(300).await.unwrap().unwrap().profile.name, "new", "{backend:?}");
    directory.upsert(&[profile(7, "Grace H.", Role::User)], Source::Connection).await.unwrap();
    let grace = directory.get(7).await.unwrap().unwrap().profile;
    assert_eq!(grace.name, "Grace H.", "{backend:?}");
    assert_eq!((grace.tenant_id.as_deref(), grace.groups.len()), (Some("acme"), 1), "{backend:?}");
    assert_eq!(directory.get(999).await.unwrap(), None, "{backend:?}");

    // Paging in id order, with the total over all pages, and filters.
    let page = directory.list(&UserQuery { page: 2, page_size: 20, ..UserQuery::default() }).await.unwrap();
    assert_eq!(page.total, 54, "{backend:?}");
    let ids: Vec<i64> = page.items.iter().map(|e| e.profile.user_id).collect();
    assert_eq!(ids, (118..138).collect::<Vec<_>>(), "{backend:?}");
    let last = directory.list(&UserQuery { page: 3, page_size: 20, ..UserQuery::default() }).await.unwrap();
    assert_eq!(last.items.len(), 14, "{backend:?}");
    let only_admins = UserQuery { role: Some(Role::Admin), page: 1, page_size: 10, ..UserQuery::default() };
    let admins = directory.list(&only_admins).await.unwrap();
    assert_eq!(admins.total, 2, "{backend:?}");
    let tenant = UserQuery { tenant_id: Some("acme".into()), page: 1, page_size: 10, ..UserQuery::default() };
    assert_eq!(directory.list(&tenant).await.unwrap().items[0].profile.user_id, 7, "{backend:?}");

    // The full batch size is accepted; beyond it is refused.
    let batch: Vec<UserProfile> = (1000..2000).map(|id| profile(id, "bulk", Role::User)).collect();
    assert_eq!(directory.upsert(&batch, Source::Admin).await.unwrap(), 1000, "{backend:?}");
    let too_many: Vec<UserProfile> = (1..=1001).map(|id| profile(id, "", Role::User)).collect();
    assert!(directory.upsert(&too_many, Source::Admin).await.is_err(), "{backend:?}");
}

#[tokio::test]
async fn the_directory_behaves_the_same_on_every_sql_backend() {
    for backend in Backend::ALL {
        let scratch = ScratchDatabase::create(backend).await.unwrap_or_else(|err| panic!("{backend:?}: {err}"));
        let shutdown = CancellationToken::new();
        let directory = UserDirectory::open(&scratch.settings, shutdown.clone()).await.unwrap();
        exercise(&directory, backend).await;
        // Opening again finds the migrations applied and the data intact.
        let again = UserDirectory::open(&scratch.settings, shutdown.clone()).await.unwrap();
        assert_eq!(again.admin_ids().await.unwrap(), vec![1, 200], "{backend:?}");
        shutdown.cancel();
        drop((directory, again));
        scratch.drop_now().await.unwrap();
    }
}

#[tokio::test]
async fn users_seen_on_connect_are_recorded_in_batches() {
    let scratch = ScratchDatabase::create(Backend::Sqlite).await.unwrap();
    let shutdown = CancellationToken::new();
    let directory = UserDirectory::open(&scratch.settings, shutdown.clone()).await.unwrap();
    let recorder = directory.recorder(10_000, shutdown.clone());
    for id in 1..=2500 {
        recorder.seen(profile(id, "", if id == 5 { Role::Admin } else { Role::User }));
    }
    eventually("all 2500 users to be recorded", std::time::Duration::from_secs(10), || async {
        let page = directory.list(&UserQuery { page: 1, page_size: 1, ..UserQuery::default() }).await.unwrap();
        holds(page.total == 2500, format_args!("only {} of 2500 recorded", page.total))
    })
    .await;
    assert_eq!(directory.admin_ids().await.unwrap(), vec![5]);
    assert!(directory.get(2500).await.unwrap().unwrap().last_seen_at.is_some());
    shutdown.cancel();
    scratch.drop_now().await.unwrap();
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_a_clear_error() {
    let settings = database::DatabaseSettings {
        url: "postgres://postgres@127.0.0.1:1/none".into(),
        connect_timeout_ms: 500,
        ..database::DatabaseSettings::default()
    };
    let err = UserDirectory::open(&settings, CancellationToken::new()).await.unwrap_err();
    assert!(err.to_string().contains("database is unavailable"), "{err}");
}
