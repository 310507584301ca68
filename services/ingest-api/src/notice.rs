//! `POST /api/admin/system/notice`: validate, stamp, publish with confirm, answer (spec 6.1).

use crate::IngestApi;
use crate::error::{ApiError, NoticeContext};
use actix_web::{HttpRequest, HttpResponse, web};
use http_server::AdminClaims;
use model::{ApiResponse, MessageId, NotificationMessage, PushResult, PushStatus, Sender};
use serde_json::Value;
use validation::{NoticeDraft, parse_notice};

/// Accepts a notice from an admin and publishes it.
#[tracing::instrument(name = "post_notice", skip_all, fields(sender = admin.0.sub, message_id))]
pub async fn post_notice(
    req: HttpRequest,
    admin: AdminClaims,
    api: web::Data<IngestApi>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let push_time = api.time.now();
    let raw = body.into_inner();
    let mut context = context_of(&raw);
    context.push_time = Some(push_time.clone());
    if !is_urgent(&raw) {
        let ip = http_server::client_ip(&req, &api.trusted_proxies);
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
        message_id: MessageId::generate(),
        sender: Sender { id: admin.0.sub, name: admin.0.name },
    };
    tracing::Span::current().record("message_id", message.message_id.as_str());

    // Offline copies first: once the bus has the message, a recipient who is offline (or
    // reconnecting) must find it in their inbox.
    let recipients: Vec<_> = message.explicit_recipients().collect();
    let entry = message.offline_entry(api.time.now());
    api.inbox.store(&recipients, &entry).await.map_err(|err| ApiError::Inbox(err, context.clone()))?;
    if let Err(err) = api.bus.publish_notification(&message).await {
        // Not accepted: take the copies back so nobody is replayed a notice the sender was told
        // failed. Best effort; a leftover copy is at worst a late delivery.
        let withdrawals = recipients.iter().map(|user| api.inbox.acknowledge(*user, &message.message_id));
        if futures_util::future::join_all(withdrawals).await.iter().any(Result::is_err) {
            tracing::warn!("could not withdraw every offline copy of a failed notice");
        }
        return Err(ApiError::Publish(err, context));
    }
    tracing::info!(target = %message.target, priority = %message.priority, "notice accepted");

    Ok(HttpResponse::Ok().json(ApiResponse::ok(PushResult {
        success: true,
        message: message.content,
        push_time: message.time,
        target: message.target.as_str().to_owned(),
        message_type: message.notification_type.as_str().to_owned(),
        recipients_count,
        message_id: message.message_id.to_string(),
        status: PushStatus::Queued,
    })))
}

/// Whether the request asks for urgent priority, which no rate limit applies to (spec 8.2).
fn is_urgent(raw: &Value) -> bool {
    matches!(raw.get("priority"), Some(p) if p == 3 || p == "urgent")
}

/// What a refused request's failure data repeats of the notice, read leniently from the body.
fn context_of(raw: &Value) -> NoticeContext {
    let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_owned);
    let content = text("content").map(|c| c.chars().take(500).collect());
    let target = text("target").filter(|t| !t.is_empty()).unwrap_or_else(|| "all".to_owned());
    let message_type = text("type").filter(|t| !t.is_empty()).unwrap_or_else(|| "system_notice".to_owned());
    NoticeContext {
        content,
        target: Some(target.chars().take(40).collect()),
        message_type: Some(message_type.chars().take(64).collect()),
        push_time: None,
    }
}
