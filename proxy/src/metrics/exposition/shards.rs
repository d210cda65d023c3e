//! The shard families (connections, accept errors, panics, access-log
//! drops, live generation) and the upstream pool, summed over shards.

use super::text::Out;
use crate::metrics::registry::Registry;
use crate::metrics::snapshot::ShardLevel;
use crate::metrics::AcceptError;
use std::collections::BTreeMap;

/// A family with one sample per shard: (name, kind, help, value).
type PerShard = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ShardLevel) -> u64,
);

/// The connection families, which open the shard section.
const CONNECTIONS: [PerShard; 7] = [
    (
        "rauta_open_connections",
        "gauge",
        "Open client connections, by shard.",
        |s| s.open_connections,
    ),
    (
        "rauta_accepted_connections_total",
        "counter",
        "Client connections accepted, by shard.",
        |s| s.accepted,
    ),
    (
        "rauta_http2_connections_total",
        "counter",
        "Client connections that speak HTTP/2 (ALPN h2, or the preface on a plain listener), by shard.",
        |s| s.h2[0],
    ),
    (
        "rauta_http2_streams_total",
        "counter",
        "HTTP/2 streams accepted from clients, by shard.",
        |s| s.h2[1],
    ),
    (
        "rauta_http2_malformed_streams_total",
        "counter",
        "HTTP/2 streams reset with PROTOCOL_ERROR because the request was malformed (RFC 9113 §8.1.1), by shard; none reached a backend.",
        |s| s.h2[2],
    ),
    (
        "rauta_http2_premature_resets_total",
        "counter",
        "HTTP/2 streams the client reset before their answer ended, by shard.",
        |s| s.h2[3],
    ),
    (
        "rauta_http2_abusive_connections_total",
        "counter",
        "HTTP/2 client connections closed with GOAWAY ENHANCE_YOUR_CALM because most of their streams (past 100) were reset before their answer, by shard.",
        |s| s.h2[4],
    ),
];

/// The families after the accept errors and panics.
const HOUSEKEEPING: [PerShard; 6] = [
    (
        "rauta_access_log_dropped_total",
        "counter",
        "Access-log lines dropped because the writer fell behind, by shard.",
        |s| s.access_log_dropped,
    ),
    (
        "rauta_otel_spans_dropped_total",
        "counter",
        "Trace spans dropped because the OTLP exporter's queue was full, by shard.",
        |s| s.otel_spans_dropped,
    ),
    (
        "rauta_upstream_resends_total",
        "counter",
        "Requests sent again to another endpoint after the upstream failed (a connect that failed is not counted: nothing was sent), by shard.",
        |s| s.retries[0],
    ),
    (
        "rauta_retry_budget_exhausted_total",
        "counter",
        "Resends refused because the backend's retry budget (20% of its requests, plus a reserve of 10) was spent, by shard; the failure was answered.",
        |s| s.retries[1],
    ),
    (
        "rauta_outlier_ejections_total",
        "counter",
        "Endpoints a shard left out of its picks after failures in a row (outlier ejection), by shard.",
        |s| s.ejections,
    ),
    (
        "rauta_shard_route_table_generation",
        "gauge",
        "Route table generation live on each shard.",
        |s| s.generation,
    ),
];

/// Writes the shard and pool families.
pub(super) fn render(out: &mut Out<'_>, registry: &Registry) {
    per_shard(out, registry, &CONNECTIONS);
    out.family(
        "rauta_accept_errors_total",
        "counter",
        "Failed accepts, by shard and reason (transient: retried at once; descriptors, memory, other: the accept loop backs off).",
    );
    for (shard, s) in &registry.shards {
        for (kind, n) in AcceptError::ALL.iter().zip(s.accept_errors) {
            out.sample(
                "rauta_accept_errors_total",
                &format!("shard=\"{shard}\",reason=\"{}\"", kind.label()),
                n,
            );
        }
    }
    out.single(
        "rauta_panics_total",
        "counter",
        "Connection tasks that panicked; each closed only its own connection.",
        crate::rt::panics_total(),
    );
    let ring = crate::rt::ring_counters();
    for (name, help, value) in [
        ("rauta_io_uring_dropped_completions_total", "Times the kernel dropped io_uring completions (EBADR); every armed wait of that shard was woken to retry.", ring.cq_dropped),
        ("rauta_io_uring_poll_errors_total", "io_uring polls of live sockets that completed with an unexpected error.", ring.poll_errors),
        ("rauta_io_uring_enter_errors_total", "io_uring_enter calls that failed for a reason other than a timeout, a signal or a full ring (each backs off 1 ms).", ring.enter_errors),
    ] {
        out.single(name, "counter", help, value);
    }
    per_shard(out, registry, &HOUSEKEEPING);
    out.single(
        "rauta_otel_spans_exported_total",
        "counter",
        "Trace spans the OTLP collector took (answered 2xx).",
        crate::otel::exported_total(),
    );
    out.single(
        "rauta_otel_spans_failed_total",
        "counter",
        "Trace spans the OTLP exporter gave up on: the collector could not be reached, timed out or answered an error.",
        crate::otel::failed_total(),
    );
    retries(out, registry);
    pools(out, registry);
    ejected(out, registry);
}

/// Retries on another endpoint by reason, over all shards.
fn retries(out: &mut Out<'_>, registry: &Registry) {
    let mut by_reason = [0u64; crate::error::RETRY_REASONS.len()];
    for s in registry.shards.values() {
        for (sum, n) in by_reason.iter_mut().zip(s.retried) {
            *sum += n;
        }
    }
    out.by_label(
        "rauta_upstream_retries_total",
        "counter",
        "Requests tried again on another endpoint, by why the attempt before failed (connect_error and connect_timeout: nothing was sent; the others follow proxy-next-upstream's names), all shards.",
        "reason",
        crate::error::RETRY_REASONS.iter().zip(by_reason.iter()),
    );
}

/// Families of one sample per shard, in shard order.
fn per_shard(out: &mut Out<'_>, registry: &Registry, families: &[PerShard]) {
    for (name, kind, help, value) in families {
        let samples = registry.shards.iter().map(|(shard, s)| (shard, value(s)));
        out.by_label(name, kind, help, "shard", samples);
    }
}

/// Idle and active upstream connections by endpoint, over all shards.
fn pools(out: &mut Out<'_>, registry: &Registry) {
    let mut pools: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for s in registry.shards.values() {
        for p in &s.pool {
            let e = pools.entry(p.endpoint.to_string()).or_default();
            e.0 += p.idle;
            e.1 += p.active;
            e.2 += p.h2;
        }
    }
    out.by_label(
        "rauta_upstream_idle_connections",
        "gauge",
        "Idle pooled upstream connections, by endpoint (all shards).",
        "endpoint",
        pools.iter().map(|(endpoint, (idle, ..))| (endpoint, idle)),
    );
    out.by_label(
        "rauta_upstream_active_connections",
        "gauge",
        "Upstream connections carrying a request, by endpoint (all shards).",
        "endpoint",
        pools
            .iter()
            .map(|(endpoint, (_, active, _))| (endpoint, active)),
    );
    out.by_label(
        "rauta_upstream_http2_connections",
        "gauge",
        "HTTP/2 connections open to gRPC endpoints, each shared by many calls, by endpoint (all shards).",
        "endpoint",
        pools
            .iter()
            .filter(|(_, (.., h2))| *h2 > 0)
            .map(|(endpoint, (.., h2))| (endpoint, h2)),
    );
}

/// Endpoints out of the picks, by endpoint: how many shards ejected each.
fn ejected(out: &mut Out<'_>, registry: &Registry) {
    let mut ejected: BTreeMap<String, u64> = BTreeMap::new();
    for s in registry.shards.values() {
        for addr in &s.ejected {
            *ejected.entry(addr.to_string()).or_default() += 1;
        }
    }
    out.by_label(
        "rauta_upstream_ejected_shards",
        "gauge",
        "Shards that have an endpoint out of their picks now (outlier ejection), by endpoint; endpoints in none are not listed.",
        "endpoint",
        ejected.iter(),
    );
}
