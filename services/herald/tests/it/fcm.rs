//! FCM end to end, configured as an operator would (`mobile.fcm_credentials_file` naming a key
//! file, `mobile.fcm_url` pointing at the mock FCM, which verifies the grant's signature with the
//! test key and every bearer token): a notice on the mobile channel reaches an Android device
//! through FCM with its message id and priority, an iPhone of the same user through the
//! original's provider, and a device whose token FCM calls dead is deactivated with its push
//! logged dead. All-in-one (SQLite, in-process bus) and distributed (RabbitMQ, PostgreSQL).

use crate::helpers::{Distributed, Embedded, Endpoints, token};
use mock_push::fcm::{FcmAnswer, TEST_PRIVATE_KEY};
use mock_push::{MockFcmServer, MockProvider};
use runtime::Role;
use runtime::testing::{eventually, holds};
use serde_json::{Value, json};
use std::time::Duration;

/// FCM registration tokens (long, with `:`), and an iPhone's UniPush client id.
const ALIVE: &str = "fcmE2Ealive:APA91bH-kq9vZ_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
const DEAD: &str = "fcmE2Edead:APA91bH-kq9vZ_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
const IPHONE: &str = "00000000000000000000000000000f01";

/// The worker's settings for `fcm`, with its key file written under the temp directory.
fn fcm_settings(fcm: &MockFcmServer) -> mobile_push_worker::MobileSettings {
    let key = std::env::temp_dir().join(format!("herald-fcm-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&key, fcm.service_account(TEST_PRIVATE_KEY)).unwrap();
    mobile_push_worker::MobileSettings {
        fcm_credentials_file: key.display().to_string(),
        fcm_url: fcm.base_url(),
        ..crate::helpers::quick_retries()
    }
}

async fn register(app: &Endpoints, user: i64, push_id: &str, device_type: &str) {
    let body = json!({"pushId": push_id, "deviceType": device_type});
    let (status, answer) = app.post(&token(user, Role::User, "u"), "/api/message_push", &body).await;
    assert_eq!(status, 200, "{answer}");
}

async fn android_devices_get_notices_from_fcm(app: &Endpoints, fcm: &MockFcmServer) {
    let admin = token(1, Role::Admin, "root");
    let unipush = MockProvider::start_local().unwrap();
    let (status, answer) = app.post(&admin, "/api/message_push/config", &json!({"url": unipush.push_url()})).await;
    assert_eq!(status, 200, "{answer}");
    register(app, 60, ALIVE, "android").await;
    register(app, 60, IPHONE, "ios").await;
    register(app, 61, DEAD, "android").await;
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

    eventually("FCM and the provider to get the notice", Duration::from_secs(20), || async {
        let (fcm_got, unipush_got) = (fcm.mock.received().len(), unipush.mock.received().len());
        holds(fcm_got == 2 && unipush_got == 1, format_args!("fcm {fcm_got}, unipush {unipush_got}"))
    })
    .await;
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
    assert_eq!((status, &page["data"]["total"]), (200, &Value::from(2)), "{page}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(fcm.mock.received().iter().filter(|r| r.token == DEAD).count(), 1, "a dead token is not retried");
    unipush.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_android_devices_get_notices_from_fcm() {
    let fcm = MockFcmServer::start_local().unwrap();
    let mobile = fcm_settings(&fcm);
    let key = mobile.fcm_credentials_file.clone();
    let app = Embedded::spawn_with(|settings| settings.mobile = mobile).await;
    android_devices_get_notices_from_fcm(&app.endpoints, &fcm).await;
    std::fs::remove_file(key).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_android_devices_get_notices_from_fcm() {
    let fcm = MockFcmServer::start_local().unwrap();
    let mobile = fcm_settings(&fcm);
    let key = mobile.fcm_credentials_file.clone();
    let app = Distributed::spawn_with_mobile(mobile).await;
    android_devices_get_notices_from_fcm(&app.endpoints, &fcm).await;
    app.stop().await;
    std::fs::remove_file(key).unwrap();
}
