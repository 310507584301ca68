//! `POST /api/admin/system/notice`: the request as sent and the draft it becomes.

use crate::{MAX_CONTENT_CHARS, MAX_DATA_BYTES, MAX_USER_IDS, RESERVED_DATA_KEYS, ValidationError};
use crate::{check_storable, check_storable_json};
use model::{
    Channels, ErrorCode, Fallback, MAX_FALLBACK_SECS, NoticeChannel, NotificationType, Priority, Target, UserId,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// The notice request as sent (spec 1.1, plus the optional fields of the internal message).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemNoticeRequest {
    /// Required, at most 500 characters.
    pub content: Option<String>,
    /// A lower_snake_case type; `system_notice` when absent.
    #[serde(rename = "type")]
    pub notification_type: Option<String>,
    /// `all` (default), `admin` or `custom`.
    pub target: Option<String>,
    /// Required and non-empty for `custom`; at most 1000, positive, distinct.
    pub user_ids: Option<Vec<i64>>,
    /// Users who must not receive it; at most 1000, positive, distinct.
    pub exclude_user_ids: Option<Vec<i64>>,
    /// A JSON object of at most 1 KiB, shown to clients in the frame's `data`.
    pub data: Option<Value>,
    /// 0-3 or `low`/`normal`/`high`/`urgent`; `normal` when absent.
    pub priority: Option<Priority>,
    /// Whether recipients are asked to confirm; `false` when absent.
    pub need_confirm: Option<bool>,
    /// A non-empty list of distinct channels (`websocket`, `mobile`); `["websocket"]` when
    /// absent.
    pub channels: Option<Channels>,
    /// `{"mobile_after_secs": N}`: recipients who have not acknowledged it N seconds (1 to a
    /// day) after it was accepted get it on their mobile devices. WebSocket notices only.
    pub fallback: Option<Fallback>,
}

/// A notice that passed every rule, ready to be stamped and published.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeDraft {
    /// The text.
    pub content: String,
    /// The type.
    pub notification_type: NotificationType,
    /// The target.
    pub target: Target,
    /// The addressed users (custom only), in request order.
    pub user_ids: Vec<UserId>,
    /// The excluded users.
    pub exclude_ids: Vec<UserId>,
    /// The sender's data object.
    pub data: Option<Map<String, Value>>,
    /// The priority.
    pub priority: Priority,
    /// Whether confirmation is requested.
    pub need_confirm: bool,
    /// The channels it goes out on.
    pub channels: Channels,
    /// Its fallback to mobile, if any.
    pub fallback: Option<Fallback>,
}

impl NoticeDraft {
    /// How many users are explicitly addressed once exclusions are applied.
    pub fn explicit_recipients(&self) -> usize {
        self.user_ids.iter().filter(|id| !self.exclude_ids.contains(id)).count()
    }
}

/// Parses a JSON body into a request, mapping a type error to the code of the field it is in.
pub fn parse_notice(body: Value) -> Result<SystemNoticeRequest, ValidationError> {
    serde_path_to_error::deserialize(body).map_err(|err| {
        let field = err.path().iter().next().map(|segment| segment.to_string()).filter(|s| s != "?");
        let inner = err.into_inner().to_string();
        match field.as_deref() {
            None | Some(".") => ValidationError::request(format!("invalid request body: {inner}")),
            Some(field) => {
                let code = match field {
                    "target" => ErrorCode::InvalidTarget,
                    "user_ids" | "exclude_user_ids" => ErrorCode::InvalidUserIds,
                    "priority" => ErrorCode::InvalidPriority,
                    "type" => ErrorCode::InvalidType,
                    "data" => ErrorCode::InvalidData,
                    "content" => ErrorCode::MissingContent,
                    _ => ErrorCode::InvalidRequest,
                };
                ValidationError::new(code, field, format!("{field}: {inner}"))
            }
        }
    })
}

impl TryFrom<SystemNoticeRequest> for NoticeDraft {
    type Error = ValidationError;

    fn try_from(req: SystemNoticeRequest) -> Result<Self, Self::Error> {
        let content = parse_content(req.content)?;
        let notification_type = match req.notification_type.as_deref() {
            None | Some("") => NotificationType::default(),
            Some(raw) => NotificationType::parse(raw)
                .map_err(|err| ValidationError::new(ErrorCode::InvalidType, "type", err.to_string()))?,
        };
        let target = parse_target(req.target.as_deref())?;
        let user_ids = parse_ids("user_ids", req.user_ids.unwrap_or_default())?;
        let exclude_ids = parse_ids("exclude_user_ids", req.exclude_user_ids.unwrap_or_default())?;
        match target {
            Target::Custom if user_ids.is_empty() => {
                return Err(ValidationError::new(
                    ErrorCode::MissingUserIds,
                    "user_ids",
                    "user_ids is required and must not be empty when target is custom",
                ));
            }
            Target::Custom if user_ids.iter().all(|id| exclude_ids.contains(id)) => {
                return Err(ValidationError::new(
                    ErrorCode::InvalidUserIds,
                    "exclude_user_ids",
                    "exclude_user_ids excludes every user in user_ids: the notice would reach no one",
                ));
            }
            Target::Custom => {}
            _ if !user_ids.is_empty() => {
                return Err(ValidationError::new(
                    ErrorCode::InvalidUserIds,
                    "user_ids",
                    format!(
                        "user_ids is only used with target custom, not {target}; use exclude_user_ids to leave users out"
                    ),
                ));
            }
            _ => {}
        }
        let channels = req.channels.unwrap_or_default();
        Ok(Self {
            content,
            notification_type,
            target,
            user_ids,
            exclude_ids,
            data: parse_data(req.data)?,
            priority: req.priority.unwrap_or_default(),
            need_confirm: req.need_confirm.unwrap_or(false),
            channels,
            fallback: req.fallback.map(|fallback| check_fallback(fallback, channels)).transpose()?,
        })
    }
}

/// A fallback waits for a WebSocket acknowledgement: it needs the WebSocket channel, and a
/// notice that goes to phones at once has nothing to fall back to.
fn check_fallback(fallback: Fallback, channels: Channels) -> Result<Fallback, ValidationError> {
    let refuse = |message: String| ValidationError::new(ErrorCode::InvalidRequest, "fallback", message);
    if !(1..=MAX_FALLBACK_SECS).contains(&fallback.mobile_after_secs) {
        return Err(refuse(format!(
            "fallback.mobile_after_secs is {}; it must be 1 to {MAX_FALLBACK_SECS} seconds",
            fallback.mobile_after_secs
        )));
    }
    if channels.has(NoticeChannel::Mobile) || !channels.has(NoticeChannel::Websocket) {
        return Err(refuse(
            "fallback applies to WebSocket notices: leave mobile out of channels (a notice with the mobile channel goes to phones at once)".to_owned(),
        ));
    }
    Ok(fallback)
}

fn parse_content(raw: Option<String>) -> Result<String, ValidationError> {
    let content = raw.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
        ValidationError::new(ErrorCode::MissingContent, "content", "content is required and must not be blank")
    })?;
    check_storable("content", &content)?;
    let chars = content.chars().count();
    if chars > MAX_CONTENT_CHARS {
        return Err(ValidationError::new(
            ErrorCode::ContentTooLong,
            "content",
            format!("content is {chars} characters long; the limit is {MAX_CONTENT_CHARS}"),
        ));
    }
    Ok(content)
}

fn parse_target(raw: Option<&str>) -> Result<Target, ValidationError> {
    match raw {
        None | Some("") | Some("all") => Ok(Target::All),
        Some("admin") => Ok(Target::Admin),
        Some("custom") => Ok(Target::Custom),
        Some(other) => Err(ValidationError::new(
            ErrorCode::InvalidTarget,
            "target",
            format!("target `{}` is not valid; use all, admin or custom", other.chars().take(40).collect::<String>()),
        )),
    }
}

fn parse_ids(field: &str, ids: Vec<i64>) -> Result<Vec<UserId>, ValidationError> {
    if ids.len() > MAX_USER_IDS {
        return Err(ValidationError::new(
            ErrorCode::TooManyUserIds,
            field,
            format!(
                "{field} holds {} ids; the limit is {MAX_USER_IDS} per request, send larger audiences in batches",
                ids.len()
            ),
        ));
    }
    if let Some(bad) = ids.iter().find(|id| **id <= 0) {
        return Err(ValidationError::new(
            ErrorCode::InvalidUserIds,
            field,
            format!("{field} holds {bad}; user ids are positive integers"),
        ));
    }
    let mut seen = HashSet::with_capacity(ids.len());
    if let Some(dup) = ids.iter().find(|id| !seen.insert(**id)) {
        return Err(ValidationError::new(
            ErrorCode::InvalidUserIds,
            field,
            format!("{field} holds {dup} more than once"),
        ));
    }
    Ok(ids)
}

fn parse_data(raw: Option<Value>) -> Result<Option<Map<String, Value>>, ValidationError> {
    let map = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(ValidationError::new(ErrorCode::InvalidData, "data", "data must be a JSON object"));
        }
    };
    for (key, value) in &map {
        check_storable(&format!("data key {key:?}"), key)?;
        check_storable_json(&format!("data.{key}"), value)?;
    }
    if let Some(key) = RESERVED_DATA_KEYS.iter().find(|k| map.contains_key(**k)) {
        return Err(ValidationError::new(
            ErrorCode::InvalidData,
            "data",
            format!("data.{key} is reserved: set the request's own `{key}` field instead"),
        ));
    }
    let size = serde_json::to_vec(&map).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
    if size > MAX_DATA_BYTES {
        return Err(ValidationError::new(
            ErrorCode::DataTooLarge,
            "data",
            format!("data is {size} bytes as JSON; the limit is {MAX_DATA_BYTES}"),
        ));
    }
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: Value) -> Result<NoticeDraft, ValidationError> {
        parse_notice(body).and_then(NoticeDraft::try_from)
    }

    fn code_of(body: Value) -> (ErrorCode, Option<String>) {
        let err = check(body.clone()).expect_err(&format!("{body} should be rejected"));
        assert!(!err.message.is_empty());
        (err.code, err.field)
    }

    fn ids(n: i64) -> Vec<i64> {
        (1..=n).collect()
    }

    #[test]
    fn a_minimal_request_gets_the_defaults() {
        let draft = check(json!({"content": "hello"})).unwrap();
        assert_eq!(draft.target, Target::All);
        assert_eq!(draft.notification_type, NotificationType::SYSTEM_NOTICE);
        assert_eq!(draft.priority, Priority::Normal);
        assert!(!draft.need_confirm && draft.data.is_none() && draft.user_ids.is_empty());
    }

    #[test]
    fn the_spec_examples_are_accepted() {
        check(json!({"content": "系统将于今晚23:00-23:30进行例行维护，请提前做好准备", "type": "system_notice", "target": "all", "user_ids": []})).unwrap();
        check(json!({"content": "系统将于今晚23:00进行维护", "type": "system_maintain", "target": "admin"})).unwrap();
        let custom = check(json!({"content": "您的订单已完成", "type": "order_completed", "target": "custom", "user_ids": [123, 456, 789]})).unwrap();
        assert_eq!(custom.user_ids, [123, 456, 789]);
        assert_eq!(custom.notification_type.as_str(), "order_completed");
    }

    #[test]
    fn content_of_500_characters_is_accepted_and_501_rejected() {
        check(json!({"content": "a".repeat(500)})).unwrap();
        assert_eq!(code_of(json!({"content": "a".repeat(501)})).0, ErrorCode::ContentTooLong);
    }

    #[test]
    fn cjk_content_counts_characters_not_bytes() {
        check(json!({"content": "维".repeat(500)})).unwrap();
        assert_eq!(code_of(json!({"content": "维".repeat(501)})).0, ErrorCode::ContentTooLong);
    }

    #[test]
    fn emoji_content_counts_one_per_emoji() {
        check(json!({"content": "😀".repeat(500)})).unwrap();
        assert_eq!(code_of(json!({"content": "😀".repeat(501)})).0, ErrorCode::ContentTooLong);
    }

    #[test]
    fn missing_empty_or_blank_content_is_rejected() {
        for body in [json!({}), json!({"content": ""}), json!({"content": "   "}), json!({"content": null})] {
            assert_eq!(code_of(body), (ErrorCode::MissingContent, Some("content".into())));
        }
        assert_eq!(code_of(json!({"content": 5})).0, ErrorCode::MissingContent);
    }

    #[test]
    fn custom_target_without_user_ids_is_rejected() {
        for body in
            [json!({"content": "x", "target": "custom"}), json!({"content": "x", "target": "custom", "user_ids": []})]
        {
            assert_eq!(code_of(body), (ErrorCode::MissingUserIds, Some("user_ids".into())));
        }
    }

    #[test]
    fn a_thousand_user_ids_are_accepted_and_1001_rejected() {
        check(json!({"content": "x", "target": "custom", "user_ids": ids(1000)})).unwrap();
        assert_eq!(
            code_of(json!({"content": "x", "target": "custom", "user_ids": ids(1001)})).0,
            ErrorCode::TooManyUserIds
        );
        assert_eq!(code_of(json!({"content": "x", "exclude_user_ids": ids(1001)})).0, ErrorCode::TooManyUserIds);
    }

    #[test]
    fn duplicate_or_non_positive_user_ids_are_rejected() {
        for bad in [json!([1, 2, 1]), json!([0]), json!([-3]), json!(["7"]), json!([1.5])] {
            let body = json!({"content": "x", "target": "custom", "user_ids": bad});
            assert_eq!(code_of(body), (ErrorCode::InvalidUserIds, Some("user_ids".into())));
        }
    }

    #[test]
    fn user_ids_with_a_broadcast_target_are_rejected() {
        assert_eq!(code_of(json!({"content": "x", "target": "all", "user_ids": [1]})).0, ErrorCode::InvalidUserIds);
    }

    #[test]
    fn excluding_every_custom_user_is_rejected() {
        let body = json!({"content": "x", "target": "custom", "user_ids": [1, 2], "exclude_user_ids": [2, 1]});
        assert_eq!(code_of(body).0, ErrorCode::InvalidUserIds);
        let ok =
            check(json!({"content": "x", "target": "custom", "user_ids": [1, 2, 3], "exclude_user_ids": [2]})).unwrap();
        assert_eq!(ok.explicit_recipients(), 2);
    }

    #[test]
    fn unknown_targets_are_rejected() {
        for bad in [json!("everyone"), json!("ALL"), json!("user"), json!("group"), json!(3)] {
            assert_eq!(code_of(json!({"content": "x", "target": bad})).0, ErrorCode::InvalidTarget);
        }
        assert_eq!(check(json!({"content": "x", "target": ""})).unwrap().target, Target::All);
    }

    #[test]
    fn data_of_1024_bytes_is_accepted_and_1025_rejected() {
        // {"k":"..."} is 8 bytes around the value.
        check(json!({"content": "x", "data": {"k": "v".repeat(1016)}})).unwrap();
        assert_eq!(
            code_of(json!({"content": "x", "data": {"k": "v".repeat(1017)}})),
            (ErrorCode::DataTooLarge, Some("data".into()))
        );
    }

    #[test]
    fn text_a_store_cannot_hold_is_refused_with_its_field() {
        let nul = "before\u{0}after";
        assert_eq!(code_of(json!({"content": nul})), (ErrorCode::InvalidText, Some("content".into())));
        assert_eq!(
            code_of(json!({"content": "x", "data": {"order": {"note": nul}}})),
            (ErrorCode::InvalidText, Some("data.order.note".into()))
        );
        assert_eq!(code_of(json!({"content": "x", "data": {nul: 1}})).0, ErrorCode::InvalidText);
    }

    #[test]
    fn data_must_be_an_object_without_reserved_keys() {
        for bad in [json!([1]), json!("text"), json!({"priority": 3}), json!({"need_confirm": true})] {
            assert_eq!(code_of(json!({"content": "x", "data": bad})).0, ErrorCode::InvalidData);
        }
        assert!(check(json!({"content": "x", "data": null})).unwrap().data.is_none());
    }

    #[test]
    fn types_must_be_snake_case_but_need_not_be_known() {
        assert_eq!(code_of(json!({"content": "x", "type": "Order-Paid"})).0, ErrorCode::InvalidType);
        assert_eq!(
            check(json!({"content": "x", "type": "alarm_fired"})).unwrap().notification_type.as_str(),
            "alarm_fired"
        );
    }

    #[test]
    fn priority_accepts_numbers_and_names_only_in_range() {
        assert_eq!(check(json!({"content": "x", "priority": 3})).unwrap().priority, Priority::Urgent);
        assert_eq!(check(json!({"content": "x", "priority": "low"})).unwrap().priority, Priority::Low);
        for bad in [json!(4), json!(-1), json!("asap")] {
            assert_eq!(code_of(json!({"content": "x", "priority": bad})).0, ErrorCode::InvalidPriority);
        }
    }

    #[test]
    fn unknown_fields_and_non_objects_are_invalid_requests() {
        let (code, _) = code_of(json!({"content": "x", "user_id": [1]}));
        assert_eq!(code, ErrorCode::InvalidRequest);
        assert_eq!(code_of(json!([1, 2])).0, ErrorCode::InvalidRequest);
        assert_eq!(code_of(json!({"content": "x", "need_confirm": "yes"})).0, ErrorCode::InvalidRequest);
    }

    #[test]
    fn messages_name_the_field() {
        let err = check(json!({"content": "x", "target": "custom", "user_ids": [1, 1]})).unwrap_err();
        assert!(err.message.contains("user_ids"), "{}", err.message);
        let err = check(json!({"content": "x", "priority": 9})).unwrap_err();
        assert!(err.message.contains("priority"), "{}", err.message);
    }

    #[test]
    fn a_fallback_is_a_whole_number_of_seconds_up_to_a_day_on_websocket_notices_only() {
        let fallback = |secs| Some(Fallback { mobile_after_secs: secs });
        assert_eq!(check(json!({"content": "x"})).unwrap().fallback, None);
        let ok = check(json!({"content": "x", "fallback": {"mobile_after_secs": 2}})).unwrap();
        assert_eq!(ok.fallback, fallback(2));
        let day = json!({"content": "x", "channels": ["websocket"], "fallback": {"mobile_after_secs": 86_400}});
        assert_eq!(check(day).unwrap().fallback, fallback(86_400));
        for (bad, says) in [
            (json!({"mobile_after_secs": 0}), "1 to 86400"),
            (json!({"mobile_after_secs": 86_401}), "1 to 86400"),
            (json!({"mobile_after_secs": -1}), "fallback"),
            (json!({"mobile_after_secs": 1.5}), "fallback"),
            (json!({"mobile_after_secs": "2"}), "fallback"),
            (json!({}), "mobile_after_secs"),
            (json!({"mobile_after_secs": 2, "web_after_secs": 1}), "unknown field"),
            (json!(2), "fallback"),
        ] {
            let err = check(json!({"content": "x", "fallback": bad})).unwrap_err();
            assert_eq!((err.code, err.field.as_deref()), (ErrorCode::InvalidRequest, Some("fallback")), "{bad}");
            assert!(err.message.contains(says), "{bad}: {}", err.message);
        }
        for channels in [json!(["mobile"]), json!(["websocket", "mobile"])] {
            let err =
                check(json!({"content": "x", "channels": channels, "fallback": {"mobile_after_secs": 2}})).unwrap_err();
            assert_eq!((err.code, err.field.as_deref()), (ErrorCode::InvalidRequest, Some("fallback")));
            assert!(err.message.contains("leave mobile out of channels"), "{}", err.message);
        }
    }

    #[test]
    fn channels_default_to_websocket_and_must_be_a_distinct_known_list() {
        use model::NoticeChannel;
        assert_eq!(check(json!({"content": "x"})).unwrap().channels, Channels::WEBSOCKET);
        let both = check(json!({"content": "x", "channels": ["websocket", "mobile"]})).unwrap().channels;
        assert!(both.has(NoticeChannel::Websocket) && both.has(NoticeChannel::Mobile));
        let mobile = check(json!({"content": "x", "channels": ["mobile"]})).unwrap().channels;
        assert!(mobile.has(NoticeChannel::Mobile) && !mobile.has(NoticeChannel::Websocket));
        for bad in [json!([]), json!(["sms"]), json!(["mobile", "mobile"]), json!("mobile"), json!([true])] {
            let err = check(json!({"content": "x", "channels": bad})).unwrap_err();
            assert_eq!((err.code, err.field.as_deref()), (ErrorCode::InvalidRequest, Some("channels")), "{bad}");
            assert!(err.message.starts_with("channels: "), "{}", err.message);
        }
    }
}
