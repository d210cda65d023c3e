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
//! Every response carries `x-backend: <name>`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tungstenite::protocol::{Role, WebSocket};
use tungstenite::Message;

use crate::wire::{find_header, framing, header_tokens, is_timeout, Framing, Wire};

/// How often blocked reads wake up to check the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Idle keep-alive (and WebSocket) connections are closed after this.
const IDLE: Duration = Duration::from_secs(120);
/// Socket write timeout.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head accepted (431 beyond).
const MAX_HEAD: usize = 64 * 1024;
/// Most request header fields accepted (431 beyond).
const MAX_HEADERS: usize = 128;
/// Size of the pieces large bodies are written in.
const PIECE: usize = 64 * 1024;
/// How long `/hang` keeps a socket open at most.
const HANG_LIMIT: Duration = Duration::from_secs(60);
/// Longest `/slow` sleep honoured.
const SLOW_LIMIT: Duration = Duration::from_secs(300);

/// The byte at offset `i` of every generated body (`/bytes`, `/chunked`,
/// `/close-delimited`): `(i % 251) as u8`.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// The first `n` bytes of the deterministic body pattern (see [`pattern_byte`]).
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n as u64).map(pattern_byte).collect()
}

/// Whether `data` is exactly the first `data.len()` bytes of [`pattern`].
pub fn is_pattern(data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .all(|(i, &b)| b == pattern_byte(i as u64))
}

/// XXH3-64 of `data`, as reported in `RecordedRequest::body_xxh3`.
pub fn xxh3(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
}

/// XXH3-64 of `data` formatted as the `body-xxh3=` line does (16 lower-case hex digits).
pub fn xxh3_hex(data: &[u8]) -> String {
    format!("{:016x}", xxh3(data))
}

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
struct Shared {
    name: String,
    stop: Arc<AtomicBool>,
    accepted: AtomicU64,
    requests: AtomicU64,
    last: Mutex<Option<RecordedRequest>>,
    /// Every request target received, in order.
    targets: Mutex<Vec<String>>,
    /// Handles of the open connections (by id), shut down on stop.
    conns: Mutex<HashMap<u64, TcpStream>>,
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

/// A parsed request with its body.
struct Request {
    method: String,
    target: String,
    version: u8,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// The first value of header `name`.
    fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Whether the connection stays open after this request.
    fn keep_alive(&self) -> bool {
        let tokens = header_tokens(&self.headers, "connection");
        if self.version == 0 {
            tokens.iter().any(|t| t == "keep-alive")
        } else {
            !tokens.iter().any(|t| t == "close")
        }
    }

    /// Whether this is a WebSocket upgrade request.
    fn is_websocket_upgrade(&self) -> bool {
        header_tokens(&self.headers, "upgrade")
            .iter()
            .any(|t| t == "websocket")
    }
}

/// Why reading a request failed.
enum ReadError {
    /// Answer with this status and message, then close.
    Bad(u16, &'static str),
    /// The connection failed, was closed mid-request or we are stopping.
    Io,
}

/// What to do with the connection after a response.
enum Next {
    KeepAlive,
    Close,
    Upgrade,
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

/// Reads one request (head and body). `Ok(None)` on a clean close before
/// any byte of a new request.
fn read_request(wire: &mut Wire) -> Result<Option<Request>, ReadError> {
    let (head_len, method, target, version, headers) = loop {
        if !wire.pending().is_empty() {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Request::new(&mut fields);
            match parsed.parse(wire.pending()) {
                Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => {
                    return Err(ReadError::Bad(431, "request head too large"));
                }
                Ok(httparse::Status::Complete(n)) => {
                    let headers: Vec<(String, String)> = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).to_string(),
                            )
                        })
                        .collect();
                    break (
                        n,
                        parsed.method.unwrap_or_default().to_string(),
                        parsed.path.unwrap_or_default().to_string(),
                        parsed.version.unwrap_or(1),
                        headers,
                    );
                }
                Ok(httparse::Status::Partial) => {
                    if wire.pending().len() > MAX_HEAD {
                        return Err(ReadError::Bad(431, "request head too large"));
                    }
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(ReadError::Bad(431, "too many header fields"));
                }
                Err(_) => return Err(ReadError::Bad(400, "malformed request head")),
            }
        }
        match wire.fill() {
            Ok(0) if wire.pending().is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(ReadError::Io),
            Ok(_) => {}
        }
    };
    wire.skip(head_len);
    let framing = framing(&headers, true).map_err(|m| ReadError::Bad(400, m))?;
    let expects_body = match framing {
        Framing::None => false,
        Framing::Length(n) => n > 0,
        Framing::Chunked => true,
        Framing::OtherCoding => {
            return Err(ReadError::Bad(
                400,
                "request Transfer-Encoding does not end in chunked",
            ))
        }
    };
    let expect_continue = header_tokens(&headers, "expect")
        .iter()
        .any(|t| t == "100-continue");
    if expects_body && expect_continue && version == 1 && wire.pending().is_empty() {
        write_all(&wire.stream, &[b"HTTP/1.1 100 Continue\r\n\r\n"]).map_err(|_| ReadError::Io)?;
    }
    let body = match framing {
        Framing::Length(n) => wire.read_exact_body(n).map_err(|_| ReadError::Io)?,
        Framing::Chunked => match wire.read_chunked() {
            Ok((body, _trailers)) => body,
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                return Err(ReadError::Bad(400, "malformed chunked body"))
            }
            Err(_) => return Err(ReadError::Io),
        },
        Framing::None | Framing::OtherCoding => Vec::new(),
    };
    Ok(Some(Request {
        method,
        target,
        version,
        headers,
        body,
    }))
}

/// Reason phrase for common status codes.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Builds a response head with `x-backend` and the connection header
/// matching `keep_alive` for a client of HTTP minor version `version`.
fn response_head(
    status: u16,
    name: &str,
    version: u8,
    keep_alive: bool,
    fields: &[(&str, String)],
) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nx-backend: {name}\r\n",
        reason(status)
    );
    for (n, v) in fields {
        let _ = write!(head, "{n}: {v}\r\n");
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    } else if version == 0 {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Writes all `parts` to the stream.
fn write_all(mut stream: &TcpStream, parts: &[&[u8]]) -> io::Result<()> {
    for part in parts {
        stream.write_all(part)?;
    }
    Ok(())
}

/// 64 KiB + 251 bytes of the pattern, so any piece at any offset is a slice.
fn pattern_block() -> &'static [u8] {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK.get_or_init(|| pattern(PIECE + 251))
}

/// The pattern bytes `[offset, offset + len)` for `len <= PIECE`.
fn pattern_slice(offset: u64, len: usize) -> &'static [u8] {
    let start = (offset % 251) as usize;
    &pattern_block()[start..start + len]
}

/// Writes `n` pattern bytes raw, in pieces of at most 64 KiB.
fn write_pattern(stream: &TcpStream, n: u64) -> io::Result<()> {
    let mut off = 0;
    while off < n {
        let len = (n - off).min(PIECE as u64) as usize;
        write_all(stream, &[pattern_slice(off, len)])?;
        off += len as u64;
    }
    Ok(())
}

/// Writes `n` pattern bytes as chunks of `size` bytes plus the last chunk.
fn write_pattern_chunked(stream: &TcpStream, n: u64, size: u64) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(PIECE, stream);
    let mut off = 0;
    while off < n {
        let chunk = (n - off).min(size);
        write!(out, "{chunk:x}\r\n")?;
        let mut done = 0;
        while done < chunk {
            let len = (chunk - done).min(PIECE as u64) as usize;
            out.write_all(pattern_slice(off + done, len))?;
            done += len as u64;
        }
        out.write_all(b"\r\n")?;
        off += chunk;
    }
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

/// Query parameter `key` of a query string (no percent-decoding).
fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then_some(v)
        })
        .next()
}

/// Parses numeric query parameter `key`; `Ok(default)` when absent.
fn num_param(query: &str, key: &str, default: Option<u64>) -> Result<u64, String> {
    match (query_param(query, key), default) {
        (Some(v), _) => v
            .parse()
            .map_err(|_| format!("query parameter {key}={v:?} is not a number")),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(format!("missing query parameter {key}")),
    }
}

/// The path part of a request target (absolute-form authority stripped).
fn target_path(target: &str) -> (&str, &str) {
    let mut t = target;
    if let Some(rest) = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
    {
        t = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    t.split_once('?').unwrap_or((t, ""))
}

/// Sleeps `total`, waking to check the stop flag; false if stopped.
fn sleep_unless_stopped(wire: &Wire, total: Duration) -> bool {
    let deadline = Instant::now() + total;
    loop {
        if wire.stopped() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(10)));
    }
}

/// The default text body describing the request.
fn describe(name: &str, req: &Request) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "backend={name}");
    let _ = writeln!(s, "method={}", req.method);
    let _ = writeln!(s, "path={}", req.target);
    let _ = writeln!(s, "version=1.{}", req.version);
    let _ = writeln!(s, "body-len={}", req.body.len());
    let _ = writeln!(s, "body-xxh3={}", xxh3_hex(&req.body));
    for (n, v) in &req.headers {
        let _ = writeln!(s, "h:{}={v}", n.to_ascii_lowercase());
    }
    s
}

/// Answers one request according to its path.
fn respond(wire: &Wire, shared: &Shared, req: &Request) -> io::Result<Next> {
    let name = shared.name.as_str();
    let head_only = req.method.eq_ignore_ascii_case("HEAD");
    let keep = req.keep_alive();
    let next = if keep { Next::KeepAlive } else { Next::Close };
    let v = req.version;
    let stream = &wire.stream;
    let (path, query) = target_path(&req.target);

    // A fixed-length answer (body suppressed for HEAD).
    let fixed = |status: u16, ctype: &str, body: &[u8]| -> io::Result<Next> {
        let head = response_head(
            status,
            name,
            v,
            keep,
            &[
                ("Content-Type", ctype.to_string()),
                ("Content-Length", body.len().to_string()),
            ],
        );
        let body = if head_only { &[][..] } else { body };
        write_all(stream, &[&head, body])?;
        Ok(if keep { Next::KeepAlive } else { Next::Close })
    };
    let bad = |msg: String| -> io::Result<Next> {
        fixed(400, "text/plain", format!("{msg}\n").as_bytes())
    };

    if (path == "/ws" || path.starts_with("/ws/")) && req.is_websocket_upgrade() {
        return match req.header("sec-websocket-key") {
            Some(key) => {
                let accept = tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
                let head = response_head(
                    101,
                    name,
                    1,
                    true,
                    &[
                        ("Upgrade", "websocket".into()),
                        ("Connection", "Upgrade".into()),
                        ("Sec-WebSocket-Accept", accept),
                    ],
                );
                write_all(stream, &[&head])?;
                Ok(Next::Upgrade)
            }
            None => bad("missing Sec-WebSocket-Key".into()),
        };
    }

    match path {
        "/hang" => {
            sleep_unless_stopped(wire, HANG_LIMIT);
            let _ = wire.stream.shutdown(Shutdown::Both);
            Ok(Next::Close)
        }
        "/slow" => {
            let ms = match num_param(query, "ms", Some(1000)) {
                Ok(ms) => ms,
                Err(e) => return bad(e),
            };
            if !sleep_unless_stopped(wire, Duration::from_millis(ms).min(SLOW_LIMIT)) {
                return Ok(Next::Close);
            }
            fixed(200, "text/plain", describe(name, req).as_bytes())
        }
        "/echo-body" => fixed(200, "application/octet-stream", &req.body),
        "/bytes" => {
            let n = match num_param(query, "n", None) {
                Ok(n) => n,
                Err(e) => return bad(e),
            };
            let head = response_head(
                200,
                name,
                v,
                keep,
                &[
                    ("Content-Type", "application/octet-stream".into()),
                    ("Content-Length", n.to_string()),
                ],
            );
            write_all(stream, &[&head])?;
            if !head_only {
                write_pattern(stream, n)?;
            }
            Ok(next)
        }
        "/chunked" => {
            let (n, size) = match (
                num_param(query, "n", None),
                num_param(query, "size", Some(1000)),
            ) {
                (Ok(_), Ok(0)) => return bad("size must be positive".into()),
                (Ok(n), Ok(size)) => (n, size),
                (Err(e), _) | (_, Err(e)) => return bad(e),
            };
            if v == 0 {
                // HTTP/1.0 has no chunked coding: delimit by close instead.
                let head = response_head(
                    200,
                    name,
                    v,
                    false,
                    &[("Content-Type", "application/octet-stream".into())],
                );
                write_all(stream, &[&head])?;
                if !head_only {
                    write_pattern(stream, n)?;
                }
                return Ok(Next::Close);
            }
            let head = response_head(
                200,
                name,
                v,
                keep,
                &[
                    ("Content-Type", "application/octet-stream".into()),
                    ("Transfer-Encoding", "chunked".into()),
                ],
            );
            write_all(stream, &[&head])?;
            if !head_only {
                write_pattern_chunked(stream, n, size)?;
            }
            Ok(next)
        }
        "/close-delimited" => {
            let n = match num_param(query, "n", None) {
                Ok(n) => n,
                Err(e) => return bad(e),
            };
            let head = response_head(
                200,
                name,
                v,
                false,
                &[("Content-Type", "application/octet-stream".into())],
            );
            write_all(stream, &[&head])?;
            if !head_only {
                write_pattern(stream, n)?;
            }
            Ok(Next::Close)
        }
        _ => {
            if let Some(code) = path.strip_prefix("/status/") {
                let status = match code.parse::<u16>() {
                    Ok(s) if (200..=599).contains(&s) => s,
                    _ => return bad(format!("bad status {code:?} (want 200..=599)")),
                };
                if status == 204 || status == 304 {
                    let head = response_head(status, name, v, keep, &[]);
                    write_all(stream, &[&head])?;
                    return Ok(next);
                }
                let body = format!("status {status} from {name}\n");
                return fixed(status, "text/plain", body.as_bytes());
            }
            fixed(200, "text/plain", describe(name, req).as_bytes())
        }
    }
}

/// Runs the WebSocket echo loop on an upgraded connection.
fn serve_websocket(wire: Wire, shared: &Shared, _req: &Request) {
    let mut wire = wire;
    let buf = wire.take_pending();
    let stream = wire.stream;
    let mut ws = WebSocket::from_partially_read(stream, buf, Role::Server, None);
    let mut last_activity = Instant::now();
    loop {
        match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                last_activity = Instant::now();
                if ws.send(msg).is_err() {
                    return;
                }
            }
            Ok(_) => last_activity = Instant::now(),
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {
                if shared.stop.load(Ordering::SeqCst) || last_activity.elapsed() >= IDLE {
                    let _ = ws.get_mut().shutdown(Shutdown::Both);
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_slices_match_pattern() {
        let all = pattern(3 * PIECE);
        for off in [0u64, 1, 250, 251, 1000, 70_000] {
            let s = pattern_slice(off, 500);
            assert_eq!(s, &all[off as usize..off as usize + 500]);
        }
        assert!(is_pattern(&all));
        assert!(!is_pattern(&[1]));
    }

    #[test]
    fn targets_and_queries() {
        assert_eq!(target_path("/a/b?x=1"), ("/a/b", "x=1"));
        assert_eq!(target_path("/a"), ("/a", ""));
        assert_eq!(target_path("http://h:1/p?q"), ("/p", "q"));
        assert_eq!(target_path("http://h"), ("/", ""));
        assert_eq!(query_param("n=5&size=7", "size"), Some("7"));
        assert_eq!(query_param("n", "n"), Some(""));
        assert_eq!(query_param("m=1", "n"), None);
        assert_eq!(num_param("n=12", "n", None), Ok(12));
        assert!(num_param("n=x", "n", None).is_err());
        assert!(num_param("", "n", None).is_err());
        assert_eq!(num_param("", "size", Some(1000)), Ok(1000));
    }
}
