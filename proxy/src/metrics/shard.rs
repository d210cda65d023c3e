//! One shard's statistics: the per-route stats of the live table (kept
//! across swaps by route identity), the list of routes touched since the
//! last snapshot, and shard-level counters.

use super::route::RouteStats;
use super::snapshot::RouteDelta;
// `AcceptError` is defined beside the other label enums; the shard counts it.
pub use super::AcceptError;
use super::{Cause, CAUSES, HANDSHAKE_RESULTS};
use crate::router::RouteTable;
use crate::tls::acceptor::Handshake;
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

/// Statistics of one shard.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    routes: RefCell<FxHashMap<Arc<str>, Rc<RouteStats>>>,
    dirty: RefCell<Vec<Rc<RouteStats>>>,
    /// Routes of the previous snapshot: those idle since lose their
    /// histograms at the next one.
    previous: RefCell<Vec<Rc<RouteStats>>>,
    accepted: Cell<u64>,
    unrouted: [Cell<u64>; CAUSES],
    handshakes: [Cell<u64>; HANDSHAKE_RESULTS],
    resumed: Cell<u64>,
    h2_connections: Cell<u64>,
    h2_streams: Cell<u64>,
    h2_malformed: Cell<u64>,
    h2_premature: Cell<u64>,
    resent: Cell<u64>,
    budget_exhausted: Cell<u64>,
    retried: [Cell<u64>; crate::error::RETRY_REASONS.len()],
    h2_abusive: Cell<u64>,
    accept_errors: [Cell<u64>; AcceptError::ALL.len()],
}

impl ShardMetrics {
    /// Stats for every route of a new table, in route order: a route that
    /// was already in the previous table keeps its statistics.
    pub fn for_table(&self, table: &RouteTable) -> Box<[Rc<RouteStats>]> {
        let mut old = self.routes.borrow_mut();
        let mut next = FxHashMap::default();
        let stats: Box<[Rc<RouteStats>]> = table
            .routes()
            .iter()
            .map(|r| {
                let s = old
                    .remove(&r.key)
                    .unwrap_or_else(|| Rc::new(RouteStats::new(r.key.clone())));
                next.insert(r.key.clone(), s.clone());
                s
            })
            .collect();
        *old = next;
        stats
    }

    /// Marks a route as changed since the last snapshot.
    #[inline]
    pub fn touch(&self, stats: &Rc<RouteStats>) {
        if !stats.dirty.replace(true) {
            self.dirty.borrow_mut().push(stats.clone());
        }
    }

    /// Counts an accepted connection.
    #[inline]
    pub fn accepted(&self) {
        self.accepted.set(self.accepted.get() + 1);
    }

    /// Counts a client connection that speaks HTTP/2.
    #[inline]
    pub fn h2_connection(&self) {
        self.h2_connections.set(self.h2_connections.get() + 1);
    }

    /// Counts an HTTP/2 stream accepted.
    #[inline]
    pub fn h2_stream(&self) {
        self.h2_streams.set(self.h2_streams.get() + 1);
    }

    /// Counts an HTTP/2 stream reset as malformed.
    #[inline]
    pub fn h2_malformed(&self) {
        self.h2_malformed.set(self.h2_malformed.get() + 1);
    }

    /// Counts a request sent again to another endpoint.
    #[inline]
    pub fn upstream_resent(&self) {
        self.resent.set(self.resent.get() + 1);
    }

    /// Counts a resend the retry budget refused.
    #[inline]
    pub fn retry_budget_exhausted(&self) {
        self.budget_exhausted.set(self.budget_exhausted.get() + 1);
    }

    /// Counts a retry on another endpoint, by its index in
    /// [`crate::error::RETRY_REASONS`].
    #[inline]
    pub fn upstream_retried(&self, reason: usize) {
        if let Some(c) = self.retried.get(reason) {
            c.set(c.get() + 1);
        }
    }

    /// Retries by reason so far.
    pub fn retries_by_reason(&self) -> [u64; crate::error::RETRY_REASONS.len()] {
        std::array::from_fn(|i| self.retried[i].get())
    }

    /// Resends, and resends refused by the budget, so far.
    pub fn retry_totals(&self) -> [u64; 2] {
        [self.resent.get(), self.budget_exhausted.get()]
    }

    /// Counts an HTTP/2 stream the client reset before its answer ended.
    #[inline]
    pub fn h2_premature_reset(&self) {
        self.h2_premature.set(self.h2_premature.get() + 1);
    }

    /// Counts an HTTP/2 connection closed with GOAWAY for abuse.
    #[inline]
    pub fn h2_abusive(&self) {
        self.h2_abusive.set(self.h2_abusive.get() + 1);
    }

    /// HTTP/2 connections, streams, malformed streams, premature resets
    /// and connections closed for abuse so far.
    pub fn h2_totals(&self) -> [u64; 5] {
        [
            self.h2_connections.get(),
            self.h2_streams.get(),
            self.h2_malformed.get(),
            self.h2_premature.get(),
            self.h2_abusive.get(),
        ]
    }

    /// Counts a failure that happened before a route was chosen.
    #[inline]
    pub fn unrouted_error(&self, cause: Cause) {
        let cell = &self.unrouted[cause.index()];
        cell.set(cell.get() + 1);
    }

    /// Counts a TLS handshake by how it ended.
    #[inline]
    pub fn handshake(&self, result: Handshake) {
        let cell = &self.handshakes[result.index()];
        cell.set(cell.get() + 1);
    }

    /// Counts a completed TLS handshake; `resumed` when it resumed a session.
    #[inline]
    pub fn handshake_ok(&self, resumed: bool) {
        self.handshake(Handshake::Ok);
        if resumed {
            self.resumed.set(self.resumed.get() + 1);
        }
    }

    /// Completed handshakes that resumed a session (cumulative).
    pub fn resumed_total(&self) -> u64 {
        self.resumed.get()
    }

    /// TLS handshakes by result (cumulative).
    pub fn handshake_totals(&self) -> [u64; HANDSHAKE_RESULTS] {
        std::array::from_fn(|i| self.handshakes[i].get())
    }

    /// Counts a failed accept.
    pub fn accept_error(&self, kind: AcceptError) {
        let cell = &self.accept_errors[kind as usize];
        cell.set(cell.get() + 1);
    }

    /// Failed accepts by kind (cumulative), in [`AcceptError::ALL`] order.
    pub fn accept_error_totals(&self) -> [u64; AcceptError::ALL.len()] {
        std::array::from_fn(|i| self.accept_errors[i].get())
    }

    /// Connections accepted so far.
    pub fn accepted_total(&self) -> u64 {
        self.accepted.get()
    }

    /// Failures before routing, by cause (cumulative).
    pub fn unrouted_totals(&self) -> [u64; CAUSES] {
        std::array::from_fn(|i| self.unrouted[i].get())
    }

    /// Takes the deltas of every route touched since the last call.
    ///
    /// A route busy in the previous interval but idle in this one gives
    /// its histograms back (about 40 KiB per route and shard): memory
    /// follows the routes in use, not every route ever touched. One that
    /// wakes up allocates them again on its next request.
    pub fn take_route_deltas(&self) -> Vec<RouteDelta> {
        let dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        let previous = self.previous.replace(Vec::new());
        for stats in &previous {
            if !stats.dirty.get() {
                stats.release_histograms();
            }
        }
        let deltas = dirty.iter().map(|s| RouteDelta::take(s)).collect();
        *self.previous.borrow_mut() = dirty;
        deltas
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(m: &ShardMetrics, s: &Rc<RouteStats>, us: u64) {
        m.touch(s);
        s.begin();
        s.end(0, 0, 200, 10, 20, us, Some(us / 2));
    }

    #[test]
    fn idle_routes_give_their_histograms_back() {
        let m = ShardMetrics::default();
        let busy = Rc::new(RouteStats::new("busy".into()));
        let idle = Rc::new(RouteStats::new("idle".into()));
        request(&m, &busy, 100);
        request(&m, &idle, 100);
        assert_eq!(m.take_route_deltas().len(), 2);
        // Both were busy in the last interval: histograms stay for reuse.
        assert!(busy.holds_histograms() && idle.holds_histograms());
        request(&m, &busy, 300);
        let deltas = m.take_route_deltas();
        assert_eq!(deltas.len(), 1);
        let pairs = &deltas[0].outcomes[0].request_us;
        assert_eq!(pairs.iter().map(|(_, n)| n).sum::<u64>(), 1);
        assert!(busy.holds_histograms());
        assert!(
            !idle.holds_histograms(),
            "an idle route kept its histograms"
        );
        // Waking up records again, from a fresh histogram.
        request(&m, &idle, 50);
        let deltas = m.take_route_deltas();
        let woke = deltas.iter().find(|d| &*d.key == "idle").unwrap();
        assert_eq!(woke.outcomes[0].request_us.len(), 1);
        assert_eq!(woke.outcomes[0].request_us_sum, 50);
    }
}
