//! The worker's Prometheus metrics (mobile-push-analysis.md, gap 4), served at `/metrics`:
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `herald_mobile_push_sends_total` | counter | `outcome` (`sent`, `failed`, `dead`), `reason` | attempts made, by what they came to and why |
//! | `herald_mobile_push_send_duration_seconds` | histogram | | the provider call, answer included |
//! | `herald_mobile_push_retries_total` | counter | | attempts after a send's first |
//! | `herald_mobile_push_dead_letters_total` | counter | | sends given up on |
//! | `herald_deliveries_total{channel="mobile"}` | counter | | sends the provider took |
//! | `herald_mobile_push_credential_failures_total` | counter | `provider` (`unipush`, `fcm`, `apns`) | times a provider refused Herald's credential (alert on any increase) |
//! | `herald_mobile_push_provider_stopped` | gauge | `provider` | 1 while that provider's sends are stopped after a refused credential (alert on 1), 0 once a send succeeds again |
//! | `herald_mobile_push_fallbacks_total` | counter | | notices whose fallback wait ended and were expanded to the devices of who had not acknowledged them |
//! | `herald_mobile_push_fallback_devices_total` | counter | `outcome` (`pushed`, `spared`) | devices of those notices' recipients: sent the push, or spared it because their user acknowledged the notice in time |
//! | `herald_mobile_push_provider_settings_broken` | gauge | `provider` | 1 while the settings meant for that provider (the push config API's or the config file's) do not load (alert on 1), 0 once settings that load are in force |
//!
//! `reason` is `none` for a success; the provider's failures are `err_code`, `bad_answer`,
//! `http_status`, `timeout`, `connect`, `transport`, `unregistered` (a dead token: the device
//! was deactivated), `credential`, `throttled`; the worker's own `no_provider` (no URL is
//! configured), `provider_stopped` (its sends are stopped after a refused credential),
//! `device_inactive`, `device_moved`, `device_gone` (no provider call then).
//!
//! They are registered on the process's registry ([`http_server::Registry`]), served at
//! `/metrics` with every other component's.

use crate::provider::{FailureReason, ProviderKind};
use http_server::Registry;
use metrics::{Counter, Gauge, Histogram};
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
    /// The provider's sends are stopped after it refused Herald's credential.
    ProviderStopped,
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
            Reason::ProviderStopped => "provider_stopped",
            Reason::DeviceInactive => "device_inactive",
            Reason::DeviceMoved => "device_moved",
            Reason::DeviceGone => "device_gone",
        }
    }

    /// Every reason.
    pub fn all() -> impl Iterator<Item = Reason> {
        let own = [
            Reason::NoProvider,
            Reason::ProviderStopped,
            Reason::DeviceInactive,
            Reason::DeviceMoved,
            Reason::DeviceGone,
        ];
        std::iter::once(Reason::None).chain(FailureReason::ALL.into_iter().map(Reason::Provider)).chain(own)
    }
}

/// One metric per provider, made by `make` from its `provider` label.
fn per_provider<M>(make: impl Fn(&[(&'static str, &'static str)]) -> M) -> Arc<HashMap<ProviderKind, M>> {
    Arc::new(ProviderKind::ALL.into_iter().map(|kind| (kind, make(&[("provider", kind.as_str())]))).collect())
}

/// The worker's metrics. Cheap to clone.
#[derive(Clone)]
pub struct SendMetrics {
    registry: Registry,
    sends: Arc<HashMap<(PushLogStatus, Reason), Counter>>,
    duration: Histogram,
    retries: Counter,
    dead_letters: Counter,
    delivered: Counter,
    credential_failures: Arc<HashMap<ProviderKind, Counter>>,
    stopped: Arc<HashMap<ProviderKind, Gauge>>,
    settings_broken: Arc<HashMap<ProviderKind, Gauge>>,
    fallbacks: Counter,
    fallback_pushed: Counter,
    fallback_spared: Counter,
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
    /// Every metric registered, at 0, on a registry of its own (tests, benchmarks).
    pub fn new() -> Self {
        Self::on(&Registry::new())
    }

    /// Every metric registered, at 0, on the process's `registry`.
    pub fn on(registry: &Registry) -> Self {
        let mut sends = HashMap::new();
        for outcome in PushLogStatus::ALL {
            for reason in Reason::all() {
                // A success has no reason, and a failure always has one.
                if (outcome == PushLogStatus::Sent) != (reason == Reason::None) {
                    continue;
                }
                let labels = [("outcome", outcome.as_str()), ("reason", reason.as_str())];
                let counter = registry.counter(
                    "herald_mobile_push_sends_total",
                    "Provider send attempts, by outcome and reason",
                    &labels,
                );
                sends.insert((outcome, reason), counter);
            }
        }
        Self {
            sends: Arc::new(sends),
            duration: registry.histogram(
                "herald_mobile_push_send_duration_seconds",
                "Provider call duration, answer included",
                &[],
            ),
            retries: registry.counter("herald_mobile_push_retries_total", "Attempts after a send's first", &[]),
            dead_letters: registry.counter("herald_mobile_push_dead_letters_total", "Sends given up on", &[]),
            delivered: registry.counter(
                "herald_deliveries_total",
                "Notices handed to a client: a frame written to a socket (live), an offline entry replayed (offline), a provider send taken (mobile)",
                &[("channel", "mobile")],
            ),
            credential_failures: per_provider(|labels| {
                let help = "Times a push provider refused Herald's credential";
                registry.counter("herald_mobile_push_credential_failures_total", help, labels)
            }),
            stopped: per_provider(|labels| {
                let help = "1 while a push provider's sends are stopped after a refused credential";
                registry.gauge("herald_mobile_push_provider_stopped", help, labels)
            }),
            settings_broken: per_provider(|labels| {
                let help = "1 while the settings meant for a push provider do not load";
                registry.gauge("herald_mobile_push_provider_settings_broken", help, labels)
            }),
            fallbacks: registry.counter(
                "herald_mobile_push_fallbacks_total",
                "Notices whose mobile fallback was due and expanded to devices",
                &[],
            ),
            fallback_pushed: registry.counter(
                "herald_mobile_push_fallback_devices_total",
                "Devices of due fallbacks' recipients, pushed or spared by an acknowledgement",
                &[("outcome", "pushed")],
            ),
            fallback_spared: registry.counter(
                "herald_mobile_push_fallback_devices_total",
                "Devices of due fallbacks' recipients, pushed or spared by an acknowledgement",
                &[("outcome", "spared")],
            ),
            registry: registry.clone(),
        }
    }

    /// A fallback was due: `pushed` devices got a send, `spared` did not (their user
    /// acknowledged the notice).
    pub fn fallback_due(&self, pushed: u64, spared: u64) {
        self.fallbacks.increment(1);
        self.fallback_pushed.increment(pushed);
        self.fallback_spared.increment(spared);
    }

    /// The settings meant for `kind` do not load.
    pub fn settings_broken(&self, kind: ProviderKind) {
        if let Some(gauge) = self.settings_broken.get(&kind) {
            gauge.set(1.0);
        }
    }

    /// Settings that load are in force for `kind` (or none are meant for it).
    pub fn settings_loaded(&self, kind: ProviderKind) {
        if let Some(gauge) = self.settings_broken.get(&kind) {
            gauge.set(0.0);
        }
    }

    /// `kind` refused Herald's credential: its sends stop.
    pub fn credential_refused(&self, kind: ProviderKind) {
        if let Some(counter) = self.credential_failures.get(&kind) {
            counter.increment(1);
        }
        if let Some(gauge) = self.stopped.get(&kind) {
            gauge.set(1.0);
        }
    }

    /// `kind` took a send.
    pub fn resumed(&self, kind: ProviderKind) {
        if let Some(gauge) = self.stopped.get(&kind) {
            gauge.set(0.0);
        }
    }

    /// One attempt (number `attempt`) came to `outcome` for `reason`.
    pub fn attempted(&self, attempt: i32, outcome: PushLogStatus, reason: Reason) {
        if let Some(counter) = self.sends.get(&(outcome, reason)) {
            counter.increment(1);
        }
        if attempt > 1 {
            self.retries.increment(1);
        }
        match outcome {
            PushLogStatus::Dead => self.dead_letters.increment(1),
            PushLogStatus::Sent => self.delivered.increment(1),
            PushLogStatus::Failed => {}
        }
    }

    /// A provider call took `elapsed`.
    pub fn provider_call(&self, elapsed: Duration) {
        self.duration.record(elapsed.as_secs_f64());
    }

    /// The metrics in Prometheus's text format (with whatever else the registry holds).
    pub fn render(&self) -> String {
        self.registry.render()
    }
}
