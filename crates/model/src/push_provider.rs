//! The push providers an admin configures through the push config API
//! (`/api/message_push/config/providers/{provider}`), as the API takes them and the database
//! keeps them (`message_push_config`, one row per provider, `config_type` 2, 3, 4).
//!
//! Settings name their secret (the FCM service account's key, the APNs `.p8` key, the VAPID key)
//! by reference, never by value: `file:/path` (a file the mobile-push-worker reads, a mounted
//! secret) or `env:NAME` (a variable of the worker's environment). The API never takes, stores or
//! shows key material, and the worker reads the secret anew when the settings or the secret
//! change.

use serde::{Deserialize, Serialize};

crate::closed_set! {
    /// A push provider configurable through the push config API.
    pub enum PushProvider {
        /// Firebase Cloud Messaging (HTTP v1), for Android devices.
        Fcm = "fcm",
        /// Apple's push service, for iPhones registered with an APNs device token.
        Apns = "apns",
        /// Web Push (VAPID), for browsers.
        WebPush = "web_push",
    }
}

impl PushProvider {
    /// Its row's `config_type` in `message_push_config` (1 is the original's provider URL).
    pub const fn config_type(self) -> i16 {
        match self {
            PushProvider::Fcm => 2,
            PushProvider::Apns => 3,
            PushProvider::WebPush => 4,
        }
    }

    /// The provider whose row is of `config_type`, if any.
    pub fn from_config_type(config_type: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|provider| provider.config_type() == config_type)
    }

    /// The name of the field that holds its secret's reference.
    pub const fn secret_field(self) -> &'static str {
        match self {
            PushProvider::Fcm => "credentials",
            PushProvider::Apns => "key",
            PushProvider::WebPush => "vapid_key",
        }
    }
}

/// Where a secret is read from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SecretRef {
    /// A file (a mounted secret), by its path.
    File(String),
    /// An environment variable of the process that reads it, by its name.
    Env(String),
}

impl SecretRef {
    /// The reference `raw` as the API takes it: `file:` and an absolute path, or `env:` and a
    /// variable's name (letters, digits and `_`, not starting with a digit).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if let Some(path) = raw.strip_prefix("file:") {
            if !path.starts_with('/') || path.contains('\0') {
                return Err("a file: reference names an absolute path");
            }
            return Ok(SecretRef::File(path.to_owned()));
        }
        if let Some(name) = raw.strip_prefix("env:") {
            let well_formed = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !well_formed {
                return Err("an env: reference names a variable: letters, digits and _, not starting with a digit");
            }
            return Ok(SecretRef::Env(name.to_owned()));
        }
        Err("must be a reference to the secret, file:/path or env:NAME")
    }

    /// The reference `raw` as the config file takes it: the API's forms, or a bare path (a
    /// file).
    pub fn from_config(raw: &str) -> Self {
        match Self::parse(raw) {
            Ok(reference) => reference,
            Err(_) => SecretRef::File(raw.strip_prefix("file:").unwrap_or(raw).to_owned()),
        }
    }
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::File(path) => write!(f, "file:{path}"),
            SecretRef::Env(name) => write!(f, "env:{name}"),
        }
    }
}

/// FCM's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmSettings {
    /// The service account's JSON key, by reference.
    pub credentials: String,
    /// The Firebase project; absent: the key's `project_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// FCM's base URL; absent: `https://fcm.googleapis.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// APNs's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsSettings {
    /// The team's `.p8` signing key, by reference.
    pub key: String,
    /// The signing key's id.
    pub key_id: String,
    /// The Apple developer team's id.
    pub team_id: String,
    /// The app's bundle id (`apns-topic`).
    pub topic: String,
    /// APNs's base URL; absent: `https://api.push.apple.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Web Push's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebPushSettings {
    /// The VAPID private key (PKCS#8 PEM, or raw in base64url), by reference.
    pub vapid_key: String,
    /// The operator's contact the push services see, `mailto:...` or `https://...`.
    pub subject: String,
    /// How long a push service keeps a push for an offline browser, 1 to 86400 s; absent:
    /// 12 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// The push services sent to (hosts, or `.domain` for every host under it); absent: the
    /// browsers' own push services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
}

/// One provider's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderSettings {
    /// FCM's.
    Fcm(FcmSettings),
    /// APNs's.
    Apns(ApnsSettings),
    /// Web Push's.
    WebPush(WebPushSettings),
}

impl ProviderSettings {
    /// Whose settings these are.
    pub fn provider(&self) -> PushProvider {
        match self {
            ProviderSettings::Fcm(_) => PushProvider::Fcm,
            ProviderSettings::Apns(_) => PushProvider::Apns,
            ProviderSettings::WebPush(_) => PushProvider::WebPush,
        }
    }

    /// The reference to the secret.
    pub fn secret(&self) -> &str {
        match self {
            ProviderSettings::Fcm(fcm) => &fcm.credentials,
            ProviderSettings::Apns(apns) => &apns.key,
            ProviderSettings::WebPush(web) => &web.vapid_key,
        }
    }

    /// The base URL they set, if they set one.
    pub fn url(&self) -> Option<&str> {
        match self {
            ProviderSettings::Fcm(fcm) => fcm.url.as_deref(),
            ProviderSettings::Apns(apns) => apns.url.as_deref(),
            ProviderSettings::WebPush(_) => None,
        }
    }

    /// As a JSON object (the API's and the database's form).
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            ProviderSettings::Fcm(fcm) => serde_json::to_value(fcm),
            ProviderSettings::Apns(apns) => serde_json::to_value(apns),
            ProviderSettings::WebPush(web) => serde_json::to_value(web),
        };
        value.unwrap_or_default()
    }

    /// `provider`'s settings from their JSON form.
    pub fn from_json(provider: PushProvider, json: serde_json::Value) -> Result<Self, serde_json::Error> {
        Ok(match provider {
            PushProvider::Fcm => ProviderSettings::Fcm(serde_json::from_value(json)?),
            PushProvider::Apns => ProviderSettings::Apns(serde_json::from_value(json)?),
            PushProvider::WebPush => ProviderSettings::WebPush(serde_json::from_value(json)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_have_their_own_config_types() {
        for provider in PushProvider::ALL {
            assert_eq!(PushProvider::from_config_type(provider.config_type()), Some(provider));
        }
        assert_eq!(PushProvider::from_config_type(1), None, "1 is the original's provider URL");
        assert_eq!(PushProvider::NAMES, ["fcm", "apns", "web_push"]);
    }

    #[test]
    fn a_secret_is_named_by_a_file_or_a_variable() {
        assert_eq!(SecretRef::parse("file:/run/secrets/fcm.json"), Ok(SecretRef::File("/run/secrets/fcm.json".into())));
        assert_eq!(SecretRef::parse("env:HERALD_VAPID_KEY"), Ok(SecretRef::Env("HERALD_VAPID_KEY".into())));
        for bad in
            ["", "/run/secrets/key.p8", "file:relative/key", "env:", "env:1KEY", "env:A-B", "-----BEGIN PRIVATE KEY"]
        {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(SecretRef::from_config("/etc/herald/key.p8"), SecretRef::File("/etc/herald/key.p8".into()));
        assert_eq!(SecretRef::from_config("env:KEY"), SecretRef::Env("KEY".into()));
        assert_eq!(SecretRef::Env("KEY".into()).to_string(), "env:KEY");
    }

    #[test]
    fn settings_round_trip_through_json() {
        let settings = ProviderSettings::WebPush(WebPushSettings {
            vapid_key: "env:VAPID".into(),
            subject: "mailto:ops@example.com".into(),
            ttl_secs: Some(60),
            hosts: None,
        });
        let json = settings.to_json();
        assert_eq!(
            json,
            serde_json::json!({"vapid_key": "env:VAPID", "subject": "mailto:ops@example.com", "ttl_secs": 60})
        );
        assert_eq!(ProviderSettings::from_json(PushProvider::WebPush, json).unwrap(), settings);
        assert!(ProviderSettings::from_json(PushProvider::Fcm, serde_json::json!({"key": "env:X"})).is_err());
    }
}
