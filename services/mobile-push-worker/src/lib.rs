//! mobile-push-worker: provider sends (reqwest), push logs, retries and device error counts.
//!
//! A skeleton for now: a component with nothing to do and nothing to depend on, so that the
//! `mobile-push-worker` role starts, serves `/healthz` and `/readyz`, and stops cleanly. Its work
//! lands with the mobile issue (see ARCHITECTURE.md).

use http_server::Component;

/// The worker, as a component of a process.
pub fn component() -> Component {
    Component::new("mobile-push-worker")
}
