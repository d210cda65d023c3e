//! HTTPRoute weighted `backendRefs`: each request picks one share in
//! proportion to its weight with the shard's generator (no state shared
//! between requests or shards). A reference the translation could not
//! resolve keeps its share, answered 500; weight 0 takes nothing.

use super::CompileError;
use crate::balance::least_request::Rng;
use rauta_shared::policy::WeightedBackend;

/// A route's weighted backends, compiled.
#[derive(Debug)]
pub struct Split {
    shares: Box<[Share]>,
    /// The sum of the weights.
    total: u64,
}

#[derive(Debug, Clone, Copy)]
struct Share {
    backend: Option<usize>,
    weight: u32,
    /// The running sum of the weights up to and including this share: a
    /// draw below it and at or above the previous one picks this share.
    upto: u64,
}

/// What a draw picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Share `share` (its index) and its backend.
    Backend {
        /// Index of the share, in config order.
        share: usize,
        /// Index into the table's backends.
        backend: usize,
    },
    /// An unresolved reference's share, or every weight 0: answered 500.
    Invalid,
}

impl Split {
    /// Compiles the shares; every backend they name must exist.
    pub fn compile(shares: &[WeightedBackend], backends: usize) -> Result<Split, CompileError> {
        let mut total = 0u64;
        let mut compiled = Vec::with_capacity(shares.len());
        for s in shares {
            if let Some(b) = s.backend.filter(|b| *b >= backends) {
                return Err(CompileError::MissingBackend(b));
            }
            total += u64::from(s.weight);
            compiled.push(Share {
                backend: s.backend,
                weight: s.weight,
                upto: total,
            });
        }
        Ok(Split {
            shares: compiled.into(),
            total,
        })
    }

    /// Draws a share for one request.
    #[inline]
    pub fn pick(&self, rng: &Rng) -> Pick {
        if self.total == 0 {
            return Pick::Invalid;
        }
        let draw = rng.next() % self.total;
        // Weight-0 shares end where the previous one does: never above a draw.
        let found = self.shares.iter().enumerate().find(|(_, s)| s.upto > draw);
        match found {
            Some((
                share,
                Share {
                    backend: Some(backend),
                    ..
                },
            )) => Pick::Backend {
                share,
                backend: *backend,
            },
            _ => Pick::Invalid,
        }
    }

    /// Each share's backend (`None`: unresolved) and weight, in config order.
    pub fn shares(&self) -> impl Iterator<Item = (Option<usize>, u32)> + '_ {
        self.shares.iter().map(|s| (s.backend, s.weight))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(shares: &[(Option<usize>, u32)]) -> Split {
        let shares: Vec<_> = shares
            .iter()
            .map(|(backend, weight)| WeightedBackend {
                backend: *backend,
                weight: *weight,
            })
            .collect();
        Split::compile(&shares, 3).expect("compiles")
    }

    /// Picks per share (the last slot: 500s) over `n` draws.
    fn counts(s: &Split, n: usize) -> Vec<usize> {
        let rng = Rng::new(0x5eed_1234_abcd_0001);
        let mut counts = vec![0; s.shares.len() + 1];
        for _ in 0..n {
            match s.pick(&rng) {
                Pick::Backend { share, .. } => counts[share] += 1,
                Pick::Invalid => counts[s.shares.len()] += 1,
            }
        }
        counts
    }

    #[test]
    fn shares_follow_the_weights_and_unresolved_ones_answer_500() {
        // Weights 0, 1, 3 and an unresolved reference of weight 1: 0 / 200
        // / 600 / 200 of 1000 expected.
        let s = split(&[(Some(0), 0), (Some(1), 1), (Some(2), 3), (None, 1)]);
        let got = counts(&s, 1000);
        assert_eq!(got[0], 0, "weight 0 never takes a request: {got:?}");
        assert_eq!(
            got[3], 0,
            "the unresolved share is Invalid, not a share: {got:?}"
        );
        let within = |n: usize, want: usize| n.abs_diff(want) <= 60;
        assert!(within(got[1], 200), "{got:?}");
        assert!(within(got[2], 600), "{got:?}");
        assert!(within(got[4], 200), "500s: {got:?}");
        assert_eq!(got.iter().sum::<usize>(), 1000);
    }

    #[test]
    fn the_backend_of_the_share_is_picked() {
        let s = split(&[(Some(2), 1)]);
        let rng = Rng::new(7);
        assert_eq!(
            s.pick(&rng),
            Pick::Backend {
                share: 0,
                backend: 2
            }
        );
    }

    #[test]
    fn all_weights_zero_or_none_at_all_answer_500() {
        let rng = Rng::new(7);
        assert_eq!(
            split(&[(Some(0), 0), (Some(1), 0)]).pick(&rng),
            Pick::Invalid
        );
        assert_eq!(split(&[]).pick(&rng), Pick::Invalid);
        assert_eq!(split(&[(None, 5)]).pick(&rng), Pick::Invalid);
    }

    #[test]
    fn a_missing_backend_does_not_compile() {
        let shares = [WeightedBackend {
            backend: Some(3),
            weight: 1,
        }];
        assert!(Split::compile(&shares, 3).is_err());
    }
}
