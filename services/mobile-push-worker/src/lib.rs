//! mobile-push-worker: provider sends (reqwest), push logs, retries and device error counts.
//!
//! Being built in steps (issue 12). What exists: the provider client ([`provider`]), which
//! posts one send to the original's UniPush-style provider and classifies every answer, and
//! one attempt of one send ([`send`]): made once, logged once, with what it did to the device,
//! and counted in the worker's Prometheus metrics ([`metrics`], served at `/metrics`). The
//! component has nothing to consume yet: the `mobile-push-worker` role starts, serves
//! `/healthz` and `/readyz`, and stops cleanly.

pub mod metrics;
pub mod provider;
pub mod send;

use actix_web::{HttpResponse, web};
use http_server::Component;
use metrics::SendMetrics;

/// The worker, as a component of a process: its metrics at `/metrics`.
pub fn component(metrics: SendMetrics) -> Component {
    Component::new("mobile-push-worker").routes(move |cfg| {
        let metrics = metrics.clone();
        cfg.route(
            "/metrics",
            web::get().to(move || {
                let text = metrics.render();
                async move { HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text) }
            }),
        );
    })
}
