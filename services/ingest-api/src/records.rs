//! The records API (admin JWT):
//! - `GET /api/admin/push/records`: spec 6.3, newest first, with filters and stats;
//! - `GET /api/admin/push/records/{message_id}`: a record with its receive records and log;
//! - `GET /api/admin/notification/logs`: log entries, newest first, with filters.
//!
//! Times in filters are `YYYY-MM-DD HH:MM:SS` at `time.utc_offset`, like every time Herald
//! renders; `start_time` and `end_time` are inclusive.

use crate::IngestApi;
use ::records::{LogQuery, RecordQuery, RecordStats};
use actix_web::{HttpRequest, HttpResponse, web};
use http_server::{AdminClaims, Failure};
use model::{ApiResponse, ErrorCode, MessageId, NotificationLog, PushRecord, Target, TimeFormat, UserId};
use serde::{Deserialize, Serialize};

/// The largest page the records and logs listings return.
pub const MAX_PAGE_SIZE: u64 = 100;
/// The page size when none is asked for (spec 6.3's example).
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// The statuses a record can have.
pub const STATUSES: [&str; 4] = ["queued", "partial", "delivered", "failed"];
/// The event types a log entry can have.
pub const EVENT_TYPES: [&str; 5] = ["sent", "delivered", "failed", "read", "confirmed"];

fn invalid(message: String) -> Failure {
    Failure::new(ErrorCode::InvalidRequest, message)
}

fn unavailable(err: impl std::fmt::Display) -> Failure {
    tracing::warn!(error = %err, "records store unavailable");
    let mut failure = Failure::new(ErrorCode::ServiceUnavailable, "the records store is unavailable; retry shortly");
    failure.retry_after = Some(1);
    failure
}

fn paging(page: Option<u64>, page_size: Option<u64>) -> Result<(u64, u64), Failure> {
    let (page, page_size) = (page.unwrap_or(1), page_size.unwrap_or(DEFAULT_PAGE_SIZE));
    if page == 0 {
        return Err(invalid("page starts at 1".to_owned()));
    }
    if page_size == 0 || page_size > MAX_PAGE_SIZE {
        return Err(invalid(format!("page_size must be 1 to {MAX_PAGE_SIZE}")));
    }
    // The rows skipped must fit the database's 64-bit offset.
    if (page - 1).checked_mul(page_size).is_none_or(|offset| offset > i64::MAX as u64) {
        return Err(invalid(format!("page {page} is past any listing (page_size {page_size})")));
    }
    Ok((page, page_size))
}

/// `start_time` / `end_time` as Unix milliseconds, checked to be in order.
fn window(time: &TimeFormat, start: Option<&str>, end: Option<&str>) -> Result<(Option<i64>, Option<i64>), Failure> {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordParams {
    page: Option<u64>,
    page_size: Option<u64>,
    #[serde(alias = "type")]
    message_type: Option<String>,
    target: Option<String>,
    status: Option<String>,
    sender_id: Option<UserId>,
    start_time: Option<String>,
    end_time: Option<String>,
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
pub async fn list(req: HttpRequest, _admin: AdminClaims, api: web::Data<IngestApi>) -> Result<HttpResponse, Failure> {
    let params: RecordParams = http_server::query(&req)?;
    let (page, page_size) = paging(params.page, params.page_size)?;
    const TARGETS: [Target; 5] = [Target::All, Target::Admin, Target::Custom, Target::User, Target::Group];
    if let Some(target) = &params.target
        && !TARGETS.iter().any(|t| t.as_str() == target)
    {
        return Err(invalid(format!("target must be all, admin, custom, user or group, got {target:?}")));
    }
    if let Some(status) = &params.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(invalid(format!("status must be one of {}, got {status:?}", STATUSES.join(", "))));
    }
    if let Some(kind) = &params.message_type
        && model::NotificationType::parse(kind).is_err()
    {
        return Err(invalid(format!("message_type must be a lower_snake_case type, got {kind:?}")));
    }
    if params.sender_id.is_some_and(|id| id <= 0) {
        return Err(invalid("sender_id must be a positive integer".to_owned()));
    }
    let (from_ms, to_ms) = window(&api.time, params.start_time.as_deref(), params.end_time.as_deref())?;
    let query = RecordQuery {
        page,
        page_size,
        message_type: params.message_type,
        target: params.target,
        status: params.status,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogParams {
    page: Option<u64>,
    page_size: Option<u64>,
    message_id: Option<String>,
    user_id: Option<UserId>,
    event_type: Option<String>,
    start_time: Option<String>,
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
pub async fn logs(req: HttpRequest, _admin: AdminClaims, api: web::Data<IngestApi>) -> Result<HttpResponse, Failure> {
    let params: LogParams = http_server::query(&req)?;
    let (page, page_size) = paging(params.page, params.page_size)?;
    if let Some(id) = &params.message_id {
        MessageId::parse(id).map_err(|err| invalid(format!("message_id: {err}")))?;
    }
    if let Some(kind) = &params.event_type
        && !EVENT_TYPES.contains(&kind.as_str())
    {
        return Err(invalid(format!("event_type must be one of {}, got {kind:?}", EVENT_TYPES.join(", "))));
    }
    if params.user_id.is_some_and(|id| id <= 0) {
        return Err(invalid("user_id must be a positive integer".to_owned()));
    }
    let (from_ms, to_ms) = window(&api.time, params.start_time.as_deref(), params.end_time.as_deref())?;
    let query = LogQuery {
        page,
        page_size,
        message_id: params.message_id,
        user_id: params.user_id,
        event_type: params.event_type,
        from_ms,
        to_ms,
    };
    let found = api.records.logs(&query).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(ApiResponse::ok(LogList { total: found.total, page, page_size, items: found.items })))
}
