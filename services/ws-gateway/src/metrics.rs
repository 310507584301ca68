//! The gateway's metrics: connections, deliveries (live frames written, offline entries
//! replayed), the latency from a notice's acceptance to its frame's write, and inbox sizes at
//! replay.

use http_server::Registry;
use metrics::{Counter, Gauge, Histogram};
use model::MessageId;
use std::time::{SystemTime, UNIX_EPOCH};

/// The gateway's series. Cheap to clone (each is a reference count).
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    /// Sessions open now.
    pub connections: Gauge,
    /// Sessions opened.
    pub connected: Counter,
    /// Offline entries replayed.
    pub offline: Counter,
    /// Entries in an inbox when it was replayed.
    pub replay_size: Histogram,
    /// What each written live frame records.
    pub delivery: DeliveryMetrics,
}

/// What a written live frame records: one delivery, and its latency.
#[derive(Clone, Debug)]
pub struct DeliveryMetrics {
    live: Counter,
    latency: Histogram,
}

impl DeliveryMetrics {
    /// `delivered` notices' frames were written to a socket just now.
    pub fn written<'a>(&self, delivered: impl Iterator<Item = &'a MessageId>) {
        // The clock is read once per write call, and only when a notice's frame went out.
        let mut now = None;
        let mut count = 0;
        for id in delivered {
            count += 1;
            let now =
                *now.get_or_insert_with(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
            self.latency.record(now.saturating_sub(u128::from(id.unix_nanos())) as f64 / 1e9);
        }
        if count > 0 {
            self.live.increment(count);
        }
    }
}

impl GatewayMetrics {
    /// Every series registered, at 0, on `registry`.
    pub fn on(registry: &Registry) -> Self {
        let deliveries = "Notices handed to a client: a frame written to a socket (live), an offline entry replayed (offline), a provider send taken (mobile)";
        Self {
            connections: registry.gauge("herald_ws_connections", "WebSocket sessions open now", &[]),
            connected: registry.counter("herald_ws_connections_total", "WebSocket sessions opened", &[]),
            offline: registry.counter("herald_deliveries_total", deliveries, &[("channel", "offline")]),
            replay_size: registry.histogram(
                "herald_offline_replay_size",
                "Entries in a user's offline inbox when it was replayed on connect",
                &[],
            ),
            delivery: DeliveryMetrics {
                live: registry.counter("herald_deliveries_total", deliveries, &[("channel", "live")]),
                latency: registry.histogram(
                    "herald_delivery_latency_seconds",
                    "From a notice's acceptance (its message id's time) to its frame written to a socket",
                    &[],
                ),
            },
        }
    }
}
