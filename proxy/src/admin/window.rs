//! The status page's recent window: what the routes did in about the last
//! [`WINDOW`], kept in the admin thread only.
//!
//! A shard's snapshot already holds only what changed since the previous
//! one (a delta), and every refresh of the registry asks every shard for
//! one. Before those deltas are added to the running totals, each refresh
//! also files them here, in a slot per second of refreshes: per route the
//! requests, the 5xx answers and the request durations, per shard the
//! requests. Each route's sum over the slots is kept up to date as slots
//! come (added) and go (subtracted), so a look costs what the routes with
//! traffic hold, not what the slots hold. Slots older than the window are
//! dropped, so the window is the sum of the slots still held, and it covers
//! exactly the time from the
//! refresh before its oldest slot to the latest refresh (reported with the
//! figures, since refreshes happen when someone asks: a page that polls
//! keeps it near [`WINDOW`]). Nothing here touches a shard: it reads what
//! the existing snapshot brought.
//!
//! Durations are regrouped into [`Coarse`] buckets, 32 per power of two
//! (at most about 3 % above the value, like the hdr buckets they come
//! from): a slot keeps only the buckets its requests used, so the memory
//! follows the traffic, not the number of routes.

use crate::metrics::snapshot::ShardSnapshot;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much recent history the status page shows.
pub const WINDOW: Duration = Duration::from_secs(30);
/// Refreshes closer together than this share a slot.
const SLOT: Duration = Duration::from_secs(1);

/// Latency buckets in µs: values below 32 exactly, then 32 buckets per
/// power of two (index < 1024 for every `u32`-sized value).
#[derive(Debug, Clone, Copy)]
pub struct Coarse;

impl Coarse {
    /// The bucket of `us` (values above `u32::MAX` share the last one).
    pub fn index(us: u64) -> u16 {
        let v = us.min(u64::from(u32::MAX));
        if v < 32 {
            return v as u16;
        }
        let e = 63 - v.leading_zeros() as u64; // 5..=31
        ((e - 4) * 32 + ((v >> (e - 5)) & 31)) as u16
    }

    /// The highest value of bucket `i` (what a quantile in it is shown as).
    pub fn highest(i: u16) -> u64 {
        let i = u64::from(i);
        if i < 32 {
            return i;
        }
        let e = i / 32 + 4;
        let sub = i % 32;
        ((32 + sub) << (e - 5)) + (1 << (e - 5)) - 1
    }
}

/// (bucket, count) pairs, unsorted; one entry per bucket used.
type Buckets = Vec<(u16, u32)>;

/// One route's figures in one slot.
#[derive(Debug, Default, Clone)]
struct RouteSlot {
    requests: u64,
    errors: u64,
    hist: Buckets,
}

impl RouteSlot {
    /// Adds `other`'s figures.
    fn merge(&mut self, other: RouteSlot) {
        if self.requests == 0 && self.hist.is_empty() {
            *self = other;
            return;
        }
        self.requests += other.requests;
        self.errors += other.errors;
        for (b, n) in other.hist {
            match self.hist.iter_mut().find(|(k, _)| *k == b) {
                Some((_, c)) => *c = c.saturating_add(n),
                None => self.hist.push((b, n)),
            }
        }
    }

    fn record(&mut self, us: u64, n: u64) {
        let b = Coarse::index(us);
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        match self.hist.iter_mut().find(|(k, _)| *k == b) {
            Some((_, c)) => *c = c.saturating_add(n),
            None => self.hist.push((b, n)),
        }
    }
}

/// A route's sum over the slots held.
#[derive(Debug, Default)]
struct RouteSum {
    requests: u64,
    errors: u64,
    /// (bucket, count), sorted by bucket, no zero counts.
    hist: Vec<(u16, u64)>,
}

impl RouteSum {
    fn add(&mut self, r: &RouteSlot) {
        self.requests += r.requests;
        self.errors += r.errors;
        for &(b, n) in &r.hist {
            match self.hist.binary_search_by_key(&b, |(k, _)| *k) {
                Ok(i) => self.hist[i].1 += u64::from(n),
                Err(i) => self.hist.insert(i, (b, u64::from(n))),
            }
        }
    }

    /// Takes out what `r` added; true when nothing is left.
    fn subtract(&mut self, r: &RouteSlot) -> bool {
        self.requests = self.requests.saturating_sub(r.requests);
        self.errors = self.errors.saturating_sub(r.errors);
        for &(b, n) in &r.hist {
            if let Ok(i) = self.hist.binary_search_by_key(&b, |(k, _)| *k) {
                self.hist[i].1 = self.hist[i].1.saturating_sub(u64::from(n));
            }
        }
        self.hist.retain(|(_, n)| *n > 0);
        self.requests == 0 && self.hist.is_empty()
    }
}

/// The deltas of the refreshes of about one second.
#[derive(Debug)]
struct Slot {
    /// The refresh before the first one filed here: the deltas start there.
    from: Instant,
    /// The first refresh filed here: refreshes within [`SLOT`] of it join.
    opened: Instant,
    /// The last refresh filed here.
    to: Instant,
    routes: HashMap<Arc<str>, RouteSlot>,
    /// Requests that ended, per shard.
    shard_requests: BTreeMap<usize, u64>,
}

/// A route's figures over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RouteWindow {
    /// Requests that ended.
    pub requests: u64,
    /// Of which answered 5xx.
    pub errors: u64,
    /// Request duration quantiles, µs: p50, p99, p99.9.
    pub quantiles: [u64; 3],
}

/// The recent window (see the module docs).
#[derive(Debug)]
pub struct Window {
    length: Duration,
    slots: VecDeque<Slot>,
    /// The latest refresh (or when the window was made).
    last: Instant,
    /// Accepted connections per shard since start, as of the start of
    /// the oldest slot held, and as of the latest refresh.
    accepted_base: BTreeMap<usize, u64>,
    accepted_now: BTreeMap<usize, u64>,
    /// The totals as of each slot's end, to move `accepted_base` on.
    accepted_at: VecDeque<BTreeMap<usize, u64>>,
    /// Each route's sum over the slots held.
    sums: HashMap<Arc<str>, RouteSum>,
}

impl Default for Window {
    fn default() -> Window {
        Window::new(WINDOW, Instant::now())
    }
}

impl Window {
    /// An empty window of `length`, its deltas starting at `start`.
    pub fn new(length: Duration, start: Instant) -> Window {
        Window {
            length,
            slots: VecDeque::new(),
            last: start,
            accepted_base: BTreeMap::new(),
            accepted_now: BTreeMap::new(),
            accepted_at: VecDeque::new(),
            sums: HashMap::new(),
        }
    }

    /// When the latest refresh was filed.
    pub fn last_refresh(&self) -> Instant {
        self.last
    }

    /// Files the deltas of one refresh (all shards' snapshots, taken at
    /// `now`), routes not in `live` left out, then drops what fell out of
    /// the window.
    pub fn add(&mut self, snapshots: &[ShardSnapshot], live: &HashSet<&str>, now: Instant) {
        let from = self.last;
        self.last = now;
        let fresh = match self.slots.back() {
            Some(s) => now.saturating_duration_since(s.opened) >= SLOT,
            None => true,
        };
        if fresh {
            self.slots.push_back(Slot {
                from,
                opened: now,
                to: now,
                routes: HashMap::new(),
                shard_requests: BTreeMap::new(),
            });
            self.accepted_at.push_back(BTreeMap::new());
        }
        let slot = self.slots.back_mut().expect("a slot was just ensured");
        slot.to = now;
        for snap in snapshots {
            let mut shard_requests = 0;
            for delta in &snap.routes {
                if !live.contains(&*delta.key) {
                    continue;
                }
                if delta.outcomes.iter().all(|o| o.requests == 0) {
                    continue;
                }
                let mut r = RouteSlot::default();
                for o in &delta.outcomes {
                    r.requests += o.requests;
                    if o.status >= 500 {
                        r.errors += o.requests;
                    }
                    for &(us, n) in &o.request_us {
                        r.record(us, n);
                    }
                }
                shard_requests += r.requests;
                self.sums.entry(delta.key.clone()).or_default().add(&r);
                slot.routes.entry(delta.key.clone()).or_default().merge(r);
            }
            *slot.shard_requests.entry(snap.shard).or_default() += shard_requests;
            self.accepted_now.insert(snap.shard, snap.level.accepted);
        }
        if let Some(at) = self.accepted_at.back_mut() {
            at.clone_from(&self.accepted_now);
        }
        // Drop the oldest slot while the others still cover the window.
        while self.slots.len() > 1
            && now.saturating_duration_since(self.slots[1].from) >= self.length
        {
            if let Some(old) = self.slots.pop_front() {
                for (key, r) in &old.routes {
                    if let Some(sum) = self.sums.get_mut(key) {
                        if sum.subtract(r) {
                            self.sums.remove(key);
                        }
                    }
                }
            }
            if let Some(at) = self.accepted_at.pop_front() {
                self.accepted_base = at;
            }
        }
    }

    /// The time the window covers now: from the start of its oldest slot
    /// to the latest refresh (zero before any).
    pub fn span(&self) -> Duration {
        match (self.slots.front(), self.slots.back()) {
            (Some(first), Some(last)) => last.to.saturating_duration_since(first.from),
            _ => Duration::ZERO,
        }
    }

    /// A route's figures over the window, if it had requests in it.
    pub fn route(&self, key: &str) -> Option<RouteWindow> {
        let sum = self.sums.get(key)?;
        Some(RouteWindow {
            requests: sum.requests,
            errors: sum.errors,
            quantiles: quantiles(&sum.hist, [0.5, 0.99, 0.999]),
        })
    }

    /// How many routes had requests in the window.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.sums.len()
    }

    /// True when no route had requests in the window.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }

    /// Requests that ended in the window, per shard.
    pub fn shard_requests(&self) -> BTreeMap<usize, u64> {
        let mut out = BTreeMap::new();
        for slot in &self.slots {
            for (shard, n) in &slot.shard_requests {
                *out.entry(*shard).or_default() += n;
            }
        }
        out
    }

    /// Connections accepted in the window, per shard.
    pub fn shard_accepted(&self) -> BTreeMap<usize, u64> {
        self.accepted_now
            .iter()
            .map(|(shard, now)| {
                let base = self.accepted_base.get(shard).copied().unwrap_or(0);
                (*shard, now.saturating_sub(base))
            })
            .collect()
    }
}

/// The values at quantiles `qs` of (bucket, count) pairs sorted by
/// bucket, as the highest value of the bucket holding each.
fn quantiles<const N: usize>(pairs: &[(u16, u64)], qs: [f64; N]) -> [u64; N] {
    let total: u64 = pairs.iter().map(|(_, n)| *n).sum();
    let mut out = [0; N];
    if total == 0 {
        return out;
    }
    for (q, slot) in qs.iter().zip(out.iter_mut()) {
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (b, n) in pairs {
            seen += *n;
            if seen >= rank {
                *slot = Coarse::highest(*b);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::snapshot::{OutcomeDelta, RouteDelta, ShardLevel};
    use crate::metrics::CAUSES;

    #[test]
    fn coarse_buckets_are_contiguous_and_close() {
        let mut last = 0;
        for v in 0..200_000u64 {
            let i = Coarse::index(v);
            assert!(i == last || i == last + 1, "{v}: {i} after {last}");
            last = i;
            let hi = Coarse::highest(i);
            assert!(hi >= v, "{v} in bucket {i} up to {hi}");
            assert!(hi as f64 <= v as f64 * 1.032 + 1.0, "{v}: {hi}");
        }
        assert!(Coarse::index(u64::MAX) < 1024);
        assert!(Coarse::highest(Coarse::index(3_600_000_000)) >= 3_600_000_000);
    }

    fn delta(key: &Arc<str>, status: u16, us: &[(u64, u64)]) -> RouteDelta {
        let requests = us.iter().map(|(_, n)| n).sum();
        RouteDelta {
            key: key.clone(),
            outcomes: vec![OutcomeDelta {
                protocol: 0,
                method: 0,
                status,
                requests,
                bytes_in: 0,
                bytes_out: 0,
                in_sizes: [0; 11],
                out_sizes: [0; 11],
                request_us: us.to_vec(),
                request_us_sum: 0,
                upstream_us: vec![],
                upstream_us_sum: 0,
            }],
            in_flight: 0,
            errors: [0; CAUSES],
            mirrors: [0; 4],
            connect_us: vec![],
            connect_us_sum: 0,
        }
    }

    fn snap(shard: usize, accepted: u64, routes: Vec<RouteDelta>) -> ShardSnapshot {
        ShardSnapshot {
            shard,
            routes,
            level: ShardLevel {
                accepted,
                ..ShardLevel::default()
            },
        }
    }

    #[test]
    fn the_window_sums_recent_slots_and_forgets_old_ones() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let key: Arc<str> = "r".into();
        let gone: Arc<str> = "gone".into();
        let live: HashSet<&str> = ["r"].into_iter().collect();
        let mut w = Window::new(Duration::from_secs(10), t0);
        // Second 1: 100 fast requests on shard 0, one 500 on shard 1.
        w.add(
            &[
                snap(
                    0,
                    5,
                    vec![
                        delta(&key, 200, &[(1000, 100)]),
                        delta(&gone, 200, &[(1, 1)]),
                    ],
                ),
                snap(1, 2, vec![delta(&key, 500, &[(1000, 1)])]),
            ],
            &live,
            at(1),
        );
        let r = w.route("r").expect("r");
        assert_eq!((r.requests, r.errors), (101, 1));
        assert!((1000..=1032).contains(&r.quantiles[1]), "{r:?}");
        assert_eq!(w.len(), 1, "routes not live are left out");
        assert_eq!(w.span(), Duration::from_secs(1));
        // Second 5: slow ones make the p99.
        w.add(
            &[snap(0, 9, vec![delta(&key, 200, &[(250_000, 10)])])],
            &live,
            at(5),
        );
        let r = w.route("r").expect("r");
        assert_eq!(r.requests, 111);
        assert!((250_000..=258_000).contains(&r.quantiles[1]), "{r:?}");
        assert!(r.quantiles[0] <= 1032, "{r:?}");
        assert_eq!(w.shard_requests(), BTreeMap::from([(0, 110), (1, 1)]));
        assert_eq!(w.shard_accepted(), BTreeMap::from([(0, 9), (1, 2)]));
        // Second 5.5 shares the slot of second 5.
        w.add(
            &[snap(0, 9, vec![])],
            &live,
            at(5) + Duration::from_millis(500),
        );
        assert_eq!(w.slots.len(), 2);
        // Second 13: the first slot (0..1 s) has left the window; the
        // window runs from 1 s (where the second slot starts) to 13 s.
        w.add(
            &[snap(0, 12, vec![delta(&key, 200, &[(2000, 1)])])],
            &live,
            at(13),
        );
        let r = w.route("r").expect("r");
        assert_eq!((r.requests, r.errors), (11, 0));
        assert!(r.quantiles[0] >= 250_000, "10 of 11 are slow: {r:?}");
        assert_eq!(w.span(), Duration::from_secs(12));
        assert_eq!(w.shard_accepted()[&0], 12 - 5);
        // Much later: only the last slot, which covers since 13 s.
        w.add(&[snap(0, 12, vec![])], &live, at(60));
        assert!(w.is_empty() && w.route("r").is_none(), "{:?}", w.sums);
        assert_eq!(w.span(), Duration::from_secs(47));
    }

    #[test]
    fn quantiles_of_pairs() {
        let pairs = [
            (Coarse::index(10), 98),
            (Coarse::index(5000), 1),
            (Coarse::index(90_000), 1),
        ];
        let [p50, p99, p999] = quantiles(&pairs, [0.5, 0.99, 0.999]);
        assert_eq!(p50, 10);
        assert!((5000..5200).contains(&p99));
        assert!((90_000..93_000).contains(&p999));
        assert_eq!(quantiles(&[], [0.5]), [0]);
    }
}
