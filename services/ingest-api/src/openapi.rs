//! The OpenAPI 3.1 document served at `/api/openapi.json`.
//!
//! Paths are described with utoipa's builder; the schemas are the files of `proto-schemas/`,
//! embedded verbatim (OpenAPI 3.1 speaks JSON Schema 2020-12), so the document and the schemas
//! the tests check real output against are one and the same.

use actix_web::HttpResponse;
use serde_json::Value;
use std::sync::LazyLock;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApiBuilder, PathsBuilder, Ref, Required, ResponseBuilder,
};

/// The schemas embedded from `proto-schemas/`, by component name.
const SCHEMAS: [(&str, &str); 12] = [
    ("NoticeRequest", include_str!("../../../proto-schemas/notice-request.schema.json")),
    ("PushSuccessResponse", include_str!("../../../proto-schemas/push-success-response.schema.json")),
    ("FailureResponse", include_str!("../../../proto-schemas/failure-response.schema.json")),
    ("WsNotification", include_str!("../../../proto-schemas/ws-notification.schema.json")),
    ("WsMessage", include_str!("../../../proto-schemas/ws-message.schema.json")),
    ("NotificationMessage", include_str!("../../../proto-schemas/bus-envelope.schema.json")),
    ("UserUpsertRequest", include_str!("../../../proto-schemas/user-upsert-request.schema.json")),
    ("UserPageResponse", include_str!("../../../proto-schemas/user-page-response.schema.json")),
    ("OnlineUsersResponse", include_str!("../../../proto-schemas/online-users-response.schema.json")),
    ("PushRecordsResponse", include_str!("../../../proto-schemas/push-records-response.schema.json")),
    ("PushRecordDetailResponse", include_str!("../../../proto-schemas/push-record-detail-response.schema.json")),
    ("NotificationLogsResponse", include_str!("../../../proto-schemas/notification-logs-response.schema.json")),
];

fn json_ref(name: &str) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(Ref::from_schema_name(name))).build()
}

fn failure(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new().description(description).content("application/json", json_ref("FailureResponse")).build()
}

fn plain(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new().description(description).build()
}

fn build() -> Value {
    let notice = OperationBuilder::new()
        .operation_id(Some("postSystemNotice"))
        .tag("notifications")
        .summary(Some("Send a notification"))
        .description(Some(
            "Validates the notice (spec 1.1, 8.1), stamps it with a message id and the server's time, and \
             publishes it. Answers once the message bus confirmed it: `status` is `queued`, and delivery to \
             connected clients follows within milliseconds.",
        ))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", json_ref("NoticeRequest"))
                .required(Some(Required::True))
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("Accepted")
                .content("application/json", json_ref("PushSuccessResponse"))
                .build(),
        )
        .response("400", failure("The notice breaks a rule: INVALID_TARGET, MISSING_USER_IDS, CONTENT_TOO_LONG, ..."))
        .response("401", failure("No valid bearer token"))
        .parameter(
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "1-200 visible ASCII characters. A repeat of the same request by the same sender within 24 hours \
                     gets the first answer (header Idempotent-Replayed: true) and delivers nothing again.",
                ))
                .build(),
        )
        .response("403", failure("The token is not an admin's"))
        .response("409", failure("REQUEST_IN_PROGRESS: the same Idempotency-Key is still being processed"))
        .response("422", failure("IDEMPOTENCY_KEY_REUSED: the Idempotency-Key was used for a different request"))
        .response("429", failure("RATE_LIMIT_EXCEEDED: retry after the Retry-After header's seconds"))
        .response("413", failure("The body is over the size limit"))
        .response("415", failure("The body is not application/json"))
        .response("503", failure("PUSH_FAILED: the message bus is unavailable; nothing was sent"))
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .build();
    let ws = OperationBuilder::new()
        .operation_id(Some("connectWebSocket"))
        .tag("websocket")
        .summary(Some("Open the notification WebSocket"))
        .description(Some(
            "Upgrades to a WebSocket that carries WsNotification frames. The token goes in `?token=`, the \
             Authorization header, or the Sec-WebSocket-Protocol header (`bearer, <token>`).",
        ))
        .parameter(
            ParameterBuilder::new().name("token").parameter_in(ParameterIn::Query).required(Required::False).build(),
        )
        .response(
            "101",
            ResponseBuilder::new()
                .description("Switching protocols; frames follow")
                .content("application/json", json_ref("WsNotification"))
                .build(),
        )
        .response("401", failure("No valid token"))
        .build();
    let receipt = |id: &str, summary: &str| {
        OperationBuilder::new()
            .operation_id(Some(id))
            .tag("receipts")
            .summary(Some(summary))
            .description(Some(
                "Body: {\"message_id\": \"...\", \"user_id\": 123} (user_id optional; it must be the token's). \
                 Clears the notice from the user's offline inbox, publishes a delivery event and sends a sync \
                 frame to the user's other connected devices. Any valid token; a user marks only their own notices.",
            ))
            .response("200", plain("Recorded"))
            .response("400", failure("A malformed body or message_id"))
            .response("401", failure("No valid bearer token"))
            .response("403", failure("user_id is not the token's"))
            .response("503", failure("PUSH_FAILED: the message bus is unavailable; send it again"))
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
            .build()
    };
    let mark_read = receipt("markRead", "Mark a notification read (spec 7.3)");
    let confirm = receipt("confirm", "Confirm a notification that asked for it");
    let query = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(description))
            .build()
    };
    let upsert_users = OperationBuilder::new()
        .operation_id(Some("upsertUsers"))
        .tag("users")
        .summary(Some("Add or update users of the directory"))
        .description(Some(
            "Batch upsert of 1 to 1000 users. The directory is how `admin` notices reach admins who are offline;              users are also recorded from their token when they connect (the token's role wins then).",
        ))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", json_ref("UserUpsertRequest"))
                .required(Some(Required::True))
                .build(),
        ))
        .response("200", plain("Upserted: {\"code\":200,\"message\":\"OK\",\"data\":{\"upserted\":n}}"))
        .response("400", failure("INVALID_REQUEST: a malformed batch; the message names the entry and field"))
        .response("401", failure("No valid bearer token"))
        .response("403", failure("The token is not an admin's"))
        .response("503", failure("SERVICE_UNAVAILABLE: the database is unavailable; retry"))
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .build();
    let list_users = OperationBuilder::new()
        .operation_id(Some("listUsers"))
        .tag("users")
        .summary(Some("List the user directory"))
        .parameter(query("page", "1-based page (default 1)"))
        .parameter(query("page_size", "1 to 200 (default 20)"))
        .parameter(query("role", "`admin` or `user`"))
        .parameter(query("tenant_id", "Only this tenant's users"))
        .response(
            "200",
            ResponseBuilder::new()
                .description("A page")
                .content("application/json", json_ref("UserPageResponse"))
                .build(),
        )
        .response("400", failure("INVALID_REQUEST: a bad or unknown parameter"))
        .response("401", failure("No valid bearer token"))
        .response("403", failure("The token is not an admin's"))
        .response("503", failure("SERVICE_UNAVAILABLE: the database or presence is unavailable; retry"))
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .build();
    let online_users = OperationBuilder::new()
        .operation_id(Some("onlineUsers"))
        .tag("users")
        .summary(Some("Who is online, on which gateway replicas"))
        .parameter(query("page", "1-based page (default 1)"))
        .parameter(query("page_size", "1 to 200 (default 20)"))
        .response(
            "200",
            ResponseBuilder::new()
                .description("A page")
                .content("application/json", json_ref("OnlineUsersResponse"))
                .build(),
        )
        .response("400", failure("INVALID_REQUEST: a bad or unknown parameter"))
        .response("401", failure("No valid bearer token"))
        .response("403", failure("The token is not an admin's"))
        .response("503", failure("SERVICE_UNAVAILABLE: presence is unavailable; retry"))
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .build();
    let admin_get = |id: &str, summary: &str, description: &str, schema: &str, params: Vec<(&str, &str)>| {
        let mut op = OperationBuilder::new()
            .operation_id(Some(id))
            .tag("records")
            .summary(Some(summary))
            .description(Some(description));
        for (name, description) in params {
            op = op.parameter(query(name, description));
        }
        op.response(
            "200",
            ResponseBuilder::new().description("Found").content("application/json", json_ref(schema)).build(),
        )
        .response("400", failure("INVALID_REQUEST: a bad or unknown parameter, named in the message"))
        .response("401", failure("No valid bearer token"))
        .response("403", failure("The token is not an admin's"))
        .response("503", failure("SERVICE_UNAVAILABLE: the records store is unavailable; retry"))
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .build()
    };
    let time_note = "YYYY-MM-DD HH:MM:SS at the server's time.utc_offset, inclusive";
    let push_records = admin_get(
        "listPushRecords",
        "Push records (spec 6.3)",
        "Newest first (ties broken by id, so pages never overlap), with statistics over every matching record.",
        "PushRecordsResponse",
        vec![
            ("page", "1-based page (default 1)"),
            ("page_size", "1 to 100 (default 20)"),
            ("message_type", "Only this notification type (alias: type)"),
            ("target", "all, admin, custom, user or group"),
            ("status", "queued, partial, delivered or failed"),
            ("sender_id", "Only this sender"),
            ("start_time", time_note),
            ("end_time", time_note),
            ("content", "Content containing this text"),
        ],
    );
    let mut push_record = admin_get(
        "getPushRecord",
        "One push record with its receive records and log",
        "404 NOT_FOUND when Herald has no record of the message (yet: records are written asynchronously).",
        "PushRecordDetailResponse",
        vec![],
    );
    push_record.parameters.get_or_insert_with(Vec::new).push(
        ParameterBuilder::new()
            .name("message_id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .build()
            .into(),
    );
    push_record.responses.responses.insert("404".to_owned(), failure("NOT_FOUND: no record of this message").into());
    let notification_logs = admin_get(
        "listNotificationLogs",
        "Notification logs (spec 4.3)",
        "Delivery events (delivered, read, confirmed, ...) per user, newest first.",
        "NotificationLogsResponse",
        vec![
            ("page", "1-based page (default 1)"),
            ("page_size", "1 to 100 (default 20)"),
            ("message_id", "Only this notice"),
            ("user_id", "Only this user"),
            ("event_type", "sent, delivered, failed, read or confirmed"),
            ("start_time", time_note),
            ("end_time", time_note),
        ],
    );
    let mut users = PathItem::new(HttpMethod::Put, upsert_users);
    users.get = Some(list_users);
    let healthz =
        OperationBuilder::new().tag("operations").summary(Some("Liveness")).response("200", plain("Alive")).build();
    let readyz = OperationBuilder::new()
        .tag("operations")
        .summary(Some("Readiness: dependencies reachable"))
        .response("200", plain("Ready"))
        .response("503", plain("A dependency is unavailable"))
        .build();
    let openapi = OperationBuilder::new()
        .tag("operations")
        .summary(Some("This document"))
        .response("200", plain("OpenAPI 3.1"))
        .build();

    let doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Herald")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Notification push platform: REST ingestion and WebSocket delivery."))
                .build(),
        )
        .paths(
            PathsBuilder::new()
                .path("/api/admin/system/notice", PathItem::new(HttpMethod::Post, notice))
                .path("/api/admin/notification/mark-read", PathItem::new(HttpMethod::Post, mark_read))
                .path("/api/admin/notification/confirm", PathItem::new(HttpMethod::Post, confirm))
                .path("/api/admin/users", users)
                .path("/api/admin/push/records", PathItem::new(HttpMethod::Get, push_records))
                .path("/api/admin/push/records/{message_id}", PathItem::new(HttpMethod::Get, push_record))
                .path("/api/admin/notification/logs", PathItem::new(HttpMethod::Get, notification_logs))
                .path("/api/admin/users/online", PathItem::new(HttpMethod::Get, online_users))
                .path("/ws", PathItem::new(HttpMethod::Get, ws))
                .path("/healthz", PathItem::new(HttpMethod::Get, healthz))
                .path("/readyz", PathItem::new(HttpMethod::Get, readyz))
                .path("/api/openapi.json", PathItem::new(HttpMethod::Get, openapi)),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "bearer",
                    SecurityScheme::Http(
                        HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
                    ),
                )
                .build(),
        ))
        .build();

    let mut value = serde_json::to_value(&doc).unwrap_or_default();
    value["openapi"] = Value::String("3.1.0".into());
    for (name, raw) in SCHEMAS {
        let mut schema: Value = serde_json::from_str(raw).unwrap_or_default();
        if let Some(object) = schema.as_object_mut() {
            // `$id` and `$schema` would re-base references inside the component; the document's
            // own dialect is already 2020-12.
            object.remove("$id");
            object.remove("$schema");
        }
        // A schema's own `#/$defs/...` references now live under its component.
        rebase_refs(&mut schema, &format!("#/components/schemas/{name}/$defs/"));
        value["components"]["schemas"][name] = schema;
    }
    value
}

/// Rewrites every `#/$defs/` reference in `value` to start with `base` instead.
fn rebase_refs(value: &mut Value, base: &str) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(r)) => {
                        if let Some(rest) = r.strip_prefix("#/$defs/") {
                            *r = format!("{base}{rest}");
                        }
                    }
                    (_, inner) => rebase_refs(inner, base),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rebase_refs(item, base)),
        _ => {}
    }
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: LazyLock<Value> = LazyLock::new(build);
    &DOC
}

/// `GET /api/openapi.json`.
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    match (key.as_str(), inner) {
                        ("$ref", Value::String(r)) => found.push(r.clone()),
                        _ => refs(inner, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| refs(i, found)),
            _ => {}
        }
    }

    #[test]
    fn every_embedded_schema_parses_and_every_reference_resolves() {
        let doc = document();
        for (name, _) in SCHEMAS {
            assert!(doc["components"]["schemas"][name].is_object(), "{name} missing");
        }
        let mut found = Vec::new();
        refs(&doc["paths"], &mut found);
        assert!(!found.is_empty());
        refs(&doc["components"], &mut found);
        for r in found {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("unexpected ref {r}"));
            assert!(pointer.starts_with("/components/schemas/"), "unexpected ref {r}");
            assert!(doc.pointer(pointer).is_some_and(Value::is_object), "{r} does not resolve");
        }
    }

    #[test]
    fn the_notice_endpoint_is_described_with_its_error_statuses() {
        let post = &document()["paths"]["/api/admin/system/notice"]["post"];
        for status in ["200", "400", "401", "403", "409", "413", "415", "422", "429", "503"] {
            assert!(post["responses"][status].is_object(), "{status} undocumented");
        }
        assert_eq!(document()["openapi"], "3.1.0");
    }
}
