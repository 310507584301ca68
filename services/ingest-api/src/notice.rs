//! `POST /api/admin/system/notice`: validate, stamp, publish with confirm, answer (spec 6.1).

use crate::IngestApi;
use crate::error::{ApiError, NoticeContext};
use crate::openapi;
use actix_web::{HttpRequest, HttpResponse, web};
use http_server::AdminClaims;
use model::{
    ApiResponse, ErrorCode, MessageId, NoticeChannel, NotificationMessage, Priority, PushResult, PushStatus, Sender,
};
use serde_json::Value;
use state::{Claim, IdempotencyStore};
use tracing::Instrument;
use validation::{NoticeDraft, parse_notice};

/// The header that makes a notice idempotent for 24 hours.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Set on an answer that repeats an earlier one instead of carrying the request out.
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

/// Accepts a notice from an admin and publishes it. With an `Idempotency-Key`, a repeat of the
/// same request by the same sender within 24 hours gets the first answer and publishes nothing.
#[utoipa::path(
    post,
    path = "/api/admin/system/notice",
    operation_id = "postSystemNotice",
    tag = "notifications",
    summary = "Send a notification",
    description = "Validates the notice (spec 1.1, 8.1), stamps it with a message id and the server's time, and \
        publishes it. Answers once the message bus confirmed it: `status` is `queued`, and delivery to \
        connected clients follows within milliseconds. Admin role.",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false,
            min_length = 1, max_length = 200, pattern = "^[!-~]{1,200}$",
            description = "1-200 visible ASCII characters. A repeat of the same request by the same sender within \
                24 hours gets the first answer (header Idempotent-Replayed: true) and delivers nothing again."),
    ),
    request_body = openapi::NoticeRequest,
    responses(
        (status = 200, description = "Accepted: the message bus confirmed the notice", body = openapi::PushSuccessResponse,
            headers(("Idempotent-Replayed" = inline(openapi::ReplayedFlag),
                description = "Present when the answer repeats an earlier one for the same Idempotency-Key")),
            // What a client does next with the notice's id (and what lets a fuzzer follow it).
            links(
                ("GetPushRecord" = (operation_id = "getPushRecord",
                    parameters(("message_id" = "$response.body#/data/message_id")))),
                ("ListItsLogs" = (operation_id = "listNotificationLogs",
                    parameters(("message_id" = "$response.body#/data/message_id")))),
                ("MarkItRead" = (operation_id = "markRead",
                    request_body = json!({"message_id": "$response.body#/data/message_id"}))),
                ("ConfirmIt" = (operation_id = "confirm",
                    request_body = json!({"message_id": "$response.body#/data/message_id"}))),
            )),
        (status = 400, body = openapi::FailureResponse,
            description = "The notice breaks a rule (INVALID_TARGET, MISSING_USER_IDS, CONTENT_TOO_LONG, MISSING_CONTENT, \
                INVALID_USER_IDS, TOO_MANY_USER_IDS, DATA_TOO_LARGE, INVALID_DATA, INVALID_TYPE, INVALID_PRIORITY), \
                or the body or Idempotency-Key is malformed (INVALID_REQUEST)"),
        openapi::AdminRefusals,
        (status = 409, description = "REQUEST_IN_PROGRESS: the same Idempotency-Key is still being processed",
            body = openapi::FailureResponse),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED: the Idempotency-Key was used for a different request",
            body = openapi::FailureResponse),
        (status = 429, description = "RATE_LIMIT_EXCEEDED: too many notices from this sender or address",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
        (status = 503, body = openapi::FailureResponse,
            description = "PUSH_FAILED (the message bus or a store is unavailable; nothing was sent, or the outcome is \
                unknown and data.message_id names the notice) or QUEUE_FULL (the normal-priority backlog is full)",
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
        openapi::BodyRefusals,
    ),
)]
pub async fn post_notice(
    req: HttpRequest,
    admin: AdminClaims,
    api: web::Data<IngestApi>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    // The request's span: a caller's trace (its `traceparent` header) goes on through it, over
    // the bus, to the deliveries.
    let span = tracing::info_span!(
        "post_notice",
        sender = admin.0.sub,
        message_id = tracing::field::Empty,
        trace_id = tracing::field::Empty
    );
    let traceparent = req.headers().get(runtime::trace::TRACEPARENT).and_then(|value| value.to_str().ok());
    let span = runtime::trace::continued(span, traceparent);
    let answer = handle_notice(&req, admin, &api, body.into_inner()).instrument(span).await;
    if let Err(err) = &answer {
        api.metrics.refused(err.code());
    }
    answer
}

/// The notice request, with its idempotency key if it has one.
async fn handle_notice(
    req: &HttpRequest,
    admin: AdminClaims,
    api: &IngestApi,
    raw: Value,
) -> Result<HttpResponse, ApiError> {
    let Some(key) = idempotency_key(req)? else {
        let answer = accept(req, admin, api, raw).await?;
        return Ok(json_answer(answer_text(&answer)?, false));
    };
    let scope = admin.0.sub.to_string();
    let fingerprint = IdempotencyStore::fingerprint(&raw.to_string());
    let refuse = |code: ErrorCode, message: &str| ApiError::Refused(code, message.to_owned(), context_of(&raw));
    match api
        .stores
        .idempotency
        .claim(&scope, &key, &fingerprint, api.request_budget)
        .await
        .map_err(|err| ApiError::Store(err.to_string(), context_of(&raw)))?
    {
        Claim::New => {}
        Claim::Done(answer) => return Ok(json_answer(answer, true)),
        Claim::InProgress => {
            return Err(refuse(
                ErrorCode::RequestInProgress,
                "a request with this Idempotency-Key is still being processed; retry shortly",
            ));
        }
        Claim::Mismatch => {
            return Err(refuse(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was already used for a different request; use a new key",
            ));
        }
    }
    match accept(req, admin, api, raw).await {
        Ok(answer) => {
            let answer = answer_text(&answer)?;
            if let Err(err) = api.stores.idempotency.complete(&scope, &key, &fingerprint, &answer).await {
                // Accepted all the same; a repeat within the claim timeout gets 409, later ones
                // are carried out again.
                tracing::warn!(error = %err, "idempotent answer not recorded");
            }
            Ok(json_answer(answer, false))
        }
        Err(err) => {
            if let Err(release) = api.stores.idempotency.release(&scope, &key).await {
                tracing::warn!(error = %release, "idempotency key not released; a retry waits for the claim to lapse");
            }
            Err(err)
        }
    }
}

/// The `Idempotency-Key` header: absent, or 1-200 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else { return Ok(None) };
    match value.to_str() {
        Ok(key) if (1..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_owned()))
        }
        _ => Err(ApiError::Refused(
            ErrorCode::InvalidRequest,
            "Idempotency-Key must be 1-200 visible ASCII characters".to_owned(),
            Box::default(),
        )),
    }
}

/// The success answer as JSON text. (Serialising it cannot fail; if it ever did, the notice was
/// accepted all the same: the 500 says so and names it.)
fn answer_text(answer: &ApiResponse<PushResult>) -> Result<String, ApiError> {
    serde_json::to_string(answer).map_err(|err| {
        tracing::error!(error = %err, message_id = answer.data.message_id, "the answer could not be serialised");
        let message = format!("notice {} was accepted, but its answer could not be written", answer.data.message_id);
        ApiError::Refused(ErrorCode::InternalError, message, Box::default())
    })
}

fn json_answer(body: String, replayed: bool) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if replayed {
        response.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    response.content_type("application/json").body(body)
}

/// Rate-limits, validates, stamps, stores offline copies and publishes one notice.
async fn accept(
    req: &HttpRequest,
    admin: AdminClaims,
    api: &IngestApi,
    raw: Value,
) -> Result<ApiResponse<PushResult>, ApiError> {
    // One reading of the clock for both the id and the push time: the records keep the id's
    // instant and render `push_time` from it, so the two must name the same second.
    let pushed_at = time::OffsetDateTime::now_utc();
    let push_time = api.time.format(pushed_at);
    let mut context = context_of(&raw);
    context.push_time = Some(push_time.clone());
    if !is_urgent(&raw) {
        let ip = http_server::client_ip(req, &api.trusted_proxies);
        api.limits
            .check(admin.0.sub, ip)
            .map_err(|(scope, wait)| ApiError::RateLimited(scope, wait, context.clone()))?;
    }
    let draft =
        parse_notice(raw).and_then(NoticeDraft::try_from).map_err(|err| ApiError::Validation(err, context.clone()))?;

    let recipients_count = draft.target.recipients_count(draft.explicit_recipients());
    let message = NotificationMessage {
        notification_type: draft.notification_type,
        content: draft.content,
        data: draft.data,
        time: push_time,
        priority: draft.priority,
        target: draft.target,
        target_ids: draft.user_ids,
        exclude_ids: draft.exclude_ids,
        need_confirm: draft.need_confirm,
        message_id: MessageId::from_parts(pushed_at.unix_timestamp_nanos(), uuid::Uuid::new_v4()),
        channels: draft.channels,
        fallback: draft.fallback,
        sender: Sender { id: admin.0.sub, name: admin.0.name },
    };
    tracing::Span::current().record("message_id", message.message_id.as_str());
    context.message_id = Some(message.message_id.to_string());

    // Offline copies are the WebSocket channel's: `admin` notices go to every admin the
    // directory knows, online or not. A mobile-only notice leaves no inbox entry (the worker
    // finds its recipients' devices itself).
    let recipients = match message.channels.has(NoticeChannel::Websocket) {
        true => api
            .stores
            .directory
            .recipients(&message)
            .await
            .map_err(|err| ApiError::Store(err.to_string(), context.clone()))?,
        false => Vec::new(),
    };
    // Urgent notices pass the backlog and the rate limits: how many are carried out at once is
    // bounded here instead.
    let _urgent_slot = if message.priority == Priority::Urgent {
        Some(api.urgent_slots.clone().try_acquire_owned().map_err(|_| ApiError::UrgentFull(context.clone()))?)
    } else {
        None
    };
    api.intake.accept(api, &message, &recipients, &context).await?;
    tracing::info!(target = %message.target, priority = %message.priority, "notice accepted");
    api.metrics.accepted(message.priority);

    Ok(ApiResponse::ok(PushResult {
        success: true,
        message: message.content,
        push_time: message.time,
        target: message.target.as_str().to_owned(),
        message_type: message.notification_type.as_str().to_owned(),
        recipients_count,
        message_id: message.message_id.to_string(),
        status: PushStatus::Queued,
    }))
}

/// Whether the request asks for urgent priority, which no rate limit applies to (spec 8.2).
fn is_urgent(raw: &Value) -> bool {
    matches!(raw.get("priority"), Some(p) if p == 3 || p == "urgent")
}

/// What a refused request's failure data repeats of the notice, read leniently from the body.
fn context_of(raw: &Value) -> Box<NoticeContext> {
    let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_owned);
    let content = text("content").map(|c| c.chars().take(500).collect());
    let target = text("target").filter(|t| !t.is_empty()).unwrap_or_else(|| "all".to_owned());
    let message_type = text("type").filter(|t| !t.is_empty()).unwrap_or_else(|| "system_notice".to_owned());
    Box::new(NoticeContext {
        content,
        target: Some(target.chars().take(40).collect()),
        message_type: Some(message_type.chars().take(64).collect()),
        push_time: None,
        message_id: None,
    })
}
