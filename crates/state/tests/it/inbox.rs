//! One suite, two backends: every case runs on Redis and in memory.

use crate::live::LiveDatabases;
use model::{MessageId, NotificationMessage, NotificationType, OfflineMessage, Priority, Sender, Target};
use state::{InboxError, OfflineInbox};
use state::{OfflineSettings, RedisSettings};
use std::time::Duration;

const USER: i64 = 4242;
const OTHER: i64 = 4343;

fn redis_url() -> String {
    std::env::var("HERALD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn backends(offline: OfflineSettings) -> (Vec<(&'static str, OfflineInbox)>, LiveDatabases) {
    let redis = RedisSettings {
        url: state::StateBackend::Redis(redis_url()),
        key_prefix: format!("test-{}:", uuid::Uuid::new_v4().simple()),
        ..RedisSettings::default()
    };
    let on_redis = OfflineInbox::start(&redis, &offline).unwrap();
    assert!(on_redis.wait_ready(Duration::from_secs(10)).await, "Redis is not reachable at {}", redis_url());
    let in_memory = OfflineInbox::start(&RedisSettings::in_process(), &offline).unwrap();
    let databases = LiveDatabases::open(&offline).await;
    let mut all = vec![("redis", on_redis), ("memory", in_memory)];
    all.extend(databases.states.iter().map(|(name, live)| (*name, OfflineInbox::Sql(live.clone()))));
    (all, databases)
}

async fn cleanup(inbox: &OfflineInbox) {
    for user in [USER, OTHER] {
        inbox.forget(user).await.unwrap();
    }
}

/// An entry for a message created `age` ago, numbered `n` in its content.
fn entry_aged(n: usize, age: Duration) -> OfflineMessage {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() - age.as_nanos() as i128 + n as i128 * 1000;
    let message = NotificationMessage {
        notification_type: NotificationType::SYSTEM_NOTICE,
        content: format!("notice {n}"),
        data: None,
        time: "2025-01-27 10:30:00".into(),
        priority: Priority::Normal,
        target: Target::Custom,
        target_ids: vec![USER],
        exclude_ids: vec![],
        need_confirm: false,
        message_id: MessageId::from_parts(nanos, uuid::Uuid::new_v4()),
        channels: Default::default(),
        fallback: None,
        sender: Sender { id: 1, name: "admin".into() },
    };
    message.offline_entry("2025-01-27 10:30:01".into())
}

pub(crate) fn entry(n: usize) -> OfflineMessage {
    entry_aged(n, Duration::ZERO)
}

fn contents(entries: &[String]) -> Vec<String> {
    entries.iter().map(|raw| serde_json::from_str::<OfflineMessage>(raw).unwrap().content).collect()
}

#[tokio::test]
async fn entries_replay_oldest_first_until_acknowledged() {
    let (all, databases) = backends(OfflineSettings::default()).await;
    for (backend, inbox) in all {
        let (first, second) = (entry(1), entry(2));
        inbox.store(&[USER, OTHER], &second).await.unwrap();
        inbox.store(&[USER], &first).await.unwrap();
        let replay = inbox.replay(USER).await.unwrap();
        assert_eq!(contents(&replay.entries), ["[离线消息] notice 1", "[离线消息] notice 2"], "{backend}");
        assert_eq!(replay.dropped, 0, "{backend}");
        assert_eq!(serde_json::from_str::<OfflineMessage>(&replay.entries[0]).unwrap(), first, "{backend}");

        let id = MessageId::parse(&first.message_id).unwrap();
        assert!(inbox.acknowledge(USER, &id).await.unwrap(), "{backend}");
        assert!(!inbox.acknowledge(USER, &id).await.unwrap(), "{backend}: acknowledged twice");
        assert_eq!(contents(&inbox.replay(USER).await.unwrap().entries), ["[离线消息] notice 2"], "{backend}");
        assert_eq!(inbox.replay(OTHER).await.unwrap().entries.len(), 1, "{backend}: another user's inbox changed");
        cleanup(&inbox).await;
    }
    databases.drop_all().await;
}

#[tokio::test]
async fn storing_the_same_message_twice_keeps_one_entry() {
    let (all, databases) = backends(OfflineSettings::default()).await;
    for (backend, inbox) in all {
        let once = entry(1);
        let mut again = once.clone();
        again.saved_at = "2025-01-27 10:31:00".into();
        inbox.store(&[USER], &once).await.unwrap();
        inbox.store(&[USER], &again).await.unwrap();
        assert_eq!(inbox.replay(USER).await.unwrap().entries.len(), 1, "{backend}");
        cleanup(&inbox).await;
    }
    databases.drop_all().await;
}

#[tokio::test]
async fn a_hundred_and_fifty_notices_leave_the_newest_hundred_and_count_the_rest() {
    let (all, databases) = backends(OfflineSettings::default()).await;
    for (backend, inbox) in all {
        for n in 1..=150 {
            inbox.store(&[USER], &entry(n)).await.unwrap();
        }
        let replay = inbox.replay(USER).await.unwrap();
        let expected: Vec<String> = (51..=150).map(|n| format!("[离线消息] notice {n}")).collect();
        assert_eq!(contents(&replay.entries), expected, "{backend}");
        assert_eq!(replay.dropped, 50, "{backend}");
        assert_eq!(inbox.replay(USER).await.unwrap().dropped, 0, "{backend}: the count is told once");
        cleanup(&inbox).await;
    }
    databases.drop_all().await;
}

#[tokio::test]
async fn entries_older_than_the_retention_are_dropped_and_counted() {
    let offline = OfflineSettings { ttl_secs: 7 * 24 * 3600, ..OfflineSettings::default() };
    let (all, databases) = backends(offline).await;
    for (backend, inbox) in all {
        inbox.store(&[USER], &entry_aged(1, Duration::from_secs(8 * 24 * 3600))).await.unwrap();
        inbox.store(&[USER], &entry(2)).await.unwrap();
        let replay = inbox.replay(USER).await.unwrap();
        assert_eq!(contents(&replay.entries), ["[离线消息] notice 2"], "{backend}");
        assert_eq!(replay.dropped, 1, "{backend}");
        cleanup(&inbox).await;
    }
    databases.drop_all().await;
}

/// Many users connecting at once (the database reads their replays in batches): each gets its
/// own inbox, and a user replaying on two connections at once gets the entries on both and the
/// dropped count once, as two replays one after the other would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_replays_each_get_their_own_inbox_and_the_dropped_count_once() {
    const FIRST: i64 = 910_000;
    const USERS: i64 = 450;
    let offline = OfflineSettings { max_per_user: 2, ..OfflineSettings::default() };
    let (all, databases) = backends(offline).await;
    for (backend, inbox) in all {
        for user in FIRST..FIRST + USERS {
            inbox.store(&[user], &entry(user as usize)).await.unwrap();
        }
        for n in 1..=5 {
            inbox.store(&[USER], &entry(n)).await.unwrap();
        }
        let replays = (FIRST..FIRST + USERS).chain([USER, USER]).map(|user| {
            let inbox = inbox.clone();
            tokio::spawn(async move { (user, inbox.replay(user).await.unwrap()) })
        });
        let mut twice = Vec::new();
        for replay in futures_util::future::join_all(replays).await {
            let (user, replay) = replay.unwrap();
            if user == USER {
                twice.push(replay);
                continue;
            }
            assert_eq!(contents(&replay.entries), [format!("[离线消息] notice {user}")], "{backend}: user {user}");
            assert_eq!(replay.dropped, 0, "{backend}: user {user}");
        }
        for replay in &twice {
            assert_eq!(contents(&replay.entries), ["[离线消息] notice 4", "[离线消息] notice 5"], "{backend}");
        }
        let mut dropped: Vec<u64> = twice.iter().map(|r| r.dropped).collect();
        dropped.sort_unstable();
        assert_eq!(dropped, [0, 3], "{backend}: the dropped count is told once");
        for user in FIRST..FIRST + USERS {
            inbox.forget(user).await.unwrap();
        }
        cleanup(&inbox).await;
    }
    databases.drop_all().await;
}

/// The scripts go by hash and are loaded only when Redis does not know them (after a restart
/// or a `SCRIPT FLUSH`): storing and replaying still work then.
/// Trimming every inbox (the janitor's `inbox-trim`): with the limits lowered since the entries
/// were stored, each inbox past the new count keeps its newest; once entries age past the
/// retention, they go too; what went is counted for the next replay, as a store's trimming is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_every_inbox_applies_lowered_limits_and_age() {
    let roomy = OfflineSettings { max_per_user: 100, ttl_secs: 3 };
    let strict = OfflineSettings { max_per_user: 4, ..roomy.clone() };
    let redis = RedisSettings {
        url: state::StateBackend::Redis(redis_url()),
        key_prefix: format!("test-{}:", uuid::Uuid::new_v4().simple()),
        ..RedisSettings::default()
    };
    let on_redis = OfflineInbox::start(&redis, &roomy).unwrap();
    assert!(on_redis.wait_ready(Duration::from_secs(10)).await, "Redis is not reachable at {}", redis_url());
    let databases = LiveDatabases::open(&roomy).await;
    // Each backend as written, and (but in memory) the same storage under the lowered limits.
    let mut all =
        vec![("redis", on_redis), ("memory", OfflineInbox::start(&RedisSettings::in_process(), &roomy).unwrap())];
    let mut lowered = vec![("redis", Some(OfflineInbox::start(&redis, &strict).unwrap())), ("memory", None)];
    all.extend(databases.states.iter().map(|(name, live)| (*name, OfflineInbox::Sql(live.clone()))));
    lowered.extend(
        databases.with_limits(&strict).await.into_iter().map(|(name, live)| (name, Some(OfflineInbox::Sql(live)))),
    );
    for (_, inbox) in &all {
        for n in 0..7 {
            inbox.store(&[USER], &entry(n)).await.unwrap();
        }
        // Nearly as old as the retention: past it a second from now.
        for n in 10..13 {
            inbox.store(&[OTHER], &entry_aged(n, Duration::from_millis(2_200))).await.unwrap();
        }
    }
    for ((backend, inbox), (_, strict_inbox)) in all.iter().zip(&lowered) {
        // In memory the limits cannot change under a running process: only age applies there.
        let trimmer = strict_inbox.as_ref().unwrap_or(inbox);
        let first = trimmer.trim_all().await.unwrap();
        let expected =
            if strict_inbox.is_some() { state::Trimmed { inboxes: 1, dropped: 3 } } else { state::Trimmed::default() };
        assert_eq!(first, expected, "{backend}");
        assert_eq!(trimmer.trim_all().await.unwrap(), state::Trimmed::default(), "{backend}: trimmed twice");
    }
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for ((backend, inbox), (_, strict_inbox)) in all.iter().zip(&lowered) {
        let trimmer = strict_inbox.as_ref().unwrap_or(inbox);
        // The aged inbox, whose key (in Redis) has not expired yet: its entries go by age.
        assert_eq!(trimmer.trim_all().await.unwrap(), state::Trimmed { inboxes: 1, dropped: 3 }, "{backend}");
        let replay = inbox.replay(USER).await.unwrap();
        let (kept, dropped) = if strict_inbox.is_some() { (4, 3) } else { (7, 0) };
        assert_eq!((replay.entries.len(), replay.dropped), (kept, dropped), "{backend}");
        assert_eq!(contents(&replay.entries).last().unwrap(), "[离线消息] notice 6", "{backend}: the newest stay");
        let other = inbox.replay(OTHER).await.unwrap();
        assert_eq!((other.entries.len(), other.dropped), (0, 3), "{backend}");
        cleanup(inbox).await;
    }
}

#[tokio::test]
async fn a_redis_that_forgot_the_scripts_gets_them_again() {
    let (all, databases) = backends(OfflineSettings::default()).await;
    let (_, inbox) = all.into_iter().find(|(name, _)| *name == "redis").unwrap();
    let flushed = std::process::Command::new("redis-cli").args(["-u", &redis_url(), "SCRIPT", "FLUSH"]).status();
    assert!(flushed.is_ok_and(|s| s.success()), "redis-cli SCRIPT FLUSH failed");
    inbox.store(&[USER], &entry(1)).await.unwrap();
    assert_eq!(contents(&inbox.replay(USER).await.unwrap().entries), ["[离线消息] notice 1"]);
    cleanup(&inbox).await;
    databases.drop_all().await;
}

#[tokio::test]
async fn an_unreachable_redis_fails_fast() {
    let redis = RedisSettings {
        url: state::StateBackend::Redis("redis://127.0.0.1:1".into()),
        command_timeout_ms: 300,
        ..RedisSettings::default()
    };
    let inbox = OfflineInbox::start(&redis, &OfflineSettings::default()).unwrap();
    let started = std::time::Instant::now();
    let err = inbox.store(&[USER], &entry(1)).await.unwrap_err();
    assert!(matches!(err, InboxError::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert!(!inbox.is_ready());
}

/// Redis run as the deployment docs say (AOF on, fsync every second) and killed with SIGKILL:
/// once started again on its directory, every offline inbox is there as it was, and the client
/// reconnected by itself.
#[tokio::test]
async fn offline_inboxes_survive_a_redis_crash_with_aof_on() {
    use runtime::testing::redis::RedisServer;
    let mut server = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    let redis = RedisSettings::redis(server.url());
    let inbox = OfflineInbox::start(&redis, &OfflineSettings::default()).unwrap();
    assert!(inbox.wait_ready(Duration::from_secs(10)).await, "the test's Redis is not reachable");
    let users: Vec<i64> = (1..=40).collect();
    let mut stored = Vec::new();
    for n in 0..25 {
        let entry = entry(n);
        inbox.store(&users, &entry).await.unwrap();
        stored.push(entry.message_id.clone());
    }
    server.kill();
    assert!(inbox.replay(1).await.is_err(), "Redis answered while it was down");
    server.restart();
    for user in users {
        let replay = runtime::testing::eventually("the inbox back after the restart", Duration::from_secs(20), || {
            let inbox = inbox.clone();
            async move { inbox.replay(user).await.map_err(|err| err.to_string()) }
        })
        .await;
        let ids: Vec<String> = replay
            .entries
            .iter()
            .map(|e| serde_json::from_str::<serde_json::Value>(e).unwrap()["message_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, stored, "user {user}'s inbox after the crash");
    }
}
