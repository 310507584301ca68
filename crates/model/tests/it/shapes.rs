//! JSON shapes pinned against the spec's own examples, byte for byte where the spec shows them.

use model::offline::OfflineMessage;
use model::{
    AdminUserReceiveRecord, ApiResponse, Channels, ErrorCode, FailureData, MessageId, NoticeChannel, NotificationLog,
    NotificationMessage, NotificationType, Priority, PushRecord, PushRecordItem, PushRecordPage, PushRecordStats,
    PushResult, PushStatus, Sender, Target, WsNotification,
};
use serde_json::{Value, json};

/// The message behind the spec's 3.2 example.
pub fn spec_3_2_message() -> NotificationMessage {
    NotificationMessage {
        notification_type: NotificationType::SYSTEM_NOTICE,
        content: "系统将于今晚23:00-23:30进行例行维护".into(),
        data: Some(json!({"extra_info": "请提前保存工作"}).as_object().unwrap().clone()),
        time: "2025-01-27 10:30:00".into(),
        priority: Priority::Normal,
        target: Target::All,
        target_ids: vec![],
        exclude_ids: vec![],
        need_confirm: false,
        message_id: MessageId::parse("1706335800123456789-abc12345").unwrap(),
        channels: Default::default(),
        fallback: None,
        sender: Sender { id: 1, name: "admin".into() },
    }
}

/// A custom-target message with every optional field set.
pub fn sample_message() -> NotificationMessage {
    NotificationMessage {
        notification_type: NotificationType::parse("order_completed").unwrap(),
        content: "您的订单已完成".into(),
        data: None,
        time: "2025-01-27 10:30:00".into(),
        priority: Priority::Urgent,
        target: Target::Custom,
        target_ids: vec![123, 456, 789],
        exclude_ids: vec![456],
        need_confirm: true,
        message_id: MessageId::parse("1706335800123456789-def67890").unwrap(),
        channels: Channels::of([NoticeChannel::Mobile, NoticeChannel::Websocket]).unwrap(),
        fallback: None,
        sender: Sender { id: 7, name: "ops".into() },
    }
}

#[test]
fn client_frame_reproduces_the_spec_3_2_example_byte_for_byte() {
    let expected = r#"{"type":"system_notice","content":"系统将于今晚23:00-23:30进行例行维护","data":{"priority":1,"need_confirm":false,"extra_info":"请提前保存工作"},"time":"2025-01-27 10:30:00","message_id":"1706335800123456789-abc12345"}"#;
    assert_eq!(spec_3_2_message().client_frame().to_json().unwrap(), expected);
}

#[test]
fn client_frame_hides_the_internal_fields() {
    let frame: Value = serde_json::from_str(&sample_message().client_frame().to_json().unwrap()).unwrap();
    let keys: Vec<&str> = frame.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["type", "content", "data", "time", "message_id"]);
    for hidden in ["target", "target_ids", "exclude_ids", "sender_id", "sender_name"] {
        assert!(!frame.to_string().contains(hidden), "{hidden} leaked into {frame}");
    }
    assert_eq!(frame["data"], json!({"priority": 3, "need_confirm": true}));
}

#[test]
fn client_frame_parses_as_the_owned_ws_notification() {
    let json = spec_3_2_message().client_frame().to_json().unwrap();
    let parsed: WsNotification = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed.message_id, "1706335800123456789-abc12345");
    assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
}

#[test]
fn envelope_carries_the_internal_fields_and_round_trips() {
    let message = sample_message();
    let value = serde_json::to_value(&message).unwrap();
    assert_eq!(
        value,
        json!({
            "type": "order_completed", "content": "您的订单已完成", "time": "2025-01-27 10:30:00",
            "priority": 3, "target": "custom", "target_ids": [123, 456, 789], "exclude_ids": [456],
            "need_confirm": true, "message_id": "1706335800123456789-def67890",
            "channels": ["websocket", "mobile"], "sender_id": 7, "sender_name": "ops"
        })
    );
    let back: NotificationMessage = serde_json::from_value(value).unwrap();
    assert_eq!(back, message);
    assert_eq!(message.routing_key(), "custom.urgent");
}

#[test]
fn envelope_omits_empty_data_and_id_lists() {
    let mut message = spec_3_2_message();
    message.data = None;
    let value = serde_json::to_value(&message).unwrap();
    for omitted in ["data", "target_ids", "exclude_ids", "channels"] {
        assert!(value.get(omitted).is_none(), "{omitted} in {value}");
    }
}

#[test]
fn envelope_with_an_unknown_field_or_bad_id_is_rejected() {
    let mut value = serde_json::to_value(sample_message()).unwrap();
    value["surprise"] = json!(1);
    assert!(serde_json::from_value::<NotificationMessage>(value).is_err());
    let mut value = serde_json::to_value(sample_message()).unwrap();
    value["message_id"] = json!("not-an-id");
    assert!(serde_json::from_value::<NotificationMessage>(value).is_err());
}

#[test]
fn addressing_follows_target_and_exclusions() {
    let custom = sample_message();
    assert!(custom.addresses(123, false));
    assert!(!custom.addresses(456, false), "excluded");
    assert!(!custom.addresses(1, true), "not listed");
    let mut admin = spec_3_2_message();
    admin.target = Target::Admin;
    admin.exclude_ids = vec![2];
    assert!(admin.addresses(1, true));
    assert!(!admin.addresses(3, false));
    assert!(!admin.addresses(2, true));
    assert!(spec_3_2_message().addresses(99, false));
}

#[test]
fn success_response_matches_spec_6_1() {
    let response = ApiResponse::ok(PushResult {
        success: true,
        message: "系统将于今晚23:00-23:30进行例行维护".into(),
        push_time: "2025-01-27 10:30:00".into(),
        target: "all".into(),
        message_type: "system_notice".into(),
        recipients_count: "all_online_users".into(),
        message_id: "1706335800123456789-abc12345".into(),
        status: PushStatus::Delivered,
    });
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"code": 200, "message": "OK", "data": {
            "success": true, "message": "系统将于今晚23:00-23:30进行例行维护", "push_time": "2025-01-27 10:30:00",
            "target": "all", "message_type": "system_notice", "recipients_count": "all_online_users",
            "message_id": "1706335800123456789-abc12345", "status": "delivered"}})
    );
}

#[test]
fn failure_response_matches_spec_6_2() {
    let mut data = FailureData::new(ErrorCode::PushFailed, "WebSocket服务不可用");
    data.message = Some("系统通知内容".into());
    data.push_time = Some("2025-01-27 10:30:00".into());
    data.target = Some("all".into());
    data.message_type = Some("system_notice".into());
    let mut response = ApiResponse::failure(ErrorCode::PushFailed, data);
    response.message = "推送失败: WebSocket服务不可用".into();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"code": 20001, "message": "推送失败: WebSocket服务不可用", "data": {
            "success": false, "message": "系统通知内容", "push_time": "2025-01-27 10:30:00", "target": "all",
            "message_type": "system_notice", "status": "failed", "error": "WebSocket服务不可用",
            "error_code": "PUSH_FAILED"}})
    );
}

#[test]
fn record_list_matches_spec_6_3() {
    let page = PushRecordPage {
        total: 156,
        page: 1,
        page_size: 20,
        items: vec![PushRecordItem {
            id: "507f1f77bcf86cd799439011".into(),
            message_id: "1706335800123456789-abc12345".into(),
            content: "系统维护通知".into(),
            message_type: "system_notice".into(),
            target: "all".into(),
            status: "delivered".into(),
            success: true,
            push_time: "2025-01-27 10:30:00".into(),
            sender_name: "admin".into(),
            delivered_count: 45,
            failed_count: 0,
        }],
        stats: PushRecordStats {
            total_records: 156,
            success_records: 142,
            failed_records: 14,
            total_recipients: 3240,
            delivered_count: 2980,
            failed_count: 260,
        },
    };
    assert_eq!(
        serde_json::to_value(ApiResponse::ok(page)).unwrap(),
        json!({"code": 200, "message": "OK", "data": {"total": 156, "page": 1, "page_size": 20,
            "items": [{"id": "507f1f77bcf86cd799439011", "message_id": "1706335800123456789-abc12345",
                "content": "系统维护通知", "message_type": "system_notice", "target": "all", "status": "delivered",
                "success": true, "push_time": "2025-01-27 10:30:00", "sender_name": "admin",
                "delivered_count": 45, "failed_count": 0}],
            "stats": {"total_records": 156, "success_records": 142, "failed_records": 14,
                "total_recipients": 3240, "delivered_count": 2980, "failed_count": 260}}})
    );
}

#[test]
fn push_record_matches_the_spec_4_1_example_and_omits_empty_optionals() {
    let record = PushRecord {
        id: "507f1f77bcf86cd799439011".into(),
        message_id: "1706335800123456789-abc12345".into(),
        content: "系统将于今晚23:00-23:30进行例行维护".into(),
        message_type: "system_notice".into(),
        target: model::Target::All,
        target_user_ids: Vec::new(),
        recipients_count: "all_online_users".into(),
        status: model::PushStatus::Delivered,
        success: true,
        error: String::new(),
        error_code: String::new(),
        push_time: "2025-01-27 10:30:00".into(),
        created_at: "2025-01-27 10:30:00".into(),
        updated_at: "2025-01-27 10:30:00".into(),
        sender_id: 1,
        sender_name: "admin".into(),
        delivered_count: 45,
        failed_count: 0,
        total_count: 45,
        priority: 1,
        need_confirm: false,
        extra_data: None,
    };
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        json!({"id": "507f1f77bcf86cd799439011", "message_id": "1706335800123456789-abc12345",
            "content": "系统将于今晚23:00-23:30进行例行维护", "message_type": "system_notice", "target": "all",
            "recipients_count": "all_online_users", "status": "delivered", "success": true,
            "push_time": "2025-01-27 10:30:00", "created_at": "2025-01-27 10:30:00", "updated_at": "2025-01-27 10:30:00",
            "sender_id": 1, "sender_name": "admin", "delivered_count": 45, "failed_count": 0, "total_count": 45,
            "priority": 1, "need_confirm": false})
    );
}

#[test]
fn receive_record_and_log_use_the_spec_field_names() {
    let record = serde_json::to_value(AdminUserReceiveRecord::default()).unwrap();
    let keys: Vec<&str> = record.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "message_id",
            "user_id",
            "username",
            "user_role",
            "is_online",
            "is_received",
            "received_at",
            "is_read",
            "read_at",
            "is_confirmed",
            "confirmed_at",
            "device_type",
            "platform",
            "browser",
            "client_ip",
            "user_agent",
            "connection_id",
            "push_channel",
            "delivery_status",
            "retry_count",
            "error_message",
            "created_at",
            "updated_at"
        ]
    );
    let log = NotificationLog {
        id: String::new(),
        message_id: String::new(),
        user_id: 0,
        username: String::new(),
        event_type: model::DeliveryEventType::Delivered,
        status: model::LogStatus::Success,
        timestamp: String::new(),
        created_at: String::new(),
        error: String::new(),
        device_info: None,
        client_ip: String::new(),
        user_agent: String::new(),
    };
    let log = serde_json::to_value(log).unwrap();
    let keys: Vec<&str> = log.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["id", "message_id", "user_id", "username", "event_type", "status", "timestamp", "created_at"]);
}

#[test]
fn offline_message_matches_spec_5_1() {
    let raw = r#"{"type":"system_notice","content":"[离线消息] 系统维护通知","data":{"original_push_time":"2025-01-27 10:30:00"},"time":"2025-01-27 10:30:00","message_id":"1706335800123456789-abc12345","saved_at":"2025-01-27 10:30:05"}"#;
    let parsed: OfflineMessage = serde_json::from_str(raw).unwrap();
    assert!(parsed.content.starts_with(model::offline::OFFLINE_PREFIX));
    assert_eq!(serde_json::to_string(&parsed).unwrap(), raw);
}

#[test]
fn offline_entry_follows_spec_5_1_and_keeps_the_frame_data() {
    let entry = spec_3_2_message().offline_entry("2025-01-27 10:30:05".into());
    assert_eq!(
        serde_json::to_value(&entry).unwrap(),
        json!({"type": "system_notice", "content": "[离线消息] 系统将于今晚23:00-23:30进行例行维护",
            "data": {"priority": 1, "need_confirm": false, "extra_info": "请提前保存工作", "original_push_time": "2025-01-27 10:30:00"},
            "time": "2025-01-27 10:30:00", "message_id": "1706335800123456789-abc12345", "saved_at": "2025-01-27 10:30:05"})
    );
    assert_eq!(sample_message().explicit_recipients().collect::<Vec<_>>(), [123, 789]);
}
