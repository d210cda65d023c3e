//! The per-node state of `limit-rps`/`-rpm` and `limit-connections`: the
//! one structure in the request path that the shards share.
//!
//! Why shared: a client's connections land on whichever shard the kernel
//! (or XDP) hands them to, so a per-shard budget would give a client up to
//! `shards ×` its limit. ingress-nginx's limits are per replica; ours are
//! per node, whatever the shard.
//!
//! What it costs: only routes with a limit touch it, with one relaxed load
//! and one compare-and-swap on one 8-byte cell per rate (and one
//! `fetch_add`/`fetch_sub` pair per request for `limit-connections`). No
//! lock, no allocation per request; the cache line of a cell moves between
//! cores only when one client IP is served by several shards at once.
//!
//! Memory is fixed whatever the number of client IPs: [`RATE_CELLS`] cells
//! of 8 bytes (512 KiB) and [`CONN_CELLS`] counters of 4 bytes (256 KiB),
//! allocated the first time a table with a limit is compiled and never
//! again. Keys are hashed (with a per-process random seed, so clients cannot
//! aim at another's cell) into the tables; a rate cell keeps a 16-bit tag of
//! its key, so a collision with another live key is seen and counted, and
//! both keys then share one budget (erring toward limiting). Connection
//! counters have no tag: colliding keys share a count, also erring toward
//! limiting.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Rate cells: 64 Ki × 8 bytes.
pub const RATE_CELLS: usize = 1 << 16;
/// In-flight counters: 64 Ki × 4 bytes.
pub const CONN_CELLS: usize = 1 << 16;
/// Bits of a rate cell holding the theoretical arrival time (µs since start).
const TAT_BITS: u32 = 48;
const TAT_MASK: u64 = (1 << TAT_BITS) - 1;

/// The node-wide limit state.
pub struct Cells {
    rate: Box<[AtomicU64]>,
    conns: Box<[AtomicU32]>,
    seed: u64,
    epoch: Instant,
    collisions: AtomicU64,
}

impl std::fmt::Debug for Cells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cells")
            .field("collisions", &self.collisions())
            .finish_non_exhaustive()
    }
}

static CELLS: OnceLock<Cells> = OnceLock::new();

/// The node's cells, allocated on first use.
pub fn cells() -> &'static Cells {
    CELLS.get_or_init(|| Cells {
        rate: (0..RATE_CELLS).map(|_| AtomicU64::new(0)).collect(),
        conns: (0..CONN_CELLS).map(|_| AtomicU32::new(0)).collect(),
        seed: std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish(),
        epoch: Instant::now(),
        collisions: AtomicU64::new(0),
    })
}

/// The cells, if any route ever used a limit (for `/metrics`).
pub fn existing() -> Option<&'static Cells> {
    CELLS.get()
}

/// A GCRA rate: one request per `interval_us`, `tolerance_us` of burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    interval_us: u64,
    tolerance_us: u64,
}

impl Rate {
    /// `per_unit` requests per `unit_us`, with a burst of `burst` requests
    /// beyond the first (nginx's `burst=N nodelay`).
    pub fn new(per_unit: u32, unit_us: u64, burst: u64) -> Rate {
        let interval_us = (unit_us / u64::from(per_unit.max(1))).max(1);
        Rate {
            interval_us,
            tolerance_us: interval_us.saturating_mul(burst),
        }
    }
}

/// Holds one in-flight slot until dropped.
#[derive(Debug)]
pub struct InFlight(&'static AtomicU32);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Cells {
    /// The key of a client in a zone, for one kind of limit.
    pub fn key(&self, zone: u64, kind: u64, ip: u128) -> u64 {
        let mut h = mix(self.seed ^ zone);
        h = mix(h ^ kind);
        h = mix(h ^ (ip as u64));
        mix(h ^ ((ip >> 64) as u64))
    }

    /// Microseconds since the cells were made.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 & TAT_MASK
    }

    /// Takes one request from `key`'s budget; false when it is exhausted
    /// (nothing is taken then).
    pub fn take(&self, key: u64, rate: Rate, now_us: u64) -> bool {
        let cell = &self.rate[(key as usize) & (RATE_CELLS - 1)];
        let tag = key >> TAT_BITS;
        let mut current = cell.load(Ordering::Relaxed);
        let mut counted = false;
        loop {
            let (ctag, ctat) = (current >> TAT_BITS, current & TAT_MASK);
            let tat = if ctag == tag {
                ctat
            } else if ctat > now_us {
                // Another live key holds the cell: share its budget.
                if !counted {
                    self.collisions.fetch_add(1, Ordering::Relaxed);
                    counted = true;
                }
                ctat
            } else {
                0
            };
            let start = tat.max(now_us);
            if start - now_us > rate.tolerance_us {
                return false;
            }
            let next = (tag << TAT_BITS) | (start.saturating_add(rate.interval_us) & TAT_MASK);
            match cell.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    /// One more request in flight for `key`, unless `limit` are already.
    pub fn enter(&'static self, key: u64, limit: u32) -> Option<InFlight> {
        let counter = &self.conns[(key as usize) & (CONN_CELLS - 1)];
        if counter.fetch_add(1, Ordering::Relaxed) >= limit {
            counter.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(InFlight(counter))
    }

    /// Rate-cell collisions with another live key so far.
    pub fn collisions(&self) -> u64 {
        self.collisions.load(Ordering::Relaxed)
    }
}

/// A 64-bit finaliser (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A zone name as the number keys are made from.
pub fn zone_id(zone: &str) -> u64 {
    zone.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_key_gets_one_plus_burst_then_the_rate() {
        let c = cells();
        let key = c.key(zone_id("t/a"), 0, 1);
        // 10 per second, burst 5: six at once, then one per 100 ms.
        let rate = Rate::new(10, 1_000_000, 5);
        let t0 = 1_000_000_000;
        let taken = (0..20).filter(|_| c.take(key, rate, t0)).count();
        assert_eq!(taken, 6);
        assert!(!c.take(key, rate, t0 + 50_000));
        assert!(c.take(key, rate, t0 + 100_000));
        assert!(!c.take(key, rate, t0 + 100_000));
    }

    #[test]
    fn in_flight_slots_are_counted_and_given_back() {
        let c = cells();
        let key = c.key(zone_id("t/b"), 1, 2);
        let a = c.enter(key, 2).expect("first");
        let _b = c.enter(key, 2).expect("second");
        assert!(c.enter(key, 2).is_none(), "third is over the limit");
        drop(a);
        assert!(c.enter(key, 2).is_some());
    }
}
