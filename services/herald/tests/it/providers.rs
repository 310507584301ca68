//! The real providers end to end, configured as an operator would (key files named in
//! `mobile.fcm_credentials_file`, `mobile.apns_key_file` and `mobile.web_push_vapid_key_file`,
//! the base URLs pointing at the mock FCM, APNs and push service, which verify every grant's,
//! provider token's and VAPID token's signature with the test keys): a notice on the mobile
//! channel reaches an Android device through FCM, an iPhone with an APNs token through APNs and a
//! browser through Web Push (decrypted by the mock with the subscription's key), each with its
//! message id and priority, and an iPhone registered with a UniPush client id through the
//! original's provider; a browser logs out by its subscription; a device whose token FCM calls dead is
//! deactivated with its push logged dead. All-in-one (SQLite, in-process bus) and distributed
//! (RabbitMQ, PostgreSQL). And the providers configured as an admin would, through the push
//! config API: refused when a key is posted in place of its reference, switched to by the
//! running worker, and FCM given back to the config file when removed.

use crate::helpers::{Distributed, Embedded, Endpoints, token};
use mock_push::fcm::{FcmAnswer, TEST_PRIVATE_KEY};
use mock_push::{MockApnsServer, MockFcmServer, MockProvider, MockWebPushServer};
use runtime::Role;
use runtime::testing::{eventually, holds};
use serde_json::{Value, json};
use std::time::Duration;

/// FCM registration tokens (long, with `:`), an APNs device token, an iPhone's UniPush client id.
const ALIVE: &str = "fcmE2Ealive:APA91bH-kq9vZ_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
const DEAD: &str = "fcmE2Edead:APA91bH-kq9vZ_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
const APNS_TOKEN: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";
const IPHONE: &str = "00000000000000000000000000000f01";

/// The mock providers, and the worker's settings for them (key files under the temp directory,
/// removed when dropped).
struct Providers {
    fcm: MockFcmServer,
    apns: MockApnsServer,
    web: MockWebPushServer,
    keys: [std::path::PathBuf; 3],
}

impl Providers {
    fn start() -> Self {
        let fcm = MockFcmServer::start_local().unwrap();
        let apns = MockApnsServer::start_local().unwrap();
        let web = MockWebPushServer::start_local().unwrap();
        let id = uuid::Uuid::new_v4().simple();
        let keys = [
            std::env::temp_dir().join(format!("herald-fcm-{id}.json")),
            std::env::temp_dir().join(format!("herald-apns-{id}.p8")),
            std::env::temp_dir().join(format!("herald-vapid-{id}.pem")),
        ];
        std::fs::write(&keys[0], fcm.service_account(TEST_PRIVATE_KEY)).unwrap();
        std::fs::write(&keys[1], mock_push::apns::TEST_PRIVATE_KEY).unwrap();
        std::fs::write(&keys[2], mock_push::webpush::TEST_VAPID_KEY).unwrap();
        Self { fcm, apns, web, keys }
    }

    fn settings(&self) -> mobile_push_worker::MobileSettings {
        mobile_push_worker::MobileSettings {
            fcm_credentials_file: self.keys[0].display().to_string(),
            fcm_url: self.fcm.base_url(),
            apns_key_file: self.keys[1].display().to_string(),
            apns_key_id: mock_push::apns::KEY_ID.to_owned(),
            apns_team_id: mock_push::apns::TEAM_ID.to_owned(),
            apns_topic: mock_push::apns::TOPIC.to_owned(),
            apns_url: self.apns.base_url(),
            web_push_vapid_key_file: self.keys[2].display().to_string(),
            web_push_subject: "mailto:ops@example.com".to_owned(),
            web_push_hosts: vec!["127.0.0.1".to_owned()],
            ..crate::helpers::quick_retries()
        }
    }
}

impl Drop for Providers {
    fn drop(&mut self) {
        for key in &self.keys {
            let _ = std::fs::remove_file(key);
        }
    }
}

async fn register(app: &Endpoints, user: i64, push_id: &str, device_type: &str) -> Value {
    let body = json!({"pushId": push_id, "deviceType": device_type});
    let (status, answer) = app.post(&token(user, Role::User, "u"), "/api/message_push", &body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn devices_get_notices_from_their_providers(app: &Endpoints, providers: &Providers) {
    let (fcm, apns, web) = (&providers.fcm, &providers.apns, &providers.web);
    let admin = token(1, Role::Admin, "root");
    let unipush = MockProvider::start_local().unwrap();
    let (status, answer) = app.post(&admin, "/api/message_push/config", &json!({"url": unipush.push_url()})).await;
    assert_eq!(status, 200, "{answer}");
    register(app, 60, ALIVE, "android").await;
    register(app, 60, IPHONE, "ios").await;
    register(app, 60, APNS_TOKEN, "ios").await;
    register(app, 61, DEAD, "android").await;
    // A browser registers its subscription; the answer shows the push id made of its endpoint,
    // never its keys.
    let subscription = web.mock.subscribe("browser-60").json();
    let browser = register(app, 60, &subscription, "web").await;
    let browser_id = browser["data"]["pushId"].as_str().unwrap().to_owned();
    assert!(browser_id.starts_with("web:") && browser_id.len() == 47, "{browser}");
    assert_eq!(browser["data"]["deviceType"], "web", "{browser}");
    assert!(!browser.to_string().contains("p256dh"), "{browser}");
    fcm.mock.answer_token(DEAD, FcmAnswer::Unregistered);

    let notice = app
        .notice(
            &admin,
            json!({
                "content": "订单 A-7 已发货", "type": "order_shipped", "target": "custom", "user_ids": [60, 61],
                "priority": "high", "channels": ["websocket", "mobile"], "data": {"title": "发货通知"},
            }),
        )
        .await;

    eventually("FCM, APNs, Web Push and the provider to get the notice", Duration::from_secs(20), || async {
        let got = (
            fcm.mock.received().len(),
            apns.mock.received().len(),
            web.mock.received().len(),
            unipush.mock.received().len(),
        );
        holds(got == (2, 1, 1, 1), format_args!("fcm, apns, web push, unipush: {got:?}"))
    })
    .await;
    let to_browser = &web.mock.received()[0];
    assert_eq!(
        to_browser.payload,
        json!({
            "title": "发货通知", "body": "订单 A-7 已发货", "tag": notice.message_id,
            "data": {"messageId": notice.message_id, "messageType": "order_shipped", "category": "order_shipped"},
        })
    );
    assert_eq!(to_browser.headers.get("urgency").map(String::as_str), Some("high"));
    assert_eq!(web.mock.refused(), 0);
    let received = fcm.mock.received();
    let alive = received.iter().find(|r| r.token == ALIVE).expect("the live token's send");
    assert_eq!(
        alive.body,
        json!({"message": {
            "token": ALIVE,
            "notification": {"title": "发货通知", "body": "订单 A-7 已发货"},
            "data": {"messageId": notice.message_id, "messageType": "order_shipped", "category": "order_shipped"},
            "android": {"priority": "HIGH"},
        }})
    );
    assert_eq!(fcm.mock.issued().len(), 1, "one grant for both sends");
    assert_eq!(alive.access_token, fcm.mock.issued()[0].access_token);
    assert_eq!(unipush.mock.received()[0].push_id, IPHONE);
    let to_iphone = &apns.mock.received()[0];
    assert_eq!((to_iphone.token.as_str(), to_iphone.version.as_str()), (APNS_TOKEN, "HTTP/2.0"));
    assert_eq!(to_iphone.headers.get("apns-priority").map(String::as_str), Some("10"));
    assert_eq!(to_iphone.headers.get("apns-collapse-id"), Some(&notice.message_id));
    assert_eq!(
        to_iphone.body,
        json!({
            "aps": {"alert": {"title": "发货通知", "body": "订单 A-7 已发货"}, "sound": "default"},
            "messageId": notice.message_id, "messageType": "order_shipped", "category": "order_shipped",
        })
    );

    // The dead token's device: inactive, its push logged dead with FCM's answer, never retried.
    eventually("the dead token's device to be inactive", Duration::from_secs(10), || async {
        let (status, page) = app.get(&admin, "/api/message_push/manage?user_id=61&status=0").await;
        holds(status == 200 && page["data"]["total"] == 1, &page)
    })
    .await;
    let (status, logs) = app.get(&admin, &format!("/api/message_push/logs?push_id={DEAD}")).await;
    assert_eq!(status, 200, "{logs}");
    let items = logs["data"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{logs}");
    assert_eq!(items[0]["status"], "dead", "{logs}");
    assert!(items[0]["err_message"].as_str().unwrap().contains("UNREGISTERED"), "{logs}");
    let (status, page) = app.get(&admin, "/api/message_push/manage?user_id=60&status=1").await;
    assert_eq!((status, &page["data"]["total"]), (200, &Value::from(4)), "{page}");
    // The browser logs out by naming its subscription.
    let (status, out) =
        app.post(&token(60, Role::User, "u"), "/api/message_push/logout", &json!({"pushId": subscription})).await;
    assert_eq!((status, &out["data"]["pushId"], &out["data"]["status"]), (200, &json!(browser_id), &json!(0)), "{out}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(fcm.mock.received().iter().filter(|r| r.token == DEAD).count(), 1, "a dead token is not retried");
    unipush.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_devices_get_notices_from_their_providers() {
    let providers = Providers::start();
    let mobile = providers.settings();
    let app = Embedded::spawn_with(|settings| settings.mobile = mobile).await;
    devices_get_notices_from_their_providers(&app.endpoints, &providers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_devices_get_notices_from_their_providers() {
    let providers = Providers::start();
    let app = Distributed::spawn_with_mobile(providers.settings()).await;
    devices_get_notices_from_their_providers(&app.endpoints, &providers).await;
    app.stop().await;
}

/// Posts notices on the mobile channel to `user` (whose one device is an Android phone) until
/// one reaches `wanted` (FCM or the original's provider: the workers switch within their reload
/// interval, and a notice before the switch goes to the other). Each notice reaches exactly one
/// of them.
async fn until_one_reaches(app: &Endpoints, user: i64, fcm: &MockFcmServer, unipush: &MockProvider, wanted: &str) {
    let admin = token(1, Role::Admin, "root");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut posted = fcm.mock.received().len() + unipush.mock.received().len();
    loop {
        let before = (fcm.mock.received().len(), unipush.mock.received().len());
        let body = json!({"content": "配置", "type": "config_check", "target": "custom", "user_ids": [user],
            "channels": ["mobile"]});
        app.notice(&admin, body).await;
        posted += 1;
        eventually("the notice to reach one provider", Duration::from_secs(10), || async {
            let got = fcm.mock.received().len() + unipush.mock.received().len();
            holds(got == posted, format_args!("{got} of {posted}"))
        })
        .await;
        let after = (fcm.mock.received().len(), unipush.mock.received().len());
        let reached = if after.0 > before.0 { "fcm" } else { "unipush" };
        if reached == wanted {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no notice reached {wanted} in 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn an_admin_configures_the_providers_through_the_api(app: &Endpoints, providers: &Providers) {
    let (fcm, key) = (&providers.fcm, &providers.keys[0]);
    let admin = token(1, Role::Admin, "root");
    let unipush = MockProvider::start_local().unwrap();
    let (status, answer) = app.post(&admin, "/api/message_push/config", &json!({"url": unipush.push_url()})).await;
    assert_eq!(status, 200, "{answer}");
    register(app, 70, ALIVE, "android").await;

    // Nothing set through the API: the config file's settings apply (here none: Android phones go
    // to the original's provider).
    let (status, listed) = app.get(&admin, "/api/message_push/config/providers").await;
    assert_eq!(status, 200, "{listed}");
    crate::helpers::assert_schema("push-providers-response.schema.json", &listed);
    let sources: Vec<_> = listed["data"]["providers"].as_array().unwrap().iter().map(|p| p["source"].clone()).collect();
    assert_eq!(sources, vec![json!("config_file"); 3], "{listed}");
    until_one_reaches(app, 70, fcm, &unipush, "unipush").await;

    // A key posted in place of its reference is refused, not stored, and not repeated.
    let service_account = fcm.service_account(TEST_PRIVATE_KEY);
    let (status, refused) =
        app.put(&admin, "/api/message_push/config/providers/fcm", &json!({"credentials": service_account})).await;
    assert_eq!(
        (status, &refused["data"]["error_code"], &refused["data"]["field"]),
        (400, &json!("INVALID_REQUEST"), &json!("credentials")),
        "{refused}"
    );
    crate::helpers::assert_schema("failure-response.schema.json", &refused);
    assert!(!refused.to_string().contains("PRIVATE KEY"), "{refused}");
    let (status, unknown) = app.put(&admin, "/api/message_push/config/providers/hms", &json!({})).await;
    assert_eq!((status, &unknown["data"]["field"]), (404, &json!("provider")), "{unknown}");
    let (_, fcm_now) = app.get(&admin, "/api/message_push/config/providers/fcm").await;
    assert_eq!(fcm_now["data"]["source"], "config_file", "{fcm_now}");

    // APNs and Web Push, set through the API before FCM (a worker switches to all it reads in
    // one pass at once: once FCM is in force, so are they).
    let apns = json!({
        "key": format!("file:{}", providers.keys[1].display()), "key_id": mock_push::apns::KEY_ID,
        "team_id": mock_push::apns::TEAM_ID, "topic": mock_push::apns::TOPIC, "url": providers.apns.base_url(),
    });
    let (status, set) = app.put(&admin, "/api/message_push/config/providers/apns", &apns).await;
    assert_eq!((status, &set["data"]["settings"]), (200, &apns), "{set}");
    let web = json!({"vapid_key": format!("file:{}", providers.keys[2].display()), "subject": "mailto:ops@example.com",
        "hosts": ["127.0.0.1"], "ttl_secs": 600});
    let (status, set) = app.put(&admin, "/api/message_push/config/providers/web_push", &web).await;
    assert_eq!((status, &set["data"]["config_type"]), (200, &json!(4)), "{set}");

    // FCM, set through the API: the settings are shown as set, the key only as its reference.
    let settings = json!({"credentials": format!("file:{}", key.display()), "url": fcm.base_url()});
    let (status, set) = app.put(&admin, "/api/message_push/config/providers/fcm", &settings).await;
    assert_eq!(status, 200, "{set}");
    crate::helpers::assert_schema("push-provider-response.schema.json", &set);
    assert_eq!(
        (&set["data"]["source"], &set["data"]["config_type"], &set["data"]["settings"]),
        (&json!("api"), &json!(2), &settings),
        "{set}"
    );
    let (_, got) = app.get(&admin, "/api/message_push/config/providers/fcm").await;
    assert_eq!(got["data"], set["data"], "{got}");
    let (_, listed) = app.get(&admin, "/api/message_push/config/providers").await;
    assert!(!listed.to_string().contains("PRIVATE KEY"), "{listed}");
    // The worker switches to it: the phone's notices now go through FCM, with a verified grant.
    until_one_reaches(app, 70, fcm, &unipush, "fcm").await;
    assert_eq!(fcm.mock.received().last().unwrap().token, ALIVE);
    assert!(!fcm.mock.issued().is_empty());
    // And an iPhone with an APNs token reaches APNs, a browser Web Push (its payload decrypted by
    // the mock with the subscription's key, the VAPID token verified).
    register(app, 71, APNS_TOKEN, "ios").await;
    let subscription = providers.web.mock.subscribe("browser-72").json();
    register(app, 72, &subscription, "web").await;
    let notice = app
        .notice(
            &admin,
            json!({"content": "两处", "type": "config_check", "target": "custom", "user_ids": [71, 72],
            "channels": ["mobile"]}),
        )
        .await;
    eventually("APNs and Web Push to get the notice", Duration::from_secs(20), || async {
        let got = (providers.apns.mock.received().len(), providers.web.mock.received().len());
        holds(got == (1, 1), format_args!("apns, web push: {got:?}"))
    })
    .await;
    assert_eq!(providers.apns.mock.received()[0].token, APNS_TOKEN);
    assert_eq!(providers.web.mock.received()[0].payload["tag"], json!(notice.message_id));
    assert_eq!(providers.web.mock.received()[0].headers.get("ttl").map(String::as_str), Some("600"));
    assert_eq!(providers.web.mock.refused(), 0);
    let (_, listed) = app.get(&admin, "/api/message_push/config/providers").await;
    let sources: Vec<_> = listed["data"]["providers"].as_array().unwrap().iter().map(|p| p["source"].clone()).collect();
    assert_eq!(sources, vec![json!("api"); 3], "{listed}");

    // Removed: the config file's settings apply again.
    let (status, removed) = app.delete(&admin, "/api/message_push/config/providers/fcm").await;
    assert_eq!(
        (status, &removed["data"]["source"], &removed["data"]["settings"]),
        (200, &json!("config_file"), &Value::Null),
        "{removed}"
    );
    crate::helpers::assert_schema("push-provider-response.schema.json", &removed);
    until_one_reaches(app, 70, fcm, &unipush, "unipush").await;
    unipush.stop().await;
}

/// The worker's settings with no provider of its own and a quick reload.
fn reloading() -> mobile_push_worker::MobileSettings {
    mobile_push_worker::MobileSettings { provider_reload_ms: 100, ..crate::helpers::quick_retries() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_an_admin_configures_the_providers_through_the_api() {
    let providers = Providers::start();
    let app = Embedded::spawn_with(|settings| settings.mobile = reloading()).await;
    an_admin_configures_the_providers_through_the_api(&app.endpoints, &providers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_an_admin_configures_the_providers_through_the_api() {
    let providers = Providers::start();
    let app = Distributed::spawn_with_mobile(reloading()).await;
    an_admin_configures_the_providers_through_the_api(&app.endpoints, &providers).await;
    app.stop().await;
}
