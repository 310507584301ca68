//! The mobile-push-worker's settings (`[mobile]`, `HERALD_MOBILE_*`).

use crate::provider::ProviderTimeouts;
use runtime::ConfigError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How the worker sends (`[mobile]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MobileSettings {
    /// Sends one worker replica makes at once (its queue's deliveries in hand).
    pub concurrency: u32,
    /// The delay before each retry of a failed send, in milliseconds: one entry per retry, so
    /// the default is three retries (5 s, 30 s, 2 min) after the first attempt, then the dead
    /// letter queue.
    pub retry_delays_ms: Vec<u64>,
    /// Time to connect to the provider.
    pub connect_timeout_ms: u64,
    /// Time for a whole provider call, answer included.
    pub timeout_ms: u64,
    /// FCM (HTTP v1) for Android devices: the path of a service account's JSON key file (a
    /// mounted secret), or `env:NAME` of a variable holding the key. Empty: Android devices go
    /// to the push config API's URL like the others. Settings set through the push config API
    /// (`/api/message_push/config/providers/fcm`) take the place of all the `fcm_*` ones.
    pub fcm_credentials_file: String,
    /// The FCM project; empty means the key file's `project_id`.
    pub fcm_project_id: String,
    /// FCM's base URL (a test points it at a mock).
    pub fcm_url: String,
    /// APNs for iOS devices registered with an APNs device token: the path of the team's `.p8`
    /// signing key (a mounted secret), or `env:NAME`. Empty: iOS devices go to the push config
    /// API's URL. The push config API's settings take the place of all the `apns_*` ones.
    pub apns_key_file: String,
    /// The signing key's id.
    pub apns_key_id: String,
    /// The Apple developer team's id.
    pub apns_team_id: String,
    /// The app's bundle id (`apns-topic`).
    pub apns_topic: String,
    /// APNs's base URL (`https://api.sandbox.push.apple.com` for development builds).
    pub apns_url: String,
    /// How long a provider's sends stop after it refused Herald's credential, in milliseconds;
    /// then one send tries again.
    pub credential_pause_ms: u64,
    /// Web Push for browsers (`web` devices): the path of the VAPID private key (a mounted
    /// secret: PKCS#8 PEM, or the raw key in base64url as `web-push generate-vapid-keys` prints
    /// it), or `env:NAME`. Empty: web devices get nothing. The push config API's settings take
    /// the place of all the `web_push_*` ones.
    pub web_push_vapid_key_file: String,
    /// The operator's contact the push services see (`mailto:...` or `https://...`); needed
    /// with the key.
    pub web_push_subject: String,
    /// How long a push service keeps a push for a browser that is offline, in seconds (at most
    /// a day; also the VAPID token's lifetime).
    pub web_push_ttl_secs: u64,
    /// The push services sent to: hosts, or `.domain` for every host under it. An endpoint
    /// elsewhere is never called (it came from a browser).
    pub web_push_hosts: Vec<String>,
    /// How often the worker reads the providers' settings (the push config API's) and their
    /// secrets again, switching to the ones that changed, in milliseconds.
    pub provider_reload_ms: u64,
}

impl Default for MobileSettings {
    fn default() -> Self {
        Self {
            concurrency: 16,
            retry_delays_ms: vec![5_000, 30_000, 120_000],
            connect_timeout_ms: 2_000,
            timeout_ms: 5_000,
            fcm_credentials_file: String::new(),
            fcm_project_id: String::new(),
            fcm_url: crate::provider::fcm::DEFAULT_URL.to_owned(),
            apns_key_file: String::new(),
            apns_key_id: String::new(),
            apns_team_id: String::new(),
            apns_topic: String::new(),
            apns_url: crate::provider::apns::DEFAULT_URL.to_owned(),
            credential_pause_ms: 60_000,
            web_push_vapid_key_file: String::new(),
            web_push_subject: String::new(),
            web_push_ttl_secs: 12 * 3600,
            web_push_hosts: crate::provider::webpush::DEFAULT_HOSTS.map(str::to_owned).to_vec(),
            provider_reload_ms: 5_000,
        }
    }
}

impl MobileSettings {
    /// Rejects values the worker cannot run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=1024).contains(&self.concurrency) {
            return Err(ConfigError::invalid("mobile.concurrency", "must be 1 to 1024"));
        }
        if self.retry_delays_ms.len() > 10 || self.retry_delays_ms.iter().any(|&ms| ms == 0 || ms > 86_400_000) {
            return Err(ConfigError::invalid(
                "mobile.retry_delays_ms",
                "must hold at most 10 delays, each 1 ms to 24 h",
            ));
        }
        if self.connect_timeout_ms == 0 || self.timeout_ms == 0 {
            return Err(ConfigError::invalid("mobile.timeout_ms", "timeouts must be positive"));
        }
        if !(self.fcm_url.starts_with("https://") || self.fcm_url.starts_with("http://")) {
            return Err(ConfigError::invalid("mobile.fcm_url", "must be an http:// or https:// URL"));
        }
        if !(self.apns_url.starts_with("https://") || self.apns_url.starts_with("http://")) {
            return Err(ConfigError::invalid("mobile.apns_url", "must be an http:// or https:// URL"));
        }
        if !self.apns_key_file.is_empty()
            && [&self.apns_key_id, &self.apns_team_id, &self.apns_topic].iter().any(|v| v.is_empty())
        {
            return Err(ConfigError::invalid(
                "mobile.apns_key_file",
                "needs mobile.apns_key_id, mobile.apns_team_id and mobile.apns_topic",
            ));
        }
        let contact = self.web_push_subject.starts_with("mailto:") || self.web_push_subject.starts_with("https://");
        if !self.web_push_vapid_key_file.is_empty() && !contact {
            return Err(ConfigError::invalid(
                "mobile.web_push_subject",
                "must be a mailto: or https:// contact when mobile.web_push_vapid_key_file is set",
            ));
        }
        if !(1..=86_400).contains(&self.web_push_ttl_secs) {
            return Err(ConfigError::invalid("mobile.web_push_ttl_secs", "must be 1 s to 24 h"));
        }
        if self
            .web_push_hosts
            .iter()
            .any(|host| host.trim_start_matches('.').is_empty() || host.contains(['/', ' ', ':']))
        {
            return Err(ConfigError::invalid(
                "mobile.web_push_hosts",
                "must hold host names (or .domain), no ports or paths",
            ));
        }
        if !(100..=3_600_000).contains(&self.provider_reload_ms) {
            return Err(ConfigError::invalid("mobile.provider_reload_ms", "must be 100 ms to 1 h"));
        }
        if !(1_000..=86_400_000).contains(&self.credential_pause_ms) {
            return Err(ConfigError::invalid("mobile.credential_pause_ms", "must be 1 s to 24 h"));
        }
        Ok(())
    }

    /// The provider's timeouts.
    pub fn timeouts(&self) -> ProviderTimeouts {
        ProviderTimeouts {
            connect: Duration::from_millis(self.connect_timeout_ms),
            total: Duration::from_millis(self.timeout_ms),
        }
    }

    /// How often the providers' settings are read again.
    pub fn provider_reload(&self) -> Duration {
        Duration::from_millis(self.provider_reload_ms)
    }

    /// The pause after a refused credential.
    pub fn credential_pause(&self) -> Duration {
        Duration::from_millis(self.credential_pause_ms)
    }

    /// Attempts a send gets: the first and one per retry delay.
    pub fn max_attempts(&self) -> i32 {
        1 + i32::try_from(self.retry_delays_ms.len()).unwrap_or(0)
    }
}
