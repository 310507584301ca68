//! The delivery scenario every deployment must pass: an admin and two users (one on two
//! connections) receive exactly the frames addressed to them, byte for byte.

use crate::helpers::{Endpoints, TokenVia, assert_schema, expected_frame, token};
use runtime::Role;
use runtime::testing::eventually;
use serde_json::{Value, json};

pub async fn each_connection_receives_exactly_its_frames(app: &Endpoints) {
    let admin = token(1, Role::Admin, "admin");
    let alice = token(2, Role::User, "alice");
    let bob = token(3, Role::User, "bob");
    let mut admin_ws = app.ws(&admin, TokenVia::Query).await;
    let mut alice_phone = app.ws(&alice, TokenVia::Header).await;
    let mut alice_laptop = app.ws(&alice, TokenVia::Subprotocol).await;
    let mut bob_ws = app.ws(&bob, TokenVia::Query).await;

    let everyone =
        app.notice(&admin, json!({"content": "系统将于今晚23:00-23:30进行例行维护 😀", "type": "system_notice"})).await;
    let admins = app
        .notice(&admin, json!({"content": "admins only", "type": "system_maintain", "target": "admin", "data": {"extra_info": "请提前保存工作"}}))
        .await;
    let custom = app
        .notice(
            &admin,
            json!({"content": "您的订单已完成", "type": "order_completed", "target": "custom", "user_ids": [2, 3],
                   "exclude_user_ids": [3], "priority": "high", "need_confirm": true,
                   "data": {"order_no": "ORD20250127001", "amount": "199.00"}}),
        )
        .await;
    let barrier = app.notice(&admin, json!({"content": "barrier", "priority": 0})).await;

    let everyone_frame =
        expected_frame("system_notice", "系统将于今晚23:00-23:30进行例行维护 😀", 1, false, "", &everyone);
    let admins_frame =
        expected_frame("system_maintain", "admins only", 1, false, r#","extra_info":"请提前保存工作""#, &admins);
    let custom_frame = expected_frame(
        "order_completed",
        "您的订单已完成",
        2,
        true,
        r#","order_no":"ORD20250127001","amount":"199.00""#,
        &custom,
    );
    let barrier_frame = expected_frame("system_notice", "barrier", 0, false, "", &barrier);

    let expectations = [
        ("admin", &mut admin_ws, vec![&everyone_frame, &admins_frame, &barrier_frame]),
        ("alice's phone", &mut alice_phone, vec![&everyone_frame, &custom_frame, &barrier_frame]),
        ("alice's laptop", &mut alice_laptop, vec![&everyone_frame, &custom_frame, &barrier_frame]),
        ("bob (excluded from the custom notice)", &mut bob_ws, vec![&everyone_frame, &barrier_frame]),
    ];
    for (who, ws, expected) in expectations {
        let frames = ws.frames_until(&barrier.message_id).await;
        for frame in &frames {
            assert_schema("ws-notification.schema.json", &serde_json::from_str::<Value>(frame).unwrap());
        }
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(frames, expected, "{who} received the wrong frames");
    }
}

/// A custom notice to an online and an offline user: live for the first, replayed (spec 5.1) on
/// connect for the second; once acknowledged it is not replayed again.
pub async fn offline_users_get_their_notices_on_connect_until_they_ack(app: &Endpoints) {
    let admin = token(1, Role::Admin, "admin");
    let (online, offline) = (token(2, Role::User, "alice"), token(3, Role::User, "bob"));
    let mut alice = app.ws(&online, TokenVia::Query).await;

    let notice = app
        .notice(&admin, json!({"content": "您的订单已完成", "type": "order_completed", "target": "custom", "user_ids": [2, 3], "need_confirm": true, "data": {"order_no": "ORD1"}}))
        .await;
    let live = alice.frames_until(&notice.message_id).await;
    assert_eq!(live, [expected_frame("order_completed", "您的订单已完成", 1, true, r#","order_no":"ORD1""#, &notice)]);
    alice.send_text(&json!({"type": "ack", "message_id": notice.message_id}).to_string()).await;

    let mut bob = app.ws(&offline, TokenVia::Query).await;
    let replayed: Value = serde_json::from_str(&bob.next_text().await).unwrap();
    assert_schema("offline-message.schema.json", &replayed);
    assert_eq!(replayed["message_id"], notice.message_id.as_str());
    assert_eq!(replayed["content"], "[离线消息] 您的订单已完成");
    assert_eq!(
        replayed["data"],
        json!({"priority": 1, "need_confirm": true, "order_no": "ORD1", "original_push_time": notice.push_time})
    );
    assert_eq!(replayed["time"], notice.push_time.as_str());
    bob.send_text(&json!({"type": "ack", "message_id": notice.message_id}).to_string()).await;
    // The ack is handled in order with the frames that follow it: a ping's pong proves it was.
    bob.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(serde_json::from_str::<Value>(&bob.next_text().await).unwrap()["type"], "pong");
    drop(bob);

    // Reconnect: the acknowledged notice is gone. A fresh notice marks where to stop reading.
    let mut bob = app.ws(&offline, TokenVia::Header).await;
    let marker = app.notice(&admin, json!({"content": "marker", "target": "custom", "user_ids": [3]})).await;
    let frames = bob.frames_until(&marker.message_id).await;
    assert!(frames.iter().all(|f| !f.contains(&notice.message_id)), "acknowledged notice replayed: {frames:?}");
    bob.send_text(&json!({"type": "ack", "message_id": marker.message_id}).to_string()).await;
}

/// 150 notices to an offline user: on connect, an overflow notice saying 50 were dropped, then
/// exactly the newest 100, oldest first.
pub async fn an_overflowing_inbox_replays_the_newest_hundred_and_says_how_many_were_dropped(app: &Endpoints) {
    let admin = token(1, Role::Admin, "admin");
    for n in 1..=150 {
        app.notice(&admin, json!({"content": format!("notice {n}"), "target": "custom", "user_ids": [9]})).await;
    }
    let mut late = app.ws(&token(9, Role::User, "late"), TokenVia::Query).await;
    let overflow: Value = serde_json::from_str(&late.next_text().await).unwrap();
    assert_schema("ws-message.schema.json", &overflow);
    assert_eq!((overflow["type"].as_str(), overflow["data"]["dropped"].as_u64()), (Some("offline_overflow"), Some(50)));
    for n in 51..=150 {
        let frame: Value = serde_json::from_str(&late.next_text().await).unwrap();
        assert_eq!(frame["content"], format!("[离线消息] notice {n}"));
    }
}

/// Receipts: `read`/`confirm` frames and the REST endpoints clear the inbox and tell the user's
/// other devices with a `sync` frame.
pub async fn receipts_sync_the_users_other_devices(app: &Endpoints) {
    let admin = token(1, Role::Admin, "admin");
    let alice = token(2, Role::User, "alice");
    let mut phone = app.ws(&alice, TokenVia::Query).await;
    let mut laptop = app.ws(&alice, TokenVia::Header).await;
    let first = app
        .notice(&admin, json!({"content": "confirm me", "target": "custom", "user_ids": [2], "need_confirm": true}))
        .await;
    let second = app.notice(&admin, json!({"content": "read me", "target": "custom", "user_ids": [2]})).await;
    for device in [&mut phone, &mut laptop] {
        device.frames_until(&second.message_id).await;
    }

    phone.send_text(&json!({"type": "read", "message_id": first.message_id}).to_string()).await;
    let sync: Value = serde_json::from_str(&laptop.next_text().await).unwrap();
    assert_schema("ws-message.schema.json", &sync);
    assert_eq!(sync["type"], "sync");
    assert_eq!(
        (sync["data"]["event"].as_str(), sync["data"]["message_id"].as_str()),
        (Some("read"), Some(first.message_id.as_str()))
    );
    // The device the receipt came from gets no sync: its next frame is the pong.
    phone.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(serde_json::from_str::<Value>(&phone.next_text().await).unwrap()["type"], "pong");

    laptop.send_text(&json!({"type": "confirm", "message_id": first.message_id}).to_string()).await;
    let sync: Value = serde_json::from_str(&phone.next_text().await).unwrap();
    assert_eq!(
        (sync["data"]["event"].as_str(), sync["data"]["message_id"].as_str()),
        (Some("confirmed"), Some(first.message_id.as_str()))
    );

    // Over REST (spec 7.3): both devices hear of it.
    let url = format!("{}/api/admin/notification/mark-read", app.api);
    let response = app
        .http
        .post(&url)
        .bearer_auth(&alice)
        .json(&json!({"message_id": second.message_id, "user_id": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["data"]["status"], "read");
    for device in [&mut phone, &mut laptop] {
        let sync: Value = serde_json::from_str(&device.next_text().await).unwrap();
        assert_eq!(sync["data"]["message_id"], second.message_id.as_str());
    }
    // Someone else's receipt, or a malformed one, is refused.
    let response = app
        .http
        .post(&url)
        .bearer_auth(&alice)
        .json(&json!({"message_id": second.message_id, "user_id": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let response = app.http.post(&url).bearer_auth(&alice).json(&json!({"message_id": "nope"})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_schema("failure-response.schema.json", &response.json::<Value>().await.unwrap());
    // A notice for bob only: alice may not mark it, over REST or on her socket.
    let bobs = app.notice(&admin, json!({"content": "for bob", "target": "custom", "user_ids": [3]})).await;
    let response =
        app.http.post(&url).bearer_auth(&alice).json(&json!({"message_id": bobs.message_id})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(response.json::<Value>().await.unwrap()["data"]["error_code"], "FORBIDDEN");
    phone.send_text(&json!({"type": "read", "message_id": bobs.message_id}).to_string()).await;
    let refused: Value = serde_json::from_str(&phone.next_text().await).unwrap();
    assert_schema("ws-message.schema.json", &refused);
    assert_eq!((refused["type"].as_str(), refused["data"]["code"].as_str()), (Some("error"), Some("FORBIDDEN")));
    // A well-formed id Herald never issued is unknown.
    let response = app
        .http
        .post(&url)
        .bearer_auth(&alice)
        .json(&json!({"message_id": "1700000000000000000-deadbeef"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);

    // Both notices were dealt with: a new device is replayed neither.
    let mut tablet = app.ws(&alice, TokenVia::Query).await;
    let marker = app.notice(&admin, json!({"content": "marker", "target": "custom", "user_ids": [2]})).await;
    let frames = tablet.frames_until(&marker.message_id).await;
    assert!(frames.iter().all(|f| !f.contains(&first.message_id) && !f.contains(&second.message_id)), "{frames:?}");
}

/// A client acking, reading and confirming one notice a thousand times each (and over REST fifty
/// times) writes one event of each kind per device, sends the other device one sync per kind, and
/// leaves `retry_count` at 0.
pub async fn receipts_are_recorded_once_however_often_they_are_sent(app: &Endpoints) {
    let admin = token(1, Role::Admin, "admin");
    let alice = token(2, Role::User, "alice");
    let mut phone = app.ws(&alice, TokenVia::Query).await;
    let mut laptop = app.ws(&alice, TokenVia::Header).await;
    let notice = app
        .notice(&admin, json!({"content": "say it once", "target": "custom", "user_ids": [2], "need_confirm": true}))
        .await;
    for device in [&mut phone, &mut laptop] {
        device.frames_until(&notice.message_id).await;
    }
    for _ in 0..1000 {
        for kind in ["ack", "read", "confirm"] {
            phone.send_text(&json!({"type": kind, "message_id": notice.message_id}).to_string()).await;
        }
    }
    // The phone's frames are handled in order: the pong comes after all of them.
    phone.send_text(r#"{"type":"ping"}"#).await;
    let pong = phone.next_text().await;
    assert!(pong.contains("pong"), "the receipts' own device got {pong}");
    let url = format!("{}/api/admin/notification/mark-read", app.api);
    for _ in 0..50 {
        let response = app.http.post(&url).bearer_auth(&alice).json(&json!({"message_id": notice.message_id})).send();
        assert_eq!(response.await.unwrap().status().as_u16(), 200);
    }

    // A marker receipt on another notice, applied after everything above (events are applied
    // in order): once it shows, the count is final.
    let marker = app.notice(&admin, json!({"content": "marker", "target": "custom", "user_ids": [2]})).await;
    phone.frames_until(&marker.message_id).await;
    phone.send_text(&json!({"type": "read", "message_id": marker.message_id}).to_string()).await;
    eventually("the marker receipt to be recorded", std::time::Duration::from_secs(20), || async {
        let (_, detail) = app.get(&admin, &format!("/api/admin/push/records/{}", marker.message_id)).await;
        if detail["data"]["receive_records"][0]["is_read"] == true { Ok(()) } else { Err(detail) }
    })
    .await;
    let (_, detail) = app.get(&admin, &format!("/api/admin/push/records/{}", notice.message_id)).await;
    let mut kinds: Vec<(String, String)> = detail["data"]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|log| {
            let channel = log["device_info"]["channel"].as_str().unwrap_or("rest").to_owned();
            (log["event_type"].as_str().unwrap().to_owned(), channel)
        })
        .collect();
    kinds.sort();
    let expected = [("confirmed", "websocket"), ("delivered", "websocket"), ("read", "rest"), ("read", "websocket")];
    let expected: Vec<(String, String)> = expected.iter().map(|(k, c)| ((*k).to_owned(), (*c).to_owned())).collect();
    assert_eq!(kinds, expected, "{detail}");
    assert_eq!(detail["data"]["receive_records"][0]["retry_count"], 0, "{detail}");

    // The laptop heard once per kind and device: read (phone), confirmed (phone), read (REST).
    let frames = laptop.frames_until(&marker.message_id).await;
    let syncs: Vec<&String> = frames.iter().filter(|f| f.contains("\"sync\"")).collect();
    assert_eq!(syncs.len(), 3, "{syncs:?}");
}
