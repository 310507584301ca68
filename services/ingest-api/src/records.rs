//! The records API (admin JWT):
//! - `GET /api/admin/push/records`: spec 6.3, newest first, with filters and stats;
//! - `GET /api/admin/push/records/{message_id}`: a record with its receive records and log;
//! - `GET /api/admin/notification/logs`: log entries, newest first, with filters.
//!
//! Times in filters are `YYYY-MM-DD HH:MM:SS` at `time.utc_offset`, like every time Herald
//! renders; `start_time` and `end_time` are inclusive.

use crate::IngestApi;
use crate::openapi;
use ::records::{LogQuery, RecordQuery, RecordStats};
use actix_web::{HttpRequest, HttpResponse, web};
use http_server::{AdminClaims, Failure};
use model::{ApiResponse, DeliveryEventType, ErrorCode, MessageId, NotificationLog, NotificationType, PushRecord};
use model::{PushStatus, Target, TimeFormat, UserId};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

/// The largest page the records and logs listings return.
pub const MAX_PAGE_SIZE: u64 = 100;
/// The page size when none is asked for (spec 6.3's example).
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// The statuses a record can have.
pub const STATUSES: [&str; 4] = PushStatus::NAMES;
/// The targets a push record can have.
pub const TARGETS: [Target; 5] = [Target::All, Target::Admin, Target::Custom, Target::User, Target::Group];
/// The event types a log entry can have.
pub const EVENT_TYPES: [&str; 5] = DeliveryEventType::NAMES;

fn invalid(message: String) -> Failure {
    Failure::new(ErrorCode::InvalidRequest, message)
}

fn unavailable(err: impl std::fmt::Display) -> Failure {
    tracing::warn!(error = %err, "records store unavailable");
    let mut failure = Failure::new(ErrorCode::ServiceUnavailable, "the records store is unavailable; retry shortly");
    failure.retry_after = Some(1);
    failure
}

/// `start_time` / `end_time` as Unix milliseconds, checked to be in order.
pub(crate) fn window(
    time: &TimeFormat,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), Failure> {
    let parse = |name: &str, raw: Option<&str>| -> Result<Option<i64>, Failure> {
        raw.map(|raw| {
            time.parse(raw)
                .map(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|_| invalid(format!("{name} must be YYYY-MM-DD HH:MM:SS, got {raw:?}")))
        })
        .transpose()
    };
    let (from, to) = (parse("start_time", start)?, parse("end_time", end)?);
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(invalid("start_time is after end_time".to_owned()));
    }
    // `end_time` names a whole second: include all of it.
    Ok((from, to.map(|to| to + 999)))
}

/// The query of `GET /api/admin/push/records`; it is also what the OpenAPI document says it is
/// (`type`, the alias, is added by `list`'s attribute).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RecordParams {
    /// 1-based page (default 1)
    #[param(value_type = Option<openapi::PageNumber>, inline)]
    page: Option<u64>,
    /// Entries per page, 1 to 100 (default 20)
    #[param(value_type = Option<openapi::RecordPageSize>, inline)]
    page_size: Option<u64>,
    /// Only this notification type
    #[serde(alias = "type")]
    #[param(value_type = Option<openapi::NotificationTypeName>, inline)]
    message_type: Option<String>,
    /// Only this target
    #[param(value_type = Option<openapi::TargetName>, inline)]
    target: Option<String>,
    /// Only this status
    #[param(value_type = Option<openapi::RecordStatus>, inline)]
    status: Option<String>,
    /// Only this sender
    #[param(value_type = Option<openapi::PositiveId>, inline)]
    sender_id: Option<UserId>,
    /// From: YYYY-MM-DD HH:MM:SS at the server's time.utc_offset, inclusive
    #[param(value_type = Option<openapi::FilterTime>, inline)]
    start_time: Option<String>,
    /// Until: YYYY-MM-DD HH:MM:SS at the server's time.utc_offset, inclusive
    #[param(value_type = Option<openapi::FilterTime>, inline)]
    end_time: Option<String>,
    /// Content containing this text
    content: Option<String>,
}

/// Spec 6.3's `data`.
#[derive(Debug, Serialize)]
struct RecordList {
    total: u64,
    page: u64,
    page_size: u64,
    items: Vec<PushRecord>,
    stats: RecordStats,
}

/// `GET /api/admin/push/records`.
#[utoipa::path(
    get,
    path = "/api/admin/push/records",
    operation_id = "listPushRecords",
    tag = "records",
    summary = "Push records (spec 6.3)",
    description = "Newest first (ties broken by id, so pages never overlap), with statistics over every matching \
        record. Admin role.",
    security(("bearer" = [])),
    params(
        RecordParams,
        ("type" = inline(Option<openapi::NotificationTypeName>), Query,
            description = "Alias of message_type (give one of the two)"),
    ),
    responses(
        (status = 200, description = "A page", body = openapi::PushRecordsResponse),
        openapi::AdminRefusals,
        openapi::RecordsRefusals,
    ),
)]
pub async fn list(req: HttpRequest, _admin: AdminClaims, api: web::Data<IngestApi>) -> Result<HttpResponse, Failure> {
    let params: RecordParams = http_server::query(&req)?;
    let (page, page_size) = crate::users::paging(params.page, params.page_size, (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE))?;
    let target = params
        .target
        .map(|target| {
            Target::parse(&target)
                .filter(|t| TARGETS.contains(t))
                .ok_or_else(|| invalid(format!("target must be all, admin, custom, user or group, got {target:?}")))
        })
        .transpose()?;
    let status = params
        .status
        .map(|status| {
            PushStatus::parse(&status)
                .ok_or_else(|| invalid(format!("status must be one of {}, got {status:?}", STATUSES.join(", "))))
        })
        .transpose()?;
    let message_type = params
        .message_type
        .map(|kind| {
            NotificationType::parse(&kind)
                .map_err(|_| invalid(format!("message_type must be a lower_snake_case type, got {kind:?}")))
        })
        .transpose()?;
    if params.sender_id.is_some_and(|id| id <= 0) {
        return Err(invalid("sender_id must be a positive integer".to_owned()));
    }
    let (from_ms, to_ms) = window(&api.time, params.start_time.as_deref(), params.end_time.as_deref())?;
    let query = RecordQuery {
        page,
        page_size,
        message_type,
        target,
        status,
        sender_id: params.sender_id,
        from_ms,
        to_ms,
        content: params.content.filter(|c| !c.is_empty()),
    };
    let found = api.records.list(&query).await.map_err(unavailable)?;
    let data = RecordList { total: found.total, page, page_size, items: found.items, stats: found.stats };
    Ok(HttpResponse::Ok().json(ApiResponse::ok(data)))
}

/// `GET /api/admin/push/records/{message_id}`.
#[utoipa::path(
    get,
    path = "/api/admin/push/records/{message_id}",
    operation_id = "getPushRecord",
    tag = "records",
    summary = "One push record with its receive records and log",
    description = "404 NOT_FOUND when Herald has no record of the message (yet: records are written \
        asynchronously). Admin role.",
    security(("bearer" = [])),
    params(
        ("message_id" = inline(openapi::MessageIdText), Path,
            description = "The notice's message id, as its acceptance answered"),
    ),
    responses(
        (status = 200, description = "Found", body = openapi::PushRecordDetailResponse),
        openapi::AdminRefusals,
        (status = 404, description = "NOT_FOUND: no record of this message", body = openapi::FailureResponse),
        openapi::RecordsRefusals,
    ),
)]
pub async fn detail(
    _admin: AdminClaims,
    api: web::Data<IngestApi>,
    message_id: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    let message_id = MessageId::parse(&message_id).map_err(|err| invalid(format!("message_id: {err}")))?;
    let Some(found) = api.records.detail(message_id.as_str()).await.map_err(unavailable)? else {
        return Err(Failure::new(ErrorCode::NotFound, format!("no push record for {message_id}")));
    };
    let data = serde_json::json!({
        "record": found.record,
        "receive_records": found.receipts,
        "logs": found.logs,
    });
    Ok(HttpResponse::Ok().json(ApiResponse::ok(data)))
}

/// The query of `GET /api/admin/notification/logs`; it is also what the OpenAPI document says it
/// is.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogParams {
    /// 1-based page (default 1)
    #[param(value_type = Option<openapi::PageNumber>, inline)]
    page: Option<u64>,
    /// Entries per page, 1 to 100 (default 20)
    #[param(value_type = Option<openapi::RecordPageSize>, inline)]
    page_size: Option<u64>,
    /// Only this notice
    #[param(value_type = Option<openapi::MessageIdText>, inline)]
    message_id: Option<String>,
    /// Only this user
    #[param(value_type = Option<openapi::PositiveId>, inline)]
    user_id: Option<UserId>,
    /// Only this kind of event
    #[param(value_type = Option<openapi::EventTypeName>, inline)]
    event_type: Option<String>,
    /// From: YYYY-MM-DD HH:MM:SS at the server's time.utc_offset, inclusive
    #[param(value_type = Option<openapi::FilterTime>, inline)]
    start_time: Option<String>,
    /// Until: YYYY-MM-DD HH:MM:SS at the server's time.utc_offset, inclusive
    #[param(value_type = Option<openapi::FilterTime>, inline)]
    end_time: Option<String>,
}

#[derive(Debug, Serialize)]
struct LogList {
    total: u64,
    page: u64,
    page_size: u64,
    items: Vec<NotificationLog>,
}

/// `GET /api/admin/notification/logs`.
#[utoipa::path(
    get,
    path = "/api/admin/notification/logs",
    operation_id = "listNotificationLogs",
    tag = "records",
    summary = "Notification logs (spec 4.3)",
    description = "Delivery events (delivered, read, confirmed, ...) per user, newest first. Admin role.",
    security(("bearer" = [])),
    params(LogParams),
    responses(
        (status = 200, description = "A page", body = openapi::NotificationLogsResponse),
        openapi::AdminRefusals,
        openapi::RecordsRefusals,
    ),
)]
pub async fn logs(req: HttpRequest, _admin: AdminClaims, api: web::Data<IngestApi>) -> Result<HttpResponse, Failure> {
    let params: LogParams = http_server::query(&req)?;
    let (page, page_size) = crate::users::paging(params.page, params.page_size, (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE))?;
    if let Some(id) = &params.message_id {
        MessageId::parse(id).map_err(|err| invalid(format!("message_id: {err}")))?;
    }
    let event_type = params
        .event_type
        .map(|kind| {
            DeliveryEventType::parse(&kind)
                .ok_or_else(|| invalid(format!("event_type must be one of {}, got {kind:?}", EVENT_TYPES.join(", "))))
        })
        .transpose()?;
    if params.user_id.is_some_and(|id| id <= 0) {
        return Err(invalid("user_id must be a positive integer".to_owned()));
    }
    let (from_ms, to_ms) = window(&api.time, params.start_time.as_deref(), params.end_time.as_deref())?;
    let query = LogQuery {
        page,
        page_size,
        message_id: params.message_id,
        user_id: params.user_id,
        event_type,
        from_ms,
        to_ms,
    };
    let found = api.records.logs(&query).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(ApiResponse::ok(LogList { total: found.total, page, page_size, items: found.items })))
}
