//! Rules of the push config API's providers (`PUT /api/message_push/config/providers/{provider}`):
//! each field of FCM's, APNs's and Web Push's settings, and above all that a secret is named by
//! reference (`file:/path`, `env:NAME`), never posted. Each violation is `INVALID_REQUEST`
//! naming its field, and no message repeats what was posted in a secret's place.

use crate::ValidationError;
use crate::mobile::check_url;
use model::{ApnsSettings, ErrorCode, FcmSettings, ProviderSettings, PushProvider, SecretRef, WebPushSettings};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The longest secret reference.
pub const MAX_SECRET_REF_CHARS: usize = 1024;
/// The most push service hosts Web Push's settings may name.
pub const MAX_WEB_PUSH_HOSTS: usize = 32;
/// The longest `ttl_secs` of Web Push: a day (push services refuse a VAPID token valid longer).
pub const MAX_WEB_PUSH_TTL_SECS: u64 = 86_400;

fn invalid(field: &str, message: String) -> ValidationError {
    ValidationError::new(ErrorCode::InvalidRequest, field, message)
}

/// `provider`'s settings from the request body `raw`, every field checked.
pub fn check_provider_settings(provider: PushProvider, raw: Value) -> Result<ProviderSettings, ValidationError> {
    let settings = match provider {
        PushProvider::Fcm => ProviderSettings::Fcm(read(raw)?),
        PushProvider::Apns => ProviderSettings::Apns(read(raw)?),
        PushProvider::WebPush => ProviderSettings::WebPush(read(raw)?),
    };
    check_secret(provider.secret_field(), settings.secret())?;
    if let Some(url) = settings.url() {
        check_url("url", url)?;
    }
    match &settings {
        ProviderSettings::Fcm(fcm) => check_fcm(fcm)?,
        ProviderSettings::Apns(apns) => check_apns(apns)?,
        ProviderSettings::WebPush(web) => check_web_push(web)?,
    }
    Ok(settings)
}

/// The body as `T`. Serde's messages quote the value of a field of the wrong type, which may
/// be a key pasted in the wrong place: the message names the field and the type instead.
fn read<T: DeserializeOwned>(raw: Value) -> Result<T, ValidationError> {
    serde_path_to_error::deserialize(raw).map_err(|err| {
        let at = err.path().to_string();
        let inner = err.inner().to_string();
        let field = if at != "." && !at.is_empty() {
            Some(at)
        } else {
            // "missing field `key`", "unknown field `x`, expected ...": the field is the first quoted.
            inner.split('`').nth(1).map(str::to_owned)
        };
        let said = match inner.split_once(", expected ") {
            Some((what, expected)) if what.starts_with("invalid type") || what.starts_with("invalid value") => {
                format!("a value of the wrong type; expected {expected}")
            }
            _ => inner,
        };
        let message = match &field {
            Some(field) => format!("invalid request body at {field}: {said}"),
            None => format!("invalid request body: {said}"),
        };
        ValidationError { code: ErrorCode::InvalidRequest, field, message }
    })
}

/// A secret's reference in `field`. Anything else is refused without being repeated.
pub fn check_secret(field: &str, raw: &str) -> Result<SecretRef, ValidationError> {
    let looks_like_a_key = raw.contains("BEGIN") || raw.contains('{') || raw.contains("private_key");
    if looks_like_a_key || raw.chars().count() > MAX_SECRET_REF_CHARS {
        return Err(invalid(
            field,
            format!(
                "{field} takes a reference to the secret (file:/path of a file the mobile-push-worker reads, or \
                 env:NAME of a variable of its environment), never the key itself; nothing was stored"
            ),
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(invalid(field, format!("{field} must not hold control characters")));
    }
    SecretRef::parse(raw).map_err(|why| invalid(field, format!("{field} {why}")))
}

fn check_name(
    field: &str,
    raw: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
    what: &str,
) -> Result<(), ValidationError> {
    let length = raw.chars().count();
    if length == 0 || length > max {
        return Err(invalid(field, format!("{field} must be 1 to {max} characters; got {length}")));
    }
    if let Some(bad) = raw.chars().find(|&c| !allowed(c)) {
        return Err(invalid(field, format!("{field} may hold only {what}; found {bad:?}")));
    }
    Ok(())
}

fn check_fcm(fcm: &FcmSettings) -> Result<(), ValidationError> {
    if let Some(project) = &fcm.project_id {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_');
        check_name("project_id", project, 128, allowed, "letters, digits and - . : _")?;
    }
    Ok(())
}

fn check_apns(apns: &ApnsSettings) -> Result<(), ValidationError> {
    check_name("key_id", &apns.key_id, 64, |c| c.is_ascii_alphanumeric(), "letters and digits")?;
    check_name("team_id", &apns.team_id, 64, |c| c.is_ascii_alphanumeric(), "letters and digits")?;
    let bundle = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    check_name("topic", &apns.topic, 255, bundle, "letters, digits and - . _ (a bundle id)")
}

fn check_web_push(web: &WebPushSettings) -> Result<(), ValidationError> {
    let subject = &web.subject;
    let contact = subject.starts_with("mailto:") || subject.starts_with("https://");
    if !contact || subject.chars().count() > 1024 || subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "subject",
            "subject must be a mailto: or https:// contact of at most 1024 characters, without spaces".to_owned(),
        ));
    }
    if let Some(ttl) = web.ttl_secs
        && !(1..=MAX_WEB_PUSH_TTL_SECS).contains(&ttl)
    {
        return Err(invalid("ttl_secs", format!("ttl_secs must be 1 to {MAX_WEB_PUSH_TTL_SECS}; got {ttl}")));
    }
    if let Some(hosts) = &web.hosts {
        if hosts.is_empty() || hosts.len() > MAX_WEB_PUSH_HOSTS {
            return Err(invalid("hosts", format!("hosts must name 1 to {MAX_WEB_PUSH_HOSTS} push services")));
        }
        for (at, host) in hosts.iter().enumerate() {
            let field = format!("hosts[{at}]");
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.');
            check_name(&field, host, 253, allowed, "a host name (or .domain): letters, digits, - and .")?;
            if host.trim_start_matches('.').is_empty() {
                return Err(invalid(&field, format!("{field} must name a host")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(provider: PushProvider, body: Value) -> ValidationError {
        let err = check_provider_settings(provider, body.clone()).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest, "{body}");
        err
    }

    #[test]
    fn each_provider_takes_its_own_settings() {
        let fcm = check_provider_settings(
            PushProvider::Fcm,
            json!({"credentials": "file:/run/secrets/fcm.json", "project_id": "herald-prod", "url": "http://127.0.0.1:9"}),
        )
        .unwrap();
        assert_eq!(fcm.secret(), "file:/run/secrets/fcm.json");
        assert_eq!(fcm.url(), Some("http://127.0.0.1:9"));
        let apns =
            json!({"key": "env:APNS_KEY", "key_id": "ABC123DEFG", "team_id": "DEF123GHIJ", "topic": "dev.herald.app"});
        assert_eq!(check_provider_settings(PushProvider::Apns, apns).unwrap().provider(), PushProvider::Apns);
        let web = json!({"vapid_key": "env:VAPID", "subject": "mailto:ops@example.com", "ttl_secs": 3600, "hosts": [".push.example.com"]});
        assert_eq!(check_provider_settings(PushProvider::WebPush, web).unwrap().provider(), PushProvider::WebPush);
    }

    #[test]
    fn a_key_posted_in_place_of_its_reference_is_refused_and_not_repeated() {
        let pem =
            "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----";
        let err = refused(PushProvider::Apns, json!({"key": pem, "key_id": "A", "team_id": "B", "topic": "c"}));
        assert_eq!(err.field.as_deref(), Some("key"));
        assert!(err.message.contains("never the key itself") && !err.message.contains("MIGH"), "{}", err.message);
        let account = json!({"type": "service_account", "private_key": pem}).to_string();
        let err = refused(PushProvider::Fcm, json!({"credentials": account}));
        assert!(!err.message.contains("MIGH"), "{}", err.message);
        // The whole key file posted as the body, or a key in a field of another type.
        let err = refused(PushProvider::Fcm, json!({"type": "service_account", "private_key": pem}));
        assert!(!err.message.contains("MIGH"), "{}", err.message);
        let err =
            refused(PushProvider::WebPush, json!({"vapid_key": "env:V", "subject": "mailto:a@b.c", "ttl_secs": pem}));
        assert_eq!(err.field.as_deref(), Some("ttl_secs"));
        assert!(!err.message.contains("MIGH"), "{}", err.message);
        for bad in ["/run/secrets/key", "file:key.p8", "env:", "env:A-B", "secret"] {
            let err = refused(PushProvider::Fcm, json!({"credentials": bad}));
            assert_eq!(err.field.as_deref(), Some("credentials"), "{bad}");
        }
    }

    #[test]
    fn every_field_is_checked() {
        let apns = |field: &str, value: Value| {
            let mut body =
                json!({"key": "env:K", "key_id": "ABC123DEFG", "team_id": "DEF123GHIJ", "topic": "dev.herald.app"});
            body[field] = value;
            refused(PushProvider::Apns, body).field
        };
        assert_eq!(apns("key_id", json!("")), Some("key_id".into()));
        assert_eq!(apns("team_id", json!("a b")), Some("team_id".into()));
        assert_eq!(apns("topic", json!("dev/app")), Some("topic".into()));
        assert_eq!(apns("url", json!("ftp://apns")), Some("url".into()));
        assert_eq!(apns("extra", json!(1)), Some("extra".into()));
        let web = |field: &str, value: Value| {
            let mut body = json!({"vapid_key": "env:K", "subject": "mailto:ops@example.com"});
            body[field] = value;
            refused(PushProvider::WebPush, body).field
        };
        assert_eq!(web("subject", json!("ops@example.com")), Some("subject".into()));
        assert_eq!(web("ttl_secs", json!(0)), Some("ttl_secs".into()));
        assert_eq!(web("ttl_secs", json!(86_401)), Some("ttl_secs".into()));
        assert_eq!(web("hosts", json!([])), Some("hosts".into()));
        assert_eq!(web("hosts", json!(["push.example.com", "127.0.0.1:8443"])), Some("hosts[1]".into()));
        assert_eq!(web("hosts", json!(["."])), Some("hosts[0]".into()));
        let missing = refused(PushProvider::WebPush, json!({"vapid_key": "env:K"}));
        assert_eq!(missing.field.as_deref(), Some("subject"), "{}", missing.message);
        let fcm = refused(PushProvider::Fcm, json!({"credentials": "env:K", "project_id": "a b"}));
        assert_eq!(fcm.field.as_deref(), Some("project_id"));
    }
}
