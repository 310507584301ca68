//! What makes the in-process bus durable: a journal (in the embedded database) of every message
//! published and not yet settled by all the subscriptions it went to, replayed at start-up, and
//! a dead-letter store.
//!
//! The bus appends a message before handing it to any subscription (the publish "confirm"),
//! counts the deliveries it made, and removes the entry once each was acknowledged (or
//! dead-lettered). A message a killed process had not finished is still in the journal and is
//! delivered again by [`crate::Bus::recover`]; consumers already tolerate redelivery.

use crate::Exchange;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A journal operation in flight.
pub type JournalFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// A message the journal holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    /// Its id, increasing in publish order.
    pub id: i64,
    /// Where it was published.
    pub exchange: Exchange,
    /// Its routing key.
    pub routing_key: String,
    /// Its payload.
    pub payload: Bytes,
}

/// A message no consumer could process, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The queue it was taken from.
    pub queue: String,
    /// Its routing key.
    pub routing_key: String,
    /// Its payload, as received.
    pub payload: Bytes,
    /// Why it was given up on.
    pub reason: String,
}

/// Durable storage for the in-process bus (implemented over the embedded database by `store`).
pub trait Journal: Send + Sync + std::fmt::Debug {
    /// Stores a message before it is delivered; returns its id.
    fn append<'a>(&'a self, exchange: Exchange, routing_key: &'a str, payload: &'a [u8]) -> JournalFuture<'a, i64>;
    /// Forgets settled messages.
    fn remove<'a>(&'a self, ids: &'a [i64]) -> JournalFuture<'a, ()>;
    /// The messages not yet settled, oldest first.
    fn pending(&self) -> JournalFuture<'_, Vec<JournalEntry>>;
    /// Keeps a message no consumer could process.
    fn dead_letter<'a>(&'a self, letter: &'a DeadLetter) -> JournalFuture<'a, ()>;
}

/// One journaled message's deliveries still to be settled; the entry goes once none is left.
#[derive(Debug)]
pub(crate) struct Ticket {
    id: i64,
    outstanding: AtomicUsize,
    settled: Arc<Settled>,
}

impl Ticket {
    /// Adds `deliveries` that must settle before the entry goes.
    pub(crate) fn expect(&self, deliveries: usize) {
        self.outstanding.fetch_add(deliveries, Ordering::AcqRel);
    }

    /// One delivery settled (acknowledged, dropped as unprocessable, or dead-lettered).
    pub(crate) fn settle(&self) {
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.settled.push(self.id);
        }
    }
}

/// Settled entries waiting to be removed from the journal in one statement.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    ids: Mutex<Vec<i64>>,
    wake: Notify,
}

impl Settled {
    fn push(&self, id: i64) {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner).push(id);
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<i64> {
        std::mem::take(&mut *self.ids.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The journal with the bookkeeping the in-process bus does around it. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Journaled {
    pub(crate) journal: Arc<dyn Journal>,
    settled: Arc<Settled>,
}

impl Journaled {
    /// Wraps `journal`, with a task that removes settled entries in batches until `shutdown`
    /// (and once more after it, so a clean stop leaves nothing to redeliver).
    pub(crate) fn start(journal: Arc<dyn Journal>, shutdown: CancellationToken) -> Self {
        let settled = Arc::new(Settled::default());
        let remover = Self { journal, settled };
        tokio::spawn(remover.clone().remove_settled(shutdown));
        remover
    }

    /// A ticket for entry `id` with `deliveries` outstanding; with none it is settled at once.
    pub(crate) fn ticket(&self, id: i64, deliveries: usize) -> Arc<Ticket> {
        let ticket =
            Arc::new(Ticket { id, outstanding: AtomicUsize::new(deliveries.max(1)), settled: self.settled.clone() });
        if deliveries == 0 {
            ticket.settle();
        }
        ticket
    }

    async fn remove_settled(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.settled.wake.notified() => self.remove_now().await,
            }
        }
        // Consumers finish what they hold after the shutdown signal: keep removing what they
        // settle until they fall quiet.
        self.remove_now().await;
        while tokio::time::timeout(std::time::Duration::from_millis(500), self.settled.wake.notified()).await.is_ok() {
            self.remove_now().await;
        }
    }

    async fn remove_now(&self) {
        let ids = self.settled.take();
        for chunk in ids.chunks(500) {
            if let Err(err) = self.journal.remove(chunk).await {
                // Left in the journal, they are delivered again after a restart: duplicates
                // with the same ids, never a loss.
                tracing::warn!(error = %err, count = chunk.len(), "settled bus messages not removed from the journal");
            }
        }
    }
}
