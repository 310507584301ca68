//! One Prometheus registry per process, served at `GET /metrics` by [`crate::serve`]: every
//! component of the process registers its series on it, so the all-in-one serves them all
//! once, merged, and a process running one role serves that role's.
//!
//! Built on `metrics-exporter-prometheus`'s recorder, used directly rather than installed as
//! the global recorder: two processes in one test binary keep their own numbers. Every series
//! is registered (at 0) when its component starts, so a dashboard sees it before the first
//! event. Histograms keep their samples until the next upkeep, which runs every second (and
//! before each rendering): what they hold is bounded by a second's worth of samples.

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Bucket bounds of every `*_seconds` histogram: 1 ms to 30 s.
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Bucket bounds of every `*_size` histogram (counts of things): 1 to 5000.
pub const SIZE_BUCKETS: [f64; 11] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0];

const METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// A process's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        // Fixed, non-empty, increasing lists: these cannot fail.
        let builder = builder
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &LATENCY_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".to_owned()), &SIZE_BUCKETS))
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Self { recorder: Arc::new(recorder), handle }
    }

    /// The counter `name{labels}`, registered at 0.
    pub fn counter(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &'static str)]) -> Counter {
        self.recorder.describe_counter(KeyName::from_const_str(name), None, SharedString::const_str(help));
        let counter = self.recorder.register_counter(&key(name, labels), &METADATA);
        counter.increment(0);
        counter
    }

    /// The gauge `name{labels}`, registered at 0.
    pub fn gauge(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &'static str)]) -> Gauge {
        self.recorder.describe_gauge(KeyName::from_const_str(name), None, SharedString::const_str(help));
        let gauge = self.recorder.register_gauge(&key(name, labels), &METADATA);
        gauge.set(0.0);
        gauge
    }

    /// The histogram `name{labels}` (buckets by its suffix: `_seconds` or `_size`).
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &'static str)],
    ) -> Histogram {
        let unit = name.ends_with("_seconds").then_some(Unit::Seconds);
        self.recorder.describe_histogram(KeyName::from_const_str(name), unit, SharedString::const_str(help));
        self.recorder.register_histogram(&key(name, labels), &METADATA)
    }

    /// `herald_queue_messages{queue}`: the messages waiting in a consumer's durable queue (its
    /// lag), kept by `bus::Bus::report_depth`.
    pub fn queue_gauge(&self, queue: &'static str) -> Gauge {
        self.gauge(
            "herald_queue_messages",
            "Messages waiting in a consumer's durable queue (its lag)",
            &[("queue", queue)],
        )
    }

    /// Every series, in Prometheus's text format.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// Folds histogram samples into their buckets every second until `shutdown`.
    pub fn start_upkeep(&self, shutdown: CancellationToken) {
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = every.tick() => handle.run_upkeep(),
                }
            }
        });
    }
}

fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    Key::from_parts(name, labels.iter().map(|(k, v)| Label::new(*k, *v)).collect::<Vec<_>>())
}

/// `GET /metrics`: the registry's series.
pub(crate) async fn serve_metrics(registry: actix_web::web::Data<Registry>) -> actix_web::HttpResponse {
    let text = registry.render();
    actix_web::HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_exist_at_zero_and_histograms_get_their_buckets() {
        let registry = Registry::new();
        let accepted = registry.counter("herald_test_total", "Things", &[("kind", "a")]);
        let _open = registry.gauge("herald_test_open", "Open things", &[]);
        let latency = registry.histogram("herald_test_latency_seconds", "How long", &[]);
        let sizes = registry.histogram("herald_test_batch_size", "How many", &[]);
        accepted.increment(2);
        latency.record(0.003);
        sizes.record(7.0);
        let text = registry.render();
        assert!(text.contains("herald_test_total{kind=\"a\"} 2"), "{text}");
        assert!(text.contains("herald_test_open 0"), "{text}");
        assert!(text.contains("herald_test_latency_seconds_bucket{le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("herald_test_latency_seconds_bucket{le=\"0.0025\"} 0"), "{text}");
        assert!(text.contains("herald_test_batch_size_bucket{le=\"10\"} 1"), "{text}");
        assert!(text.contains("# HELP herald_test_total Things"), "{text}");
    }
}
