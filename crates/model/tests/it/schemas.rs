//! Real serialised values validated against the JSON Schemas in `proto-schemas/`.

use crate::shapes::{sample_message, spec_3_2_message};
use model::{ApiResponse, ErrorCode, FailureData, PushResult, PushStatus, WsMessage};
use serde_json::{Value, json};

/// Validates `instance` against `proto-schemas/<name>`, panicking with every violation.
pub fn assert_valid(name: &str, instance: &Value) {
    let path = format!("{}/../../proto-schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{instance} violates {name}: {errors:#?}");
}

/// Asserts that `instance` does not validate against `proto-schemas/<name>`.
pub fn assert_invalid(name: &str, instance: &Value) {
    let path = format!("{}/../../proto-schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(!jsonschema::is_valid(&schema, instance), "{instance} should violate {name}");
}

#[test]
fn client_frames_match_the_ws_notification_schema() {
    let frame: Value = serde_json::from_str(&spec_3_2_message().client_frame().to_json().unwrap()).unwrap();
    assert_valid("ws-notification.schema.json", &frame);
    let bare: Value = serde_json::from_str(&sample_message().client_frame().to_json().unwrap()).unwrap();
    assert_valid("ws-notification.schema.json", &bare);
}

#[test]
fn envelopes_match_the_bus_envelope_schema() {
    for message in [spec_3_2_message(), sample_message()] {
        assert_valid("bus-envelope.schema.json", &serde_json::to_value(&message).unwrap());
    }
    assert_invalid("bus-envelope.schema.json", &json!({"type": "system_notice"}));
}

#[test]
fn gateway_frames_match_the_ws_message_schema() {
    let time = "2025-01-27 10:30:00".to_owned();
    assert_valid("ws-message.schema.json", &serde_json::to_value(WsMessage::pong(time.clone())).unwrap());
    let overflow = WsMessage::offline_overflow(50, time.clone());
    assert_valid("ws-message.schema.json", &serde_json::to_value(overflow).unwrap());
    let error = WsMessage::error("INVALID_FRAME", "frame is not JSON", time);
    assert_valid("ws-message.schema.json", &serde_json::to_value(error).unwrap());
}

#[test]
fn responses_match_their_schemas() {
    let success = ApiResponse::ok(PushResult {
        success: true,
        message: "hi".into(),
        push_time: "2025-01-27 10:30:00".into(),
        target: "all".into(),
        message_type: "system_notice".into(),
        recipients_count: "all_online_users".into(),
        message_id: "1706335800123456789-abc12345".into(),
        status: PushStatus::Queued,
    });
    assert_valid("push-success-response.schema.json", &serde_json::to_value(&success).unwrap());
    for code in ErrorCode::ALL {
        let failure = ApiResponse::failure(*code, FailureData::new(*code, "something went wrong"));
        assert_valid("failure-response.schema.json", &serde_json::to_value(&failure).unwrap());
    }
}

#[test]
fn the_spec_request_examples_match_the_request_schema() {
    for example in [
        json!({"content": "系统将于今晚23:00-23:30进行例行维护，请提前做好准备", "type": "system_notice", "target": "all", "user_ids": []}),
        json!({"content": "系统将于今晚23:00进行维护", "type": "system_maintain", "target": "admin"}),
        json!({"content": "您的订单已完成", "type": "order_completed", "target": "custom", "user_ids": [123, 456, 789]}),
    ] {
        assert_valid("notice-request.schema.json", &example);
    }
    assert_invalid("notice-request.schema.json", &json!({"content": "x", "target": "custom"}));
    assert_invalid("notice-request.schema.json", &json!({"content": "x", "target": "everyone"}));
}

#[test]
fn offline_entries_match_the_offline_message_schema() {
    for message in [spec_3_2_message(), sample_message()] {
        let entry = message.offline_entry("2025-01-27 10:30:05".into());
        assert_valid("offline-message.schema.json", &serde_json::to_value(entry).unwrap());
    }
}

#[test]
fn delivery_events_and_sync_frames_match_their_schemas() {
    let event = model::DeliveryEvent {
        event_id: model::DeliveryEvent::new_event_id(),
        event_type: model::DeliveryEventType::Read,
        message_id: model::MessageId::parse("1706335800123456789-abc12345").unwrap(),
        user_id: 123,
        username: "alice".into(),
        channel: model::ReportChannel::Websocket,
        connection_id: "3f2a9c1e-7".into(),
        timestamp: "2025-01-27 10:31:00".into(),
        user_role: Some(model::Role::User),
        push_channel: Some(model::PushChannel::Offline),
        client_ip: "203.0.113.9".into(),
        user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)".into(),
    };
    assert_eq!(event.routing_key(), "read.123");
    assert_valid("delivery-event.schema.json", &serde_json::to_value(&event).unwrap());
    let from_rest = model::DeliveryEvent { channel: model::ReportChannel::Rest, push_channel: None, ..event.clone() };
    let json = serde_json::to_value(&from_rest).unwrap();
    assert!(json.get("push_channel").is_none(), "{json}");
    assert_valid("delivery-event.schema.json", &json);
    let sync = WsMessage::sync(event.event_type, event.message_id.as_str(), "2025-01-27 10:31:00".into());
    assert_valid("ws-message.schema.json", &serde_json::to_value(sync).unwrap());
}
