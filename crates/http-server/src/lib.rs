//! HTTP plumbing shared by Herald's services: the spec's failure envelope as an actix error,
//! JSON body limits that answer with the spec's codes, bearer-token extractors, `/healthz` and
//! `/readyz`, and serving a process's components until a shutdown token fires.
//!
//! The only crate besides `services/*` that knows actix-web.

mod auth;
mod client_ip;
mod component;
mod failure;
mod health;
pub mod metrics;
mod takeover;
mod text;

pub use auth::{AdminClaims, BearerClaims, bearer_token};
pub use client_ip::client_ip;
pub use component::{Component, Shared, bind, serve};
pub use failure::{Failure, failure_envelope, json_config, not_found, query};
pub use health::{Readiness, health_routes};
pub use metrics::Registry;
pub use takeover::{Takeover, Upgraded};
pub use text::check_claims;
