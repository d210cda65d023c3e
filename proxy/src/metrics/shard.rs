//! One shard's statistics: the per-route stats of the live table (kept
//! across swaps by route identity), the list of routes touched since the
//! last snapshot, and shard-level counters.

use super::route::RouteStats;
use super::snapshot::RouteDelta;
use super::{Cause, CAUSES};
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
    accepted: Cell<u64>,
    unrouted: [Cell<u64>; CAUSES],
    handshakes: [Cell<u64>; HANDSHAKE_RESULTS],
    resumed: Cell<u64>,
}

/// Number of TLS handshake results counted.
pub const HANDSHAKE_RESULTS: usize = Handshake::ALL.len();

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

    /// Connections accepted so far.
    pub fn accepted_total(&self) -> u64 {
        self.accepted.get()
    }

    /// Failures before routing, by cause (cumulative).
    pub fn unrouted_totals(&self) -> [u64; CAUSES] {
        std::array::from_fn(|i| self.unrouted[i].get())
    }

    /// Takes the deltas of every route touched since the last call.
    pub fn take_route_deltas(&self) -> Vec<RouteDelta> {
        let dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        dirty.iter().map(|s| RouteDelta::take(s)).collect()
    }
}
