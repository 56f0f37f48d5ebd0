//! Time for the synchronous core.
//!
//! The storage core never reads the system clock directly: it asks a
//! [`Clock`], so tests drive segment ages, append times and retention with a
//! [`ManualClock`]. Times are [`UnixNanos`]: nanoseconds since the Unix epoch,
//! UTC, the same representation the on-disk formats use.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time: nanoseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixNanos(pub i64);

impl UnixNanos {
    /// The time `d` after this one, saturating.
    // Named methods rather than `Add`/`Sub`: saturation is the point, and an
    // operator would hide it.
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, d: Duration) -> UnixNanos {
        UnixNanos(
            self.0
                .saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// The time `d` before this one, saturating.
    #[allow(clippy::should_implement_trait)]
    pub fn sub(self, d: Duration) -> UnixNanos {
        UnixNanos(
            self.0
                .saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// How long after `earlier` this time is; zero if it is not after it.
    pub fn since(self, earlier: UnixNanos) -> Duration {
        u64::try_from(self.0.saturating_sub(earlier.0))
            .map(Duration::from_nanos)
            .unwrap_or(Duration::ZERO)
    }

    /// Converts a `SystemTime`, saturating outside the representable range.
    pub fn from_system(t: SystemTime) -> UnixNanos {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => UnixNanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(e) => UnixNanos(
                i64::try_from(e.duration().as_nanos())
                    .map(|n| -n)
                    .unwrap_or(i64::MIN),
            ),
        }
    }

    /// Seconds and nanoseconds, as `google.protobuf.Timestamp` wants them.
    pub fn to_seconds_nanos(self) -> (i64, i32) {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000) as i32;
        (secs, nanos)
    }
}

impl fmt::Display for UnixNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = self.to_seconds_nanos();
        match u64::try_from(secs) {
            Ok(s) => {
                let t = UNIX_EPOCH + Duration::new(s, nanos as u32);
                write!(f, "{}", humantime::format_rfc3339_nanos(t))
            }
            Err(_) => write!(f, "{}ns", self.0),
        }
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> UnixNanos;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixNanos {
        UnixNanos::from_system(SystemTime::now())
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: UnixNanos) -> ManualClock {
        ManualClock {
            now: Arc::new(AtomicI64::new(start.0)),
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let n = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        self.now.fetch_add(n, Ordering::SeqCst);
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: UnixNanos) {
        self.now.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixNanos {
        UnixNanos(self.now.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = ManualClock::new(UnixNanos(1_000));
        assert_eq!(c.now(), UnixNanos(1_000));
        c.advance(Duration::from_nanos(500));
        assert_eq!(c.now(), UnixNanos(1_500));
        assert_eq!(c.now().since(UnixNanos(1_000)), Duration::from_nanos(500));
        assert_eq!(UnixNanos(0).since(c.now()), Duration::ZERO);
    }

    #[test]
    fn negative_times_split_into_non_negative_nanos() {
        assert_eq!(UnixNanos(-1).to_seconds_nanos(), (-1, 999_999_999));
        assert_eq!(
            UnixNanos(1_500_000_000).to_seconds_nanos(),
            (1, 500_000_000)
        );
    }

    #[test]
    fn display_is_rfc3339() {
        assert_eq!(
            UnixNanos(1_677_250_110_000_000_000).to_string(),
            "2023-02-24T14:48:30.000000000Z"
        );
    }
}
