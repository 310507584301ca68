//! The delivery scenario every deployment must pass: an admin and two users (one on two
//! connections) receive exactly the frames addressed to them, byte for byte.

use crate::helpers::{Endpoints, TokenVia, assert_schema, expected_frame, token};
use runtime::Role;
use serde_json::{Value, json};

pub async fn each_connection_receives_exactly_its_frames(app: &Endpoints) {
    let admin = token(1, Role::Admin, "admin");
    let alice = token(2, Role::User, "alice");
    let bob = token(3, Role::User, "bob");
    let mut admin_ws = app.ws(&admin, TokenVia::Query).await;
    let mut alice_phone = app.ws(&alice, TokenVia::Header).await;
    let mut alice_laptop = app.ws(&alice, TokenVia::Subprotocol).await;
    let mut bob_ws = app.ws(&bob, TokenVia::Query).await;

    let everyone = app
        .notice(
            &admin,
            json!({"content": "系统将于今晚23:00-23:30进行例行维护 😀", "type": "system_notice"}),
        )
        .await;
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
    let barrier = app
        .notice(&admin, json!({"content": "barrier", "priority": 0}))
        .await;

    let everyone_frame = expected_frame(
        "system_notice",
        "系统将于今晚23:00-23:30进行例行维护 😀",
        1,
        false,
        "",
        &everyone,
    );
    let admins_frame = expected_frame(
        "system_maintain",
        "admins only",
        1,
        false,
        r#","extra_info":"请提前保存工作""#,
        &admins,
    );
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
        (
            "admin",
            &mut admin_ws,
            vec![&everyone_frame, &admins_frame, &barrier_frame],
        ),
        (
            "alice's phone",
            &mut alice_phone,
            vec![&everyone_frame, &custom_frame, &barrier_frame],
        ),
        (
            "alice's laptop",
            &mut alice_laptop,
            vec![&everyone_frame, &custom_frame, &barrier_frame],
        ),
        (
            "bob (excluded from the custom notice)",
            &mut bob_ws,
            vec![&everyone_frame, &barrier_frame],
        ),
    ];
    for (who, ws, expected) in expectations {
        let frames = ws.frames_until(&barrier.message_id).await;
        for frame in &frames {
            assert_schema(
                "ws-notification.schema.json",
                &serde_json::from_str::<Value>(frame).unwrap(),
            );
        }
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(frames, expected, "{who} received the wrong frames");
    }
}
