//! The last step of an exchange, and the bookkeeping every step shares:
//! the tally of what happened, the route's statistics, the access-log
//! line, and the proxy's own error answer that sets them.

use super::plan::Refused;
use crate::access_log;
use crate::downstream::{answer_and_close, ClientConn, Outcome};
use crate::error::ProxyError;
use crate::metrics::route::RouteStats;
use crate::metrics::Cause;
use crate::shard::{LocalTable, Shard};
use futures_lite::AsyncWriteExt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

/// What happened, for the route's statistics.
#[derive(Debug)]
pub(super) struct Tally {
    /// Status sent to the client; 499 (nginx's "client closed request")
    /// until a status is sent.
    pub(super) status: u16,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    pub(super) upstream_us: Option<u64>,
    pub(super) connect_us: Option<u64>,
    pub(super) cause: Option<Cause>,
    pub(super) upstream: Option<SocketAddr>,
    pub(super) upstream_status: Option<u16>,
    /// Endpoints tried before the last, with why each failed (a
    /// [`crate::error::RETRY_REASONS`] label); empty unless retried.
    pub(super) retried: Vec<(SocketAddr, &'static str)>,
    /// The request's trace context, when it has one.
    pub(super) trace: Option<crate::otel::Trace>,
    /// The route that answered, once one was chosen.
    pub(super) route: Option<crate::router::path::RouteId>,
    /// Mirrored copies waiting for the request body, when the route has any.
    pub(super) mirror: Option<Box<super::mirror::Pending>>,
}

impl Tally {
    pub(super) fn new(head_len: u64) -> Tally {
        Tally {
            status: 499,
            bytes_in: head_len,
            bytes_out: 0,
            upstream_us: None,
            connect_us: None,
            cause: None,
            upstream: None,
            upstream_status: None,
            retried: Vec::new(),
            trace: None,
            route: None,
            mirror: None,
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
        retries: &tally.retried,
        route,
        trace: tally.trace.as_ref().map(|t| t.ctx.ids_hex()),
    };
    access_log::finish_line(&mut conn.log, &end);
    log.push(&conn.log);
}

pub(super) fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros() as u64
}

/// Answers when no table is live yet (no route, so no route stats).
pub(super) async fn not_ready(shard: &Shard, conn: &mut ClientConn) -> Outcome {
    shard.metrics.unrouted_error(Cause::NotReady);
    fail(conn, &ProxyError::NotReady, false, &mut Tally::new(0)).await
}

/// Answers a request that [`super::plan`] refused, and records it under
/// its route when it had one.
pub(super) async fn refused(
    shard: &Shard,
    conn: &mut ClientConn,
    table: &LocalTable,
    refused: Refused,
    tally: &mut Tally,
    started: Instant,
) -> Outcome {
    tally.bytes_in = refused.head_len;
    tally.route = refused.route;
    let Some(route) = refused.route else {
        if let Some(cause) = refused.error.cause() {
            shard.metrics.unrouted_error(cause);
        }
        let outcome = fail(conn, &refused.error, refused.keep, tally).await;
        log_line(shard, conn, tally, started, None);
        return outcome;
    };
    let stats = begin(shard, table, route);
    let outcome = fail(conn, &refused.error, refused.keep, tally).await;
    end(shard, conn, stats, refused.method, tally, started);
    outcome
}

/// Starts the route's statistics for a request.
pub(super) fn begin<'t>(
    shard: &Shard,
    table: &'t LocalTable,
    route: crate::router::path::RouteId,
) -> &'t Rc<RouteStats> {
    let stats = &table.stats[route as usize];
    stats.begin();
    shard.metrics.touch(stats);
    stats
}

/// Ends the route's statistics and writes the access-log line.
pub(super) fn end(
    shard: &Shard,
    conn: &mut ClientConn,
    stats: &Rc<RouteStats>,
    method: usize,
    tally: &mut Tally,
    started: Instant,
) {
    if let Some(cause) = tally.cause {
        stats.error(cause);
    }
    if let Some(us) = tally.connect_us {
        stats.connected(us);
    }
    stats.end(
        u8::from(conn.stream.bridge_ref().is_some()),
        method,
        tally.status,
        tally.bytes_in,
        tally.bytes_out,
        micros(started),
        tally.upstream_us,
    );
    // A snapshot may have been taken while the request ran.
    shard.metrics.touch(stats);
    log_line(shard, conn, tally, started, Some(&stats.key));
}

/// Queues the exchange's span, when it has a sampled trace: the status
/// sent, the route when one was chosen, the endpoint when one answered,
/// and for a 5xx what went wrong. Called once per exchange, however it
/// ended; an untraced exchange pays the one branch.
pub(super) fn span(shard: &Shard, table: &LocalTable, tally: &mut Tally) {
    let Some(trace) = tally.trace.take() else {
        return;
    };
    let (Some(spans), Some(started)) = (&shard.otel, trace.started) else {
        return;
    };
    let route = tally
        .route
        .and_then(|r| table.stats.get(r as usize))
        .map(|stats| stats.key.clone());
    spans.push(crate::otel::Span {
        ctx: trace.ctx,
        started,
        end_ns: crate::otel::unix_nanos(),
        status: tally.status,
        route,
        upstream: tally.upstream,
        cause: tally.cause.map(Cause::label),
    });
}

/// Answers with an error. `keep` is true when the request was read whole,
/// so the connection could carry another request.
pub(super) async fn fail(
    conn: &mut ClientConn,
    e: &ProxyError,
    keep: bool,
    tally: &mut Tally,
) -> Outcome {
    tally.status = e.status();
    tally.cause = e.cause();
    if keep {
        crate::downstream::write_error(conn, e, false);
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
