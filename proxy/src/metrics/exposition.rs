//! Prometheus text exposition (format 0.0.4) of the registry and the
//! process-level figures. Names follow ingress-nginx's where a counterpart
//! exists, with the `rauta_` prefix (see the README for the mapping).

use super::registry::{Registry, Timing};
use super::shard::AcceptError;
use super::{Cause, METHODS, STATUS_CLASSES};
use crate::router::{Route, RouteTable};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// Upper bounds of the histogram buckets, in microseconds (ingress-nginx's
/// defaults, refined below 5 ms where a proxy's own latency lives).
const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];
/// Quantiles exposed as plain gauges.
const QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.99, "0.99"), (0.999, "0.999")];

/// Process-level figures gathered by the admin thread.
#[derive(Debug, Clone, Default)]
pub struct ProcessInfo {
    /// Latest published table generation.
    pub generation: u64,
    /// When it was published (seconds since the epoch).
    pub last_swap_unix: f64,
    /// Configuration loads attempted.
    pub reloads: u64,
    /// Configuration loads rejected.
    pub reloads_failed: u64,
    /// Errors in the last configuration load.
    pub config_errors: u64,
    /// Warnings in the last configuration load.
    pub config_warnings: u64,
    /// jemalloc `stats.allocated`.
    pub allocated_bytes: Option<u64>,
    /// jemalloc `stats.resident`.
    pub resident_bytes: Option<u64>,
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn route_labels(route: &Route, table: &RouteTable) -> String {
    format!(
        "namespace=\"{}\",ingress=\"{}\",service=\"{}\",host=\"{}\",path=\"{}\"",
        escape(&route.namespace),
        escape(&route.ingress),
        escape(&table.backend(route.backend).service),
        escape(&route.host),
        escape(&route.path)
    )
}

fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

fn histogram(out: &mut Out, name: &str, labels: &str, t: &Timing) {
    let h = &t.hist;
    if h.is_empty() {
        return;
    }
    for le in BUCKETS_US {
        out.sample(
            &format!("{name}_bucket"),
            &format!("{labels},le=\"{}\"", seconds(le)),
            h.count_up_to(le),
        );
    }
    out.sample(
        &format!("{name}_bucket"),
        &format!("{labels},le=\"+Inf\""),
        h.len(),
    );
    out.sample(&format!("{name}_sum"), labels, seconds(t.sum_us));
    out.sample(&format!("{name}_count"), labels, h.len());
}

/// The same distribution as a summary: quantiles a person can read
/// without PromQL (over the route's lifetime).
fn quantiles(out: &mut Out, name: &str, labels: &str, t: &Timing) {
    let h = &t.hist;
    if h.is_empty() {
        return;
    }
    for (q, text) in QUANTILES {
        out.sample(
            name,
            &format!("{labels},quantile=\"{text}\""),
            seconds(h.value_at_quantile(q)),
        );
    }
    out.sample(&format!("{name}_sum"), labels, seconds(t.sum_us));
    out.sample(&format!("{name}_count"), labels, h.len());
}

/// Renders everything as Prometheus text.
pub fn render(registry: &Registry, table: Option<&RouteTable>, process: &ProcessInfo) -> String {
    let mut out = Out(String::with_capacity(64 * 1024));
    // Route series, in a stable order, labelled from the live table.
    let mut series: Vec<(String, &super::registry::RouteTotals)> = Vec::new();
    if let Some(table) = table {
        let by_key: HashMap<&str, &Route> = table.routes().iter().map(|r| (&*r.key, r)).collect();
        for (key, totals) in &registry.routes {
            if let Some(route) = by_key.get(&**key) {
                series.push((route_labels(route, table), totals));
            }
        }
    }
    series.sort_by(|a, b| a.0.cmp(&b.0));

    out.family(
        "rauta_requests_total",
        "counter",
        "Requests answered, by route, method and status class.",
    );
    for (labels, t) in &series {
        for (m, method) in METHODS.iter().enumerate() {
            for (c, class) in STATUS_CLASSES.iter().enumerate() {
                if t.requests[m][c] > 0 {
                    out.sample(
                        "rauta_requests_total",
                        &format!("{labels},method=\"{method}\",status=\"{class}\""),
                        t.requests[m][c],
                    );
                }
            }
        }
    }
    out.family(
        "rauta_requests_in_flight",
        "gauge",
        "Requests being served now, by route.",
    );
    for (labels, t) in &series {
        out.sample(
            "rauta_requests_in_flight",
            labels,
            t.in_flight.values().sum::<i64>(),
        );
    }
    out.family(
        "rauta_request_duration_seconds",
        "histogram",
        "Time from a complete request head to the last response byte, by route.",
    );
    for (labels, t) in &series {
        histogram(
            &mut out,
            "rauta_request_duration_seconds",
            labels,
            &t.request,
        );
    }
    out.family(
        "rauta_request_quantiles_seconds",
        "summary",
        "p50/p99/p99.9 of rauta_request_duration_seconds since the route appeared.",
    );
    for (labels, t) in &series {
        quantiles(
            &mut out,
            "rauta_request_quantiles_seconds",
            labels,
            &t.request,
        );
    }
    out.family(
        "rauta_response_duration_seconds",
        "histogram",
        "Time spent with the upstream (request sent to last response byte), by route.",
    );
    for (labels, t) in &series {
        histogram(
            &mut out,
            "rauta_response_duration_seconds",
            labels,
            &t.upstream,
        );
    }
    out.family(
        "rauta_response_quantiles_seconds",
        "summary",
        "p50/p99/p99.9 of rauta_response_duration_seconds since the route appeared.",
    );
    for (labels, t) in &series {
        quantiles(
            &mut out,
            "rauta_response_quantiles_seconds",
            labels,
            &t.upstream,
        );
    }
    out.family(
        "rauta_connect_duration_seconds",
        "histogram",
        "Time to establish new upstream connections, by route.",
    );
    for (labels, t) in &series {
        histogram(
            &mut out,
            "rauta_connect_duration_seconds",
            labels,
            &t.connect,
        );
    }
    out.family(
        "rauta_request_bytes_total",
        "counter",
        "Request bytes received from clients (head and body), by route.",
    );
    for (labels, t) in &series {
        out.sample("rauta_request_bytes_total", labels, t.bytes_in);
    }
    out.family(
        "rauta_response_bytes_total",
        "counter",
        "Response bytes sent to clients (head and body), by route.",
    );
    for (labels, t) in &series {
        out.sample("rauta_response_bytes_total", labels, t.bytes_out);
    }
    out.family(
        "rauta_errors_total",
        "counter",
        "Failed requests by cause; route labels are empty when no route was chosen.",
    );
    for (labels, t) in &series {
        for cause in Cause::ALL {
            if t.errors[cause.index()] > 0 {
                out.sample(
                    "rauta_errors_total",
                    &format!("{labels},cause=\"{}\"", cause.label()),
                    t.errors[cause.index()],
                );
            }
        }
    }
    let empty = "namespace=\"\",ingress=\"\",service=\"\",host=\"\",path=\"\"";
    for cause in Cause::ALL {
        let n: u64 = registry
            .shards
            .values()
            .map(|s| s.unrouted[cause.index()])
            .sum();
        if n > 0 {
            out.sample(
                "rauta_errors_total",
                &format!("{empty},cause=\"{}\"", cause.label()),
                n,
            );
        }
    }

    out.family(
        "rauta_open_connections",
        "gauge",
        "Open client connections, by shard.",
    );
    for (shard, s) in &registry.shards {
        out.sample(
            "rauta_open_connections",
            &format!("shard=\"{shard}\""),
            s.open_connections,
        );
    }
    out.family(
        "rauta_accepted_connections_total",
        "counter",
        "Client connections accepted, by shard.",
    );
    for (shard, s) in &registry.shards {
        out.sample(
            "rauta_accepted_connections_total",
            &format!("shard=\"{shard}\""),
            s.accepted,
        );
    }
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
    out.family(
        "rauta_panics_total",
        "counter",
        "Connection tasks that panicked; each closed only its own connection.",
    );
    out.sample("rauta_panics_total", "", crate::rt::panics_total());
    out.family(
        "rauta_access_log_dropped_total",
        "counter",
        "Access-log lines dropped because the writer fell behind, by shard.",
    );
    for (shard, s) in &registry.shards {
        out.sample(
            "rauta_access_log_dropped_total",
            &format!("shard=\"{shard}\""),
            s.access_log_dropped,
        );
    }
    out.family(
        "rauta_shard_route_table_generation",
        "gauge",
        "Route table generation live on each shard.",
    );
    for (shard, s) in &registry.shards {
        out.sample(
            "rauta_shard_route_table_generation",
            &format!("shard=\"{shard}\""),
            s.generation,
        );
    }
    let mut pools: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for s in registry.shards.values() {
        for p in &s.pool {
            let e = pools.entry(p.endpoint.to_string()).or_default();
            e.0 += p.idle;
            e.1 += p.active;
        }
    }
    out.family(
        "rauta_upstream_idle_connections",
        "gauge",
        "Idle pooled upstream connections, by endpoint (all shards).",
    );
    for (endpoint, (idle, _)) in &pools {
        out.sample(
            "rauta_upstream_idle_connections",
            &format!("endpoint=\"{endpoint}\""),
            idle,
        );
    }
    out.family(
        "rauta_upstream_active_connections",
        "gauge",
        "Upstream connections carrying a request, by endpoint (all shards).",
    );
    for (endpoint, (_, active)) in &pools {
        out.sample(
            "rauta_upstream_active_connections",
            &format!("endpoint=\"{endpoint}\""),
            active,
        );
    }

    out.family(
        "rauta_route_table_generation",
        "gauge",
        "Generation of the latest route table published to the shards.",
    );
    out.sample("rauta_route_table_generation", "", process.generation);
    out.family(
        "rauta_route_table_last_swap_timestamp_seconds",
        "gauge",
        "When the latest route table was published (Unix time).",
    );
    out.sample(
        "rauta_route_table_last_swap_timestamp_seconds",
        "",
        process.last_swap_unix,
    );
    out.family(
        "rauta_config_reloads_total",
        "counter",
        "Configuration loads attempted.",
    );
    out.sample("rauta_config_reloads_total", "", process.reloads);
    out.family(
        "rauta_config_reloads_failed_total",
        "counter",
        "Configuration loads rejected (the previous table stayed live).",
    );
    out.sample(
        "rauta_config_reloads_failed_total",
        "",
        process.reloads_failed,
    );
    out.family(
        "rauta_config_problems",
        "gauge",
        "Problems found in the last configuration load, by severity.",
    );
    out.sample(
        "rauta_config_problems",
        "severity=\"error\"",
        process.config_errors,
    );
    out.sample(
        "rauta_config_problems",
        "severity=\"warning\"",
        process.config_warnings,
    );
    if let (Some(allocated), Some(resident)) = (process.allocated_bytes, process.resident_bytes) {
        out.family(
            "rauta_jemalloc_allocated_bytes",
            "gauge",
            "Bytes allocated by the application (jemalloc stats.allocated).",
        );
        out.sample("rauta_jemalloc_allocated_bytes", "", allocated);
        out.family(
            "rauta_jemalloc_resident_bytes",
            "gauge",
            "Bytes in physically resident data pages mapped by jemalloc.",
        );
        out.sample("rauta_jemalloc_resident_bytes", "", resident);
    }
    out.0
}

/// Appends the TLS families: handshakes by result (all shards), and each
/// host's certificate expiry (ingress-nginx's
/// `nginx_ingress_controller_ssl_expire_time_seconds`).
pub fn render_tls(body: &mut String, registry: &Registry, tls: &crate::tls::TlsTable) {
    use crate::tls::acceptor::Handshake;
    let mut out = Out(std::mem::take(body));
    out.family(
        "rauta_tls_handshakes_total",
        "counter",
        "TLS handshakes on the --listen-tls listeners, by result (ok, or why they failed).",
    );
    for result in Handshake::ALL {
        let n: u64 = registry
            .shards
            .values()
            .map(|s| s.tls_handshakes[result.index()])
            .sum();
        out.sample(
            "rauta_tls_handshakes_total",
            &format!("result=\"{}\"", result.label()),
            n,
        );
    }
    out.family(
        "rauta_tls_resumed_sessions_total",
        "counter",
        "Completed TLS handshakes (counted as ok above) that resumed a session by ticket or session id.",
    );
    let resumed: u64 = registry.shards.values().map(|s| s.tls_resumed).sum();
    out.sample("rauta_tls_resumed_sessions_total", "", resumed);
    out.family(
        "rauta_tls_certificate_expiry_seconds",
        "gauge",
        "notAfter of the certificate each TLS host gets (Unix time).",
    );
    for cert in &tls.certs {
        out.sample(
            "rauta_tls_certificate_expiry_seconds",
            &format!(
                "host=\"{}\",namespace=\"{}\",secret=\"{}\"",
                escape(&cert.host),
                escape(&cert.namespace),
                escape(&cert.secret)
            ),
            cert.not_after,
        );
    }
    out.family(
        "rauta_tls_certificates_skipped",
        "gauge",
        "Certificates of the live table that could not be loaded (their hosts get the default certificate); problems found in translation count in rauta_config_problems.",
    );
    out.sample("rauta_tls_certificates_skipped", "", tls.skipped);
    *body = out.0;
}

/// Appends the eBPF families: attachments always, counters when the
/// object is loaded.
pub fn render_xdp(body: &mut String, figures: &crate::xdp::XdpFigures) {
    use rauta_shared::ebpf::counter as c;
    if figures.attachments.is_empty() && figures.counters.is_none() {
        return;
    }
    let mut out = Out(std::mem::take(body));
    out.family(
        "rauta_ebpf_attached",
        "gauge",
        "1 while an eBPF program is attached (target: an interface, or reuseport for the listeners).",
    );
    for a in &figures.attachments {
        out.sample(
            "rauta_ebpf_attached",
            &format!(
                "program=\"{}\",target=\"{}\"",
                escape(a.program),
                escape(&a.target)
            ),
            u8::from(a.attached),
        );
    }
    if let Some(n) = &figures.counters {
        let get = |i: u32| n[i as usize];
        out.family(
            "rauta_xdp_packets_total",
            "counter",
            "Packets seen by the XDP filter, by action.",
        );
        for (action, i) in [
            ("aborted", c::ACTION_ABORTED),
            ("drop", c::ACTION_DROP),
            ("pass", c::ACTION_PASS),
            ("tx", c::ACTION_TX),
            ("redirect", c::ACTION_REDIRECT),
        ] {
            out.sample(
                "rauta_xdp_packets_total",
                &format!("action=\"{action}\""),
                get(i),
            );
        }
        out.family(
            "rauta_xdp_drops_total",
            "counter",
            "Packets dropped by the XDP filter, by reason.",
        );
        for (reason, i) in [
            ("deny_list", c::DROP_DENY_LIST),
            ("syn_rate", c::DROP_SYN_RATE),
        ] {
            out.sample(
                "rauta_xdp_drops_total",
                &format!("reason=\"{reason}\""),
                get(i),
            );
        }
        out.family(
            "rauta_xdp_syns_total",
            "counter",
            "TCP SYNs (without ACK) seen by the XDP filter.",
        );
        out.sample("rauta_xdp_syns_total", "", get(c::SYN_SEEN));
        out.family(
            "rauta_xdp_uninspected_total",
            "counter",
            "Packets the XDP filter passed without a verdict, by reason.",
        );
        for (reason, i) in [
            ("not_ip", c::SKIP_NOT_IP),
            ("truncated", c::SKIP_TRUNCATED),
            ("fragment", c::SKIP_FRAGMENT),
            ("ipv6_extension_header", c::SKIP_IPV6_EXTENSION),
            ("admin_port", c::SKIP_ADMIN_PORT),
        ] {
            out.sample(
                "rauta_xdp_uninspected_total",
                &format!("reason=\"{reason}\""),
                get(i),
            );
        }
        out.family(
            "rauta_reuseport_selections_total",
            "counter",
            "New connections placed by select_by_cpu: hit = the listener of the CPU that took the SYN, fallback = the kernel's hash (no listener on that CPU).",
        );
        for (result, i) in [
            ("hit", c::REUSEPORT_HIT),
            ("fallback", c::REUSEPORT_FALLBACK),
        ] {
            out.sample(
                "rauta_reuseport_selections_total",
                &format!("result=\"{result}\""),
                get(i),
            );
        }
        out.family(
            "rauta_reuseport_migrations_total",
            "counter",
            "Requests select_by_cpu moved off a closing listener.",
        );
        out.sample(
            "rauta_reuseport_migrations_total",
            "",
            get(c::REUSEPORT_MIGRATE),
        );
    }
    *body = out.0;
}
