//! Several ws-gateway replicas behind one API: each replica delivers to its own connections.

use crate::helpers::{Distributed, TokenVia, WsClient, token};
use database::DatabaseSettings;
use database::scratch::{Backend, ScratchDatabase};
use runtime::Role;
use runtime::testing::eventually;
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

/// A `herald` process on RabbitMQ and Redis under `prefix`: a full replica.
async fn replica(prefix: &str, database: &DatabaseSettings) -> (tokio::process::Child, crate::helpers::Endpoints) {
    let addr = crate::helpers::free_addr();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .env("HERALD_HTTP_ADDR", addr.to_string())
        .env("HERALD_JWT_SECRET", crate::helpers::SECRET)
        .env("HERALD_LOG_LEVEL", "warn")
        .env("HERALD_BUS_URL", crate::helpers::amqp_url())
        .env("HERALD_BUS_PREFIX", prefix)
        .env("HERALD_REDIS_URL", crate::helpers::redis_url())
        .env("HERALD_REDIS_KEY_PREFIX", format!("{prefix}:"))
        .env("HERALD_LIMITS_SENDER_PER_SECOND", "0")
        .env("HERALD_LIMITS_IP_PER_SECOND", "0")
        .env("HERALD_DATABASE_URL", &database.url)
        .env("HERALD_DATABASE_SCHEMA", &database.schema)
        .env("HERALD_PRESENCE_REFRESH_SECS", "1")
        .env("HERALD_PRESENCE_TTL_SECS", "3")
        .env_remove("HERALD_CONFIG")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let endpoints = crate::helpers::Endpoints::new(addr, addr);
    endpoints.wait_ready(&endpoints.api.clone()).await;
    (child, endpoints)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_stream_loses_nothing_that_was_accepted() {
    let prefix = format!("test-kill-{}", uuid::Uuid::new_v4().simple());
    let bus = bus::BusSettings {
        url: bus::BusUrl::Amqp(crate::helpers::amqp_url()),
        prefix: prefix.clone(),
        ..Default::default()
    };
    // Removed at the end, or when a failing test drops it.
    let leftovers =
        crate::helpers::ServerLeftovers::new(bus, ScratchDatabase::create(Backend::Postgres).await.unwrap());
    let database = leftovers.database().clone();
    let (mut survivor, a) = replica(&prefix, &database).await;
    let (mut doomed, b) = replica(&prefix, &database).await;
    let admin = token(1, Role::Admin, "admin");
    let alice = token(2, Role::User, "alice");

    // Alice is on the replica about to die; she acks what she gets, as a client does.
    let mut on_doomed = WsClient::connect(&b.ws, &alice, TokenVia::Query).await.unwrap();
    on_doomed.until_live().await;
    let doomed_replica = wait_for_online(&a, &admin, |users| users.iter().any(|u| u["user_id"] == 2)).await;
    let doomed_replica = doomed_replica.iter().find(|u| u["user_id"] == 2).unwrap()["replicas"][0].clone();
    let (ids_tx, mut ids_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(frame) = on_doomed.try_next_text().await {
            if let Some(id) =
                serde_json::from_str::<Value>(&frame).ok().and_then(|v| v["message_id"].as_str().map(str::to_owned))
            {
                on_doomed.try_send_text(&json!({"type": "ack", "message_id": id}).to_string()).await;
                got.push(id);
            }
        }
        got
    });

    // 100 notices, killed at the 40th: whatever alice had acknowledged before the kill (on a
    // loaded machine, perhaps nothing), what stays unacknowledged fits the inbox (100 per user).
    let mut accepted = Vec::new();
    for n in 0..100 {
        if n == 40 {
            doomed.start_kill().unwrap();
            doomed.wait().await.unwrap();
        }
        let body = json!({"content": format!("stream {n}"), "target": "custom", "user_ids": [2]});
        let (status, _, answer) = a.post_notice(Some(&admin), &body).await;
        if status == 200 {
            accepted.push(answer["data"]["message_id"].as_str().unwrap().to_owned());
        }
        let _ = ids_tx.send(String::new());
    }
    drop(ids_tx);
    while ids_rx.recv().await.is_some() {}
    let before_kill = reader.await.unwrap();
    assert!(!before_kill.is_empty(), "alice got nothing before the kill");

    // She reconnects to the survivor: replay and live delivery bring the rest.
    let mut on_survivor = WsClient::connect(&a.ws, &alice, TokenVia::Query).await.unwrap();
    let last = accepted.last().unwrap().clone();
    let frames = on_survivor.frames_until(&last).await;
    assert!(frames.iter().all(|f| !f.contains("offline_overflow")), "the inbox overflowed; the test sent too many");
    let after: Vec<String> = frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(f).ok()?["message_id"].as_str().map(str::to_owned))
        .collect();
    let received: std::collections::HashSet<&String> = before_kill.iter().chain(after.iter()).collect();
    let missing: Vec<&String> = accepted.iter().filter(|id| !received.contains(id)).collect();
    assert!(missing.is_empty(), "{} of {} accepted notices never arrived: {missing:?}", missing.len(), accepted.len());

    // Presence forgets the killed replica by itself and shows alice where she is now.
    let online = wait_for_online(&a, &admin, |users| {
        users.iter().any(|u| u["user_id"] == 2 && !u["replicas"].as_array().unwrap().contains(&doomed_replica))
    })
    .await;
    let alice_now = online.iter().find(|u| u["user_id"] == 2).unwrap();
    assert_eq!(alice_now["connections"], 1, "{alice_now}");
    drop(on_survivor);

    // Clean up what the replicas left on the shared servers, once nothing writes there.
    survivor.start_kill().unwrap();
    survivor.wait().await.unwrap();
    leftovers.remove().await;
}

/// Polls `GET /api/admin/users/online` until `done` holds for its items; returns them.
async fn wait_for_online(app: &crate::helpers::Endpoints, admin: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    eventually("presence to show what was expected", std::time::Duration::from_secs(15), || async {
        let (status, body) = app.get(admin, "/api/admin/users/online?page_size=200").await;
        assert_eq!(status, 200, "{body}");
        let items = body["data"]["items"].as_array().unwrap().clone();
        if done(&items) { Ok(items) } else { Err(format!("{items:?}")) }
    })
    .await
}
