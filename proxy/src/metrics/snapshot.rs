//! What a shard hands the admin thread on request: route deltas since the
//! last snapshot and shard-level figures. Plain owned data (`Send`).

use super::latency::Latency;
use super::outcome::{Outcome, SizeCounts};
use super::route::RouteStats;
use super::{AcceptError, CAUSES, HANDSHAKE_RESULTS};
use std::net::SocketAddr;
use std::sync::Arc;

/// One route's changes on one shard since its previous delta.
#[derive(Debug)]
pub struct RouteDelta {
    /// Route identity.
    pub key: Arc<str>,
    /// Ended requests by (method, status code).
    pub outcomes: Vec<OutcomeDelta>,
    /// Requests in flight now (absolute, not a delta).
    pub in_flight: i64,
    /// Failures by cause.
    pub errors: [u64; CAUSES],
    /// Mirrored copies by [`super::MirrorResult`].
    pub mirrors: [u64; super::MIRROR_RESULTS.len()],
    /// Upstream connect durations: (µs, count) pairs.
    pub connect_us: Vec<(u64, u64)>,
    /// Sum of connect durations (µs).
    pub connect_us_sum: u64,
}

impl RouteDelta {
    /// Moves the route's accumulated deltas out, leaving it empty.
    pub fn take(s: &RouteStats) -> RouteDelta {
        s.dirty.set(false);
        RouteDelta {
            key: s.key.clone(),
            outcomes: s
                .outcomes
                .borrow_mut()
                .iter_mut()
                .filter(|o| o.requests > 0)
                .map(OutcomeDelta::take)
                .collect(),
            in_flight: s.in_flight.get(),
            errors: std::array::from_fn(|i| s.errors[i].take()),
            mirrors: std::array::from_fn(|i| s.mirrors[i].take()),
            connect_us: drain(&s.connect_us),
            connect_us_sum: s.connect_us_sum.take(),
        }
    }
}

/// One (method, status) pair's changes on one shard.
#[derive(Debug, Clone)]
pub struct OutcomeDelta {
    /// Index into [`super::PROTOCOLS`].
    pub protocol: u8,
    /// Index into [`super::METHODS`].
    pub method: u8,
    /// Status code.
    pub status: u16,
    /// Requests.
    pub requests: u64,
    /// Request bytes received from clients.
    pub bytes_in: u64,
    /// Response bytes sent to clients.
    pub bytes_out: u64,
    /// Request sizes in ingress-nginx's length buckets (not cumulative).
    pub in_sizes: SizeCounts<u64>,
    /// Response sizes, likewise.
    pub out_sizes: SizeCounts<u64>,
    /// Request durations: (µs, count) of every non-empty bucket.
    pub request_us: Vec<(u64, u64)>,
    /// Sum of request durations (µs).
    pub request_us_sum: u64,
    /// Upstream durations: (µs, count) pairs.
    pub upstream_us: Vec<(u64, u64)>,
    /// Sum of upstream durations (µs).
    pub upstream_us_sum: u64,
}

impl OutcomeDelta {
    /// Moves the pair's counts out, leaving its slot empty for reuse.
    fn take(o: &mut Outcome) -> OutcomeDelta {
        let sizes =
            |c: &mut SizeCounts<u32>| std::array::from_fn(|i| u64::from(std::mem::take(&mut c[i])));
        OutcomeDelta {
            protocol: o.protocol,
            method: o.method,
            status: o.status,
            requests: std::mem::take(&mut o.requests),
            bytes_in: std::mem::take(&mut o.bytes_in),
            bytes_out: std::mem::take(&mut o.bytes_out),
            in_sizes: sizes(&mut o.in_sizes),
            out_sizes: sizes(&mut o.out_sizes),
            request_us: drain_latency(&mut o.request_us),
            request_us_sum: std::mem::take(&mut o.request_us_sum),
            upstream_us: drain_latency(&mut o.upstream_us),
            upstream_us_sum: std::mem::take(&mut o.upstream_us_sum),
        }
    }
}

/// The non-empty buckets of a shard distribution, which is then reset
/// (its memory kept, so a busy route does not allocate again).
fn drain(hist: &std::cell::RefCell<Latency<u32>>) -> Vec<(u64, u64)> {
    drain_latency(&mut hist.borrow_mut())
}

fn drain_latency(hist: &mut Latency<u32>) -> Vec<(u64, u64)> {
    if hist.is_empty() {
        return Vec::new();
    }
    let pairs = hist.pairs();
    hist.reset();
    pairs
}

/// Idle and active upstream connections of one endpoint on one shard.
#[derive(Debug, Clone, Copy)]
pub struct PoolGauge {
    /// The endpoint.
    pub endpoint: SocketAddr,
    /// Idle connections in the pool.
    pub idle: u64,
    /// Connections (an HTTP/1.1 one, or an HTTP/2 call) carrying a request now.
    pub active: u64,
    /// HTTP/2 connections open (each carries many calls).
    pub h2: u64,
}

/// A shard's answer to a snapshot request.
#[derive(Debug)]
pub struct ShardSnapshot {
    /// Which shard answered (0-based, the `shard` label).
    pub shard: usize,
    /// Routes touched since the previous snapshot.
    pub routes: Vec<RouteDelta>,
    /// The shard-level figures, which the registry keeps as reported.
    pub level: ShardLevel,
}

/// Shard-level figures: gauges as they are now, counters since start.
#[derive(Debug, Clone, Default)]
pub struct ShardLevel {
    /// Generation of the table live on the shard.
    pub generation: u64,
    /// Open client connections.
    pub open_connections: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Failed accepts by kind since start, in [`AcceptError::ALL`] order.
    pub accept_errors: [u64; AcceptError::ALL.len()],
    /// TLS handshakes by result since start.
    pub tls_handshakes: [u64; HANDSHAKE_RESULTS],
    /// Completed TLS handshakes that resumed a session, since start.
    pub tls_resumed: u64,
    /// HTTP/2 connections, streams, and streams reset as malformed, since start.
    pub h2: [u64; 5],
    /// Failures before routing, by cause, since start.
    pub unrouted: [u64; CAUSES],
    /// Upstream pool state per endpoint.
    pub pool: Vec<PoolGauge>,
    /// Requests sent again, and resends the retry budget refused, since start.
    pub retries: [u64; 2],
    /// Retries on another endpoint by reason, in
    /// [`crate::error::RETRY_REASONS`] order, since start.
    pub retried: [u64; crate::error::RETRY_REASONS.len()],
    /// Endpoints ejected from picks since start.
    pub ejections: u64,
    /// Endpoints out of the picks now.
    pub ejected: Vec<std::net::SocketAddr>,
    /// Access-log lines dropped because the writer was behind, since start.
    pub access_log_dropped: u64,
    /// Spans dropped because the OTLP exporter was behind, since start.
    pub otel_spans_dropped: u64,
    /// TCP and UDP services' counters since start, by service label.
    pub l4: Vec<(Box<str>, super::l4::L4Counters)>,
    /// ClientHellos read for passthrough by result, since start.
    pub hellos: Vec<(&'static str, u64)>,
}
