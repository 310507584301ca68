//! mobile-push-worker: provider sends (reqwest), push logs, retries and device error counts.
//!
//! Being built in steps (issue 12). What exists: the provider client ([`provider`]), which
//! posts one send to the original's UniPush-style provider and classifies every answer, and
//! one attempt of one send ([`send`]): made once, logged once, with what it did to the device.
//! The component has nothing to consume yet: the `mobile-push-worker` role starts, serves
//! `/healthz` and `/readyz`, and stops cleanly.

pub mod provider;
pub mod send;

use http_server::Component;

/// The worker, as a component of a process.
pub fn component() -> Component {
    Component::new("mobile-push-worker")
}
