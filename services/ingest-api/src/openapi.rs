//! The OpenAPI 3.1 document served at `/api/openapi.json`.
//!
//! Paths are described with utoipa's builder; the schemas are the files of `proto-schemas/`,
//! embedded verbatim (OpenAPI 3.1 speaks JSON Schema 2020-12), so the document and the schemas
//! the tests check real output against are one and the same.
//!
//! The document is complete enough for a fuzzer (`scripts/fuzz-api.sh` runs schemathesis over
//! it): every parameter has a schema that says exactly what its handler accepts (type, bounds,
//! the closed set where there is one), every operation lists each status it can answer with its
//! body and headers, and declares its security. The tests below pin that.

use actix_web::HttpResponse;
use model::Target;
use serde_json::{Value, json};
use std::sync::LazyLock;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApiBuilder, PathsBuilder, Ref, Required, Response,
    ResponseBuilder,
};

/// The schemas embedded from `proto-schemas/`, by component name.
const SCHEMAS: [(&str, &str); 17] = [
    ("NoticeRequest", include_str!("../../../proto-schemas/notice-request.schema.json")),
    ("PushSuccessResponse", include_str!("../../../proto-schemas/push-success-response.schema.json")),
    ("FailureResponse", include_str!("../../../proto-schemas/failure-response.schema.json")),
    ("WsNotification", include_str!("../../../proto-schemas/ws-notification.schema.json")),
    ("WsMessage", include_str!("../../../proto-schemas/ws-message.schema.json")),
    ("NotificationMessage", include_str!("../../../proto-schemas/bus-envelope.schema.json")),
    ("ReceiptRequest", include_str!("../../../proto-schemas/receipt-request.schema.json")),
    ("ReceiptResponse", include_str!("../../../proto-schemas/receipt-response.schema.json")),
    ("UserUpsertRequest", include_str!("../../../proto-schemas/user-upsert-request.schema.json")),
    ("UserUpsertResponse", include_str!("../../../proto-schemas/user-upsert-response.schema.json")),
    ("UserPageResponse", include_str!("../../../proto-schemas/user-page-response.schema.json")),
    ("OnlineUsersResponse", include_str!("../../../proto-schemas/online-users-response.schema.json")),
    ("PushRecordsResponse", include_str!("../../../proto-schemas/push-records-response.schema.json")),
    ("PushRecordDetailResponse", include_str!("../../../proto-schemas/push-record-detail-response.schema.json")),
    ("NotificationLogsResponse", include_str!("../../../proto-schemas/notification-logs-response.schema.json")),
    ("HealthResponse", include_str!("../../../proto-schemas/health-response.schema.json")),
    ("ReadinessResponse", include_str!("../../../proto-schemas/readiness-response.schema.json")),
];

/// A message id: `{unix_nanos}-{8 letters or digits}` (`model::MessageId::parse`).
const MESSAGE_ID_PATTERN: &str = "^[0-9]{1,20}-[0-9A-Za-z]{8}$";
/// A time in filters: `YYYY-MM-DD HH:MM:SS` (`model::TimeFormat::parse`; a day the month does not
/// have, such as 02-30, is refused too).
const TIME_PATTERN: &str =
    "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$";
/// A notification type: lower_snake_case, at most 64 characters (`model::NotificationType::parse`).
const TYPE_PATTERN: &str = "^[a-z][a-z0-9]*(_[a-z0-9]+)*$";
/// `Idempotency-Key`: 1-200 visible ASCII characters.
const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]{1,200}$";

/// The targets a push record can have (what `records::list` accepts as a filter).
const TARGETS: [Target; 5] = [Target::All, Target::Admin, Target::Custom, Target::User, Target::Group];

/// The security of an operation any valid token may call.
const BEARER: &str = "bearer";
/// The WebSocket's `?token=`, for clients that cannot set a header.
const QUERY_TOKEN: &str = "queryToken";

fn json_ref(name: &str) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(Ref::from_schema_name(name))).build()
}

/// An integer from `minimum` to `maximum`; `int64` when it fits one (`page` is a `u64`).
fn integer(minimum: u64, maximum: u64) -> ObjectBuilder {
    let format = (maximum <= i64::MAX as u64).then_some(SchemaFormat::KnownFormat(KnownFormat::Int64));
    ObjectBuilder::new().schema_type(Type::Integer).format(format).minimum(Some(minimum)).maximum(Some(maximum))
}

/// A string, optionally bounded and patterned.
fn string(min_length: Option<usize>, max_length: Option<usize>, pattern: Option<&str>) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).min_length(min_length).max_length(max_length).pattern(pattern)
}

/// A string from a closed set.
fn one_of(values: &[&str]) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied()))
}

/// A parameter with a schema and a description.
fn parameter(name: &str, at: ParameterIn, required: bool, schema: ObjectBuilder, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(at)
        .required(if required { Required::True } else { Required::False })
        .schema(Some(schema))
        .description(Some(description))
        .build()
}

fn query(name: &str, schema: ObjectBuilder, description: &str) -> Parameter {
    parameter(name, ParameterIn::Query, false, schema, description)
}

/// `page` and `page_size` of a listing whose pages hold at most `max_page_size` entries, and
/// `default_page_size` when none is asked for.
fn paging(max_page_size: u64, default_page_size: u64) -> [Parameter; 2] {
    [
        query("page", integer(1, u64::MAX).default(Some(json!(1))), "1-based page (default 1)"),
        query(
            "page_size",
            integer(1, max_page_size).default(Some(json!(default_page_size))),
            &format!("Entries per page, 1 to {max_page_size} (default {default_page_size})"),
        ),
    ]
}

/// The roles a token or a directory entry can have.
fn roles() -> ObjectBuilder {
    one_of(&[runtime::Role::Admin.as_str(), runtime::Role::User.as_str()])
}

/// A response header with a schema and a description.
fn header(schema: ObjectBuilder, description: &str) -> Header {
    HeaderBuilder::new().schema(Some(schema)).description(Some(description)).build()
}

/// A refusal in the spec 6.2 envelope, to add headers to.
fn refusal(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content("application/json", json_ref("FailureResponse"))
}

/// A refusal in the spec 6.2 envelope.
fn failure(description: &str) -> Response {
    refusal(description).build()
}

/// A refusal that says when to try again.
fn failure_retry(description: &str) -> Response {
    refusal(description)
        .header("Retry-After", header(integer(1, 3600), "Whole seconds to wait before trying again"))
        .build()
}

fn unauthorized() -> Response {
    refusal("UNAUTHORIZED: no bearer token, or one that is expired, not yet valid, forged or of an unknown role")
        .header("WWW-Authenticate", header(one_of(&["Bearer"]), "The scheme to authenticate with"))
        .build()
}

/// A success whose body is the component `schema`, to add headers to.
fn success(description: &str, schema: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content("application/json", json_ref(schema))
}

fn ok(description: &str, schema: &str) -> Response {
    success(description, schema).build()
}

fn json_body(schema: &str) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new().content("application/json", json_ref(schema)).required(Some(Required::True)).build()
}

/// An operation on the admin API: a bearer token with the admin role.
fn admin(id: &str, tag: &str, summary: &str, description: &str) -> OperationBuilder {
    OperationBuilder::new()
        .operation_id(Some(id))
        .tag(tag)
        .summary(Some(summary))
        .description(Some(description))
        .security(SecurityRequirement::new(BEARER, Vec::<String>::new()))
        .response("401", unauthorized())
        .response("403", failure("FORBIDDEN: the token is not an admin's"))
}

/// The refusals of an operation that reads a JSON body.
fn with_body_refusals(op: OperationBuilder) -> OperationBuilder {
    op.response("413", failure("PAYLOAD_TOO_LARGE: the body is over http.max_body_bytes"))
        .response("415", failure("UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json"))
}

/// A public operation (no token).
fn public(id: &str, summary: &str) -> OperationBuilder {
    OperationBuilder::new()
        .operation_id(Some(id))
        .tag("operations")
        .summary(Some(summary))
        .securities(Some(Vec::<SecurityRequirement>::new()))
}

fn notice() -> Operation {
    // What a client does next with the notice's id (and what lets a fuzzer follow it).
    let message_id = "$response.body#/data/message_id";
    let receipt_link =
        |id: &str| LinkBuilder::new().operation_id(id).request_body(Some(json!({ "message_id": message_id }))).build();
    let accepted = success("Accepted: the message bus confirmed the notice", "PushSuccessResponse")
        .header(
            "Idempotent-Replayed",
            header(one_of(&["true"]), "Present when the answer repeats an earlier one for the same Idempotency-Key"),
        )
        .link(
            "GetPushRecord",
            LinkBuilder::new().operation_id("getPushRecord").parameter("message_id", message_id).build(),
        )
        .link(
            "ListItsLogs",
            LinkBuilder::new().operation_id("listNotificationLogs").parameter("message_id", message_id).build(),
        )
        .link("MarkItRead", receipt_link("markRead"))
        .link("ConfirmIt", receipt_link("confirm"))
        .build();
    let op = admin(
        "postSystemNotice",
        "notifications",
        "Send a notification",
        "Validates the notice (spec 1.1, 8.1), stamps it with a message id and the server's time, and \
         publishes it. Answers once the message bus confirmed it: `status` is `queued`, and delivery to \
         connected clients follows within milliseconds. Admin role.",
    )
    .parameter(parameter(
        "Idempotency-Key",
        ParameterIn::Header,
        false,
        string(Some(1), Some(200), Some(IDEMPOTENCY_KEY_PATTERN)),
        "1-200 visible ASCII characters. A repeat of the same request by the same sender within 24 hours \
         gets the first answer (header Idempotent-Replayed: true) and delivers nothing again.",
    ))
    .request_body(Some(json_body("NoticeRequest")))
    .response("200", accepted)
    .response(
        "400",
        failure(
            "The notice breaks a rule (INVALID_TARGET, MISSING_USER_IDS, CONTENT_TOO_LONG, MISSING_CONTENT, \
             INVALID_USER_IDS, TOO_MANY_USER_IDS, DATA_TOO_LARGE, INVALID_DATA, INVALID_TYPE, INVALID_PRIORITY), \
             or the body or Idempotency-Key is malformed (INVALID_REQUEST)",
        ),
    )
    .response("409", failure("REQUEST_IN_PROGRESS: the same Idempotency-Key is still being processed"))
    .response("422", failure("IDEMPOTENCY_KEY_REUSED: the Idempotency-Key was used for a different request"))
    .response("429", failure_retry("RATE_LIMIT_EXCEEDED: too many notices from this sender or address"))
    .response(
        "503",
        failure_retry(
            "PUSH_FAILED (the message bus or a store is unavailable; nothing was sent, or the outcome is \
             unknown and data.message_id names the notice) or QUEUE_FULL (the normal-priority backlog is full)",
        ),
    );
    with_body_refusals(op).build()
}

fn receipt(id: &str, summary: &str) -> Operation {
    let op = OperationBuilder::new()
        .operation_id(Some(id))
        .tag("receipts")
        .summary(Some(summary))
        .description(Some(
            "Clears the notice from the user's offline inbox, publishes a delivery event and sends a sync \
             frame to the user's other connected devices. Any valid token; a user marks only notices \
             addressed to them.",
        ))
        .security(SecurityRequirement::new(BEARER, Vec::<String>::new()))
        .request_body(Some(json_body("ReceiptRequest")))
        .response("200", ok("Recorded", "ReceiptResponse"))
        .response("400", failure("INVALID_REQUEST: a malformed body or message_id"))
        .response("401", unauthorized())
        .response("403", failure("FORBIDDEN: user_id is not the token's, or the notice was not addressed to them"))
        .response("404", failure("NOT_FOUND: no notice with this message_id is known (or it is over 30 days old)"))
        .response("503", failure_retry("PUSH_FAILED: the message bus or a store is unavailable; send it again"));
    with_body_refusals(op).build()
}

fn upsert_users() -> Operation {
    let op = admin(
        "upsertUsers",
        "users",
        "Add or update users of the directory",
        "Batch upsert of 1 to 1000 users. The directory is how `admin` notices reach admins who are offline; \
         users are also recorded from their token when they connect (the token's role wins then). Admin role.",
    )
    .request_body(Some(json_body("UserUpsertRequest")))
    .response("200", ok("Upserted", "UserUpsertResponse"))
    .response("400", failure("INVALID_REQUEST: a malformed batch; the message names the entry and field"))
    .response("503", failure_retry("SERVICE_UNAVAILABLE: the database is unavailable; retry"));
    with_body_refusals(op).build()
}

fn list_users() -> Operation {
    admin("listUsers", "users", "List the user directory", "In user id order, each user with presence. Admin role.")
        .parameters(Some(paging(crate::users::MAX_PAGE_SIZE, crate::users::DEFAULT_PAGE_SIZE)))
        .parameter(query("role", roles(), "Only users of this role"))
        .parameter(query("tenant_id", string(None, None, None), "Only this tenant's users"))
        .response("200", ok("A page", "UserPageResponse"))
        .response("400", failure("INVALID_REQUEST: a bad or unknown parameter, named in the message"))
        .response("503", failure_retry("SERVICE_UNAVAILABLE: the database or presence is unavailable; retry"))
        .build()
}

fn online_users() -> Operation {
    admin(
        "onlineUsers",
        "users",
        "Who is online, on which gateway replicas",
        "Users with a live WebSocket connection, in user id order, with their connection count. Admin role.",
    )
    .parameters(Some(paging(crate::users::MAX_PAGE_SIZE, crate::users::DEFAULT_PAGE_SIZE)))
    .response("200", ok("A page", "OnlineUsersResponse"))
    .response("400", failure("INVALID_REQUEST: a bad or unknown parameter, named in the message"))
    .response("503", failure_retry("SERVICE_UNAVAILABLE: presence is unavailable; retry"))
    .build()
}

/// The refusals of a records read.
fn records_refusals(op: OperationBuilder) -> OperationBuilder {
    op.response("400", failure("INVALID_REQUEST: a bad or unknown parameter, named in the message"))
        .response("503", failure_retry("SERVICE_UNAVAILABLE: the records store is unavailable; retry"))
}

fn time_filter(name: &str, bound: &str) -> Parameter {
    query(
        name,
        string(None, None, Some(TIME_PATTERN)),
        &format!("{bound}: YYYY-MM-DD HH:MM:SS at the server's time.utc_offset, inclusive"),
    )
}

fn push_records() -> Operation {
    let kind = || string(Some(1), Some(64), Some(TYPE_PATTERN));
    let op = admin(
        "listPushRecords",
        "records",
        "Push records (spec 6.3)",
        "Newest first (ties broken by id, so pages never overlap), with statistics over every matching \
         record. Admin role.",
    )
    .parameters(Some(paging(crate::records::MAX_PAGE_SIZE, crate::records::DEFAULT_PAGE_SIZE)))
    .parameter(query("message_type", kind(), "Only this notification type"))
    .parameter(query("type", kind(), "Alias of message_type (give one of the two)"))
    .parameter(query("target", one_of(&TARGETS.map(Target::as_str)), "Only this target"))
    .parameter(query("status", one_of(&crate::records::STATUSES), "Only this status"))
    .parameter(query("sender_id", integer(1, i64::MAX as u64), "Only this sender"))
    .parameter(time_filter("start_time", "From"))
    .parameter(time_filter("end_time", "Until"))
    .parameter(query("content", string(None, None, None), "Content containing this text"))
    .response("200", ok("A page", "PushRecordsResponse"));
    records_refusals(op).build()
}

fn push_record() -> Operation {
    let op = admin(
        "getPushRecord",
        "records",
        "One push record with its receive records and log",
        "404 NOT_FOUND when Herald has no record of the message (yet: records are written \
         asynchronously). Admin role.",
    )
    .parameter(parameter(
        "message_id",
        ParameterIn::Path,
        true,
        string(None, None, Some(MESSAGE_ID_PATTERN)),
        "The notice's message id, as its acceptance answered",
    ))
    .response("200", ok("Found", "PushRecordDetailResponse"))
    .response("404", failure("NOT_FOUND: no record of this message"));
    records_refusals(op).build()
}

fn notification_logs() -> Operation {
    let op = admin(
        "listNotificationLogs",
        "records",
        "Notification logs (spec 4.3)",
        "Delivery events (delivered, read, confirmed, ...) per user, newest first. Admin role.",
    )
    .parameters(Some(paging(crate::records::MAX_PAGE_SIZE, crate::records::DEFAULT_PAGE_SIZE)))
    .parameter(query("message_id", string(None, None, Some(MESSAGE_ID_PATTERN)), "Only this notice"))
    .parameter(query("user_id", integer(1, i64::MAX as u64), "Only this user"))
    .parameter(query("event_type", one_of(&crate::records::EVENT_TYPES), "Only this kind of event"))
    .parameter(time_filter("start_time", "From"))
    .parameter(time_filter("end_time", "Until"))
    .response("200", ok("A page", "NotificationLogsResponse"));
    records_refusals(op).build()
}

fn websocket() -> Operation {
    OperationBuilder::new()
        .operation_id(Some("connectWebSocket"))
        .tag("websocket")
        .summary(Some("Open the notification WebSocket"))
        .description(Some(
            "A WebSocket handshake (RFC 6455: Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version \
             13). The token goes in `?token=`, the Authorization header, or the Sec-WebSocket-Protocol header \
             (`bearer, <token>`; the server then echoes `bearer`). After the upgrade the server sends \
             WsNotification frames (spec 3.2) and its own WsMessage frames (spec 3.1); see those components.",
        ))
        .securities(Some([
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::new(QUERY_TOKEN, Vec::<String>::new()),
        ]))
        .parameter(parameter(
            "Sec-WebSocket-Protocol",
            ParameterIn::Header,
            false,
            string(None, None, None),
            "Subprotocols; `bearer, <token>` carries the token for browsers",
        ))
        .response("101", ResponseBuilder::new().description("Switching protocols; frames follow").build())
        .response("400", failure("INVALID_REQUEST: not a WebSocket handshake"))
        .response("401", unauthorized())
        .build()
}

fn build() -> Value {
    let mut users = PathItem::new(HttpMethod::Put, upsert_users());
    users.get = Some(list_users());
    let healthz = public("healthz", "Liveness").response("200", ok("Alive", "HealthResponse")).build();
    let readyz = public("readyz", "Readiness: every dependency reachable")
        .response("200", ok("Ready", "ReadinessResponse"))
        .response("503", ok("A dependency is unavailable; the report names it", "ReadinessResponse"))
        .build();
    let document = public("openApiDocument", "This document")
        .response(
            "200",
            ResponseBuilder::new()
                .description("OpenAPI 3.1")
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(ObjectBuilder::new().schema_type(Type::Object))).build(),
                )
                .build(),
        )
        .build();

    let doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Herald")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Notification push platform: REST ingestion and WebSocket delivery. Every refusal is the \
                     spec 6.2 envelope (FailureResponse); a method a path does not answer is 405 \
                     METHOD_NOT_ALLOWED with an Allow header (components.responses.MethodNotAllowed).",
                ))
                .build(),
        )
        .paths(
            PathsBuilder::new()
                .path("/api/admin/system/notice", PathItem::new(HttpMethod::Post, notice()))
                .path(
                    "/api/admin/notification/mark-read",
                    PathItem::new(HttpMethod::Post, receipt("markRead", "Mark a notification read (spec 7.3)")),
                )
                .path(
                    "/api/admin/notification/confirm",
                    PathItem::new(HttpMethod::Post, receipt("confirm", "Confirm a notification that asked for it")),
                )
                .path("/api/admin/users", users)
                .path("/api/admin/users/online", PathItem::new(HttpMethod::Get, online_users()))
                .path("/api/admin/push/records", PathItem::new(HttpMethod::Get, push_records()))
                .path("/api/admin/push/records/{message_id}", PathItem::new(HttpMethod::Get, push_record()))
                .path("/api/admin/notification/logs", PathItem::new(HttpMethod::Get, notification_logs()))
                .path("/ws", PathItem::new(HttpMethod::Get, websocket()))
                .path("/healthz", PathItem::new(HttpMethod::Get, healthz))
                .path("/readyz", PathItem::new(HttpMethod::Get, readyz))
                .path("/api/openapi.json", PathItem::new(HttpMethod::Get, document)),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    BEARER,
                    SecurityScheme::Http(
                        HttpBuilder::new()
                            .scheme(HttpAuthScheme::Bearer)
                            .bearer_format("JWT")
                            .description(Some("An HS256 JWT: sub (user id), role (admin or user), exp, nbf"))
                            .build(),
                    ),
                )
                .security_scheme(QUERY_TOKEN, SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("token"))))
                // Not an answer of any operation (it is what a path gives for a method it has no
                // operation for), so it is described once, here.
                .response(
                    "MethodNotAllowed",
                    refusal("METHOD_NOT_ALLOWED: the path has no operation for this method")
                        .header(
                            "Allow",
                            header(string(Some(1), None, None), "The methods the path answers, e.g. GET, PUT"),
                        )
                        .build(),
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

    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

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

    /// Every operation of the document: (method, path, operation).
    fn operations() -> Vec<(&'static str, String, &'static Value)> {
        let mut found = Vec::new();
        for (path, item) in document()["paths"].as_object().unwrap() {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    found.push((method, path.clone(), op));
                }
            }
        }
        found
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
    fn every_parameter_has_a_typed_schema_and_a_description() {
        let mut count = 0;
        for (method, path, op) in operations() {
            for parameter in op["parameters"].as_array().into_iter().flatten() {
                let at = format!("{method} {path} {}", parameter["name"]);
                let schema = &parameter["schema"];
                assert!(schema["type"].is_string(), "{at}: no typed schema: {parameter}");
                assert!(["query", "path", "header"].contains(&parameter["in"].as_str().unwrap()), "{at}");
                assert!(parameter["description"].as_str().is_some_and(|d| !d.is_empty()), "{at}: undescribed");
                if schema["type"] == "integer" {
                    assert!(schema["minimum"].is_number() && schema["maximum"].is_number(), "{at}: unbounded");
                }
                if parameter["in"] == "path" {
                    assert_eq!(parameter["required"], true, "{at}");
                    assert!(path.contains(&format!("{{{}}}", parameter["name"].as_str().unwrap())), "{at}");
                }
                count += 1;
            }
        }
        assert!(count >= 25, "only {count} parameters");
    }

    #[test]
    fn every_operation_documents_its_answers_and_its_security() {
        let ops = operations();
        assert_eq!(ops.len(), 13, "{:?}", ops.iter().map(|(m, p, _)| format!("{m} {p}")).collect::<Vec<_>>());
        for (method, path, op) in ops {
            let at = format!("{method} {path}");
            assert!(op["operationId"].is_string(), "{at}: no operationId");
            assert!(op["security"].is_array(), "{at}: security not declared");
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|s| s.starts_with('2') || s == "101"), "{at}: no success answer");
            for (status, response) in responses {
                let at = format!("{at} {status}");
                assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()), "{at}: undescribed");
                if status != "101" {
                    let schema = &response["content"]["application/json"]["schema"];
                    assert!(schema.is_object(), "{at}: no JSON schema");
                }
                if status.starts_with('4') || (status.starts_with('5') && path != "/readyz") {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/FailureResponse",
                        "{at}: a refusal not in the envelope"
                    );
                }
                if status == "429" || (status == "503" && path != "/readyz") {
                    assert!(response["headers"]["Retry-After"]["schema"].is_object(), "{at}: no Retry-After");
                }
                if status == "401" {
                    assert!(response["headers"]["WWW-Authenticate"]["schema"].is_object(), "{at}");
                }
            }
            let secured = !op["security"].as_array().unwrap().is_empty();
            assert_eq!(secured, responses.contains_key("401"), "{at}: security and 401 disagree");
            if path.starts_with("/api/admin/")
                && !path.contains("/notification/mark-read")
                && !path.ends_with("/confirm")
            {
                assert!(responses.contains_key("403"), "{at}: an admin operation without 403");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(responses.contains_key(status), "{at}: a body but no {status}");
                }
            }
        }
    }

    #[test]
    fn every_link_names_an_operation_and_its_parameters() {
        let ids: Vec<&str> = operations().iter().filter_map(|(_, _, op)| op["operationId"].as_str()).collect();
        let mut links = 0;
        for (method, path, op) in operations() {
            for (status, response) in op["responses"].as_object().unwrap() {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    let at = format!("{method} {path} {status} {name}");
                    let target = link["operationId"].as_str().unwrap();
                    assert!(ids.contains(&target), "{at}: no operation {target}");
                    let (_, _, target_op) =
                        operations().into_iter().find(|(_, _, o)| o["operationId"] == target).unwrap();
                    for parameter in link["parameters"].as_object().into_iter().flatten().map(|(k, _)| k) {
                        let known = target_op["parameters"].as_array().unwrap().iter().any(|p| p["name"] == *parameter);
                        assert!(known, "{at}: {target} has no parameter {parameter}");
                    }
                    links += 1;
                }
            }
        }
        assert!(links >= 4, "{links} links");
    }

    #[test]
    fn the_security_schemes_the_operations_name_are_declared() {
        let schemes = document()["components"]["securitySchemes"].as_object().unwrap();
        for (method, path, op) in operations() {
            for requirement in op["security"].as_array().unwrap() {
                for name in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{method} {path}: {name} is not declared");
                }
            }
        }
    }

    #[test]
    fn a_method_a_path_does_not_answer_is_described_with_its_allow_header() {
        let answer = &document()["components"]["responses"]["MethodNotAllowed"];
        assert_eq!(answer["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/FailureResponse");
        assert_eq!(answer["headers"]["Allow"]["schema"]["type"], "string");
    }

    #[test]
    fn the_notice_endpoint_is_described_with_its_error_statuses() {
        let post = &document()["paths"]["/api/admin/system/notice"]["post"];
        for status in ["200", "400", "401", "403", "409", "413", "415", "422", "429", "503"] {
            assert!(post["responses"][status].is_object(), "{status} undocumented");
        }
        assert_eq!(document()["openapi"], "3.1.0");
    }

    #[test]
    fn the_closed_sets_and_bounds_are_the_handlers_own() {
        let param = |path: &str, name: &str| -> Value {
            let op = &document()["paths"][path]["get"];
            op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["schema"].clone()
        };
        assert_eq!(param("/api/admin/push/records", "status")["enum"], json!(crate::records::STATUSES));
        assert_eq!(
            param("/api/admin/push/records", "target")["enum"],
            json!(["all", "admin", "custom", "user", "group"])
        );
        assert_eq!(param("/api/admin/notification/logs", "event_type")["enum"], json!(crate::records::EVENT_TYPES));
        assert_eq!(param("/api/admin/users", "role")["enum"], json!(["admin", "user"]));
        assert_eq!(param("/api/admin/users", "page_size")["maximum"], crate::users::MAX_PAGE_SIZE);
        assert_eq!(param("/api/admin/users/online", "page_size")["maximum"], crate::users::MAX_PAGE_SIZE);
        assert_eq!(param("/api/admin/push/records", "page_size")["maximum"], crate::records::MAX_PAGE_SIZE);
        assert_eq!(param("/api/admin/notification/logs", "page_size")["maximum"], crate::records::MAX_PAGE_SIZE);
        let id = param("/api/admin/push/records/{message_id}", "message_id");
        assert_eq!(id["pattern"], MESSAGE_ID_PATTERN);
        assert!(model::MessageId::parse(&model::MessageId::generate().to_string()).is_ok());
    }
}
