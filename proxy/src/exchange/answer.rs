//! Step three of an exchange: the response phase writes the client's
//! head, then the body streams back (or the connection becomes a tunnel),
//! and the upstream connection returns to the pool.

use super::forward::{Forwarded, ResponseInfo};
use super::plan::Plan;
use super::record::{micros, Tally};
use super::tunnel;
use crate::downstream::{ClientConn, Outcome};
use crate::http::body::{self, BodyError};
use crate::http::head::{self, ClientConnection};
use crate::http::response::ResponseHead;
use crate::http::BodyLen;
use crate::metrics::Cause;
use crate::shard::Shard;
use crate::upstream::{UpStream, Upstream};
use futures_lite::AsyncWriteExt;
use std::io;

/// The response phase: decides how the answer reaches the client and
/// writes its head into `out`, before anything is sent. Every
/// response-side policy runs here and nowhere else.
pub(super) fn response_head(
    shard: &Shard,
    plan: &Plan<'_>,
    endpoint: usize,
    resp: &ResponseHead,
    out: &mut Vec<u8>,
) -> ResponseInfo {
    let upgraded = plan.upgrade && resp.status == 101;
    let dechunk = plan.http10 && resp.body == BodyLen::Chunked;
    let client = if upgraded {
        ClientConnection::Upgrade
    } else if !plan.keep_alive
        || resp.body == BodyLen::Close
        || dechunk
        || shard.drain.is_draining()
    {
        ClientConnection::Close
    } else {
        ClientConnection::KeepAlive {
            http10: plan.http10,
        }
    };
    head::write_response(out, resp, client, dechunk);
    if let Some(policy) = plan.policy {
        crate::policy::response(policy, &plan.state, resp.status, endpoint, out);
    }
    ResponseInfo {
        status: resp.status,
        body: resp.body,
        reusable: resp.reusable,
        upgraded,
        dechunk,
        client,
    }
}

/// Writes the response head and streams the body, or hands the connection
/// over to a tunnel after a 101; returns the upstream connection to the
/// pool when it ended cleanly.
pub(super) async fn answer(
    shard: &Shard,
    conn: &mut ClientConn,
    forwarded: Forwarded<'_>,
    tally: &mut Tally,
) -> Outcome {
    let Forwarded {
        mut up,
        response: resp,
        started,
    } = forwarded;
    tally.status = resp.status;
    tally.upstream_status = Some(resp.status);
    let outcome = stream_back(shard, conn, &mut up, &resp, tally).await;
    if outcome != Outcome::Done && resp.reusable && conn.ubuf.is_empty() {
        shard.pool.put(up);
    }
    tally.upstream_us = Some(micros(started));
    outcome
}

async fn stream_back(
    shard: &Shard,
    conn: &mut ClientConn,
    up: &mut Upstream<'_>,
    resp: &ResponseInfo,
    tally: &mut Tally,
) -> Outcome {
    // A small body already buffered goes out with the head in one write.
    let mut body_len = resp.body;
    if let BodyLen::Length(n) = body_len {
        if (conn.ubuf.len() as u64) >= n && n <= 16 * 1024 {
            let n = n as usize;
            conn.out.extend_from_slice(&conn.ubuf.data()[..n]);
            conn.ubuf.consume(n);
            body_len = BodyLen::None;
        }
    }
    if conn.stream.write_all(&conn.out).await.is_err() {
        return Outcome::Done;
    }
    tally.bytes_out += conn.out.len() as u64;
    if resp.upgraded {
        // Only an HTTP/1.1 upstream answers 101 (an HTTP/2 call cannot).
        if let Some(tcp) = up.stream.tcp() {
            let idle = shard.cfg.tunnel_idle_timeout;
            tunnel::run(conn, tcp, idle, shard.splicer.as_ref()).await;
        }
        return Outcome::Done;
    }
    if body_len == BodyLen::Chunked && conn.ubuf.is_empty() {
        if let Some(outcome) = relay_frames(conn, up, tally).await {
            return outcome;
        }
    }
    let result = body::relay(
        &mut up.stream,
        &mut conn.ubuf,
        &mut conn.stream,
        body_len,
        resp.dechunk,
        None,
    )
    .await;
    match result {
        Ok(n) => {
            tally.bytes_out += n;
            match resp.client {
                ClientConnection::KeepAlive { .. } => Outcome::KeepAlive,
                _ => Outcome::Close,
            }
        }
        Err(e) => {
            // The head is out: the only honest signal left is to cut the
            // client connection, so it sees a truncated body.
            tally.cause = match e {
                BodyError::Write(_) => None,
                BodyError::Read(ref r) if r.kind() == io::ErrorKind::TimedOut => {
                    Some(Cause::UpstreamTimeout)
                }
                BodyError::Framing(_) => Some(Cause::UpstreamProtocol),
                _ => Some(Cause::UpstreamReset),
            };
            if let Some(bridge) = conn.stream.bridge() {
                bridge.cut(tally.cause == Some(Cause::UpstreamTimeout));
            }
            tracing::debug!(peer = %conn.peer, upstream = %up.addr, error = %e, "response body relay failed");
            Outcome::Done
        }
    }
}

/// An HTTP/2 call's answer to an HTTP/2 client: once the head went out,
/// DATA and trailers pass as frames (no chunked framing in between, no
/// copy); `None` when either side is not HTTP/2 or the body has started.
async fn relay_frames(
    conn: &mut ClientConn,
    up: &mut Upstream<'_>,
    tally: &mut Tally,
) -> Option<Outcome> {
    use crate::http2::relay::{relay, Cut};
    let (UpStream::H2(call), Some(bridge)) = (&mut up.stream, conn.stream.bridge()) else {
        return None;
    };
    if !call.response_body_untouched() {
        return None;
    }
    let mut send = bridge.take_send()?;
    let Some(mut body) = call.take_response_body() else {
        // Not reached: checked just above.
        send.send_reset(h2::Reason::INTERNAL_ERROR);
        return Some(Outcome::Done);
    };
    match relay(&mut body, &mut send, Some(call.read_timeout()), None).await {
        Ok(n) => {
            tally.bytes_out += n;
            Some(Outcome::Close)
        }
        Err(Cut::Destination) => {
            bridge.client_reset_seen();
            Some(Outcome::Done)
        }
        Err(cut) => {
            if let Cut::Source(e) = &cut {
                tracing::debug!(upstream = %up.addr, error = %e, "upstream HTTP/2 answer cut");
            }
            let timeout = matches!(cut, Cut::Timeout);
            tally.cause = Some(if timeout {
                Cause::UpstreamTimeout
            } else {
                Cause::UpstreamReset
            });
            // The client is gone if this fails: nothing left to tell it.
            let _ = bridge.end_cut(&mut send, timeout);
            Some(Outcome::Done)
        }
    }
}
