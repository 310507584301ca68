//! ingest-api's metrics: notices accepted (by priority) and refused (by error code).

use http_server::Registry;
use metrics::Counter;
use model::{ErrorCode, Priority};
use std::collections::HashMap;
use std::sync::Arc;

/// The API's counters. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    accepted: Arc<HashMap<Priority, Counter>>,
    refused: Arc<HashMap<ErrorCode, Counter>>,
}

impl ApiMetrics {
    /// Every series registered, at 0, on `registry`.
    pub fn on(registry: &Registry) -> Self {
        let accepted = Priority::ALL
            .into_iter()
            .map(|priority| {
                let labels = [("priority", priority.as_str())];
                (
                    priority,
                    registry.counter("herald_notices_accepted_total", "Notices accepted (answered 200)", &labels),
                )
            })
            .collect();
        let refused = ErrorCode::ALL
            .iter()
            .map(|code| {
                let labels = [("code", code.as_str())];
                (*code, registry.counter("herald_notices_refused_total", "Notices refused, by error code", &labels))
            })
            .collect();
        Self { accepted: Arc::new(accepted), refused: Arc::new(refused) }
    }

    /// A notice of `priority` was accepted.
    pub fn accepted(&self, priority: Priority) {
        if let Some(counter) = self.accepted.get(&priority) {
            counter.increment(1);
        }
    }

    /// A notice was refused with `code`.
    pub fn refused(&self, code: ErrorCode) {
        if let Some(counter) = self.refused.get(&code) {
            counter.increment(1);
        }
    }
}
