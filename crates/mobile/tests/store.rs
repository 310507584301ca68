//! The mobile tables on SQLite, PostgreSQL and MariaDB: the same cases on each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use database::scratch::{Backend, ScratchDatabase};
use mobile::{DeviceQuery, DeviceScope, LogQuery, MobileStore, PushAttempt, Registered, Registration};
use model::{DeviceStatus, DeviceType, FcmSettings, ProviderSettings, PushLogStatus, PushProvider, WebPushSettings};
use tokio_util::sync::CancellationToken;

const PHONE: &str = "0123456789abcdef0123456789abcdef";

fn registration(user_id: i64, tenant: Option<&str>, push_id: &str, device_type: DeviceType) -> Registration {
    Registration {
        user_id,
        tenant_id: tenant.map(str::to_owned),
        push_id: push_id.to_owned(),
        device_type,
        subscription: None,
    }
}

async fn open(backend: Backend) -> (ScratchDatabase, MobileStore, CancellationToken) {
    let scratch = ScratchDatabase::create(backend).await.unwrap_or_else(|err| panic!("{backend:?}: {err}"));
    let db = database::connect(&scratch.settings).await.unwrap();
    let shutdown = CancellationToken::new();
    (scratch, MobileStore::on(db, shutdown.clone()), shutdown)
}

async fn registration_renewal_moves_and_logout(store: &MobileStore, backend: Backend) {
    // A new device.
    let (device, outcome) = store.register(&registration(7, Some("acme"), PHONE, DeviceType::Android)).await.unwrap();
    assert_eq!(outcome, Registered::Created, "{backend:?}");
    assert_eq!(
        (device.user_id, device.tenant_id.as_deref(), device.status, device.err_count),
        (7, Some("acme"), DeviceStatus::Active, 0),
        "{backend:?}"
    );
    assert_eq!(uuid::Uuid::parse_str(&device.id).unwrap().get_version_num(), 4, "{backend:?}");
    assert_eq!(store.device(PHONE).await.unwrap().unwrap(), device, "{backend:?}");

    // The same user again: the same row, never a second one.
    let (again, outcome) = store.register(&registration(7, Some("acme"), PHONE, DeviceType::Android)).await.unwrap();
    assert_eq!((outcome, again.id.as_str()), (Registered::Renewed, device.id.as_str()), "{backend:?}");
    let all = store.devices(&DeviceQuery { page: 1, page_size: 50, ..DeviceQuery::default() }).await.unwrap();
    assert_eq!(all.total, 1, "{backend:?}");

    // Logout: inactive, with the time; a second logout changes nothing.
    let out = store.logout(7, PHONE).await.unwrap().unwrap();
    assert_eq!(out.status, DeviceStatus::Inactive, "{backend:?}");
    let at = out.inactive_time.expect("an inactive time");
    let twice = store.logout(7, PHONE).await.unwrap().unwrap();
    assert_eq!((twice.status, twice.inactive_time), (DeviceStatus::Inactive, Some(at)), "{backend:?}");
    // Only the owner logs a device out; an unknown push id is nobody's.
    assert_eq!(store.logout(8, PHONE).await.unwrap(), None, "{backend:?}");
    assert_eq!(store.logout(7, "ffffffffffffffffffffffffffffffff").await.unwrap(), None, "{backend:?}");

    // Registering after a logout re-activates the row.
    let (back, outcome) = store.register(&registration(7, Some("acme"), PHONE, DeviceType::Android)).await.unwrap();
    assert_eq!(
        (outcome, back.id.as_str(), back.status),
        (Registered::Renewed, device.id.as_str(), DeviceStatus::Active)
    );
    assert_eq!(back.inactive_time, None, "{backend:?}");

    // Another user registers the same push id: the phone changed hands.
    let (moved, outcome) = store.register(&registration(9, Some("globex"), PHONE, DeviceType::Android)).await.unwrap();
    assert_eq!(outcome, Registered::Moved { from: 7 }, "{backend:?}");
    assert_eq!((moved.id.as_str(), moved.user_id, moved.tenant_id.as_deref()), (device.id.as_str(), 9, Some("globex")));
    assert_eq!(store.logout(7, PHONE).await.unwrap(), None, "the old owner no longer has it ({backend:?})");
    let rules = store.rule_logs(PHONE).await.unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(names, ["logout", "moved"], "{backend:?}");
    assert_eq!(rules[1].user_id, 7, "{backend:?}");
    assert!(rules[1].reason.contains("user 9") && rules[1].reason.contains("user 7"), "{}", rules[1].reason);
}

async fn listing(store: &MobileStore, backend: Backend) {
    for i in 0..30_i64 {
        let tenant = if i % 3 == 0 { "acme" } else { "globex" };
        let device_type = if i % 2 == 0 { DeviceType::Ios } else { DeviceType::Harmony };
        let push_id = format!("{:032x}", 1000 + i);
        store.register(&registration(100 + i % 5, Some(tenant), &push_id, device_type)).await.unwrap();
    }
    store.logout(100, &format!("{:032x}", 1000)).await.unwrap().unwrap();
    let page = |query: DeviceQuery| async move {
        store.devices(&DeviceQuery { page_size: 50, page: 1, ..query }).await.unwrap()
    };
    let acme = page(DeviceQuery { tenant_id: Some("acme".into()), ..DeviceQuery::default() }).await;
    assert_eq!(acme.total, 10, "{backend:?}");
    assert!(acme.items.iter().all(|d| d.tenant_id.as_deref() == Some("acme")), "{backend:?}");
    let active_acme = page(DeviceQuery {
        tenant_id: Some("acme".into()),
        status: Some(DeviceStatus::Active),
        ..DeviceQuery::default()
    })
    .await;
    assert_eq!(active_acme.total, 9, "{backend:?}");
    let user = page(DeviceQuery { user_id: Some(101), ..DeviceQuery::default() }).await;
    assert_eq!(user.total, 6, "{backend:?}");
    let ios = page(DeviceQuery { device_type: Some(DeviceType::Ios), ..DeviceQuery::default() }).await;
    assert_eq!(ios.total, 15, "{backend:?}");
    // Pages: newest registration first, no device on two pages, totals over all pages (the 30
    // and the first case's phone).
    let mut seen = std::collections::HashSet::new();
    for number in 1..=4 {
        let part = store.devices(&DeviceQuery { page: number, page_size: 8, ..DeviceQuery::default() }).await.unwrap();
        assert_eq!(part.total, 31, "{backend:?}");
        assert_eq!(part.items.len(), if number == 4 { 7 } else { 8 }, "{backend:?}");
        assert!(part.items.windows(2).all(|w| w[0].create_time >= w[1].create_time), "{backend:?}");
        for device in part.items {
            assert!(seen.insert(device.push_id), "{backend:?}");
        }
    }

    // What alarms and notices are expanded over: active devices in a scope, in id chunks.
    let scoped = |scope: DeviceScope<'static>| async move {
        let (mut all, mut after) = (Vec::new(), None::<String>);
        loop {
            let chunk = store.active_devices_after(scope, after.as_deref(), 7).await.unwrap();
            assert!(chunk.windows(2).all(|w| w[0].id < w[1].id), "{backend:?}");
            after = chunk.last().map(|d| d.id.clone());
            let done = chunk.len() < 7;
            all.extend(chunk);
            if done {
                return all;
            }
        }
    };
    let acme = scoped(DeviceScope::Tenant("acme")).await;
    assert_eq!(acme.len(), 9, "{backend:?}");
    assert!(acme.iter().all(|d| d.tenant_id.as_deref() == Some("acme") && d.status == DeviceStatus::Active));
    let users = scoped(DeviceScope::Users(&[101, 102])).await;
    assert_eq!(users.len(), 12, "{backend:?}");
    assert!(users.iter().all(|d| [101, 102].contains(&d.user_id)), "{backend:?}");
    assert!(scoped(DeviceScope::Users(&[])).await.is_empty(), "{backend:?}");
    let everyone = scoped(DeviceScope::Everyone).await;
    assert_eq!(everyone.len(), 30, "every device but the one logged out ({backend:?})");
    let distinct: std::collections::HashSet<_> = everyone.iter().map(|d| d.id.clone()).collect();
    assert_eq!(distinct.len(), 30, "{backend:?}");
}

async fn provider_config(store: &MobileStore, backend: Backend) {
    assert_eq!(store.provider_config().await.unwrap(), None, "{backend:?}");
    let first = store.set_provider_url("http://127.0.0.1:9000/push").await.unwrap();
    assert_eq!(first.url, "http://127.0.0.1:9000/push", "{backend:?}");
    let long = format!("https://push.example.com/{}", "a".repeat(2000));
    let second = store.set_provider_url(&long).await.unwrap();
    assert_eq!(second.url, long, "{backend:?}");
    assert_eq!(second.create_time, first.create_time, "one row, overwritten ({backend:?})");
    assert_eq!(store.provider_config().await.unwrap().unwrap(), second, "{backend:?}");
}

async fn provider_settings(store: &MobileStore, backend: Backend) {
    assert_eq!(store.provider_settings().await.unwrap(), [], "{backend:?}");
    let fcm = ProviderSettings::Fcm(FcmSettings {
        credentials: "file:/run/secrets/fcm.json".into(),
        project_id: Some("herald-test".into()),
        url: Some("http://127.0.0.1:9100".into()),
    });
    let web = ProviderSettings::WebPush(WebPushSettings {
        vapid_key: "env:HERALD_VAPID_KEY".into(),
        subject: "mailto:ops@example.com".into(),
        ttl_secs: None,
        hosts: Some(vec![".push.example.com".into()]),
    });
    let first = store.set_provider_settings(&web).await.unwrap();
    assert_eq!(first.settings, web, "{backend:?}");
    store.set_provider_settings(&fcm).await.unwrap();
    let changed = ProviderSettings::Fcm(FcmSettings { project_id: None, url: None, ..fcm_settings(&fcm) });
    let second = store.set_provider_settings(&changed).await.unwrap();
    let stored = store.provider_settings().await.unwrap();
    let listed: Vec<_> = stored.iter().map(|s| &s.settings).collect();
    assert_eq!(listed, [&changed, &web], "one row a provider, in config_type order ({backend:?})");
    assert!(second.update_time >= second.create_time, "{backend:?}");
    // The original's provider URL is its own row, untouched.
    assert!(store.provider_config().await.unwrap().is_some(), "{backend:?}");
    assert!(store.remove_provider_settings(PushProvider::WebPush).await.unwrap(), "{backend:?}");
    assert!(!store.remove_provider_settings(PushProvider::WebPush).await.unwrap(), "{backend:?}");
    assert!(!store.remove_provider_settings(PushProvider::Apns).await.unwrap(), "{backend:?}");
    assert_eq!(store.provider_settings().await.unwrap(), [second], "{backend:?}");
    assert!(store.provider_config().await.unwrap().is_some(), "{backend:?}");
}

fn fcm_settings(settings: &ProviderSettings) -> FcmSettings {
    match settings {
        ProviderSettings::Fcm(fcm) => fcm.clone(),
        other => panic!("not FCM's: {other:?}"),
    }
}

fn attempt(send_id: &str, number: i32, status: PushLogStatus, at: i64) -> PushAttempt {
    PushAttempt {
        send_id: send_id.to_owned(),
        attempt: number,
        message_id: "1706335800123456789-abc12345".to_owned(),
        user_id: 9,
        push_id: PHONE.to_owned(),
        message_type: "alarm".to_owned(),
        alarm_id: "cfg-1".to_owned(),
        title: "告警:温度过高".to_owned(),
        content: "DEV-001".to_owned(),
        status,
        err_message: if status == PushLogStatus::Sent { String::new() } else { "errCode 20001".to_owned() },
        provider_answer: r#"{"errCode":20001}"#.to_owned(),
        create_time: at,
    }
}

async fn push_logs(store: &MobileStore, backend: Backend) {
    let err_count = || async { store.device(PHONE).await.unwrap().unwrap().err_count };
    let base = 1_800_000_000_000;
    // Two failures count twice; the same attempt redelivered counts once and is logged once.
    assert!(store.record_attempt(&attempt("s1", 1, PushLogStatus::Failed, base), true).await.unwrap(), "{backend:?}");
    assert!(!store.record_attempt(&attempt("s1", 1, PushLogStatus::Failed, base), true).await.unwrap(), "{backend:?}");
    assert!(store.record_attempt(&attempt("s1", 2, PushLogStatus::Failed, base + 1000), true).await.unwrap());
    assert_eq!(err_count().await, 2, "{backend:?}");
    // A success restarts the count and sets the last push time.
    assert!(store.record_attempt(&attempt("s1", 3, PushLogStatus::Sent, base + 2000), true).await.unwrap());
    let device = store.device(PHONE).await.unwrap().unwrap();
    assert_eq!((device.err_count, device.last_push_time), (0, Some(base + 2000)), "{backend:?}");
    assert!(store.record_attempt(&attempt("s2", 4, PushLogStatus::Dead, base + 3000), true).await.unwrap());
    assert_eq!(err_count().await, 1, "{backend:?}");

    let page =
        |query: LogQuery| async move { store.logs(&LogQuery { page: 1, page_size: 50, ..query }).await.unwrap() };
    let all = page(LogQuery::default()).await;
    assert_eq!(all.total, 4, "{backend:?}");
    let order: Vec<(String, i32)> = all.items.iter().map(|l| (l.attempt.send_id.clone(), l.attempt.attempt)).collect();
    assert_eq!(order, [("s2".into(), 4), ("s1".into(), 3), ("s1".into(), 2), ("s1".into(), 1)], "newest first");
    assert_eq!(all.items[1].attempt, attempt("s1", 3, PushLogStatus::Sent, base + 2000), "{backend:?}");
    assert_eq!(page(LogQuery { status: Some(PushLogStatus::Failed), ..LogQuery::default() }).await.total, 2);
    assert_eq!(page(LogQuery { status: Some(PushLogStatus::Dead), ..LogQuery::default() }).await.total, 1);
    let window = LogQuery { start_ms: Some(base + 1000), end_ms: Some(base + 2000), ..LogQuery::default() };
    assert_eq!(page(window).await.total, 2, "{backend:?}");
    assert_eq!(page(LogQuery { user_id: Some(9), ..LogQuery::default() }).await.total, 4);
    assert_eq!(page(LogQuery { user_id: Some(8), ..LogQuery::default() }).await.total, 0);
    assert_eq!(page(LogQuery { push_id: Some(PHONE.into()), ..LogQuery::default() }).await.total, 4);
    assert_eq!(page(LogQuery { send_id: Some("s2".into()), ..LogQuery::default() }).await.total, 1);
    let second = store.logs(&LogQuery { page: 2, page_size: 3, ..LogQuery::default() }).await.unwrap();
    assert_eq!((second.total, second.items.len()), (4, 1), "{backend:?}");
    let logged = store.logged_attempt("s1", 2).await.unwrap().unwrap();
    assert_eq!(store.log(logged.id).await.unwrap().unwrap(), logged, "{backend:?}");
    assert_eq!(store.logged_attempt("s1", 9).await.unwrap(), None);
    // A failure that is not the device's (the provider refused Herald's credential) is logged
    // and leaves the count alone.
    assert!(
        store.record_attempt(&attempt("s-credential", 1, PushLogStatus::Failed, base + 3500), false).await.unwrap()
    );
    assert_eq!(err_count().await, 1, "{backend:?}");
    // Read in chunks after a cursor, oldest first: rows of the same millisecond are neither
    // skipped nor repeated at a chunk's edge.
    for i in 0..5 {
        store.record_attempt(&attempt(&format!("same-{i}"), 1, PushLogStatus::Sent, base + 5000), true).await.unwrap();
    }
    let (mut read, mut after) = (Vec::new(), None);
    loop {
        let chunk = store.logs_after(&LogQuery::default(), after, 2).await.unwrap();
        let Some(last) = chunk.last() else { break };
        after = Some((last.attempt.create_time, last.id));
        read.extend(chunk.into_iter().map(|l| (l.attempt.create_time, l.id)));
    }
    assert_eq!(read.len(), 10, "{backend:?}");
    assert!(read.windows(2).all(|w| w[0] < w[1]), "{backend:?}: {read:?}");
    let failed_only = LogQuery { status: Some(PushLogStatus::Failed), ..LogQuery::default() };
    assert_eq!(store.logs_after(&failed_only, None, 100).await.unwrap().len(), 3, "{backend:?}");

    // A device that is gone: the attempt is still logged.
    let mut orphan = attempt("s3", 1, PushLogStatus::Failed, base + 4000);
    orphan.push_id = "no-such-device-0000".into();
    assert!(store.record_attempt(&orphan, true).await.unwrap(), "{backend:?}");
}

/// A browser's subscription (longer than any push id column) is kept beside its device and
/// replaced when the browser registers the endpoint again with new keys.
async fn web_subscriptions(store: &MobileStore, backend: Backend) {
    let subscription = |auth: &str| {
        format!(
            r#"{{"endpoint":"https://fcm.googleapis.com/fcm/send/{}","keys":{{"p256dh":"B","auth":"{auth}"}}}}"#,
            "x".repeat(1500)
        )
    };
    let browser =
        Registration { subscription: Some(subscription("first")), ..registration(7, None, "web:e", DeviceType::Web) };
    let (device, outcome) = store.register(&browser).await.unwrap();
    assert_eq!(
        (outcome, device.subscription.as_deref()),
        (Registered::Created, Some(subscription("first").as_str())),
        "{backend:?}"
    );
    let renewed = Registration { subscription: Some(subscription("second")), ..browser };
    let (device, outcome) = store.register(&renewed).await.unwrap();
    assert_eq!(outcome, Registered::Renewed, "{backend:?}");
    assert_eq!(device.subscription.as_deref(), Some(subscription("second").as_str()), "{backend:?}");
    let stored = store.device("web:e").await.unwrap().unwrap();
    assert_eq!(
        (stored.device_type.as_str(), stored.subscription),
        ("web", Some(subscription("second"))),
        "{backend:?}"
    );
    assert_eq!(store.device(PHONE).await.unwrap().unwrap().subscription, None, "{backend:?}");
}

#[tokio::test]
async fn the_mobile_tables_behave_the_same_on_every_sql_backend() {
    for backend in Backend::ALL {
        let (scratch, store, shutdown) = open(backend).await;
        registration_renewal_moves_and_logout(&store, backend).await;
        listing(&store, backend).await;
        provider_config(&store, backend).await;
        provider_settings(&store, backend).await;
        push_logs(&store, backend).await;
        web_subscriptions(&store, backend).await;
        shutdown.cancel();
        drop(store);
        scratch.drop_now().await.unwrap();
    }
}

#[tokio::test]
async fn concurrent_registrations_of_one_push_id_leave_one_row() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let (scratch, store, shutdown) = open(backend).await;
        let tasks: Vec<_> = (0..8_i64)
            .map(|user| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.register(&registration(50 + user, None, PHONE, DeviceType::Ios)).await },
                )
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            if task.await.unwrap().unwrap_or_else(|err| panic!("{backend:?}: {err}")).1 == Registered::Created {
                created += 1;
            }
        }
        assert_eq!(created, 1, "{backend:?}");
        let all = store.devices(&DeviceQuery { page: 1, page_size: 50, ..DeviceQuery::default() }).await.unwrap();
        assert_eq!(all.total, 1, "{backend:?}");
        shutdown.cancel();
        drop(store);
        scratch.drop_now().await.unwrap();
    }
}
