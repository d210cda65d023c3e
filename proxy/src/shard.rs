//! One shard's state: its live route table, upstream pool, statistics and
//! request ids. Everything here is touched by its own thread only; the
//! thread itself is [`crate::accept`].

use crate::access_log::ShardLog;
use crate::balance::least_request::Rng;
use crate::balance::outlier::Outliers;
use crate::balance::{Backend, BackendState};
use crate::config::ProxyConfig;
use crate::drain::DrainSignal;
use crate::metrics::route::RouteStats;
use crate::metrics::shard::ShardMetrics;
use crate::metrics::snapshot::{ShardLevel, ShardSnapshot};
use crate::router::RouteTable;
use crate::tls::TlsTable;
use crate::upstream::pool::Pool;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A route table as one shard uses it: the shared immutable table plus this
/// shard's balancing state for it.
#[derive(Debug)]
pub struct LocalTable {
    /// Its generation, as reported to /readyz once live here.
    pub generation: u64,
    /// The compiled table (shared read-only by all shards).
    pub routes: Arc<RouteTable>,
    /// Balancing state per backend, this shard's own.
    pub states: Box<[crate::balance::BackendState]>,
    /// Statistics per route, this shard's own (same order as the routes).
    pub stats: Box<[Rc<RouteStats>]>,
    /// Certificates for handshakes accepted while this table is live.
    pub tls: Option<Arc<TlsTable>>,
}

/// State of one shard.
#[derive(Debug)]
pub struct Shard {
    /// Which shard (0-based, the `shard` label).
    pub id: usize,
    /// Limits and timeouts, shared by every shard and fixed at start.
    pub cfg: Arc<ProxyConfig>,
    /// Port of the first TLS listener, where HTTPS redirects point.
    pub tls_port: Option<u16>,
    /// Idle upstream connections.
    pub pool: Pool,
    /// Endpoints failing lately, and those ejected from the picks.
    pub outliers: Outliers,
    /// Tells the other shards of this one's ejections.
    pub gossip: crate::control::Gossip,
    /// Fires once, when SIGTERM (or a closed control channel) starts the drain.
    pub drain: DrainSignal,
    /// This shard's own generator for power-of-two choices (no cross-core state).
    pub rng: Rng,
    /// Route and shard counters, handed to the admin thread as deltas.
    pub metrics: ShardMetrics,
    /// The access log, when enabled.
    pub access_log: Option<ShardLog>,
    /// Span batches for the OTLP exporter, with `--otlp-endpoint`.
    pub otel: Option<crate::otel::ShardSpans>,
    /// The TCP and UDP service sockets this shard serves.
    pub l4_ports: crate::l4::tcp::Ports,
    /// Their counters.
    pub l4_stats: crate::metrics::l4::L4Stats,
    /// Joins established L4 flows in the kernel, when it can.
    pub splicer: Option<crate::l4::splice::ShardSplicer>,
    table: RefCell<Option<Rc<LocalTable>>>,
    id_prefix: u64,
    id_counter: Cell<u64>,
    open: Cell<usize>,
    /// Mirrored requests in flight (`exchange::mirror`).
    pub mirrors: Cell<usize>,
}

impl Shard {
    /// A shard with no table yet. `tls_port`: the first TLS listener's
    /// port, where HTTPS redirects point. `seed` makes its request ids and
    /// balancing choices its own.
    pub fn new(
        id: usize,
        cfg: Arc<ProxyConfig>,
        tls_port: Option<u16>,
        seed: u64,
        access_log: Option<ShardLog>,
    ) -> Shard {
        Shard {
            id,
            pool: Pool::new(cfg.upstream_max_idle, cfg.upstream_idle_timeout),
            outliers: Outliers::new(cfg.outliers),
            gossip: crate::control::Gossip::default(),
            cfg,
            tls_port,
            drain: DrainSignal::default(),
            rng: Rng::new(seed),
            metrics: ShardMetrics::default(),
            access_log,
            otel: None,
            l4_ports: Default::default(),
            l4_stats: Default::default(),
            splicer: None,
            table: RefCell::new(None),
            id_prefix: seed,
            id_counter: Cell::new(0),
            open: Cell::new(0),
            mirrors: Cell::new(0),
        }
    }

    /// `endpoint` of `backend` failed a request (outlier ejection); an
    /// ejection it causes is told to the other shards.
    pub fn endpoint_failed(&self, backend: &Backend, endpoint: usize) {
        if let Some((addr, until)) = self.outliers.failed(backend, endpoint) {
            self.gossip.ejected(addr, until);
        }
    }

    /// `endpoint` of `backend` answered `status` (a gateway failure counts
    /// as a failure).
    #[inline]
    pub fn endpoint_answered(&self, backend: &Backend, endpoint: usize, status: u16) {
        if let Some((addr, until)) = self.outliers.answered(backend, endpoint, status) {
            self.gossip.ejected(addr, until);
        }
    }

    /// Another shard ejected `addr`: left out here too, as far as the
    /// share of every backend of the live table that has it allows.
    pub fn adopt_ejection(&self, addr: std::net::SocketAddr, until: std::time::Instant) {
        let Some(table) = self.table() else { return };
        let backends = table.routes.backends().iter();
        let serving = backends.filter(|b| b.endpoints.iter().any(|e| e.addr == addr));
        self.outliers.adopt(serving, addr, until);
    }

    /// Counts a client connection as open until the guard is dropped.
    pub fn opened(shard: &Rc<Shard>) -> OpenGuard {
        shard.open.set(shard.open.get() + 1);
        OpenGuard(shard.clone())
    }

    /// The periodic chores: flush the access log, and once a second close
    /// idle upstream connections past their timeout.
    pub fn tick(&self, last_eviction: &mut Instant) {
        if let Some(log) = &self.access_log {
            log.flush();
        }
        if let Some(spans) = &self.otel {
            spans.flush();
        }
        if last_eviction.elapsed() > Duration::from_secs(1) {
            self.pool.evict_expired();
            *last_eviction = Instant::now();
        }
    }

    /// Access-log lines wait in the shard's batch.
    pub fn has_buffered_log(&self) -> bool {
        self.access_log.as_ref().is_some_and(ShardLog::has_lines)
            || self
                .otel
                .as_ref()
                .is_some_and(crate::otel::ShardSpans::has_spans)
    }

    /// The live table; requests hold the `Rc` so a swap never affects them.
    #[inline]
    pub fn table(&self) -> Option<Rc<LocalTable>> {
        self.table.borrow().clone()
    }

    /// Makes `routes` the live table; requests in flight keep theirs.
    pub(crate) fn swap(
        &self,
        routes: Arc<RouteTable>,
        tls: Option<Arc<TlsTable>>,
        generation: u64,
    ) {
        let start = self.id;
        let states = routes
            .backends()
            .iter()
            .map(|b| BackendState::new(b, start))
            .collect();
        let stats = self.metrics.for_table(&routes);
        self.l4_ports.retain(&routes);
        *self.table.borrow_mut() = Some(Rc::new(LocalTable {
            generation,
            routes,
            states,
            stats,
            tls,
        }));
    }

    /// A new request id: 32 hex digits, unique per process start and shard.
    #[inline]
    pub fn next_request_id(&self, out: &mut [u8; 32]) {
        let n = self.id_counter.get().wrapping_add(1);
        self.id_counter.set(n);
        hex(self.id_prefix, &mut out[..16]);
        hex(n, &mut out[16..]);
    }

    /// Number of open client connections.
    pub fn open_connections(&self) -> usize {
        self.open.get()
    }

    /// Statistics since the previous snapshot, for the admin thread.
    pub fn snapshot(&self) -> ShardSnapshot {
        ShardSnapshot {
            shard: self.id,
            routes: self.metrics.take_route_deltas(),
            level: ShardLevel {
                generation: self.table.borrow().as_ref().map_or(0, |t| t.generation),
                open_connections: self.open.get() as u64,
                accepted: self.metrics.accepted_total(),
                accept_errors: self.metrics.accept_error_totals(),
                tls_handshakes: self.metrics.handshake_totals(),
                tls_resumed: self.metrics.resumed_total(),
                h2: self.metrics.h2_totals(),
                unrouted: self.metrics.unrouted_totals(),
                pool: self.pool.gauges(),
                ejections: self.outliers.ejections_total(),
                retries: self.metrics.retry_totals(),
                retried: self.metrics.retries_by_reason(),
                ejected: self.outliers.ejected_now(),
                access_log_dropped: self.access_log.as_ref().map_or(0, ShardLog::dropped),
                otel_spans_dropped: self
                    .otel
                    .as_ref()
                    .map_or(0, crate::otel::ShardSpans::dropped),
                l4: self.l4_stats.totals(),
                hellos: self.l4_stats.hello_totals(),
            },
        }
    }
}

fn hex(v: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().enumerate().take(16) {
        *o = DIGITS[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// Counts a client connection as open until dropped.
#[derive(Debug)]
pub struct OpenGuard(Rc<Shard>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
    }
}
