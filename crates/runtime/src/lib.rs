//! Process plumbing every Herald service shares: layered configuration, telemetry, JWT
//! verification and signal-driven shutdown. No sockets are bound here.

pub mod auth;
pub mod config;
pub mod retry;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod trace;

pub use auth::{AuthError, Claims, JwtIssuer, JwtVerifier, Role};
pub use config::{ConfigError, ConfigLoader};
pub use retry::{Backoff, RetryPolicy};
pub use settings::{
    HttpSettings, JwtSettings, LogFormat, LogSettings, OtlpProtocol, TimeSettings, redact_url, string_like,
};
pub use shutdown::shutdown_on_signals;

/// Installs rustls' aws-lc-rs crypto provider for the process.
///
/// Two providers end up in the dependency tree (ring and aws-lc-rs); rustls panics when it
/// must choose, so every binary and test harness calls this first. Calling it twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Logs a warning when the development JWT secret is in use.
pub fn warn_if_development_secret(jwt: &JwtSettings) {
    if jwt.uses_development_secret() {
        tracing::warn!(
            "using the built-in development JWT secret: anyone can mint tokens. Set HERALD_JWT_SECRET in production."
        );
    }
}
