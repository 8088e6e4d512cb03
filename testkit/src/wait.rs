//! Waiting with a deadline where no event exists to await.

use std::future::Future;
use std::time::Duration;

/// How often [`eventually`] asks again.
const INTERVAL: Duration = Duration::from_millis(20);

/// The check did not pass before the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut(pub Duration);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the condition did not hold within {:?}", self.0)
    }
}

impl std::error::Error for TimedOut {}

/// Polls `check` until it yields `Some`, at most for `timeout`: for the few places no event
/// exists (a file another process writes, a port another process opens). Where the code under
/// test offers an event (a flow log's `wait_for`, a child's exit, a channel), await that instead.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TimedOut(timeout));
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// [`eventually`] for synchronous tests (a child process, files): `check` runs on this thread.
pub fn eventually_blocking<T>(
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, TimedOut> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if std::time::Instant::now() >= deadline {
            return Err(TimedOut(timeout));
        }
        std::thread::sleep(INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The value comes back once the check passes; a check that never passes times out, after
    /// the deadline and not before.
    #[tokio::test]
    async fn returns_when_the_check_passes_and_times_out_otherwise() {
        let calls = AtomicU32::new(0);
        let n = eventually(Duration::from_secs(5), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            (n >= 3).then_some(n)
        })
        .await
        .unwrap();
        assert_eq!(n, 3);
        let started = std::time::Instant::now();
        let err = eventually(Duration::from_millis(100), || async { None::<()> })
            .await
            .unwrap_err();
        assert_eq!(err, TimedOut(Duration::from_millis(100)));
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    /// The blocking form behaves the same way.
    #[test]
    fn the_blocking_form_returns_and_times_out_alike() {
        let mut calls = 0;
        let n = eventually_blocking(Duration::from_secs(5), || {
            calls += 1;
            (calls >= 3).then_some(calls)
        })
        .unwrap();
        assert_eq!(n, 3);
        let err = eventually_blocking(Duration::from_millis(50), || None::<()>).unwrap_err();
        assert_eq!(err, TimedOut(Duration::from_millis(50)));
    }
}
