//! Herald's one binary and its composition root.
//!
//! A process runs a list of roles ([`Role`]): `herald` with no argument runs all of them on
//! embedded defaults (the all-in-one: the in-process bus journaled in the database, live state in
//! the same database, SQLite by default, so that a newcomer needs no server and a restart loses
//! nothing accepted); `herald run ws-gateway` runs one role of the distributed deployment.
//!
//! [`run`] is the whole wiring: [`Deps::open`] opens what the roles use, once; each role starts
//! its components (routes, readiness, background tasks) on those; [`http_server::serve`] serves
//! them together with `/healthz` and `/readyz`.

mod deps;
mod role;
mod settings;

pub use deps::Deps;
pub use role::Role;
pub use settings::{Defaults, Settings};

use anyhow::Context;
use http_server::Component;
use std::net::TcpListener;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Starts `role`'s components on `deps`.
pub async fn start(
    role: Role,
    settings: &Settings,
    deps: &Deps,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<Component>> {
    let time = deps.shared.time;
    Ok(match role {
        Role::IngestApi => {
            let bus = deps.bus()?;
            let records = deps.records()?.clone();
            let api = ingest_api::IngestApi::new(
                bus.clone(),
                deps.stores()?.clone(),
                records,
                deps.mobile()?.clone(),
                time,
                &settings.limits,
                &settings.http,
            )
            .with_metrics(&deps.shared.metrics);
            let mut components = vec![api.component()];
            if settings.bus.dispatch {
                components.push(ingest_api::dispatcher::component(bus, &deps.shared.metrics, shutdown.clone()));
            } else {
                tracing::info!("ingress dispatcher off (bus.dispatch = false)");
            }
            components
        }
        Role::WsGateway => {
            let gateway = ws_gateway::Gateway::start(
                &settings.ws,
                &settings.http,
                (deps.shared.verifier.clone(), time),
                deps.bus()?,
                deps.stores()?.clone(),
                &deps.shared.metrics,
                shutdown.clone(),
            );
            vec![gateway.component()]
        }
        Role::MobilePushWorker => vec![
            mobile_push_worker::component(
                &settings.mobile,
                deps.bus()?,
                mobile_push_worker::WorkerStores {
                    mobile: deps.mobile()?.clone(),
                    directory: deps.directory()?.clone(),
                    receipts: deps.stores()?.receipts.clone(),
                },
                time,
                &deps.shared.metrics,
                shutdown.clone(),
            )
            .await
            .context("the push providers")?,
        ],
        Role::RecordWriter => vec![record_writer::RecordWriter::start(
            record_writer::Batching {
                size: settings.records.batch_size,
                linger: Duration::from_millis(settings.records.linger_ms),
            },
            deps.bus()?,
            deps.records()?.clone(),
            deps.directory()?.clone(),
            &deps.shared.metrics,
            shutdown.clone(),
        )],
        Role::Janitor => vec![
            janitor::Janitor::start(
                &settings.janitor,
                Duration::from_secs(settings.records.purge_interval_secs),
                janitor_context(settings, deps)?,
                shutdown.clone(),
            )
            .map_err(|err| anyhow::anyhow!(err))?,
        ],
    })
}

/// What the janitor's jobs work on, from `deps` (opened for the janitor role).
fn janitor_context(settings: &Settings, deps: &Deps) -> anyhow::Result<janitor::Context> {
    Ok(janitor::Context {
        records: deps.records()?.clone(),
        retention: records::Retention::of(&settings.records),
        mobile: deps.mobile()?.clone(),
        inbox: deps.inbox()?.clone(),
        rules: settings.janitor.device_rules(),
        device_chunk: janitor::DEVICE_CHUNK,
        leases: deps.leases()?.clone(),
        lease: settings.janitor.lease(),
        metrics: janitor::JanitorMetrics::on(&deps.shared.metrics),
    })
}

/// `herald janitor run-once [JOB]`: runs `jobs` now, by hand, under their leases (a job another
/// process is running is not run twice), printing one JSON line per job. Fails if any job was
/// held elsewhere or failed.
pub async fn janitor_run_once(settings: &Settings, jobs: &[janitor::Job]) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let deps = Deps::open(settings, &[Role::Janitor], &shutdown).await?;
    let context = janitor_context(settings, &deps)?;
    let mut failed = Vec::new();
    for (job, outcome) in janitor::run_once(&context, jobs).await {
        let line = match &outcome {
            Ok(janitor::Outcome::Ran(summary)) => {
                serde_json::json!({"job": job.as_str(), "ran": true, "changed": summary})
            }
            Ok(janitor::Outcome::Held { holder }) => {
                failed.push(format!("{job} is running in {holder}"));
                serde_json::json!({"job": job.as_str(), "ran": false, "held_by": holder})
            }
            Ok(janitor::Outcome::Done) => serde_json::json!({"job": job.as_str(), "ran": false}),
            Err(err) => {
                failed.push(err.clone());
                serde_json::json!({"job": job.as_str(), "ran": false, "error": err})
            }
        };
        println!("{line}");
    }
    shutdown.cancel();
    anyhow::ensure!(failed.is_empty(), "not every job ran: {}", failed.join("; "));
    Ok(())
}

/// Runs `roles` on `listener` until `shutdown`.
pub async fn run(
    settings: Settings,
    roles: &[Role],
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let deps = Deps::open(&settings, roles, &shutdown).await?;
    let mut components = Vec::new();
    for &role in roles {
        components.extend(start(role, &settings, &deps, &shutdown).await?);
    }
    // Every consumer is subscribed: what a previous run accepted and did not finish goes out now.
    let recovered = match deps.bus_if_open() {
        Some(bus) => bus.recover().await?,
        None => 0,
    };
    let addr = listener.local_addr()?;
    let names: Vec<&str> = roles.iter().map(|role| role.name()).collect();
    tracing::info!(
        %addr,
        roles = %names.join(","),
        bus = deps.describe_bus(),
        live_state = deps.describe_state(),
        database = %runtime::redact_url(&settings.database.url),
        recovered,
        "Herald listening"
    );
    if roles.contains(&Role::IngestApi) && roles.contains(&Role::WsGateway) {
        tracing::info!("send: POST http://{addr}/api/admin/system/notice; receive: WebSocket ws://{addr}/ws");
    }
    http_server::serve(listener, &settings.http, deps.shared.clone(), components, shutdown).await?;
    tracing::info!("Herald stopped");
    Ok(())
}
