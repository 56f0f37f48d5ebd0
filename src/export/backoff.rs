//! Exponential backoff with full jitter.

use rand::Rng;
use std::time::Duration;

/// Backoff after consecutive failures: `base * 2^(n-1)`, capped, with full
/// jitter (a uniform draw between half and all of it, so a fleet of
/// sidecars does not retry in step).
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(250),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before retry number `failures` (1 for the first retry).
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let exp = self.base.saturating_mul(1u32 << (failures - 1).min(20));
        let cap = exp.min(self.max);
        let lo = cap / 2;
        // lo = cap / 2 <= cap: the difference never saturates.
        let jitter = rand::rng().random_range(0..=cap.saturating_sub(lo).as_millis() as u64);
        lo + Duration::from_millis(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap_with_jitter() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        assert_eq!(b.delay(0), Duration::ZERO);
        for _ in 0..50 {
            let d1 = b.delay(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = b.delay(3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d30 = b.delay(30);
            assert!(
                d30 >= Duration::from_secs(1) && d30 <= Duration::from_secs(2),
                "{d30:?}"
            );
        }
    }
}
