//! ingest-api's one error type and its mapping to status codes and spec error codes.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use bus::BusError;
use http_server::Failure;
use model::{ErrorCode, FailureData};
use validation::ValidationError;

/// What a notice request's failure data can say about the notice (spec 6.2).
#[derive(Debug, Clone, Default)]
pub struct NoticeContext {
    /// The content, as sent.
    pub content: Option<String>,
    /// The target, as sent (or `all`).
    pub target: Option<String>,
    /// The type, as sent (or `system_notice`).
    pub message_type: Option<String>,
    /// When the request was refused.
    pub push_time: Option<String>,
    /// The notice's id, once it had one.
    pub message_id: Option<String>,
}

/// Every way an ingest-api request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The notice breaks a rule.
    #[error("{0}")]
    Validation(ValidationError, Box<NoticeContext>),
    /// The bus did not accept the notice.
    #[error("publishing failed: {0}")]
    Publish(#[source] BusError, Box<NoticeContext>),
    /// Refused for a reason with its own code (idempotency conflicts, a bad header).
    #[error("{1}")]
    Refused(ErrorCode, String, Box<NoticeContext>),
    /// A store the request depends on is unavailable.
    #[error("store unavailable: {0}")]
    Store(String, Box<NoticeContext>),
    /// The sender or its address is over its rate limit.
    #[error("rate limited ({0:?})")]
    RateLimited(crate::limits::LimitScope, std::time::Duration, Box<NoticeContext>),
    /// The offline inboxes could not be written, so nothing was published.
    #[error("storing offline copies failed: {0}")]
    Inbox(#[source] state::InboxError, Box<NoticeContext>),
    /// As many urgent notices as allowed (`limits.urgent_in_flight`) are being carried out.
    #[error("too many urgent notices in flight")]
    UrgentFull(Box<NoticeContext>),
}

impl ApiError {
    /// The error code the client is answered with.
    pub(crate) fn code(&self) -> ErrorCode {
        self.failure().code
    }

    fn failure(&self) -> Failure {
        let (code, message, field, context) = match self {
            ApiError::Validation(err, context) => (err.code, err.message.clone(), err.field.clone(), context),
            ApiError::Publish(BusError::QueueFull, context) => (
                ErrorCode::QueueFull,
                "queue full: the normal-priority backlog is full; retry shortly (urgent notices are still accepted)"
                    .to_owned(),
                None,
                context,
            ),
            ApiError::Publish(BusError::Unconfirmed(_), context) => (
                ErrorCode::PushFailed,
                "push outcome unknown: the message bus took the notice but never confirmed it, so it may still be \
                 delivered; check the records API for its message_id before sending it again"
                    .to_owned(),
                None,
                context,
            ),
            ApiError::Publish(_, context) => (
                ErrorCode::PushFailed,
                "push failed: the message bus is unavailable; nothing was sent, retry shortly".to_owned(),
                None,
                context,
            ),
            ApiError::Refused(code, message, context) => (*code, message.clone(), None, context),
            ApiError::Store(_, context) => (
                ErrorCode::PushFailed,
                "push failed: a store Herald needs is unavailable; nothing was sent, retry shortly".to_owned(),
                None,
                context,
            ),
            ApiError::RateLimited(scope, wait, context) => {
                let seconds = retry_after_secs(*wait);
                let message = match scope {
                    crate::limits::LimitScope::Sender => {
                        format!(
                            "too many notices from this sender; retry in {seconds} s (urgent notices are not limited)"
                        )
                    }
                    crate::limits::LimitScope::ClientIp => format!(
                        "too many notices from this address; retry in {seconds} s (urgent notices are not limited)"
                    ),
                    crate::limits::LimitScope::Receipts => {
                        format!("too many receipts from this user; retry in {seconds} s")
                    }
                };
                (ErrorCode::RateLimitExceeded, message, None, context)
            }
            ApiError::Inbox(state::InboxError::Full(_), context) => (
                ErrorCode::QueueFull,
                "queue full: the offline inboxes hold as many notices as they may; retry later".to_owned(),
                None,
                context,
            ),
            ApiError::UrgentFull(context) => (
                ErrorCode::QueueFull,
                "queue full: too many urgent notices are being carried out at once; retry shortly".to_owned(),
                None,
                context,
            ),
            ApiError::Inbox(_, context) => (
                ErrorCode::PushFailed,
                "push failed: the offline message store is unavailable; nothing was sent, retry shortly".to_owned(),
                None,
                context,
            ),
        };
        let data = FailureData {
            message: context.content.clone(),
            push_time: context.push_time.clone(),
            target: context.target.clone(),
            message_type: context.message_type.clone(),
            field,
            message_id: match self {
                ApiError::Publish(BusError::Unconfirmed(_), context) => context.message_id.clone(),
                _ => None,
            },
            ..FailureData::new(code, message)
        };
        let retry_after = match self {
            ApiError::Publish(..) | ApiError::Inbox(..) | ApiError::Store(..) | ApiError::UrgentFull(..) => Some(1),
            ApiError::Refused(..) => None,
            ApiError::RateLimited(_, wait, _) => Some(retry_after_secs(*wait)),
            ApiError::Validation(..) => None,
        };
        Failure { code, data: Box::new(data), retry_after }
    }
}

/// Whole seconds to wait, at least one.
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.failure().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        // The cause stays in the log; the client gets the code and a retry hint.
        match self {
            ApiError::Publish(BusError::QueueFull, _) => tracing::warn!("notice refused: backlog full"),
            ApiError::Publish(cause, _) => tracing::error!(error = %cause, "notice not published"),
            ApiError::Inbox(state::InboxError::Full(_), _) | ApiError::UrgentFull(_) => {
                tracing::warn!("notice refused: in-process capacity reached")
            }
            ApiError::Inbox(cause, _) => tracing::error!(error = %cause, "notice not published"),
            ApiError::Store(cause, _) => tracing::error!(error = %cause, "notice not published"),
            ApiError::Validation(..) | ApiError::RateLimited(..) | ApiError::Refused(..) => {}
        }
        self.failure().error_response()
    }
}
