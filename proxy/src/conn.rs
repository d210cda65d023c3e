//! One client connection: wait for a request head (idle and header-read
//! timeouts, drain), hand each request to [`crate::exchange`], in order, so
//! pipelined requests are answered in sequence; answer failures.

use crate::downstream::{answer_and_close, ClientConn, ClientStream, Outcome, INITIAL_BUF};
use crate::error::ProxyError;
use crate::exchange::exchange;
use crate::http::buf::IoBuf;
use crate::http::head::IpText;
use crate::http::request::head_complete;
use crate::http::RequestError;
use crate::shard::Shard;
use crate::{http2, rt};
use futures_lite::{future, AsyncWriteExt};
use std::rc::Rc;
use std::time::Instant;

/// Serves a client connection (accepted on local `port`) until it closes,
/// fails or the shard drains.
pub async fn run(shard: &Rc<Shard>, stream: ClientStream, port: u16) {
    let Some(tcp) = stream.tcp() else { return };
    let Ok(peer) = tcp.peer_addr() else { return };
    let cfg = &shard.cfg;
    // Per-read timeouts on the socket: idle keep-alive wait and body reads.
    // (TCP_NODELAY needs no syscall here: accepted sockets inherit it from
    // the listener, see listener.rs.)
    if tcp
        .set_read_timeout(Some(cfg.idle_timeout))
        .and(tcp.set_write_timeout(Some(cfg.idle_timeout)))
        .is_err()
    {
        return;
    }
    if cfg.http2 && stream.alpn() == Some(crate::tls::ALPN_H2) {
        shard.metrics.h2_connection();
        // Boxed: an HTTP/2 connection's future is large, and inline it
        // would be carried by every HTTP/1.1 connection's task.
        return Box::pin(http2::serve(shard, stream, Vec::new(), peer, port)).await;
    }
    let mut conn = ClientConn {
        stream,
        peer,
        peer_ip: IpText::new(peer.ip()),
        port,
        rbuf: IoBuf::new(INITIAL_BUF, cfg.max_header_bytes),
        ubuf: IoBuf::new(INITIAL_BUF, cfg.max_header_bytes.max(INITIAL_BUF)),
        out: Vec::with_capacity(4096),
        log: Vec::new(),
    };
    let mut first = true;
    loop {
        match wait_for_head(shard, &mut conn).await {
            // Prior knowledge: the HTTP/2 preface instead of a request.
            Ok(true)
                if std::mem::take(&mut first)
                    && shard.cfg.http2
                    && !conn.stream.is_tls()
                    && conn.rbuf.data().starts_with(http2::PREFACE_LINE) =>
            {
                shard.metrics.h2_connection();
                let replay = conn.rbuf.data().to_vec();
                return Box::pin(http2::serve(shard, conn.stream, replay, peer, port)).await;
            }
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                if let Some(cause) = e.cause() {
                    shard.metrics.unrouted_error(cause);
                }
                answer_and_close(&mut conn, &e).await;
                return;
            }
        }
        match exchange(shard, &mut conn).await {
            Outcome::KeepAlive if !shard.drain.is_draining() => {
                // The client reads its answer before it sends the next
                // request (unless it pipelines, and then it is buffered).
                if conn.rbuf.is_empty() {
                    conn.stream.expect_read_wait();
                }
            }
            Outcome::KeepAlive | Outcome::Close => {
                let _ = conn.stream.close().await;
                return;
            }
            Outcome::Done => return,
        }
    }
}

/// Reads until a complete head is buffered. `Ok(false)`: the client closed
/// (or the shard drains) between requests, nothing to answer.
async fn wait_for_head(shard: &Shard, conn: &mut ClientConn) -> Result<bool, ProxyError> {
    // Idle: nothing buffered yet. The socket's read timeout is the idle
    // timeout; a drain ends the wait at once.
    if conn.rbuf.is_empty() {
        let read = future::or(
            async { Some(conn.rbuf.fill(&mut conn.stream).await) },
            async {
                shard.drain.wait().await;
                None
            },
        )
        .await;
        match read {
            None | Some(Ok(0)) | Some(Err(_)) => return Ok(false),
            Some(Ok(_)) => {}
        }
    }
    if head_complete(conn.rbuf.data(), 0) {
        return Ok(true);
    }
    // A head in several pieces: the whole head must arrive before the
    // header-read deadline (a slow-loris client gets 408, not a slot).
    let deadline = Instant::now() + shard.cfg.header_read_timeout;
    loop {
        if conn.rbuf.is_full() {
            return Err(RequestError::HeadTooLarge.into());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let scanned = conn.rbuf.len();
        match rt::timeout(left, conn.rbuf.fill(&mut conn.stream)).await {
            None => return Err(ProxyError::ClientTimeout),
            Some(Ok(0)) | Some(Err(_)) => return Ok(false),
            Some(Ok(_)) => {}
        }
        if head_complete(conn.rbuf.data(), scanned) {
            return Ok(true);
        }
    }
}
