//! The admin thread's running totals: shard deltas added up per route,
//! shard-level gauges kept as last reported; routes that left the table
//! are dropped.

use super::latency::Latency;
use super::outcome::{SizeCounts, TIME_BUCKETS_US};
use super::snapshot::{OutcomeDelta, RouteDelta, ShardLevel, ShardSnapshot};
use super::{CAUSES, METHODS, PROTOCOLS, STATUS_CLASSES};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Totals of one route over all shards.
#[derive(Debug, Default)]
pub struct RouteTotals {
    /// Requests by protocol, method and status class.
    pub requests: [[[u64; STATUS_CLASSES.len()]; METHODS.len()]; PROTOCOLS.len()],
    /// In-flight requests per shard (last reported).
    pub in_flight: BTreeMap<usize, i64>,
    /// Request bytes.
    pub bytes_in: u64,
    /// Response bytes.
    pub bytes_out: u64,
    /// Failures by cause.
    pub errors: [u64; CAUSES],
    /// Mirrored copies by [`super::MirrorResult`].
    pub mirrors: [u64; super::MIRROR_RESULTS.len()],
    /// Request durations (µs).
    pub request: Timing,
    /// Upstream durations (µs).
    pub upstream: Timing,
    /// Upstream connect durations (µs).
    pub connect: Timing,
    /// Requests by (method index, status code), for the
    /// `nginx_ingress_controller_*` families.
    pub outcomes: BTreeMap<(u8, u16), OutcomeTotals>,
}

/// Totals of one (method, status) pair of a route, in ingress-nginx's buckets.
#[derive(Debug, Default)]
pub struct OutcomeTotals {
    /// Requests.
    pub requests: u64,
    /// Request bytes.
    pub bytes_in: u64,
    /// Response bytes.
    pub bytes_out: u64,
    /// Request sizes by length bucket (not cumulative).
    pub in_sizes: SizeCounts<u64>,
    /// Response sizes by length bucket (not cumulative).
    pub out_sizes: SizeCounts<u64>,
    /// Request durations by time bucket.
    pub request: Buckets,
    /// Upstream durations by time bucket.
    pub upstream: Buckets,
}

/// A distribution in fixed buckets: counts per bucket (not cumulative; the
/// last slot is above the last bound), their number and exact sum.
#[derive(Debug, Default)]
pub struct Buckets {
    /// Counts by bucket of [`TIME_BUCKETS_US`], then above it.
    pub counts: [u64; TIME_BUCKETS_US.len() + 1],
    /// Values recorded.
    pub count: u64,
    /// Exact sum (µs).
    pub sum_us: u64,
}

impl Buckets {
    fn add(&mut self, pairs: &[(u64, u64)], sum: u64) {
        for (us, n) in pairs {
            let i = TIME_BUCKETS_US.partition_point(|le| le < us);
            self.counts[i] += n;
            self.count += n;
        }
        self.sum_us += sum;
    }
}

impl OutcomeTotals {
    fn add(&mut self, d: &OutcomeDelta) {
        self.requests += d.requests;
        self.bytes_in += d.bytes_in;
        self.bytes_out += d.bytes_out;
        for i in 0..d.in_sizes.len() {
            self.in_sizes[i] += d.in_sizes[i];
            self.out_sizes[i] += d.out_sizes[i];
        }
        self.request.add(&d.request_us, d.request_us_sum);
        self.upstream.add(&d.upstream_us, d.upstream_us_sum);
    }
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
        for o in &d.outcomes {
            let (p, m) = (usize::from(o.protocol), usize::from(o.method));
            t.requests[p][m][super::status_index(o.status)] += o.requests;
            t.bytes_in += o.bytes_in;
            t.bytes_out += o.bytes_out;
            t.request.add(&o.request_us, o.request_us_sum);
            t.upstream.add(&o.upstream_us, o.upstream_us_sum);
            t.outcomes.entry((o.method, o.status)).or_default().add(o);
        }
        t.in_flight.insert(shard, d.in_flight);
        for (i, n) in d.errors.iter().enumerate() {
            t.errors[i] += n;
        }
        for (i, n) in d.mirrors.iter().enumerate() {
            t.mirrors[i] += n;
        }
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
        let mut in_sizes = [0; 11];
        in_sizes[0] = 1;
        RouteDelta {
            key: key.clone(),
            outcomes: vec![OutcomeDelta {
                protocol: 0,
                method: 0,
                status: 200,
                requests: 1,
                bytes_in: 10,
                bytes_out: 20,
                in_sizes,
                out_sizes: [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                request_us: vec![(us, 1)],
                request_us_sum: us,
                upstream_us: vec![],
                upstream_us_sum: 0,
            }],
            in_flight,
            errors: [0; CAUSES],
            mirrors: [0; 4],
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
        assert_eq!(t.requests[0][0][1], 3);
        assert_eq!((t.bytes_in, t.bytes_out), (30, 60));
        assert_eq!(t.request.sum_us, 600);
        assert_eq!(t.request.hist.len(), 3);
        let o = &t.outcomes[&(0, 200)];
        assert_eq!((o.requests, o.in_sizes[0], o.out_sizes[1]), (3, 3, 3));
        assert_eq!(o.request.counts[0], 3, "100..300 µs are in the 5 ms bucket");
        assert_eq!((o.request.count, o.request.sum_us), (3, 600));
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
