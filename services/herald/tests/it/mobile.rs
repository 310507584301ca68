//! The mobile API end to end: devices registered, renewed, moved between users and logged out,
//! the provider's configuration, the admin listing, and every bad input refused naming the
//! field; push logs written by the worker's send step through the mock provider, read through
//! the logs API. Distributed (PostgreSQL behind ingest-api) and embedded (SQLite); the store's
//! own tests run the same rules on MariaDB.

use crate::helpers::{Distributed, Embedded, Endpoints, assert_schema, tenant_token, token};
use runtime::Role;
use serde_json::{Value, json};

/// A UniPush client id, as an Android app gets it.
const ANDROID: &str = "5d2c1b0a9f8e7d6c5b4a39281716a5b4";
/// An APNs device token, in upper case as some iOS code prints it.
const IOS: &str = "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90";

fn refused(status: u16, answer: &Value, want_status: u16, code: &str, field: Option<&str>) {
    assert_eq!(status, want_status, "{answer}");
    assert_schema("failure-response.schema.json", answer);
    assert_eq!(answer["data"]["error_code"], code, "{answer}");
    if let Some(field) = field {
        assert_eq!(answer["data"]["field"], field, "{answer}");
        assert!(answer["message"].as_str().unwrap().contains(field), "the message names {field}: {answer}");
    }
}

async fn register(app: &Endpoints, token: &str, push_id: &str, device_type: &str) -> Value {
    let body = json!({"pushId": push_id, "deviceType": device_type});
    assert_schema("device-register-request.schema.json", &body);
    let (status, answer) = app.post(token, "/api/message_push", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_schema("device-response.schema.json", &answer);
    answer["data"].clone()
}

async fn devices(app: &Endpoints, admin: &str, query: &str) -> Value {
    let (status, page) = app.get(admin, &format!("/api/message_push/manage?{query}")).await;
    assert_eq!(status, 200, "{page}");
    assert_schema("device-page-response.schema.json", &page);
    page["data"].clone()
}

async fn devices_register_move_and_log_out(app: &Endpoints) {
    let admin = token(1, Role::Admin, "root");
    let alice = tenant_token(7, Role::User, "alice", "acme");
    let bob = tenant_token(8, Role::User, "bob", "globex");

    // Registered, then registered again: one device, renewed.
    let first = register(app, &alice, ANDROID, "android").await;
    assert_eq!(
        (&first["registered"], &first["status"], &first["pushId"]),
        (&json!("created"), &json!(1), &json!(ANDROID))
    );
    let again = register(app, &alice, ANDROID, "android").await;
    assert_eq!((&again["registered"], &again["id"]), (&json!("renewed"), &first["id"]), "{again}");
    // An APNs token is kept in lower case: one device however the app spells it.
    let ios = register(app, &alice, IOS, "ios").await;
    assert_eq!(ios["pushId"], IOS.to_ascii_lowercase());
    let ios_again = register(app, &alice, &IOS.to_ascii_lowercase(), "ios").await;
    assert_eq!((&ios_again["registered"], &ios_again["id"]), (&json!("renewed"), &ios["id"]));

    let acme = devices(app, &admin, "tenant_id=acme").await;
    assert_eq!(acme["total"], 2, "{acme}");
    let listed = acme["items"].as_array().unwrap().iter().find(|d| d["push_id"] == ANDROID).unwrap().clone();
    assert_eq!(
        (&listed["user_id"], &listed["tenant_id"], &listed["device_type"]),
        (&json!(7), &json!("acme"), &json!("android"))
    );
    assert_eq!(
        (&listed["status"], &listed["err_count"], &listed["last_push_time"]),
        (&json!(1), &json!(0), &Value::Null)
    );
    assert!(listed["create_time"].is_string() && listed["inactive_time"].is_null(), "{listed}");

    // The phone changes hands: bob registers it; it is his, in his tenant, and alice can no
    // longer log it out.
    let moved = register(app, &bob, ANDROID, "android").await;
    assert_eq!((&moved["registered"], &moved["id"]), (&json!("moved"), &first["id"]), "{moved}");
    let bobs = devices(app, &admin, "user_id=8").await;
    assert_eq!((bobs["total"].as_u64(), &bobs["items"][0]["tenant_id"]), (Some(1), &json!("globex")), "{bobs}");
    assert_eq!(devices(app, &admin, "tenant_id=acme").await["total"], 1);
    let (status, answer) = app.post(&alice, "/api/message_push/logout", &json!({"pushId": ANDROID})).await;
    refused(status, &answer, 404, "NOT_FOUND", Some("pushId"));

    // Logout: inactive, listed with the time; a second logout is fine.
    let body = json!({"pushId": ANDROID});
    assert_schema("device-logout-request.schema.json", &body);
    let (status, out) = app.post(&bob, "/api/message_push/logout", &body).await;
    assert_eq!((status, &out["data"]["status"]), (200, &json!(0)), "{out}");
    assert_schema("device-response.schema.json", &out);
    let (status, twice) = app.post(&bob, "/api/message_push/logout", &body).await;
    assert_eq!((status, &twice["data"]["status"]), (200, &json!(0)), "{twice}");
    let inactive = devices(app, &admin, "status=0").await;
    assert_eq!(inactive["total"], 1, "{inactive}");
    assert!(inactive["items"][0]["inactive_time"].is_string(), "{inactive}");
    assert_eq!(devices(app, &admin, "status=1&device_type=ios").await["total"], 1);
    // The app may send the iOS token as it got it.
    let (status, out) = app.post(&alice, "/api/message_push/logout", &json!({"pushId": IOS})).await;
    assert_eq!((status, &out["data"]["status"]), (200, &json!(0)), "{out}");
    // Registering again re-activates.
    let back = register(app, &bob, ANDROID, "android").await;
    assert_eq!((&back["registered"], &back["status"]), (&json!("renewed"), &json!(1)));
    let paged = devices(app, &admin, "page=2&page_size=1").await;
    assert_eq!((paged["total"].as_u64(), paged["items"].as_array().unwrap().len()), (Some(2), 1), "{paged}");
}

async fn provider_config(app: &Endpoints) {
    let admin = token(1, Role::Admin, "root");
    let (status, empty) = app.get(&admin, "/api/message_push/config").await;
    assert_eq!(status, 200, "{empty}");
    assert_schema("push-config-response.schema.json", &empty);
    assert_eq!((&empty["data"]["url"], &empty["data"]["config_type"]), (&Value::Null, &json!(1)), "{empty}");

    let body = json!({"url": "http://127.0.0.1:9000/push/send"});
    assert_schema("push-config-request.schema.json", &body);
    let (status, set) = app.post(&admin, "/api/message_push/config", &body).await;
    assert_eq!(status, 200, "{set}");
    assert_schema("push-config-response.schema.json", &set);
    let (_, read) = app.get(&admin, "/api/message_push/config").await;
    assert_eq!(read["data"]["url"], "http://127.0.0.1:9000/push/send", "{read}");
    assert!(read["data"]["update_time"].is_string(), "{read}");

    let longest = format!("https://push.example.com/{}", "a".repeat(2048 - 25));
    assert_eq!(longest.len(), 2048);
    let (status, answer) = app.post(&admin, "/api/message_push/config", &json!({"url": longest})).await;
    assert_eq!(status, 200, "{answer}");
    for bad in [
        json!({"url": "ftp://example.com/push"}),
        json!({"url": "/push"}),
        json!({"url": "http://exa mple.com/"}),
        json!({"url": format!("{longest}b")}),
        json!({"url": ""}),
        json!({"url": 42}),
        json!({}),
    ] {
        let (status, answer) = app.post(&admin, "/api/message_push/config", &bad).await;
        refused(status, &answer, 400, "INVALID_REQUEST", Some("url"));
    }
    // Nothing half-written: the last good URL is still the one.
    let (_, read) = app.get(&admin, "/api/message_push/config").await;
    assert_eq!(read["data"]["url"], json!(longest));

    let user = token(7, Role::User, "alice");
    let (status, answer) = app.get(&user, "/api/message_push/config").await;
    refused(status, &answer, 403, "FORBIDDEN", None);
    let (status, answer) = app.post(&user, "/api/message_push/config", &json!({"url": "http://evil.example/"})).await;
    refused(status, &answer, 403, "FORBIDDEN", None);
    let (status, answer) = app.get(&user, "/api/message_push/manage").await;
    refused(status, &answer, 403, "FORBIDDEN", None);
}

async fn bad_registrations_are_refused_naming_the_field(app: &Endpoints) {
    let admin = token(1, Role::Admin, "root");
    let carol = token(9, Role::User, "carol");
    for (body, field) in [
        (json!({"deviceType": "android"}), "pushId"),
        (json!({"pushId": ANDROID}), "deviceType"),
        (json!({"pushId": ANDROID, "deviceType": "windows"}), "deviceType"),
        (json!({"pushId": ANDROID, "deviceType": "Android"}), "deviceType"),
        (json!({"pushId": "short", "deviceType": "android"}), "pushId"),
        (json!({"pushId": "has spaces in the middle", "deviceType": "harmony"}), "pushId"),
        (json!({"pushId": "a".repeat(256), "deviceType": "android"}), "pushId"),
        (json!({"pushId": "0123", "deviceType": "ios"}), "pushId"),
        (json!({"pushId": "z".repeat(64), "deviceType": "ios"}), "pushId"),
        (json!({"pushId": 12345, "deviceType": "ios"}), "pushId"),
        (json!({"pushId": ANDROID, "deviceType": "android", "extra": 1}), "extra"),
    ] {
        let (status, answer) = app.post(&carol, "/api/message_push", &body).await;
        refused(status, &answer, 400, "INVALID_REQUEST", Some(field));
    }
    for (body, field) in
        [(json!({}), "pushId"), (json!({"pushId": "a b"}), "pushId"), (json!({"pushId": ""}), "pushId")]
    {
        let (status, answer) = app.post(&carol, "/api/message_push/logout", &body).await;
        refused(status, &answer, 400, "INVALID_REQUEST", Some(field));
    }
    let (status, answer) =
        app.post(&carol, "/api/message_push/logout", &json!({"pushId": "ffffffffffffffffffffffffffffffff"})).await;
    refused(status, &answer, 404, "NOT_FOUND", Some("pushId"));
    // Nothing was registered by any of those.
    assert_eq!(devices(app, &admin, "user_id=9").await["total"], 0);

    for path in ["/api/message_push", "/api/message_push/logout"] {
        let (status, answer) = app.post("", path, &json!({"pushId": ANDROID, "deviceType": "android"})).await;
        refused(status, &answer, 401, "UNAUTHORIZED", None);
    }
    let (status, page) = app.get(&admin, "/api/message_push/logs?status=dead").await;
    assert_eq!(status, 200, "{page}");
    assert_schema("push-log-page-response.schema.json", &page);
    for query in [
        "status=lost",
        "start_time=yesterday",
        "start_time=2026-01-02%2000:00:00&end_time=2026-01-01%2000:00:00",
        "push_id=a%20b",
        "page_size=201",
        "colour=red",
    ] {
        let (status, answer) = app.get(&admin, &format!("/api/message_push/logs?{query}")).await;
        refused(status, &answer, 400, "INVALID_REQUEST", None);
    }
    for query in
        ["status=2", "status=active", "page_size=201", "page=0", "user_id=0", "device_type=windows", "colour=red"]
    {
        let (status, answer) = app.get(&admin, &format!("/api/message_push/manage?{query}")).await;
        refused(status, &answer, 400, "INVALID_REQUEST", None);
    }
}

/// The export's header row.
fn ingest_api_columns() -> Vec<String> {
    [
        "id",
        "send_id",
        "message_id",
        "user_id",
        "push_id",
        "message_type",
        "alarm_id",
        "title",
        "content",
        "status",
        "err_message",
        "attempt",
        "provider_answer",
        "create_time",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Sends made by the worker's send step on the app's own database, through the mock provider,
/// then read through the logs API with every filter.
async fn push_logs_through_the_api(app: &Endpoints, database: &database::DatabaseSettings) {
    use mobile_push_worker::send::{Attempted, MAX_ATTEMPTS, PushSend, Sender};
    let admin = token(1, Role::Admin, "root");
    let provider = mock_push::MockProvider::start_local().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let store = mobile::MobileStore::on(database::connect(database).await.unwrap(), shutdown.clone());
    let client = mobile_push_worker::provider::UniPush::new(Default::default()).unwrap();
    let sender = Sender::new(
        store,
        mobile_push_worker::provider::Providers::unipush(client),
        mobile_push_worker::metrics::SendMetrics::new(),
    );
    let (status, answer) = app.post(&admin, "/api/message_push/config", &json!({"url": provider.push_url()})).await;
    assert_eq!(status, 200, "{answer}");
    let dave = tenant_token(10, Role::User, "dave", "acme");
    let good = "00000000000000000000000000000a01";
    let bad = "00000000000000000000000000000b02";
    register(app, &dave, good, "android").await;
    register(app, &dave, bad, "android").await;
    provider.mock.answer_push_id(bad, mock_push::Answer::Http500);
    let send = |push_id: &str, send_id: &str, attempt: i32| PushSend {
        send_id: send_id.to_owned(),
        attempt,
        message_id: "1706335800123456789-abc12345".to_owned(),
        user_id: 10,
        push_id: push_id.to_owned(),
        message_type: "alarm".to_owned(),
        title: "告警:温度过高".to_owned(),
        content: "DEV-001".to_owned(),
        alarm_id: Some("cfg-1".to_owned()),
        category: None,
        priority: model::Priority::Normal,
    };
    assert_eq!(sender.attempt(&send(good, "ok-1", 1)).await.unwrap(), Attempted::Sent);
    for attempt in 1..=MAX_ATTEMPTS {
        sender.attempt(&send(bad, "bad-1", attempt)).await.unwrap();
    }
    let logs = |query: &'static str| {
        let admin = admin.clone();
        async move {
            let (status, page) = app.get(&admin, &format!("/api/message_push/logs?{query}")).await;
            assert_eq!(status, 200, "{page}");
            assert_schema("push-log-page-response.schema.json", &page);
            page["data"].clone()
        }
    };
    let all = logs("user_id=10").await;
    assert_eq!(all["total"], 1 + MAX_ATTEMPTS, "{all}");
    assert_eq!(logs("status=sent").await["items"][0]["push_id"], good);
    let dead = logs("status=dead").await;
    assert_eq!((dead["total"].as_i64(), &dead["items"][0]["attempt"]), (Some(1), &json!(MAX_ATTEMPTS)), "{dead}");
    assert!(dead["items"][0]["err_message"].as_str().unwrap().contains("HTTP 500"), "{dead}");
    assert_eq!(logs("status=failed&push_id=00000000000000000000000000000b02").await["total"], MAX_ATTEMPTS - 1);
    assert_eq!(logs("start_time=2000-01-01%2000:00:00&end_time=2000-01-02%2000:00:00").await["total"], 0);
    assert_eq!(logs("page=2&page_size=2&user_id=10").await["items"].as_array().unwrap().len(), 2);
    // What the admin listing shows of the devices: the counts the attempts left.
    let devices = devices(app, &admin, "user_id=10").await;
    let device =
        |push_id: &str| devices["items"].as_array().unwrap().iter().find(|d| d["push_id"] == push_id).unwrap().clone();
    assert_eq!(device(bad)["err_count"], MAX_ATTEMPTS, "{devices}");
    assert!(device(good)["last_push_time"].is_string(), "{devices}");
    let (status, answer) = app.get(&dave, "/api/message_push/logs").await;
    refused(status, &answer, 403, "FORBIDDEN", None);

    // The export: a byte order mark, a header, the rows oldest first, across several of the
    // chunks it reads (1000 rows each): 2100 more attempts of another device.
    let bulk = "00000000000000000000000000000c03";
    register(app, &dave, bulk, "android").await;
    for batch in 0..21 {
        let attempts = (0..100).map(|i| {
            let mut one = send(bulk, &format!("bulk-{}", batch * 100 + i), 1);
            one.title = format!("告警:{}", batch * 100 + i);
            one
        });
        let made = futures_util::future::join_all(attempts.map(|one| {
            let sender = sender.clone();
            async move { sender.attempt(&one).await }
        }))
        .await;
        assert!(made.iter().all(|m| matches!(m, Ok(Attempted::Sent))), "{made:?}");
    }
    let response = app
        .http
        .get(format!("{}/api/message_push/logs/export?user_id=10", app.api))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(response.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    let file = response.bytes().await.unwrap();
    assert!(file.starts_with(b"\xEF\xBB\xBF"), "no byte order mark");
    let mut reader = csv::Reader::from_reader(&file[3..]);
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header, ingest_api_columns());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len() as i32, 1 + MAX_ATTEMPTS + 2100);
    let ids: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), ids.len(), "a row twice");
    let times: Vec<&str> = rows.iter().map(|r| r.get(13).unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not oldest first");
    assert_eq!((&rows[0][8], &rows[0][6]), ("DEV-001", "cfg-1"));
    assert!(rows.iter().any(|r| &r[7] == "告警:2099"), "Chinese text intact");
    let dead: Vec<&csv::StringRecord> = rows.iter().filter(|r| &r[9] == "dead").collect();
    assert_eq!(dead.len(), 1);
    // The filters are the listing's.
    let (status, answer) = app.get(&admin, "/api/message_push/logs/export?status=gone").await;
    refused(status, &answer, 400, "INVALID_REQUEST", None);
    provider.stop().await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_mobile_devices_and_config() {
    let app = Distributed::spawn().await;
    devices_register_move_and_log_out(&app.endpoints).await;
    provider_config(&app.endpoints).await;
    bad_registrations_are_refused_naming_the_field(&app.endpoints).await;
    push_logs_through_the_api(&app.endpoints, &app.database()).await;
    alarms_reach_the_tenants_active_devices(&app.endpoints).await;
    notices_reach_their_recipients_devices(&app.endpoints).await;
    app.stop().await;
}

/// Alarms through the bus and the worker to the mock provider: every active device of the
/// tenant gets exactly the original's payload; other tenants' devices and logged-out ones get
/// nothing.
async fn alarms_reach_the_tenants_active_devices(app: &Endpoints) {
    let admin = token(1, Role::Admin, "root");
    let provider = mock_push::MockProvider::start_local().unwrap();
    let (status, answer) = app.post(&admin, "/api/message_push/config", &json!({"url": provider.push_url()})).await;
    assert_eq!(status, 200, "{answer}");
    let north = tenant_token(20, Role::User, "n1", "north");
    let north_too = tenant_token(21, Role::User, "n2", "north");
    let south = tenant_token(22, Role::User, "s1", "south");
    let (android, ios, theirs, gone) = (
        "00000000000000000000000000000d01",
        "00000000000000000000000000000d02",
        "00000000000000000000000000000d03",
        "00000000000000000000000000000d04",
    );
    register(app, &north, android, "android").await;
    register(app, &north_too, ios, "ios").await;
    register(app, &south, theirs, "android").await;
    register(app, &north, gone, "android").await;
    let (status, _) = app.post(&north, "/api/message_push/logout", &json!({"pushId": gone})).await;
    assert_eq!(status, 200);

    let body =
        json!({"tenant_id": "north", "triggered": "温度过高", "alarm_config_id": "cfg-9", "device_number": "DEV-001"});
    assert_schema("alarm-request.schema.json", &body);
    let (status, answer) = app.post(&admin, "/api/message_push/alarm", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_schema("alarm-response.schema.json", &answer);
    assert_eq!((&answer["data"]["devices_count"], &answer["data"]["title"]), (&json!(2), &json!("告警:温度过高")));
    let job_id = answer["data"]["job_id"].as_str().unwrap().to_owned();

    runtime::testing::eventually("both north devices to be pushed", std::time::Duration::from_secs(15), || async {
        let got = provider.mock.received().len();
        runtime::testing::holds(got >= 2, format_args!("{got} received"))
    })
    .await;
    // A moment more: nothing else arrives.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut received: Vec<Value> = provider.mock.received().into_iter().map(|r| r.body).collect();
    received.sort_by_key(|body| body["push_clientid"].as_str().unwrap().to_owned());
    let expected = |push_id: &str| json!({"push_clientid": push_id, "title": "告警:温度过高", "content": "DEV-001", "alarm_id": "cfg-9"});
    assert_eq!(received, vec![expected(android), expected(ios)]);
    for push_id in [android, ios] {
        let (_, logs) = app.get(&admin, &format!("/api/message_push/logs?status=sent&push_id={push_id}")).await;
        let items = logs["data"]["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{logs}");
        assert!(items[0]["send_id"].as_str().unwrap().starts_with(&format!("{job_id}:")), "{logs}");
    }
    for (body, field) in [
        (json!({"triggered": "x", "alarm_config_id": "c", "device_number": "d"}), "tenant_id"),
        (json!({"tenant_id": "north", "triggered": " ", "alarm_config_id": "c", "device_number": "d"}), "triggered"),
        (
            json!({"tenant_id": "north", "triggered": "x".repeat(101), "alarm_config_id": "c", "device_number": "d"}),
            "triggered",
        ),
        (
            json!({"tenant_id": "north", "triggered": "x", "alarm_config_id": "", "device_number": "d"}),
            "alarm_config_id",
        ),
        (json!({"tenant_id": "north", "triggered": "x", "alarm_config_id": "c", "device_number": 5}), "device_number"),
        (json!({"tenant_id": "north", "triggered": "x", "alarm_config_id": "c", "device_number": "d", "x": 1}), "x"),
    ] {
        let (status, answer) = app.post(&admin, "/api/message_push/alarm", &body).await;
        refused(status, &answer, 400, "INVALID_REQUEST", Some(field));
    }
    let (status, answer) = app.post(&north, "/api/message_push/alarm", &body).await;
    refused(status, &answer, 403, "FORBIDDEN", None);

    // A failed push retried from the API: sent once, to the same device, however often asked.
    provider.mock.answer_push_id(android, mock_push::Answer::Http500);
    let (status, answer) = app.post(&admin, "/api/message_push/alarm", &body).await;
    assert_eq!(status, 200, "{answer}");
    let failed_row = runtime::testing::eventually("the failed attempt", std::time::Duration::from_secs(15), || async {
        let (_, logs) = app.get(&admin, &format!("/api/message_push/logs?status=failed&push_id={android}")).await;
        match logs["data"]["items"][0]["id"].as_i64() {
            Some(id) => Ok(id),
            None => Err(logs),
        }
    })
    .await;
    provider.mock.answer_push_id(android, mock_push::Answer::Success);
    let pushed = || provider.mock.received().iter().filter(|r| r.push_id == android).count();
    let before = pushed();
    let path = format!("/api/message_push/logs/{failed_row}/retry");
    let (status, answer) = app.post(&admin, &path, &json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_schema("push-retry-response.schema.json", &answer);
    let send_id = format!("retry:{failed_row}");
    assert_eq!(answer["data"]["send_id"], send_id);
    runtime::testing::eventually("the retry to be sent", std::time::Duration::from_secs(15), || async {
        let (_, logs) = app.get(&admin, &format!("/api/message_push/logs?status=sent&push_id={android}")).await;
        let found = logs["data"]["items"].as_array().unwrap().iter().any(|l| l["send_id"] == send_id.as_str());
        if found { Ok(()) } else { Err(logs) }
    })
    .await;
    assert_eq!(pushed(), before + 1);
    let last = provider.mock.received().into_iter().rev().find(|r| r.push_id == android).unwrap();
    assert_eq!(last.body, expected(android));
    let (status, _) = app.post(&admin, &path, &json!({})).await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(pushed(), before + 1, "a second retry of the same row pushed again");
    let (_, sent) = app.get(&admin, &format!("/api/message_push/logs?status=sent&push_id={ios}")).await;
    let sent_row = sent["data"]["items"][0]["id"].as_i64().unwrap();
    for (path, want, code) in [
        (format!("/api/message_push/logs/{sent_row}/retry"), 400, "INVALID_REQUEST"),
        ("/api/message_push/logs/abc/retry".to_owned(), 400, "INVALID_REQUEST"),
        ("/api/message_push/logs/0/retry".to_owned(), 400, "INVALID_REQUEST"),
        ("/api/message_push/logs/999999999/retry".to_owned(), 404, "NOT_FOUND"),
    ] {
        let (status, answer) = app.post(&admin, &path, &json!({})).await;
        refused(status, &answer, want, code, Some("id"));
    }
    provider.stop().await;
}

/// The worker's metrics, on the process that runs it.
async fn worker_metrics_are_served(app: &Endpoints) {
    let response = app.http.get(format!("{}/metrics", app.api)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for name in [
        "herald_mobile_push_sends_total{outcome=\"sent\",reason=\"none\"} 0",
        "herald_mobile_push_sends_total{outcome=\"dead\",reason=\"timeout\"} 0",
        "herald_mobile_push_retries_total 0",
        "herald_mobile_push_dead_letters_total 0",
        "# TYPE herald_mobile_push_send_duration_seconds histogram",
    ] {
        assert!(text.contains(name), "no {name} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mobile_devices_and_config() {
    let app = Embedded::spawn().await;
    worker_metrics_are_served(&app.endpoints).await;
    devices_register_move_and_log_out(&app.endpoints).await;
    provider_config(&app.endpoints).await;
    bad_registrations_are_refused_naming_the_field(&app.endpoints).await;
    alarms_reach_the_tenants_active_devices(&app.endpoints).await;
    notices_reach_their_recipients_devices(&app.endpoints).await;
}

/// The active devices the manage API lists, as (user id, push id), sorted.
async fn active_devices(app: &Endpoints, admin: &str, query: &str) -> Vec<(i64, String)> {
    let mut found = Vec::new();
    for page in 1.. {
        let data = devices(app, admin, &format!("status=1&page={page}&page_size=100{query}")).await;
        let items = data["items"].as_array().unwrap();
        found.extend(items.iter().map(|d| (d["user_id"].as_i64().unwrap(), d["push_id"].as_str().unwrap().to_owned())));
        if items.len() < 100 {
            break;
        }
    }
    found.sort();
    found
}

/// Notices with the mobile channel, through the notifications exchange and the worker to the
/// mock provider: a `custom` notice reaches its users' active devices (exclusions applied), an
/// `admin` one the directory's admins', an `all` one every active device but the excluded
/// users'; a WebSocket-only notice reaches no phone, a mobile-only one no socket and no inbox.
async fn notices_reach_their_recipients_devices(app: &Endpoints) {
    let admin = token(1, Role::Admin, "root");
    let provider = mock_push::MockProvider::start_local().unwrap();
    let (status, answer) = app.post(&admin, "/api/message_push/config", &json!({"url": provider.push_url()})).await;
    assert_eq!(status, 200, "{answer}");
    let (a1, a2, b, c, d) = (
        "00000000000000000000000000000e01",
        "e02e02e02e02e02e02e02e02e02e02e02e02e02e02e02e02e02e02e02e02e02e",
        "00000000000000000000000000000e03",
        "00000000000000000000000000000e04",
        "00000000000000000000000000000e05",
    );
    let (u40, u41, u42) = (token(40, Role::User, "u40"), token(41, Role::User, "u41"), token(42, Role::User, "u42"));
    register(app, &u40, a1, "android").await;
    register(app, &u40, a2, "ios").await;
    register(app, &u41, b, "android").await;
    register(app, &u42, c, "android").await;
    let (status, _) = app.post(&u42, "/api/message_push/logout", &json!({"pushId": c})).await;
    assert_eq!(status, 200);
    let (status, answer) =
        app.put(&admin, "/api/admin/users", &json!({"users": [{"user_id": 43, "name": "Ada", "role": "admin"}]})).await;
    assert_eq!(status, 200, "{answer}");
    let ada = token(43, Role::Admin, "Ada");
    register(app, &ada, d, "harmony").await;

    // Bad channels: refused naming the field, nothing sent.
    for bad in [json!([]), json!(["sms"]), json!(["mobile", "mobile"]), json!("mobile"), json!([1])] {
        let (status, _, answer) = app.post_notice(Some(&admin), &json!({"content": "x", "channels": bad})).await;
        refused(status, &answer, 400, "INVALID_REQUEST", Some("channels"));
    }

    // WebSocket only (the default): no phone hears of it.
    app.notice(&admin, json!({"content": "仅网页", "target": "custom", "user_ids": [40, 41]})).await;
    // Custom, both channels: user 40's two devices; 41 is excluded, 42's device logged out.
    let body = json!({
        "content": "您的订单已完成", "type": "order_completed", "target": "custom", "user_ids": [40, 41, 42],
        "exclude_user_ids": [41], "channels": ["websocket", "mobile"], "data": {"title": "订单完成", "order": "A-1"},
    });
    assert_schema("notice-request.schema.json", &body);
    let order = app.notice(&admin, body).await;
    // Admin, mobile only: the directory's admins' devices; Ada's open socket gets no frame.
    let mut ada_socket = app.ws(&ada, crate::helpers::TokenVia::Query).await;
    app.notice(&admin, json!({"content": "仅手机", "target": "admin", "channels": ["mobile"]})).await;
    let web_only = app.notice(&admin, json!({"content": "管理员网页", "target": "admin"})).await;
    let frame: Value = serde_json::from_str(&ada_socket.next_text().await).unwrap();
    assert_eq!(frame["message_id"], web_only.message_id.as_str(), "a mobile-only notice reached a socket: {frame}");
    drop(ada_socket);
    // A mobile-only notice leaves no inbox entry: user 44 connecting later is replayed nothing.
    app.notice(&admin, json!({"content": "不进收件箱", "target": "custom", "user_ids": [44], "channels": ["mobile"]}))
        .await;
    // All, mobile only: every active device but user 40's.
    app.notice(&admin, json!({"content": "全体手机", "exclude_user_ids": [40], "channels": ["mobile"]})).await;

    let admins: Vec<i64> = {
        let (status, page) = app.get(&admin, "/api/admin/users?role=admin&page_size=100").await;
        assert_eq!(status, 200, "{page}");
        page["data"]["items"].as_array().unwrap().iter().map(|u| u["user_id"].as_i64().unwrap()).collect()
    };
    assert!(admins.contains(&43), "{admins:?}");
    let everyone = active_devices(app, &admin, "").await;
    let expected = |content: &str, title: &str, category: &str, to: Vec<&str>| -> Vec<Value> {
        let mut bodies: Vec<Value> = to
            .into_iter()
            .map(|push_id| json!({"push_clientid": push_id, "title": title, "content": content, "category": category}))
            .collect();
        bodies.sort_by_key(|body| body["push_clientid"].as_str().unwrap().to_owned());
        bodies
    };
    let admin_devices: Vec<&str> =
        everyone.iter().filter(|(user, _)| admins.contains(user)).map(|(_, p)| p.as_str()).collect();
    let all_devices: Vec<&str> = everyone.iter().filter(|(user, _)| *user != 40).map(|(_, p)| p.as_str()).collect();
    assert!(admin_devices.contains(&d) && all_devices.contains(&b) && !all_devices.contains(&a1));
    let want = [
        ("您的订单已完成", expected("您的订单已完成", "订单完成", "order_completed", vec![a1, a2])),
        ("仅手机", expected("仅手机", "system_notice", "system_notice", admin_devices)),
        ("全体手机", expected("全体手机", "system_notice", "system_notice", all_devices)),
    ];
    let total: usize = want.iter().map(|(_, bodies)| bodies.len()).sum();
    runtime::testing::eventually("every notice's devices to be pushed", std::time::Duration::from_secs(20), || async {
        let got = provider.mock.received().len();
        runtime::testing::holds(got >= total, format_args!("{got} of {total} received"))
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let received: Vec<Value> = provider.mock.received().into_iter().map(|r| r.body).collect();
    assert_eq!(received.len(), total, "{received:#?}");
    for (content, bodies) in want {
        let mut got: Vec<Value> = received.iter().filter(|body| body["content"] == content).cloned().collect();
        got.sort_by_key(|body| body["push_clientid"].as_str().unwrap().to_owned());
        assert_eq!(got, bodies, "{content}");
    }

    // The log has each send, sent once; the device's error count and last push time show it.
    let (_, logs) = app.get(&admin, &format!("/api/message_push/logs?status=sent&push_id={a1}")).await;
    assert_schema("push-log-page-response.schema.json", &logs);
    let rows: Vec<&Value> = logs["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["message_id"] == order.message_id.as_str())
        .collect();
    assert_eq!(rows.len(), 1, "{logs}");
    assert_eq!(
        (&rows[0]["message_type"], &rows[0]["title"], &rows[0]["content"], &rows[0]["attempt"]),
        (&json!("order_completed"), &json!("订单完成"), &json!("您的订单已完成"), &json!(1)),
        "{logs}"
    );
    assert!(rows[0]["send_id"].as_str().unwrap().starts_with(&format!("{}:", order.message_id)), "{logs}");
    let mine = devices(app, &admin, "user_id=40").await;
    for device in mine["items"].as_array().unwrap() {
        assert_eq!(device["err_count"], 0, "{device}");
        assert!(device["last_push_time"].is_string(), "{device}");
    }
    let mut late = app.ws(&token(44, Role::User, "u44"), crate::helpers::TokenVia::Query).await;
    let after = app.notice(&admin, json!({"content": "网页", "target": "custom", "user_ids": [44]})).await;
    let frame: Value = serde_json::from_str(&late.next_text().await).unwrap();
    assert_eq!(frame["message_id"], after.message_id.as_str(), "a mobile-only notice was in the inbox: {frame}");
    provider.stop().await;
}

/// A device's log rows, oldest attempt first, as (attempt, status, err_message).
async fn attempts(app: &Endpoints, admin: &str, push_id: &str) -> Vec<(i64, String, String)> {
    let (status, logs) = app.get(admin, &format!("/api/message_push/logs?push_id={push_id}&page_size=50")).await;
    assert_eq!(status, 200, "{logs}");
    assert_schema("push-log-page-response.schema.json", &logs);
    let mut rows: Vec<(i64, String, String)> = logs["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let text = |field: &str| l[field].as_str().unwrap().to_owned();
            (l["attempt"].as_i64().unwrap(), text("status"), text("err_message"))
        })
        .collect();
    rows.sort();
    rows
}

/// Every answer shape of the provider, end to end (API, bus, worker, mock provider): a success
/// is logged `sent` once and restarts the device's error count; an `errCode` other than 0, an
/// HTTP 500, an answer slower than the timeout, a body that is not JSON and a refused
/// connection are each logged `failed` with why, retried 3 times, then `dead`, each attempt
/// counted on the device and made once at the provider, with the same payload.
async fn every_provider_answer_is_logged_retried_or_dead(app: &Endpoints) {
    let admin = token(1, Role::Admin, "root");
    let provider = mock_push::MockProvider::start_local().unwrap();
    let (status, answer) = app.post(&admin, "/api/message_push/config", &json!({"url": provider.push_url()})).await;
    assert_eq!(status, 200, "{answer}");
    let user = token(60, Role::User, "u60");
    let shapes = [
        ("00000000000000000000000000000f01", mock_push::Answer::Success, ""),
        ("00000000000000000000000000000f02", mock_push::Answer::ErrCode { err_code: 40001 }, "errCode 40001"),
        ("00000000000000000000000000000f03", mock_push::Answer::Http500, "the provider answered HTTP 500"),
        (
            "00000000000000000000000000000f04",
            mock_push::Answer::Slow { delay_ms: 1_500 },
            "no answer from the provider within 800 ms",
        ),
        ("00000000000000000000000000000f05", mock_push::Answer::NotJson, "the provider's answer is not JSON"),
    ];
    for (push_id, answer, _) in &shapes {
        register(app, &user, push_id, "android").await;
        provider.mock.answer_push_id(push_id, *answer);
    }
    app.notice(&admin, json!({"content": "每种回答", "target": "custom", "user_ids": [60], "channels": ["mobile"]}))
        .await;
    let done = || async {
        let mut waiting = Vec::new();
        for (push_id, answer, _) in &shapes {
            let want = if matches!(answer, mock_push::Answer::Success) { 1 } else { 4 };
            if attempts(app, &admin, push_id).await.len() != want {
                waiting.push(*push_id);
            }
        }
        runtime::testing::holds(waiting.is_empty(), format_args!("waiting for {waiting:?}"))
    };
    runtime::testing::eventually("every send to be sent or dead", std::time::Duration::from_secs(30), done).await;
    // A moment more: no attempt past the last.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let payload = |push_id: &str| json!({"push_clientid": push_id, "title": "system_notice", "content": "每种回答", "category": "system_notice"});
    for (push_id, answer, why) in &shapes {
        let rows = attempts(app, &admin, push_id).await;
        let device = &devices(app, &admin, "user_id=60&page_size=50").await["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["push_id"] == *push_id)
            .unwrap()
            .clone();
        let bodies: Vec<Value> =
            provider.mock.received().into_iter().filter(|r| r.push_id == *push_id).map(|r| r.body).collect();
        if matches!(answer, mock_push::Answer::Success) {
            assert_eq!(rows, [(1, "sent".to_owned(), String::new())]);
            assert_eq!(bodies, [payload(push_id)]);
            assert_eq!(device["err_count"], 0, "{device}");
            assert!(device["last_push_time"].is_string(), "{device}");
            continue;
        }
        let statuses: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(statuses, ["failed", "failed", "failed", "dead"], "{push_id}: {rows:?}");
        assert!(rows.iter().all(|r| r.2.contains(why)), "{push_id}: {rows:?} should say {why}");
        assert_eq!(bodies, vec![payload(push_id); 4], "{push_id}");
        assert_eq!(device["err_count"], 4, "{device}");
        assert!(device["last_push_time"].is_null(), "{device}");
    }
    let (_, dead) = app.get(&admin, "/api/message_push/logs?status=dead&user_id=60&page_size=50").await;
    assert_eq!(dead["data"]["total"], 4, "{dead}");

    // A provider that refuses the connection: the same, with why.
    let closed = crate::helpers::free_addr();
    let url = format!("http://{closed}/push");
    let (status, answer) = app.post(&admin, "/api/message_push/config", &json!({"url": url})).await;
    assert_eq!(status, 200, "{answer}");
    let refused_phone = "00000000000000000000000000000f06";
    register(app, &token(61, Role::User, "u61"), refused_phone, "android").await;
    app.notice(&admin, json!({"content": "连不上", "target": "custom", "user_ids": [61], "channels": ["mobile"]}))
        .await;
    let rows =
        runtime::testing::eventually("the refused send to be dead", std::time::Duration::from_secs(30), || async {
            let rows = attempts(app, &admin, refused_phone).await;
            if rows.len() == 4 { Ok(rows) } else { Err(format!("{rows:?}")) }
        })
        .await;
    let statuses: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(statuses, ["failed", "failed", "failed", "dead"], "{rows:?}");
    assert!(rows.iter().all(|r| r.2.starts_with("cannot connect to the provider")), "{rows:?}");
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_provider_answers_end_to_end() {
    let app = Distributed::spawn_with_mobile(crate::helpers::quick_retries()).await;
    every_provider_answer_is_logged_retried_or_dead(&app.endpoints).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_provider_answers_end_to_end() {
    let app = Embedded::spawn_with(|settings| settings.mobile = crate::helpers::quick_retries()).await;
    every_provider_answer_is_logged_retried_or_dead(&app.endpoints).await;
}
