//! Firebase Cloud Messaging, HTTP v1 API: `POST {base}/v1/projects/{project}/messages:send`
//! with an OAuth2 access token of a service account (yup-oauth2: the JWT grant at the key file's
//! `token_uri`, the token cached and refreshed a minute before it expires, one grant at a time).
//!
//! The message: the device token, the notification (title and text), the data (`messageId`,
//! `messageType`, and `alarmId` / `category` when there are), and the Android priority (`HIGH`
//! for Herald's high and urgent notices and for alarms, else `NORMAL`).
//!
//! Answers, classified as FCM documents them:
//! - 200: sent (the answer holds the message's `name`);
//! - `UNREGISTERED` (404): the token is dead ([`FailureReason::Unregistered`]); a 404 without
//!   Google's error body (a wrong base URL) is an ordinary failure, so a misconfiguration cannot
//!   deactivate every device;
//! - 401, 403 (`UNAUTHENTICATED`, `PERMISSION_DENIED`, `THIRD_PARTY_AUTH_ERROR`), or the token
//!   endpoint refusing the grant: [`FailureReason::Credential`];
//! - 429 (`QUOTA_EXCEEDED`): [`FailureReason::Throttled`]; it and 5xx carry `Retry-After`.

use super::{
    FailureReason, MAX_LOGGED_ANSWER_CHARS, Outcome, ProviderTimeouts, client_builder, cut, is_high, push_data,
    read_bounded, retry_after, transport_failure,
};
use model::PushSend;
use serde_json::{Value, json};
use yup_oauth2::authenticator::DefaultAuthenticator;
use yup_oauth2::error::AuthErrorCode;

/// The scope FCM sends need.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// FCM's base URL.
pub const DEFAULT_URL: &str = "https://fcm.googleapis.com";

/// An FCM client for one project. Cheap to share (`Arc`).
pub struct Fcm {
    client: reqwest::Client,
    auth: DefaultAuthenticator,
    /// One token request at a time: concurrent sends finding the token stale wait for the one
    /// grant instead of each asking for its own (yup-oauth2 does not coalesce them).
    token_lock: tokio::sync::Mutex<()>,
    send_url: String,
    timeouts: ProviderTimeouts,
}

impl std::fmt::Debug for Fcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fcm").field("send_url", &self.send_url).finish_non_exhaustive()
    }
}

/// Why FCM could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("FCM: {0}")]
pub struct FcmError(String);

impl Fcm {
    /// A client from the service-account key file's contents, for `project_id` (the key's
    /// own `project_id` when `None`), sending to `base_url`.
    pub async fn from_json(
        key: &[u8],
        project_id: Option<&str>,
        base_url: &str,
        timeouts: ProviderTimeouts,
    ) -> Result<Self, FcmError> {
        // The error names the field, never the key's contents.
        let key = yup_oauth2::parse_service_account_key(key)
            .map_err(|err| FcmError(format!("the service-account key is not one: {err}")))?;
        let project = match project_id.filter(|id| !id.is_empty()).or(key.project_id.as_deref()) {
            Some(project) => project.to_owned(),
            None => return Err(FcmError("no project id: set mobile.fcm_project_id".to_owned())),
        };
        let auth = yup_oauth2::ServiceAccountAuthenticator::builder(key)
            .with_timeout(timeouts.total)
            .build()
            .await
            .map_err(|err| FcmError(format!("cannot set up OAuth2: {err}")))?;
        let client =
            client_builder(timeouts).build().map_err(|err| FcmError(format!("cannot build the HTTP client: {err}")))?;
        let send_url = format!("{}/v1/projects/{project}/messages:send", base_url.trim_end_matches('/'));
        Ok(Self { client, auth, token_lock: tokio::sync::Mutex::new(()), send_url, timeouts })
    }

    /// Where sends go.
    pub fn send_url(&self) -> &str {
        &self.send_url
    }

    /// Sends `send` and tells what became of it.
    pub async fn send(&self, send: &PushSend) -> Outcome {
        let token = {
            let _one_at_a_time = self.token_lock.lock().await;
            match self.auth.token(&[SCOPE]).await {
                Ok(token) => token,
                Err(err) => return token_failure(&err),
            }
        };
        let Some(token) = token.token() else {
            return Outcome::failed(
                FailureReason::Credential,
                "FCM's token endpoint answered without an access token".to_owned(),
                String::new(),
            );
        };
        let request = self.client.post(&self.send_url).bearer_auth(token).json(&message(send));
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return transport_failure(&err, self.timeouts, "FCM"),
        };
        let status = response.status();
        let delay = retry_after(response.headers());
        let answer = match read_bounded(response).await {
            Ok(answer) => answer,
            Err(err) => return transport_failure(&err, self.timeouts, "FCM"),
        };
        let logged = cut(&answer, MAX_LOGGED_ANSWER_CHARS);
        if status.is_success() {
            return Outcome::Sent { answer: logged };
        }
        let error = serde_json::from_str::<Value>(&answer).ok();
        let error = error.as_ref().and_then(|body| body.get("error"));
        let google_status = error.and_then(|e| e.get("status")).and_then(Value::as_str).unwrap_or_default();
        let error_code = error
            .and_then(|e| e.get("details"))
            .and_then(Value::as_array)
            .and_then(|details| details.iter().find_map(|d| d.get("errorCode").and_then(Value::as_str)))
            .unwrap_or_default();
        let text = error.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or(&answer);
        let message = format!(
            "FCM answered HTTP {} {}{}: {}",
            status.as_u16(),
            if google_status.is_empty() { "" } else { google_status },
            if error_code.is_empty() { String::new() } else { format!(" ({error_code})") },
            cut(text, 200)
        );
        let reason = match (status.as_u16(), error_code) {
            (_, "UNREGISTERED") => FailureReason::Unregistered,
            (404, _) if google_status == "NOT_FOUND" && error_code.is_empty() && error.is_some() => {
                // A project FCM does not know: the credential's business, not the device's.
                FailureReason::Credential
            }
            (401 | 403, "SENDER_ID_MISMATCH") => FailureReason::HttpStatus,
            (401 | 403, _) | (_, "THIRD_PARTY_AUTH_ERROR") => FailureReason::Credential,
            (429, _) | (_, "QUOTA_EXCEEDED") => FailureReason::Throttled,
            _ => FailureReason::HttpStatus,
        };
        Outcome::Failed { reason, message, answer: logged, retry_after: delay }
    }
}

/// The v1 message for `send`.
fn message(send: &PushSend) -> Value {
    json!({
        "message": {
            "token": send.push_id,
            "notification": {"title": send.title, "body": send.content},
            "data": push_data(send),
            "android": {"priority": if is_high(send) { "HIGH" } else { "NORMAL" }},
        }
    })
}

fn token_failure(err: &yup_oauth2::Error) -> Outcome {
    let refused = matches!(
        err,
        yup_oauth2::Error::AuthError(auth) if matches!(
            auth.error,
            AuthErrorCode::InvalidGrant
                | AuthErrorCode::InvalidClient
                | AuthErrorCode::UnauthorizedClient
                | AuthErrorCode::AccessDenied
                | AuthErrorCode::InvalidScope
        )
    );
    if refused {
        Outcome::failed(
            FailureReason::Credential,
            format!("FCM's token endpoint refused the service account: {err}"),
            String::new(),
        )
    } else {
        Outcome::failed(FailureReason::Transport, format!("no OAuth2 token for FCM: {err}"), String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(priority: model::Priority, alarm_id: Option<&str>) -> PushSend {
        PushSend {
            send_id: "m-1:7".into(),
            attempt: 1,
            message_id: "m-1".into(),
            user_id: 7,
            push_id: "fcm-token-1".into(),
            message_type: "order".into(),
            title: "订单".into(),
            content: "已发货".into(),
            alarm_id: alarm_id.map(str::to_owned),
            category: Some("order".into()),
            priority,
        }
    }

    #[test]
    fn a_notice_becomes_a_v1_message_with_its_priority() {
        assert_eq!(
            message(&send(model::Priority::Normal, None)),
            json!({"message": {
                "token": "fcm-token-1",
                "notification": {"title": "订单", "body": "已发货"},
                "data": {"messageId": "m-1", "messageType": "order", "category": "order"},
                "android": {"priority": "NORMAL"},
            }})
        );
        assert_eq!(message(&send(model::Priority::Urgent, None))["message"]["android"]["priority"], "HIGH");
        let alarm = message(&send(model::Priority::Normal, Some("alarm-3")));
        assert_eq!(alarm["message"]["android"]["priority"], "HIGH");
        assert_eq!(alarm["message"]["data"]["alarmId"], "alarm-3");
    }
}
