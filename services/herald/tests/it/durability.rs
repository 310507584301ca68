//! The all-in-one keeps what it accepted: notices flow to an online and an offline user, the
//! binary is killed (SIGKILL, and also stopped with SIGTERM) while requests are in flight, and
//! after a restart on the same database every notice answered 200 is accounted for: delivered
//! live before the stop or replayed after it, with a push record, and receipts about it work.

use crate::all_in_one::herald;
use crate::helpers::{Endpoints, PATIENCE, TokenVia, WsClient, free_addr, token};
use runtime::Role;
use runtime::testing::{eventually, holds};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::process::{Child, Command};

const ONLINE: i64 = 21;
const OFFLINE: i64 = 22;

/// How the first run ends.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Kill,
    Terminate,
}

/// A `herald` process on a database file that outlives it.
struct Run {
    child: Child,
    endpoints: Endpoints,
}

impl Run {
    async fn start(database: &str) -> Self {
        let addr = free_addr();
        let child = herald()
            .env("HERALD_DATABASE_URL", database)
            .env("HERALD_HTTP_ADDR", addr.to_string())
            .env("HERALD_LIMITS_SENDER_PER_SECOND", "0")
            .env("HERALD_LIMITS_IP_PER_SECOND", "0")
            .env_remove("HERALD_REDIS_URL")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let endpoints = Endpoints::new(addr, addr);
        endpoints.wait_ready(&endpoints.api.clone()).await;
        Self { child, endpoints }
    }

    async fn stop(&mut self, how: Stop) {
        let pid = self.child.id().unwrap().to_string();
        let signal = match how {
            Stop::Kill => "-KILL",
            Stop::Terminate => "-TERM",
        };
        assert!(Command::new("kill").args([signal, &pid]).status().await.unwrap().success());
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await.unwrap().unwrap();
        if let Stop::Terminate = how {
            assert!(status.success(), "herald did not exit cleanly on SIGTERM: {status}");
        }
    }
}

/// The message ids of every notice frame a client receives until it has been quiet a while;
/// also whether an overflow frame came (none may: fewer than 100 notices are sent).
async fn drain(client: &mut WsClient) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    // "Nothing more arrives", as a bounded wait: 2 s without a frame ends it (a stopped process
    // ends it at once, by closing the connection).
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(2), client.try_next_text()).await {
        let frame: Value = serde_json::from_str(&frame).unwrap();
        assert_ne!(frame["type"], "offline_overflow", "no notice may be dropped here: {frame}");
        if let Some(id) = frame["message_id"].as_str() {
            ids.insert(id.to_owned());
        }
    }
    ids
}

/// A directory removed when dropped, even by a failing test.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn accepted_notices_survive(how: Stop) {
    let dir = TempDir(std::env::temp_dir().join(format!("herald-durability-{}", uuid::Uuid::new_v4().simple())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let database = format!("sqlite://{}?mode=rwc", dir.0.join("herald.db").display());
    let admin = token(1, Role::Admin, "admin");

    let mut first = Run::start(&database).await;
    let mut online = first.endpoints.ws(&token(ONLINE, Role::User, "online"), TokenVia::Query).await;
    let live = tokio::spawn(async move { drain(&mut online).await });
    // Three posters, half the notices urgent (straight to the exchange), half through the
    // backlog; the process is stopped while they post.
    let answered_200 = std::sync::Arc::new(AtomicUsize::new(0));
    let posters: Vec<_> = (0..3)
        .map(|task| {
            let (http, api, admin) = (first.endpoints.http.clone(), first.endpoints.api.clone(), admin.clone());
            let answered_200 = answered_200.clone();
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for n in 0..30 {
                    let priority = if n % 2 == 0 { "urgent" } else { "normal" };
                    let body = json!({"content": format!("n-{task}-{n}"), "target": "custom",
                                      "user_ids": [ONLINE, OFFLINE], "priority": priority});
                    let sent =
                        http.post(format!("{api}/api/admin/system/notice")).bearer_auth(&admin).json(&body).send();
                    let Ok(response) = sent.await else { break };
                    if response.status().as_u16() != 200 {
                        // Refused while stopping (SIGTERM): never delivered, not counted.
                        continue;
                    }
                    let Ok(answer) = response.json::<Value>().await else { break };
                    accepted.push(answer["data"]["message_id"].as_str().unwrap().to_owned());
                    answered_200.fetch_add(1, Ordering::SeqCst);
                    // Pacing, not waiting: the posts spread over time so the stop falls among them.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                accepted
            })
        })
        .collect();
    // Stop once a good part of the 90 notices was accepted, while the rest are being posted.
    eventually("20 notices to be accepted before the stop", PATIENCE, || async {
        let answered = answered_200.load(Ordering::SeqCst);
        holds(answered >= 20, format!("{answered} accepted"))
    })
    .await;
    first.stop(how).await;
    let mut accepted = BTreeSet::new();
    for poster in posters {
        accepted.extend(poster.await.unwrap());
    }
    let delivered_live = live.await.unwrap();
    assert!(accepted.len() >= 10, "too few notices were accepted before the stop ({})", accepted.len());

    let second = Run::start(&database).await;
    let api = &second.endpoints;
    let mut offline =
        WsClient::connect(&api.ws, &token(OFFLINE, Role::User, "offline"), TokenVia::Query).await.unwrap();
    let mut online = WsClient::connect(&api.ws, &token(ONLINE, Role::User, "online"), TokenVia::Query).await.unwrap();
    let (replayed_offline, replayed_online) = (drain(&mut offline).await, drain(&mut online).await);
    let missing_offline: Vec<_> = accepted.difference(&replayed_offline).collect();
    assert!(missing_offline.is_empty(), "{how:?}: the offline user never got {missing_offline:?}");
    let reached_online: BTreeSet<String> = delivered_live.union(&replayed_online).cloned().collect();
    let missing_online: Vec<_> = accepted.difference(&reached_online).collect();
    assert!(missing_online.is_empty(), "{how:?}: the online user never got {missing_online:?}");

    // Every accepted notice gets its record; a receipt about one from before the stop works.
    let admin_token = admin.clone();
    for id in &accepted {
        eventually(&format!("{how:?}: a push record of {id}"), Duration::from_secs(15), || async {
            let (status, body) = api.get(&admin_token, &format!("/api/admin/push/records/{id}")).await;
            holds(status == 200, format_args!("{status} {body}"))
        })
        .await;
    }
    let some = accepted.iter().next().unwrap();
    let response = api
        .http
        .post(format!("{}/api/admin/notification/mark-read", api.api))
        .bearer_auth(token(OFFLINE, Role::User, "offline"))
        .json(&json!({"message_id": some}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{how:?}: {}", response.text().await.unwrap());

    let mut second = second;
    second.stop(Stop::Terminate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_loses_no_accepted_notice() {
    accepted_notices_survive(Stop::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_loses_no_accepted_notice() {
    accepted_notices_survive(Stop::Terminate).await;
}
