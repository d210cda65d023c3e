//! One HTTP/2 client connection on a shard: the handshake, a task per
//! accepted stream running one exchange through a [`Bridge`], and the
//! drain (GOAWAY, in-flight streams finish within the drain timeout).
//!
//! Writes coalesce by construction: stream tasks hand frames to `h2` and
//! wake this task, which the executor runs after them, so the frames of
//! every stream answered in one turn leave in one write.

use super::bridge::Bridge;
use super::frames::{self, Checked, Refused};
use super::io::H2Io;
use crate::downstream::{ClientConn, ClientStream, INITIAL_BUF};
use crate::exchange::exchange;
use crate::http::buf::IoBuf;
use crate::http::head::IpText;
use crate::http::request::head_complete;
use crate::rt;
use crate::shard::Shard;
use bytes::Bytes;
use futures_lite::{future, AsyncWriteExt};
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Per-stream flow-control window: large enough for streaming uploads.
const STREAM_WINDOW: u32 = 1 << 20;
/// Per-connection flow-control window.
const CONNECTION_WINDOW: u32 = 4 << 20;
/// Most response bytes `h2` buffers per stream beyond the client's window.
const SEND_BUFFER: usize = 256 * 1024;
/// How long a GOAWAY for a refused frame may take to leave.
const GOAWAY_FLUSH: Duration = Duration::from_secs(1);

/// Serves an HTTP/2 connection; `replay` holds bytes already read from it.
pub async fn serve(
    shard: &Rc<Shard>,
    stream: ClientStream,
    replay: Vec<u8>,
    peer: SocketAddr,
    port: u16,
) {
    let tls = stream.is_tls();
    let cfg = &shard.cfg;
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(cfg.http2_max_streams)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(cfg.max_header_bytes.min(u32::MAX as usize) as u32)
        .max_send_buffer_size(SEND_BUFFER);
    let vectored = matches!(stream, ClientStream::Plain(_));
    // Frames h2 would refuse with the wrong code are refused ahead of it.
    let refused = Refused::default();
    let io = Checked::new(H2Io::new(stream, replay, vectored), refused.clone());
    let handshake = builder.handshake::<_, Bytes>(io);
    let mut conn = match rt::timeout(cfg.header_read_timeout, handshake).await {
        Some(Ok(conn)) => conn,
        Some(Err(e)) => {
            tracing::debug!(%peer, error = %e, "HTTP/2 handshake failed");
            return;
        }
        None => return,
    };
    let peer_ip = IpText::new(peer.ip());
    let state = Rc::new(ConnState {
        open: Cell::new(0),
        streams: Cell::new(0),
        premature: Cell::new(0),
        last_active: Cell::new(Instant::now()),
        spare: Default::default(),
    });
    let mut ping = conn.ping_pong();
    let mut ping_sent: Option<Instant> = None;
    let ping_interval = cfg.http2_ping_interval.max(Duration::from_millis(100));
    let tick = cfg.idle_timeout.min(ping_interval);
    // One timer for the connection, not one per stream.
    let mut timer = rt::sleep(tick);
    let shutdown = loop {
        let next = future::or(
            async { Event::Stream(frames::accept(&mut conn, &refused, GOAWAY_FLUSH).await) },
            future::or(
                async {
                    shard.drain.wait().await;
                    Event::Drain
                },
                async {
                    (&mut timer).await;
                    Event::Tick
                },
            ),
        )
        .await;
        match next {
            Event::Stream(Some(Ok((request, respond)))) => {
                shard.metrics.h2_stream();
                if state.abusive() {
                    // Envoy's rule: most streams reset by the client before
                    // their answer, so the work is done for nothing.
                    tracing::debug!(%peer, streams = state.streams.get(), premature = state.premature.get(), "HTTP/2 client resets its streams prematurely: GOAWAY");
                    shard.metrics.h2_abusive();
                    conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
                    break Shutdown::Abrupt;
                }
                state.started();
                let (shard, state) = (shard.clone(), state.clone());
                rt::spawn_local(async move {
                    let (parts, body) = request.into_parts();
                    let premature = serve_stream(
                        &shard, &state, &parts, body, respond, tls, peer, peer_ip, port,
                    )
                    .await;
                    state.ended(premature);
                    if premature {
                        shard.metrics.h2_premature_reset();
                    }
                })
                .detach();
            }
            Event::Stream(Some(Err(e))) => {
                tracing::debug!(%peer, error = %e, "HTTP/2 connection failed");
                return;
            }
            Event::Stream(None) => return,
            Event::Drain => break Shutdown::Graceful,
            Event::Tick => {
                timer = rt::sleep(tick);
                if state.open.get() == 0 && state.last_active.get().elapsed() >= cfg.idle_timeout {
                    // Idle as an HTTP/1.1 keep-alive connection would be.
                    break Shutdown::Graceful;
                }
                let Some(ping) = ping.as_mut() else { continue };
                if let Some(sent) = ping_sent {
                    let waker = std::task::Waker::noop();
                    match ping.poll_pong(&mut std::task::Context::from_waker(waker)) {
                        std::task::Poll::Ready(Ok(_)) => ping_sent = None,
                        _ if sent.elapsed() >= ping_interval => {
                            tracing::debug!(%peer, "HTTP/2 client did not answer PING: closed");
                            return;
                        }
                        _ => continue,
                    }
                }
                // A quiet peer that is gone (a phone, a NAT that forgot the
                // flow) shows by not answering; one that is there costs a frame.
                if ping.send_ping(h2::Ping::opaque()).is_ok() {
                    ping_sent = Some(Instant::now());
                }
            }
        }
    };
    if let Shutdown::Graceful = shutdown {
        // GOAWAY, then the streams already accepted finish.
        conn.graceful_shutdown();
    }
    let closed = future::poll_fn(|cx| conn.poll_closed(cx));
    let _ = rt::timeout(cfg.drain_timeout, closed).await;
}

/// What ended one wait of the connection's loop.
enum Event<T> {
    Stream(Option<Result<T, h2::Error>>),
    Drain,
    Tick,
}

/// How the connection is being closed.
enum Shutdown {
    /// GOAWAY; the accepted streams finish.
    Graceful,
    /// GOAWAY with an error already sent.
    Abrupt,
}

/// Premature resets (streams reset by the client before their answer
/// ended) a connection may have before its ratio counts.
const PREMATURE_FLOOR: u64 = 100;

/// One connection's streams, as its loop and its stream tasks see them.
struct ConnState {
    /// Streams being served.
    open: Cell<usize>,
    /// Streams accepted.
    streams: Cell<u64>,
    /// Streams the client reset before their answer ended.
    premature: Cell<u64>,
    /// When a stream last started or ended.
    last_active: Cell<Instant>,
    /// Buffers of ended streams, for the next ones.
    spare: std::cell::RefCell<Vec<StreamBuffers>>,
}

/// A stream's read buffers (client side, upstream side) and head and
/// log-line buffers.
type StreamBuffers = (IoBuf, IoBuf, Vec<u8>, Vec<u8>);

/// Most stream buffers a connection keeps for its next streams.
const SPARE_BUFFERS: usize = 16;

impl ConnState {
    fn started(&self) {
        self.open.set(self.open.get() + 1);
        self.streams.set(self.streams.get() + 1);
        self.last_active.set(Instant::now());
    }

    fn ended(&self, premature: bool) {
        self.open.set(self.open.get().saturating_sub(1));
        self.premature
            .set(self.premature.get() + u64::from(premature));
        self.last_active.set(Instant::now());
    }

    /// More than [`PREMATURE_FLOOR`] premature resets, and more than half
    /// of all streams (Envoy's premature-reset rule against rapid reset).
    fn abusive(&self) -> bool {
        let premature = self.premature.get();
        premature > PREMATURE_FLOOR && premature * 2 > self.streams.get()
    }
}

/// One stream: its request as one HTTP/1.1 exchange. Returns whether the
/// client reset it before its answer was complete.
#[allow(clippy::too_many_arguments)]
async fn serve_stream(
    shard: &Rc<Shard>,
    state: &ConnState,
    parts: &http::request::Parts,
    body: RecvStream,
    respond: SendResponse<Bytes>,
    tls: bool,
    peer: SocketAddr,
    peer_ip: IpText,
    port: u16,
) -> bool {
    let bridge = match Bridge::new(parts, body, respond, tls) {
        Ok(bridge) => bridge,
        Err((e, mut respond)) => {
            tracing::debug!(%peer, error = %e, "HTTP/2 stream reset");
            shard.metrics.h2_malformed();
            respond.send_reset(Reason::PROTOCOL_ERROR);
            return false;
        }
    };
    // A stream's buffers come from the connection's spares: no
    // allocation (and no zeroing) per stream once the connection is warm.
    let spare = state.spare.borrow_mut().pop();
    let (rbuf, ubuf, out, log) = spare.unwrap_or_else(|| {
        let cfg = &shard.cfg;
        (
            IoBuf::new(INITIAL_BUF / 4, cfg.max_header_bytes),
            IoBuf::new(INITIAL_BUF / 2, cfg.max_header_bytes.max(INITIAL_BUF)),
            Vec::with_capacity(1024),
            Vec::new(),
        )
    });
    let mut conn = ClientConn {
        stream: ClientStream::H2(Box::new(bridge)),
        peer,
        peer_ip,
        port,
        rbuf,
        ubuf,
        out,
        log,
    };
    let premature = run_stream(shard, &mut conn).await;
    let ClientConn {
        mut rbuf,
        mut ubuf,
        mut out,
        mut log,
        ..
    } = conn;
    let mut spare = state.spare.borrow_mut();
    if spare.len() < SPARE_BUFFERS {
        rbuf.clear();
        ubuf.clear();
        out.clear();
        log.clear();
        spare.push((rbuf, ubuf, out, log));
    }
    premature
}

/// Reads the head the bridge staged, runs the exchange, ends the stream;
/// returns whether the client reset it before its answer was complete.
async fn run_stream(shard: &Rc<Shard>, conn: &mut ClientConn) -> bool {
    // The whole head is staged in the bridge: read until it is buffered.
    let mut scanned = 0;
    while !head_complete(conn.rbuf.data(), scanned) {
        scanned = conn.rbuf.len();
        if conn.rbuf.is_full() {
            let e = crate::http::RequestError::HeadTooLarge.into();
            crate::downstream::answer_and_close(conn, &e).await;
            return false;
        }
        match conn.rbuf.fill(&mut conn.stream).await {
            Ok(n) if n > 0 => {}
            _ => return false,
        }
    }
    let _ = exchange(shard, conn).await;
    let premature = conn.stream.bridge_ref().is_some_and(Bridge::client_reset);
    let _ = conn.stream.close().await;
    premature
}
