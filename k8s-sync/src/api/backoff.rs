//! The retry delay of a failing watch: exponential with jitter, reset by the
//! first good event after a failure.

use kube::runtime::utils::Backoff;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Doubles from `min` up to `max`, each delay shortened by up to a quarter at
/// random so that many nodes re-listing after an API-server restart spread out.
#[derive(Debug, Clone)]
pub(crate) struct Exponential {
    min: Duration,
    max: Duration,
    next: Duration,
    seed: RandomState,
    count: u64,
}

impl Exponential {
    /// Starts at `min`, never exceeds `max` (`max` below `min` counts as `min`).
    pub(crate) fn new(min: Duration, max: Duration) -> Exponential {
        Exponential {
            min,
            max: max.max(min),
            next: min,
            seed: RandomState::new(),
            count: 0,
        }
    }

    /// A number in 0..=1000, different on every call.
    fn per_mille(&mut self) -> u32 {
        self.count += 1;
        let mut h = self.seed.build_hasher();
        h.write_u64(self.count);
        (h.finish() % 1001) as u32
    }
}

impl Iterator for Exponential {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let cut = base / 4 * self.per_mille() / 1000;
        Some(base - cut)
    }
}

impl Backoff for Exponential {
    fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter_and_resets() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(700));
        let mut b = Exponential::new(min, max);
        let bases = [100, 200, 400, 700, 700];
        for base in bases {
            let d = b.next().expect("endless");
            let base = Duration::from_millis(base);
            assert!(d <= base && d >= base * 3 / 4, "{d:?} vs {base:?}");
        }
        b.reset();
        let d = b.next().expect("endless");
        assert!(d <= min && d >= min * 3 / 4);
    }
}
