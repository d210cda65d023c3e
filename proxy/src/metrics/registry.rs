//! The admin thread's running totals: shard deltas added up per route,
//! shard-level gauges kept as last reported; routes that left the table
//! are dropped.

use super::latency::Latency;
use super::snapshot::{RouteDelta, ShardLevel, ShardSnapshot};
use super::{CAUSES, METHODS, STATUS_CLASSES};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Totals of one route over all shards.
#[derive(Debug, Default)]
pub struct RouteTotals {
    /// Requests by method and status class.
    pub requests: [[u64; STATUS_CLASSES.len()]; METHODS.len()],
    /// In-flight requests per shard (last reported).
    pub in_flight: BTreeMap<usize, i64>,
    /// Request bytes.
    pub bytes_in: u64,
    /// Response bytes.
    pub bytes_out: u64,
    /// Failures by cause.
    pub errors: [u64; CAUSES],
    /// Request durations (µs).
    pub request: Timing,
    /// Upstream durations (µs).
    pub upstream: Timing,
    /// Upstream connect durations (µs).
    pub connect: Timing,
}

/// A latency distribution and its exact sum, in microseconds.
#[derive(Debug, Default)]
pub struct Timing {
    /// Recorded values.
    pub hist: Latency<u64>,
    /// Exact sum.
    pub sum_us: u64,
}

impl Timing {
    fn add(&mut self, delta: &[(u64, u64)], sum: u64) {
        for (value, count) in delta {
            self.hist.record_n(*value, *count);
        }
        self.sum_us += sum;
    }
}

/// Everything `/metrics` shows, accumulated across scrapes.
#[derive(Debug, Default)]
pub struct Registry {
    /// Per-route totals by route key.
    pub routes: HashMap<Arc<str>, RouteTotals>,
    /// Per-shard figures by shard index, as last reported.
    pub shards: BTreeMap<usize, ShardLevel>,
}

impl Registry {
    /// Adds a shard's snapshot; deltas of routes not in `live` are dropped.
    pub fn merge(&mut self, snap: ShardSnapshot, live: &HashSet<&str>) {
        for delta in snap.routes {
            if live.contains(&*delta.key) {
                self.add_route(snap.shard, delta);
            }
        }
        self.shards.insert(snap.shard, snap.level);
    }

    fn add_route(&mut self, shard: usize, d: RouteDelta) {
        let t = self.routes.entry(d.key).or_default();
        for (m, row) in d.requests.iter().enumerate() {
            for (c, n) in row.iter().enumerate() {
                t.requests[m][c] += n;
            }
        }
        t.in_flight.insert(shard, d.in_flight);
        t.bytes_in += d.bytes_in;
        t.bytes_out += d.bytes_out;
        for (i, n) in d.errors.iter().enumerate() {
            t.errors[i] += n;
        }
        t.request.add(&d.request_us, d.request_us_sum);
        t.upstream.add(&d.upstream_us, d.upstream_us_sum);
        t.connect.add(&d.connect_us, d.connect_us_sum);
    }

    /// Drops the series of routes that are no longer in the table.
    pub fn retain(&mut self, live: &HashSet<&str>) {
        self.routes.retain(|k, _| live.contains(&**k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(key: &Arc<str>, us: u64, in_flight: i64) -> RouteDelta {
        let mut requests = [[0; 5]; 8];
        requests[0][1] = 1;
        RouteDelta {
            key: key.clone(),
            requests,
            in_flight,
            bytes_in: 10,
            bytes_out: 20,
            errors: [0; CAUSES],
            request_us: vec![(us, 1)],
            request_us_sum: us,
            upstream_us: vec![],
            upstream_us_sum: 0,
            connect_us: vec![],
            connect_us_sum: 0,
        }
    }

    fn snap(shard: usize, routes: Vec<RouteDelta>) -> ShardSnapshot {
        ShardSnapshot {
            shard,
            routes,
            level: ShardLevel {
                generation: 1,
                ..ShardLevel::default()
            },
        }
    }

    #[test]
    fn deltas_add_up_gauges_replace_and_dead_routes_go() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut r = Registry::default();
        let live: HashSet<&str> = ["a", "b"].into_iter().collect();
        r.merge(snap(0, vec![delta(&a, 100, 2), delta(&b, 5, 0)]), &live);
        r.merge(snap(1, vec![delta(&a, 300, 1)]), &live);
        r.merge(snap(0, vec![delta(&a, 200, 0)]), &live);
        let t = &r.routes[&a];
        assert_eq!(t.requests[0][1], 3);
        assert_eq!((t.bytes_in, t.bytes_out), (30, 60));
        assert_eq!(t.request.sum_us, 600);
        assert_eq!(t.request.hist.len(), 3);
        assert_eq!(
            t.in_flight.values().sum::<i64>(),
            1,
            "latest per shard: 0 + 1"
        );
        let live: HashSet<&str> = ["a"].into_iter().collect();
        r.retain(&live);
        assert!(!r.routes.contains_key(&b));
        r.merge(snap(0, vec![delta(&b, 5, 0)]), &live);
        assert!(
            !r.routes.contains_key(&b),
            "deltas of removed routes are dropped"
        );
    }
}
