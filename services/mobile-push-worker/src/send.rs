//! One attempt of one send: a notice or an alarm to one device. The attempt is logged in
//! `message_push_log` with what it did to the device, once, however often it is delivered: an
//! attempt already logged is not made again, and the provider is asked with the attempt's own
//! `Idempotency-Key`, so a crash between its answer and the log pushes nothing twice.

use crate::metrics::{Reason, SendMetrics};
use crate::provider::{Outcome, PushPayload, UniPush};
use mobile::{MobileStore, PushAttempt};
use model::{DeviceStatus, PushLogStatus};

/// How many attempts a send gets by default: the first and 3 retries (`mobile.retry_delays_ms`).
pub const MAX_ATTEMPTS: i32 = 4;

pub use model::PushSend;

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempted {
    /// The provider took it.
    Sent,
    /// It failed; the next attempt is due.
    Retry {
        /// Why, for the log.
        reason: String,
    },
    /// It failed for good (its last attempt, or a device that can no longer receive it).
    Dead {
        /// Why.
        reason: String,
    },
}

/// Carries out attempts. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Sender {
    store: MobileStore,
    provider: UniPush,
    metrics: SendMetrics,
    max_attempts: i32,
}

impl Sender {
    /// Attempts over `store` (devices, the provider URL, the log) through `provider`, counted
    /// in `metrics`.
    pub fn new(store: MobileStore, provider: UniPush, metrics: SendMetrics) -> Self {
        Self { store, provider, metrics, max_attempts: MAX_ATTEMPTS }
    }

    /// The mobile tables it works on.
    pub fn store(&self) -> &MobileStore {
        &self.store
    }

    /// The same, giving each send `max_attempts` attempts (at least 1).
    pub fn with_max_attempts(self, max_attempts: i32) -> Self {
        Self { max_attempts: max_attempts.max(1), ..self }
    }

    /// Makes `send`'s attempt (unless it was made already: then what it came to) and logs it.
    /// An error is the database's: the attempt is neither made nor logged, and may be tried
    /// again as it is.
    pub async fn attempt(&self, send: &PushSend) -> Result<Attempted, database::DbError> {
        if let Some(logged) = self.store.logged_attempt(&send.send_id, send.attempt).await? {
            let reason = logged.attempt.err_message;
            return Ok(match logged.attempt.status {
                PushLogStatus::Sent => Attempted::Sent,
                PushLogStatus::Failed => Attempted::Retry { reason },
                PushLogStatus::Dead => Attempted::Dead { reason },
            });
        }
        let last = send.attempt >= self.max_attempts;
        let device = self.store.device(&send.push_id).await?;
        let (status, reason, err_message, provider_answer) = match device {
            Some(device) if device.status == DeviceStatus::Active && device.user_id == send.user_id => {
                match self.store.provider_config().await? {
                    None => (
                        failure(last),
                        Reason::NoProvider,
                        "no push provider URL is configured".to_owned(),
                        String::new(),
                    ),
                    Some(config) => {
                        let started = std::time::Instant::now();
                        let outcome = self.provider.send_once(&config.url, &payload(send), Some(&send.key())).await;
                        self.metrics.provider_call(started.elapsed());
                        match outcome {
                            Outcome::Sent { answer } => (PushLogStatus::Sent, Reason::None, String::new(), answer),
                            Outcome::Failed { reason, message, answer } => {
                                (failure(last), Reason::Provider(reason), message, answer)
                            }
                        }
                    }
                }
            }
            // Logged out, moved to another user or gone since the send was made: it is not
            // tried again, and its owner now gets nothing meant for someone else.
            Some(device) if device.status != DeviceStatus::Active => (
                PushLogStatus::Dead,
                Reason::DeviceInactive,
                "the device was logged out before the send".to_owned(),
                String::new(),
            ),
            Some(_) => (
                PushLogStatus::Dead,
                Reason::DeviceMoved,
                "the device moved to another user before the send".to_owned(),
                String::new(),
            ),
            None => (
                PushLogStatus::Dead,
                Reason::DeviceGone,
                "the device is no longer registered".to_owned(),
                String::new(),
            ),
        };
        let attempt = PushAttempt {
            send_id: send.send_id.clone(),
            attempt: send.attempt,
            message_id: send.message_id.clone(),
            user_id: send.user_id,
            push_id: send.push_id.clone(),
            message_type: send.message_type.clone(),
            alarm_id: send.alarm_id.clone().unwrap_or_default(),
            title: send.title.clone(),
            content: send.content.clone(),
            status,
            err_message: err_message.clone(),
            provider_answer,
            create_time: mobile::now_ms(),
        };
        // Counted once, with the log: a redelivery of an attempt logged already is not.
        if self.store.record_attempt(&attempt).await? {
            self.metrics.attempted(send.attempt, status, reason);
        }
        Ok(match status {
            PushLogStatus::Sent => Attempted::Sent,
            PushLogStatus::Failed => Attempted::Retry { reason: err_message },
            PushLogStatus::Dead => Attempted::Dead { reason: err_message },
        })
    }
}

fn failure(last: bool) -> PushLogStatus {
    if last { PushLogStatus::Dead } else { PushLogStatus::Failed }
}

fn payload(send: &PushSend) -> PushPayload {
    PushPayload {
        push_clientid: send.push_id.clone(),
        title: send.title.clone(),
        content: send.content.clone(),
        alarm_id: send.alarm_id.clone().filter(|id| !id.is_empty()),
        category: send.category.clone().filter(|c| !c.is_empty()),
        options: None,
    }
}
