//! The device rules (the original's `MessagePushMangeClear`) on SQLite, PostgreSQL and MariaDB:
//! devices seeded at chosen ages and error counts, exactly the matching ones changed, one
//! rule-log row each; two janitors started at once (PostgreSQL, MariaDB) run each slot once; a
//! run killed half-way and run again converges to the state of a run never interrupted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use database::entity::{push_device, push_rule_log};
use database::jobs::{Claim, JobLeases};
use database::scratch::{Backend, ScratchDatabase};
use janitor::{Context, Janitor, JanitorSettings, Job, Outcome};
use mobile::{DeviceRules, MobileStore};
use records::{RecordStore, Retention};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait, QueryOrder};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const DAY: i64 = 86_400_000;

/// A device as seeded: its push id, status (1 active), error count, and ages in days.
struct Seed {
    push_id: &'static str,
    active: bool,
    err_count: i32,
    last_push_days: Option<i64>,
    inactive_days: Option<i64>,
    created_days: i64,
}

const fn seed(
    push_id: &'static str,
    active: bool,
    err_count: i32,
    last_push_days: Option<i64>,
    inactive_days: Option<i64>,
) -> Seed {
    Seed { push_id, active, err_count, last_push_days, inactive_days, created_days: 60 }
}

/// The cases, and what the rules do to each (at the default thresholds: more than 3 errors and
/// 30 days silent; 7 days inactive).
fn cases() -> Vec<(Seed, &'static str)> {
    vec![
        (seed("failing-40d", true, 5, Some(40), None), "failing"),
        (seed("failing-30d-exactly", true, 4, Some(30), None), "failing"),
        (seed("recent-success", true, 5, Some(10), None), "kept"),
        (seed("three-errors-only", true, 3, Some(40), None), "kept"),
        (Seed { created_days: 31, ..seed("never-pushed-old", true, 4, None, None) }, "failing"),
        (Seed { created_days: 5, ..seed("never-pushed-new", true, 9, None, None) }, "kept"),
        (seed("healthy", true, 0, Some(1), None), "kept"),
        (seed("inactive-8d", false, 0, Some(20), Some(8)), "expired"),
        (seed("inactive-7d-exactly", false, 2, None, Some(7)), "expired"),
        (seed("inactive-6d", false, 0, Some(20), Some(6)), "kept"),
        (seed("inactive-failing-2d", false, 9, Some(50), Some(2)), "kept"),
    ]
}

async fn seed_devices(db: &DatabaseConnection, now: i64, seeds: &[&Seed]) {
    for (n, seed) in seeds.iter().enumerate() {
        let row = push_device::ActiveModel {
            id: Set(format!("00000000-0000-4000-8000-{n:012}")),
            user_id: Set(100 + i64::try_from(n).unwrap()),
            tenant_id: Set(Some("acme".to_owned())),
            push_id: Set(seed.push_id.to_owned()),
            device_type: Set("android".to_owned()),
            status: Set(i16::from(seed.active)),
            last_push_time: Set(seed.last_push_days.map(|d| now - d * DAY)),
            err_count: Set(seed.err_count),
            inactive_time: Set(seed.inactive_days.map(|d| now - d * DAY)),
            create_time: Set(now - seed.created_days * DAY),
            update_time: Set(now - seed.created_days * DAY),
            subscription: Set(None),
        };
        push_device::Entity::insert(row).exec_without_returning(db).await.unwrap();
    }
}

/// Every device, by push id.
async fn devices(db: &DatabaseConnection) -> BTreeMap<String, push_device::Model> {
    push_device::Entity::find().all(db).await.unwrap().into_iter().map(|d| (d.push_id.clone(), d)).collect()
}

/// Every rule-log row, as (push id, rule), in order.
async fn rule_logs(db: &DatabaseConnection) -> Vec<(String, String, String)> {
    push_rule_log::Entity::find()
        .order_by_asc(push_rule_log::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.push_id, r.rule, r.reason))
        .collect()
}

async fn context(db: &DatabaseConnection, holder: &str, lease: Duration, shutdown: &CancellationToken) -> Context {
    Context {
        records: RecordStore::on(db.clone(), model::TimeFormat::default(), shutdown.clone()),
        retention: Retention::of(&records::RecordsSettings::default()),
        mobile: MobileStore::on(db.clone(), shutdown.clone()),
        inbox: state::OfflineInbox::start(&state::RedisSettings::in_process(), &state::OfflineSettings::default())
            .unwrap(),
        rules: DeviceRules::default(),
        device_chunk: 500,
        leases: JobLeases::new(db.clone(), holder, lease),
        lease,
        metrics: janitor::JanitorMetrics::default(),
    }
}

async fn the_rules_change_exactly_the_matching_devices(backend: Backend) {
    let scratch = ScratchDatabase::create(backend).await.unwrap();
    let db = database::connect(&scratch.settings).await.unwrap();
    let shutdown = CancellationToken::new();
    let now = mobile::now_ms();
    let cases = cases();
    seed_devices(&db, now, &cases.iter().map(|(seed, _)| seed).collect::<Vec<_>>()).await;
    let before = devices(&db).await;
    let context = context(&db, "janitor-a", Duration::from_secs(30), &shutdown).await;

    let outcomes = janitor::run_once(&context, &[Job::DeviceRules]).await;
    let ran_at = mobile::now_ms();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].1, Ok(Outcome::Ran(json!({"failing": 3, "expired": 2}))), "{backend:?}");

    let after = devices(&db).await;
    for (seed, fate) in &cases {
        let was = &before[seed.push_id];
        match *fate {
            "kept" => assert_eq!(after.get(seed.push_id), Some(was), "{backend:?} {}", seed.push_id),
            "expired" => assert!(!after.contains_key(seed.push_id), "{backend:?} {} is still there", seed.push_id),
            _ => {
                let now_row = &after[seed.push_id];
                assert_eq!(now_row.status, 0, "{backend:?} {}", seed.push_id);
                let at = now_row.inactive_time.expect("an inactive time");
                assert!((now..=ran_at).contains(&at), "{backend:?} inactive at {at}, not between {now} and {ran_at}");
                // Nothing else about it changed.
                let unchanged = push_device::Model {
                    status: was.status,
                    inactive_time: was.inactive_time,
                    update_time: was.update_time,
                    ..now_row.clone()
                };
                assert_eq!(&unchanged, was, "{backend:?}");
            }
        }
    }
    let logs = rule_logs(&db).await;
    let logged: Vec<(&str, &str)> = logs.iter().map(|(p, r, _)| (p.as_str(), r.as_str())).collect();
    let mut expected: Vec<(&str, &str)> =
        cases.iter().filter(|(_, fate)| *fate != "kept").map(|(seed, fate)| (seed.push_id, *fate)).collect();
    // Failing devices are marked first, in id (seed) order; then the expired are removed.
    expected.sort_by_key(|(_, rule)| *rule != "failing");
    assert_eq!(logged, expected, "{backend:?}");
    let failing = logs.iter().find(|(p, _, _)| p == "failing-40d").unwrap();
    assert_eq!(failing.2, "5 failed sends in a row (more than 3) and no successful push for 30 days: marked inactive");
    let expired = logs.iter().find(|(p, _, _)| p == "inactive-8d").unwrap();
    assert_eq!(expired.2, "inactive for 7 days or more, not registered again: removed");

    // Run again: nothing left to do, nothing logged twice.
    let again = janitor::run_once(&context, &[Job::DeviceRules]).await;
    assert_eq!(again[0].1, Ok(Outcome::Ran(json!({"failing": 0, "expired": 0}))), "{backend:?}");
    assert_eq!(rule_logs(&db).await.len(), 5, "{backend:?}");
    // Both runs are kept, with what they changed.
    let runs = context.leases.runs("device-rules").await.unwrap();
    let summaries: Vec<&str> = runs.iter().map(|r| r.summary.as_str()).collect();
    assert_eq!(summaries, [r#"{"failing":3,"expired":2}"#, r#"{"failing":0,"expired":0}"#], "{backend:?}");
    assert!(runs.iter().all(|r| r.slot.is_none() && r.holder == "janitor-a"), "{runs:?}");

    // Thresholds are configuration: with 1 error and 5 days allowed, three more are failing
    // (`recent-success`, `three-errors-only`, `never-pushed-new`); with 1 day inactive enough,
    // `inactive-6d` and `inactive-failing-2d` go (not those marked inactive just now).
    let strict = Context { rules: DeviceRules { max_err_count: 1, silent_days: 5, remove_after_days: 1 }, ..context };
    let outcome = janitor::run_once(&strict, &[Job::DeviceRules]).await;
    assert_eq!(outcome[0].1, Ok(Outcome::Ran(json!({"failing": 3, "expired": 2}))), "{backend:?}");
    let left: Vec<String> = devices(&db).await.into_keys().collect();
    assert_eq!(left.len(), 7, "{backend:?}: {left:?}");
    assert!(!left.contains(&"inactive-6d".to_owned()) && left.contains(&"healthy".to_owned()), "{left:?}");
    shutdown.cancel();
    drop(db);
    scratch.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_rules_on_sqlite() {
    the_rules_change_exactly_the_matching_devices(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_rules_on_postgres() {
    the_rules_change_exactly_the_matching_devices(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_rules_on_mariadb() {
    the_rules_change_exactly_the_matching_devices(Backend::MySql).await;
}

/// Two janitors (two pools, two holders) on every-second schedules for 3.5 s: every slot of
/// each job is run once, by one of them, and the devices are changed once.
async fn two_janitors_run_each_slot_once(backend: Backend) {
    let scratch = ScratchDatabase::create(backend).await.unwrap();
    let now = mobile::now_ms();
    let seeds = cases();
    let (db_a, db_b) =
        (database::connect(&scratch.settings).await.unwrap(), database::connect(&scratch.settings).await.unwrap());
    seed_devices(&db_a, now, &seeds.iter().map(|(seed, _)| seed).collect::<Vec<_>>()).await;
    let shutdown = CancellationToken::new();
    let settings = JanitorSettings {
        device_rules_schedule: "* * * * * *".to_owned(),
        retention_schedule: "* * * * * *".to_owned(),
        inbox_trim_schedule: "* * * * * *".to_owned(),
        lease_secs: 2,
        ..JanitorSettings::default()
    };
    for (db, holder) in [(&db_a, "janitor-a"), (&db_b, "janitor-b")] {
        let context = context(db, holder, settings.lease(), &shutdown).await;
        Janitor::start(&settings, Duration::from_secs(3600), context, shutdown.clone()).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let leases = JobLeases::new(db_a.clone(), "reader", Duration::from_secs(1));
    for job in ["device-rules", "retention", "inbox-trim"] {
        let runs = leases.runs(job).await.unwrap();
        let mut slots: Vec<i64> = runs.iter().map(|r| r.slot.expect("a scheduled run")).collect();
        assert!(slots.len() >= 3, "{backend:?} {job}: only {runs:?}");
        let all = slots.len();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), all, "{backend:?} {job}: a slot ran twice: {runs:?}");
    }
    let runs = leases.runs("device-rules").await.unwrap();
    let changed: Vec<&str> =
        runs.iter().map(|r| r.summary.as_str()).filter(|s| *s != r#"{"failing":0,"expired":0}"#).collect();
    assert_eq!(changed, [r#"{"failing":3,"expired":2}"#], "{backend:?}: {runs:?}");
    assert_eq!(rule_logs(&db_a).await.len(), 5, "{backend:?}");
    drop((db_a, db_b));
    scratch.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_janitors_on_postgres() {
    two_janitors_run_each_slot_once(Backend::Postgres).await;
}

// Not on SQLite: a SQLite database is one process's (ARCHITECTURE.md), so two janitors never
// share one; the all-in-one's single janitor is covered by the cases above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_janitors_on_mariadb() {
    two_janitors_run_each_slot_once(Backend::MySql).await;
}

/// Many devices to change, two per transaction; a janitor takes the slot and dies after one
/// chunk. Another waits for its lease to expire, takes the slot over and finishes: the end state
/// is that of a run never interrupted, each change logged once, the slot recorded once.
async fn a_run_killed_half_way_converges(backend: Backend) {
    let now = mobile::now_ms();
    let seeds: Vec<Seed> = (0..7)
        .map(|n| Seed {
            push_id: ["f0", "f1", "f2", "f3", "f4", "f5", "f6"][n],
            ..seed("", true, 4 + n as i32, Some(31), None)
        })
        .chain((0..5).map(|n| Seed { push_id: ["x0", "x1", "x2", "x3", "x4"][n], ..seed("", false, 0, None, Some(8)) }))
        .collect();
    let shutdown = CancellationToken::new();
    let lease = Duration::from_millis(800);
    let run = |interrupted: bool| {
        let (seeds, shutdown) = (&seeds, &shutdown);
        async move {
            let scratch = ScratchDatabase::create(backend).await.unwrap();
            let db = database::connect(&scratch.settings).await.unwrap();
            seed_devices(&db, now, &seeds.iter().collect::<Vec<_>>()).await;
            let alive = Context { device_chunk: 2, ..context(&db, "alive", lease, shutdown).await };
            let slot = 1_000;
            if interrupted {
                let dead = context(&db, "dead", lease, shutdown).await;
                let Claim::Acquired(_) = dead.leases.claim("device-rules", Some(slot)).await.unwrap() else {
                    panic!("the first claim gets the slot");
                };
                assert_eq!(dead.mobile.deactivate_failing(&dead.rules, now, 2).await.unwrap().len(), 2);
                // ...and it is killed: no renewal, no finish.
                let held = janitor::run_slot(&alive, Job::DeviceRules, Some(slot)).await.unwrap();
                assert_eq!(held, Outcome::Held { holder: "dead".to_owned() }, "{backend:?}");
                tokio::time::sleep(lease + Duration::from_millis(200)).await;
            }
            let outcome = janitor::run_slot(&alive, Job::DeviceRules, Some(slot)).await.unwrap();
            let failing = if interrupted { 5 } else { 7 };
            assert_eq!(outcome, Outcome::Ran(json!({"failing": failing, "expired": 5})), "{backend:?}");
            assert_eq!(janitor::run_slot(&alive, Job::DeviceRules, Some(slot)).await.unwrap(), Outcome::Done);
            let runs = alive.leases.runs("device-rules").await.unwrap();
            assert_eq!(runs.len(), 1, "{backend:?}: {runs:?}");
            assert_eq!((runs[0].slot, runs[0].holder.as_str()), (Some(slot), "alive"));
            let state: Vec<(String, i16, i32)> =
                devices(&db).await.into_values().map(|d| (d.push_id, d.status, d.err_count)).collect();
            let mut logs: Vec<(String, String)> = rule_logs(&db).await.into_iter().map(|(p, r, _)| (p, r)).collect();
            logs.sort();
            drop(db);
            scratch.drop_now().await.unwrap();
            (state, logs)
        }
    };
    let whole = run(false).await;
    let resumed = run(true).await;
    assert_eq!(resumed, whole, "{backend:?}");
    assert_eq!(whole.0.len(), 7, "the five expired are gone");
    assert!(whole.0.iter().all(|(_, status, _)| *status == 0), "{whole:?}");
    assert_eq!(whole.1.len(), 12, "one rule-log row per change");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_converges_on_postgres() {
    a_run_killed_half_way_converges(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_converges_on_sqlite() {
    a_run_killed_half_way_converges(Backend::Sqlite).await;
}
