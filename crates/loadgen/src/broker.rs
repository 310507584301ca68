//! `herald-loadgen broker`: RabbitMQ's own ceiling for what Herald's API does per notice, a
//! persistent publish to a durable queue with a publisher confirm, with nothing of Herald's in
//! the way. A fresh queue with a unique name is declared, filled for `--duration-secs` with at
//! most `--window` unconfirmed publishes in flight, and deleted, even when the run fails.

use crate::OutputArgs;
use crate::ingest::open_channel;
use crate::result::{BrokerRun, Run, RunRecord, System};
use anyhow::{Result, bail, ensure};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation};
use std::time::{Duration, Instant};

/// AMQP `delivery_mode` of a persistent message.
const PERSISTENT: u8 = 2;

/// `herald-loadgen broker`'s arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct BrokerArgs {
    /// RabbitMQ.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Unconfirmed publishes allowed in flight.
    #[arg(long, default_value_t = 256)]
    pub window: u32,
    /// Bytes per message (about one Herald envelope by default).
    #[arg(long, default_value_t = 600)]
    pub payload_bytes: u32,
    /// Output and labels.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs the broker measurement; a failure becomes an invalid record.
pub async fn run(args: &BrokerArgs) -> RunRecord {
    let started_unix = crate::unix_now();
    let mut measured = BrokerRun {
        window: args.window,
        payload_bytes: args.payload_bytes,
        duration_secs: args.duration_secs as f64,
        ..BrokerRun::default()
    };
    let queue = format!("loadgen-broker-{}", uuid::Uuid::new_v4());
    let outcome = measure(args, &queue, &mut measured).await;
    // The queue goes whatever happened, over a connection of its own (the first may be broken).
    let removed = delete_queue(&args.amqp_url, &queue).await;
    let failure = match (outcome, removed) {
        (Err(err), _) => Some(format!("{err:#}")),
        (Ok(()), Err(err)) => Some(format!("the queue {queue} could not be deleted: {err:#}")),
        (Ok(()), Ok(())) => None,
    };
    let invalid_reason = failure.or_else(|| {
        let mut reasons = Vec::new();
        if measured.confirmed == 0 {
            reasons.push("nothing confirmed".to_owned());
        }
        if measured.nacked > 0 {
            reasons.push(format!("{} publishes nacked", measured.nacked));
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    });
    println!(
        "broker RabbitMQ window={} payload={} B: {:.0} confirmed publishes/s ({} in {} s, {} nacked)",
        measured.window,
        measured.payload_bytes,
        measured.confirmed_per_sec,
        measured.confirmed,
        measured.duration_secs,
        measured.nacked
    );
    RunRecord {
        system: System::Rabbitmq,
        repeat: args.output.repeat,
        valid: invalid_reason.is_none(),
        invalid_reason,
        idle_gate: args.output.idle_gate,
        started_unix,
        run: Run::Broker(measured),
    }
}

async fn measure(args: &BrokerArgs, queue: &str, run: &mut BrokerRun) -> Result<()> {
    ensure!(args.window > 0 && args.duration_secs > 0, "--window and --duration-secs must be positive");
    let (_connection, channel) = open_channel(&args.amqp_url).await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(queue.into(), durable, FieldTable::default()).await?;
    let payload = vec![b'x'; args.payload_bytes as usize];
    let properties = BasicProperties::default().with_delivery_mode(PERSISTENT);
    let mut in_flight = FuturesUnordered::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration_secs);
    while Instant::now() < deadline {
        while in_flight.len() < args.window as usize {
            in_flight.push(publish(&channel, queue, &payload, properties.clone()).await?);
        }
        match in_flight.next().await {
            Some(Ok(Confirmation::Ack(_) | Confirmation::NotRequested)) if Instant::now() < deadline => {
                run.confirmed += 1
            }
            Some(Ok(Confirmation::Nack(_))) => run.nacked += 1,
            Some(Ok(_)) | None => {}
            Some(Err(err)) => bail!("a confirm failed: {err}"),
        }
    }
    run.confirmed_per_sec = run.confirmed as f64 / args.duration_secs as f64;
    Ok(())
}

async fn publish(
    channel: &Channel,
    queue: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<lapin::PublisherConfirm> {
    Ok(channel.basic_publish("".into(), queue.into(), BasicPublishOptions::default(), payload, properties).await?)
}

async fn delete_queue(url: &str, queue: &str) -> Result<()> {
    let (connection, channel) = open_channel(url).await?;
    channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await?;
    connection.close(200, "done".into()).await?;
    Ok(())
}
