//! `herald-loadgen`: the benchmark load generator. Each measuring subcommand prints a human
//! summary and, with `--json FILE`, writes one result; `report DIR` puts the results side by
//! side. See `docs/benchmarks.md`.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use loadgen::broker::BrokerArgs;
use loadgen::fanout::FanoutArgs;
use loadgen::idle::IdleArgs;
use loadgen::ingest::IngestArgs;
use loadgen::report::{MACHINE_FILE, Results};
use loadgen::result::MachineInfo;
use loadgen::soak::SoakArgs;
use std::path::PathBuf;

/// Herald's benchmark load generator: fan-out against Herald or nchan, ingestion, the broker's
/// ceiling, and the comparison report.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// N WebSocket clients and M broadcast notices: accept CPU, idle memory, CPU per delivery,
    /// latency POST->frame, loss and duplicates.
    Fanout(FanoutArgs),
    /// Closed-loop notice posting against Herald's API: accepted/s, latency, 503s, and the
    /// record-writer's lag.
    Ingest(IngestArgs),
    /// RabbitMQ's confirmed-publish ceiling on a fresh durable queue.
    Broker(BrokerArgs),
    /// A bounded soak: steady notices to online and offline users, reconnecting clients,
    /// receipts; the servers' memory, descriptors and queues sampled; every notice accounted for.
    Soak(SoakArgs),
    /// Wait until the machine is idle (prints `ok` or `timeout`; exits 0 either way).
    Idle(IdleArgs),
    /// Print the comparison table of every JSON result in a directory.
    Report {
        /// The results directory.
        dir: PathBuf,
    },
    /// Write the machine's description (CPU, kernel, commit) into a results directory.
    Machine {
        /// The results directory.
        dir: PathBuf,
        /// The git commit measured.
        #[arg(long, default_value = "unknown")]
        commit: String,
        /// Free text: the knobs of the run.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Print a free TCP port on 127.0.0.1 (for the servers the script starts).
    FreePort,
    /// Delete the RabbitMQ queues and exchanges of a Herald bus prefix (the gateways' queues
    /// are exclusive and go by themselves).
    CleanupAmqp {
        /// RabbitMQ.
        #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
        amqp_url: String,
        /// The `HERALD_BUS_PREFIX` to remove.
        #[arg(long)]
        prefix: String,
    },
}

fn main() -> Result<()> {
    runtime::install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Idle(args) => loadgen::idle::run(&args).map(|_| ()),
        Command::Report { dir } => {
            print!("{}", loadgen::report::render(&Results::load(&dir)?));
            Ok(())
        }
        Command::FreePort => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
            println!("{}", listener.local_addr()?.port());
            Ok(())
        }
        Command::Machine { dir, commit, note } => {
            let machine = MachineInfo::detect(commit, note);
            let path = dir.join(MACHINE_FILE);
            std::fs::write(&path, serde_json::to_string_pretty(&machine)? + "\n")
                .with_context(|| format!("writing {}", path.display()))
        }
        command => {
            // The clients, the pollers and the coordinator share two workers: the machine has
            // two cores, and the servers under test need them too.
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(measure(command))
        }
    }
}

async fn measure(command: Command) -> Result<()> {
    let (record, output) = match command {
        Command::Fanout(args) => (loadgen::fanout::run(&args).await, args.output),
        Command::Ingest(args) => (loadgen::ingest::run(&args).await, args.output),
        Command::Broker(args) => (loadgen::broker::run(&args).await, args.output),
        Command::CleanupAmqp { amqp_url, prefix } => return cleanup_amqp(amqp_url, prefix).await,
        Command::Soak(args) => {
            if !loadgen::soak::run(&args).await? {
                // The report says why.
                std::process::exit(1);
            }
            return Ok(());
        }
        Command::Idle(_) | Command::Report { .. } | Command::Machine { .. } | Command::FreePort => return Ok(()),
    };
    output.finish(&record)
}

/// Herald's own topology removal: the record-writer's durable queues (and their urgent lanes),
/// the ingress and dead-letter queues, and the two exchanges.
async fn cleanup_amqp(url: String, prefix: String) -> Result<()> {
    let settings =
        bus::BusSettings { url: bus::BusUrl::Amqp(url), prefix: prefix.clone(), ..bus::BusSettings::default() };
    settings.validate()?;
    let queues = ["records", "records-events", "mobile-push-worker", "mobile-push-notices"];
    bus::amqp::AmqpBus::remove_topology(&settings, &queues)
        .await
        .with_context(|| format!("removing the queues and exchanges of {prefix}"))?;
    println!("removed the queues and exchanges of {prefix}");
    Ok(())
}
