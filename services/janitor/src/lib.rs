//! janitor: scheduled cleanup and retention.
//!
//! Every `records.purge_interval_secs` (and once at start) it deletes push records and receive
//! records older than `records.retention_days` and notification logs older than
//! `records.log_retention_days`. On MongoDB the TTL indexes expire documents on their own; the
//! pass only makes it prompt. Replicas may overlap: a delete that finds nothing does nothing.

use http_server::Component;
use records::{Purged, RecordStore, RecordsError, Retention};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The janitor's scheduled passes, as a component of a process.
pub struct Janitor;

impl Janitor {
    /// Starts the retention passes on `records`, one at once and then one `every` period, until
    /// `shutdown`.
    pub fn start(
        retention: Retention,
        every: Duration,
        records: RecordStore,
        shutdown: CancellationToken,
    ) -> Component {
        let ready = records.clone();
        tokio::spawn(async move {
            loop {
                if let Err(err) = purge_once(&records, retention).await {
                    tracing::warn!(%err, "retention pass failed; trying again at the next one");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
        Component::new("janitor")
            .readiness(http_server::Readiness::default().check("records_store", move || ready.is_ready()))
    }
}

/// One retention pass: deletes what `retention` no longer keeps, as of now.
pub async fn purge_once(records: &RecordStore, retention: Retention) -> Result<Purged, RecordsError> {
    let purged = records.purge(retention.cutoffs_now()).await?;
    if purged != Purged::default() {
        tracing::info!(
            records = purged.records,
            receipts = purged.receipts,
            logs = purged.logs,
            "retention pass deleted old records"
        );
    }
    Ok(purged)
}
