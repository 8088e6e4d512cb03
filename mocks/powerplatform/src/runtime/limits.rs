//! Calls per minute per connection (500 in Power Platform, microsoft/powerplatform-developerhub:
//! docs/custom-connectors/faq.md).
//!
//! A sliding window of one minute on the run clock: a call is admitted when fewer than the limit
//! were admitted in the last 60 s; otherwise the answer says when the oldest of them leaves the
//! window (`Retry-After`). Shifting the clock forward therefore empties the window, as waiting
//! would.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

const WINDOW_MS: i64 = 60_000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl RateLimiter {
    /// Admits a call on `connection` at `now_ms`, or returns the seconds to wait.
    pub fn admit(&self, connection: &str, limit: u32, now_ms: i64) -> Result<(), u64> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = windows.entry(connection.to_owned()).or_default();
        while window.front().is_some_and(|t| now_ms - *t >= WINDOW_MS) {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            let oldest = window.front().copied().unwrap_or(now_ms);
            let wait_ms = (oldest + WINDOW_MS - now_ms).max(1);
            let wait_ms = u64::try_from(wait_ms).unwrap_or(60_000);
            return Err(wait_ms.div_ceil(1000));
        }
        window.push_back(now_ms);
        Ok(())
    }

    /// Forgets a deleted connection.
    pub fn forget(&self, connection: &str) {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(connection);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_slides_per_connection() {
        let limiter = RateLimiter::default();
        assert!(limiter.admit("a", 2, 0).is_ok());
        assert!(limiter.admit("a", 2, 10_000).is_ok());
        assert_eq!(limiter.admit("a", 2, 20_000), Err(40));
        assert!(limiter.admit("b", 2, 20_000).is_ok());
        assert!(limiter.admit("a", 2, 60_000).is_ok());
        assert_eq!(limiter.admit("a", 2, 60_001), Err(10));
    }
}
