//! The shard thread: its pinned executor, its listeners and accept loops,
//! the TLS handshake, and a task per client connection ([`conn::run`]).
//! Its state lives in [`crate::shard`]; its control messages arrive
//! through [`crate::control::receive`].

use crate::access_log::ShardLog;
use crate::config::ProxyConfig;
use crate::conn;
use crate::control::{self, Readiness, ShardInbox};
use crate::downstream::ClientStream;
use crate::metrics::AcceptError;
use crate::rt::{self, TcpListener, TcpStream};
use crate::shard::Shard;
use crate::tls::acceptor::{self, Handshake};
use futures_lite::future;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a draining shard checks for connections still open.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// Everything a shard thread needs to start.
#[derive(Debug)]
pub struct ShardSpec {
    /// Which shard (0-based, the `shard` label; also its seed input).
    pub id: usize,
    /// CPU to pin to.
    pub cpu: usize,
    /// Its own bound, listening SO_REUSEPORT socket.
    pub listener: socket2::Socket,
    /// Its own sockets on each `--listen-tls` address, in flag order.
    pub tls_listeners: Vec<socket2::Socket>,
    /// Tables, drain orders and snapshot requests from other threads.
    pub control: ShardInbox,
    /// Where to report the live generation.
    pub readiness: Arc<Readiness>,
    /// Limits and timeouts, shared by every shard and fixed at start.
    pub cfg: Arc<ProxyConfig>,
    /// Where access-log batches go, when the access log is on.
    pub access_log: Option<crossbeam_channel::Sender<Vec<u8>>>,
    /// The tracing settings and where span batches go, with `--otlp-endpoint`.
    pub otel: Option<(
        Arc<crate::otel::OtelConfig>,
        crossbeam_channel::Sender<Vec<crate::otel::Span>>,
    )>,
    /// Its descriptors of the kernel splice's maps, when L4 flows are spliced.
    pub splice: Option<crate::l4::splice::SpliceHandle>,
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
    let mut shard = Shard::new(
        spec.id,
        spec.cfg.clone(),
        tls_port,
        seed,
        spec.access_log.map(ShardLog::new),
    );
    shard.gossip = spec.control.gossip.clone();
    shard.otel = spec
        .otel
        .map(|(cfg, tx)| crate::otel::ShardSpans::new(cfg, tx));
    shard.splicer = spec.splice.map(crate::l4::splice::SpliceHandle::into_shard);
    let shard = Rc::new(shard);
    rt::spawn_local(control::receive(
        shard.clone(),
        spec.control,
        spec.readiness,
    ))
    .detach();
    let permits = Rc::new(rt::Semaphore::new(
        shard.cfg.max_connections_per_shard as u64,
    ));
    shard.l4_ports.share_permits(permits.clone());
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
        rt::sleep(DRAIN_POLL).await;
    }
    if let Some(log) = &shard.access_log {
        log.flush();
    }
    if let Some(spans) = &shard.otel {
        spans.flush();
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
                let guard = Shard::opened(shard);
                let shard = shard.clone();
                rt::spawn_local(async move {
                    match kind {
                        Kind::Plain { port } => {
                            conn::run(&shard, ClientStream::Plain(stream), port).await
                        }
                        Kind::Tls { port } => {
                            let terminate = crate::l4::passthrough::route(&shard, stream).await;
                            if let Some(stream) = terminate {
                                if let Some(tls) = handshake(&shard, stream).await {
                                    conn::run(&shard, tls, port).await;
                                }
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
