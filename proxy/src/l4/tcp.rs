//! TCP services on a shard: an accept loop per service port, and per
//! connection: the PROXY header from a load balancer (when the entry asks
//! for it), an endpoint picked by the backend's balancer, connect retries
//! over the others, the PROXY header to the backend (when asked), then the
//! relay ([`super::relay`]) until the flow ends.
//!
//! A table swap leaves flows alone while their service stays; when it goes,
//! its listener closes at once and its flows get `--l4-close-grace`.

use super::proxy_protocol::{self, Header};
use super::relay;
use super::{L4Service, ListenKey};
use crate::balance::maglev::Maglev;
use crate::drain::DrainSignal;
use crate::metrics::AcceptError;
use crate::router::RouteTable;
use crate::rt::{self, TcpListener, TcpStream};
use crate::shard::Shard;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use rauta_shared::config::L4Protocol;
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Pause of an accept loop after a failure that is not transient.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// This shard's open L4 sockets, each with the signal that fires when its
/// service leaves the table.
#[derive(Debug, Default)]
pub struct Ports {
    open: RefCell<FxHashMap<ListenKey, Rc<DrainSignal>>>,
    /// The shard's client connection cap, shared with its HTTP listeners.
    permits: std::cell::OnceCell<Rc<rt::Semaphore>>,
}

impl Ports {
    /// Starts serving `socket` for `key` (a socket the control thread bound
    /// for this shard).
    pub fn listen(shard: &Rc<Shard>, key: ListenKey, socket: socket2::Socket) {
        let closed = Rc::new(DrainSignal::default());
        // A socket for a key already open replaces it (a re-added service).
        if let Some(old) = shard.l4_ports.open.borrow_mut().insert(key, closed.clone()) {
            old.start();
        }
        match key.0 {
            L4Protocol::Tcp => match rt::listener_from_socket(socket) {
                Ok(listener) => {
                    rt::spawn_local(accept_loop(shard.clone(), key, listener, closed)).detach();
                }
                Err(e) => {
                    tracing::error!(shard = shard.id, port = key.1, error = %e, "L4 listener unusable on this shard");
                }
            },
            L4Protocol::Udp => super::udp::serve(shard, key, socket, closed),
        }
    }

    /// Makes TCP service connections count against the shard's cap
    /// (`--max-connections-per-shard`), as HTTP ones do: past it, new
    /// connections wait in the listen backlog.
    pub fn share_permits(&self, permits: Rc<rt::Semaphore>) {
        let _ = self.permits.set(permits);
    }

    /// Closes the sockets of services `table` no longer has; their flows
    /// end after the grace period.
    pub fn retain(&self, table: &RouteTable) {
        self.open.borrow_mut().retain(|key, closed| {
            let keep = table.l4_service(*key).is_some();
            if !keep {
                closed.start();
            }
            keep
        });
    }
}

async fn accept_loop(
    shard: Rc<Shard>,
    key: ListenKey,
    listener: TcpListener,
    closed: Rc<DrainSignal>,
) {
    let permits = shard.l4_ports.permits.get().cloned();
    loop {
        let permit = future::or(
            async {
                match &permits {
                    Some(p) => Some(Some(p.acquire(1).await)),
                    None => Some(None),
                }
            },
            async {
                future::or(closed.wait(), shard.drain.wait()).await;
                None
            },
        )
        .await;
        let Some(permit) = permit else { return };
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            future::or(closed.wait(), shard.drain.wait()).await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok(stream)) => {
                let guard = Shard::opened(&shard);
                let (shard, closed) = (shard.clone(), closed.clone());
                rt::spawn_local(async move {
                    serve(&shard, key, stream, &closed).await;
                    drop(guard);
                    drop(permit);
                })
                .detach();
            }
            Some(Err(e)) => {
                drop(permit);
                let kind = AcceptError::of(&e);
                shard.metrics.accept_error(kind);
                if kind != AcceptError::Transient {
                    tracing::debug!(shard = shard.id, port = key.1, error = %e, "L4 accept failing; backing off");
                    rt::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// Serves one connection of the service on `key`.
async fn serve(shard: &Rc<Shard>, key: ListenKey, mut client: TcpStream, closed: &DrainSignal) {
    let Some(table) = shard.table() else { return };
    let Some(service) = table.routes.l4_service(key) else {
        return;
    };
    let label = &*service.label;
    shard.l4_stats.with(label, |c| {
        c.connections += 1;
        c.active += 1;
    });
    let started = Instant::now();
    let grace = shard.cfg.l4.close_grace;
    let removed = async {
        closed.wait().await;
        rt::sleep(grace).await;
    };
    let flow = future::or(
        async { Some(flow(shard, &table, service, &mut client).await) },
        async {
            removed.await;
            None
        },
    )
    .await;
    shard.l4_stats.with(label, |c| {
        c.active -= 1;
        c.duration_us += started.elapsed().as_micros() as u64;
        match flow {
            None => c.closed_by_removal += 1,
            Some(Flow::Relayed(r)) => r.record(c),
            Some(Flow::Unserved) => c.unserved += 1,
            Some(Flow::BadProxyHeader) => c.proxy_header_errors += 1,
            Some(Flow::ClientGone) => {}
        }
    });
}

/// How a connection went.
enum Flow {
    /// Relayed until it ended.
    Relayed(relay::Relayed),
    /// No endpoint, or none could be connected.
    Unserved,
    /// The PROXY header was missing or malformed.
    BadProxyHeader,
    /// The client left before anything was relayed.
    ClientGone,
}

async fn flow(
    shard: &Shard,
    table: &crate::shard::LocalTable,
    service: &L4Service,
    client: &mut TcpStream,
) -> Flow {
    let Ok(peer) = client.peer_addr() else {
        return Flow::ClientGone;
    };
    // The address the client connected to: only a PROXY header needs it.
    let (mut source, mut destination) = (peer, None);
    // Bytes read past the PROXY header: the start of the payload.
    let mut early = Vec::new();
    if service.proxy_protocol_downstream {
        match read_proxy_header(client, shard.cfg.header_read_timeout, &mut early).await {
            Ok(Some(addresses)) => {
                (source, destination) = (addresses.source, Some(addresses.destination))
            }
            Ok(None) => {}
            Err(why) => {
                tracing::debug!(shard = shard.id, service = %service.label, %peer, why, "PROXY header refused; connection closed");
                return Flow::BadProxyHeader;
            }
        }
    }
    let connected = connect(shard, table, service.backend, &service.label, source).await;
    let Some((mut upstream, endpoint)) = connected else {
        return Flow::Unserved;
    };
    // Open connections count as in flight for least_connections.
    let _open = table.states[service.backend].start(endpoint, u32::MAX);
    if service.proxy_protocol_upstream {
        let Some(destination) = destination.or_else(|| client.local_addr().ok()) else {
            return Flow::ClientGone;
        };
        let mut line = [0u8; 107];
        let n = proxy_protocol::write_v1(source, destination, &mut line);
        early.splice(0..0, line[..n].iter().copied());
    }
    if !early.is_empty() && upstream.write_all(&early).await.is_err() {
        return Flow::Relayed(relay::Relayed::reset());
    }
    Flow::Relayed(relay(shard, &service.label, client, &mut upstream).await)
}

/// Relays an established flow: joined in the kernel when the shard can
/// splice, else copied in user space.
pub(super) async fn relay(
    shard: &Shard,
    label: &str,
    client: &mut TcpStream,
    upstream: &mut TcpStream,
) -> relay::Relayed {
    use std::os::fd::AsFd;
    let idle = shard.cfg.l4.idle_timeout;
    if let Some(splicer) = &shard.splicer {
        match splicer.join(client.as_fd(), upstream.as_fd()) {
            Ok(joined) => {
                shard.l4_stats.with(label, |c| c.spliced += 1);
                return relay::spliced(client, upstream, &joined, idle).await;
            }
            Err(e) if e.can_fall_back() => {
                tracing::debug!(shard = shard.id, service = label, error = %e, "L4 splice refused; relaying in user space");
            }
            Err(e) => {
                tracing::debug!(shard = shard.id, service = label, error = %e, "L4 connection failed while joining");
                return relay::Relayed::reset();
            }
        }
    }
    relay::copy_both(client, upstream, idle).await
}

/// Reads and consumes a PROXY header; bytes after it go to `early`.
async fn read_proxy_header(
    client: &mut TcpStream,
    timeout: Duration,
    early: &mut Vec<u8>,
) -> Result<Option<proxy_protocol::Addresses>, &'static str> {
    let mut buf = vec![0u8; proxy_protocol::V2_MAX];
    let mut filled = 0;
    let read = async {
        loop {
            match proxy_protocol::parse(&buf[..filled]) {
                Header::Complete { len, addresses } => {
                    early.extend_from_slice(&buf[len..filled]);
                    return Ok(addresses);
                }
                Header::Invalid(why) => return Err(why),
                Header::Incomplete if filled == buf.len() => return Err("PROXY header too long"),
                Header::Incomplete => {}
            }
            match client.read(&mut buf[filled..]).await {
                Ok(0) => return Err("connection closed before the PROXY header ended"),
                Ok(n) => filled += n,
                Err(_) => return Err("reading the PROXY header failed"),
            }
        }
    };
    rt::timeout(timeout, read)
        .await
        .unwrap_or(Err("PROXY header not received in time"))
}

/// Connects to an endpoint of backend `index`: the balancer's pick
/// (steering clear of ejected ones; Maglev on the client's address), then
/// the next ones in order; failures are counted for `label`.
pub(super) async fn connect(
    shard: &Shard,
    table: &crate::shard::LocalTable,
    index: usize,
    label: &str,
    client: SocketAddr,
) -> Option<(TcpStream, usize)> {
    let backend = table.routes.backend(index);
    let state = &table.states[index];
    let key_hash = backend.hash_key().map(|_| Maglev::hash_ip(client.ip()));
    let first = backend
        .pick(state, key_hash, &shard.rng)
        .map(|e| shard.outliers.steer(backend, e))?;
    let attempts = shard.cfg.connect.attempts.min(backend.endpoints.len());
    for attempt in 0..attempts {
        let endpoint = backend.retry(first, attempt);
        let addr = backend.endpoints[endpoint].addr;
        match rt::connect(addr, shard.cfg.connect.timeout).await {
            Ok(stream) => {
                shard.endpoint_answered(backend, endpoint, 200);
                return Some((stream, endpoint));
            }
            Err(e) => {
                shard.l4_stats.with(label, |c| c.connect_failures += 1);
                tracing::debug!(shard = shard.id, service = label, endpoint = %addr, error = %e, "L4 connect failed");
                shard.endpoint_failed(backend, endpoint);
            }
        }
    }
    None
}
