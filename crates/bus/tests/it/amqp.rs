//! The AMQP bus: routing, durability, redelivery and failing fast without a broker.

use bus::{Bus, Exchange, QueueKind, SubscriptionSpec};
use bus::{BusSettings, BusUrl};
use bytes::Bytes;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use runtime::testing::{eventually, holds};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn amqp_url() -> String {
    std::env::var("HERALD_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A bus under a fresh prefix; `cleanup` deletes what it declared.
struct TestBus {
    bus: Bus,
    shutdown: CancellationToken,
}

impl TestBus {
    async fn start() -> Self {
        Self::start_with_backlog(1000).await
    }

    async fn start_with_backlog(backlog: u32) -> Self {
        runtime::install_crypto_provider();
        let settings = BusSettings {
            url: BusUrl::Amqp(amqp_url()),
            prefix: format!("test-bus-{}", uuid::Uuid::new_v4().simple()),
            publish_timeout_ms: 2000,
            backlog,
            ..BusSettings::default()
        };
        let shutdown = CancellationToken::new();
        let bus = Bus::start(&settings, shutdown.clone());
        let Bus::Amqp(amqp) = &bus else { unreachable!() };
        assert!(amqp.wait_connected(Duration::from_secs(10)).await, "RabbitMQ is not reachable at {}", amqp_url());
        Self { bus, shutdown }
    }

    fn spec(&self, queue: &str, kind: QueueKind, bindings: &[&str]) -> SubscriptionSpec {
        SubscriptionSpec {
            queue: queue.into(),
            kind,
            exchange: Exchange::Notifications,
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
        }
    }

    fn events_spec(&self, queue: &str, bindings: &[&str]) -> SubscriptionSpec {
        SubscriptionSpec { exchange: Exchange::Events, ..self.spec(queue, QueueKind::Exclusive, bindings) }
    }

    async fn cleanup(self, durable_queues: &[&str]) {
        let Bus::Amqp(amqp) = &self.bus else { unreachable!() };
        // Stop first: a running subscription whose queue is deleted reconnects and declares it
        // again. (Exclusive queues go with their subscriptions' connections.)
        self.shutdown.cancel();
        for queue in durable_queues {
            self.until_unconsumed(queue).await;
        }
        amqp.delete_topology(durable_queues).await.unwrap();
    }

    /// Waits until the broker counts no consumer on the durable queue `queue` (nor on its
    /// urgent lane).
    async fn until_unconsumed(&self, queue: &str) {
        eventually(&format!("no consumer on {queue}"), Duration::from_secs(10), || async {
            let consumers = self.consumers(queue).await?;
            holds(consumers == 0, format_args!("{consumers} consumers"))
        })
        .await;
    }

    /// How many consumers the broker counts on the durable queue `queue` and its urgent lane (a
    /// queue that is not there has none).
    async fn consumers(&self, queue: &str) -> Result<u32, String> {
        let properties = lapin::ConnectionProperties::default();
        let conn = lapin::Connection::connect(&amqp_url(), properties).await.map_err(|err| err.to_string())?;
        let base = self.bus.topology().queue(queue);
        let mut consumers = 0;
        for name in [format!("{base}.urgent"), base] {
            // A passive declaration only looks; on a missing queue it closes the channel, so
            // each look has a channel of its own.
            let channel = conn.create_channel().await.map_err(|err| err.to_string())?;
            let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
            if let Ok(found) = channel.queue_declare(name.into(), passive, FieldTable::default()).await {
                consumers += found.consumer_count();
            }
        }
        let _ = conn.close(200, "done".into()).await;
        Ok(consumers)
    }
}

async fn next_payload(sub: &mut bus::Subscription) -> (String, Bytes) {
    let incoming = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.unwrap().unwrap();
    let got = (incoming.routing_key.clone(), incoming.payload.clone());
    incoming.ack().await;
    got
}

#[tokio::test]
async fn every_notification_subscription_gets_every_notice_and_events_follow_bindings() {
    let t = TestBus::start().await;
    let mut gateway = t.bus.subscribe(t.spec("gateway", QueueKind::Exclusive, &[]));
    let mut reads = t.bus.subscribe(t.events_spec("reads", &["read.*"]));
    assert!(gateway.wait_ready(Duration::from_secs(10)).await && reads.wait_ready(Duration::from_secs(10)).await);

    t.bus.publish(Exchange::Notifications, "all.normal", Bytes::from_static(b"one")).await.unwrap();
    t.bus.publish(Exchange::Notifications, "custom.low", Bytes::from_static(b"two")).await.unwrap();
    t.bus.publish(Exchange::Events, "confirmed.custom", Bytes::from_static(b"c")).await.unwrap();
    t.bus.publish(Exchange::Events, "read.custom", Bytes::from_static(b"r")).await.unwrap();

    assert_eq!(next_payload(&mut gateway).await, ("all.normal".into(), Bytes::from_static(b"one")));
    assert_eq!(next_payload(&mut gateway).await, ("custom.low".into(), Bytes::from_static(b"two")));
    assert_eq!(next_payload(&mut reads).await, ("read.custom".into(), Bytes::from_static(b"r")));
    assert!(tokio::time::timeout(Duration::from_millis(300), reads.next()).await.is_err(), "an unbound event arrived");
    t.cleanup(&[]).await;
}

#[tokio::test]
async fn a_full_ingress_refuses_normal_notices_while_urgent_ones_pass_and_overtake() {
    let t = TestBus::start_with_backlog(5).await;
    let mut gateway = t.bus.subscribe(t.spec("gateway", QueueKind::Exclusive, &[]));
    assert!(gateway.wait_ready(Duration::from_secs(10)).await);

    // No dispatcher runs yet: normal notices wait in the ingress queue, which holds 5.
    for n in 0..5u8 {
        t.bus.publish(Exchange::Ingress, "all.normal", Bytes::from(vec![b'0' + n])).await.unwrap();
    }
    let err = t.bus.publish(Exchange::Ingress, "all.high", Bytes::from_static(b"x")).await.unwrap_err();
    assert!(matches!(err, bus::BusError::QueueFull), "{err}");
    t.bus.publish(Exchange::Notifications, "custom.urgent", Bytes::from_static(b"!")).await.unwrap();
    assert_eq!(next_payload(&mut gateway).await, ("custom.urgent".into(), Bytes::from_static(b"!")));

    // A dispatcher drains the backlog in order, with each notice's own routing key.
    let dispatcher = CancellationToken::new();
    t.bus.start_dispatcher(dispatcher.clone());
    for n in 0..5u8 {
        assert_eq!(next_payload(&mut gateway).await, ("all.normal".into(), Bytes::from(vec![b'0' + n])));
    }
    t.bus.publish(Exchange::Ingress, "custom.low", Bytes::from_static(b"again")).await.unwrap();
    assert_eq!(next_payload(&mut gateway).await, ("custom.low".into(), Bytes::from_static(b"again")));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), gateway.next()).await.is_err(),
        "the refused notice went through"
    );
    dispatcher.cancel();
    t.cleanup(&[]).await;
}

#[tokio::test]
async fn a_durable_queue_keeps_messages_while_its_consumer_is_away() {
    let t = TestBus::start().await;
    let mut first = t.bus.subscribe(t.spec("writer", QueueKind::Durable, &["#"]));
    assert!(first.wait_ready(Duration::from_secs(10)).await);
    drop(first);
    t.until_unconsumed("writer").await;

    t.bus.publish(Exchange::Notifications, "admin.high", Bytes::from_static(b"kept")).await.unwrap();
    let mut second = t.bus.subscribe(t.spec("writer", QueueKind::Durable, &["#"]));
    assert_eq!(next_payload(&mut second).await.1, Bytes::from_static(b"kept"));
    drop(second);
    t.cleanup(&["writer"]).await;
}

#[tokio::test]
async fn an_unacknowledged_message_is_redelivered_to_the_next_consumer() {
    let t = TestBus::start().await;
    let mut first = t.bus.subscribe(t.spec("worker", QueueKind::Durable, &["#"]));
    assert!(first.wait_ready(Duration::from_secs(10)).await);
    t.bus.publish(Exchange::Notifications, "all.low", Bytes::from_static(b"again")).await.unwrap();
    let taken = tokio::time::timeout(Duration::from_secs(10), first.next()).await.unwrap().unwrap();
    assert!(!taken.redelivered);
    // The consumer goes away without acking, as if killed mid-work.
    drop(taken);
    drop(first);

    let mut second = t.bus.subscribe(t.spec("worker", QueueKind::Durable, &["#"]));
    let again = tokio::time::timeout(Duration::from_secs(15), second.next()).await.unwrap().unwrap();
    assert!(again.redelivered);
    assert_eq!(again.payload, Bytes::from_static(b"again"));
    again.ack().await;
    drop(second);
    t.cleanup(&["worker"]).await;
}

#[tokio::test]
async fn publishing_without_a_broker_fails_fast() {
    runtime::install_crypto_provider();
    let settings =
        BusSettings { url: BusUrl::Amqp("amqp://guest:guest@127.0.0.1:1/%2f".into()), ..BusSettings::default() };
    let shutdown = CancellationToken::new();
    let bus = Bus::start(&settings, shutdown.clone());
    let started = std::time::Instant::now();
    let err = bus.publish(Exchange::Notifications, "all.normal", Bytes::new()).await.unwrap_err();
    assert!(matches!(err, bus::BusError::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!bus.is_ready());
    shutdown.cancel();
}

/// Closes, from the broker's side, every connection whose name starts with `prefix`; returns how
/// many it closed. Other tests' connections are left alone.
fn close_connections_named(prefix: &str) -> usize {
    let listed = std::process::Command::new("rabbitmqctl")
        .args(["list_connections", "--silent", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl is needed to close connections from the broker's side");
    let listed = String::from_utf8(listed.stdout).unwrap();
    let mut closed = 0;
    // One line per connection: `<pid>\t[client properties as Erlang terms]`.
    for line in
        listed.lines().filter(|line| line.contains(&format!("<<\"{prefix}")) || line.contains(&format!("\"{prefix}")))
    {
        let pid = line.split('\t').next().unwrap();
        let output = std::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid, "test: simulated connection loss"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        closed += 1;
    }
    closed
}

#[tokio::test]
async fn publisher_and_subscription_reconnect_after_the_broker_drops_them() {
    let t = TestBus::start().await;
    let mut sub = t.bus.subscribe(t.spec("gateway", QueueKind::Exclusive, &["#"]));
    assert!(sub.wait_ready(Duration::from_secs(10)).await);

    assert_eq!(close_connections_named(t.bus.topology().prefix()), 2, "publisher and subscription connections");
    let Bus::Amqp(amqp) = &t.bus else { unreachable!() };
    // Both sides notice the loss and come back by themselves.
    eventually("the bus to recover", Duration::from_secs(15), || async {
        let (connected, ready) = (amqp.is_connected(), sub.is_ready());
        if !(connected && ready) {
            return Err(format!("publisher connected: {connected}, subscription ready: {ready}"));
        }
        let published = t.bus.publish(Exchange::Notifications, "all.normal", Bytes::from_static(b"after")).await;
        published.map_err(|err| format!("a publish failed: {err}"))
    })
    .await;
    assert_eq!(next_payload(&mut sub).await.1, Bytes::from_static(b"after"));
    t.cleanup(&[]).await;
}

/// Publishes from many tasks on several threads into an ingress queue that a slow drainer keeps
/// near its bound, so publishes keep crossing between accepted and refused: every publish answered
/// `Ok` must be in the queue exactly once, and none answered `QueueFull` may be.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishes_into_a_full_ingress_are_answered_truthfully() {
    use std::collections::HashMap;
    let t = TestBus::start_with_backlog(20).await;
    let mut ingress = t.bus.subscribe(SubscriptionSpec {
        queue: bus::INGRESS.into(),
        kind: QueueKind::Durable,
        exchange: Exchange::Ingress,
        bindings: Vec::new(),
    });
    assert!(ingress.wait_ready(Duration::from_secs(10)).await);
    // The drainer takes one message every few hundred microseconds: the queue stays about full.
    let drainer = tokio::spawn(async move {
        let mut seen: HashMap<Bytes, usize> = HashMap::new();
        while let Ok(Some(incoming)) = tokio::time::timeout(Duration::from_secs(3), ingress.next()).await {
            *seen.entry(incoming.payload.clone()).or_default() += 1;
            incoming.ack().await;
            // Pacing, not waiting: a slow drainer is the scenario.
            tokio::time::sleep(Duration::from_micros(300)).await;
        }
        seen
    });
    let publishers: Vec<_> = (0..32)
        .map(|task| {
            let bus = t.bus.clone();
            tokio::spawn(async move {
                let (mut accepted, mut refused) = (Vec::new(), Vec::new());
                for n in 0..60 {
                    let payload = Bytes::from(format!("{task}-{n}"));
                    match bus.publish(Exchange::Ingress, "custom.normal", payload.clone()).await {
                        Ok(()) => accepted.push(payload),
                        Err(bus::BusError::QueueFull) => refused.push(payload),
                        Err(other) => panic!("unexpected failure: {other}"),
                    }
                }
                (accepted, refused)
            })
        })
        .collect();
    let (mut accepted, mut refused) = (Vec::new(), Vec::new());
    for publisher in publishers {
        let (a, r) = publisher.await.unwrap();
        accepted.extend(a);
        refused.extend(r);
    }
    let seen = drainer.await.unwrap();
    assert!(!refused.is_empty(), "the ingress never overflowed; the test proves nothing");
    let lost: Vec<_> = accepted.iter().filter(|p| !seen.contains_key(*p)).collect();
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    let refused_but_queued: Vec<_> = refused.iter().filter(|p| seen.contains_key(*p)).collect();
    assert!(
        lost.is_empty() && doubled.is_empty() && refused_but_queued.is_empty(),
        "{} accepted, {} refused: lost {lost:?}, doubled {doubled:?}, refused but queued {refused_but_queued:?}",
        accepted.len(),
        refused.len()
    );
    t.cleanup(&[]).await;
}

#[tokio::test]
async fn a_delayed_message_reaches_its_exchange_after_its_delay_and_not_before() {
    let t = TestBus::start().await;
    let spec =
        SubscriptionSpec { exchange: Exchange::Mobile, ..t.spec("mobile-worker", QueueKind::Durable, &["send"]) };
    let mut worker = t.bus.subscribe(spec);
    assert!(worker.wait_ready(Duration::from_secs(10)).await);
    let started = std::time::Instant::now();
    t.bus
        .publish_delayed(Exchange::Mobile, "send", Bytes::from_static(b"later"), Duration::from_millis(600))
        .await
        .unwrap();
    t.bus.publish(Exchange::Mobile, "send", Bytes::from_static(b"now")).await.unwrap();
    // Another routing key is not this subscription's, delayed or not.
    t.bus
        .publish_delayed(Exchange::Mobile, "other", Bytes::from_static(b"no"), Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(next_payload(&mut worker).await, ("send".to_owned(), Bytes::from_static(b"now")));
    assert_eq!(next_payload(&mut worker).await, ("send".to_owned(), Bytes::from_static(b"later")));
    assert!(started.elapsed() >= Duration::from_millis(600), "delivered after {:?}", started.elapsed());
    // The same delay again uses the queue declared the first time.
    t.bus
        .publish_delayed(Exchange::Mobile, "send", Bytes::from_static(b"again"), Duration::from_millis(600))
        .await
        .unwrap();
    assert_eq!(next_payload(&mut worker).await.1, Bytes::from_static(b"again"));
    drop(worker);
    t.cleanup(&["mobile-worker", "delay.mobile.send.600", "delay.mobile.other.100"]).await;
}

/// The type RabbitMQ gives each queue whose name starts with `prefix`, by name.
fn queue_types(prefix: &str) -> std::collections::BTreeMap<String, String> {
    let listed = std::process::Command::new("rabbitmqctl")
        .args(["list_queues", "--quiet", "--formatter", "json", "name", "type"])
        .output()
        .expect("rabbitmqctl is needed to read queue types");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let queues: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    queues
        .iter()
        .filter_map(|q| Some((q["name"].as_str()?.to_owned(), q["type"].as_str()?.to_owned())))
        .filter(|(name, _)| name.starts_with(prefix))
        .collect()
}

#[tokio::test]
async fn durable_queues_are_quorum_queues_and_one_already_there_keeps_its_type() {
    let t = TestBus::start().await;
    // A queue an earlier Herald declared classic, before quorum queues were the default.
    let legacy = t.bus.topology().queue("legacy");
    let conn = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(legacy.as_str().into(), durable, FieldTable::default()).await.unwrap();
    conn.close(200, "done".into()).await.unwrap();

    let events =
        |queue: &str| SubscriptionSpec { exchange: Exchange::Events, ..t.spec(queue, QueueKind::Durable, &["#"]) };
    let mut writer = t.bus.subscribe(events("writer"));
    let mut old = t.bus.subscribe(events("legacy"));
    let mut gateway = t.bus.subscribe(t.spec("gateway", QueueKind::Exclusive, &["#"]));
    for sub in [&mut writer, &mut old, &mut gateway] {
        assert!(sub.wait_ready(Duration::from_secs(10)).await, "a subscription did not start");
    }
    let delayed = Duration::from_millis(100);
    t.bus.publish_delayed(Exchange::Events, "read", Bytes::from_static(b"later"), delayed).await.unwrap();
    t.bus.publish(Exchange::Events, "read", Bytes::from_static(b"now")).await.unwrap();
    t.bus.publish(Exchange::Notifications, "all.normal", Bytes::from_static(b"notice")).await.unwrap();
    for sub in [&mut writer, &mut old] {
        assert_eq!(next_payload(sub).await.1, Bytes::from_static(b"now"));
        assert_eq!(next_payload(sub).await.1, Bytes::from_static(b"later"));
    }
    assert_eq!(next_payload(&mut gateway).await.1, Bytes::from_static(b"notice"));

    let prefix = t.bus.topology().prefix().to_owned();
    let types = queue_types(&prefix);
    let type_of = |name: &str| types.get(name).map(String::as_str);
    for quorum in [
        t.bus.topology().queue("writer"),
        t.bus.topology().ingress_queue(),
        t.bus.topology().dead_letter_queue(),
        t.bus.topology().delay_queue(Exchange::Events, "read", 100),
    ] {
        assert_eq!(type_of(&quorum), Some("quorum"), "{quorum}: {types:?}");
    }
    assert_eq!(type_of(&legacy), Some("classic"), "{types:?}");
    let own = types.iter().find(|(name, _)| name.starts_with(&t.bus.topology().queue("gateway")));
    assert_eq!(own.map(|(_, kind)| kind.as_str()), Some("classic"), "a gateway's own queue: {types:?}");
    drop((writer, old, gateway));
    t.cleanup(&["writer", "legacy", "delay.events.read.100"]).await;
}

#[tokio::test]
async fn a_list_of_cluster_nodes_connects_to_the_first_that_answers() {
    runtime::install_crypto_provider();
    // A node that is down first, then the broker: every connection, the publisher's and each
    // subscription's, gets past the dead address.
    let settings = BusSettings {
        url: format!("amqp://guest:guest@127.0.0.1:1/%2f, {}", amqp_url()).parse().unwrap(),
        prefix: format!("test-bus-{}", uuid::Uuid::new_v4().simple()),
        ..BusSettings::default()
    };
    let shutdown = CancellationToken::new();
    let bus = Bus::start(&settings, shutdown.clone());
    let spec = SubscriptionSpec {
        queue: "writer".into(),
        kind: QueueKind::Durable,
        exchange: Exchange::Events,
        bindings: vec!["#".into()],
    };
    let mut writer = bus.subscribe(spec);
    assert!(writer.wait_ready(Duration::from_secs(15)).await, "the subscription did not get past the dead node");
    eventually("the publisher to connect", Duration::from_secs(15), || async {
        bus.publish(Exchange::Events, "delivered", Bytes::from_static(b"through")).await.map_err(|err| err.to_string())
    })
    .await;
    assert_eq!(next_payload(&mut writer).await.1, Bytes::from_static(b"through"));
    drop(writer);
    let t = TestBus { bus, shutdown };
    t.cleanup(&["writer"]).await;
}

/// A queue of the test's own bound to every notice, read with lapin directly: what the broker
/// itself carries (bundles included), beside what a subscription makes of it.
async fn raw_notifications_queue(t: &TestBus) -> (lapin::Connection, lapin::Channel, String) {
    let conn = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let name = format!("{}.raw", t.bus.topology().queue("tap"));
    let exclusive = QueueDeclareOptions { exclusive: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(name.as_str().into(), exclusive, FieldTable::default()).await.unwrap();
    let exchange = t.bus.topology().exchange(Exchange::Notifications);
    let bind = lapin::options::QueueBindOptions::default();
    channel.queue_bind(name.as_str().into(), exchange.into(), "#".into(), bind, FieldTable::default()).await.unwrap();
    (conn, channel, name)
}

async fn ready_messages(channel: &lapin::Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(queue.into(), passive, FieldTable::default()).await.unwrap().message_count()
}

#[tokio::test]
async fn a_backlog_moves_on_in_bundles_that_consumers_take_apart_in_order() {
    let t = TestBus::start().await;
    let mut writer = t.bus.subscribe(t.spec("writer", QueueKind::Durable, &["#"]));
    assert!(writer.wait_ready(Duration::from_secs(10)).await);
    let (_conn, raw, raw_queue) = raw_notifications_queue(&t).await;

    // A backlog waits while no dispatcher runs: two runs of one routing key around another.
    let keys: Vec<&str> = (0..150).map(|n| if (60..70).contains(&n) { "all.high" } else { "custom.normal" }).collect();
    for (n, key) in keys.iter().enumerate() {
        t.bus.publish(Exchange::Ingress, key, Bytes::from(format!("{{\"n\":{n}}}"))).await.unwrap();
    }
    let dispatcher = CancellationToken::new();
    t.bus.start_dispatcher(dispatcher.clone());
    for (n, key) in keys.iter().enumerate() {
        assert_eq!(next_payload(&mut writer).await, ((*key).to_owned(), Bytes::from(format!("{{\"n\":{n}}}"))));
    }
    let carried = ready_messages(&raw, &raw_queue).await;
    assert!((3..150).contains(&carried), "{carried} messages carried 150 notices");
    // Every bundle was acknowledged once its parts were: nothing comes again.
    assert!(tokio::time::timeout(Duration::from_millis(300), writer.next()).await.is_err(), "a notice came twice");
    dispatcher.cancel();
    drop(writer);
    t.cleanup(&["writer"]).await;
}

#[tokio::test]
async fn a_part_requeued_brings_its_bundle_back_and_a_part_dead_lettered_goes_alone() {
    let t = TestBus::start().await;
    let mut first = t.bus.subscribe(t.spec("worker", QueueKind::Durable, &["#"]));
    assert!(first.wait_ready(Duration::from_secs(10)).await);
    let (_conn, raw, raw_queue) = raw_notifications_queue(&t).await;
    for part in ["a", "b", "c"] {
        t.bus.publish(Exchange::Ingress, "custom.normal", Bytes::from(part)).await.unwrap();
    }
    let dispatcher = CancellationToken::new();
    t.bus.start_dispatcher(dispatcher.clone());
    eventually("the notices to be moved on", Duration::from_secs(10), || async {
        let carried = ready_messages(&raw, &raw_queue).await;
        holds(carried >= 1, carried)
    })
    .await;
    // Wait until the dispatcher is done with the three, however they were carried.
    let mut taken = Vec::new();
    for _ in 0..3 {
        taken.push(tokio::time::timeout(Duration::from_secs(10), first.next()).await.unwrap().unwrap());
    }
    let bundled = ready_messages(&raw, &raw_queue).await == 1;
    let payloads: Vec<Bytes> = taken.iter().map(|incoming| incoming.payload.clone()).collect();
    assert_eq!(payloads, ["a", "b", "c"].map(Bytes::from));
    let mut taken = taken.into_iter();
    let (a, b, c) = (taken.next().unwrap(), taken.next().unwrap(), taken.next().unwrap());
    a.ack().await;
    b.reject(true).await;
    c.ack().await;
    // Requeued: "b" again, with the parts that travelled in its bundle ("a" and "c" too where
    // the three went as one message; how the dispatcher cut them depends on timing).
    let mut again = Vec::new();
    while let Ok(Some(incoming)) = tokio::time::timeout(Duration::from_millis(500), first.next()).await {
        assert!(incoming.redelivered);
        again.push(incoming);
    }
    let payloads: Vec<Bytes> = again.iter().map(|incoming| incoming.payload.clone()).collect();
    let expected: Vec<Bytes> = if bundled {
        ["a", "b", "c"].map(Bytes::from).to_vec()
    } else {
        let all = ["a", "b", "c"].map(Bytes::from);
        all.iter().filter(|p| payloads.contains(p)).cloned().collect()
    };
    assert!(payloads.contains(&Bytes::from("b")), "{payloads:?}");
    assert_eq!(payloads, expected, "in order, and all three where they went as one bundle");
    for incoming in again {
        if incoming.payload == "b" {
            t.bus.dead_letter(incoming, "poisoned").await;
        } else {
            incoming.ack().await;
        }
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(500), first.next()).await.is_err(),
        "settled, yet it came again"
    );
    assert_eq!(t.bus.dead_lettered(), 1);
    let dead = raw
        .basic_get(t.bus.topology().dead_letter_queue().as_str().into(), lapin::options::BasicGetOptions::default())
        .await
        .unwrap()
        .expect("the dead letter");
    assert_eq!(dead.delivery.data, b"b", "the dead-lettered part alone");
    dispatcher.cancel();
    drop(first);
    t.cleanup(&["worker"]).await;
}
