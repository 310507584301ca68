//! The ingress dispatcher, a component of its own.
//!
//! Normal-priority notices are published into the bounded ingress queue (`<prefix>.ingress`),
//! whose bound is what refuses a burst with QUEUE_FULL (spec 8.2) instead of letting it grow
//! without end; urgent ones skip it. The dispatcher consumes that queue and republishes each
//! notice on the notifications exchange, under its target routing key, acknowledging it only
//! once the broker confirmed the republish: a dispatcher killed half-way loses nothing, the
//! broker redelivers. Every ingest-api replica runs one by default (`bus.dispatch`); they share
//! the queue. With it off, normal notices wait in the backlog (a paused consumer).

use bus::Bus;
use http_server::{Component, Readiness};
use tokio_util::sync::CancellationToken;

/// Starts the dispatcher on `bus` until `shutdown`; ready while it consumes the ingress queue,
/// whose depth it reports on `registry`.
pub fn component(bus: &Bus, registry: &http_server::Registry, shutdown: CancellationToken) -> Component {
    bus.report_depth(bus::Exchange::Ingress, bus::INGRESS, registry.queue_gauge(bus::INGRESS), shutdown.clone());
    let ready = bus.start_dispatcher(shutdown);
    Component::new("ingress-dispatcher")
        .readiness(Readiness::default().check("ingress_dispatcher", move || *ready.borrow()))
}
