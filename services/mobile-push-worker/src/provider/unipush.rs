//! The original's provider: a UniPush-style cloud function that takes an HTTP POST of
//! `{"push_clientid", "title", "content", "alarm_id", "category", "options"}` (empty optional
//! fields left out) and answers JSON with `errCode` 0 on success. Anything else is a failure
//! with a reason (for metrics) and a message (for the push log).

use super::{FailureReason, MAX_LOGGED_ANSWER_CHARS, Outcome, ProviderTimeouts, cut, read_bounded, transport_failure};
use serde::Serialize;
use serde_json::Value;

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

/// The original's provider, over one shared keep-alive client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct UniPush {
    client: reqwest::Client,
    timeouts: ProviderTimeouts,
}

impl UniPush {
    /// A provider client with `timeouts`.
    pub fn new(timeouts: ProviderTimeouts) -> Result<Self, reqwest::Error> {
        let client = super::client_builder(timeouts).build()?;
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
            Err(err) => return transport_failure(&err, self.timeouts, "the provider"),
        };
        let status = response.status();
        let answer = match read_bounded(response).await {
            Ok(answer) => answer,
            Err(err) => return transport_failure(&err, self.timeouts, "the provider"),
        };
        let logged = cut(&answer, MAX_LOGGED_ANSWER_CHARS);
        if !status.is_success() {
            return Outcome::failed(
                FailureReason::HttpStatus,
                format!("the provider answered HTTP {}: {}", status.as_u16(), cut(&answer, 200)),
                logged,
            );
        }
        let Ok(json) = serde_json::from_str::<Value>(&answer) else {
            return Outcome::failed(
                FailureReason::BadAnswer,
                format!("the provider's answer is not JSON: {}", cut(&answer, 200)),
                logged,
            );
        };
        match json.get("errCode").and_then(Value::as_i64) {
            Some(0) => Outcome::Sent { answer: logged },
            Some(code) => {
                let detail = json.get("errMsg").and_then(Value::as_str).unwrap_or("no errMsg");
                Outcome::failed(
                    FailureReason::ErrCode,
                    format!("the provider refused the send: errCode {code}: {}", cut(detail, 200)),
                    logged,
                )
            }
            None => Outcome::failed(
                FailureReason::BadAnswer,
                "the provider's answer has no numeric errCode".to_owned(),
                logged,
            ),
        }
    }
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
}
