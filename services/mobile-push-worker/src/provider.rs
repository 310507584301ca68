//! The push provider interface and the original's provider: a UniPush-style cloud function
//! that takes an HTTP POST of `{"push_clientid", "title", "content", "alarm_id", "category",
//! "options"}` (empty optional fields left out) and answers JSON with `errCode` 0 on success.
//! Anything else is a failure with a reason (for metrics) and a message (for the push log).

use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// The most bytes of an answer read; a longer one is cut there (and is a failure if that
/// leaves it unparsable).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The most characters of an answer kept in the push log.
pub const MAX_LOGGED_ANSWER_CHARS: usize = 2000;

/// One send, in the provider's field names.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PushPayload {
    /// The device's push id.
    pub push_clientid: String,
    /// The title.
    pub title: String,
    /// The text.
    pub content: String,
    /// The alarm's config id, for alarms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm_id: Option<String>,
    /// The notice's category (its type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Provider options, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// Why a send failed, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The provider answered JSON with a non-zero `errCode`.
    ErrCode,
    /// The answer was not JSON, or JSON without a numeric `errCode`.
    BadAnswer,
    /// An HTTP status other than 2xx.
    HttpStatus,
    /// No answer within the timeout.
    Timeout,
    /// The connection could not be made (refused, unreachable, TLS).
    Connect,
    /// Anything else on the way (a reset connection mid-answer, say).
    Transport,
}

impl FailureReason {
    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::ErrCode => "err_code",
            FailureReason::BadAnswer => "bad_answer",
            FailureReason::HttpStatus => "http_status",
            FailureReason::Timeout => "timeout",
            FailureReason::Connect => "connect",
            FailureReason::Transport => "transport",
        }
    }
}

/// What became of a send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The provider took it.
    Sent {
        /// Its answer, cut to [`MAX_LOGGED_ANSWER_CHARS`].
        answer: String,
    },
    /// It did not.
    Failed {
        /// Why, as a label.
        reason: FailureReason,
        /// Why, for a person (the push log's `err_message`).
        message: String,
        /// The provider's answer, if any, cut to [`MAX_LOGGED_ANSWER_CHARS`].
        answer: String,
    },
}

/// Timeouts of provider calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderTimeouts {
    /// To establish the connection.
    pub connect: Duration,
    /// For the whole call, answer included.
    pub total: Duration,
}

impl Default for ProviderTimeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(2), total: Duration::from_secs(5) }
    }
}

/// The original's provider, over one shared keep-alive client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct UniPush {
    client: reqwest::Client,
    timeouts: ProviderTimeouts,
}

impl UniPush {
    /// A provider client with `timeouts`.
    pub fn new(timeouts: ProviderTimeouts) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.total)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("herald-mobile-push-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, timeouts })
    }

    /// Posts `payload` to `url` and tells what became of it.
    pub async fn send(&self, url: &str, payload: &PushPayload) -> Outcome {
        self.send_once(url, payload, None).await
    }

    /// [`UniPush::send`] with an `Idempotency-Key` header: a provider that honours it (the mock
    /// does) takes a second post with the same key as the first, so that an attempt repeated
    /// after a crash between the provider's answer and the log is not pushed twice.
    pub async fn send_once(&self, url: &str, payload: &PushPayload, key: Option<&str>) -> Outcome {
        let mut request = self.client.post(url).json(payload);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return self.transport_failure(&err, String::new()),
        };
        let status = response.status();
        let answer = match read_bounded(response).await {
            Ok(answer) => answer,
            Err(err) => return self.transport_failure(&err, String::new()),
        };
        let logged = cut(&answer, MAX_LOGGED_ANSWER_CHARS);
        if !status.is_success() {
            return Outcome::Failed {
                reason: FailureReason::HttpStatus,
                message: format!("the provider answered HTTP {}: {}", status.as_u16(), cut(&answer, 200)),
                answer: logged,
            };
        }
        let Ok(json) = serde_json::from_str::<Value>(&answer) else {
            return Outcome::Failed {
                reason: FailureReason::BadAnswer,
                message: format!("the provider's answer is not JSON: {}", cut(&answer, 200)),
                answer: logged,
            };
        };
        match json.get("errCode").and_then(Value::as_i64) {
            Some(0) => Outcome::Sent { answer: logged },
            Some(code) => {
                let detail = json.get("errMsg").and_then(Value::as_str).unwrap_or("no errMsg");
                Outcome::Failed {
                    reason: FailureReason::ErrCode,
                    message: format!("the provider refused the send: errCode {code}: {}", cut(detail, 200)),
                    answer: logged,
                }
            }
            None => Outcome::Failed {
                reason: FailureReason::BadAnswer,
                message: "the provider's answer has no numeric errCode".to_owned(),
                answer: logged,
            },
        }
    }

    fn transport_failure(&self, err: &reqwest::Error, answer: String) -> Outcome {
        let (reason, message) = if err.is_timeout() {
            (
                FailureReason::Timeout,
                format!("no answer from the provider within {} ms", self.timeouts.total.as_millis()),
            )
        } else if err.is_connect() {
            (FailureReason::Connect, format!("cannot connect to the provider: {}", chain(err)))
        } else {
            (FailureReason::Transport, format!("the call to the provider failed: {}", chain(err)))
        };
        Outcome::Failed { reason, message, answer }
    }
}

/// The answer's text, at most [`MAX_ANSWER_BYTES`] of it.
async fn read_bounded(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `text`, at most `max` characters of it.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// An error and its causes, on one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_optional_fields_are_left_out() {
        let payload = PushPayload {
            push_clientid: "cid".into(),
            title: "告警:温度过高".into(),
            content: "DEV-001".into(),
            alarm_id: None,
            category: None,
            options: None,
        };
        assert_eq!(
            serde_json::to_value(&payload).unwrap(),
            serde_json::json!({"push_clientid": "cid", "title": "告警:温度过高", "content": "DEV-001"})
        );
    }

    #[test]
    fn long_answers_are_cut_on_a_character() {
        assert_eq!(cut("告警告警", 2), "告警…");
        assert_eq!(cut("ok", 2), "ok");
    }
}
