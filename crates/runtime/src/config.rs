//! Layered configuration: defaults < TOML file < `HERALD_*` environment.
//!
//! Environment names map to keys by their first underscore: `HERALD_HTTP_ADDR` is `http.addr`,
//! `HERALD_JWT_SECRET` is `jwt.secret`, `HERALD_BUS_PUBLISH_TIMEOUT_MS` is
//! `bus.publish_timeout_ms`.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;

/// The environment variable that names a configuration file.
pub const CONFIG_FILE_ENV: &str = "HERALD_CONFIG";

/// Configuration that could not be loaded; the message names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value could not be read or has the wrong type.
    #[error("invalid configuration: `{key}` (env {env}): {reason}{origin}")]
    Load {
        /// The key, e.g. `http.addr`.
        key: String,
        /// The environment variable for the key.
        env: String,
        /// What is wrong with the value.
        reason: String,
        /// Where the value came from, e.g. ` (from HERALD_ environment variables)`.
        origin: String,
    },
    /// A value was read but is not acceptable.
    #[error("invalid configuration: `{key}` {reason} (set it in the config file or as {env})")]
    Invalid {
        /// The key, e.g. `bus.url`.
        key: String,
        /// The environment variable for the key.
        env: String,
        /// Why the value is refused.
        reason: String,
    },
    /// The configuration file named does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
}

impl ConfigError {
    fn from_figment(err: &figment::Error) -> Self {
        let key = err.path.join(".");
        let origin = err.metadata.as_ref().map(|m| format!(" (from {})", m.name)).unwrap_or_default();
        Self::Load { env: env_name(&key), key, reason: err.kind.to_string(), origin }
    }

    /// A refusal of the value at `key`.
    pub fn invalid(key: &str, reason: impl Into<String>) -> Self {
        Self::Invalid { key: key.to_owned(), env: env_name(key), reason: reason.into() }
    }
}

fn env_name(key: &str) -> String {
    format!("HERALD_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Builds a service's settings from its defaults, a file and the environment.
#[derive(Debug, Default)]
pub struct ConfigLoader {
    file: Option<PathBuf>,
    overrides: Vec<(String, String)>,
}

impl ConfigLoader {
    /// A loader that reads the file named by `HERALD_CONFIG`, if set.
    pub fn new() -> Self {
        Self { file: std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from), overrides: Vec::new() }
    }

    /// Reads this TOML file (it must exist) instead of the one named by `HERALD_CONFIG`.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Replaces a default, below the file and the environment (e.g. `bus.url` = `memory` for
    /// the all-in-one binary).
    pub fn default_value(mut self, key: &str, value: &str) -> Self {
        self.overrides.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Loads `T`, starting from `T::default()`.
    pub fn load<T: Serialize + DeserializeOwned + Default>(&self) -> Result<T, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(T::default()));
        for (key, value) in &self.overrides {
            figment = figment.merge(Serialized::default(key, value));
        }
        if let Some(path) = &self.file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.clone()));
            }
            figment = figment.merge(Toml::file(path));
        }
        let env = Env::prefixed("HERALD_").ignore(&["CONFIG"]).map(|key| key.as_str().replacen('_', ".", 1).into());
        figment.merge(env).extract().map_err(|err| ConfigError::from_figment(&err))
    }
}

#[cfg(test)]
// figment's `Jail` closures return its large error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use crate::{HttpSettings, JwtSettings};
    use figment::Jail;
    use serde::Deserialize;

    /// A section shaped like the bus's, which lives in a crate this one does not know.
    #[derive(Debug, Serialize, Deserialize)]
    #[serde(default)]
    struct BusSettings {
        url: String,
        prefix: String,
        publish_timeout_ms: u64,
    }

    impl Default for BusSettings {
        fn default() -> Self {
            Self { url: "amqp://127.0.0.1".into(), prefix: "herald".into(), publish_timeout_ms: 2000 }
        }
    }

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Sample {
        http: HttpSettings,
        bus: BusSettings,
        jwt: JwtSettings,
    }

    fn loaded(jail: &Jail) -> Result<Sample, ConfigError> {
        let _ = jail;
        ConfigLoader::new().load::<Sample>()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        Jail::expect_with(|jail| {
            let s = loaded(jail).unwrap();
            assert_eq!(s.http.addr.to_string(), "127.0.0.1:8080");
            assert_eq!(s.bus.prefix, "herald");
            assert!(s.jwt.uses_development_secret());
            Ok(())
        });
    }

    #[test]
    fn the_environment_overrides_the_file_which_overrides_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file("herald.toml", "[http]\naddr = \"0.0.0.0:9000\"\n[bus]\nprefix = \"from-file\"\n")?;
            jail.set_env("HERALD_CONFIG", "herald.toml");
            jail.set_env("HERALD_BUS_PREFIX", "from-env");
            jail.set_env("HERALD_JWT_SECRET", "1234567890123456");
            jail.set_env("HERALD_BUS_PUBLISH_TIMEOUT_MS", "750");
            let s = loaded(jail).unwrap();
            assert_eq!(s.http.addr.to_string(), "0.0.0.0:9000");
            assert_eq!(s.bus.prefix, "from-env");
            assert_eq!(s.bus.publish_timeout_ms, 750);
            assert!(!s.jwt.uses_development_secret());
            Ok(())
        });
    }

    #[test]
    fn a_numeric_looking_secret_stays_a_string() {
        Jail::expect_with(|jail| {
            jail.set_env("HERALD_JWT_SECRET", "12345678901234567890");
            use secrecy::ExposeSecret;
            assert_eq!(loaded(jail).unwrap().jwt.secret.expose_secret(), "12345678901234567890");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_its_key() {
        Jail::expect_with(|jail| {
            jail.set_env("HERALD_HTTP_ADDR", "not-an-address");
            let err = loaded(jail).unwrap_err().to_string();
            assert!(err.contains("HERALD_HTTP_ADDR") && err.contains("http.addr"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_refused_value_names_its_key_and_variable() {
        let err = ConfigError::invalid("bus.url", "must be memory or amqp").to_string();
        assert!(err.contains("bus.url") && err.contains("HERALD_BUS_URL"), "{err}");
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        Jail::expect_with(|jail| {
            jail.set_env("HERALD_CONFIG", "nope.toml");
            assert!(matches!(loaded(jail), Err(ConfigError::MissingFile(_))));
            Ok(())
        });
    }

    #[test]
    fn default_values_sit_below_the_environment() {
        Jail::expect_with(|_| {
            let s: Sample = ConfigLoader::new().default_value("bus.url", "memory").load().unwrap();
            assert_eq!(s.bus.url, "memory");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("HERALD_BUS_URL", "amqp://x");
            let s: Sample = ConfigLoader::new().default_value("bus.url", "memory").load().unwrap();
            assert_eq!(s.bus.url, "amqp://x");
            Ok(())
        });
    }
}
