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
///   case-sensitive).
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

/// A push id given where the device type is not (logout): at most 255 characters of the
/// characters any device type allows, so that a malformed one is refused before any lookup.
pub fn check_any_push_id(raw: &str) -> Result<String, ValidationError> {
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
    let invalid = |message: String| ValidationError::new(ErrorCode::InvalidRequest, "url", message);
    let length = raw.chars().count();
    if length == 0 || length > MAX_URL_CHARS {
        return Err(invalid(format!("url must be 1 to {MAX_URL_CHARS} characters; got {length}")));
    }
    if let Some(bad) = raw.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(format!("url must not hold spaces or control characters; found {bad:?}")));
    }
    let parsed = url::Url::parse(raw).map_err(|err| invalid(format!("url is not an absolute URL: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(format!("url must be http or https, got {}:", parsed.scheme())));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("url must name a host".to_owned()));
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
            assert!(err.message.contains("android, ios, harmony"), "{}", err.message);
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
}
