//! HTTP/2 to the endpoints (`backend-protocol: GRPC`): a shard's
//! connections per endpoint, each carrying many calls at once, and one
//! call ([`H2Call`]) seen by the exchange as an HTTP/1.1 connection. The
//! exchange writes an HTTP/1.1 request and reads an HTTP/1.1 response with
//! a chunked body whose trailers are the call's trailers (`grpc-status`),
//! so routing, policies, retries and metrics stay the HTTP/1.1 code.

use super::ConnectPolicy;
use crate::http::buf::read_staged;
use crate::http::chunked::ChunkedDecoder;
use crate::http::MAX_HEADERS;
use crate::http2::io::H2Io;
use crate::http2::{io_error, poll_capacity};
use crate::rt::{self, Deadline, Semaphore};
use crate::tls::client::ClientTls;
use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::{RecvStream, SendStream};
use http::header::{self, HeaderName, HeaderValue};
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

/// Per-stream receive window towards the endpoint: streamed responses.
const STREAM_WINDOW: u32 = 1 << 20;
/// Per-connection receive window.
const CONNECTION_WINDOW: u32 = 4 << 20;
/// Largest request head accepted from the exchange.
const MAX_REQUEST_HEAD: usize = 128 * 1024;
/// Largest DATA payload sent in one frame batch.
const MAX_WRITE: usize = 64 * 1024;
/// Concurrent calls on one connection when the endpoint sets no limit.
const DEFAULT_STREAMS: usize = 100;

/// One HTTP/2 connection to an endpoint, shared by the shard's calls.
#[derive(Debug)]
struct H2Conn {
    send: SendRequest<Bytes>,
    shared: Rc<ConnState>,
}

/// What the connection's driver task and its calls share.
#[derive(Debug)]
struct ConnState {
    /// Calls open on the connection.
    calls: Cell<usize>,
    /// When the last call ended (for the idle timeout).
    idle_since: Cell<Instant>,
    /// The driver ended: the connection is gone.
    closed: Cell<bool>,
}

/// A shard's HTTP/2 connections per endpoint. Shard-local, no locks.
#[derive(Debug, Default)]
pub struct H2Conns {
    /// By endpoint and TLS settings (0: cleartext).
    conns: RefCell<FxHashMap<(SocketAddr, u64), Vec<H2Conn>>>,
    /// One connect at a time per endpoint: the calls that arrive while a
    /// connection is being made wait for it rather than make their own.
    connecting: RefCell<FxHashMap<(SocketAddr, u64), Rc<Semaphore>>>,
}

impl H2Conns {
    /// Connections open per endpoint.
    pub fn open(&self) -> Vec<(SocketAddr, u64)> {
        let conns = self.conns.borrow();
        conns
            .iter()
            .map(|((addr, _), list)| {
                (
                    *addr,
                    list.iter().filter(|c| !c.shared.closed.get()).count() as u64,
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Forgets the connections that ended, and the endpoints left without
    /// any (pods come and go: their addresses must not pile up).
    pub fn evict_closed(&self) {
        self.conns.borrow_mut().retain(|_, list| {
            list.retain(|c| !c.shared.closed.get());
            !list.is_empty()
        });
    }

    /// A live connection to `addr` with room for another call, or none;
    /// `fresh` forgoes the existing ones.
    fn take(
        &self,
        key: (SocketAddr, u64),
        fresh: bool,
    ) -> Option<(SendRequest<Bytes>, Rc<ConnState>)> {
        let mut conns = self.conns.borrow_mut();
        let list = conns.get_mut(&key)?;
        list.retain(|c| !c.shared.closed.get());
        if fresh {
            return None;
        }
        list.iter()
            .filter(|c| c.shared.calls.get() < max_streams(&c.send))
            .min_by_key(|c| c.shared.calls.get())
            .map(|c| (c.send.clone(), c.shared.clone()))
    }

    /// A call on a connection to `addr`: an existing one with room, or a
    /// new one (connected and handshaken within the connect timeout).
    /// Returns the call and whether its connection was reused.
    pub async fn call(
        &self,
        addr: SocketAddr,
        tls: Option<&ClientTls>,
        policy: &ConnectPolicy,
        idle_timeout: Duration,
        fresh: bool,
    ) -> io::Result<(H2Call, bool)> {
        let key = (addr, tls.map_or(0, |t| t.id));
        if let Some((send, shared)) = self.take(key, fresh) {
            return Ok((H2Call::new(send, shared, policy), true));
        }
        let gate = self
            .connecting
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| Rc::new(Semaphore::new(1)))
            .clone();
        let permit = gate.acquire(1).await;
        let made = match self.take(key, fresh) {
            Some((send, shared)) => Ok((H2Call::new(send, shared, policy), true)),
            // Boxed: a connect and handshake is a large future, and rare;
            // inline it would grow every exchange's future by 12 KB.
            None => Box::pin(connect(addr, tls, policy, idle_timeout))
                .await
                .map(|(send, shared)| {
                    self.conns
                        .borrow_mut()
                        .entry(key)
                        .or_default()
                        .push(H2Conn {
                            send: send.clone(),
                            shared: shared.clone(),
                        });
                    (H2Call::new(send, shared, policy), false)
                }),
        };
        drop(permit);
        // The map's and this one: nobody else waits, the gate can go.
        if Rc::strong_count(&gate) == 2 {
            self.connecting.borrow_mut().remove(&key);
        }
        made
    }
}

/// Most calls the endpoint lets one connection carry.
fn max_streams(send: &SendRequest<Bytes>) -> usize {
    match send.current_max_send_streams() {
        // h2 reports usize::MAX until the endpoint's SETTINGS say otherwise.
        usize::MAX => DEFAULT_STREAMS,
        n => n,
    }
}

/// Connects, does the HTTP/2 handshake and starts the connection's driver
/// task, which ends when the endpoint closes, or when no call has used the
/// connection for `idle_timeout`.
async fn connect(
    addr: SocketAddr,
    tls: Option<&ClientTls>,
    policy: &ConnectPolicy,
    idle_timeout: Duration,
) -> io::Result<(SendRequest<Bytes>, Rc<ConnState>)> {
    let stream = rt::connect(addr, policy.timeout).await?;
    stream.set_nodelay(true)?;
    // The socket idles between calls: calls time out on their own.
    let Some(tls) = tls else {
        let io = H2Io::new(stream, Vec::new(), true);
        return start(io, addr, policy, idle_timeout).await;
    };
    let stream = tls.handshake(stream, policy.timeout).await?;
    if let Some(other) = stream.get_ref().1.alpn_protocol().filter(|p| *p != b"h2") {
        let other = String::from_utf8_lossy(other);
        return Err(io::Error::other(format!(
            "the endpoint chose ALPN {other:?}, not h2"
        )));
    }
    start(
        H2Io::new(stream, Vec::new(), false),
        addr,
        policy,
        idle_timeout,
    )
    .await
}

/// The HTTP/2 handshake on a connected stream, then the driver task.
async fn start<T>(
    io: T,
    addr: SocketAddr,
    policy: &ConnectPolicy,
    idle_timeout: Duration,
) -> io::Result<(SendRequest<Bytes>, Rc<ConnState>)>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let mut builder = h2::client::Builder::new();
    builder
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .enable_push(false);
    let handshake = builder.handshake::<_, Bytes>(io);
    let (send, mut connection) = match rt::timeout(policy.timeout, handshake).await {
        Some(Ok(pair)) => pair,
        Some(Err(e)) => return Err(io_error(e)),
        None => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "HTTP/2 handshake timed out",
            ))
        }
    };
    let shared = Rc::new(ConnState {
        calls: Cell::new(0),
        idle_since: Cell::new(Instant::now()),
        closed: Cell::new(false),
    });
    let state = shared.clone();
    rt::spawn_local(async move {
        let idle = async {
            loop {
                rt::sleep(idle_timeout).await;
                if state.calls.get() == 0 && state.idle_since.get().elapsed() >= idle_timeout {
                    return;
                }
            }
        };
        let driven = futures_lite::future::or(
            async {
                if let Err(e) = (&mut connection).await {
                    tracing::debug!(%addr, error = %e, "upstream HTTP/2 connection ended");
                }
            },
            idle,
        );
        driven.await;
        state.closed.set(true);
    })
    .detach();
    Ok((send, shared))
}

/// Counts a call on its connection while it lives.
#[derive(Debug)]
struct CallGuard(Rc<ConnState>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.calls.set(self.0.calls.get().saturating_sub(1));
        self.0.idle_since.set(Instant::now());
    }
}

/// One call on an HTTP/2 connection, read and written as the bytes of an
/// HTTP/1.1 exchange. Dropping it before the response ended resets the
/// stream (h2 sends RST_STREAM CANCEL), so a client's cancel reaches the
/// endpoint.
#[derive(Debug)]
pub struct H2Call {
    send: SendRequest<Bytes>,
    request: Request,
    response: Response,
    /// Response bytes, as HTTP/1.1, not yet read by the exchange.
    out: Vec<u8>,
    out_read: usize,
    read_timeout: Duration,
    write_timeout: Duration,
    /// Running while a read or a write waits.
    deadline: Option<Deadline>,
    /// Streams an HTTP/2 client's request body into the call while the
    /// response streams back; cancelled with the call.
    pump: Option<rt::Task<()>>,
    _call: CallGuard,
}

/// Where the request stands.
#[derive(Debug)]
enum Request {
    /// Collecting the HTTP/1.1 head.
    Head(Vec<u8>),
    /// Head parsed, waiting for the connection to open a stream.
    Ready(Box<http::Request<()>>, Body),
    /// Sending the body.
    Body(SendStream<Bytes>, Body),
    /// Sent whole.
    Sent,
}

/// How the HTTP/1.1 request body the exchange writes ends.
#[derive(Debug)]
enum Body {
    None,
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// Where the response stands.
#[derive(Debug)]
enum Response {
    /// The request is not sent yet.
    NotAsked,
    /// Waiting for the response head.
    Head(ResponseFuture),
    /// Reading DATA.
    Data(RecvStream),
    /// Waiting for the trailers.
    Trailers(RecvStream),
    /// Read whole.
    Done,
}

/// The response's next state, decided while its current one is borrowed.
enum Next {
    Data(RecvStream),
    Trailers,
    Done,
}

impl H2Call {
    fn new(send: SendRequest<Bytes>, shared: Rc<ConnState>, policy: &ConnectPolicy) -> H2Call {
        shared.calls.set(shared.calls.get() + 1);
        H2Call {
            send,
            request: Request::Head(Vec::with_capacity(512)),
            response: Response::NotAsked,
            out: Vec::new(),
            out_read: 0,
            read_timeout: policy.read_timeout,
            write_timeout: policy.write_timeout,
            deadline: None,
            pump: None,
            _call: CallGuard(shared),
        }
    }

    /// Sets the longest wait for the response (per read).
    pub fn set_read_timeout(&mut self, d: Duration) {
        self.read_timeout = d;
    }

    /// Sets the longest wait for the endpoint to take request bytes.
    pub fn set_write_timeout(&mut self, d: Duration) {
        self.write_timeout = d;
    }

    /// Opens the stream, once the head is written (it is otherwise opened
    /// by the first body byte or the first read).
    pub async fn open(&mut self) -> io::Result<()> {
        futures_lite::future::poll_fn(|cx| self.poll_open(cx)).await
    }

    /// Hands the rest of the request body, an HTTP/2 client's stream, to a
    /// task that sends its DATA (and trailers) as they come, so that the
    /// response can stream back meanwhile (bidirectional calls). Without
    /// the head sent and a body under way, there is nothing to hand over.
    pub fn stream_body_from(&mut self, body: RecvStream, limit: Option<u64>) {
        match std::mem::replace(&mut self.request, Request::Sent) {
            Request::Body(send, _) => self.pump = Some(rt::spawn_local(pump(body, send, limit))),
            other => self.request = other,
        }
    }

    /// Whether the response head was read and its DATA has not started:
    /// the body can be handed over ([`H2Call::take_response_body`]).
    pub fn response_body_untouched(&self) -> bool {
        matches!(self.response, Response::Data(_)) && self.out_read >= self.out.len()
    }

    /// Takes the response's DATA and trailers away from the byte view, for
    /// an HTTP/2 client to get them as frames; reads then see its end.
    pub fn take_response_body(&mut self) -> Option<RecvStream> {
        if !self.response_body_untouched() {
            return None;
        }
        match std::mem::replace(&mut self.response, Response::Done) {
            Response::Data(body) => Some(body),
            _ => None,
        }
    }

    /// The longest wait for the endpoint's next frame.
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// Waits with the given timeout: `Pending` while time is left, an
    /// error once it ran out.
    fn wait(&mut self, cx: &mut Context<'_>, timeout: Duration) -> Poll<io::Result<usize>> {
        let deadline = self
            .deadline
            .get_or_insert_with(|| Deadline::after(timeout));
        if deadline.poll_expired(cx) {
            self.deadline = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "upstream HTTP/2 stream timed out",
            )));
        }
        Poll::Pending
    }

    /// Opens the stream once the head is parsed and the connection has
    /// room; `Ready(Ok)` when nothing is left to open.
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !matches!(self.request, Request::Ready(..)) {
            return Poll::Ready(Ok(()));
        }
        match self.send.poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(io_error(e))),
            Poll::Pending => {
                return match self.wait(cx, self.write_timeout) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Pending,
                }
            }
        }
        self.deadline = None;
        let Request::Ready(request, body) = std::mem::replace(&mut self.request, Request::Sent)
        else {
            return Poll::Ready(Ok(()));
        };
        let end = matches!(body, Body::None | Body::Length(0));
        let (response, stream) = self.send.send_request(*request, end).map_err(io_error)?;
        self.response = Response::Head(response);
        if !end {
            self.request = Request::Body(stream, body);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_write_inner(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Request::Head(head) = &mut self.request {
            let before = head.len();
            head.extend_from_slice(buf);
            let Some(end) = crate::http::head_end(head) else {
                if head.len() > MAX_REQUEST_HEAD {
                    return Poll::Ready(Err(io::Error::other("request head too large")));
                }
                return Poll::Ready(Ok(buf.len()));
            };
            head.truncate(end);
            let (request, body) = request(head)?;
            self.request = Request::Ready(Box::new(request), body);
            return Poll::Ready(Ok(end - before));
        }
        ready!(self.poll_open(cx))?;
        let Request::Body(send, body) = &mut self.request else {
            // Bytes past the request's end are not part of it.
            return Poll::Ready(Ok(buf.len()));
        };
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let want = match body {
            Body::Length(left) => (*left).min(buf.len() as u64) as usize,
            _ => buf.len(),
        }
        .min(MAX_WRITE);
        let cap = match poll_capacity(send, cx, want) {
            Poll::Ready(r) => r?,
            Poll::Pending => {
                return match self.wait(cx, self.write_timeout) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Pending,
                }
            }
        };
        self.deadline = None;
        let input = &buf[..cap.min(want)];
        let (consumed, data, end) = match body {
            Body::Length(left) => {
                *left -= input.len() as u64;
                (input.len(), input, *left == 0)
            }
            Body::Chunked(decoder) => {
                let p = decoder.decode(input).map_err(io::Error::other)?;
                (p.consumed, &input[p.data.clone()], p.done)
            }
            Body::None => (buf.len(), &[][..], true),
        };
        if !data.is_empty() || end {
            send.send_data(Bytes::copy_from_slice(data), end)
                .map_err(io_error)?;
        }
        if end {
            self.request = Request::Sent;
        }
        Poll::Ready(Ok(consumed))
    }

    fn poll_read_inner(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        // The exchange reads the response once the request is written:
        // a request without body is opened here.
        ready!(self.poll_open(cx))?;
        loop {
            if let Some(n) = read_staged(&mut self.out, &mut self.out_read, dst) {
                return Poll::Ready(Ok(n));
            }
            let step = match &mut self.response {
                Response::NotAsked => {
                    return Poll::Ready(Err(io::Error::other("read before the request was sent")))
                }
                Response::Done => return Poll::Ready(Ok(0)),
                Response::Head(future) => match Pin::new(future).poll(cx) {
                    Poll::Ready(Ok(response)) => {
                        let (parts, body) = response.into_parts();
                        let end = body.is_end_stream();
                        response_head(&parts, end, &mut self.out);
                        Poll::Ready(Ok(Some(if end { Next::Done } else { Next::Data(body) })))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(io_error(e))),
                    Poll::Pending => Poll::Pending,
                },
                Response::Data(body) => match body.poll_data(cx) {
                    Poll::Ready(Some(Ok(data))) => {
                        // Copied out of h2 now: the window reopens, and the
                        // exchange's own writes are the back-pressure.
                        let _ = body.flow_control().release_capacity(data.len());
                        if !data.is_empty() {
                            let _ = write!(self.out, "{:x}\r\n", data.len());
                            self.out.extend_from_slice(&data);
                            self.out.extend_from_slice(b"\r\n");
                        }
                        Poll::Ready(Ok(None))
                    }
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Err(io_error(e))),
                    Poll::Ready(None) => Poll::Ready(Ok(Some(Next::Trailers))),
                    Poll::Pending => Poll::Pending,
                },
                Response::Trailers(body) => match body.poll_trailers(cx) {
                    Poll::Ready(Ok(trailers)) => {
                        self.out.extend_from_slice(b"0\r\n");
                        for (name, value) in trailers.iter().flatten() {
                            field(&mut self.out, name, value.as_bytes());
                        }
                        self.out.extend_from_slice(b"\r\n");
                        Poll::Ready(Ok(Some(Next::Done)))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(io_error(e))),
                    Poll::Pending => Poll::Pending,
                },
            };
            match step {
                Poll::Ready(Ok(next)) => {
                    self.deadline = None;
                    match next {
                        None => {}
                        Some(Next::Data(body)) => self.response = Response::Data(body),
                        Some(Next::Trailers) => {
                            if let Response::Data(body) =
                                std::mem::replace(&mut self.response, Response::Done)
                            {
                                self.response = Response::Trailers(body);
                            }
                        }
                        Some(Next::Done) => self.response = Response::Done,
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    return match self.wait(cx, self.read_timeout) {
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        _ => Poll::Pending,
                    }
                }
            }
        }
    }
}

impl futures_lite::AsyncRead for H2Call {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_read_inner(cx, buf)
    }
}

impl futures_lite::AsyncWrite for H2Call {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_inner(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Sends a client's request body to the endpoint as it arrives (see
/// [`crate::http2::relay`]); a client reset, or a body over `limit`,
/// cancels the call upstream.
async fn pump(mut body: RecvStream, mut send: SendStream<Bytes>, limit: Option<u64>) {
    match crate::http2::relay::relay(&mut body, &mut send, None, limit).await {
        Ok(_) | Err(crate::http2::relay::Cut::Destination) => {}
        Err(_) => send.send_reset(h2::Reason::CANCEL),
    }
}

/// Fields about one HTTP/1.1 connection, never sent on HTTP/2.
fn is_connection_specific(name: &[u8]) -> bool {
    [
        &b"connection"[..],
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"te",
        b"host",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

/// The h2 request for the HTTP/1.1 head the exchange wrote.
fn request(head: &[u8]) -> io::Result<(http::Request<()>, Body)> {
    let bad = |what: &'static str| io::Error::new(io::ErrorKind::InvalidInput, what);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(bad("unparsable request head")),
    }
    let method = parsed.method.ok_or_else(|| bad("no method"))?;
    let path = parsed.path.ok_or_else(|| bad("no target"))?;
    let host = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| h.value)
        .ok_or_else(|| bad("no host"))?;
    let host = std::str::from_utf8(host).map_err(|_| bad("host is not text"))?;
    let uri = http::Uri::builder()
        .scheme("http")
        .authority(host)
        .path_and_query(path)
        .build()
        .map_err(|_| bad("target is not a URI"))?;
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .version(http::Version::HTTP_2)
        .body(())
        .map_err(|_| bad("invalid request"))?;
    let mut body = Body::None;
    for h in parsed.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            body = Body::Chunked(ChunkedDecoder::default());
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| bad("invalid content-length"))?;
            body = Body::Length(n);
        }
        if is_connection_specific(name) {
            continue;
        }
        let name = HeaderName::from_bytes(name).map_err(|_| bad("invalid field name"))?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| bad("invalid field value"))?;
        request.headers_mut().append(name, value);
    }
    // gRPC servers require it; it is the one te HTTP/2 allows, and says
    // only that trailers are welcome.
    request
        .headers_mut()
        .insert(header::TE, HeaderValue::from_static("trailers"));
    Ok((request, body))
}

/// Writes the HTTP/1.1 head for an h2 response: chunked when DATA (and
/// maybe trailers) follow, empty when the HEADERS ended the stream (a
/// gRPC trailers-only answer keeps its `grpc-status` in the head).
fn response_head(parts: &http::response::Parts, end: bool, out: &mut Vec<u8>) {
    let status = parts.status;
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Unknown")
    );
    let bodiless =
        status == http::StatusCode::NO_CONTENT || status == http::StatusCode::NOT_MODIFIED;
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH && !(end && bodiless) {
            continue;
        }
        if is_connection_specific(name.as_str().as_bytes()) {
            continue;
        }
        field(out, name, value.as_bytes());
    }
    if !bodiless {
        if end {
            out.extend_from_slice(b"content-length: 0\r\n");
        } else {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

fn field(out: &mut Vec<u8>, name: &HeaderName, value: &[u8]) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http11_head_becomes_an_h2_request() {
        let head = b"POST /pkg.Svc/Call HTTP/1.1\r\nHost: grpc.example.com\r\nConnection: keep-alive\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\nx-request-id: abc\r\n\r\n";
        let (req, body) = request(head).expect("valid");
        assert_eq!(req.uri(), "http://grpc.example.com/pkg.Svc/Call");
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.headers()["te"], "trailers");
        assert_eq!(req.headers()["x-request-id"], "abc");
        assert!(req.headers().get("connection").is_none());
        assert!(req.headers().get("transfer-encoding").is_none());
        assert!(req.headers().get("host").is_none(), "host is :authority");
        assert!(matches!(body, Body::Chunked(_)));
        let (_, body) =
            request(b"GET / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\n").expect("valid");
        assert!(matches!(body, Body::Length(3)));
        assert!(request(b"GET / HTTP/1.1\r\n\r\n").is_err(), "no host");
    }

    #[test]
    fn a_response_head_becomes_http11() {
        let resp = http::Response::builder()
            .status(200)
            .header("content-type", "application/grpc")
            .header("grpc-status", "5")
            .body(())
            .expect("valid");
        let mut out = Vec::new();
        response_head(&resp.into_parts().0, true, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 5\r\ncontent-length: 0\r\n\r\n"
        );
        let resp = http::Response::builder()
            .status(200)
            .header("content-length", "10")
            .body(())
            .expect("valid");
        let mut out = Vec::new();
        response_head(&resp.into_parts().0, false, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }
}
