//! One route's statistics on one shard: plain cells, no atomics, and
//! latency distributions that grow with what they hold.

use super::latency::Latency;
use super::{CAUSES, METHODS, STATUS_CLASSES};
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// Counters and histograms of one route since the last snapshot (deltas),
/// plus the in-flight gauge (absolute).
#[derive(Debug)]
pub struct RouteStats {
    /// Identity of the route across tables.
    pub key: Arc<str>,
    pub(super) requests: [[Cell<u64>; STATUS_CLASSES.len()]; METHODS.len()],
    pub(super) in_flight: Cell<i64>,
    pub(super) bytes_in: Cell<u64>,
    pub(super) bytes_out: Cell<u64>,
    pub(super) errors: [Cell<u64>; CAUSES],
    pub(super) request_us: RefCell<Latency<u32>>,
    pub(super) request_us_sum: Cell<u64>,
    pub(super) upstream_us: RefCell<Latency<u32>>,
    pub(super) upstream_us_sum: Cell<u64>,
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
            requests: Default::default(),
            in_flight: Cell::new(0),
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            errors: Default::default(),
            request_us: RefCell::default(),
            request_us_sum: Cell::new(0),
            upstream_us: RefCell::default(),
            upstream_us_sum: Cell::new(0),
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
    pub fn end(
        &self,
        method: usize,
        status: u16,
        bytes_in: u64,
        bytes_out: u64,
        total_us: u64,
        upstream_us: Option<u64>,
    ) {
        self.in_flight.set(self.in_flight.get() - 1);
        let cell = &self.requests[method][super::status_index(status)];
        cell.set(cell.get() + 1);
        self.bytes_in.set(self.bytes_in.get() + bytes_in);
        self.bytes_out.set(self.bytes_out.get() + bytes_out);
        record(&self.request_us, &self.request_us_sum, total_us);
        if let Some(us) = upstream_us {
            record(&self.upstream_us, &self.upstream_us_sum, us);
        }
    }

    /// A new upstream connection took `us` to establish.
    #[inline]
    pub fn connected(&self, us: u64) {
        record(&self.connect_us, &self.connect_us_sum, us);
    }

    /// Frees the distributions of a route that went idle (they are
    /// empty: the last snapshot drained them).
    pub fn release_histograms(&self) {
        for hist in [&self.request_us, &self.upstream_us, &self.connect_us] {
            *hist.borrow_mut() = Latency::default();
        }
    }

    /// Whether any distribution holds memory.
    #[cfg(test)]
    pub(crate) fn holds_histograms(&self) -> bool {
        [&self.request_us, &self.upstream_us, &self.connect_us]
            .iter()
            .any(|h| !matches!(&*h.borrow(), Latency::Sparse(p) if p.capacity() == 0))
    }

    /// A request failed for `cause`.
    #[inline]
    pub fn error(&self, cause: super::Cause) {
        let cell = &self.errors[cause.index()];
        cell.set(cell.get() + 1);
    }
}
