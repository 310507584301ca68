//! Which settings each configurable provider (FCM, APNs, Web Push) sends with, and switching to
//! new ones while the worker runs.
//!
//! A provider's settings are the push config API's when an admin set them
//! (`/api/message_push/config/providers/{provider}`, `message_push_config`), else the config
//! file's (`[mobile]`), else it is off. The secret they name by reference (`file:/path`, or
//! `env:NAME`; a bare path in the config file is a file) is read where the worker runs.
//!
//! [`ProviderLoader::refresh`] runs every `mobile.provider_reload_ms`: it reads the table and the
//! secrets, and rebuilds a provider whose settings or secret changed (a rotated key file is picked
//! up the same way). New settings that do not load (a missing file, not a key) leave the provider
//! as it was: loaded with the settings before if it had any, else broken (its sends fail with the
//! reason, not counted against the devices). Either way the worker logs why and sets
//! `herald_mobile_push_provider_settings_broken{provider}` to 1 until settings that load are in
//! force. At start-up the config file's settings must load (a deployment with a bad key fails at
//! once, as before); the API's need not (the worker starts, and the gauge says what is wrong).

use super::{ProviderKind, Providers, Slot, apns, fcm, webpush};
use crate::MobileSettings;
use crate::metrics::SendMetrics;
use crate::send::Sender;
use mobile::MobileStore;
use model::{ApnsSettings, FcmSettings, ProviderSettings, PushProvider, SecretRef, WebPushSettings};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where settings in force came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The push config API.
    Api,
    /// The worker's config file.
    ConfigFile,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::Api => "the push config API",
            Source::ConfigFile => "the config file",
        }
    }
}

/// What a provider was last built from: its settings and its secret's digest (or why the
/// secret could not be read). The same again is not built again.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fingerprint {
    source: Source,
    settings: ProviderSettings,
    secret: Result<[u8; 32], String>,
}

/// Why a provider could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{provider} (settings from {origin}): {why}")]
pub struct LoadError {
    /// Which.
    pub provider: &'static str,
    /// Whose settings.
    pub origin: &'static str,
    /// Why.
    pub why: String,
}

/// The provider's kind, as the sender and the metrics name it.
pub fn kind(provider: PushProvider) -> ProviderKind {
    match provider {
        PushProvider::Fcm => ProviderKind::Fcm,
        PushProvider::Apns => ProviderKind::Apns,
        PushProvider::WebPush => ProviderKind::WebPush,
    }
}

/// Loads the providers' settings and keeps them current.
pub struct ProviderLoader {
    settings: MobileSettings,
    store: MobileStore,
    metrics: SendMetrics,
    built: HashMap<PushProvider, Fingerprint>,
}

impl ProviderLoader {
    /// A loader of the settings of `store` (the push config API's) and of `settings` (the config
    /// file's), reporting on `metrics`.
    pub fn new(settings: MobileSettings, store: MobileStore, metrics: SendMetrics) -> Self {
        Self { settings, store, metrics, built: HashMap::new() }
    }

    /// The providers at start-up. The config file's settings must load; the API's may fail
    /// (the provider is broken until they load).
    pub async fn initial(&mut self) -> Result<Providers, LoadError> {
        let unipush = super::UniPush::new(self.settings.timeouts()).map_err(|err| LoadError {
            provider: "unipush",
            origin: "the config file",
            why: err.to_string(),
        })?;
        let mut providers = Providers::unipush(unipush);
        let stored = self.stored().await.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "the push providers' settings cannot be read yet; the config file's apply");
            Vec::new()
        });
        for provider in PushProvider::ALL {
            let Some((source, settings)) = self.wanted(provider, &stored) else { continue };
            let (fingerprint, secret) = read(source, &settings).await;
            self.built.insert(provider, fingerprint);
            match self.build(&settings, secret).await {
                Ok(slot) => {
                    tracing::info!(provider = provider.as_str(), source = source.describe(), "push provider loaded");
                    set(&mut providers, slot);
                }
                Err(why) if source == Source::ConfigFile => {
                    return Err(LoadError { provider: provider.as_str(), origin: source.describe(), why });
                }
                Err(why) => {
                    self.broken(provider, source, &why, false);
                    set(&mut providers, Loaded::broken(provider, why));
                }
            }
        }
        Ok(providers)
    }

    /// Reads the settings and the secrets again, and switches `sender` to each provider whose
    /// settings changed and load: all of one pass at once, so a send sees either the providers
    /// before the pass or after it.
    pub async fn refresh(&mut self, sender: &Sender) {
        let stored = match self.stored().await {
            Ok(stored) => stored,
            Err(err) => {
                tracing::warn!(error = %err, "the push providers' settings cannot be read; the ones in force stay");
                return;
            }
        };
        let in_force = sender.providers();
        let mut changes = Vec::new();
        for provider in PushProvider::ALL {
            let Some((source, settings)) = self.wanted(provider, &stored) else {
                if self.built.remove(&provider).is_some() {
                    tracing::info!(provider = provider.as_str(), "push provider off: no settings configure it");
                    self.metrics.settings_loaded(kind(provider));
                    changes.push(Loaded::off(provider));
                }
                continue;
            };
            let (fingerprint, secret) = read(source, &settings).await;
            if self.built.get(&provider) == Some(&fingerprint) {
                continue;
            }
            self.built.insert(provider, fingerprint);
            match self.build(&settings, secret).await {
                Ok(loaded) => {
                    tracing::info!(
                        provider = provider.as_str(),
                        source = source.describe(),
                        "push provider switched to new settings"
                    );
                    self.metrics.settings_loaded(kind(provider));
                    changes.push(loaded);
                }
                Err(why) => {
                    let keeps = in_force.is_ready(provider);
                    self.broken(provider, source, &why, keeps);
                    if !keeps {
                        changes.push(Loaded::broken(provider, why));
                    }
                }
            }
        }
        if changes.is_empty() {
            return;
        }
        let replaced: Vec<ProviderKind> = changes.iter().map(|loaded| kind(loaded.provider())).collect();
        sender.change_providers(&replaced, |providers| {
            for loaded in changes {
                set(providers, loaded);
            }
        });
    }

    /// Refreshes every `every` until `shutdown`.
    pub fn watch(mut self, sender: Sender, every: Duration, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = ticks.tick() => self.refresh(&sender).await,
                }
            }
        });
    }

    async fn stored(&self) -> Result<Vec<mobile::StoredProvider>, database::DbError> {
        self.store.provider_settings().await
    }

    /// The settings that should be in force for `provider`.
    fn wanted(&self, provider: PushProvider, stored: &[mobile::StoredProvider]) -> Option<(Source, ProviderSettings)> {
        match stored.iter().find(|stored| stored.settings.provider() == provider) {
            Some(stored) => Some((Source::Api, stored.settings.clone())),
            None => config_file(&self.settings, provider).map(|settings| (Source::ConfigFile, settings)),
        }
    }

    /// The provider `settings` make with the secret read.
    async fn build(&self, settings: &ProviderSettings, secret: Result<Vec<u8>, String>) -> Result<Loaded, String> {
        let secret = secret?;
        let timeouts = self.settings.timeouts();
        Ok(match settings {
            ProviderSettings::Fcm(fcm) => {
                let url = fcm.url.as_deref().unwrap_or(fcm::DEFAULT_URL);
                let built = fcm::Fcm::from_json(&secret, fcm.project_id.as_deref(), url, timeouts)
                    .await
                    .map_err(|err| err.to_string())?;
                Loaded::Fcm(Slot::Ready(built.into()))
            }
            ProviderSettings::Apns(apns) => {
                let config = apns::ApnsConfig {
                    key_id: apns.key_id.clone(),
                    team_id: apns.team_id.clone(),
                    topic: apns.topic.clone(),
                    base_url: apns.url.clone().unwrap_or_else(|| apns::DEFAULT_URL.to_owned()),
                };
                let built = apns::Apns::from_pem(&secret, config, timeouts).map_err(|err| err.to_string())?;
                Loaded::Apns(Slot::Ready(built.into()))
            }
            ProviderSettings::WebPush(web) => {
                let key = std::str::from_utf8(&secret).map_err(|_| "Web Push: the VAPID key is not text".to_owned())?;
                let config = webpush::WebPushConfig {
                    subject: web.subject.clone(),
                    ttl: Duration::from_secs(web.ttl_secs.unwrap_or(self.settings.web_push_ttl_secs)),
                    hosts: web.hosts.clone().unwrap_or_else(|| webpush::DEFAULT_HOSTS.map(str::to_owned).to_vec()),
                };
                let built = webpush::WebPush::from_key(key, config, timeouts).map_err(|err| err.to_string())?;
                tracing::info!(application_server_key = %built.public_key(), "Web Push's application server key");
                Loaded::WebPush(Slot::Ready(built.into()))
            }
        })
    }

    fn broken(&self, provider: PushProvider, source: Source, why: &str, keeps: bool) {
        self.metrics.settings_broken(kind(provider));
        if keeps {
            tracing::error!(
                provider = provider.as_str(),
                source = source.describe(),
                %why,
                "the push provider's new settings do not load: it keeps sending with the settings before"
            );
        } else {
            tracing::error!(
                provider = provider.as_str(),
                source = source.describe(),
                %why,
                "the push provider's settings do not load: its sends fail until they do"
            );
        }
    }
}

/// A provider built, or its state without one.
enum Loaded {
    Fcm(Slot<fcm::Fcm>),
    Apns(Slot<apns::Apns>),
    WebPush(Slot<webpush::WebPush>),
}

impl Loaded {
    fn provider(&self) -> PushProvider {
        match self {
            Loaded::Fcm(_) => PushProvider::Fcm,
            Loaded::Apns(_) => PushProvider::Apns,
            Loaded::WebPush(_) => PushProvider::WebPush,
        }
    }

    fn off(provider: PushProvider) -> Self {
        match provider {
            PushProvider::Fcm => Loaded::Fcm(Slot::Off),
            PushProvider::Apns => Loaded::Apns(Slot::Off),
            PushProvider::WebPush => Loaded::WebPush(Slot::Off),
        }
    }

    fn broken(provider: PushProvider, why: String) -> Self {
        let why = std::sync::Arc::from(why);
        match provider {
            PushProvider::Fcm => Loaded::Fcm(Slot::Broken(why)),
            PushProvider::Apns => Loaded::Apns(Slot::Broken(why)),
            PushProvider::WebPush => Loaded::WebPush(Slot::Broken(why)),
        }
    }
}

fn set(providers: &mut Providers, loaded: Loaded) {
    match loaded {
        Loaded::Fcm(slot) => providers.fcm = slot,
        Loaded::Apns(slot) => providers.apns = slot,
        Loaded::WebPush(slot) => providers.web_push = slot,
    }
}

impl Providers {
    /// Whether `provider` is loaded.
    fn is_ready(&self, provider: PushProvider) -> bool {
        match provider {
            PushProvider::Fcm => self.fcm.ready().is_some(),
            PushProvider::Apns => self.apns.ready().is_some(),
            PushProvider::WebPush => self.web_push.ready().is_some(),
        }
    }
}

/// The secret `settings` name, read, and what a provider built from them would be built from.
async fn read(source: Source, settings: &ProviderSettings) -> (Fingerprint, Result<Vec<u8>, String>) {
    let secret = resolve(settings.secret()).await;
    let fingerprint = Fingerprint {
        source,
        settings: settings.clone(),
        secret: secret.as_ref().map(|bytes| Sha256::digest(bytes).into()).map_err(Clone::clone),
    };
    (fingerprint, secret)
}

/// The largest secret read: a service account's JSON key is about 2.3 KiB, a `.p8` or VAPID key
/// a few hundred bytes. A reference to anything larger (a log, `/dev/zero`) is refused before it
/// fills the worker's memory, on every reload.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// The secret `reference` names, read: a file's contents (at most [`MAX_SECRET_BYTES`]) or a
/// variable's value. The error says what could not be read, never what was.
pub async fn resolve(reference: &str) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt as _;
    match SecretRef::from_config(reference) {
        SecretRef::File(path) => {
            let unreadable = |err: std::io::Error| format!("cannot read the secret file {path}: {err}");
            let file = tokio::fs::File::open(&path).await.map_err(unreadable)?;
            let mut secret = Vec::new();
            file.take(MAX_SECRET_BYTES + 1).read_to_end(&mut secret).await.map_err(unreadable)?;
            if secret.len() as u64 > MAX_SECRET_BYTES {
                return Err(format!("the secret file {path} is over {} KiB: not a key", MAX_SECRET_BYTES / 1024));
            }
            Ok(secret)
        }
        SecretRef::Env(name) => match std::env::var_os(&name) {
            Some(value) if !value.is_empty() => Ok(value.into_encoded_bytes()),
            _ => Err(format!("the environment variable {name} holding the secret is not set")),
        },
    }
}

/// The settings the config file gives `provider`, if it configures it.
pub fn config_file(settings: &MobileSettings, provider: PushProvider) -> Option<ProviderSettings> {
    let given = |value: &str| Some(value.to_owned()).filter(|value| !value.is_empty());
    match provider {
        PushProvider::Fcm => given(&settings.fcm_credentials_file).map(|credentials| {
            ProviderSettings::Fcm(FcmSettings {
                credentials,
                project_id: given(&settings.fcm_project_id),
                url: Some(settings.fcm_url.clone()),
            })
        }),
        PushProvider::Apns => given(&settings.apns_key_file).map(|key| {
            ProviderSettings::Apns(ApnsSettings {
                key,
                key_id: settings.apns_key_id.clone(),
                team_id: settings.apns_team_id.clone(),
                topic: settings.apns_topic.clone(),
                url: Some(settings.apns_url.clone()),
            })
        }),
        PushProvider::WebPush => given(&settings.web_push_vapid_key_file).map(|vapid_key| {
            ProviderSettings::WebPush(WebPushSettings {
                vapid_key,
                subject: settings.web_push_subject.clone(),
                ttl_secs: Some(settings.web_push_ttl_secs),
                hosts: Some(settings.web_push_hosts.clone()),
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_secret_is_read_from_its_file_or_variable_and_never_shown() {
        let path = std::env::temp_dir().join(format!("herald-secret-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, b"key bytes").unwrap();
        assert_eq!(resolve(&format!("file:{}", path.display())).await.unwrap(), b"key bytes");
        assert_eq!(resolve(&path.display().to_string()).await.unwrap(), b"key bytes", "a bare path in the config file");
        std::fs::remove_file(&path).unwrap();
        let missing = resolve(&format!("file:{}", path.display())).await.unwrap_err();
        assert!(missing.contains("cannot read the secret file"), "{missing}");
        let path_var = std::env::var_os("PATH").unwrap().into_encoded_bytes();
        assert_eq!(resolve("env:PATH").await.unwrap(), path_var);
        let endless = resolve("file:/dev/zero").await.unwrap_err();
        assert!(endless.contains("is over 64 KiB"), "{endless}");
        let unset = resolve("env:HERALD_TEST_SURELY_UNSET_VARIABLE").await.unwrap_err();
        assert!(unset.contains("HERALD_TEST_SURELY_UNSET_VARIABLE holding the secret is not set"), "{unset}");
    }

    #[test]
    fn the_config_file_configures_what_it_names() {
        let mut settings = MobileSettings::default();
        assert!(PushProvider::ALL.into_iter().all(|provider| config_file(&settings, provider).is_none()));
        settings.apns_key_file = "/run/secrets/apns.p8".into();
        settings.apns_key_id = "K".into();
        let apns = config_file(&settings, PushProvider::Apns).unwrap();
        assert_eq!(apns.secret(), "/run/secrets/apns.p8");
        assert_eq!(apns.url(), Some(apns::DEFAULT_URL));
        assert!(config_file(&settings, PushProvider::Fcm).is_none());
    }
}
