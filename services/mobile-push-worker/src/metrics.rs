//! The worker's Prometheus metrics (mobile-push-analysis.md, gap 4), served at `/metrics`:
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `herald_mobile_push_sends_total` | counter | `outcome` (`sent`, `failed`, `dead`), `reason` | attempts made, by what they came to and why |
//! | `herald_mobile_push_send_duration_seconds` | histogram | | the provider call, answer included |
//! | `herald_mobile_push_retries_total` | counter | | attempts after a send's first |
//! | `herald_mobile_push_dead_letters_total` | counter | | sends given up on |
//!
//! `reason` is `none` for a success; the provider's failures are `err_code`, `bad_answer`,
//! `http_status`, `timeout`, `connect`, `transport`; the worker's own `no_provider` (no URL is
//! configured), `device_inactive`, `device_moved`, `device_gone` (no provider call then).
//!
//! Each set of metrics has its own recorder (no process-wide one): a test reads exactly its own.

use crate::provider::FailureReason;
use metrics::{Counter, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use model::PushLogStatus;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Why an attempt came to what it did, as the `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Sent.
    None,
    /// The provider's failure.
    Provider(FailureReason),
    /// No provider URL is configured.
    NoProvider,
    /// The device was logged out.
    DeviceInactive,
    /// The device moved to another user.
    DeviceMoved,
    /// The device is no longer registered.
    DeviceGone,
}

impl Reason {
    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::None => "none",
            Reason::Provider(reason) => reason.as_str(),
            Reason::NoProvider => "no_provider",
            Reason::DeviceInactive => "device_inactive",
            Reason::DeviceMoved => "device_moved",
            Reason::DeviceGone => "device_gone",
        }
    }

    /// Every reason.
    pub const ALL: [Reason; 11] = [
        Reason::None,
        Reason::Provider(FailureReason::ErrCode),
        Reason::Provider(FailureReason::BadAnswer),
        Reason::Provider(FailureReason::HttpStatus),
        Reason::Provider(FailureReason::Timeout),
        Reason::Provider(FailureReason::Connect),
        Reason::Provider(FailureReason::Transport),
        Reason::NoProvider,
        Reason::DeviceInactive,
        Reason::DeviceMoved,
        Reason::DeviceGone,
    ];
}

/// Upper bounds of the send-duration buckets, in seconds.
const DURATION_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The worker's metrics and their rendering. Cheap to clone.
#[derive(Clone)]
pub struct SendMetrics {
    handle: PrometheusHandle,
    sends: Arc<HashMap<(PushLogStatus, Reason), Counter>>,
    duration: Histogram,
    retries: Counter,
    dead_letters: Counter,
}

impl std::fmt::Debug for SendMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendMetrics").finish_non_exhaustive()
    }
}

impl Default for SendMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl SendMetrics {
    /// Every metric registered, at 0.
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        // The buckets are a fixed, non-empty, increasing list: this cannot fail.
        let builder = builder.set_buckets(&DURATION_BUCKETS).unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let metadata = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));
        let describe = |name: &'static str, unit: Option<Unit>, text: &'static str| {
            (KeyName::from_const_str(name), unit, SharedString::const_str(text))
        };
        let (name, unit, text) =
            describe("herald_mobile_push_sends_total", None, "Provider send attempts, by outcome and reason");
        recorder.describe_counter(name, unit, text);
        let (name, unit, text) = describe(
            "herald_mobile_push_send_duration_seconds",
            Some(Unit::Seconds),
            "Provider call duration, answer included",
        );
        recorder.describe_histogram(name, unit, text);
        let (name, unit, text) = describe("herald_mobile_push_retries_total", None, "Attempts after a send's first");
        recorder.describe_counter(name, unit, text);
        let (name, unit, text) = describe("herald_mobile_push_dead_letters_total", None, "Sends given up on");
        recorder.describe_counter(name, unit, text);

        let mut sends = HashMap::new();
        for outcome in PushLogStatus::ALL {
            for reason in Reason::ALL {
                // A success has no reason, and a failure always has one.
                if (outcome == PushLogStatus::Sent) != (reason == Reason::None) {
                    continue;
                }
                let labels = vec![Label::new("outcome", outcome.as_str()), Label::new("reason", reason.as_str())];
                let key = Key::from_parts("herald_mobile_push_sends_total", labels);
                let counter = recorder.register_counter(&key, &metadata);
                counter.increment(0);
                sends.insert((outcome, reason), counter);
            }
        }
        let duration =
            recorder.register_histogram(&Key::from_static_name("herald_mobile_push_send_duration_seconds"), &metadata);
        let retries = recorder.register_counter(&Key::from_static_name("herald_mobile_push_retries_total"), &metadata);
        let dead_letters =
            recorder.register_counter(&Key::from_static_name("herald_mobile_push_dead_letters_total"), &metadata);
        retries.increment(0);
        dead_letters.increment(0);
        Self { handle: recorder.handle(), sends: Arc::new(sends), duration, retries, dead_letters }
    }

    /// One attempt (number `attempt`) came to `outcome` for `reason`.
    pub fn attempted(&self, attempt: i32, outcome: PushLogStatus, reason: Reason) {
        if let Some(counter) = self.sends.get(&(outcome, reason)) {
            counter.increment(1);
        }
        if attempt > 1 {
            self.retries.increment(1);
        }
        if outcome == PushLogStatus::Dead {
            self.dead_letters.increment(1);
        }
    }

    /// A provider call took `elapsed`.
    pub fn provider_call(&self, elapsed: Duration) {
        self.duration.record(elapsed.as_secs_f64());
    }

    /// The metrics in Prometheus's text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
