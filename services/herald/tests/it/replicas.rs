//! Several ws-gateway replicas behind one API: each replica delivers to its own connections.

use crate::helpers::{Distributed, TokenVia, WsClient, token};
use runtime::Role;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_on_two_replicas_gets_each_message_once_per_connection() {
    let app = Distributed::spawn_with_gateways(2).await;
    let admin = token(1, Role::Admin, "admin");
    let alice = token(2, Role::User, "alice");
    let mut on_first = WsClient::connect(&app.gateway_ws[0], &alice, TokenVia::Query).await.unwrap();
    let mut on_second = WsClient::connect(&app.gateway_ws[1], &alice, TokenVia::Header).await.unwrap();
    let mut bob_on_second =
        WsClient::connect(&app.gateway_ws[1], &token(3, Role::User, "bob"), TokenVia::Query).await.unwrap();
    for client in [&mut on_first, &mut on_second, &mut bob_on_second] {
        client.until_live().await;
    }

    let mut sent = Vec::new();
    for n in 0..20 {
        let body = if n % 2 == 0 {
            json!({"content": format!("to alice {n}"), "target": "custom", "user_ids": [2]})
        } else {
            json!({"content": format!("to everyone {n}")})
        };
        sent.push(app.endpoints.notice(&admin, body).await.message_id);
    }
    let last = sent.last().unwrap().clone();

    for (who, client) in [("first replica", &mut on_first), ("second replica", &mut on_second)] {
        let ids: Vec<String> = client
            .frames_until(&last)
            .await
            .iter()
            .map(|f| serde_json::from_str::<Value>(f).unwrap()["message_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, sent, "alice's connection on the {who} got the wrong messages");
    }
    let to_everyone: Vec<String> = sent.iter().skip(1).step_by(2).cloned().collect();
    let bob_ids: Vec<String> = bob_on_second
        .frames_until(&last)
        .await
        .iter()
        .map(|f| serde_json::from_str::<Value>(f).unwrap()["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bob_ids, to_everyone);
    app.stop().await;
}
