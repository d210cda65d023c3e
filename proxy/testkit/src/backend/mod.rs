//! A real HTTP/1.1 (+ WebSocket) backend server on std threads, answering
//! per path so tests can exercise a proxy in front of it.
//!
//! Paths (the query string is parsed, `path` below excludes it):
//! - `/status/NNN` → status NNN (200..=599) with a short text body (none for
//!   204/304/HEAD).
//! - `/bytes?n=N` → N bytes of [`pattern`] with Content-Length.
//! - `/chunked?n=N&size=S` → the same bytes chunked in S-byte chunks
//!   (default 1000); to an HTTP/1.0 client they are sent close-delimited.
//! - `/close-delimited?n=N` → the same bytes with neither Content-Length nor
//!   chunked, then the connection is closed.
//! - `/echo-body` → the request body back (Content-Length).
//! - `/slow?ms=N` → sleeps N ms, then the default answer.
//! - `/hang` → never answers; the socket stays open until the backend stops
//!   or 60 s pass.
//! - `/ws` (or `/ws/...`) with `Upgrade: websocket` → WebSocket handshake,
//!   then every text/binary message is echoed until close.
//! - anything else → 200 `text/plain` describing the request (see
//!   [`Backend`]).
//!
//! Every response carries `x-backend: <name>`. [`Backend::set_delay`] makes
//! every answer wait, as a backend that became slow.

mod request;
mod respond;
mod scripted;
mod websocket;
mod write;

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::pattern::xxh3;
use crate::wire::{find_header, is_timeout, Wire};
use request::{read_request, ReadError};
use respond::{respond, Next};
use websocket::serve_websocket;
use write::{response_head, write_all};

pub use scripted::ScriptedBackend;

/// How often blocked reads wake up to check the stop flag.
pub(super) const POLL: Duration = Duration::from_millis(100);
/// Idle keep-alive (and WebSocket) connections are closed after this.
pub(super) const IDLE: Duration = Duration::from_secs(120);
/// Socket write timeout.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head accepted (431 beyond).
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// Most request header fields accepted (431 beyond).
pub(super) const MAX_HEADERS: usize = 128;
/// Size of the pieces large bodies are written in.
pub(super) const PIECE: usize = 64 * 1024;
/// How long `/hang` keeps a socket open at most.
pub(super) const HANG_LIMIT: Duration = Duration::from_secs(60);
/// Longest `/slow` sleep honoured.
pub(super) const SLOW_LIMIT: Duration = Duration::from_secs(300);

/// One request as the backend received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Full request target as received (path plus query).
    pub path: String,
    /// HTTP minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Header fields in order, names as received (not lower-cased).
    pub headers: Vec<(String, String)>,
    /// Length of the (de-chunked) body.
    pub body_len: usize,
    /// XXH3-64 of the (de-chunked) body (see [`xxh3`]).
    pub body_xxh3: u64,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// State shared by the accept thread and the connection threads.
pub(super) struct Shared {
    pub(super) name: String,
    pub(super) stop: Arc<AtomicBool>,
    accepted: AtomicU64,
    requests: AtomicU64,
    last: Mutex<Option<RecordedRequest>>,
    /// Every request target received, in order.
    targets: Mutex<Vec<String>>,
    /// Handles of the open connections (by id), shut down on stop.
    conns: Mutex<HashMap<u64, TcpStream>>,
    /// Every answer waits this long first (ms; see [`Backend::set_delay`]).
    pub(super) delay_ms: AtomicU64,
}

impl Shared {
    /// The open-connection registry (poisoning ignored).
    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes a connection from the registry when its thread ends.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.conns().remove(&self.id);
    }
}

/// A real HTTP/1.1 backend server (thread per connection) that answers per
/// path (see the module docs); stops on [`Backend::stop`] or drop.
///
/// The default answer is 200 `text/plain` with the lines `backend=<name>`,
/// `method=..`, `path=..` (full target), `version=1.0|1.1`, `body-len=N`,
/// `body-xxh3=<16 hex digits>`, then `h:<lower-case name>=<value>` per
/// request header in order, each ending in `\n`.
pub struct Backend {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept_thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.shared.name)
            .field("addr", &self.addr)
            .finish()
    }
}

impl Backend {
    /// Starts a backend named `name` on 127.0.0.1 with a free port.
    pub fn start(name: &str) -> Backend {
        Backend::start_on(name, "127.0.0.1:0")
    }

    /// Starts a backend on `addr` (e.g. to restart on a stopped backend's
    /// port); panics if it cannot listen there.
    pub fn start_on(name: &str, addr: impl ToSocketAddrs) -> Backend {
        Backend::try_start_on(name, addr)
            .unwrap_or_else(|e| panic!("backend {name:?}: cannot listen: {e}"))
    }

    /// Like [`Backend::start_on`] but returns the bind error.
    pub fn try_start_on(name: &str, addr: impl ToSocketAddrs) -> io::Result<Backend> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            name: name.to_string(),
            stop: Arc::new(AtomicBool::new(false)),
            accepted: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            last: Mutex::new(None),
            targets: Mutex::new(Vec::new()),
            conns: Mutex::new(HashMap::new()),
            delay_ms: AtomicU64::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let handle = thread::Builder::new()
            .name(format!("backend-{name}"))
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(Backend {
            shared,
            addr,
            accept_thread: Mutex::new(Some(handle)),
        })
    }

    /// The address the backend listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the backend listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The backend's name (sent as `x-backend`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Makes every answer from now on wait `delay` before it is sent (a
    /// backend that became slow); `Duration::ZERO` makes it fast again.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Complete requests received so far (counted before the response is sent).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The most recent complete request received, if any.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every request target received so far, in order: what the backend,
    /// framing the byte stream by itself, took for separate requests.
    pub fn targets(&self) -> Vec<String> {
        self.shared
            .targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops like a killed server: when this returns the listener is closed
    /// (new connections are refused) and every open connection has been
    /// shut down (peers see EOF; in-flight responses are cut). Idempotent.
    pub fn stop(&self) {
        if self.shared.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let woke = TcpStream::connect_timeout(&wake, Duration::from_secs(2)).is_ok();
        let handle = self
            .accept_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let (true, Some(handle)) = (woke, handle) {
            let _ = handle.join();
        }
        let open: Vec<TcpStream> = self.shared.conns().drain().map(|(_, s)| s).collect();
        for stream in open {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts connections until the stop flag is set, one thread each.
fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        match accepted {
            Ok((stream, _)) => {
                let id = shared.accepted.fetch_add(1, Ordering::SeqCst);
                let Ok(handle) = stream.try_clone() else {
                    continue;
                };
                shared.conns().insert(id, handle);
                let conn_shared = Arc::clone(&shared);
                let spawned = thread::Builder::new()
                    .name(format!("backend-{}-conn", shared.name))
                    .spawn(move || {
                        let _registered = Registered {
                            shared: &conn_shared,
                            id,
                        };
                        serve_connection(stream, &conn_shared);
                    });
                if spawned.is_err() {
                    // The closure (and so the stream) was dropped: forget it.
                    shared.conns().remove(&id);
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Serves requests on one connection until it closes, errors or the
/// backend stops.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    if stream.set_read_timeout(Some(POLL)).is_err()
        || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return;
    }
    let mut wire = Wire::new(stream, Some(Arc::clone(&shared.stop)), IDLE);
    loop {
        let req = match read_request(&mut wire) {
            Ok(Some(req)) => req,
            Ok(None) | Err(ReadError::Io) => return,
            Err(ReadError::Bad(status, msg)) => {
                shared
                    .targets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("<unparsable: {msg}>"));
                let body = format!("{msg}\n");
                let head = response_head(
                    status,
                    &shared.name,
                    1,
                    false,
                    &[
                        ("Content-Type", "text/plain".into()),
                        ("Content-Length", body.len().to_string()),
                    ],
                );
                if write_all(&wire.stream, &[&head, body.as_bytes()]).is_ok() {
                    linger_close(&mut wire);
                }
                return;
            }
        };
        shared.requests.fetch_add(1, Ordering::SeqCst);
        shared
            .targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(req.target.clone());
        *shared.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(RecordedRequest {
            method: req.method.clone(),
            path: req.target.clone(),
            version: req.version,
            headers: req.headers.clone(),
            body_len: req.body.len(),
            body_xxh3: xxh3(&req.body),
        });
        match respond(&wire, shared, &req) {
            Ok(Next::KeepAlive) => {}
            Ok(Next::Close) => {
                linger_close(&mut wire);
                return;
            }
            Ok(Next::Upgrade) => {
                serve_websocket(wire, shared, &req);
                return;
            }
            Err(_) => return,
        }
    }
}

/// Half-closes, then drains input briefly so unread request bytes do not
/// turn the close into a reset that could destroy the response in flight.
fn linger_close(wire: &mut Wire) {
    let _ = wire.stream.flush();
    if wire.stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut sink = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match wire.stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {
                if wire.stopped() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}
