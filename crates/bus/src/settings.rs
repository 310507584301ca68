//! The bus's settings (`[bus]`, `HERALD_BUS_*`).

use runtime::{ConfigError, string_like};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The value of `bus.url` that names the in-process bus.
const IN_PROCESS: &str = "memory";

/// Which message bus `bus.url` names, parsed once when the settings are read.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum BusUrl {
    /// RabbitMQ at this `amqp://` or `amqps://` URL, or at several separated by commas: the
    /// nodes of one cluster, tried in turn on every (re)connection.
    Amqp(String),
    /// The in-process bus (`memory`), for one process: the all-in-one.
    InProcess,
}

impl TryFrom<String> for BusUrl {
    type Error = String;

    fn try_from(url: String) -> Result<Self, String> {
        if url == IN_PROCESS {
            Ok(Self::InProcess)
        } else if !url.is_empty()
            && url.split(',').map(str::trim).all(|one| one.starts_with("amqp://") || one.starts_with("amqps://"))
        {
            Ok(Self::Amqp(url))
        } else {
            Err("must be `memory`, an amqp:// or amqps:// URL, or several separated by commas (a cluster's nodes)"
                .to_owned())
        }
    }
}

impl std::str::FromStr for BusUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        Self::try_from(url.to_owned())
    }
}

impl From<BusUrl> for String {
    fn from(url: BusUrl) -> Self {
        match url {
            BusUrl::Amqp(url) => url,
            BusUrl::InProcess => IN_PROCESS.to_owned(),
        }
    }
}

/// The URL without its password, for logs and `Debug`.
impl fmt::Debug for BusUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InProcess => f.write_str(IN_PROCESS),
            Self::Amqp(_) => {
                f.write_str(&self.addresses().iter().map(|one| runtime::redact_url(one)).collect::<Vec<_>>().join(","))
            }
        }
    }
}

impl BusUrl {
    /// The broker addresses to try, in order (none for the in-process bus).
    pub fn addresses(&self) -> Vec<&str> {
        match self {
            Self::Amqp(urls) => urls.split(',').map(str::trim).collect(),
            Self::InProcess => Vec::new(),
        }
    }
}

/// The message bus (`[bus]`, `HERALD_BUS_*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusSettings {
    /// `amqp://user:pass@host:port/vhost` for RabbitMQ, or `memory` for the in-process bus.
    pub url: BusUrl,
    /// Prefix of every exchange and queue name, so deployments and tests can share a broker.
    #[serde(deserialize_with = "string_like")]
    pub prefix: String,
    /// Milliseconds a publish may wait to be handed to the broker before it is refused
    /// (nothing was sent then).
    pub publish_timeout_ms: u64,
    /// Milliseconds a message handed to the broker may wait for its confirm. Past it the
    /// outcome is unknown (the API says so); a healthy broker confirms in milliseconds.
    pub confirm_timeout_ms: u64,
    /// Deliveries a consumer may hold unacknowledged.
    pub prefetch: u16,
    /// Normal-priority notices the ingress queue may hold before publishing is refused with
    /// QUEUE_FULL (spec 8.2); urgent notices bypass it. Fixed when the queue is first declared:
    /// changing it needs `<prefix>.ingress` deleted (or a broker policy).
    pub backlog: u32,
    /// Whether this process moves notices from the ingress queue to the notifications exchange.
    /// On in every ingest-api replica by default; they share the work.
    pub dispatch: bool,
    /// Milliseconds of the first reconnection delay; it doubles up to `reconnect_max_ms`.
    pub reconnect_min_ms: u64,
    /// The longest reconnection delay, in milliseconds.
    pub reconnect_max_ms: u64,
    /// Whether durable queues are declared as quorum queues (replicated over a cluster's nodes,
    /// surviving the loss of a minority of them) rather than classic ones, which live on one
    /// node. The type is fixed when a queue is first declared: a queue that already exists with
    /// the other type keeps it (a warning says so) until it is drained and deleted. A gateway's
    /// own queue is always classic (exclusive to its connection).
    pub quorum_queues: bool,
    /// Notices the dispatcher may move on as one message (a bundle: consecutive ingress notices
    /// with the same routing key, at most 64 KiB), which consumers take apart again; 1 moves
    /// each on its own. Bundles cut the broker's work per notice under load; consumers of a
    /// release before bundles cannot read them, so upgrade the consumers first (or set 1 until
    /// they are).
    pub bundle_max: u16,
}

impl Default for BusSettings {
    fn default() -> Self {
        Self {
            url: BusUrl::Amqp("amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
            prefix: "herald".to_owned(),
            publish_timeout_ms: 2000,
            confirm_timeout_ms: 30_000,
            prefetch: 256,
            backlog: 1000,
            dispatch: true,
            reconnect_min_ms: 100,
            reconnect_max_ms: 5000,
            quorum_queues: true,
            bundle_max: 64,
        }
    }
}

impl BusSettings {
    /// The in-process bus, with every other setting at its default (tests, the all-in-one).
    pub fn in_process() -> Self {
        Self { url: BusUrl::InProcess, ..Self::default() }
    }

    /// Rejects an unusable bus configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let prefix_ok = !self.prefix.is_empty()
            && self.prefix.len() <= 100
            && self.prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !prefix_ok {
            return Err(ConfigError::invalid("bus.prefix", "must be 1-100 characters of a-z, A-Z, 0-9, - _ ."));
        }
        if self.publish_timeout_ms == 0 || self.confirm_timeout_ms == 0 || self.prefetch == 0 || self.backlog == 0 {
            return Err(ConfigError::invalid(
                "bus.publish_timeout_ms",
                "timeouts, prefetch and backlog must be positive",
            ));
        }
        if self.bundle_max == 0 {
            return Err(ConfigError::invalid("bus.bundle_max", "must be positive (1: no bundles)"));
        }
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            return Err(ConfigError::invalid(
                "bus.reconnect_max_ms",
                "must be at least bus.reconnect_min_ms, which must be positive",
            ));
        }
        Ok(())
    }

    /// How connections wait between attempts to reach the broker.
    pub fn reconnect_policy(&self) -> runtime::RetryPolicy {
        runtime::RetryPolicy::new(
            std::time::Duration::from_millis(self.reconnect_min_ms),
            std::time::Duration::from_millis(self.reconnect_max_ms),
        )
    }

    /// The longest a publish can take before its answer is known: handed over, then confirmed.
    pub fn publish_budget(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.publish_timeout_ms + self.confirm_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_parsed_once_into_a_backend() {
        assert_eq!("memory".parse::<BusUrl>(), Ok(BusUrl::InProcess));
        assert!(matches!("amqps://h/%2f".parse::<BusUrl>(), Ok(BusUrl::Amqp(_))));
        assert!("redis://x".parse::<BusUrl>().unwrap_err().contains("amqp://"));
        assert_eq!(format!("{:?}", BusUrl::Amqp("amqp://u:secret@h/%2f".into())), "amqp://u:***@h/%2f");
        let cluster: BusUrl = "amqp://u:p@a:5672/%2f, amqp://u:p@b:5672/%2f".parse().unwrap();
        assert_eq!(cluster.addresses(), ["amqp://u:p@a:5672/%2f", "amqp://u:p@b:5672/%2f"]);
        assert_eq!(format!("{cluster:?}"), "amqp://u:***@a:5672/%2f,amqp://u:***@b:5672/%2f");
        assert!("amqp://a/%2f,redis://b".parse::<BusUrl>().is_err());
        assert!("".parse::<BusUrl>().is_err());
    }

    #[test]
    fn a_refused_value_names_its_key() {
        let bus = BusSettings { prefix: "no spaces".into(), ..BusSettings::default() };
        assert!(bus.validate().unwrap_err().to_string().contains("bus.prefix"));
    }
}
