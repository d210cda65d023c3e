//! Maglev consistent hashing (Eisenbud et al., NSDI 2016), with weights.
//!
//! The lookup table is built once per route-table generation, off the shard
//! cores; a lookup is one modulo and one array read. Removing one of N
//! endpoints moves about 1/N of the keys.

use rauta_shared::MAGLEV_TABLE_SIZE;
use xxhash_rust::xxh3::xxh3_64_with_seed;

const OFFSET_SEED: u64 = 0x5241_5554_4131;
const SKIP_SEED: u64 = 0x5241_5554_4132;

/// A built Maglev lookup table.
#[derive(Debug, Clone)]
pub struct Maglev {
    table: Box<[u32]>,
}

impl Maglev {
    /// Builds the table for endpoints given as (stable name, weight).
    /// Endpoints of weight 0 get no slot. Returns `None` when no endpoint
    /// has a positive weight.
    pub fn build(endpoints: &[(&str, u32)]) -> Option<Maglev> {
        let m = MAGLEV_TABLE_SIZE as u64;
        let max_weight = endpoints.iter().map(|e| e.1).max().filter(|w| *w > 0)?;
        // Permutation of each endpoint: offset + j * skip (mod M), M prime.
        let perms: Vec<(u64, u64)> = endpoints
            .iter()
            .map(|(name, _)| {
                let offset = xxh3_64_with_seed(name.as_bytes(), OFFSET_SEED) % m;
                let skip = xxh3_64_with_seed(name.as_bytes(), SKIP_SEED) % (m - 1) + 1;
                (offset, skip)
            })
            .collect();
        let mut next = vec![0u64; endpoints.len()];
        // Weighted turns: each round an endpoint earns weight/max_weight of
        // a turn and takes a slot for every whole turn earned.
        let mut credit = vec![0u64; endpoints.len()];
        let mut table = vec![u32::MAX; MAGLEV_TABLE_SIZE];
        let mut filled = 0usize;
        'fill: loop {
            for (i, (offset, skip)) in perms.iter().enumerate() {
                let weight = u64::from(endpoints[i].1);
                if weight == 0 {
                    continue;
                }
                credit[i] += weight;
                if credit[i] < u64::from(max_weight) {
                    continue;
                }
                credit[i] -= u64::from(max_weight);
                let slot = loop {
                    let c = ((offset + next[i] * skip) % m) as usize;
                    next[i] += 1;
                    if table[c] == u32::MAX {
                        break c;
                    }
                };
                table[slot] = i as u32;
                filled += 1;
                if filled == MAGLEV_TABLE_SIZE {
                    break 'fill;
                }
            }
        }
        Some(Maglev {
            table: table.into_boxed_slice(),
        })
    }

    /// The whole table: slot -> endpoint index (for the XDP fast path,
    /// which indexes the same table in the kernel).
    pub fn slots(&self) -> &[u32] {
        &self.table
    }

    /// The endpoint index for a key hash.
    #[inline]
    pub fn pick(&self, hash: u64) -> usize {
        self.table[(hash % MAGLEV_TABLE_SIZE as u64) as usize] as usize
    }

    /// Hash of a request key, as [`Maglev::pick`] expects it.
    #[inline]
    pub fn hash_key(key: &[u8]) -> u64 {
        xxh3_64_with_seed(key, 0)
    }

    /// Hash of a client address (`$remote_addr`), as [`Maglev::pick`] expects it.
    #[inline]
    pub fn hash_ip(ip: std::net::IpAddr) -> u64 {
        match ip {
            std::net::IpAddr::V4(ip) => Maglev::hash_key(&ip.octets()),
            std::net::IpAddr::V6(ip) => Maglev::hash_key(&ip.octets()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("10.0.{}.{}:8080", i / 250, i % 250))
            .collect()
    }

    fn build(names: &[String], weight: impl Fn(usize) -> u32) -> Maglev {
        let eps: Vec<(&str, u32)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), weight(i)))
            .collect();
        Maglev::build(&eps).expect("some weight")
    }

    #[test]
    fn every_endpoint_gets_a_near_equal_share() {
        let n = 7;
        let m = build(&names(n), |_| 1);
        let mut counts = vec![0usize; n];
        for slot in m.table.iter() {
            counts[*slot as usize] += 1;
        }
        let ideal = MAGLEV_TABLE_SIZE / n;
        for c in counts {
            assert!(c.abs_diff(ideal) <= ideal / 100 + 1, "share {c} vs {ideal}");
        }
    }

    #[test]
    fn removing_one_endpoint_moves_about_one_nth_of_keys() {
        let all = names(10);
        let before = build(&all, |_| 1);
        let fewer: Vec<String> = all.iter().filter(|n| *n != &all[3]).cloned().collect();
        let after = build(&fewer, |_| 1);
        let keys = 20_000u64;
        let mut moved = 0;
        for k in 0..keys {
            let h = Maglev::hash_key(&k.to_le_bytes());
            let a = &all[before.pick(h)];
            let b = &fewer[after.pick(h)];
            if a != b {
                moved += 1;
            }
        }
        let frac = moved as f64 / keys as f64;
        // Ideal is 1/10 (the removed endpoint's keys); Maglev adds a little.
        assert!((0.08..0.16).contains(&frac), "moved {frac}");
    }

    #[test]
    fn weights_shape_the_shares_and_zero_means_none() {
        let all = names(3);
        let m = build(&all, |i| [3, 1, 0][i]);
        let mut counts = [0usize; 3];
        for slot in m.table.iter() {
            counts[*slot as usize] += 1;
        }
        assert_eq!(counts[2], 0);
        let ratio = counts[0] as f64 / counts[1] as f64;
        assert!((2.7..3.3).contains(&ratio), "ratio {ratio}");
        assert!(Maglev::build(&[("a", 0)]).is_none());
    }
}
