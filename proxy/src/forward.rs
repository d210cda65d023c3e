//! One exchange: parse -> route -> pick -> pool -> send head and body ->
//! stream the answer back -> return the upstream connection to the pool ->
//! record the route's statistics.

use crate::access_log;
use crate::balance::maglev::Maglev;
use crate::conn::{answer_and_close, ClientConn};
use crate::error::{write_proxy_answer, ProxyError};
use crate::http::body::{self, BodyError};
use crate::http::head::IpText;
use crate::http::head::{self, ClientConnection, Forwarded};
use crate::http::{request, response, BodyLen, RequestError, MAX_HEADERS};
use crate::metrics::{self, Cause};
use crate::router::path::RouteId;
use crate::router::{host, Match};
use crate::shard::{LocalTable, Shard};
use crate::tunnel;
use crate::upstream::pool::Pool;
use crate::upstream::{self, Upstream};
use futures_lite::AsyncWriteExt;
use rauta_shared::config::HashKey;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

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
    route: RouteId,
    backend: usize,
    endpoint: usize,
    method: usize,
    head_len: u64,
    body: BodyLen,
    keep_alive: bool,
    http10: bool,
    head_request: bool,
    upgrade: bool,
    expect_continue: bool,
}

/// A request that cannot be forwarded, with what is known about it.
struct Refused {
    error: ProxyError,
    /// The request was read whole, so the connection may go on.
    keep: bool,
    /// The route, when one was chosen before the refusal.
    route: Option<RouteId>,
    method: usize,
    head_len: u64,
}

/// What happened, for the route's statistics.
#[derive(Debug)]
struct Tally {
    /// Status sent to the client; 499 (nginx's "client closed request")
    /// until a status is sent.
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    upstream_us: Option<u64>,
    connect_us: Option<u64>,
    cause: Option<Cause>,
    upstream: Option<SocketAddr>,
    upstream_status: Option<u16>,
}

impl Tally {
    fn new(head_len: u64) -> Tally {
        Tally {
            status: 499,
            bytes_in: head_len,
            bytes_out: 0,
            upstream_us: None,
            connect_us: None,
            cause: None,
            upstream: None,
            upstream_status: None,
        }
    }
}

/// Completes and queues the access-log line started in [`plan`], if any.
fn log_line(
    shard: &Shard,
    conn: &mut ClientConn,
    tally: &Tally,
    started: Instant,
    route: Option<&str>,
) {
    let Some(log) = &shard.access_log else { return };
    if conn.log.is_empty() {
        return;
    }
    let end = access_log::LineEnd {
        status: tally.status,
        bytes_in: tally.bytes_in,
        bytes_out: tally.bytes_out,
        request_time: started.elapsed().as_secs_f64(),
        upstream: tally.upstream,
        upstream_status: tally.upstream_status,
        upstream_time: tally.upstream_us.map(|us| us as f64 / 1e6),
        route,
    };
    access_log::finish_line(&mut conn.log, &end);
    log.push(&conn.log);
}

fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros() as u64
}

/// Serves one request whose head is complete in `conn.rbuf`.
pub async fn exchange(shard: &Shard, conn: &mut ClientConn) -> Outcome {
    let started = Instant::now();
    conn.log.clear();
    let Some(table) = shard.table() else {
        shard.metrics.unrouted_error(Cause::NotReady);
        return fail(conn, &ProxyError::NotReady, false, &mut Tally::new(0)).await;
    };
    let (plan, stats) = match plan(shard, conn, &table) {
        Ok(plan) => {
            let stats = &table.stats[plan.route as usize];
            (plan, stats)
        }
        Err(refused) => {
            let Some(route) = refused.route else {
                if let Some(cause) = refused.error.cause() {
                    shard.metrics.unrouted_error(cause);
                }
                let mut tally = Tally::new(refused.head_len);
                let outcome = fail(conn, &refused.error, refused.keep, &mut tally).await;
                log_line(shard, conn, &tally, started, None);
                return outcome;
            };
            let stats = &table.stats[route as usize];
            stats.begin();
            let mut tally = Tally::new(refused.head_len);
            let outcome = fail(conn, &refused.error, refused.keep, &mut tally).await;
            if let Some(cause) = refused.error.cause() {
                stats.error(cause);
            }
            stats.end(
                refused.method,
                tally.status,
                tally.bytes_in,
                tally.bytes_out,
                micros(started),
                None,
            );
            shard.metrics.touch(stats);
            log_line(shard, conn, &tally, started, Some(&stats.key));
            return outcome;
        }
    };
    stats.begin();
    shard.metrics.touch(stats);
    let mut tally = Tally::new(plan.head_len);
    let outcome = forward(shard, conn, &table, &plan, &mut tally).await;
    if let Some(cause) = tally.cause {
        stats.error(cause);
    }
    if let Some(us) = tally.connect_us {
        stats.connected(us);
    }
    stats.end(
        plan.method,
        tally.status,
        tally.bytes_in,
        tally.bytes_out,
        micros(started),
        tally.upstream_us,
    );
    // A snapshot may have been taken while the request ran.
    shard.metrics.touch(stats);
    log_line(shard, conn, &tally, started, Some(&stats.key));
    outcome
}

/// Counts a connection to an endpoint as active while it is held.
struct Checkout<'a> {
    pool: &'a Pool,
    addr: SocketAddr,
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        self.pool.checkin(self.addr);
    }
}

async fn forward(
    shard: &Shard,
    conn: &mut ClientConn,
    table: &LocalTable,
    plan: &Plan,
    tally: &mut Tally,
) -> Outcome {
    // After an upstream failure the connection can carry another request
    // only if no request body is left unread on it.
    let keep_on_error = plan.keep_alive && plan.body == BodyLen::None;
    let backend = table.routes.backend(plan.backend);
    let _inflight = table.states[plan.backend].start(plan.endpoint);
    let cfg = &shard.cfg;
    let upstream_started = Instant::now();
    let has_body = plan.body != BodyLen::None;
    let mut up = match upstream::acquire(
        &shard.pool,
        backend,
        plan.endpoint,
        &cfg.connect,
        has_body,
    )
    .await
    {
        Ok(up) => up,
        Err(e) => return fail(conn, &e, keep_on_error, tally).await,
    };
    tally.connect_us = up.connect_us;
    tally.upstream = Some(up.addr);
    shard.pool.checkout(up.addr);
    let _checkout = Checkout {
        pool: &shard.pool,
        addr: up.addr,
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
    let response = loop {
        let sent = send_request(conn, &mut up, plan, cfg.max_body_bytes).await;
        // Once the body was sent whole, the client connection is in step.
        let keep = sent.is_ok() && plan.keep_alive;
        let result = match sent {
            Ok(n) => {
                tally.bytes_in += n;
                read_response_head(shard, conn, &mut up, plan).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(response) => break response,
            Err(Failure::Stale) if up.reused && !resent && !has_body => {
                resent = true;
                match upstream::connect(up.addr, &cfg.connect).await {
                    Ok(stream) => {
                        up = Upstream {
                            stream,
                            reused: false,
                            ..up
                        }
                    }
                    Err(e) => return fail(conn, &ProxyError::Connect(e), keep, tally).await,
                }
            }
            Err(Failure::Stale) => {
                let e = ProxyError::UpstreamIo(io::ErrorKind::UnexpectedEof.into());
                return fail(conn, &e, keep, tally).await;
            }
            Err(Failure::Proxy(e)) => {
                let keep = keep && e.fault() == crate::error::Fault::Upstream;
                return fail(conn, &e, keep, tally).await;
            }
            Err(Failure::ClientGone) => return Outcome::Done,
        }
    };
    tally.status = response.status;
    tally.upstream_status = Some(response.status);
    let outcome = relay_response(shard, conn, up, response, tally).await;
    tally.upstream_us = Some(micros(upstream_started));
    outcome
}

/// Parses the head, routes, picks an endpoint and writes the upstream head
/// into `conn.out`; consumes the head from the read buffer when the request
/// goes on (or when a refused request was read whole).
fn plan(shard: &Shard, conn: &mut ClientConn, table: &LocalTable) -> Result<Plan, Refused> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let limit = shard.cfg.max_headers.min(MAX_HEADERS);
    let refused = |error: ProxyError| Refused {
        error,
        keep: false,
        route: None,
        method: 0,
        head_len: 0,
    };
    let req = match request::parse(conn.rbuf.data(), &mut headers[..limit]) {
        Ok(Some(req)) => req,
        Ok(None) => return Err(refused(RequestError::Bad("incomplete request head").into())),
        Err(e) => return Err(refused(e.into())),
    };
    let method = metrics::method_index(req.method);
    let mut request_id = [0u8; 32];
    shard.next_request_id(&mut request_id);
    if shard.access_log.is_some() {
        // The id the upstream sees: the client's, else ours.
        let id = req
            .header("x-request-id")
            .filter(|v| !v.is_empty())
            .unwrap_or(&request_id);
        access_log::start_line(
            &mut conn.log,
            conn.peer,
            req.method,
            req.host.unwrap_or(b""),
            req.target,
            id,
        );
    }
    let via = Via {
        peer: conn.peer,
        peer_ip: &conn.peer_ip,
        tls: conn.stream.is_tls(),
        port: conn.port,
    };
    let result = route(shard, &mut conn.out, via, table, &req, method, &request_id);
    // Without a body the request is fully read: a refusal can keep the connection.
    let (len, keep) = (req.len, req.body == BodyLen::None && req.keep_alive);
    match result {
        Ok(plan) => {
            conn.rbuf.consume(len);
            Ok(plan)
        }
        Err((error, route)) => {
            if keep {
                conn.rbuf.consume(len);
            }
            Err(Refused {
                error,
                keep,
                route,
                method,
                head_len: len as u64,
            })
        }
    }
}

/// How the client reached the proxy.
#[derive(Debug, Clone, Copy)]
struct Via<'a> {
    peer: SocketAddr,
    peer_ip: &'a IpText,
    tls: bool,
    /// The local port it connected to.
    port: u16,
}

fn route(
    shard: &Shard,
    out: &mut Vec<u8>,
    via: Via<'_>,
    table: &LocalTable,
    req: &request::RequestHead,
    method: usize,
    request_id: &[u8],
) -> Result<Plan, (ProxyError, Option<RouteId>)> {
    let mut host_buf = [0u8; host::MAX_HOST_LEN];
    let host = match req.host {
        Some(h) => host::normalize(h, &mut host_buf).ok_or((ProxyError::BadHost, None))?,
        None => "",
    };
    if let Some(path) = &shard.cfg.panic_path {
        assert!(req.path != &**path, "test hook: a request for {path}");
    }
    let (route, backend_index) = match table.routes.lookup(host, req.path) {
        Match::Route { route, backend } => (route, backend),
        Match::None => return Err((ProxyError::NoRoute, None)),
    };
    if !via.tls && !host.is_empty() && table.routes.route(route).ssl_redirect {
        if let Some(tls_port) = shard.tls_port {
            let location = https_location(host, tls_port, req.origin_target);
            return Err((ProxyError::HttpsRedirect(location), Some(route)));
        }
    }
    if let (BodyLen::Length(n), Some(limit)) = (req.body, shard.cfg.max_body_bytes) {
        if n > limit {
            return Err((ProxyError::BodyTooLarge, Some(route)));
        }
    }
    let backend = table.routes.backend(backend_index);
    let key_hash = backend.hash_key().and_then(|key| match key {
        HashKey::ClientIp => Some(match via.peer.ip() {
            std::net::IpAddr::V4(ip) => Maglev::hash_key(&ip.octets()),
            std::net::IpAddr::V6(ip) => Maglev::hash_key(&ip.octets()),
        }),
        HashKey::Header(name) => req.header(name).map(Maglev::hash_key),
        HashKey::RequestUri => Some(Maglev::hash_key(req.origin_target.as_bytes())),
        HashKey::Host => Some(Maglev::hash_key(host.as_bytes())),
    });
    let endpoint = backend
        .pick(&table.states[backend_index], key_hash, &shard.rng)
        .ok_or((ProxyError::NoEndpoint, Some(route)))?;

    let fwd = Forwarded {
        client_ip: via.peer_ip.as_bytes(),
        proto: if via.tls { "https" } else { "http" },
        port: via.port,
        request_id,
    };
    // Only an HTTP/1.0 request without Host needs the endpoint as Host:
    // format it only then, not on every request.
    let mut fallback_host = [0u8; 64];
    let mut fallback_len = 0;
    if req.host.is_none() {
        let mut cursor = io::Cursor::new(&mut fallback_host[..]);
        let _ = write!(cursor, "{}", backend.endpoints[endpoint].addr);
        fallback_len = cursor.position() as usize;
    }
    head::write_request(out, req, &fwd, &fallback_host[..fallback_len]);
    Ok(Plan {
        route,
        backend: backend_index,
        endpoint,
        method,
        head_len: req.len as u64,
        body: req.body,
        keep_alive: req.keep_alive,
        http10: req.minor == 0,
        head_request: req.is_head(),
        upgrade: req.upgrade.is_some(),
        expect_continue: req.expect_continue,
    })
}

/// `https://host[:port]/target`, the port left out when it is 443.
fn https_location(host: &str, port: u16, target: &str) -> String {
    let mut location = String::with_capacity(16 + host.len() + target.len());
    location.push_str("https://");
    location.push_str(host);
    if port != 443 {
        location.push(':');
        location.push_str(&port.to_string());
    }
    location.push_str(target);
    location
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

/// Sends the head in `conn.out` and streams the body; returns body bytes.
async fn send_request(
    conn: &mut ClientConn,
    up: &mut Upstream,
    plan: &Plan,
    limit: Option<u64>,
) -> Result<u64, Failure> {
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
    if result.is_ok() {
        up.stream.expect_read_wait();
    }
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

/// A final response head, already rewritten for the client in `conn.out`.
#[derive(Debug)]
struct ResponseInfo {
    status: u16,
    body: BodyLen,
    reusable: bool,
    upgraded: bool,
    dechunk: bool,
    client: ClientConnection,
}

/// Reads until a final (non-1xx) response head is buffered, relaying
/// interim responses other than the 100 the proxy already sent; writes the
/// client's head into `conn.out` and consumes the upstream head.
async fn read_response_head(
    shard: &Shard,
    conn: &mut ClientConn,
    up: &mut Upstream,
    plan: &Plan,
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
                    return Err(Failure::Proxy(ProxyError::UpstreamProtocol(
                        "101 Switching Protocols without an upgrade request",
                    )));
                }
                Ok(Some(resp)) => {
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
                    head::write_response(&mut conn.out, &resp, client, dechunk);
                    let info = ResponseInfo {
                        status: resp.status,
                        body: resp.body,
                        reusable: resp.reusable,
                        upgraded,
                        dechunk,
                        client,
                    };
                    let len = resp.len;
                    conn.ubuf.consume(len);
                    return Ok(info);
                }
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
    resp: ResponseInfo,
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
        tunnel::run(conn, up.stream, shard.cfg.tunnel_idle_timeout).await;
        return Outcome::Done;
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
            if resp.reusable && conn.ubuf.is_empty() {
                shard.pool.put(up.addr, up.stream);
            }
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
            tracing::debug!(peer = %conn.peer, upstream = %up.addr, error = %e, "response body relay failed");
            Outcome::Done
        }
    }
}

/// Answers with an error. `keep` is true when the request was read whole,
/// so the connection could carry another request.
async fn fail(conn: &mut ClientConn, e: &ProxyError, keep: bool, tally: &mut Tally) -> Outcome {
    tally.status = e.status();
    tally.cause = e.cause();
    if keep {
        write_proxy_answer(&mut conn.out, e, false);
        tally.bytes_out += conn.out.len() as u64;
        if conn.stream.write_all(&conn.out).await.is_err() {
            return Outcome::Done;
        }
        return Outcome::KeepAlive;
    }
    answer_and_close(conn, e).await;
    tally.bytes_out += conn.out.len() as u64;
    Outcome::Done
}
