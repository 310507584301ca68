//! `POST /api/admin/notification/mark-read` (spec 7.3) and `/api/admin/notification/confirm`:
//! a user reports reading or confirming one of their notices over REST, as the WebSocket `read`
//! and `confirm` frames do. The inbox entry is cleared and, the first time (per notice, user and
//! kind; REST counts as one device), a delivery event published, which also tells the user's
//! connected devices (a `sync` frame). A repeat answers the same and changes nothing. Receipts
//! are rate-limited per user (`limits.receipts_per_second`).

use crate::IngestApi;
use crate::error::ApiError;
use crate::openapi;
use actix_web::http::header::USER_AGENT;
use actix_web::{HttpRequest, HttpResponse, web};
use http_server::BearerClaims;
use model::{ApiResponse, DeliveryEvent, DeliveryEventType, ErrorCode, MAX_USER_AGENT_CHARS, MessageId, ReportChannel};
use serde::Deserialize;
use serde_json::{Value, json};

/// The device REST receipts count as.
const REST_DEVICE: &str = "rest";

/// The body of a receipt (spec 7.3): the notice, and optionally the user, who must be the
/// token's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptRequest {
    message_id: String,
    #[serde(default)]
    user_id: Option<i64>,
}

/// What both receipts do, for the OpenAPI document.
const RECEIPT_DESCRIPTION: &str = "Clears the notice from the user's offline inbox, publishes a delivery event and \
    sends a sync frame to the user's other connected devices. Any valid token; a user marks only notices \
    addressed to them.";

/// `POST /api/admin/notification/mark-read`.
#[utoipa::path(
    post,
    path = "/api/admin/notification/mark-read",
    operation_id = "markRead",
    summary = "Mark a notification read (spec 7.3)",
    tag = "receipts",
    description = RECEIPT_DESCRIPTION,
    security(("bearer" = [])),
    request_body = openapi::ReceiptRequest,
    responses(
        (status = 200, description = "Recorded", body = openapi::ReceiptResponse),
        openapi::ReceiptRefusals,
        openapi::BodyRefusals,
    ),
)]
pub async fn mark_read(
    req: HttpRequest,
    user: BearerClaims,
    api: web::Data<IngestApi>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    record(DeliveryEventType::Read, &req, user, &api, body.into_inner()).await
}

/// `POST /api/admin/notification/confirm`.
#[utoipa::path(
    post,
    path = "/api/admin/notification/confirm",
    operation_id = "confirm",
    summary = "Confirm a notification that asked for it",
    tag = "receipts",
    description = RECEIPT_DESCRIPTION,
    security(("bearer" = [])),
    request_body = openapi::ReceiptRequest,
    responses(
        (status = 200, description = "Recorded", body = openapi::ReceiptResponse),
        openapi::ReceiptRefusals,
        openapi::BodyRefusals,
    ),
)]
pub async fn confirm(
    req: HttpRequest,
    user: BearerClaims,
    api: web::Data<IngestApi>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    record(DeliveryEventType::Confirmed, &req, user, &api, body.into_inner()).await
}

fn refused(code: ErrorCode, message: String) -> ApiError {
    ApiError::Refused(code, message, Box::default())
}

#[tracing::instrument(name = "receipt", skip_all, fields(user = user.0.sub, event = %event_type))]
async fn record(
    event_type: DeliveryEventType,
    req: &HttpRequest,
    user: BearerClaims,
    api: &IngestApi,
    raw: Value,
) -> Result<HttpResponse, ApiError> {
    api.limits.check_receipt(user.0.sub).map_err(|(scope, wait)| ApiError::RateLimited(scope, wait, Box::default()))?;
    let request: ReceiptRequest = serde_path_to_error::deserialize(raw)
        .map_err(|err| refused(ErrorCode::InvalidRequest, format!("invalid receipt: {err}")))?;
    let message_id = MessageId::parse(&request.message_id)
        .map_err(|err| refused(ErrorCode::InvalidRequest, format!("message_id: {err}")))?;
    if request.user_id.is_some_and(|id| id != user.0.sub) {
        return Err(refused(ErrorCode::Forbidden, "a user can only mark their own notifications".to_owned()));
    }
    match api.stores.audience.lookup(&message_id).await {
        Ok(Some(audience)) if audience.includes(user.0.sub, user.0.is_admin()) => {}
        Ok(Some(_)) => {
            return Err(refused(ErrorCode::Forbidden, "this notification was not addressed to you".to_owned()));
        }
        Ok(None) => return Err(refused(ErrorCode::NotFound, format!("no notification {message_id} is known"))),
        Err(err) => return Err(ApiError::Store(err.to_string(), Box::default())),
    }
    let user_agent = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let event = DeliveryEvent {
        event_id: DeliveryEvent::new_event_id(),
        event_type,
        message_id,
        user_id: user.0.sub,
        username: user.0.name,
        channel: ReportChannel::Rest,
        connection_id: String::new(),
        timestamp: api.time.now(),
        user_role: Some(user.0.role),
        // A REST receipt cannot tell how the notice reached the user.
        push_channel: None,
        client_ip: http_server::client_ip(req, &api.trusted_proxies).map(|ip| ip.to_string()).unwrap_or_default(),
        user_agent: user_agent.chars().take(MAX_USER_AGENT_CHARS).collect(),
    };
    state::receipts::record(&api.stores.inbox, &api.stores.receipts, &api.bus, &event, REST_DEVICE).await.map_err(
        |err| match err {
            state::receipts::RecordError::Publish(err) => ApiError::Publish(err, Box::default()),
            ledger => ApiError::Store(ledger.to_string(), Box::default()),
        },
    )?;
    let answer = json!({"message_id": event.message_id, "user_id": event.user_id, "status": event_type.as_str(), "time": event.timestamp});
    Ok(HttpResponse::Ok().json(ApiResponse::ok(answer)))
}
