//! Least request by the power of two random choices, on the shard's own
//! in-flight counts (no cross-core state; each shard balances its share).

use std::cell::Cell;

/// A small per-shard xorshift generator: fast, not for secrets.
#[derive(Debug)]
pub struct Rng(Cell<u64>);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Rng {
        Rng(Cell::new(seed | 1))
    }

    /// The next pseudo-random number.
    #[inline]
    pub fn next(&self) -> u64 {
        let mut x = self.0.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Picks two distinct endpoints at random and returns the one with the
/// lower in-flight count per unit of weight. Weights are all positive
/// (zero-weight endpoints are left out when the backend is compiled).
pub fn pick(weights: &[u32], inflight: &[Cell<u32>], rng: &Rng) -> Option<usize> {
    let n = weights.len() as u64;
    match n {
        0 => None,
        1 => Some(0),
        _ => {
            let r = rng.next();
            let a = (r % n) as usize;
            let b = (a + 1 + ((r >> 32) % (n - 1)) as usize) % n as usize;
            // Compare inflight_a / w_a with inflight_b / w_b without division.
            let load =
                |i: usize, other: usize| u64::from(inflight[i].get()) * u64::from(weights[other]);
            Some(if load(a, b) <= load(b, a) { a } else { b })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_less_loaded_endpoint() {
        let rng = Rng::new(42);
        let inflight: Vec<Cell<u32>> = [10, 0].iter().map(|v| Cell::new(*v)).collect();
        for _ in 0..100 {
            assert_eq!(pick(&[1, 1], &inflight, &rng), Some(1));
        }
    }

    #[test]
    fn follows_load_and_weights() {
        let rng = Rng::new(7);
        let inflight: Vec<Cell<u32>> = (0..3).map(|_| Cell::new(0)).collect();
        let mut counts = [0u32; 3];
        for _ in 0..4000 {
            let i = pick(&[1, 1, 2], &inflight, &rng).expect("an endpoint");
            counts[i] += 1;
            // Load that stays: later choices must balance it by weight.
            inflight[i].set(inflight[i].get() + 1);
        }
        assert!(counts[0].abs_diff(1000) < 30, "{counts:?}");
        assert!(counts[1].abs_diff(1000) < 30, "{counts:?}");
        assert!(counts[2].abs_diff(2000) < 30, "{counts:?}");
        assert_eq!(pick(&[], &[], &rng), None);
    }
}
