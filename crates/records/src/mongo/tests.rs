//! The documents' shapes, the index specs and the filters, without a server.

use super::super::millis_of;
use super::*;
use model::{DeliveryEvent, MessageId, NotificationMessage, NotificationType, Priority, Sender, Target};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::spec::ElementType as E;
use serde_json::{Map, Value};

fn notice() -> NewRecord {
    let mut data = Map::new();
    data.insert("order_id".into(), Value::from("A-17"));
    data.insert("amount".into(), Value::from(42));
    let message = NotificationMessage {
        notification_type: NotificationType::parse("order_completed").unwrap_or(NotificationType::SYSTEM_NOTICE),
        content: "your order shipped".into(),
        data: Some(data),
        time: "2026-01-01 08:00:00".into(),
        priority: Priority::High,
        target: Target::Custom,
        target_ids: vec![2, 3],
        exclude_ids: Vec::new(),
        need_confirm: true,
        message_id: MessageId::from_parts(1_767_254_400_000_000_000, uuid::Uuid::nil()),
        channels: Default::default(),
        fallback: None,
        sender: Sender { id: 1, name: "admin".into() },
    };
    NewRecord { addressed: vec![2, 3], message }
}

fn event(kind: DeliveryEventType) -> RecordedEvent {
    let record = notice();
    RecordedEvent {
        event: DeliveryEvent {
            event_id: "ev-1".into(),
            event_type: kind,
            message_id: record.message.message_id,
            user_id: 2,
            username: "alice".into(),
            channel: model::ReportChannel::Websocket,
            connection_id: "conn-1".into(),
            timestamp: "2026-01-01 08:00:05".into(),
            user_role: Some(model::Role::User),
            push_channel: Some(model::PushChannel::Websocket),
            client_ip: "203.0.113.7".into(),
            user_agent: "Mozilla/5.0".into(),
        },
        device: super::super::DeviceInfo {
            device_type: "desktop".into(),
            platform: "linux".into(),
            browser: "firefox".into(),
        },
    }
}

/// Field name to BSON type, in document order.
fn shape(doc: &Document) -> Vec<(&str, E)> {
    doc.iter().map(|(k, v)| (k.as_str(), v.element_type())).collect()
}

#[test]
fn a_push_record_document_has_the_spec_fields_and_types() {
    let doc = mongodb::bson::to_document(&PushRecordDoc::new(&notice(), "2026-01-01 08:00:01", 0)).unwrap();
    assert_eq!(
        shape(&doc),
        vec![
            ("message_id", E::String),
            ("content", E::String),
            ("message_type", E::String),
            ("target", E::String),
            ("target_user_ids", E::Array),
            ("recipients_count", E::String),
            ("status", E::String),
            ("success", E::Boolean),
            ("push_time", E::String),
            ("created_at", E::String),
            ("updated_at", E::String),
            ("sender_id", E::Int64),
            ("sender_name", E::String),
            ("delivered_count", E::Int64),
            ("failed_count", E::Int64),
            ("total_count", E::Int64),
            ("priority", E::Int32),
            ("need_confirm", E::Boolean),
            ("extra_data", E::EmbeddedDocument),
            ("push_ts", E::DateTime),
        ]
    );
    assert_eq!(doc.get_array("target_user_ids").unwrap(), &vec![Bson::Int64(2), Bson::Int64(3)]);
    assert_eq!(doc.get_str("status").unwrap(), "queued");
    assert_eq!(doc.get_i64("total_count").unwrap(), 2);
    assert_eq!(doc.get_i32("priority").unwrap(), 2);
    assert_eq!(doc.get_document("extra_data").unwrap().get_str("order_id").unwrap(), "A-17");
    assert_eq!(doc.get_datetime("push_ts").unwrap().timestamp_millis(), 1_767_254_400_000);
    assert!(!doc.contains_key("_id"), "the server assigns _id");
    assert!(!doc.contains_key("error") && !doc.contains_key("error_code"), "omitempty");
}

#[test]
fn a_push_record_reads_back_as_the_model() {
    let stored = PushRecordDoc { id: Some(ObjectId::new()), ..PushRecordDoc::new(&notice(), "x", 0) };
    let doc = mongodb::bson::to_document(&stored).unwrap();
    let back: PushRecordDoc = mongodb::bson::from_document(doc).unwrap();
    assert_eq!(back, stored);
    let view = back.into_view();
    assert_eq!(view.id.len(), 24, "ObjectId as hex");
    assert_eq!((view.priority, view.need_confirm, view.target_user_ids), (2, true, vec![2, 3]));
    assert_eq!(view.extra_data.unwrap()["amount"], 42);
}

#[test]
fn a_receive_record_document_has_the_spec_fields_and_types() {
    let time = TimeFormat::default();
    let at = |raw: &str| millis_of(&time, raw).unwrap();
    let mut receipt = pending_receipt("1-abcdefgh", 2, at("2026-01-01 08:00:01"));
    merge(&mut receipt, &event(DeliveryEventType::Delivered), 1, &time, at("2026-01-01 08:00:06"));
    let stored = ReceiveRecordDoc::new(receipt.clone(), None, DateTime::from_millis(5), 0, &time);
    let doc = mongodb::bson::to_document(&stored).unwrap();
    // The strings read back as the instants they were rendered from.
    assert_eq!(stored.clone().receipt(&time), receipt);
    assert_eq!(
        (stored.created_at.as_str(), stored.received_at.as_str()),
        ("2026-01-01 08:00:01", "2026-01-01 08:00:05")
    );
    let strings = [
        "username",
        "user_role",
        "received_at",
        "read_at",
        "confirmed_at",
        "device_type",
        "platform",
        "browser",
        "client_ip",
        "user_agent",
        "connection_id",
        "push_channel",
        "delivery_status",
        "error_message",
        "created_at",
        "updated_at",
    ];
    for key in strings {
        assert_eq!(doc.get(key).map(Bson::element_type), Some(E::String), "{key}");
    }
    for key in ["is_online", "is_received", "is_read", "is_confirmed"] {
        assert_eq!(doc.get(key).map(Bson::element_type), Some(E::Boolean), "{key}");
    }
    assert_eq!(doc.get("message_id").map(Bson::element_type), Some(E::String));
    assert_eq!(doc.get("user_id").map(Bson::element_type), Some(E::Int64));
    assert_eq!(doc.get("retry_count").map(Bson::element_type), Some(E::Int32));
    assert_eq!(doc.get("created_ts").map(Bson::element_type), Some(E::DateTime));
    assert_eq!(doc.get("rev").map(Bson::element_type), Some(E::Int64));
    assert_eq!(doc.len(), strings.len() + 4 + 5, "no other fields: {doc:?}");
    assert_eq!(doc.get_str("delivery_status").unwrap(), "delivered");
    assert_eq!(doc.get_str("push_channel").unwrap(), "websocket");
    assert_eq!((doc.get_bool("is_received").unwrap(), doc.get_bool("is_online").unwrap()), (true, true));
    assert_eq!(doc.get_str("browser").unwrap(), "firefox");
}

#[test]
fn a_log_document_has_the_spec_fields_and_omits_what_is_empty() {
    let time = TimeFormat::default();
    let doc = mongodb::bson::to_document(&NotificationLogDoc::new(
        &event(DeliveryEventType::Read),
        &time,
        "2026-01-01 08:00:06",
        0,
    ))
    .unwrap();
    assert_eq!(
        shape(&doc),
        vec![
            ("event_id", E::String),
            ("message_id", E::String),
            ("user_id", E::Int64),
            ("username", E::String),
            ("event_type", E::String),
            ("status", E::String),
            ("timestamp", E::String),
            ("created_at", E::String),
            ("device_info", E::EmbeddedDocument),
            ("client_ip", E::String),
            ("user_agent", E::String),
            ("ts", E::DateTime),
        ]
    );
    assert_eq!((doc.get_str("event_type").unwrap(), doc.get_str("status").unwrap()), ("read", "success"));
    assert_eq!(doc.get_document("device_info").unwrap().get_str("platform").unwrap(), "linux");
    assert_eq!(
        doc.get_datetime("ts").unwrap().timestamp_millis(),
        millis_of(&time, "2026-01-01 08:00:05").unwrap(),
        "the event's own time"
    );

    let mut bare = event(DeliveryEventType::Failed);
    bare.event.client_ip.clear();
    bare.event.user_agent.clear();
    bare.event.connection_id.clear();
    bare.device = super::super::DeviceInfo::default();
    let doc = mongodb::bson::to_document(&NotificationLogDoc::new(&bare, &time, "x", 0)).unwrap();
    for key in ["error", "device_info", "client_ip", "user_agent", "_id"] {
        assert!(!doc.contains_key(key), "{key} is omitted when empty: {doc:?}");
    }
    assert_eq!(doc.get_str("status").unwrap(), "failed");
}

#[test]
fn the_indexes_cover_lookups_uniqueness_and_retention() {
    let retention = Retention {
        records: std::time::Duration::from_secs(30 * 86_400),
        logs: std::time::Duration::from_secs(7 * 86_400),
    };
    let specs: Vec<(&str, Document)> = index_specs(retention)
        .into_iter()
        .map(|(coll, model)| (coll, mongodb::bson::to_document(&model).unwrap()))
        .collect();
    let expected = vec![
        (PUSH_RECORDS, doc! { "key": { "message_id": 1 }, "name": "message_id_unique", "unique": true }),
        (PUSH_RECORDS, doc! { "key": { "push_ts": 1 }, "expireAfterSeconds": 2_592_000, "name": "push_ts_ttl" }),
        (PUSH_RECORDS, doc! { "key": { "sender_id": 1, "push_ts": -1 }, "name": "sender_id_push_ts" }),
        (PUSH_RECORDS, doc! { "key": { "status": 1, "push_ts": -1 }, "name": "status_push_ts" }),
        (
            RECEIVE_RECORDS,
            doc! { "key": { "message_id": 1, "user_id": 1 }, "name": "message_id_user_id_unique", "unique": true },
        ),
        (RECEIVE_RECORDS, doc! { "key": { "user_id": 1, "created_ts": -1 }, "name": "user_id_created_ts" }),
        (
            RECEIVE_RECORDS,
            doc! { "key": { "created_ts": 1 }, "expireAfterSeconds": 2_592_000, "name": "created_ts_ttl" },
        ),
        (NOTIFICATION_LOGS, doc! { "key": { "event_id": 1 }, "name": "event_id_unique", "unique": true }),
        (NOTIFICATION_LOGS, doc! { "key": { "message_id": 1, "ts": 1 }, "name": "message_id_ts" }),
        (NOTIFICATION_LOGS, doc! { "key": { "user_id": 1, "ts": -1 }, "name": "user_id_ts" }),
        (NOTIFICATION_LOGS, doc! { "key": { "ts": 1 }, "expireAfterSeconds": 604_800, "name": "ts_ttl" }),
    ];
    assert_eq!(specs.len(), expected.len());
    for ((coll, spec), (want_coll, want)) in specs.iter().zip(&expected) {
        assert_eq!(coll, want_coll);
        // Compare as sets of fields: the driver may order options differently.
        let mut got: Vec<_> = spec.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut exp: Vec<_> = want.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, exp, "{coll}");
    }
}

#[test]
fn queries_become_filters() {
    let query = RecordQuery {
        page: 2,
        page_size: 20,
        message_type: Some(model::NotificationType::SYSTEM_NOTICE),
        target: Some(Target::Custom),
        status: Some(model::PushStatus::Partial),
        sender_id: Some(7),
        from_ms: Some(1_000),
        to_ms: Some(2_000),
        content: Some("a.b*".into()),
    };
    assert_eq!(
        record_filter(&query),
        doc! {
            "message_type": "system_notice",
            "target": "custom",
            "status": "partial",
            "sender_id": 7_i64,
            "push_ts": { "$gte": DateTime::from_millis(1_000), "$lte": DateTime::from_millis(2_000) },
            "$expr": { "$gte": [ { "$indexOfCP": ["$content", "a.b*"] }, 0 ] },
        }
    );
    assert_eq!(record_filter(&RecordQuery::default()), Document::new());
    let logs = LogQuery {
        page: 1,
        page_size: 10,
        message_id: Some("1-abcdefgh".into()),
        user_id: Some(3),
        event_type: Some(DeliveryEventType::Read),
        from_ms: Some(5),
        to_ms: None,
    };
    assert_eq!(
        log_filter(&logs),
        doc! { "message_id": "1-abcdefgh", "user_id": 3_i64, "event_type": "read", "ts": { "$gte": DateTime::from_millis(5) } }
    );
    let pipeline = stats_pipeline(doc! { "target": "all" });
    assert_eq!(pipeline[0], doc! { "$match": { "target": "all" } });
    assert_eq!(
        pipeline[1].get_document("$group").unwrap().get_document("total_recipients").unwrap(),
        &doc! { "$sum": "$total_count" }
    );
    assert_eq!(recount_pipeline("m")[0], doc! { "$match": { "message_id": "m" } });
}

#[test]
fn aggregation_numbers_of_any_width_are_read() {
    let doc = doc! { "a": 3_i32, "b": 4_i64, "c": 5.0 };
    assert_eq!((number(&doc, "a"), number(&doc, "b"), number(&doc, "c"), number(&doc, "d")), (3, 4, 5, 0));
}
