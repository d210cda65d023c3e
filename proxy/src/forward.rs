//! One exchange: parse -> route -> pick -> pool -> send head and body ->
//! stream the answer back -> return the upstream connection to the pool.

use crate::balance::maglev::Maglev;
use crate::conn::{answer_and_close, ClientConn};
use crate::error::{write_answer, ProxyError};
use crate::http::body::{self, BodyError};
use crate::http::head::{self, ClientConnection, Forwarded};
use crate::http::{request, response, BodyLen, MAX_HEADERS};
use crate::router::{host, Match};
use crate::shard::Shard;
use crate::tunnel;
use crate::upstream::{self, Upstream};
use futures_lite::AsyncWriteExt;
use rauta_shared::config::HashKey;
use std::io::{self, Write};

/// What the connection does after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ready for the next request.
    KeepAlive,
    /// Close the client connection.
    Close,
    /// The connection was already closed or handed over (tunnel).
    Done,
}

/// What the exchange needs once the parsed head is released.
#[derive(Debug)]
struct Plan {
    backend: usize,
    endpoint: usize,
    body: BodyLen,
    keep_alive: bool,
    http10: bool,
    head_request: bool,
    upgrade: bool,
    expect_continue: bool,
}

/// Serves one request whose head is complete in `conn.rbuf`.
pub async fn exchange(shard: &Shard, conn: &mut ClientConn) -> Outcome {
    let Some(table) = shard.table() else {
        return fail(conn, ProxyError::NotReady, false).await;
    };
    let plan = match plan(shard, conn, &table) {
        Ok(plan) => plan,
        Err((e, keep)) => return fail(conn, e, keep).await,
    };
    // After an upstream failure the connection can carry another request
    // only if no request body is left unread on it.
    let keep_on_error = plan.keep_alive && plan.body == BodyLen::None;
    let backend = table.routes.backend(plan.backend);
    let state = &table.states[plan.backend];
    let _inflight = state.start(plan.endpoint);
    let cfg = &shard.cfg;

    let mut up = match upstream::acquire(
        &shard.pool,
        backend,
        plan.endpoint,
        &cfg.connect,
        plan.body != BodyLen::None,
    )
    .await
    {
        Ok(up) => up,
        Err(e) => return fail(conn, e, keep_on_error).await,
    };
    if plan.expect_continue
        && conn
            .stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .is_err()
    {
        return Outcome::Done;
    }
    // A pooled connection may have been closed by the upstream just now; a
    // request without body can safely be sent again on a fresh connection.
    let mut resent = false;
    loop {
        let sent = send_request(conn, &mut up, &plan, cfg.max_body_bytes).await;
        // Once the body was sent whole, the client connection is in step.
        let keep = sent.is_ok() && plan.keep_alive;
        let result = match sent {
            Ok(()) => read_response_head(conn, &mut up, &plan).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => break,
            Err(Failure::Stale) if up.reused && !resent && plan.body == BodyLen::None => {
                resent = true;
                match upstream::connect(up.addr, &cfg.connect).await {
                    Ok(stream) => {
                        up = Upstream {
                            stream,
                            reused: false,
                            ..up
                        }
                    }
                    Err(e) => return fail(conn, ProxyError::Connect(e), keep).await,
                }
            }
            Err(Failure::Stale) => {
                return fail(
                    conn,
                    ProxyError::UpstreamIo(io::ErrorKind::UnexpectedEof.into()),
                    keep,
                )
                .await
            }
            Err(Failure::Proxy(e)) => {
                let keep = keep && e.fault() == crate::error::Fault::Upstream;
                return fail(conn, e, keep).await;
            }
            Err(Failure::ClientGone) => return Outcome::Done,
        }
    }
    relay_response(shard, conn, up, &plan).await
}

/// Parses the head, routes, picks an endpoint and writes the upstream head
/// into `conn.out`; consumes the head from the read buffer on success. An
/// error comes with whether the connection may carry another request.
fn plan(
    shard: &Shard,
    conn: &mut ClientConn,
    table: &crate::shard::LocalTable,
) -> Result<Plan, (ProxyError, bool)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let limit = shard.cfg.max_headers.min(MAX_HEADERS);
    let req = match request::parse(conn.rbuf.data(), &mut headers[..limit]) {
        Ok(Some(req)) => req,
        Ok(None) => {
            return Err((
                crate::http::RequestError::Bad("incomplete request head").into(),
                false,
            ))
        }
        Err(e) => return Err((e.into(), false)),
    };
    let result = route(shard, &mut conn.out, conn.peer, table, &req);
    // Without a body the request is fully read: an error can keep the connection.
    let (len, keep) = (req.len, req.body == BodyLen::None && req.keep_alive);
    match result {
        Ok(plan) => {
            conn.rbuf.consume(len);
            Ok(plan)
        }
        Err(e) => {
            if keep {
                conn.rbuf.consume(len);
            }
            Err((e, keep))
        }
    }
}

fn route(
    shard: &Shard,
    out: &mut Vec<u8>,
    peer: std::net::SocketAddr,
    table: &crate::shard::LocalTable,
    req: &request::RequestHead,
) -> Result<Plan, ProxyError> {
    let mut host_buf = [0u8; host::MAX_HOST_LEN];
    let host = match req.host {
        Some(h) => host::normalize(h, &mut host_buf).ok_or(ProxyError::BadHost)?,
        None => "",
    };
    let backend_index = match table.routes.lookup(host, req.path) {
        Match::Route { backend, .. } | Match::Default { backend } => backend,
        Match::None => return Err(ProxyError::NoRoute),
    };
    if let (BodyLen::Length(n), Some(limit)) = (req.body, shard.cfg.max_body_bytes) {
        if n > limit {
            return Err(ProxyError::BodyTooLarge);
        }
    }
    let backend = table.routes.backend(backend_index);
    let key_hash = backend.hash_key().and_then(|key| match key {
        HashKey::ClientIp => Some(match peer.ip() {
            std::net::IpAddr::V4(ip) => Maglev::hash_key(&ip.octets()),
            std::net::IpAddr::V6(ip) => Maglev::hash_key(&ip.octets()),
        }),
        HashKey::Header(name) => req.header(name).map(Maglev::hash_key),
        HashKey::RequestUri => Some(Maglev::hash_key(req.origin_target.as_bytes())),
        HashKey::Host => Some(Maglev::hash_key(host.as_bytes())),
    });
    let endpoint = backend
        .pick(&table.states[backend_index], key_hash, &shard.rng)
        .ok_or(ProxyError::NoEndpoint)?;

    let mut request_id = [0u8; 32];
    shard.next_request_id(&mut request_id);
    let fwd = Forwarded {
        client_ip: peer.ip(),
        proto: "http",
        port: shard.listen_port,
        request_id: &request_id,
    };
    let mut fallback_host = [0u8; 64];
    let fallback_len = {
        let mut cursor = io::Cursor::new(&mut fallback_host[..]);
        let _ = write!(cursor, "{}", backend.endpoints[endpoint].addr);
        cursor.position() as usize
    };
    head::write_request(out, req, &fwd, &fallback_host[..fallback_len]);
    Ok(Plan {
        backend: backend_index,
        endpoint,
        body: req.body,
        keep_alive: req.keep_alive,
        http10: req.minor == 0,
        head_request: req.is_head(),
        upgrade: req.upgrade.is_some(),
        expect_continue: req.expect_continue,
    })
}

/// How sending a request or reading its answer failed.
enum Failure {
    /// The upstream closed or reset before answering anything.
    Stale,
    /// Answer the client with this error.
    Proxy(ProxyError),
    /// The client went away; nothing to answer.
    ClientGone,
}

async fn send_request(
    conn: &mut ClientConn,
    up: &mut Upstream,
    plan: &Plan,
    limit: Option<u64>,
) -> Result<(), Failure> {
    if let Err(e) = up.stream.write_all(&conn.out).await {
        return Err(if is_reset(&e) {
            Failure::Stale
        } else {
            Failure::Proxy(ProxyError::UpstreamIo(e))
        });
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
    result.map_err(|e| match e {
        BodyError::Write(e) => Failure::Proxy(ProxyError::UpstreamIo(e)),
        BodyError::Eof => Failure::ClientGone,
        BodyError::Read(e) if e.kind() == io::ErrorKind::TimedOut => {
            Failure::Proxy(ProxyError::ClientTimeout)
        }
        BodyError::Read(_) => Failure::ClientGone,
        e @ (BodyError::Framing(_) | BodyError::TooLarge) => {
            Failure::Proxy(ProxyError::ClientBody(e))
        }
    })
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
    )
}

/// Reads until a final (non-1xx) response head is buffered in `conn.ubuf`,
/// relaying interim responses other than the 100 the proxy already sent.
async fn read_response_head(
    conn: &mut ClientConn,
    up: &mut Upstream,
    plan: &Plan,
) -> Result<(), Failure> {
    conn.ubuf.clear();
    let mut got_any = false;
    loop {
        let interim = {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match response::parse(conn.ubuf.data(), &mut headers, plan.head_request) {
                Ok(Some(resp)) if (100..200).contains(&resp.status) && resp.status != 101 => {
                    Some((resp.len, resp.status))
                }
                Ok(Some(_)) => return Ok(()),
                Ok(None) => None,
                Err(e) => {
                    return Err(Failure::Proxy(ProxyError::UpstreamProtocol(match e {
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
            return Err(Failure::Proxy(ProxyError::UpstreamProtocol(
                "response head too large",
            )));
        }
        match conn.ubuf.fill(&mut up.stream).await {
            Ok(0) if !got_any => return Err(Failure::Stale),
            Ok(0) => {
                return Err(Failure::Proxy(ProxyError::UpstreamProtocol(
                    "closed inside the response head",
                )))
            }
            Ok(_) => got_any = true,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(Failure::Proxy(ProxyError::UpstreamTimeout))
            }
            Err(e) if !got_any && is_reset(&e) => return Err(Failure::Stale),
            Err(e) => return Err(Failure::Proxy(ProxyError::UpstreamIo(e))),
        }
    }
}

/// Writes the response head and streams the body; returns the upstream
/// connection to the pool when it ended cleanly.
async fn relay_response(
    shard: &Shard,
    conn: &mut ClientConn,
    mut up: Upstream,
    plan: &Plan,
) -> Outcome {
    let (body_len, reusable, upgraded, head_len, dechunk, client_conn) = {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let resp = match response::parse(conn.ubuf.data(), &mut headers, plan.head_request) {
            Ok(Some(resp)) => resp,
            _ => {
                return fail(
                    conn,
                    ProxyError::UpstreamProtocol("response head changed"),
                    false,
                )
                .await
            }
        };
        let upgraded = plan.upgrade && resp.status == 101;
        let dechunk = plan.http10 && resp.body == BodyLen::Chunked;
        let client_conn = if upgraded {
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
        head::write_response(&mut conn.out, &resp, client_conn, dechunk);
        (
            resp.body,
            resp.reusable,
            upgraded,
            resp.len,
            dechunk,
            client_conn,
        )
    };
    conn.ubuf.consume(head_len);
    // A small body already buffered goes out with the head in one write.
    let mut body_len = body_len;
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
    if upgraded {
        tunnel::run(conn, up.stream).await;
        return Outcome::Done;
    }
    let result = body::relay(
        &mut up.stream,
        &mut conn.ubuf,
        &mut conn.stream,
        body_len,
        dechunk,
        None,
    )
    .await;
    match result {
        Ok(()) => {
            if reusable && conn.ubuf.is_empty() {
                shard.pool.put(up.addr, up.stream);
            }
            match client_conn {
                ClientConnection::KeepAlive { .. } => Outcome::KeepAlive,
                _ => Outcome::Close,
            }
        }
        Err(e) => {
            // The head is out: the only honest signal left is to cut the
            // client connection, so it sees a truncated body.
            tracing::debug!(peer = %conn.peer, upstream = %up.addr, error = %e, "response body relay failed");
            Outcome::Done
        }
    }
}

/// Answers with an error. `keep` is true when the request was read whole,
/// so the connection could carry another request.
async fn fail(conn: &mut ClientConn, e: ProxyError, keep: bool) -> Outcome {
    if keep {
        write_answer(&mut conn.out, e.status(), &e, false);
        if conn.stream.write_all(&conn.out).await.is_err() {
            return Outcome::Done;
        }
        return Outcome::KeepAlive;
    }
    answer_and_close(conn, &e).await;
    Outcome::Done
}
