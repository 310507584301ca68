//! How every loop that retries waits between attempts: one policy type over `backon`'s
//! exponential backoff (the delay doubles from `min` up to `max`, forever), and a wait that gives
//! way to shutdown. Reconnecting to the broker, dispatching the ingress queue and writing records
//! while a store is down all wait this way.

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// An exponential backoff: the first wait `min`, each next one twice the last, at most `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait.
    pub min: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Whether each wait gets a random share of itself added, so two parties that failed
    /// together do not try again together.
    pub jitter: bool,
}

impl RetryPolicy {
    /// A policy from `min` to `max` (a `max` below `min` is raised to it).
    pub const fn new(min: Duration, max: Duration) -> Self {
        Self { min, max, jitter: false }
    }

    /// The same policy with jitter (see [`RetryPolicy::jitter`]).
    pub const fn jittered(self) -> Self {
        Self { jitter: true, ..self }
    }

    /// The waits of one run of attempts, starting at `min`.
    pub fn start(&self) -> Backoff {
        Backoff { policy: *self, delays: self.delays() }
    }

    fn delays(&self) -> ExponentialBackoff {
        let builder = ExponentialBuilder::default()
            .with_min_delay(self.min)
            .with_max_delay(self.max.max(self.min))
            .with_factor(2.0)
            .without_max_times();
        if self.jitter { builder.with_jitter() } else { builder }.build()
    }
}

/// The waits of one run of attempts.
#[derive(Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    delays: ExponentialBackoff,
}

impl Backoff {
    /// The next wait (for logs: say it, then [`Backoff::wait`] it).
    pub fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.policy.max)
    }

    /// Waits `delay` unless `shutdown` comes first; false if it did.
    pub async fn wait(delay: Duration, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    /// Waits the next delay unless `shutdown` comes first; false if it did.
    pub async fn pause(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next_delay();
        Self::wait(delay, shutdown).await
    }

    /// Starts over from `min` (after a success).
    pub fn reset(&mut self) {
        self.delays = self.policy.delays();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_min_up_to_max_and_start_over_on_reset() {
        let mut backoff = RetryPolicy::new(Duration::from_millis(100), Duration::from_millis(500)).start();
        let waits: Vec<u128> = (0..5).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_gives_way_to_shutdown() {
        let shutdown = CancellationToken::new();
        let mut backoff = RetryPolicy::new(Duration::from_secs(60), Duration::from_secs(60)).start();
        let started = tokio::time::Instant::now();
        assert!(backoff.pause(&shutdown).await);
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        shutdown.cancel();
        assert!(!backoff.pause(&shutdown).await);
    }
}
