//! One shard per CPU: its listener, accept loop, live route table, upstream
//! pool and request ids. Everything here is touched by one thread only.

use crate::access_log::ShardLog;
use crate::balance::least_request::Rng;
use crate::balance::BackendState;
use crate::config::ProxyConfig;
use crate::conn;
use crate::control::{Readiness, ShardMsg};
use crate::drain::DrainSignal;
use crate::metrics::route::RouteStats;
use crate::metrics::shard::{AcceptError, ShardMetrics};
use crate::metrics::snapshot::{ShardLevel, ShardSnapshot};
use crate::router::RouteTable;
use crate::rt::{self, TcpListener, TcpStream};
use crate::stream::ClientStream;
use crate::tls::acceptor::{self, Handshake};
use crate::tls::TlsTable;
use crate::upstream::pool::Pool;
use crossbeam_channel::{Receiver, TryRecvError};
use futures_lite::future;
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a shard looks for a new table or a drain order. Swaps are
/// rare; a short poll keeps the control channel free of wake-up plumbing.
const CONTROL_POLL: Duration = Duration::from_millis(10);

/// A route table as one shard uses it: the shared immutable table plus this
/// shard's balancing state for it.
#[derive(Debug)]
pub struct LocalTable {
    /// Generation number.
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
    /// Shard index.
    pub id: usize,
    /// Settings.
    pub cfg: Arc<ProxyConfig>,
    /// Port clients connect to for plain HTTP.
    pub listen_port: u16,
    /// Port of the first TLS listener, where HTTPS redirects point.
    pub tls_port: Option<u16>,
    /// Idle upstream connections.
    pub pool: Pool,
    /// Set when the shard drains.
    pub drain: DrainSignal,
    /// Randomness for balancing.
    pub rng: Rng,
    /// Statistics.
    pub metrics: ShardMetrics,
    /// The access log, when enabled.
    pub access_log: Option<ShardLog>,
    table: RefCell<Option<Rc<LocalTable>>>,
    id_prefix: u64,
    id_counter: Cell<u64>,
    open: Cell<usize>,
}

impl Shard {
    /// The live table; requests hold the `Rc` so a swap never affects them.
    #[inline]
    pub fn table(&self) -> Option<Rc<LocalTable>> {
        self.table.borrow().clone()
    }

    fn swap(&self, routes: Arc<RouteTable>, tls: Option<Arc<TlsTable>>, generation: u64) {
        let start = self.id;
        let states = routes
            .backends()
            .iter()
            .map(|b| BackendState::new(b, start))
            .collect();
        let stats = self.metrics.for_table(&routes);
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
                unrouted: self.metrics.unrouted_totals(),
                pool: self.pool.gauges(),
                access_log_dropped: self.access_log.as_ref().map_or(0, ShardLog::dropped),
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

/// Everything a shard thread needs to start.
#[derive(Debug)]
pub struct ShardSpec {
    /// Shard index.
    pub id: usize,
    /// CPU to pin to.
    pub cpu: usize,
    /// Its own bound, listening SO_REUSEPORT socket.
    pub listener: socket2::Socket,
    /// Its own sockets on each `--listen-tls` address, in flag order.
    pub tls_listeners: Vec<socket2::Socket>,
    /// Tables and drain orders from the control thread.
    pub control: Receiver<ShardMsg>,
    /// Where to report the live generation.
    pub readiness: Arc<Readiness>,
    /// Settings.
    pub cfg: Arc<ProxyConfig>,
    /// Where access-log batches go, when the access log is on.
    pub access_log: Option<crossbeam_channel::Sender<Vec<u8>>>,
}

/// Starts the shard's pinned executor.
pub fn start(spec: ShardSpec) -> io::Result<std::thread::JoinHandle<()>> {
    let name = format!("rauta-shard-{}", spec.id);
    rt::spawn_pinned(spec.cpu, &name, move || run(spec))
}

fn port_of(socket: &socket2::Socket) -> u16 {
    socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map_or(0, |a| a.port())
}

async fn run(spec: ShardSpec) {
    let listen_port = port_of(&spec.listener);
    let tls_port = spec.tls_listeners.first().map(port_of);
    let seed = xxhash_rust::xxh3::xxh3_64(
        format!("{:?}{}{}", Instant::now(), std::process::id(), spec.id).as_bytes(),
    );
    let shard = Rc::new(Shard {
        id: spec.id,
        cfg: spec.cfg.clone(),
        listen_port,
        tls_port,
        pool: Pool::new(spec.cfg.upstream_max_idle, spec.cfg.upstream_idle_timeout),
        drain: DrainSignal::default(),
        rng: Rng::new(seed),
        metrics: ShardMetrics::default(),
        access_log: spec.access_log.map(ShardLog::new),
        table: RefCell::new(None),
        id_prefix: seed,
        id_counter: Cell::new(0),
        open: Cell::new(0),
    });
    rt::spawn_local(control_loop(shard.clone(), spec.control, spec.readiness)).detach();
    let permits = Rc::new(rt::Semaphore::new(
        shard.cfg.max_connections_per_shard as u64,
    ));
    let plain = (Kind::Plain { port: listen_port }, spec.listener);
    let tls = spec.tls_listeners.into_iter().map(|socket| {
        (
            Kind::Tls {
                port: port_of(&socket),
            },
            socket,
        )
    });
    let listeners: io::Result<Vec<(Kind, TcpListener)>> = std::iter::once(plain)
        .chain(tls)
        .map(|(kind, socket)| Ok((kind, rt::listener_from_socket(socket)?)))
        .collect();
    let mut listeners = match listeners {
        Ok(l) => l.into_iter(),
        Err(e) => {
            // The shard never reports ready, so /readyz shows it.
            tracing::error!(shard = spec.id, error = %e, "shard listeners unusable");
            return;
        }
    };
    let Some((kind, listener)) = listeners.next() else {
        return;
    };
    let tls_loops: Vec<_> = listeners
        .map(|(kind, listener)| {
            rt::spawn_local(accept_loop(shard.clone(), listener, kind, permits.clone()))
        })
        .collect();
    // Each loop closes its listener when it ends: new connections go to
    // other processes (a rolling update's new pod) or are refused, never
    // half-served.
    accept_loop(shard.clone(), listener, kind, permits).await;
    for task in tls_loops {
        task.await;
    }
    let deadline = Instant::now() + shard.cfg.drain_timeout;
    while shard.open_connections() > 0 && Instant::now() < deadline {
        rt::sleep(CONTROL_POLL).await;
    }
    if let Some(log) = &shard.access_log {
        log.flush();
    }
    if shard.open_connections() > 0 {
        tracing::warn!(
            shard = shard.id,
            open = shard.open_connections(),
            "drain timeout: closing remaining connections"
        );
    }
}

/// Pause of an accept loop after a failure that is not transient.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// At most one warning per shard and interval about failing accepts.
const ACCEPT_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// What a listener serves.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Plain HTTP on `port`.
    Plain { port: u16 },
    /// HTTPS on `port`: a TLS handshake first.
    Tls { port: u16 },
}

async fn accept_loop(
    shard: Rc<Shard>,
    listener: TcpListener,
    kind: Kind,
    permits: Rc<rt::Semaphore>,
) {
    let shard = &shard;
    let mut last_warning: Option<Instant> = None;
    let mut failures_since_warning = 0u64;
    loop {
        let permit = future::or(async { Some(permits.acquire(1).await) }, async {
            shard.drain.wait().await;
            None
        })
        .await;
        let Some(permit) = permit else { return };
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            shard.drain.wait().await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok(stream)) => {
                shard.metrics.accepted();
                shard.open.set(shard.open.get() + 1);
                let guard = OpenGuard(shard.clone());
                let shard = shard.clone();
                rt::spawn_local(async move {
                    match kind {
                        Kind::Plain { port } => {
                            conn::serve(&shard, ClientStream::Plain(stream), port).await
                        }
                        Kind::Tls { port } => {
                            if let Some(tls) = handshake(&shard, stream).await {
                                conn::serve(&shard, tls, port).await;
                            }
                        }
                    }
                    drop(guard);
                    drop(permit);
                })
                .detach();
            }
            Some(Err(e)) => {
                drop(permit);
                let kind = AcceptError::of(&e);
                shard.metrics.accept_error(kind);
                if kind == AcceptError::Transient {
                    // A connection that died in the backlog: accept(2)
                    // says to take the next one at once.
                    tracing::debug!(shard = shard.id, error = %e, "accept: connection lost in the backlog");
                    continue;
                }
                // Out of descriptors or memory: back off instead of
                // spinning, and say so once per interval, not per failure.
                let now = Instant::now();
                if last_warning.is_none_or(|t| now.duration_since(t) >= ACCEPT_WARN_INTERVAL) {
                    tracing::warn!(
                        shard = shard.id,
                        error = %e,
                        failures_since_last = failures_since_warning + 1,
                        "accept failing; backing off (rauta_accept_errors_total counts every failure)"
                    );
                    last_warning = Some(now);
                    failures_since_warning = 0;
                } else {
                    failures_since_warning += 1;
                }
                rt::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// The TLS handshake with the certificates of the table live at accept
/// time, counted by result; `None` when it failed (the connection closes).
async fn handshake(shard: &Shard, stream: TcpStream) -> Option<ClientStream> {
    let tls = shard.table().and_then(|t| t.tls.clone());
    let result = match tls {
        Some(tls) => acceptor::accept(&tls, stream, shard.cfg.tls_handshake_timeout).await,
        None => Err(Handshake::NotReady),
    };
    match &result {
        Ok(stream) => shard.metrics.handshake_ok(acceptor::resumed(stream)),
        Err(failed) => shard.metrics.handshake(*failed),
    }
    result.ok().map(ClientStream::tls)
}

async fn control_loop(shard: Rc<Shard>, control: Receiver<ShardMsg>, readiness: Arc<Readiness>) {
    let mut last_eviction = Instant::now();
    loop {
        loop {
            match control.try_recv() {
                Ok(ShardMsg::Table(routes, tls, generation)) => {
                    shard.swap(routes, tls, generation);
                    readiness.set(shard.id, generation);
                    tracing::debug!(shard = shard.id, generation, "route table swapped");
                }
                Ok(ShardMsg::Snapshot(reply)) => {
                    // The admin thread may have given up waiting; nothing to do then.
                    let _ = reply.send(shard.snapshot());
                }
                // Keep answering snapshots and flushing logs while draining.
                Ok(ShardMsg::Drain) | Err(TryRecvError::Disconnected)
                    if !shard.drain.is_draining() =>
                {
                    shard.drain.start();
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) | Ok(ShardMsg::Drain) => {
                    break
                }
            }
        }
        if let Some(log) = &shard.access_log {
            log.flush();
        }
        if last_eviction.elapsed() > Duration::from_secs(1) {
            shard.pool.evict_expired();
            last_eviction = Instant::now();
        }
        rt::sleep(CONTROL_POLL).await;
    }
}
