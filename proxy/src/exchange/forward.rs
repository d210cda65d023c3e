//! Step two of an exchange: an upstream connection from the pool or a
//! connect, the request head and body sent, the response head read. This
//! is the one place where a failed attempt is retried, and the decision is
//! the error's own ([`ProxyError::retry`]).

use super::plan::Plan;
use super::record::{self, Tally};
use crate::downstream::{ClientConn, Outcome};
use crate::error::{Fault, ProxyError, Retry};
use crate::http::body::{self, BodyError};
use crate::http::head::ClientConnection;
use crate::http::response::{self, ResponseHead};
use crate::http::{BodyLen, MAX_HEADERS};
use crate::shard::{LocalTable, Shard};
use crate::upstream::{self, Upstream};
use futures_lite::AsyncWriteExt;
use std::io;
use std::time::Instant;

/// The upstream connection and the response head it answered with.
pub(super) struct Forwarded<'s> {
    /// The connection, with the rest of the response to read.
    pub(super) up: Upstream<'s>,
    /// The response head, already written for the client in `conn.out`.
    pub(super) response: ResponseInfo,
    /// When the first attempt started (the upstream time runs from here).
    pub(super) started: Instant,
}

/// Sends the planned request upstream and reads the response head,
/// retrying as the failures allow: another endpoint after a failed connect
/// (nothing was sent), a fresh connection after a reused one closed before
/// answering (only without a body, which cannot be sent twice). Any other
/// failure is answered here; the outcome is then returned as the error.
pub(super) async fn forward<'s>(
    shard: &'s Shard,
    conn: &mut ClientConn,
    table: &LocalTable,
    plan: &Plan<'_>,
    tally: &mut Tally,
    client_head: ClientHead,
) -> Result<Forwarded<'s>, Outcome> {
    let backend = table.routes.backend(plan.backend);
    let _inflight = table.states[plan.backend].start(plan.endpoint);
    let started = Instant::now();
    let has_body = plan.body != BodyLen::None;
    let attempts = if plan.pinned {
        1
    } else {
        shard.cfg.connect.attempts.clamp(1, backend.endpoints.len())
    };
    let (mut connects, mut resent) = (0, false);
    let mut endpoint = plan.endpoint;
    // After a reused connection failed, the retry takes a new one.
    let mut fresh = false;
    loop {
        let acquired = upstream::acquire(
            &shard.pool,
            backend,
            endpoint,
            &shard.cfg.connect,
            has_body,
            fresh,
        )
        .await;
        let result = match acquired {
            Ok(mut up) => {
                tally.connect_us = up.connect_us;
                tally.upstream = Some(up.addr);
                let reused = up.reused;
                match exchange_on(shard, conn, &mut up, plan, endpoint, tally, client_head).await {
                    Ok(response) => {
                        return Ok(Forwarded {
                            up,
                            response,
                            started,
                        })
                    }
                    Err(failure) => (failure, reused),
                }
            }
            // Nothing was read from the client beyond the head: the
            // connection goes on when the request had no body.
            Err(error) => {
                let keep = plan.keep_alive && !has_body;
                (Failure::Proxy { error, keep }, false)
            }
        };
        let (error, keep, reused) = match result {
            (Failure::ClientGone, _) => return Err(Outcome::Done),
            (Failure::Proxy { error, keep }, reused) => (error, keep, reused),
        };
        match error.retry() {
            Retry::OtherEndpoint if connects + 1 < attempts => {
                tracing::debug!(upstream = ?tally.upstream, %error, "trying the next endpoint");
                connects += 1;
                endpoint = backend.retry(plan.endpoint, connects);
                fresh = false;
            }
            Retry::IfReused if reused && !resent && !has_body => {
                resent = true;
                fresh = true;
            }
            _ => return Err(record::fail(conn, &error, keep, tally).await),
        }
    }
}

/// One attempt on one upstream connection: 100 Continue when asked, the
/// request sent, the response head read.
async fn exchange_on(
    shard: &Shard,
    conn: &mut ClientConn,
    up: &mut Upstream<'_>,
    plan: &Plan<'_>,
    endpoint: usize,
    tally: &mut Tally,
    client_head: ClientHead,
) -> Result<ResponseInfo, Failure> {
    // Sent once at most: a request with a body is never sent twice, and
    // connect failures happen before this.
    if plan.expect_continue
        && conn
            .stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .is_err()
    {
        return Err(Failure::ClientGone);
    }
    tally.bytes_in += send_request(conn, up, plan, plan.body_limit).await?;
    // The body was sent whole: after an upstream failure the client
    // connection is in step and can carry its next request.
    read_response_head(shard, conn, up, plan, endpoint, client_head)
        .await
        .map_err(|f| match f {
            Failure::Proxy { error, .. } => {
                let keep = plan.keep_alive && error.fault() == Fault::Upstream;
                Failure::Proxy { error, keep }
            }
            f => f,
        })
}

/// How one attempt failed.
enum Failure {
    /// Answer the client with this error (unless it is retried). `keep`:
    /// the request was read whole, so the client connection can go on.
    Proxy { error: ProxyError, keep: bool },
    /// The client went away; nothing to answer.
    ClientGone,
}

impl Failure {
    fn upstream(error: ProxyError) -> Failure {
        Failure::Proxy { error, keep: false }
    }
}

/// Sends the head in `conn.out` and streams the body; returns body bytes.
async fn send_request(
    conn: &mut ClientConn,
    up: &mut Upstream<'_>,
    plan: &Plan<'_>,
    limit: Option<u64>,
) -> Result<u64, Failure> {
    if let Err(e) = up.stream.write_all(&conn.out).await {
        return Err(Failure::upstream(if is_reset(&e) {
            ProxyError::UpstreamClosed(e)
        } else {
            ProxyError::UpstreamIo(e)
        }));
    }
    // A request body is never close-delimited (the parser never says so).
    let result = body::relay(
        &mut conn.stream,
        &mut conn.rbuf,
        &mut up.stream,
        plan.body,
        false,
        limit,
    )
    .await;
    if result.is_ok() {
        up.stream.expect_read_wait();
    }
    result.map_err(|e| match e {
        BodyError::Write(e) => Failure::upstream(ProxyError::UpstreamIo(e)),
        BodyError::Eof => Failure::ClientGone,
        BodyError::Read(e) if e.kind() == io::ErrorKind::TimedOut => {
            Failure::upstream(ProxyError::ClientTimeout)
        }
        BodyError::Read(_) => Failure::ClientGone,
        e @ (BodyError::Framing(_) | BodyError::TooLarge) => {
            Failure::upstream(ProxyError::ClientBody(e))
        }
    })
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
    )
}

/// A final response head, already rewritten for the client in `conn.out`.
#[derive(Debug)]
pub(super) struct ResponseInfo {
    /// Its status.
    pub(super) status: u16,
    /// How its body is framed on the upstream side.
    pub(super) body: BodyLen,
    /// The upstream connection may carry another request after it.
    pub(super) reusable: bool,
    /// A 101 to an upgrade request: the connection becomes a tunnel.
    pub(super) upgraded: bool,
    /// A chunked body goes to an HTTP/1.0 client decoded.
    pub(super) dechunk: bool,
    /// What the client connection does after it.
    pub(super) client: ClientConnection,
}

/// The response phase, which writes the client's head for a final
/// response head from the endpoint that answered (see
/// `answer::response_head`); passed in, so this step does not reach
/// forward into the next one.
pub(super) type ClientHead =
    fn(&Shard, &Plan<'_>, usize, &ResponseHead, &mut Vec<u8>) -> ResponseInfo;

/// Reads until a final (non-1xx) response head is buffered, relaying
/// interim responses other than the 100 the proxy already sent; writes the
/// client's head into `conn.out` and consumes the upstream head.
async fn read_response_head(
    shard: &Shard,
    conn: &mut ClientConn,
    up: &mut Upstream<'_>,
    plan: &Plan<'_>,
    endpoint: usize,
    client_head: ClientHead,
) -> Result<ResponseInfo, Failure> {
    conn.ubuf.clear();
    let mut got_any = false;
    loop {
        let interim = {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match response::parse(conn.ubuf.data(), &mut headers, plan.head_request) {
                Ok(Some(resp)) if (100..200).contains(&resp.status) && resp.status != 101 => {
                    Some((resp.len, resp.status))
                }
                Ok(Some(resp)) if resp.status == 101 && !plan.upgrade => {
                    // The client asked for no switch; relaying one would
                    // leave it speaking HTTP to a peer that no longer does.
                    return Err(Failure::upstream(ProxyError::UpstreamProtocol(
                        "101 Switching Protocols without an upgrade request",
                    )));
                }
                Ok(Some(resp)) => {
                    let info = client_head(shard, plan, endpoint, &resp, &mut conn.out);
                    let len = resp.len;
                    conn.ubuf.consume(len);
                    return Ok(info);
                }
                Ok(None) => None,
                Err(e) => {
                    return Err(Failure::upstream(ProxyError::UpstreamProtocol(match e {
                        response::ResponseError::Malformed(m) => m,
                        response::ResponseError::TooLarge => "response head too large",
                    })))
                }
            }
        };
        if let Some((len, status)) = interim {
            let relay = !(plan.http10 || (status == 100 && plan.expect_continue));
            if relay
                && conn
                    .stream
                    .write_all(&conn.ubuf.data()[..len])
                    .await
                    .is_err()
            {
                return Err(Failure::ClientGone);
            }
            conn.ubuf.consume(len);
            continue;
        }
        if conn.ubuf.is_full() {
            return Err(Failure::upstream(ProxyError::UpstreamProtocol(
                "response head too large",
            )));
        }
        match conn.ubuf.fill(&mut up.stream).await {
            Ok(0) if !got_any => {
                let closed = io::ErrorKind::UnexpectedEof.into();
                return Err(Failure::upstream(ProxyError::UpstreamClosed(closed)));
            }
            Ok(0) => {
                return Err(Failure::upstream(ProxyError::UpstreamProtocol(
                    "closed inside the response head",
                )))
            }
            Ok(_) => got_any = true,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(Failure::upstream(ProxyError::UpstreamTimeout))
            }
            Err(e) if !got_any && is_reset(&e) => {
                return Err(Failure::upstream(ProxyError::UpstreamClosed(e)))
            }
            Err(e) => return Err(Failure::upstream(ProxyError::UpstreamIo(e))),
        }
    }
}
