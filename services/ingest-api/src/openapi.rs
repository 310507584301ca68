//! The OpenAPI 3.1 document served at `/api/openapi.json`.
//!
//! Each operation is generated from the `#[utoipa::path]` attribute on its handler (`notice.rs`,
//! `receipts.rs`, `users.rs`, `records.rs`, and `serve` below), and the query parameters of a
//! listing from the handler's own parameter struct (`IntoParams`), so a parameter the handler
//! accepts cannot be left out. `#[derive(OpenApi)]` on [`HeraldApi`] collects them. `GET /ws`
//! (ws-gateway) and `/healthz` `/readyz` (http-server) are served beside these routes by the same
//! process; they are described by functions here that only carry their attribute.
//!
//! The schemas are the files of `proto-schemas/`, embedded verbatim (OpenAPI 3.1 speaks JSON
//! Schema 2020-12), so the document and the schemas the tests check real output against are one
//! and the same. The attributes name them through the types of [`SCHEMAS`], whose placeholder
//! schema `build` replaces with the file.
//!
//! The document is complete enough for a fuzzer (`scripts/fuzz-api.sh` runs schemathesis over
//! it): every parameter has a schema that says exactly what its handler accepts (type, bounds,
//! the closed set where there is one), every operation lists each status it can answer with its
//! body and headers, and declares its security. The tests below pin that, and that the document
//! describes every route of the route table (`routes.rs`) and nothing it does not mount (but the
//! neighbours above).

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use http_server::Failure;
use model::{ErrorCode, Target};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, InfoBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, OpenApi, PartialSchema, ToSchema};

/// Declares the types that stand for the schemas of `proto-schemas/` in the handlers'
/// attributes, and [`SCHEMAS`], the files by component name.
macro_rules! proto_schemas {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[doc = concat!("The component `", stringify!($name), "`: `proto-schemas/", $file, "`.")]
            #[allow(dead_code, reason = "the WebSocket frames' components are named by no operation")]
            pub(crate) struct $name;

            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    // A placeholder: `build` puts the file in its place.
                    RefOr::T(Schema::Object(Object::new()))
                }
            }

            impl ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        )*

        /// The schemas embedded from `proto-schemas/`, by component name.
        const SCHEMAS: &[(&str, &str)] = &[
            $((stringify!($name), include_str!(concat!("../../../proto-schemas/", $file))),)*
        ];
    };
}

proto_schemas! {
    NoticeRequest => "notice-request.schema.json",
    PushSuccessResponse => "push-success-response.schema.json",
    FailureResponse => "failure-response.schema.json",
    WsNotification => "ws-notification.schema.json",
    WsMessage => "ws-message.schema.json",
    NotificationMessage => "bus-envelope.schema.json",
    ReceiptRequest => "receipt-request.schema.json",
    ReceiptResponse => "receipt-response.schema.json",
    UserUpsertRequest => "user-upsert-request.schema.json",
    UserUpsertResponse => "user-upsert-response.schema.json",
    UserPageResponse => "user-page-response.schema.json",
    OnlineUsersResponse => "online-users-response.schema.json",
    PushRecordsResponse => "push-records-response.schema.json",
    PushRecordDetailResponse => "push-record-detail-response.schema.json",
    NotificationLogsResponse => "notification-logs-response.schema.json",
    DeviceRegisterRequest => "device-register-request.schema.json",
    DeviceLogoutRequest => "device-logout-request.schema.json",
    DeviceResponse => "device-response.schema.json",
    DevicePageResponse => "device-page-response.schema.json",
    PushConfigRequest => "push-config-request.schema.json",
    PushConfigResponse => "push-config-response.schema.json",
    PushProviderRequest => "push-provider-request.schema.json",
    PushProviderResponse => "push-provider-response.schema.json",
    PushProvidersResponse => "push-providers-response.schema.json",
    PushLogPageResponse => "push-log-page-response.schema.json",
    AlarmRequest => "alarm-request.schema.json",
    AlarmResponse => "alarm-response.schema.json",
    PushRetryResponse => "push-retry-response.schema.json",
    HealthResponse => "health-response.schema.json",
    ReadinessResponse => "readiness-response.schema.json",
}

/// A message id: `{unix_nanos}-{8 letters or digits}` (`model::MessageId::parse`).
const MESSAGE_ID_PATTERN: &str = "^[0-9]{1,20}-[0-9A-Za-z]{8}$";
/// A time in filters: `YYYY-MM-DD HH:MM:SS` (`model::TimeFormat::parse`; a day the month does not
/// have, such as 02-30, is refused too).
const TIME_PATTERN: &str =
    "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$";
/// A notification type: lower_snake_case, at most 64 characters (`model::NotificationType::parse`).
const TYPE_PATTERN: &str = "^[a-z][a-z0-9]*(_[a-z0-9]+)*$";

/// The security of an operation any valid token may call.
const BEARER: &str = "bearer";
/// The WebSocket's `?token=`, for clients that cannot set a header.
const QUERY_TOKEN: &str = "queryToken";

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

/// Declares types that stand for an inline schema (of a parameter, a header or a body) in the
/// handlers' attributes, each built from the handlers' own constants.
macro_rules! inline_schemas {
    ($($(#[$doc:meta])* $name:ident = $schema:expr;)*) => {
        $(
            $(#[$doc])*
            pub(crate) struct $name;

            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    RefOr::T(Schema::Object($schema.build()))
                }
            }

            impl ToSchema for $name {}
        )*
    };
}

inline_schemas! {
    /// `page`: 1-based, 1 when none is asked for.
    PageNumber = integer(1, u64::MAX).default(Some(json!(1)));
    /// `page_size` of the user listings.
    UserPageSize = integer(1, crate::users::MAX_PAGE_SIZE).default(Some(json!(crate::users::DEFAULT_PAGE_SIZE)));
    /// `page_size` of the records listings.
    RecordPageSize =
        integer(1, crate::records::MAX_PAGE_SIZE).default(Some(json!(crate::records::DEFAULT_PAGE_SIZE)));
    /// `page_size` of the device listing.
    DevicePageSize = integer(1, crate::mobile::MAX_PAGE_SIZE).default(Some(json!(crate::mobile::DEFAULT_PAGE_SIZE)));
    /// A tenant id: 1 to 64 characters.
    TenantText = string(Some(1), Some(crate::users::MAX_TAG_CHARS), None);
    /// A device's state: 0 inactive, 1 active.
    DeviceStatusCode = integer(0, 1).enum_values(Some(crate::mobile::STATUSES));
    /// The states of a push log row.
    PushLogStatusName = one_of(&crate::mobile::LOG_STATUSES);
    /// A push id in a filter.
    PushIdText = string(Some(1), Some(validation::mobile::MAX_PUSH_ID_CHARS), Some("^[A-Za-z0-9_:.-]+$"));
    /// The device types.
    DeviceTypeName = one_of(&model::DeviceType::NAMES);
    /// The push providers of the push config API.
    ProviderName = one_of(&model::PushProvider::NAMES);
    /// The roles a token or a directory entry can have.
    RoleName = one_of(&[runtime::Role::Admin.as_str(), runtime::Role::User.as_str()]);
    /// A notification type (`model::NotificationType::parse`).
    NotificationTypeName = string(Some(1), Some(64), Some(TYPE_PATTERN));
    /// The targets a push record can have.
    TargetName = one_of(&crate::records::TARGETS.map(Target::as_str));
    /// The statuses a push record can have.
    RecordStatus = one_of(&crate::records::STATUSES);
    /// The event types a log entry can have.
    EventTypeName = one_of(&crate::records::EVENT_TYPES);
    /// A user id: a positive 64-bit integer.
    PositiveId = integer(1, i64::MAX as u64);
    /// A time in filters.
    FilterTime = string(None, None, Some(TIME_PATTERN));
    /// A message id.
    MessageIdText = string(None, None, Some(MESSAGE_ID_PATTERN));
    /// `Retry-After`: whole seconds.
    RetrySeconds = integer(1, 3600);
    /// `Idempotent-Replayed`: present and `true`, or absent.
    ReplayedFlag = one_of(&["true"]);
    /// Any JSON object (this document, as far as the document itself says).
    AnyObject = ObjectBuilder::new().schema_type(Type::Object);
}

/// A response header with a schema and a description.
fn header(schema: ObjectBuilder, description: &str) -> Header {
    HeaderBuilder::new().schema(Some(schema)).description(Some(description)).build()
}

/// A refusal in the spec 6.2 envelope, to add headers to.
fn refusal(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(Ref::from_schema_name("FailureResponse"))).build(),
    )
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

fn responses(list: impl IntoIterator<Item = (&'static str, Response)>) -> BTreeMap<String, RefOr<Response>> {
    list.into_iter().map(|(status, response)| (status.to_owned(), RefOr::T(response))).collect()
}

/// 401 for an operation that needs a valid bearer token.
pub(crate) struct Unauthorized;

impl IntoResponses for Unauthorized {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses([("401", unauthorized())])
    }
}

/// 401 and 403 for an operation on the admin API: a bearer token with the admin role.
pub(crate) struct AdminRefusals;

impl IntoResponses for AdminRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses([("401", unauthorized()), ("403", refusal("FORBIDDEN: the token is not an admin's").build())])
    }
}

/// The refusals of an operation that reads a JSON body, before its handler runs.
pub(crate) struct BodyRefusals;

impl IntoResponses for BodyRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses([
            ("413", refusal("PAYLOAD_TOO_LARGE: the body is over http.max_body_bytes").build()),
            ("415", refusal("UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json").build()),
        ])
    }
}

/// The refusals of a receipt (mark-read, confirm), besides those of its body.
pub(crate) struct ReceiptRefusals;

impl IntoResponses for ReceiptRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses([
            ("400", refusal("INVALID_REQUEST: a malformed body or message_id").build()),
            ("401", unauthorized()),
            ("403", refusal("FORBIDDEN: user_id is not the token's, or the notice was not addressed to them").build()),
            ("404", refusal("NOT_FOUND: no notice with this message_id is known (or it is over 30 days old)").build()),
            ("503", failure_retry("PUSH_FAILED: the message bus or a store is unavailable; send it again")),
        ])
    }
}

/// The refusals of a records read.
pub(crate) struct RecordsRefusals;

impl IntoResponses for RecordsRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses([
            ("400", refusal("INVALID_REQUEST: a bad or unknown parameter, named in the message").build()),
            ("503", failure_retry("SERVICE_UNAVAILABLE: the records store is unavailable; retry")),
        ])
    }
}

/// `GET /ws`, served by ws-gateway beside this API.
#[utoipa::path(
    get,
    path = "/ws",
    operation_id = "connectWebSocket",
    tag = "websocket",
    summary = "Open the notification WebSocket",
    description = "A WebSocket handshake (RFC 6455: Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version \
        13). The token goes in `?token=`, the Authorization header, or the Sec-WebSocket-Protocol header \
        (`bearer, <token>`; the server then echoes `bearer`). After the upgrade the server sends \
        WsNotification frames (spec 3.2) and its own WsMessage frames (spec 3.1); see those components.",
    security(("bearer" = []), ("queryToken" = [])),
    params(
        ("Sec-WebSocket-Protocol" = Option<String>, Header, nullable = false,
            description = "Subprotocols; `bearer, <token>` carries the token for browsers"),
    ),
    responses(
        (status = 101, description = "Switching protocols; frames follow"),
        (status = 400, description = "INVALID_REQUEST: not a WebSocket handshake", body = FailureResponse),
        Unauthorized,
    ),
)]
#[expect(dead_code, reason = "it only carries the operation's attribute: ws-gateway serves /ws")]
fn websocket() {}

/// `GET /healthz`, served by http-server beside this API.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    summary = "Liveness",
    security(),
    responses((status = 200, description = "Alive", body = HealthResponse)),
)]
#[expect(dead_code, reason = "it only carries the operation's attribute: http-server serves /healthz")]
fn healthz() {}

/// `GET /readyz`, served by http-server beside this API.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    summary = "Readiness: every dependency reachable",
    security(),
    responses(
        (status = 200, description = "Ready", body = ReadinessResponse),
        (status = 503, description = "A dependency is unavailable; the report names it", body = ReadinessResponse),
    ),
)]
#[expect(dead_code, reason = "it only carries the operation's attribute: http-server serves /readyz")]
fn readyz() {}

/// The document's operations, generated from the handlers' attributes.
#[derive(OpenApi)]
#[openapi(
    paths(
        crate::notice::post_notice,
        crate::receipts::mark_read,
        crate::receipts::confirm,
        crate::users::upsert,
        crate::users::list,
        crate::users::online,
        crate::records::list,
        crate::records::detail,
        crate::records::logs,
        crate::mobile::register,
        crate::mobile::logout,
        crate::mobile::get_config,
        crate::mobile::set_config,
        crate::providers::list,
        crate::providers::get,
        crate::providers::set,
        crate::providers::remove,
        crate::mobile::manage,
        crate::mobile::logs,
        crate::mobile::export,
        crate::mobile::alarm,
        crate::mobile::retry,
        websocket,
        healthz,
        readyz,
        serve,
    ),
    modifiers(&DocumentLevel),
)]
pub struct HeraldApi;

/// What belongs to the document rather than to an operation: its info, the security schemes the
/// operations name, and the answer to a method a path has no operation for.
struct DocumentLevel;

impl utoipa::Modify for DocumentLevel {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.info = InfoBuilder::new()
            .title("Herald")
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some(
                "Notification push platform: REST ingestion and WebSocket delivery. Every refusal is the \
                 spec 6.2 envelope (FailureResponse); a method a path does not answer is 405 \
                 METHOD_NOT_ALLOWED with an Allow header (components.responses.MethodNotAllowed).",
            ))
            .build();
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An HS256 JWT: sub (user id), role (admin or user), exp, nbf"))
                    .build(),
            ),
        );
        components.add_security_scheme(QUERY_TOKEN, SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("token"))));
        // Not an answer of any operation (it is what a path gives for a method it has no
        // operation for), so it is described once, here.
        components.responses.insert(
            "MethodNotAllowed".to_owned(),
            RefOr::T(
                refusal("METHOD_NOT_ALLOWED: the path has no operation for this method")
                    .header("Allow", header(string(Some(1), None, None), "The methods the path answers, e.g. GET, PUT"))
                    .build(),
            ),
        );
    }
}

/// Why the document could not be built (a schema file that is not JSON, say).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the OpenAPI document could not be built: {0}")]
pub struct DocumentError(String);

/// The document as JSON, and its text as served.
struct Built {
    value: Value,
    text: Bytes,
}

fn build() -> Result<Built, serde_json::Error> {
    let mut value = serde_json::to_value(HeraldApi::openapi())?;
    for (name, raw) in SCHEMAS {
        let mut schema: Value = serde_json::from_str(raw)?;
        if let Some(object) = schema.as_object_mut() {
            // `$id` and `$schema` would re-base references inside the component; the document's
            // own dialect is already 2020-12.
            object.remove("$id");
            object.remove("$schema");
        }
        // A schema's own `#/$defs/...` references now live under its component.
        rebase_refs(&mut schema, &format!("#/components/schemas/{name}/$defs/"));
        value["components"]["schemas"][*name] = schema;
    }
    let text = Bytes::from(serde_json::to_vec(&value)?);
    Ok(Built { value, text })
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
static DOCUMENT: LazyLock<Result<Built, DocumentError>> = LazyLock::new(|| {
    build().map_err(|err| {
        tracing::error!(error = %err, "the OpenAPI document could not be built");
        DocumentError(err.to_string())
    })
});

/// The document, built once (the tests and `serve` read the same one).
pub fn document() -> Result<&'static Value, DocumentError> {
    DOCUMENT.as_ref().map(|built| &built.value).map_err(Clone::clone)
}

/// `GET /api/openapi.json`: the document's text, serialised once. Should it ever fail to build,
/// the answer is a 500 in the spec 6.2 envelope, never an empty document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openApiDocument",
    tag = "operations",
    summary = "This document",
    security(),
    responses((status = 200, description = "OpenAPI 3.1", body = inline(AnyObject))),
)]
pub async fn serve() -> Result<HttpResponse, Failure> {
    match DOCUMENT.as_ref() {
        Ok(built) => Ok(HttpResponse::Ok().content_type("application/json").body(built.text.clone())),
        Err(_) => Err(Failure::new(ErrorCode::InternalError, "the OpenAPI document is unavailable")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    fn document() -> &'static Value {
        super::document().unwrap()
    }

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
    fn every_route_ingest_api_mounts_is_described_and_nothing_else_is_but_its_neighbours() {
        let mounted: BTreeSet<(String, String)> = crate::routes::ROUTES
            .iter()
            .map(|(method, path, _)| (method.as_str().to_lowercase(), (*path).to_owned()))
            .collect();
        let mut described: BTreeSet<(String, String)> =
            operations().into_iter().map(|(method, path, _)| (method.to_owned(), path)).collect();
        // Served by the same process, but mounted by ws-gateway and http-server.
        for neighbour in ["/ws", "/healthz", "/readyz"] {
            assert!(described.remove(&("get".to_owned(), neighbour.to_owned())), "get {neighbour} undescribed");
        }
        assert_eq!(described, mounted, "the document and IngestApi::configure's routes differ");
    }

    #[actix_web::test]
    async fn the_document_is_served_as_the_text_built_once() {
        let response = serve().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers().get("content-type").unwrap(), "application/json");
        let body = actix_web::body::to_bytes(response.into_body()).await.unwrap();
        assert_eq!(body, DOCUMENT.as_ref().unwrap().text);
        assert_eq!(&serde_json::from_slice::<Value>(&body).unwrap(), document());
    }

    #[test]
    fn the_component_schemas_are_the_files_of_proto_schemas() {
        let schemas = document()["components"]["schemas"].as_object().unwrap();
        let names: BTreeSet<&str> = schemas.keys().map(String::as_str).collect();
        assert_eq!(names, SCHEMAS.iter().map(|(name, _)| *name).collect());
        for (name, raw) in SCHEMAS {
            let file: Value = serde_json::from_str(raw).unwrap();
            assert_eq!(schemas[*name]["title"], file["title"], "{name}");
            assert_eq!(schemas[*name]["type"], file["type"], "{name}");
            assert!(schemas[*name].as_object().unwrap().len() >= file.as_object().unwrap().len() - 2, "{name}");
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
        assert_eq!(ops.len(), 26, "{:?}", ops.iter().map(|(m, p, _)| format!("{m} {p}")).collect::<Vec<_>>());
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
                    // Every answer is JSON but a file (the CSV export), which says its type.
                    let content = &response["content"];
                    let schema = if path.ends_with("/export") && status == "200" {
                        &content["text/csv"]["schema"]
                    } else {
                        &content["application/json"]["schema"]
                    };
                    assert!(schema.is_object(), "{at}: no schema for its content");
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
                assert_eq!(op["requestBody"]["required"], true, "{at}: an optional body");
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
        let parameter_of = |method: &str, path: &str, name: &str| -> Value {
            let op = &document()["paths"][path][method];
            op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone()
        };
        let parameter = |path: &str, name: &str| parameter_of("get", path, name);
        let param = |path: &str, name: &str| parameter(path, name)["schema"].clone();
        assert_eq!(param("/api/admin/push/records", "status")["enum"], json!(crate::records::STATUSES));
        assert_eq!(
            param("/api/admin/push/records", "target")["enum"],
            json!(["all", "admin", "custom", "user", "group"])
        );
        assert_eq!(param("/api/admin/notification/logs", "event_type")["enum"], json!(crate::records::EVENT_TYPES));
        assert_eq!(param("/api/admin/users", "role")["enum"], json!(["admin", "user"]));
        assert_eq!(
            param("/api/message_push/manage", "device_type")["enum"],
            json!(["android", "ios", "harmony", "web"])
        );
        assert_eq!(param("/api/message_push/manage", "status")["enum"], json!([0, 1]));
        assert_eq!(param("/api/message_push/logs", "status")["enum"], json!(["sent", "failed", "dead"]));
        for (path, max, default) in [
            ("/api/admin/users", crate::users::MAX_PAGE_SIZE, crate::users::DEFAULT_PAGE_SIZE),
            ("/api/admin/users/online", crate::users::MAX_PAGE_SIZE, crate::users::DEFAULT_PAGE_SIZE),
            ("/api/admin/push/records", crate::records::MAX_PAGE_SIZE, crate::records::DEFAULT_PAGE_SIZE),
            ("/api/admin/notification/logs", crate::records::MAX_PAGE_SIZE, crate::records::DEFAULT_PAGE_SIZE),
            ("/api/message_push/manage", crate::mobile::MAX_PAGE_SIZE, crate::mobile::DEFAULT_PAGE_SIZE),
            ("/api/message_push/logs", crate::mobile::MAX_LOG_PAGE_SIZE, crate::mobile::DEFAULT_PAGE_SIZE),
        ] {
            let page_size = parameter(path, "page_size");
            assert_eq!(page_size["schema"]["maximum"], max, "{path}");
            assert_eq!(page_size["schema"]["default"], default, "{path}");
            assert_eq!(
                page_size["description"],
                format!("Entries per page, 1 to {max} (default {default})"),
                "{path}: the description says other bounds than the schema"
            );
            assert_eq!(page_size["required"], false, "{path}");
        }
        let id = param("/api/admin/push/records/{message_id}", "message_id");
        assert_eq!(id["pattern"], MESSAGE_ID_PATTERN);
        assert!(model::MessageId::parse(&model::MessageId::generate().to_string()).is_ok());
        let key = parameter_of("post", "/api/admin/system/notice", "Idempotency-Key");
        assert_eq!(key["schema"]["maxLength"], 200);
        assert_eq!(key["required"], false);
    }
}
