//! One HTTP/2 client connection on a shard: the handshake, a task per
//! accepted stream running one exchange through a [`Bridge`], and the
//! drain (GOAWAY, in-flight streams finish within the drain timeout).
//!
//! Writes coalesce by construction: stream tasks hand frames to `h2` and
//! wake this task, which the executor runs after them, so the frames of
//! every stream answered in one turn leave in one write.

use super::bridge::Bridge;
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
use std::net::SocketAddr;
use std::rc::Rc;

/// Per-stream flow-control window: large enough for streaming uploads.
const STREAM_WINDOW: u32 = 1 << 20;
/// Per-connection flow-control window.
const CONNECTION_WINDOW: u32 = 4 << 20;
/// Most response bytes `h2` buffers per stream beyond the client's window.
const SEND_BUFFER: usize = 256 * 1024;

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
    let handshake = builder.handshake::<_, Bytes>(H2Io::new(stream, replay, vectored));
    let mut conn = match rt::timeout(cfg.header_read_timeout, handshake).await {
        Some(Ok(conn)) => conn,
        Some(Err(e)) => {
            tracing::debug!(%peer, error = %e, "HTTP/2 handshake failed");
            return;
        }
        None => return,
    };
    let peer_ip = IpText::new(peer.ip());
    loop {
        let next = future::or(async { Some(conn.accept().await) }, async {
            shard.drain.wait().await;
            None
        })
        .await;
        match next {
            Some(Some(Ok((request, respond)))) => {
                shard.metrics.h2_stream();
                let shard = shard.clone();
                rt::spawn_local(async move {
                    let (parts, body) = request.into_parts();
                    serve_stream(&shard, &parts, body, respond, tls, peer, peer_ip, port).await;
                })
                .detach();
            }
            Some(Some(Err(e))) => {
                tracing::debug!(%peer, error = %e, "HTTP/2 connection failed");
                return;
            }
            Some(None) => return,
            None => break,
        }
    }
    // Draining: GOAWAY, then the streams already accepted finish.
    conn.graceful_shutdown();
    let closed = future::poll_fn(|cx| conn.poll_closed(cx));
    let _ = rt::timeout(cfg.drain_timeout, closed).await;
}

/// One stream: its request as one HTTP/1.1 exchange.
#[allow(clippy::too_many_arguments)]
async fn serve_stream(
    shard: &Shard,
    parts: &http::request::Parts,
    body: RecvStream,
    respond: SendResponse<Bytes>,
    tls: bool,
    peer: SocketAddr,
    peer_ip: IpText,
    port: u16,
) {
    let bridge = match Bridge::new(parts, body, respond, tls) {
        Ok(bridge) => bridge,
        Err((e, mut respond)) => {
            tracing::debug!(%peer, error = %e, "HTTP/2 stream reset");
            shard.metrics.h2_malformed();
            respond.send_reset(Reason::PROTOCOL_ERROR);
            return;
        }
    };
    let cfg = &shard.cfg;
    let mut conn = ClientConn {
        stream: ClientStream::H2(Box::new(bridge)),
        peer,
        peer_ip,
        port,
        rbuf: IoBuf::new(INITIAL_BUF / 4, cfg.max_header_bytes),
        ubuf: IoBuf::new(INITIAL_BUF / 2, cfg.max_header_bytes.max(INITIAL_BUF)),
        out: Vec::with_capacity(1024),
        log: Vec::new(),
    };
    // The whole head is staged in the bridge: read until it is buffered.
    let mut scanned = 0;
    while !head_complete(conn.rbuf.data(), scanned) {
        scanned = conn.rbuf.len();
        if conn.rbuf.is_full() {
            let e = crate::http::RequestError::HeadTooLarge.into();
            crate::downstream::answer_and_close(&mut conn, &e).await;
            return;
        }
        match conn.rbuf.fill(&mut conn.stream).await {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
    let _ = exchange(shard, &mut conn).await;
    let _ = conn.stream.close().await;
}
