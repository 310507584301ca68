//! Test support shared by every test suite (feature `test-util`): waiting for an observable
//! condition instead of sleeping a fixed time and hoping it was long enough.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// The first pause between two probes; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);

/// The longest pause between two probes, so a condition that comes late is seen soon after.
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

/// Probes until `probe` reports success, for at most `patience`, and returns what it found.
///
/// `probe` answers `Ok(value)` once the condition holds, and otherwise `Err(what_it_saw)`,
/// which the failure message quotes (the last one) next to `what`. It is called at once, then
/// after pauses that grow from 5 ms to 200 ms, and a last time at the deadline. A probe that
/// has not answered by the deadline fails the wait too. Panics when the patience runs out,
/// which fails the test:
///
/// ```text
/// waited 15s for the push record of 1700000000-abcd (41 probes); last saw: 404 {"code":...}
/// ```
///
/// A probe may assert as well (every answer must be a 200, say): it panics at once then.
pub async fn eventually<T, E, F, Fut>(what: &str, patience: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let started = tokio::time::Instant::now();
    let deadline = started + patience;
    let mut pause = FIRST_PAUSE;
    let mut probes = 0u32;
    loop {
        probes += 1;
        let seen = match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(seen)) => seen.to_string(),
            Err(_) => format!("no answer: the probe was still running at the deadline ({probes} probes)"),
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            panic!("waited {patience:?} for {what} ({probes} probes); last saw: {seen}");
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// Turns a condition into a probe's answer: `Ok(())` when it holds, otherwise what was seen.
///
/// For probes whose condition is a plain `bool`:
/// `eventually("the janitor's pass", PATIENCE, || async { holds(count().await == 2, "a count") })`.
pub fn holds(condition: bool, seen: impl Display) -> Result<(), String> {
    if condition { Ok(()) } else { Err(seen.to_string()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_condition_that_comes_to_hold_is_returned_with_its_value() {
        let calls = AtomicU32::new(0);
        let found = eventually("the third call", Duration::from_secs(1), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 3 { Ok(n) } else { Err(format!("call {n}")) }
        })
        .await;
        assert_eq!(found, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn probes_back_off_and_the_last_one_comes_at_the_deadline() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let waited = tokio::spawn(async move {
            eventually("never", Duration::from_secs(1), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>("not yet")
            })
            .await
        })
        .await;
        let message = *waited.unwrap_err().into_panic().downcast::<String>().unwrap();
        assert_eq!(tokio::time::Instant::now() - started, Duration::from_secs(1));
        // 0, 5, 15, 35, 75, 155, 355, 555, 755, 955 and 1000 ms.
        assert_eq!(message, "waited 1s for never (11 probes); last saw: not yet");
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_hangs_fails_the_wait_at_the_deadline() {
        let waited = tokio::spawn(eventually("an answer", Duration::from_millis(100), || {
            std::future::pending::<Result<(), String>>()
        }))
        .await;
        let message = *waited.unwrap_err().into_panic().downcast::<String>().unwrap();
        assert!(message.contains("the probe was still running at the deadline"), "{message}");
    }

    #[test]
    fn holds_answers_ok_only_when_the_condition_does() {
        assert_eq!(holds(true, "x"), Ok(()));
        assert_eq!(holds(false, 3), Err("3".to_owned()));
    }
}

pub mod redis;
