//! The run's shared clock.
//!
//! Real Azure services all read wall-clock time; emulated ones read this clock so that tests can
//! move time forward (expire a token, pass a secret's `exp`, reach a purge date) without sleeping.
//! The offset is shared by every clone, so one `shift` is seen by every service at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time plus a shared, adjustable offset (in milliseconds).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// The emulated current time.
    pub fn now(&self) -> SystemTime {
        let offset = self.offset_ms.load(Ordering::Relaxed);
        let real = SystemTime::now();
        if offset >= 0 {
            real + Duration::from_millis(offset.unsigned_abs())
        } else {
            real - Duration::from_millis(offset.unsigned_abs())
        }
    }

    /// Seconds since the Unix epoch (JWT `iat`/`exp`, Key Vault `created`/`updated`).
    pub fn unix(&self) -> i64 {
        self.unix_millis().div_euclid(1000)
    }

    /// Milliseconds since the Unix epoch (flow-log tuples use milliseconds).
    pub fn unix_millis(&self) -> i64 {
        match self.now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Moves the emulated time by `by` (negative moves it back). Returns the new total offset.
    pub fn shift(&self, by: Duration, backwards: bool) -> Duration {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let delta = if backwards { -ms } else { ms };
        let total = self.offset_ms.fetch_add(delta, Ordering::Relaxed) + delta;
        Duration::from_millis(total.unsigned_abs())
    }

    /// Shifts by a signed number of seconds (the control API's unit).
    pub fn shift_secs(&self, secs: i64) {
        self.offset_ms
            .fetch_add(secs.saturating_mul(1000), Ordering::Relaxed);
    }

    /// The current offset from real time, in milliseconds.
    pub fn offset_millis(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Back to real time.
    pub fn reset(&self) {
        self.offset_ms.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_is_seen_by_every_clone() {
        let a = Clock::new();
        let b = a.clone();
        let before = b.unix();
        a.shift_secs(3600);
        let after = b.unix();
        assert!(
            (3599..=3601).contains(&(after - before)),
            "{before} -> {after}"
        );
        a.shift(Duration::from_secs(7200), true);
        assert_eq!(b.offset_millis(), -3_600_000);
        b.reset();
        assert_eq!(a.offset_millis(), 0);
    }
}
