//! A shard's idle keep-alive connections, per endpoint address. Shard-local:
//! no locks; most-recently-used first so that warm connections are reused
//! and cold ones age out.

use super::UpStream;
use crate::rt;
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Idle time after which a pooled connection is checked before reuse.
const VERIFY_AFTER: Duration = Duration::from_millis(500);

#[derive(Debug)]
struct Idle {
    stream: UpStream,
    since: Instant,
}

/// Idle connections are kept per endpoint and TLS settings (0: plain TCP;
/// else [`crate::tls::client::ClientTls::id`]).
type Key = (SocketAddr, u64);

/// One connection counted as active in its pool (see [`Pool::checkout`]).
#[derive(Debug)]
pub struct Active<'p> {
    pool: &'p Pool,
    addr: SocketAddr,
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        if let Some(n) = self.pool.active.borrow_mut().get_mut(&self.addr) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Idle upstream connections of one shard.
#[derive(Debug)]
pub struct Pool {
    idle: RefCell<FxHashMap<Key, Vec<Idle>>>,
    /// HTTP/2 connections to gRPC endpoints (shared by calls, not idle ones).
    h2: super::h2::H2Conns,
    active: RefCell<FxHashMap<SocketAddr, u64>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl Pool {
    /// A pool keeping at most `max_idle` connections per endpoint, each for
    /// at most `idle_timeout`.
    pub fn new(max_idle: usize, idle_timeout: Duration) -> Pool {
        Pool {
            idle: RefCell::default(),
            h2: Default::default(),
            active: RefCell::default(),
            max_idle,
            idle_timeout,
        }
    }

    /// The most recently returned live connection to `addr`, if any.
    ///
    /// Checking that the upstream has not closed it costs a syscall, so it
    /// is done only when a failure could not be retried (`must_verify`: the
    /// request has a body) or when the connection sat idle long enough for
    /// an upstream keep-alive timeout to have struck. A hot connection that
    /// turns out dead is retried by the caller when that is safe.
    pub fn take(&self, addr: SocketAddr, tls: u64, must_verify: bool) -> Option<UpStream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&(addr, tls))?;
        while let Some(mut conn) = list.pop() {
            let age = conn.since.elapsed();
            if age >= self.idle_timeout {
                continue;
            }
            let dead = |s: &mut UpStream| s.tcp().is_none_or(|t| rt::idle_is_dead(t));
            if (must_verify || age >= VERIFY_AFTER) && dead(&mut conn.stream) {
                continue;
            }
            return Some(conn.stream);
        }
        None
    }

    /// A call on an HTTP/2 connection to `addr` (see [`super::h2::H2Conns::call`]).
    pub async fn h2_call(
        &self,
        addr: SocketAddr,
        tls: Option<&crate::tls::client::ClientTls>,
        policy: &super::ConnectPolicy,
        fresh: bool,
    ) -> std::io::Result<(super::h2::H2Call, bool)> {
        self.h2
            .call(addr, tls, policy, self.idle_timeout, fresh)
            .await
    }

    /// Takes back a connection that finished an exchange cleanly (an
    /// HTTP/2 call just ends: its connection stays with its other calls).
    pub fn put(&self, up: super::Upstream<'_>) {
        if self.max_idle == 0 || matches!(up.stream, UpStream::H2(_)) {
            return;
        }
        let (key, stream) = ((up.addr, up.tls), up.stream);
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(key).or_default();
        if list.len() >= self.max_idle {
            // Drop the coldest one: it is the most likely to be stale.
            list.remove(0);
        }
        list.push(Idle {
            stream,
            since: Instant::now(),
        });
    }

    /// Counts a connection to `addr` as carrying a request while the
    /// returned guard lives.
    #[inline]
    pub(crate) fn checkout(&self, addr: SocketAddr) -> Active<'_> {
        *self.active.borrow_mut().entry(addr).or_default() += 1;
        Active { pool: self, addr }
    }

    /// Idle and active connections per endpoint.
    pub fn gauges(&self) -> Vec<crate::metrics::snapshot::PoolGauge> {
        let idle = self.idle.borrow();
        let active = self.active.borrow();
        let h2 = self.h2.open();
        let mut by_addr: FxHashMap<SocketAddr, u64> = FxHashMap::default();
        for ((addr, _), list) in idle.iter() {
            *by_addr.entry(*addr).or_default() += list.len() as u64;
        }
        let mut endpoints: Vec<SocketAddr> = by_addr
            .keys()
            .chain(active.keys())
            .chain(h2.iter().map(|(a, _)| a))
            .copied()
            .collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        endpoints
            .into_iter()
            .map(|endpoint| crate::metrics::snapshot::PoolGauge {
                endpoint,
                idle: by_addr.get(&endpoint).copied().unwrap_or(0),
                active: active.get(&endpoint).copied().unwrap_or(0),
                h2: h2
                    .iter()
                    .filter(|(a, _)| *a == endpoint)
                    .map(|(_, n)| n)
                    .sum(),
            })
            .collect()
    }

    /// Closes idle connections past their timeout, and forgets HTTP/2
    /// connections that ended (called periodically, so upstreams are not
    /// left holding sockets nobody will use, nor the shard gone pods).
    pub fn evict_expired(&self) {
        self.h2.evict_closed();
        let now = Instant::now();
        let mut idle = self.idle.borrow_mut();
        idle.retain(|_, list| {
            list.retain(|c| now.duration_since(c.since) < self.idle_timeout);
            !list.is_empty()
        });
    }
}
