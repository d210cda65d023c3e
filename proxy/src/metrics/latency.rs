//! A latency distribution that costs what it holds: a short list of
//! (bucket, count) pairs while the values fall into few buckets, a full
//! hdrhistogram (about 13 KiB) only once they spread over many.
//!
//! A route that saw a handful of requests keeps a few bytes instead of a
//! whole histogram per shard: 100 000 routes touched once no longer cost
//! gigabytes. Both forms answer with the same buckets, so quantiles and
//! Prometheus buckets do not depend on the form.

use hdrhistogram::{Counter, Histogram};
use std::sync::LazyLock;

/// Smallest value recorded, in µs.
const LOWEST: u64 = 1;
/// Largest value recorded, in µs (one hour).
const HIGHEST: u64 = 3_600_000_000;
/// Two significant digits: 1% error.
const SIGFIG: u8 = 2;
/// Distinct buckets kept as a list before switching to a histogram.
const SPARSE_MAX: usize = 32;

/// The bucket layout every distribution uses (no counts are kept in it).
static LAYOUT: LazyLock<Histogram<u8>> = LazyLock::new(new);

fn new<C: Counter>() -> Histogram<C> {
    Histogram::new_with_bounds(LOWEST, HIGHEST, SIGFIG).expect("constant bounds are valid")
}

/// Recorded latencies in µs.
#[derive(Debug, Clone)]
pub enum Latency<C: Counter> {
    /// (lowest value of the bucket, count), unsorted.
    Sparse(Vec<(u64, C)>),
    /// Many buckets in use.
    Dense(Box<Histogram<C>>),
}

impl<C: Counter> Default for Latency<C> {
    fn default() -> Self {
        Latency::Sparse(Vec::new())
    }
}

impl<C: Counter> Latency<C> {
    /// Records `count` values of `us` (clamped into the range; a counter
    /// that would overflow stays at its maximum).
    pub fn record_n(&mut self, us: u64, count: C) {
        let us = us.clamp(LOWEST, HIGHEST);
        match self {
            Latency::Dense(h) => h.saturating_record_n(us, count),
            Latency::Sparse(pairs) => {
                let bucket = LAYOUT.lowest_equivalent(us);
                if let Some((_, n)) = pairs.iter_mut().find(|(b, _)| *b == bucket) {
                    *n = n.saturating_add(count);
                    return;
                }
                if pairs.len() < SPARSE_MAX {
                    pairs.push((bucket, count));
                    return;
                }
                let mut h = Box::new(new::<C>());
                for (b, n) in pairs.iter() {
                    h.saturating_record_n(*b, *n);
                }
                h.saturating_record_n(us, count);
                *self = Latency::Dense(h);
            }
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, us: u64) {
        self.record_n(us, C::one());
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        match self {
            Latency::Dense(h) => h.len(),
            Latency::Sparse(pairs) => pairs.iter().map(|(_, n)| n.as_u64()).sum(),
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every non-empty bucket as (value, count).
    pub fn pairs(&self) -> Vec<(u64, u64)> {
        match self {
            Latency::Dense(h) => h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_since_last_iteration()))
                .collect(),
            Latency::Sparse(pairs) => pairs.iter().map(|(b, n)| (*b, n.as_u64())).collect(),
        }
    }

    /// Forgets the values, keeping the memory for the next ones.
    pub fn reset(&mut self) {
        match self {
            Latency::Dense(h) => h.reset(),
            Latency::Sparse(pairs) => pairs.clear(),
        }
    }

    /// Values in buckets up to the one holding `us` (a Prometheus `le`).
    pub fn count_up_to(&self, us: u64) -> u64 {
        match self {
            Latency::Dense(h) => h.count_between(0, us),
            Latency::Sparse(pairs) => {
                let limit = LAYOUT.lowest_equivalent(us.min(HIGHEST));
                pairs
                    .iter()
                    .filter(|(b, _)| *b <= limit)
                    .map(|(_, n)| n.as_u64())
                    .sum()
            }
        }
    }

    /// The value at quantile `q` (0..=1), as hdrhistogram reports it: the
    /// highest value of the bucket that holds it.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        match self {
            Latency::Dense(h) => h.value_at_quantile(q),
            Latency::Sparse(pairs) => {
                let total = self.len();
                if total == 0 {
                    return 0;
                }
                let q = q.min(1.0);
                let target = ((q * total as f64).ceil() as u64).max(1);
                let mut sorted: Vec<(u64, u64)> =
                    pairs.iter().map(|(b, n)| (*b, n.as_u64())).collect();
                sorted.sort_unstable();
                let mut seen = 0;
                for (bucket, n) in &sorted {
                    seen += n;
                    if seen >= target {
                        return if q == 0.0 {
                            *bucket
                        } else {
                            LAYOUT.highest_equivalent(*bucket)
                        };
                    }
                }
                sorted
                    .last()
                    .map_or(0, |(b, _)| LAYOUT.highest_equivalent(*b))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Vec<u64> {
        // A deterministic spread from 1 µs to seconds, with repeats.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        (0..500)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                1 + (x % 1000) * 10u64.pow((x % 4) as u32)
            })
            .collect()
    }

    #[test]
    fn sparse_and_dense_answer_alike() {
        let all = values();
        for n in [1usize, 5, 20, 500] {
            let mut ours = Latency::<u64>::default();
            let mut reference = new::<u64>();
            for v in &all[..n] {
                ours.record(*v);
                reference.record(*v).unwrap();
            }
            assert_eq!(matches!(ours, Latency::Sparse(_)), n <= 20, "{n} values");
            assert_eq!(ours.len(), reference.len());
            for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
                assert_eq!(
                    ours.value_at_quantile(q),
                    reference.value_at_quantile(q),
                    "q {q}, {n} values"
                );
            }
            for le in [1, 5, 100, 2_500, 1_000_000, 10_000_000_000] {
                assert_eq!(
                    ours.count_up_to(le),
                    reference.count_between(0, le),
                    "le {le}, {n} values"
                );
            }
            let mut pairs = ours.pairs();
            pairs.sort_unstable();
            let expected: Vec<(u64, u64)> = reference
                .iter_recorded()
                .map(|v| {
                    (
                        reference.lowest_equivalent(v.value_iterated_to()),
                        v.count_at_value(),
                    )
                })
                .collect();
            let lowest: Vec<(u64, u64)> = pairs
                .iter()
                .map(|(v, n)| (reference.lowest_equivalent(*v), *n))
                .collect();
            assert_eq!(lowest, expected, "{n} values");
        }
    }

    #[test]
    fn a_few_values_stay_small_and_reset_keeps_the_form() {
        let mut l = Latency::<u32>::default();
        for _ in 0..1000 {
            l.record(250);
        }
        l.record(40_000);
        assert!(matches!(&l, Latency::Sparse(p) if p.len() == 2));
        assert_eq!(l.len(), 1001);
        l.reset();
        assert!(l.is_empty());
        for v in 1..=100 {
            l.record(v * 1000);
        }
        assert!(
            matches!(l, Latency::Dense(_)),
            "spread values switch to a histogram"
        );
        assert_eq!(l.len(), 100);
    }
}
