//! Redis failing over under Sentinel while notices flow to online and offline users: a test's
//! own primary, two replicas and a Sentinel (Debian's redis-server), the primary killed with
//! SIGKILL mid-stream, and every accepted notice accounted for afterwards.

use crate::helpers::{Distributed, TokenVia, message_ids, token};
use runtime::Role;
use runtime::testing::eventually;
use runtime::testing::redis::RedisServer;
use serde_json::json;
use state::{RedisSettings, StateBackend};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The online user; the offline ones are 3..=8.
const ALICE: i64 = 2;
const OFFLINE: std::ops::RangeInclusive<i64> = 3..=8;

/// A notice the poster sent: to whom, and what the API answered.
struct Posted {
    user: i64,
    status: u16,
    message_id: Option<String>,
    after_failover: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_failover_under_sentinel_loses_no_accepted_notice() {
    let aof = ["--appendonly", "yes", "--appendfsync", "everysec"];
    // A replica that connects is synced at once, not after the default 5 s of diskless delay.
    let mut primary = RedisServer::start(&[&aof[..], &["--repl-diskless-sync-delay", "0"]].concat());
    let replicas = [RedisServer::replica_of(&primary, &aof), RedisServer::replica_of(&primary, &aof)];
    eventually("both replicas in sync", Duration::from_secs(20), || async {
        let online =
            |n: usize| primary.info("replication", &format!("slave{n}")).is_some_and(|s| s.contains("state=online"));
        if online(0) && online(1) { Ok(()) } else { Err(format!("{:?}", primary.command(&["INFO", "replication"]))) }
    })
    .await;
    let sentinel = RedisServer::sentinel_for(&primary, "herald");
    eventually("the Sentinel to see both replicas", Duration::from_secs(20), || async {
        let master = sentinel.info("sentinel", "master0");
        if master.as_deref().is_some_and(|m| m.contains("slaves=2")) { Ok(()) } else { Err(format!("{master:?}")) }
    })
    .await;
    let state = RedisSettings {
        url: StateBackend::Redis(format!("redis-sentinel://127.0.0.1:{}/0?sentinelServiceName=herald", sentinel.port)),
        // An accepted notice's offline copies are on a replica too: the one promoted has them.
        wait_replicas: 1,
        ..RedisSettings::default()
    };
    let app = Arc::new(Distributed::spawn_with_state(state).await);
    let admin = token(1, Role::Admin, "admin");
    let mut alice = app.endpoints.ws(&token(ALICE, Role::User, "alice"), TokenVia::Query).await;

    // Alice's frames, read as they come, until told to stop.
    let reading = Arc::new(AtomicBool::new(true));
    let reader = {
        let reading = reading.clone();
        tokio::spawn(async move {
            let mut frames = Vec::new();
            while reading.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(200), alice.try_next_text()).await {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
            frames
        })
    };
    // One notice every 40 ms, to Alice or one of the offline users in turn.
    let failed_over = Arc::new(AtomicBool::new(false));
    let posting = Arc::new(AtomicBool::new(true));
    let poster = {
        let (app, admin, failed_over, posting) = (app.clone(), admin.clone(), failed_over.clone(), posting.clone());
        tokio::spawn(async move {
            let mut posted = Vec::new();
            let offline: Vec<i64> = OFFLINE.collect();
            let mut n = 0usize;
            while posting.load(Ordering::Relaxed) {
                let user = if n.is_multiple_of(3) { ALICE } else { offline[n % offline.len()] };
                let after_failover = failed_over.load(Ordering::Relaxed);
                let body = json!({"content": format!("notice {n}"), "target": "custom", "user_ids": [user]});
                let (status, _, answer) = app.endpoints.post_notice(Some(&admin), &body).await;
                let message_id = answer["data"]["message_id"].as_str().map(str::to_owned);
                posted.push(Posted { user, status, message_id, after_failover });
                n += 1;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            posted
        })
    };

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old_port = primary.port.to_string();
    primary.kill();
    eventually("the Sentinel to promote a replica", Duration::from_secs(30), || async {
        let master = sentinel.command(&["SENTINEL", "get-master-addr-by-name", "herald"]);
        match master.as_deref().and_then(|m| m.lines().nth(1)) {
            Some(port) if port.trim() != old_port => Ok(()),
            _ => Err(format!("{master:?}")),
        }
    })
    .await;
    failed_over.store(true, Ordering::Relaxed);
    // The services find the new primary by themselves: notices are accepted again.
    eventually("notices accepted after the failover", Duration::from_secs(60), || async {
        let (status, _, answer) = app
            .endpoints
            .post_notice(Some(&admin), &json!({"content": "probe", "target": "custom", "user_ids": [99]}))
            .await;
        if status == 200 { Ok(()) } else { Err(format!("{status} {answer}")) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    posting.store(false, Ordering::Relaxed);
    let posted = poster.await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    reading.store(false, Ordering::Relaxed);
    let live = message_ids(&reader.await.unwrap());

    // What each user has: Alice live or in her inbox (she never acknowledged), the others in
    // theirs, replayed on connecting now.
    let mut delivered: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    delivered.entry(ALICE).or_default().extend(live.iter().cloned());
    for user in std::iter::once(ALICE).chain(OFFLINE) {
        let mut client = app.endpoints.ws(&token(user, Role::User, "user"), TokenVia::Query).await;
        delivered.entry(user).or_default().extend(message_ids(&client.replayed()));
    }
    let accepted: Vec<&Posted> = posted.iter().filter(|p| p.status == 200).collect();
    let refused: Vec<&Posted> = posted.iter().filter(|p| p.status != 200).collect();
    let id_of = |p: &Posted| p.message_id.clone().unwrap_or_default();
    let lost: Vec<String> = accepted
        .iter()
        .filter(|p| !delivered.get(&p.user).is_some_and(|ids| ids.contains(&id_of(p))))
        .map(|p| format!("{} to {}", id_of(p), p.user))
        .collect();
    let refused_but_delivered: Vec<String> = refused
        .iter()
        .filter_map(|p| p.message_id.clone())
        .filter(|id| delivered.values().any(|ids| ids.contains(id)))
        .collect();
    let statuses: BTreeSet<u16> = refused.iter().map(|p| p.status).collect();
    let duplicates = live.len() - live.iter().collect::<BTreeSet<_>>().len();
    eprintln!(
        "failover accounting: {} posted, {} accepted ({} after the failover), {} refused {statuses:?}, \
         {} lost, {duplicates} live duplicates (same message id)",
        posted.len(),
        accepted.len(),
        accepted.iter().filter(|p| p.after_failover).count(),
        refused.len(),
        lost.len()
    );
    assert!(accepted.iter().any(|p| !p.after_failover), "nothing was accepted before the failover");
    assert!(accepted.iter().any(|p| p.after_failover), "nothing was accepted after the failover");
    assert!(statuses.iter().all(|s| *s == 503), "a refusal other than 503: {statuses:?}");
    assert!(lost.is_empty(), "accepted but never delivered: {lost:?}");
    assert!(refused_but_delivered.is_empty(), "refused but delivered: {refused_but_delivered:?}");
    drop(replicas);
    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("the app is still shared"),
    }
}
