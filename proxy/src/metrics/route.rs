//! One route's statistics on one shard: plain cells, no atomics, and
//! latency distributions that grow with what they hold.

use super::latency::Latency;
use super::outcome::Outcome;
use super::CAUSES;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// Counters and histograms of one route since the last snapshot (deltas),
/// plus the in-flight gauge (absolute).
#[derive(Debug)]
pub struct RouteStats {
    /// Identity of the route across tables.
    pub key: Arc<str>,
    /// Ended requests by (protocol, method, status code).
    pub(super) outcomes: RefCell<Vec<Outcome>>,
    pub(super) in_flight: Cell<i64>,
    pub(super) errors: [Cell<u64>; CAUSES],
    /// Mirrored copies by [`super::MirrorResult`].
    pub(super) mirrors: [Cell<u64>; super::MIRROR_RESULTS.len()],
    pub(super) connect_us: RefCell<Latency<u32>>,
    pub(super) connect_us_sum: Cell<u64>,
    /// Already listed in the shard's dirty list.
    pub(super) dirty: Cell<bool>,
}

fn record(hist: &RefCell<Latency<u32>>, sum: &Cell<u64>, us: u64) {
    hist.borrow_mut().record(us);
    sum.set(sum.get().saturating_add(us));
}

impl RouteStats {
    /// Empty statistics for a route.
    pub fn new(key: Arc<str>) -> RouteStats {
        RouteStats {
            key,
            outcomes: RefCell::default(),
            in_flight: Cell::new(0),
            errors: Default::default(),
            mirrors: Default::default(),
            connect_us: RefCell::default(),
            connect_us_sum: Cell::new(0),
            dirty: Cell::new(false),
        }
    }

    /// A request started.
    #[inline]
    pub fn begin(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
    }

    /// A request ended with `status` after `total_us` (head complete to
    /// last byte sent), of which `upstream_us` with the upstream.
    #[inline]
    #[allow(clippy::too_many_arguments)] // one request's figures, recorded at once
    pub fn end(
        &self,
        protocol: u8,
        method: usize,
        status: u16,
        bytes_in: u64,
        bytes_out: u64,
        total_us: u64,
        upstream_us: Option<u64>,
    ) {
        self.in_flight.set(self.in_flight.get() - 1);
        let mut outcomes = self.outcomes.borrow_mut();
        Outcome::slot(&mut outcomes, protocol, method as u8, status).add(
            bytes_in,
            bytes_out,
            total_us,
            upstream_us,
        );
    }

    /// A new upstream connection took `us` to establish.
    #[inline]
    pub fn connected(&self, us: u64) {
        record(&self.connect_us, &self.connect_us_sum, us);
    }

    /// Frees the distributions of a route that went idle (they are
    /// empty: the last snapshot drained them).
    pub fn release_histograms(&self) {
        *self.outcomes.borrow_mut() = Vec::new();
        *self.connect_us.borrow_mut() = Latency::default();
    }

    /// Whether any distribution holds memory.
    #[cfg(test)]
    pub(crate) fn holds_histograms(&self) -> bool {
        self.outcomes.borrow().capacity() > 0
            || !matches!(&*self.connect_us.borrow(), Latency::Sparse(p) if p.capacity() == 0)
    }

    /// A mirrored copy of one of the route's requests ended as `result`.
    pub fn mirrored(&self, result: super::MirrorResult) {
        let cell = &self.mirrors[result as usize];
        cell.set(cell.get() + 1);
    }

    /// A request failed for `cause`.
    #[inline]
    pub fn error(&self, cause: super::Cause) {
        let cell = &self.errors[cause.index()];
        cell.set(cell.get() + 1);
    }
}

#[cfg(test)]
mod cost {
    use super::*;
    use std::time::Instant;

    /// ns per `end` of a steady route (`cargo test --release -p rauta-proxy
    /// --lib end_cost -- --ignored --nocapture`): what the request path pays.
    #[test]
    #[ignore = "a measurement, run by hand in release"]
    fn end_cost() {
        let s = RouteStats::new("r".into());
        let n = 20_000_000u64;
        let start = Instant::now();
        for i in 0..n {
            s.begin();
            let status = if i % 16 == 0 { 404 } else { 200 };
            s.end(
                0,
                (i % 2) as usize,
                status,
                300,
                900,
                150 + i % 300,
                Some(100 + i % 200),
            );
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        println!("RouteStats::end: {ns:.1} ns");
        assert!(s.in_flight.get() == 0);
    }
}
