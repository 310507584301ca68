//! The settings sections every process shares (`[http]`, `[jwt]`, `[log]`, `[time]`). Every
//! other section lives with what it configures
//! (`bus::BusSettings`, `state::RedisSettings`, `records::RecordsSettings`, ...). A section's keys
//! are `<section>.<key>` in the TOML file and `HERALD_<SECTION>_<KEY>` in the environment.

use crate::config::ConfigError;
use model::TimeFormat;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::net::SocketAddr;

/// The signing secret used when none is configured. Fine on a laptop, refused nowhere, and
/// warned about at start-up.
pub const DEVELOPMENT_JWT_SECRET: &str = "herald-development-secret-change-me";

/// Where and how the HTTP server listens (`[http]`, `HERALD_HTTP_*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Connections the kernel may hold waiting to be accepted (the listen backlog); the kernel
    /// caps it at `net.core.somaxconn`. A burst of reconnecting clients beyond it waits for a
    /// retransmitted SYN, seconds later.
    pub backlog: u32,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Seconds in-flight requests get to finish at shutdown.
    pub shutdown_timeout_secs: u64,
    /// Proxies whose `X-Forwarded-For` is believed (a load balancer, an ingress controller);
    /// from anyone else the header is ignored and the peer address is the client's.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 0,
            backlog: 4096,
            max_body_bytes: 64 * 1024,
            shutdown_timeout_secs: 10,
            trusted_proxies: Vec::new(),
        }
    }
}

impl HttpSettings {
    /// Rejects values the server cannot run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::invalid("http.max_body_bytes", "must be at least 1024"));
        }
        if !(1..=65_535).contains(&self.backlog) {
            return Err(ConfigError::invalid("http.backlog", "must be 1 to 65535"));
        }
        Ok(())
    }
}

/// How tokens are verified (`[jwt]`, `HERALD_JWT_*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtSettings {
    /// The HS256 secret.
    #[serde(serialize_with = "serialize_secret", deserialize_with = "deserialize_secret")]
    pub secret: SecretString,
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// The required `iss` claim, if any.
    pub issuer: Option<String>,
    /// The required `aud` claim, if any.
    pub audience: Option<String>,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self { secret: SecretString::from(DEVELOPMENT_JWT_SECRET), leeway_secs: 30, issuer: None, audience: None }
    }
}

impl JwtSettings {
    /// Whether the development secret is in use.
    pub fn uses_development_secret(&self) -> bool {
        self.secret.expose_secret() == DEVELOPMENT_JWT_SECRET
    }

    /// Rejects secrets too short to be safe.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.secret.expose_secret().len() < 16 {
            return Err(ConfigError::invalid("jwt.secret", "must be at least 16 bytes"));
        }
        Ok(())
    }
}

fn deserialize_secret<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    string_like(d).map(SecretString::from)
}

/// Reads a string, also from the number or boolean that an environment value such as
/// `HERALD_JWT_SECRET=1234567890123456` is parsed into.
pub fn string_like<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
        Bool(bool),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Text(s) => s,
        Raw::Unsigned(n) => n.to_string(),
        Raw::Signed(n) => n.to_string(),
        Raw::Float(n) => n.to_string(),
        Raw::Bool(b) => b.to_string(),
    })
}

fn serialize_secret<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    // Only used to seed the configuration's defaults layer.
    s.serialize_str(secret.expose_secret())
}

/// Log output (`[log]`, `HERALD_LOG_*`); `RUST_LOG`, when set, overrides `level`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `info,ws_gateway=debug`.
    pub level: String,
    /// Where spans go: an OTLP/HTTP collector's base URL (`http://otel-collector:4318`; spans
    /// are posted to `<url>/v1/traces`). Empty (the default): none are exported, though trace
    /// ids are still made and carried across the bus.
    pub otlp_endpoint: String,
    /// How spans are encoded for the collector.
    pub otlp_protocol: OtlpProtocol,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".to_owned(),
            otlp_endpoint: String::new(),
            otlp_protocol: OtlpProtocol::Protobuf,
        }
    }
}

/// The OTLP/HTTP encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// `application/x-protobuf`, what collectors expect by default.
    Protobuf,
    /// `application/json`.
    Json,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// How times are rendered (`[time]`, `HERALD_TIME_*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeSettings {
    /// The UTC offset of every rendered time, e.g. `+08:00`.
    pub utc_offset: String,
}

impl Default for TimeSettings {
    fn default() -> Self {
        Self { utc_offset: "+00:00".to_owned() }
    }
}

impl TimeSettings {
    /// The time format these settings describe.
    pub fn format(&self) -> Result<TimeFormat, ConfigError> {
        TimeFormat::parse_offset(&self.utc_offset)
            .map(TimeFormat::new)
            .map_err(|reason| ConfigError::invalid("time.utc_offset", reason))
    }
}

/// A URL without its password, for logs: `amqp://user:***@host/vhost`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
