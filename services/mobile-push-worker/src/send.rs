//! One attempt of one send: a notice or an alarm to one device. The attempt is logged in
//! `message_push_log` with what it did to the device, once, however often it is delivered: an
//! attempt already logged is not made again, and the provider is asked with the attempt's own
//! `Idempotency-Key`, so a crash between its answer and the log pushes nothing twice (FCM has
//! no such key: there a crash in that window can push one attempt twice).
//!
//! The device's type picks the provider ([`Providers::kind_for`]). What the provider answers
//! decides what follows, besides the log:
//! - a dead token (FCM `UNREGISTERED`, APNs `410 Unregistered` / `BadDeviceToken`, Web Push 404 /
//!   410): the device is marked inactive at once, with a `message_push_rule_log` row
//!   (`unregistered`), and the send is dead;
//! - a web device whose endpoint is not on a push service Herald calls: the send is dead;
//! - Herald's credential refused: the send failed, not counted against the device, and that
//!   provider's sends stop for `mobile.credential_pause_ms` (logged as failed without a call,
//!   counted under `provider_stopped`, the `herald_mobile_push_provider_stopped` gauge at 1);
//!   the other providers go on;
//! - any other failure: retried (its `Retry-After` honoured) or, on the last attempt, dead.

use crate::metrics::{Reason, SendMetrics};
use crate::provider::{FailureReason, Outcome, ProviderKind, Providers, PushPayload, Slot};
use mobile::{MobileStore, PushAttempt};
use model::{DeviceStatus, PushLogStatus};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

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
        /// The provider's `Retry-After`: the next attempt waits at least this long.
        not_before: Option<Duration>,
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
    /// The providers in force; [`crate::provider::load`] replaces them when their settings change.
    providers: Arc<RwLock<Providers>>,
    metrics: SendMetrics,
    max_attempts: i32,
    credential_pause: Duration,
    /// Providers whose sends are stopped, until when.
    stopped: Arc<Mutex<HashMap<ProviderKind, Instant>>>,
}

/// How long a provider's sends stop after it refused Herald's credential, by default.
pub const CREDENTIAL_PAUSE: Duration = Duration::from_secs(60);

impl Sender {
    /// Attempts over `store` (devices, the provider URL, the log) through `providers`, counted
    /// in `metrics`.
    pub fn new(store: MobileStore, providers: Providers, metrics: SendMetrics) -> Self {
        Self {
            store,
            providers: Arc::new(RwLock::new(providers)),
            metrics,
            max_attempts: MAX_ATTEMPTS,
            credential_pause: CREDENTIAL_PAUSE,
            stopped: Arc::default(),
        }
    }

    /// The same, stopping a provider for `pause` after it refused the credential.
    pub fn with_credential_pause(self, pause: Duration) -> Self {
        Self { credential_pause: pause, ..self }
    }

    /// The mobile tables it works on.
    pub fn store(&self) -> &MobileStore {
        &self.store
    }

    /// The metrics it counts in.
    pub fn metrics(&self) -> &SendMetrics {
        &self.metrics
    }

    /// The providers in force now.
    pub fn providers(&self) -> Providers {
        self.providers.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Changes the providers in force with `change`; the sends after it go through the new
    /// ones. The providers given new settings (`replaced`) start afresh: a stop after an old
    /// credential was refused is lifted.
    pub fn change_providers(&self, replaced: &[ProviderKind], change: impl FnOnce(&mut Providers)) {
        change(&mut self.providers.write().unwrap_or_else(std::sync::PoisonError::into_inner));
        let mut stopped = self.stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for kind in replaced {
            if stopped.remove(kind).is_some() {
                self.metrics.resumed(*kind);
            }
        }
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
                PushLogStatus::Failed => Attempted::Retry { reason, not_before: None },
                PushLogStatus::Dead => Attempted::Dead { reason },
            });
        }
        let last = send.attempt >= self.max_attempts;
        let device = self.store.device(&send.push_id).await?;
        let dead = |reason, message: &str| Called::refused(PushLogStatus::Dead, reason, message);
        let called = match device {
            Some(device) if device.status == DeviceStatus::Active && device.user_id == send.user_id => {
                let providers = self.providers();
                let kind = providers.kind_for(&device.device_type, &device.push_id);
                self.call(&providers, kind, send, device.subscription.as_deref(), last).await?
            }
            // Logged out, moved to another user or gone since the send was made: it is not
            // tried again, and its owner now gets nothing meant for someone else.
            Some(device) if device.status != DeviceStatus::Active => {
                dead(Reason::DeviceInactive, "the device was inactive (logged out, or its token dead) before the send")
            }
            Some(_) => dead(Reason::DeviceMoved, "the device moved to another user before the send"),
            None => dead(Reason::DeviceGone, "the device is no longer registered"),
        };
        let Called { status, reason, message: err_message, answer: provider_answer, device_at_fault, not_before } =
            called;
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
        if self.store.record_attempt(&attempt, device_at_fault).await? {
            self.metrics.attempted(send.attempt, status, reason);
        }
        Ok(match status {
            PushLogStatus::Sent => Attempted::Sent,
            PushLogStatus::Failed => Attempted::Retry { reason: err_message, not_before },
            PushLogStatus::Dead => Attempted::Dead { reason: err_message },
        })
    }

    /// Calls the provider `kind` with `send` (its `last` attempt or not; `subscription` the
    /// device's, for a browser), unless its sends are stopped, and applies what the answer says
    /// to the device or the provider.
    async fn call(
        &self,
        providers: &Providers,
        kind: ProviderKind,
        send: &PushSend,
        subscription: Option<&str>,
        last: bool,
    ) -> Result<Called, database::DbError> {
        if let Some(left) = self.stopped_for(kind) {
            let message = format!(
                "not sent: {} refused Herald's credential; its sends resume in {} s",
                kind.name(),
                left.as_secs().max(1)
            );
            return Ok(Called {
                device_at_fault: false,
                ..Called::refused(failure(last), Reason::ProviderStopped, &message)
            });
        }
        let started = Instant::now();
        let outcome = match kind {
            ProviderKind::UniPush => match self.store.provider_config().await? {
                None => {
                    let message = "no push provider URL is configured";
                    return Ok(Called::refused(failure(last), Reason::NoProvider, message));
                }
                Some(config) => providers.unipush.send_once(&config.url, &payload(send), Some(&send.key())).await,
            },
            ProviderKind::Fcm => match &providers.fcm {
                Slot::Ready(fcm) => fcm.send(send).await,
                slot => return Ok(not_loaded(slot, kind, last)),
            },
            ProviderKind::Apns => match &providers.apns {
                Slot::Ready(apns) => apns.send(send).await,
                slot => return Ok(not_loaded(slot, kind, last)),
            },
            ProviderKind::WebPush => match &providers.web_push {
                Slot::Ready(web_push) => web_push.send(send, subscription).await,
                slot => return Ok(not_loaded(slot, kind, last)),
            },
        };
        self.metrics.provider_call(started.elapsed());
        let (reason, message, answer, not_before) = match outcome {
            Outcome::Sent { answer } => {
                self.metrics.resumed(kind);
                return Ok(Called {
                    status: PushLogStatus::Sent,
                    reason: Reason::None,
                    message: String::new(),
                    answer,
                    device_at_fault: true,
                    not_before: None,
                });
            }
            Outcome::Failed { reason, message, answer, retry_after } => (reason, message, answer, retry_after),
        };
        let called = Called {
            status: failure(last),
            reason: Reason::Provider(reason),
            message,
            answer,
            device_at_fault: true,
            not_before,
        };
        Ok(match reason {
            FailureReason::Unregistered => {
                let why = format!("{}: the token is dead", called.message);
                self.store.deactivate_unregistered(&send.push_id, send.user_id, &why, mobile::now_ms()).await?;
                Called { status: PushLogStatus::Dead, ..called }
            }
            FailureReason::Credential => {
                self.stop(kind, &called.message);
                Called { device_at_fault: false, ..called }
            }
            // Trying again would call the same place.
            FailureReason::EndpointRefused => Called { status: PushLogStatus::Dead, not_before: None, ..called },
            _ => called,
        })
    }

    /// How much longer `kind`'s sends are stopped, if they are.
    fn stopped_for(&self, kind: ProviderKind) -> Option<Duration> {
        let mut stopped = self.stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let until = *stopped.get(&kind)?;
        match until.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Some(left),
            // The pause is over: the next send tries again (and stops it anew if refused).
            _ => {
                stopped.remove(&kind);
                None
            }
        }
    }

    fn stop(&self, kind: ProviderKind, why: &str) {
        let mut stopped = self.stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        stopped.insert(kind, Instant::now() + self.credential_pause);
        drop(stopped);
        tracing::error!(
            provider = kind.as_str(),
            %why,
            pause_secs = self.credential_pause.as_secs(),
            "the provider refused Herald's credential: its sends stop for a while"
        );
        self.metrics.credential_refused(kind);
    }
}

/// What one call came to, for the log.
struct Called {
    status: PushLogStatus,
    reason: Reason,
    message: String,
    answer: String,
    device_at_fault: bool,
    not_before: Option<Duration>,
}

impl Called {
    /// No provider call: `status` for `reason`.
    fn refused(status: PushLogStatus, reason: Reason, message: &str) -> Self {
        Self {
            status,
            reason,
            message: message.to_owned(),
            answer: String::new(),
            device_at_fault: true,
            not_before: None,
        }
    }
}

/// No call: `kind` is not configured (the device's type wants a provider the worker lacks), or
/// its settings do not load (Herald's fault, not the device's).
fn not_loaded<T>(slot: &Slot<T>, kind: ProviderKind, last: bool) -> Called {
    match slot {
        Slot::Broken(why) => {
            let message = format!("not sent: {}'s settings do not load: {why}", kind.name());
            Called { device_at_fault: false, ..Called::refused(failure(last), Reason::NoProvider, &message) }
        }
        _ => {
            let message = format!(
                "{} is not configured (the push config API's providers, or the worker's [mobile] settings)",
                kind.name()
            );
            Called::refused(failure(last), Reason::NoProvider, &message)
        }
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
