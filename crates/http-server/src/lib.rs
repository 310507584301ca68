//! HTTP plumbing shared by Herald's services: the spec's failure envelope as an actix error,
//! JSON body limits that answer with the spec's codes, bearer-token extractors, `/healthz` and
//! `/readyz`, and serving an app until a shutdown token fires.
//!
//! The only crate besides `services/*` that knows actix-web.

mod auth;
mod client_ip;
mod failure;
mod health;
mod serve;
mod text;

pub use auth::{AdminClaims, BearerClaims, bearer_token};
pub use client_ip::client_ip;
pub use failure::{Failure, failure_envelope, json_config, not_found, query};
pub use health::{Readiness, health_routes};
pub use serve::{bind, serve};
pub use text::check_claims;
