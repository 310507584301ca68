//! `herald janitor run-once [JOB]` as an operator runs it: against PostgreSQL, it applies the
//! device rules (a failing device marked inactive, with its rule-log row) and prints what each
//! job changed as a JSON line; a job another process holds is not run and the command fails; a
//! job that does not exist is refused by name.

use database::entity::push_device;
use database::scratch::{Backend, ScratchDatabase};
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use std::process::Output;
use std::time::Duration;

async fn run_once(database: &database::DatabaseSettings, job: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["janitor", "run-once"])
        .args(job)
        .env("HERALD_DATABASE_URL", &database.url)
        .env("HERALD_DATABASE_SCHEMA", &database.schema)
        // The inboxes it trims: this test's own (none), on the machine's Redis.
        .env("HERALD_REDIS_KEY_PREFIX", format!("{}:", database.schema))
        .env("HERALD_LOG_LEVEL", "warn")
        .env_remove("HERALD_CONFIG")
        .output()
        .await
        .unwrap()
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janitor_run_once_applies_the_device_rules_and_says_what_changed() {
    let scratch = ScratchDatabase::create(Backend::Postgres).await.unwrap();
    let db = database::connect(&scratch.settings).await.unwrap();
    let now = mobile::now_ms();
    let day = 86_400_000;
    let failing = push_device::ActiveModel {
        id: Set("00000000-0000-4000-8000-000000000001".to_owned()),
        user_id: Set(7),
        tenant_id: Set(None),
        push_id: Set("5d2c1b0a9f8e7d6c5b4a39281716a5b4".to_owned()),
        device_type: Set("android".to_owned()),
        status: Set(1),
        last_push_time: Set(Some(now - 45 * day)),
        err_count: Set(6),
        inactive_time: Set(None),
        create_time: Set(now - 90 * day),
        update_time: Set(now - 90 * day),
        subscription: Set(None),
    };
    push_device::Entity::insert(failing).exec_without_returning(&db).await.unwrap();

    let output = run_once(&scratch.settings, &["device-rules"]).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(lines(&output), [json!({"job": "device-rules", "ran": true, "changed": {"failing": 1, "expired": 0}})]);
    let device = push_device::Entity::find().one(&db).await.unwrap().unwrap();
    assert_eq!(device.status, 0);
    let store = mobile::MobileStore::on(db.clone(), tokio_util::sync::CancellationToken::new());
    let rules = store.rule_logs(&device.push_id).await.unwrap();
    assert_eq!(rules.iter().map(|r| r.rule.as_str()).collect::<Vec<_>>(), ["failing"]);

    // Every job when none is named, each once.
    let output = run_once(&scratch.settings, &[]).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let jobs: Vec<Value> = lines(&output).iter().map(|line| line["job"].clone()).collect();
    assert_eq!(jobs, [json!("device-rules"), json!("retention"), json!("inbox-trim")]);

    // Another process holds the job: nothing is run, and the command says so and fails.
    let other = database::jobs::JobLeases::new(db.clone(), "janitor-elsewhere", Duration::from_secs(60));
    assert!(matches!(other.claim("retention", None).await.unwrap(), database::jobs::Claim::Acquired(_)));
    let output = run_once(&scratch.settings, &["retention"]).await;
    assert!(!output.status.success());
    assert_eq!(lines(&output), [json!({"job": "retention", "ran": false, "held_by": "janitor-elsewhere"})]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("retention is running in janitor-elsewhere"));

    let output = run_once(&scratch.settings, &["vacuum"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("vacuum"), "{}", String::from_utf8_lossy(&output.stderr));
    drop((db, store));
    scratch.drop_now().await.unwrap();
}
