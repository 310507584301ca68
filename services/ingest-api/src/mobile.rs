//! The mobile API (mobile-push-analysis.md), in the original's paths and field names, which
//! existing apps speak:
//! - `POST /api/message_push` (any valid token): a user's app registers its push id;
//! - `POST /api/message_push/logout`: the app stops receiving on it;
//! - `GET` / `POST /api/message_push/config` (admin): the push provider's URL (FCM's, APNs's and
//!   Web Push's settings are under `/api/message_push/config/providers`, `providers.rs`);
//! - `GET /api/message_push/manage` (admin): registered devices, paged;
//! - `GET /api/message_push/logs` (admin): provider send attempts, paged;
//! - `GET /api/message_push/logs/export` (admin): the same as CSV, streamed;
//! - `POST /api/message_push/alarm` (admin): an alarm for a tenant's devices, through the bus;
//! - `POST /api/message_push/logs/{id}/retry` (admin): a failed push sent again, through the bus.
//!
//! Registration rules (docs/mobile-clients.md): one push id is one device; registering it again
//! re-activates it, and registering it as another user moves it to that user.

use crate::IngestApi;
use crate::openapi;
use actix_web::{HttpRequest, HttpResponse, web};
use http_server::{AdminClaims, BearerClaims, Failure};
use mobile::{Device, DeviceQuery, ProviderConfig, Registered, Registration};
use model::{
    ApiResponse, DeviceStatus, DeviceType, ErrorCode, LogoutDeviceRequest, PushConfigRequest, PushLogStatus,
    RegisterDeviceRequest, TimeFormat, UserId,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::IntoParams;

/// The largest page of devices.
pub const MAX_PAGE_SIZE: u64 = 200;
/// The page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// The names of a device's states in the listing's `status` filter, as stored (0 and 1).
pub const STATUSES: [i16; 2] = [DeviceStatus::Inactive.code(), DeviceStatus::Active.code()];

/// A body parsed into `T`, a malformed one refused naming the field at fault.
fn body<T: DeserializeOwned>(raw: Value) -> Result<T, Failure> {
    serde_path_to_error::deserialize(raw).map_err(|err| {
        let at = err.path().to_string();
        let mut failure = Failure::new(ErrorCode::InvalidRequest, format!("invalid request body: {err}"));
        if at != "." && !at.is_empty() {
            failure.data.field = Some(at);
        } else if let Some(missing) = err.inner().to_string().split('`').nth(1) {
            // "missing field `pushId`": the field is the one left out.
            failure.data.field = Some(missing.to_owned());
        }
        failure
    })
}

pub(crate) fn unavailable(err: impl std::fmt::Display) -> Failure {
    tracing::warn!(error = %err, "the mobile tables are unavailable");
    let mut failure =
        Failure::new(ErrorCode::ServiceUnavailable, "the device registry is unavailable; retry shortly".to_owned());
    failure.retry_after = Some(1);
    failure
}

/// A device as its app sees it, in the original's field names.
#[derive(Debug, Serialize)]
struct RegisteredView {
    id: String,
    #[serde(rename = "pushId")]
    push_id: String,
    #[serde(rename = "deviceType")]
    device_type: String,
    /// 1 active, 0 inactive.
    status: i16,
    /// `created`, `renewed` or `moved` (registration only).
    #[serde(skip_serializing_if = "Option::is_none")]
    registered: Option<&'static str>,
}

impl RegisteredView {
    fn new(device: Device, registered: Option<Registered>) -> Self {
        Self {
            id: device.id,
            push_id: device.push_id,
            device_type: device.device_type,
            status: device.status.code(),
            registered: registered.map(|outcome| match outcome {
                Registered::Created => "created",
                Registered::Renewed => "renewed",
                Registered::Moved { .. } => "moved",
            }),
        }
    }
}

/// `POST /api/message_push`: registers the caller's device.
#[utoipa::path(
    post,
    path = "/api/message_push",
    operation_id = "registerDevice",
    tag = "mobile",
    summary = "Register a device's push id for the caller",
    description = "The app calls it after login. One push id is one device: registering it again re-activates \
        it (never a second row), and registering a push id another user had moves the device to the caller (a \
        phone changed hands). The device carries the tenant of the token, which decides the alarms it gets. The \
        push id's format depends on `deviceType`: `ios`, 32 or 64 hexadecimal digits (stored in lower case); \
        `android` and `harmony`, 16 to 255 characters of letters, digits and `_ - : .`; `web`, the browser's Web \
        Push subscription as JSON (`JSON.stringify(subscription)`: `endpoint`, `keys.p256dh`, `keys.auth`), kept \
        under the push id `web:` + the endpoint's SHA-256 (base64url), which the answer shows; the keys are never \
        shown. Any valid token.",
    security(("bearer" = [])),
    request_body = openapi::DeviceRegisterRequest,
    responses(
        (status = 200, description = "Registered", body = openapi::DeviceResponse),
        (status = 400, body = openapi::FailureResponse,
            description = "INVALID_REQUEST: a malformed body, an unknown deviceType or a pushId of the wrong format; \
                `data.field` names it"),
        openapi::Unauthorized,
        (status = 503, description = "SERVICE_UNAVAILABLE: the database is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
        openapi::BodyRefusals,
    ),
)]
pub async fn register(
    BearerClaims(claims): BearerClaims,
    api: web::Data<IngestApi>,
    raw: web::Json<Value>,
) -> Result<HttpResponse, Failure> {
    let request: RegisterDeviceRequest = body(raw.into_inner())?;
    let device_type = validation::mobile::check_device_type(&request.device_type)?;
    let (push_id, subscription) = match device_type {
        DeviceType::Web => {
            let web = validation::mobile::check_web_subscription(&request.push_id)?;
            (web.push_id, Some(web.json))
        }
        _ => (validation::mobile::check_push_id(device_type, &request.push_id)?, None),
    };
    let registration =
        Registration { user_id: claims.sub, tenant_id: claims.tenant_id.clone(), push_id, device_type, subscription };
    let (device, outcome) = api.mobile.register(&registration).await.map_err(unavailable)?;
    match outcome {
        Registered::Moved { from } => {
            tracing::info!(user_id = claims.sub, from, device = %device.id, "device moved to another user")
        }
        _ => tracing::debug!(user_id = claims.sub, device = %device.id, ?outcome, "device registered"),
    }
    Ok(HttpResponse::Ok().json(ApiResponse::ok(RegisteredView::new(device, Some(outcome)))))
}

/// `POST /api/message_push/logout`: deactivates one of the caller's devices.
#[utoipa::path(
    post,
    path = "/api/message_push/logout",
    operation_id = "logoutDevice",
    tag = "mobile",
    summary = "Stop pushes to one of the caller's devices",
    description = "The app calls it on logout: the device becomes inactive (status 0) and is sent nothing until \
        it is registered again. Logging out a device already inactive succeeds and changes nothing. A web device \
        is named by its push id (`web:...`) or by the subscription JSON it was registered with. Any valid token; \
        only the caller's own devices.",
    security(("bearer" = [])),
    request_body = openapi::DeviceLogoutRequest,
    responses(
        (status = 200, description = "Inactive", body = openapi::DeviceResponse),
        (status = 400, body = openapi::FailureResponse,
            description = "INVALID_REQUEST: a malformed body or pushId; `data.field` names it"),
        openapi::Unauthorized,
        (status = 404, body = openapi::FailureResponse,
            description = "NOT_FOUND: no device with this pushId is registered to the caller"),
        (status = 503, description = "SERVICE_UNAVAILABLE: the database is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
        openapi::BodyRefusals,
    ),
)]
pub async fn logout(
    BearerClaims(claims): BearerClaims,
    api: web::Data<IngestApi>,
    raw: web::Json<Value>,
) -> Result<HttpResponse, Failure> {
    let request: LogoutDeviceRequest = body(raw.into_inner())?;
    // A web device may be named by its push id or by the subscription it was registered with.
    let push_id = validation::mobile::check_any_push_id(&request.push_id)?;
    // An ios push id is stored in lower case; the app may send it as it got it.
    let mut device = api.mobile.logout(claims.sub, &push_id).await.map_err(unavailable)?;
    if device.is_none() && push_id.bytes().any(|b| b.is_ascii_uppercase()) {
        device = api.mobile.logout(claims.sub, &push_id.to_ascii_lowercase()).await.map_err(unavailable)?;
    }
    let Some(device) = device else {
        let mut failure =
            Failure::new(ErrorCode::NotFound, "no device with this pushId is registered to you".to_owned());
        failure.data.field = Some("pushId".to_owned());
        return Err(failure);
    };
    tracing::debug!(user_id = claims.sub, device = %device.id, "device logged out");
    Ok(HttpResponse::Ok().json(ApiResponse::ok(RegisteredView::new(device, None))))
}

/// The provider's configuration as the API shows it; every field `null` until it is set.
#[derive(Debug, Serialize)]
struct ConfigView {
    url: Option<String>,
    config_type: i16,
    create_time: Option<String>,
    update_time: Option<String>,
}

impl ConfigView {
    fn new(config: Option<ProviderConfig>, time: &TimeFormat) -> Self {
        Self {
            config_type: mobile::PROVIDER_URL,
            create_time: config.as_ref().map(|c| time.format_millis(c.create_time)),
            update_time: config.as_ref().map(|c| time.format_millis(c.update_time)),
            url: config.map(|c| c.url),
        }
    }
}

/// `GET /api/message_push/config`: the provider's URL.
#[utoipa::path(
    get,
    path = "/api/message_push/config",
    operation_id = "getPushConfig",
    tag = "mobile",
    summary = "Read the push provider's configuration",
    description = "The URL provider sends are posted to (`config_type` 1), `null` until an admin sets it. Admin role.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The configuration", body = openapi::PushConfigResponse),
        openapi::AdminRefusals,
        (status = 503, description = "SERVICE_UNAVAILABLE: the database is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
    ),
)]
pub async fn get_config(_admin: AdminClaims, api: web::Data<IngestApi>) -> Result<HttpResponse, Failure> {
    let config = api.mobile.provider_config().await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(ApiResponse::ok(ConfigView::new(config, &api.time))))
}

/// `POST /api/message_push/config`: sets the provider's URL.
#[utoipa::path(
    post,
    path = "/api/message_push/config",
    operation_id = "setPushConfig",
    tag = "mobile",
    summary = "Set the push provider's URL",
    description = "An absolute http or https URL of at most 2048 characters, without spaces or control characters; \
        it replaces the one before. Admin role.",
    security(("bearer" = [])),
    request_body = openapi::PushConfigRequest,
    responses(
        (status = 200, description = "Set", body = openapi::PushConfigResponse),
        (status = 400, body = openapi::FailureResponse,
            description = "INVALID_REQUEST: a malformed body or URL; `data.field` is `url`"),
        openapi::AdminRefusals,
        (status = 503, description = "SERVICE_UNAVAILABLE: the database is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
        openapi::BodyRefusals,
    ),
)]
pub async fn set_config(
    AdminClaims(admin): AdminClaims,
    api: web::Data<IngestApi>,
    raw: web::Json<Value>,
) -> Result<HttpResponse, Failure> {
    let request: PushConfigRequest = body(raw.into_inner())?;
    let url = validation::mobile::check_provider_url(&request.url)?;
    let config = api.mobile.set_provider_url(&url).await.map_err(unavailable)?;
    tracing::info!(admin = admin.sub, "push provider URL set");
    Ok(HttpResponse::Ok().json(ApiResponse::ok(ConfigView::new(Some(config), &api.time))))
}

/// The query of `GET /api/message_push/manage`; it is also what the OpenAPI document says it is.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ManageParams {
    /// 1-based page (default 1)
    #[serde(default)]
    #[param(value_type = Option<openapi::PageNumber>, inline)]
    page: Option<u64>,
    /// Entries per page, 1 to 200 (default 20)
    #[serde(default)]
    #[param(value_type = Option<openapi::DevicePageSize>, inline)]
    page_size: Option<u64>,
    /// Only this tenant's devices
    #[serde(default)]
    #[param(value_type = Option<openapi::TenantText>, inline)]
    tenant_id: Option<String>,
    /// Only this user's devices
    #[serde(default)]
    #[param(value_type = Option<openapi::PositiveId>, inline)]
    user_id: Option<UserId>,
    /// Only active (1) or inactive (0) devices
    #[serde(default)]
    #[param(value_type = Option<openapi::DeviceStatusCode>, inline)]
    status: Option<i16>,
    /// Only devices of this type
    #[serde(default)]
    #[param(value_type = Option<openapi::DeviceTypeName>, inline)]
    device_type: Option<DeviceType>,
}

/// A page of a listing (the shape of the other listings).
#[derive(Debug, Serialize)]
struct Page<T> {
    page: u64,
    page_size: u64,
    total: u64,
    items: Vec<T>,
}

/// A device as admins see it: the columns of `message_push_manage`, times in the spec's format.
#[derive(Debug, Serialize)]
struct DeviceView {
    id: String,
    user_id: UserId,
    tenant_id: Option<String>,
    push_id: String,
    device_type: String,
    status: i16,
    last_push_time: Option<String>,
    err_count: i32,
    inactive_time: Option<String>,
    create_time: String,
    update_time: String,
}

impl DeviceView {
    fn new(device: Device, time: &TimeFormat) -> Self {
        Self {
            id: device.id,
            user_id: device.user_id,
            tenant_id: device.tenant_id,
            push_id: device.push_id,
            device_type: device.device_type,
            status: device.status.code(),
            last_push_time: device.last_push_time.map(|at| time.format_millis(at)),
            err_count: device.err_count,
            inactive_time: device.inactive_time.map(|at| time.format_millis(at)),
            create_time: time.format_millis(device.create_time),
            update_time: time.format_millis(device.update_time),
        }
    }
}

/// `GET /api/message_push/manage`: registered devices, newest first.
#[utoipa::path(
    get,
    path = "/api/message_push/manage",
    operation_id = "listDevices",
    tag = "mobile",
    summary = "List registered devices",
    description = "Devices by tenant, user, status and device type, newest registration first, paged like the \
        other listings. Admin role.",
    security(("bearer" = [])),
    params(ManageParams),
    responses(
        (status = 200, description = "A page", body = openapi::DevicePageResponse),
        (status = 400, description = "INVALID_REQUEST: a bad or unknown parameter, named in the message",
            body = openapi::FailureResponse),
        openapi::AdminRefusals,
        (status = 503, description = "SERVICE_UNAVAILABLE: the database is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
    ),
)]
pub async fn manage(req: HttpRequest, _admin: AdminClaims, api: web::Data<IngestApi>) -> Result<HttpResponse, Failure> {
    let params: ManageParams = http_server::query(&req)?;
    let invalid = |message: String| Failure::new(ErrorCode::InvalidRequest, message);
    let (page, page_size) = crate::users::paging(params.page, params.page_size, (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE))?;
    let status = match params.status {
        None => None,
        Some(code) => Some(
            DeviceStatus::from_code(code)
                .ok_or_else(|| invalid(format!("status must be 0 (inactive) or 1 (active), got {code}")))?,
        ),
    };
    if let Some(user) = params.user_id
        && user <= 0
    {
        return Err(invalid(format!("user_id must be a positive integer, got {user}")));
    }
    if let Some(tenant) = &params.tenant_id
        && (tenant.is_empty() || tenant.chars().count() > crate::users::MAX_TAG_CHARS)
    {
        return Err(invalid(format!("tenant_id must be 1 to {} characters", crate::users::MAX_TAG_CHARS)));
    }
    let query = DeviceQuery {
        tenant_id: params.tenant_id,
        user_id: params.user_id,
        status,
        device_type: params.device_type,
        page,
        page_size,
    };
    let found = api.mobile.devices(&query).await.map_err(unavailable)?;
    let items = found.items.into_iter().map(|device| DeviceView::new(device, &api.time)).collect();
    Ok(HttpResponse::Ok().json(ApiResponse::ok(Page { page, page_size, total: found.total, items })))
}

/// The largest page of push logs.
pub const MAX_LOG_PAGE_SIZE: u64 = 200;
/// The states a push log row can have.
pub const LOG_STATUSES: [&str; 3] = PushLogStatus::NAMES;

/// The query of `GET /api/message_push/logs`; it is also what the OpenAPI document says it is.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogParams {
    /// 1-based page (default 1)
    #[serde(default)]
    #[param(value_type = Option<openapi::PageNumber>, inline)]
    page: Option<u64>,
    /// Entries per page, 1 to 200 (default 20)
    #[serde(default)]
    #[param(value_type = Option<openapi::DevicePageSize>, inline)]
    page_size: Option<u64>,
    /// From: YYYY-MM-DD HH:MM:SS at the server's time.utc_offset, inclusive
    #[serde(default)]
    #[param(value_type = Option<openapi::FilterTime>, inline)]
    start_time: Option<String>,
    /// Until: YYYY-MM-DD HH:MM:SS at the server's time.utc_offset, inclusive
    #[serde(default)]
    #[param(value_type = Option<openapi::FilterTime>, inline)]
    end_time: Option<String>,
    /// Only attempts that came to this (`dead`: the last attempt failed)
    #[serde(default)]
    #[param(value_type = Option<openapi::PushLogStatusName>, inline)]
    status: Option<PushLogStatus>,
    /// Only this user's devices
    #[serde(default)]
    #[param(value_type = Option<openapi::PositiveId>, inline)]
    user_id: Option<UserId>,
    /// Only this device
    #[serde(default)]
    #[param(value_type = Option<openapi::PushIdText>, inline)]
    push_id: Option<String>,
}

/// The filters a log listing and the export share, as sent (time range, status, user, push id).
type LogFilters = (Option<String>, Option<String>, Option<PushLogStatus>, Option<UserId>, Option<String>);

/// `filters` checked, as a query without paging.
fn log_filters(
    time: &TimeFormat,
    (start, end, status, user_id, push_id): LogFilters,
) -> Result<mobile::LogQuery, Failure> {
    let (start_ms, end_ms) = crate::records::window(time, start.as_deref(), end.as_deref())?;
    if let Some(user) = user_id
        && user <= 0
    {
        return Err(Failure::new(ErrorCode::InvalidRequest, format!("user_id must be a positive integer, got {user}")));
    }
    let push_id = push_id.map(|raw| validation::mobile::check_any_push_id(&raw)).transpose()?;
    Ok(mobile::LogQuery { start_ms, end_ms, status, user_id, push_id, ..mobile::LogQuery::default() })
}

/// A push log row as admins see it: the columns of `message_push_log`.
#[derive(Debug, Serialize)]
struct LogView {
    id: i64,
    send_id: String,
    message_id: String,
    user_id: UserId,
    push_id: String,
    message_type: String,
    alarm_id: String,
    title: String,
    content: String,
    status: PushLogStatus,
    err_message: String,
    attempt: i32,
    provider_answer: String,
    create_time: String,
}

impl LogView {
    fn new(log: mobile::PushLog, time: &TimeFormat) -> Self {
        let attempt = log.attempt;
        Self {
            id: log.id,
            send_id: attempt.send_id,
            message_id: attempt.message_id,
            user_id: attempt.user_id,
            push_id: attempt.push_id,
            message_type: attempt.message_type,
            alarm_id: attempt.alarm_id,
            title: attempt.title,
            content: attempt.content,
            status: attempt.status,
            err_message: attempt.err_message,
            attempt: attempt.attempt,
            provider_answer: attempt.provider_answer,
            create_time: time.format_millis(attempt.create_time),
        }
    }
}

/// `GET /api/message_push/logs`: provider send attempts, newest first.
#[utoipa::path(
    get,
    path = "/api/message_push/logs",
    operation_id = "listPushLogs",
    tag = "mobile",
    summary = "List provider send attempts",
    description = "One row per attempt (`message_push_log`), by time range, status, user and push id, newest \
        first, paged like the other listings. A send is retried after a failure; its last failed attempt is \
        `dead`. Admin role.",
    security(("bearer" = [])),
    params(LogParams),
    responses(
        (status = 200, description = "A page", body = openapi::PushLogPageResponse),
        (status = 400, description = "INVALID_REQUEST: a bad or unknown parameter, named in the message",
            body = openapi::FailureResponse),
        openapi::AdminRefusals,
        (status = 503, description = "SERVICE_UNAVAILABLE: the database is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
    ),
)]
pub async fn logs(req: HttpRequest, _admin: AdminClaims, api: web::Data<IngestApi>) -> Result<HttpResponse, Failure> {
    let params: LogParams = http_server::query(&req)?;
    let (page, page_size) =
        crate::users::paging(params.page, params.page_size, (DEFAULT_PAGE_SIZE, MAX_LOG_PAGE_SIZE))?;
    let filters = (params.start_time, params.end_time, params.status, params.user_id, params.push_id);
    let query = mobile::LogQuery { page, page_size, ..log_filters(&api.time, filters)? };
    let found = api.mobile.logs(&query).await.map_err(unavailable)?;
    let items = found.items.into_iter().map(|log| LogView::new(log, &api.time)).collect();
    Ok(HttpResponse::Ok().json(ApiResponse::ok(Page { page, page_size, total: found.total, items })))
}

/// Rows an export reads from the database at a time: what it holds in memory, however many it
/// streams.
pub const EXPORT_CHUNK: u64 = 1000;
/// The export's columns, in order: `message_push_log`'s.
pub const EXPORT_COLUMNS: [&str; 14] = [
    "id",
    "send_id",
    "message_id",
    "user_id",
    "push_id",
    "message_type",
    "alarm_id",
    "title",
    "content",
    "status",
    "err_message",
    "attempt",
    "provider_answer",
    "create_time",
];
/// UTF-8's byte order mark: what spreadsheet tools need to read the file's Chinese text as UTF-8.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The query of `GET /api/message_push/logs/export`; it is also what the OpenAPI document says.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ExportParams {
    /// From: YYYY-MM-DD HH:MM:SS at the server's time.utc_offset, inclusive
    #[serde(default)]
    #[param(value_type = Option<openapi::FilterTime>, inline)]
    start_time: Option<String>,
    /// Until: YYYY-MM-DD HH:MM:SS at the server's time.utc_offset, inclusive
    #[serde(default)]
    #[param(value_type = Option<openapi::FilterTime>, inline)]
    end_time: Option<String>,
    /// Only attempts that came to this
    #[serde(default)]
    #[param(value_type = Option<openapi::PushLogStatusName>, inline)]
    status: Option<PushLogStatus>,
    /// Only this user's devices
    #[serde(default)]
    #[param(value_type = Option<openapi::PositiveId>, inline)]
    user_id: Option<UserId>,
    /// Only this device
    #[serde(default)]
    #[param(value_type = Option<openapi::PushIdText>, inline)]
    push_id: Option<String>,
}

/// Where an export has got to.
enum Export {
    /// The first chunk, read before the answer was given (so a database that is down is a 503).
    First(Vec<mobile::PushLog>),
    /// After this row (its `create_time` and id).
    After(i64, i64),
    /// Everything is out.
    Done,
}

/// `GET /api/message_push/logs/export`: the selected attempts as CSV, oldest first.
#[utoipa::path(
    get,
    path = "/api/message_push/logs/export",
    operation_id = "exportPushLogs",
    tag = "mobile",
    summary = "Export provider send attempts as CSV",
    description = "The attempts the filters select (as `GET /api/message_push/logs`, without paging), oldest \
        first, streamed: UTF-8 with a byte order mark so that spreadsheet tools read Chinese text, a header row \
        of `message_push_log`'s columns, times in the spec's format. Read from the database 1000 rows at a time, \
        so memory stays bounded however many rows there are. A text cell that a spreadsheet would take for a \
        formula (starting with = + - @, a tab or a carriage return) is written with a leading `'`. Admin role.",
    security(("bearer" = [])),
    params(ExportParams),
    responses(
        (status = 200, description = "The CSV file", content_type = "text/csv", body = String,
            headers(("Content-Disposition" = String, description = "attachment; filename=\"message_push_log.csv\""))),
        (status = 400, description = "INVALID_REQUEST: a bad or unknown parameter, named in the message",
            body = openapi::FailureResponse),
        openapi::AdminRefusals,
        (status = 503, description = "SERVICE_UNAVAILABLE: the database is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
    ),
)]
pub async fn export(req: HttpRequest, _admin: AdminClaims, api: web::Data<IngestApi>) -> Result<HttpResponse, Failure> {
    let params: ExportParams = http_server::query(&req)?;
    let filters = (params.start_time, params.end_time, params.status, params.user_id, params.push_id);
    let query = log_filters(&api.time, filters)?;
    let first = api.mobile.logs_after(&query, None, EXPORT_CHUNK).await.map_err(unavailable)?;
    let (store, time) = (api.mobile.clone(), api.time);
    let chunks = futures_util::stream::unfold(Export::First(first), move |at| {
        let (store, query) = (store.clone(), query.clone());
        async move {
            let (rows, head) = match at {
                Export::Done => return None,
                Export::First(rows) => (rows, true),
                Export::After(time, id) => match store.logs_after(&query, Some((time, id)), EXPORT_CHUNK).await {
                    Ok(rows) => (rows, false),
                    Err(err) => {
                        // The answer has begun: all that is left is to cut it short, so the
                        // client sees an incomplete transfer rather than a short file.
                        tracing::warn!(error = %err, "push log export cut short");
                        return Some((Err(actix_web::error::ErrorServiceUnavailable(err.to_string())), Export::Done));
                    }
                },
            };
            let next = match rows.last() {
                Some(last) if rows.len() as u64 == EXPORT_CHUNK => Export::After(last.attempt.create_time, last.id),
                _ => Export::Done,
            };
            if rows.is_empty() && !head {
                return None;
            }
            Some((csv_chunk(&rows, &time, head), next))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"message_push_log.csv\""))
        .streaming(chunks))
}

/// `rows` as CSV, after the byte order mark and the header row when `head`.
fn csv_chunk(rows: &[mobile::PushLog], time: &TimeFormat, head: bool) -> Result<web::Bytes, actix_web::Error> {
    let mut out = Vec::with_capacity(256 * (rows.len() + 1));
    if head {
        out.extend_from_slice(BOM);
    }
    let mut writer = csv::Writer::from_writer(out);
    let failed = |err: csv::Error| actix_web::error::ErrorInternalServerError(err.to_string());
    if head {
        writer.write_record(EXPORT_COLUMNS).map_err(failed)?;
    }
    for log in rows {
        let a = &log.attempt;
        writer
            .write_record([
                log.id.to_string().as_str(),
                &inert(&a.send_id),
                &inert(&a.message_id),
                &a.user_id.to_string(),
                &inert(&a.push_id),
                &inert(&a.message_type),
                &inert(&a.alarm_id),
                &inert(&a.title),
                &inert(&a.content),
                a.status.as_str(),
                &inert(&a.err_message),
                &a.attempt.to_string(),
                &inert(&a.provider_answer),
                &time.format_millis(a.create_time),
            ])
            .map_err(failed)?;
    }
    let out = writer.into_inner().map_err(|err| actix_web::error::ErrorInternalServerError(err.to_string()))?;
    Ok(web::Bytes::from(out))
}

/// `text` as a spreadsheet shows it and never evaluates it: a leading `'` where it would start a
/// formula.
fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_cells_are_made_inert_and_others_are_kept() {
        assert_eq!(inert("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        for lead in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(inert(lead).starts_with('\''), "{lead:?}");
        }
        assert_eq!(inert("告警:温度过高"), "告警:温度过高");
        assert_eq!(inert(""), "");
    }
}

/// The longest `triggered` of an alarm, in characters.
pub const MAX_TRIGGERED_CHARS: usize = 100;
/// The longest `device_number` or `alarm_config_id` of an alarm, in characters.
pub const MAX_ALARM_FIELD_CHARS: usize = 128;

/// What `POST /api/message_push/alarm` answers.
#[derive(Debug, Serialize)]
struct AlarmView {
    job_id: String,
    tenant_id: String,
    title: String,
    devices_count: u64,
    status: &'static str,
}

/// `POST /api/message_push/alarm`: an alarm for every active device of a tenant.
#[utoipa::path(
    post,
    path = "/api/message_push/alarm",
    operation_id = "sendAlarm",
    tag = "mobile",
    summary = "Push an alarm to a tenant's devices",
    description = "The original's AlarmMessagePushSend: the title is `告警:<triggered>`, the content the device \
        number, `alarm_id` the alarm configuration id, sent to every active device registered with a token of \
        the tenant. Answered once the message bus durably took the alarm (`status: queued`); the worker then \
        sends it to each device, retrying failures, and logs every attempt (`GET /api/message_push/logs`). \
        `devices_count` is how many active devices the tenant had when it was accepted. Admin role (a backend \
        service uses an admin token).",
    security(("bearer" = [])),
    request_body = openapi::AlarmRequest,
    responses(
        (status = 200, description = "Queued", body = openapi::AlarmResponse),
        (status = 400, body = openapi::FailureResponse,
            description = "INVALID_REQUEST: a malformed body or a field out of bounds; `data.field` names it"),
        openapi::AdminRefusals,
        (status = 503, description = "PUSH_FAILED: the message bus did not take the alarm; SERVICE_UNAVAILABLE: the \
            database is unavailable. Retry.",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
        openapi::BodyRefusals,
    ),
)]
pub async fn alarm(
    AdminClaims(admin): AdminClaims,
    api: web::Data<IngestApi>,
    raw: web::Json<Value>,
) -> Result<HttpResponse, Failure> {
    let request: model::AlarmRequest = body(raw.into_inner())?;
    for (field, value, max) in [
        ("tenant_id", &request.tenant_id, crate::users::MAX_TAG_CHARS),
        ("triggered", &request.triggered, MAX_TRIGGERED_CHARS),
        ("alarm_config_id", &request.alarm_config_id, MAX_ALARM_FIELD_CHARS),
        ("device_number", &request.device_number, MAX_ALARM_FIELD_CHARS),
    ] {
        validation::check_storable(field, value)?;
        let length = value.chars().count();
        if length == 0 || length > max || value.trim().is_empty() {
            let mut failure =
                Failure::new(ErrorCode::InvalidRequest, format!("{field} must be 1 to {max} characters, not blank"));
            failure.data.field = Some(field.to_owned());
            return Err(failure);
        }
    }
    let active = mobile::DeviceQuery {
        tenant_id: Some(request.tenant_id.clone()),
        status: Some(DeviceStatus::Active),
        page: 1,
        page_size: 1,
        ..mobile::DeviceQuery::default()
    };
    let devices_count = api.mobile.devices(&active).await.map_err(unavailable)?.total;
    let job = model::AlarmJob {
        job_id: model::MessageId::generate().to_string(),
        tenant_id: request.tenant_id,
        title: format!("告警:{}", request.triggered),
        content: request.device_number,
        alarm_id: request.alarm_config_id,
    };
    // A job of plain strings always serialises.
    let payload = serde_json::to_vec(&job).unwrap_or_default();
    let published = api.bus.publish(bus::Exchange::Mobile, model::mobile::ALARM_ROUTING_KEY, payload.into()).await;
    if let Err(err) = published {
        tracing::error!(error = %err, "alarm not published");
        let message = match err {
            bus::BusError::Unconfirmed(_) => format!(
                "push outcome unknown: the message bus took the alarm but never confirmed it, so it may still be \
                 sent; check the push logs for job {} before sending it again",
                job.job_id
            ),
            _ => "push failed: the message bus is unavailable; nothing was sent, retry shortly".to_owned(),
        };
        let mut failure = Failure::new(ErrorCode::PushFailed, message);
        failure.retry_after = Some(1);
        return Err(failure);
    }
    tracing::info!(admin = admin.sub, job_id = %job.job_id, tenant = %job.tenant_id, devices_count, "alarm queued");
    Ok(HttpResponse::Ok().json(ApiResponse::ok(AlarmView {
        job_id: job.job_id,
        tenant_id: job.tenant_id,
        title: job.title,
        devices_count,
        status: "queued",
    })))
}

/// What `POST /api/message_push/logs/{id}/retry` answers.
#[derive(Debug, Serialize)]
struct RetryView {
    send_id: String,
    retried_log_id: i64,
    push_id: String,
    status: &'static str,
}

/// `POST /api/message_push/logs/{id}/retry`: sends a failed or dead attempt's push again.
#[utoipa::path(
    post,
    path = "/api/message_push/logs/{id}/retry",
    operation_id = "retryPush",
    tag = "mobile",
    summary = "Send a failed push again",
    description = "Publishes the push of a `failed` or `dead` log row again, through the bus to the worker, as a \
        new send (`retry:<id>`, its own attempts and retries) to the same device, with the same title, content \
        and alarm id; the device must still be the same user's and active, else the new send is `dead` with the \
        reason. Retrying the same row again changes nothing: it is sent once. Admin role.",
    security(("bearer" = [])),
    params(("id" = inline(openapi::PositiveId), Path, description = "The log row's id (`GET /api/message_push/logs`)")),
    responses(
        (status = 200, description = "Queued", body = openapi::PushRetryResponse),
        (status = 400, body = openapi::FailureResponse,
            description = "INVALID_REQUEST: the id is not a positive integer, or the attempt was sent (`data.field` is `id`)"),
        openapi::AdminRefusals,
        (status = 404, description = "NOT_FOUND: no log row with this id", body = openapi::FailureResponse),
        (status = 503, description = "PUSH_FAILED: the message bus did not take the retry; SERVICE_UNAVAILABLE: the \
            database is unavailable. Retry.",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
    ),
)]
pub async fn retry(
    req: HttpRequest,
    AdminClaims(admin): AdminClaims,
    api: web::Data<IngestApi>,
) -> Result<HttpResponse, Failure> {
    let raw = req.match_info().get("id").unwrap_or_default();
    let field = |code: ErrorCode, message: String| {
        let mut failure = Failure::new(code, message);
        failure.data.field = Some("id".to_owned());
        failure
    };
    let id = raw
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| field(ErrorCode::InvalidRequest, format!("id must be a positive integer, got {raw:?}")))?;
    let Some(log) = api.mobile.log(id).await.map_err(unavailable)? else {
        return Err(field(ErrorCode::NotFound, format!("no push log row with id {id}")));
    };
    let attempt = log.attempt;
    if attempt.status == PushLogStatus::Sent {
        return Err(field(
            ErrorCode::InvalidRequest,
            format!("the push log row with id {id} was sent; only a failed or dead one is retried"),
        ));
    }
    let send = model::PushSend {
        send_id: format!("retry:{id}"),
        attempt: 1,
        message_id: attempt.message_id,
        user_id: attempt.user_id,
        push_id: attempt.push_id,
        message_type: attempt.message_type,
        title: attempt.title,
        content: attempt.content,
        alarm_id: Some(attempt.alarm_id).filter(|id| !id.is_empty()),
        category: None,
        priority: model::Priority::Normal,
    };
    // A send of plain strings and numbers always serialises.
    let payload = serde_json::to_vec(&send).unwrap_or_default();
    if let Err(err) = api.bus.publish(bus::Exchange::Mobile, model::mobile::SEND_ROUTING_KEY, payload.into()).await {
        tracing::error!(error = %err, "push retry not published");
        let mut failure = Failure::new(
            ErrorCode::PushFailed,
            format!("push failed: the message bus did not take the retry ({err}); retry shortly"),
        );
        failure.retry_after = Some(1);
        return Err(failure);
    }
    tracing::info!(admin = admin.sub, log_id = id, send_id = %send.send_id, "push retry queued");
    Ok(HttpResponse::Ok().json(ApiResponse::ok(RetryView {
        send_id: send.send_id,
        retried_log_id: id,
        push_id: send.push_id,
        status: "queued",
    })))
}
