//! Rules of the mobile API (mobile-push-analysis.md, gap 1): device types, the push id's format
//! per device type, and the provider URL. Each violation names the request field (`pushId`,
//! `deviceType`, `url`) and is `INVALID_REQUEST`.

use crate::ValidationError;
use model::{DeviceType, ErrorCode};

/// The longest push id any device type may have.
pub const MAX_PUSH_ID_CHARS: usize = 255;
/// The shortest push id of an Android or HarmonyOS device.
pub const MIN_TOKEN_CHARS: usize = 16;
/// The longest provider URL.
pub const MAX_URL_CHARS: usize = 2048;

/// The device type named `raw`.
pub fn check_device_type(raw: &str) -> Result<DeviceType, ValidationError> {
    DeviceType::parse(raw).ok_or_else(|| {
        ValidationError::new(
            ErrorCode::InvalidRequest,
            "deviceType",
            format!("deviceType must be one of {}, got {raw:?}", DeviceType::NAMES.join(", ")),
        )
    })
}

/// The push id `raw` of a `device_type` device, as stored:
/// - `ios`: a UniPush client id (32 hexadecimal digits) or an APNs device token (64), stored in
///   lower case (APNs tokens are case-insensitive; one device, one row);
/// - `android` and `harmony`: 16 to 255 characters of `A-Z a-z 0-9 _ - : .` (UniPush client
///   ids, FCM registration tokens, vendor and Push Kit tokens), kept as given (they are
///   case-sensitive);
/// - `web`: a Web Push subscription's JSON ([`check_web_subscription`]), kept under the push
///   id derived from its endpoint (the subscription itself is stored beside it).
pub fn check_push_id(device_type: DeviceType, raw: &str) -> Result<String, ValidationError> {
    let invalid = |message: String| ValidationError::new(ErrorCode::InvalidRequest, "pushId", message);
    if raw.is_empty() {
        return Err(invalid("pushId must not be empty".to_owned()));
    }
    match device_type {
        DeviceType::Ios => {
            let hex = raw.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex || !(raw.len() == 32 || raw.len() == 64) {
                return Err(invalid(format!(
                    "pushId of an ios device must be 32 hexadecimal digits (a UniPush client id) or 64 (an APNs \
                     device token); got {} characters",
                    raw.chars().count()
                )));
            }
            Ok(raw.to_ascii_lowercase())
        }
        DeviceType::Web => Ok(check_web_subscription(raw)?.push_id),
        DeviceType::Android | DeviceType::Harmony => {
            let length = raw.chars().count();
            if !(MIN_TOKEN_CHARS..=MAX_PUSH_ID_CHARS).contains(&length) {
                return Err(invalid(format!(
                    "pushId of an {device_type} device must be {MIN_TOKEN_CHARS} to {MAX_PUSH_ID_CHARS} characters; \
                     got {length}"
                )));
            }
            if let Some(bad) = raw.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.')))
            {
                return Err(invalid(format!("pushId may hold only letters, digits and _ - : . ; found {bad:?}")));
            }
            Ok(raw.to_owned())
        }
    }
}

/// The longest Web Push subscription endpoint.
pub const MAX_ENDPOINT_CHARS: usize = 2048;
/// The longest Web Push subscription JSON a `web` device registers as its `pushId`.
pub const MAX_SUBSCRIPTION_CHARS: usize = 4096;
/// How a web device's push id starts; the rest is the SHA-256 of its endpoint, base64url.
pub const WEB_PUSH_ID_PREFIX: &str = "web:";

/// A browser's Web Push subscription, checked: what a `web` device registers as its `pushId`
/// (`JSON.stringify(subscription)`, `PushSubscription.toJSON()`'s shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSubscription {
    /// The push id it is kept under: [`WEB_PUSH_ID_PREFIX`] and the SHA-256 of the endpoint
    /// (47 characters), so one endpoint is one device whatever keys it is registered with.
    pub push_id: String,
    /// The subscription as stored: `{"endpoint":...,"keys":{"p256dh":...,"auth":...}}`.
    pub json: String,
}

#[derive(serde::Deserialize)]
struct RawSubscription {
    endpoint: String,
    keys: RawKeys,
}

#[derive(serde::Deserialize)]
struct RawKeys {
    p256dh: String,
    auth: String,
}

/// The Web Push subscription `raw`: JSON with an `http`/`https` `endpoint` (at most 2048
/// characters) and `keys` holding `p256dh` (an uncompressed P-256 public key, 65 bytes) and
/// `auth` (16 bytes), both base64url, padded or not. Other fields (`expirationTime`) are dropped.
/// Which endpoint hosts are sent to is the worker's rule (`mobile.web_push_hosts`).
pub fn check_web_subscription(raw: &str) -> Result<WebSubscription, ValidationError> {
    use base64::Engine as _;
    let invalid = |message: String| ValidationError::new(ErrorCode::InvalidRequest, "pushId", message);
    let length = raw.chars().count();
    if length > MAX_SUBSCRIPTION_CHARS {
        return Err(invalid(format!(
            "pushId of a web device (its subscription JSON) must be at most {MAX_SUBSCRIPTION_CHARS} characters; got {length}"
        )));
    }
    let parsed: RawSubscription = serde_json::from_str(raw).map_err(|err| {
        invalid(format!(
            "pushId of a web device must be its Web Push subscription as JSON, with endpoint and keys.p256dh \
             and keys.auth: {err}"
        ))
    })?;
    let length = parsed.endpoint.chars().count();
    if length > MAX_ENDPOINT_CHARS {
        return Err(invalid(format!(
            "the subscription's endpoint must be at most {MAX_ENDPOINT_CHARS} characters; got {length}"
        )));
    }
    let endpoint = url::Url::parse(&parsed.endpoint)
        .map_err(|err| invalid(format!("the subscription's endpoint is not an absolute URL: {err}")))?;
    if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the subscription's endpoint must be an http or https URL with a host".to_owned()));
    }
    if parsed.endpoint.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("the subscription's endpoint must not hold spaces or control characters".to_owned()));
    }
    let base64url = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decode = |name: &str, value: &str, len: usize| match base64url.decode(value) {
        Ok(bytes) if bytes.len() == len => Ok(bytes),
        Ok(bytes) => Err(invalid(format!("keys.{name} must be {len} bytes; got {}", bytes.len()))),
        Err(err) => Err(invalid(format!("keys.{name} is not base64url: {err}"))),
    };
    let p256dh = decode("p256dh", &parsed.keys.p256dh, 65)?;
    if p256dh[0] != 0x04 {
        return Err(invalid("keys.p256dh must be an uncompressed P-256 point (starting with 0x04)".to_owned()));
    }
    decode("auth", &parsed.keys.auth, 16)?;
    let json = serde_json::json!({
        "endpoint": parsed.endpoint,
        "keys": { "p256dh": parsed.keys.p256dh.trim_end_matches('='), "auth": parsed.keys.auth.trim_end_matches('=') },
    })
    .to_string();
    Ok(WebSubscription { push_id: web_push_id(&parsed.endpoint), json })
}

/// The push id of the web device subscribed at `endpoint`.
pub fn web_push_id(endpoint: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(endpoint.as_bytes());
    format!("{WEB_PUSH_ID_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
}

/// A push id given where the device type is not (logout): at most 255 characters of the
/// characters any device type allows, so that a malformed one is refused before any lookup; or
/// a web device's subscription JSON, which names the push id derived from its endpoint.
pub fn check_any_push_id(raw: &str) -> Result<String, ValidationError> {
    if raw.trim_start().starts_with('{') {
        return check_web_subscription(raw).map(|subscription| subscription.push_id);
    }
    let invalid = |message: String| ValidationError::new(ErrorCode::InvalidRequest, "pushId", message);
    let length = raw.chars().count();
    if length == 0 || length > MAX_PUSH_ID_CHARS {
        return Err(invalid(format!("pushId must be 1 to {MAX_PUSH_ID_CHARS} characters; got {length}")));
    }
    if let Some(bad) = raw.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.'))) {
        return Err(invalid(format!("pushId may hold only letters, digits and _ - : . ; found {bad:?}")));
    }
    Ok(raw.to_owned())
}

/// The provider URL `raw`: absolute, `http` or `https`, with a host, at most 2048 characters,
/// without whitespace or control characters (which URL parsers drop silently), stored as given.
pub fn check_provider_url(raw: &str) -> Result<String, ValidationError> {
    check_url("url", raw)
}

/// The URL `raw` in `field`, by the rules of [`check_provider_url`].
pub(crate) fn check_url(field: &str, raw: &str) -> Result<String, ValidationError> {
    let invalid = |message: String| ValidationError::new(ErrorCode::InvalidRequest, field, message);
    let length = raw.chars().count();
    if length == 0 || length > MAX_URL_CHARS {
        return Err(invalid(format!("{field} must be 1 to {MAX_URL_CHARS} characters; got {length}")));
    }
    if let Some(bad) = raw.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(format!("{field} must not hold spaces or control characters; found {bad:?}")));
    }
    let parsed = url::Url::parse(raw).map_err(|err| invalid(format!("{field} is not an absolute URL: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(format!("{field} must be http or https, got {}:", parsed.scheme())));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("{field} must name a host")));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_types_are_the_closed_set() {
        assert_eq!(check_device_type("android").unwrap(), DeviceType::Android);
        assert_eq!(check_device_type("ios").unwrap(), DeviceType::Ios);
        assert_eq!(check_device_type("harmony").unwrap(), DeviceType::Harmony);
        for bad in ["", "Android", "windows", " ios"] {
            let err = check_device_type(bad).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("deviceType"), "{bad}");
            assert!(err.message.contains("android, ios, harmony, web"), "{}", err.message);
        }
    }

    #[test]
    fn an_ios_push_id_is_a_client_id_or_an_apns_token_in_lower_case() {
        let cid = "0123456789ABCDEF0123456789abcdef";
        assert_eq!(check_push_id(DeviceType::Ios, cid).unwrap(), cid.to_ascii_lowercase());
        let token = "a".repeat(64);
        assert_eq!(check_push_id(DeviceType::Ios, &token).unwrap(), token);
        for bad in ["", "0123", &"g".repeat(32), &"a".repeat(33), &"a".repeat(65)] {
            let err = check_push_id(DeviceType::Ios, bad).unwrap_err();
            assert_eq!((err.field.as_deref(), err.code), (Some("pushId"), ErrorCode::InvalidRequest), "{bad}");
        }
    }

    #[test]
    fn an_android_or_harmony_push_id_is_a_token_kept_as_given() {
        let fcm = "dQw4w9WgXcQ:APA91bH-example_Token.With-Colons";
        for device_type in [DeviceType::Android, DeviceType::Harmony] {
            assert_eq!(check_push_id(device_type, fcm).unwrap(), fcm);
            assert_eq!(check_push_id(device_type, &"A".repeat(255)).unwrap(), "A".repeat(255));
            for bad in [
                "short",
                &"A".repeat(256),
                "has space in it here",
                "semicolon;injected;x",
                "中文推送标识符号码号码号码号码",
            ] {
                let err = check_push_id(device_type, bad).unwrap_err();
                assert_eq!(err.field.as_deref(), Some("pushId"), "{bad}");
            }
        }
    }

    #[test]
    fn a_provider_url_is_absolute_http_or_https() {
        for good in ["http://127.0.0.1:9000/push", "https://fc-mp-1.next.bspapp.com/push?x=1"] {
            assert_eq!(check_provider_url(good).unwrap(), good);
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        for bad in [
            "",
            "/relative",
            "ftp://example.com/x",
            "mailto:a@b.c",
            "http://",
            "not a url",
            "http://exa\nmple.com/",
            " http://a.com",
            long.as_str(),
        ] {
            let err = check_provider_url(bad).unwrap_err();
            assert_eq!((err.field.as_deref(), err.code), (Some("url"), ErrorCode::InvalidRequest), "{bad}");
        }
    }

    #[test]
    fn a_push_id_without_a_device_type_is_only_checked_for_shape() {
        assert!(check_any_push_id("0123456789abcdef0123456789abcdef").is_ok());
        for bad in ["", "a b", &"a".repeat(256)] {
            assert_eq!(check_any_push_id(bad).unwrap_err().field.as_deref(), Some("pushId"));
        }
    }

    const P256DH: &str = "BLn9b-VR0ca83knDNZ32dCHGyjJp-1riX9ZTN40MqV8K_LpQmLqxC_DoHvqvFXO_nGdAB4W9dogZb_sM-uV4JbY";
    const AUTH: &str = "_ordMnz7uTCmrpBTeUV4Bw";

    fn subscription(endpoint: &str, p256dh: &str, auth: &str) -> String {
        serde_json::json!({"endpoint": endpoint, "expirationTime": null, "keys": {"p256dh": p256dh, "auth": auth}})
            .to_string()
    }

    #[test]
    fn a_web_push_id_is_a_subscription_kept_under_its_endpoint_digest() {
        let endpoint = format!("https://fcm.googleapis.com/fcm/send/{}", "x".repeat(400));
        let web = check_web_subscription(&subscription(&endpoint, P256DH, AUTH)).unwrap();
        assert_eq!(web.push_id, web_push_id(&endpoint));
        assert_eq!((web.push_id.len(), web.push_id.starts_with("web:")), (47, true));
        assert_eq!(check_any_push_id(&web.push_id).unwrap(), web.push_id, "the derived id is a valid push id");
        let stored: serde_json::Value = serde_json::from_str(&web.json).unwrap();
        assert_eq!(stored, serde_json::json!({"endpoint": endpoint, "keys": {"p256dh": P256DH, "auth": AUTH}}));
        assert_eq!(check_push_id(DeviceType::Web, &subscription(&endpoint, P256DH, AUTH)).unwrap(), web.push_id);
        // Padded keys are the same subscription; other keys for the same endpoint, the same device.
        let padded = check_web_subscription(&subscription(&endpoint, P256DH, "_ordMnz7uTCmrpBTeUV4Bw==")).unwrap();
        assert_eq!(padded, web);
        // A logout may name it by its subscription.
        assert_eq!(check_any_push_id(&subscription(&endpoint, P256DH, AUTH)).unwrap(), web.push_id);
    }

    #[test]
    fn a_malformed_subscription_is_refused_with_what_is_wrong() {
        let ok = "https://updates.push.services.mozilla.com/wpush/v2/abc";
        for (raw, says) in [
            ("not json".to_owned(), "subscription as JSON"),
            (r#"{"endpoint":"https://a.example/x"}"#.to_owned(), "keys"),
            (subscription("ftp://a.example/x", P256DH, AUTH), "http or https"),
            (subscription("/relative", P256DH, AUTH), "absolute URL"),
            (subscription(&format!("https://a.example/{}", "x".repeat(2048)), P256DH, AUTH), "at most 2048"),
            (subscription(&format!("https://a.example/{}", "x".repeat(4096)), P256DH, AUTH), "at most 4096"),
            (subscription(ok, "BAAA", AUTH), "keys.p256dh must be 65 bytes"),
            (subscription(ok, &P256DH.replacen('B', "A", 1), AUTH), "uncompressed"),
            (subscription(ok, P256DH, "c2hvcnQ"), "keys.auth must be 16 bytes"),
            (subscription(ok, P256DH, "!!!!"), "keys.auth is not base64url"),
        ] {
            let err = check_push_id(DeviceType::Web, &raw).unwrap_err();
            assert_eq!((err.field.as_deref(), err.code), (Some("pushId"), ErrorCode::InvalidRequest), "{raw}");
            assert!(err.message.contains(says), "{raw}: {}", err.message);
        }
    }
}
