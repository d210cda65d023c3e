//! The `nginx_ingress_controller_*` families (`--metrics-compat
//! ingress-nginx`): the names, types, buckets and labels of ingress-nginx's
//! collectors (`internal/ingress/metric/collectors/` there), derived at
//! scrape time from what the shards record anyway, so that its Grafana
//! dashboards and example alerts work unchanged.

use super::routes::route_labels;
use super::text::{escape, Out};
use crate::metrics::outcome::{SizeCounts, SIZE_BUCKETS, TIME_BUCKETS_US};
use crate::metrics::procfs::ProcStat;
use crate::metrics::registry::{Buckets, OutcomeTotals, Registry};
use crate::metrics::METHODS;
use crate::router::RouteTable;
use crate::tls::TlsTable;
use std::fmt::Write;

/// Who this controller is: ingress-nginx's constant labels.
#[derive(Debug, Clone, Default)]
pub struct Controller {
    /// `controller_namespace`: the pod's namespace.
    pub namespace: String,
    /// `controller_class`: the IngressClass controller value served.
    pub class: String,
    /// `controller_pod`: the pod's name.
    pub pod: String,
}

/// Configuration loads as ingress-nginx counts its reloads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reloads {
    /// Hash of the configuration live now (0 before the first).
    pub config_hash: u64,
    /// Whether the last load was used.
    pub last_ok: bool,
    /// When the live table was published (Unix time; 0 before the first).
    pub last_ok_unix: f64,
    /// Loads used.
    pub ok: u64,
    /// Loads rejected.
    pub failed: u64,
}

/// Everything the families need beyond the registry.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The constant labels.
    pub controller: &'a Controller,
    /// Reload figures.
    pub reloads: Reloads,
    /// CPU and memory (absent when /proc is unreadable).
    pub proc: Option<ProcStat>,
    /// The live table, for route labels.
    pub table: Option<&'a RouteTable>,
    /// Its certificates.
    pub tls: Option<&'a TlsTable>,
}

const P: &str = "nginx_ingress_controller_";

/// Writes the families.
pub(super) fn render(out: &mut Out<'_>, registry: &Registry, inputs: &Inputs<'_>) {
    let c = inputs.controller;
    let constant = format!(
        "controller_class=\"{}\",controller_namespace=\"{}\",controller_pod=\"{}\"",
        escape(&c.class),
        escape(&c.namespace),
        escape(&c.pod)
    );
    requests(out, registry, inputs.table, &constant);
    controller(out, &constant, &inputs.reloads);
    connections(out, registry, &constant);
    if let Some(p) = &inputs.proc {
        process(out, &constant, p);
    }
    if let Some(tls) = inputs.tls {
        ssl(out, tls, &c.class);
    }
}

/// A per-request family: (suffix, kind, help).
const REQUEST_FAMILIES: [(&str, &str, &str); 5] = [
    ("requests", "counter", "The total number of client requests"),
    (
        "request_duration_seconds",
        "histogram",
        "The request processing time in seconds (rauta: complete request head to last response byte)",
    ),
    (
        "response_duration_seconds",
        "histogram",
        "The time spent on receiving the response from the upstream server",
    ),
    (
        "request_size",
        "histogram",
        "The request length (including request line, header, and request body)",
    ),
    (
        "response_size",
        "histogram",
        "The response length (including status line, header, and response body)",
    ),
];

/// The per-request families, one series per route, method and status code.
fn requests(out: &mut Out<'_>, registry: &Registry, table: Option<&RouteTable>, constant: &str) {
    let Some(table) = table else {
        for (suffix, kind, help) in REQUEST_FAMILIES {
            out.family(&format!("{P}{suffix}"), kind, help);
        }
        return;
    };
    let mut series: Vec<(String, &OutcomeTotals)> = Vec::new();
    for route in table.routes() {
        let Some(totals) = registry.routes.get(&route.key) else {
            continue;
        };
        let labels = route_labels(route, table);
        for ((method, status), o) in &totals.outcomes {
            let method = METHODS
                .get(usize::from(*method))
                .copied()
                .unwrap_or("OTHER");
            series.push((
                format!("{constant},{labels},canary=\"\",method=\"{method}\",status=\"{status}\""),
                o,
            ));
        }
    }
    series.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (suffix, kind, help)) in REQUEST_FAMILIES.into_iter().enumerate() {
        let name = format!("{P}{suffix}");
        out.family(&name, kind, help);
        for (labels, o) in &series {
            match i {
                0 => out.sample(&name, labels, o.requests),
                1 => time_histogram(out, &name, labels, &o.request),
                2 => time_histogram(out, &name, labels, &o.upstream),
                3 => size_histogram(out, &name, labels, &o.in_sizes, o.bytes_in),
                _ => size_histogram(out, &name, labels, &o.out_sizes, o.bytes_out),
            }
        }
    }
}

/// A histogram in ingress-nginx's time buckets; none when nothing was recorded.
fn time_histogram(out: &mut Out<'_>, name: &str, labels: &str, b: &Buckets) {
    if b.count == 0 {
        return;
    }
    let bounds = TIME_BUCKETS_US.map(|us| us as f64 / 1e6);
    cumulative(out, name, labels, &bounds, &b.counts);
    out.sample(&format!("{name}_sum"), labels, b.sum_us as f64 / 1e6);
    out.sample(&format!("{name}_count"), labels, b.count);
}

/// A histogram in ingress-nginx's length buckets.
fn size_histogram(out: &mut Out<'_>, name: &str, labels: &str, c: &SizeCounts<u64>, sum: u64) {
    let bounds = SIZE_BUCKETS.map(|b| b as f64);
    cumulative(out, name, labels, &bounds, c);
    out.sample(&format!("{name}_sum"), labels, sum);
    out.sample(&format!("{name}_count"), labels, c.iter().sum::<u64>());
}

/// `_bucket` samples from per-bucket counts (one more count than bounds: +Inf).
fn cumulative(out: &mut Out<'_>, name: &str, labels: &str, bounds: &[f64], counts: &[u64]) {
    let bucket = format!("{name}_bucket");
    let mut seen = 0;
    let mut le = String::new();
    for (i, n) in counts.iter().enumerate() {
        seen += n;
        le.clear();
        match bounds.get(i) {
            Some(b) => {
                let _ = write!(le, "{labels},le=\"{b}\"");
            }
            None => {
                let _ = write!(le, "{labels},le=\"+Inf\"");
            }
        }
        out.sample(&bucket, &le, seen);
    }
}

/// Configuration: hash, last reload, reload counters.
fn controller(out: &mut Out<'_>, constant: &str, r: &Reloads) {
    let gauges: [(&str, &str, f64); 3] = [
        (
            "config_hash",
            "Running configuration hash actually running",
            r.config_hash as f64,
        ),
        (
            "config_last_reload_successful",
            "Whether the last configuration reload attempt was successful",
            f64::from(u8::from(r.last_ok)),
        ),
        (
            "config_last_reload_successful_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            r.last_ok_unix,
        ),
    ];
    for (suffix, help, value) in gauges {
        let name = format!("{P}{suffix}");
        out.family(&name, "gauge", help);
        out.sample(&name, constant, value);
    }
    for (suffix, help, value) in [
        (
            "success",
            "Cumulative number of Ingress controller reload operations",
            r.ok,
        ),
        (
            "errors",
            "Cumulative number of Ingress controller errors during reload operations",
            r.failed,
        ),
    ] {
        let name = format!("{P}{suffix}");
        out.family(&name, "counter", help);
        out.sample(&name, constant, value);
    }
}

/// Client connections as nginx's stub_status counts them.
fn connections(out: &mut Out<'_>, registry: &Registry, constant: &str) {
    let shards = || registry.shards.values();
    let active: u64 = shards().map(|s| s.open_connections).sum();
    let accepted: u64 = shards().map(|s| s.accepted).sum();
    let writing: i64 = registry
        .routes
        .values()
        .flat_map(|t| t.in_flight.values())
        .sum();
    let writing = u64::try_from(writing).unwrap_or(0).min(active);
    let requests: u64 = registry
        .routes
        .values()
        .flat_map(|t| t.outcomes.values())
        .map(|o| o.requests)
        .sum();
    let name = format!("{P}nginx_process_connections");
    out.family(
        &name,
        "gauge",
        "current number of client connections with state {active, writing, waiting} (rauta: waiting includes connections reading a request head)",
    );
    for (state, n) in [
        ("active", active),
        ("writing", writing),
        ("waiting", active - writing),
    ] {
        out.sample(&name, &format!("{constant},state=\"{state}\""), n);
    }
    let name = format!("{P}nginx_process_connections_total");
    out.family(
        &name,
        "counter",
        "total number of connections with state {accepted, handled}",
    );
    for state in ["accepted", "handled"] {
        out.sample(&name, &format!("{constant},state=\"{state}\""), accepted);
    }
    let name = format!("{P}nginx_process_requests_total");
    out.family(&name, "counter", "total number of client requests");
    out.sample(&name, constant, requests);
}

/// The process's CPU and memory (rauta is one process).
fn process(out: &mut Out<'_>, constant: &str, p: &ProcStat) {
    let families: [(&str, &str, &str, f64); 5] = [
        ("num_procs", "gauge", "number of processes", 1.0),
        (
            "cpu_seconds_total",
            "counter",
            "Cpu usage in seconds",
            p.cpu_seconds,
        ),
        (
            "resident_memory_bytes",
            "gauge",
            "number of bytes of memory in use",
            p.resident_bytes as f64,
        ),
        (
            "virtual_memory_bytes",
            "gauge",
            "number of bytes of memory in use",
            p.virtual_bytes as f64,
        ),
        (
            "oldest_start_time_seconds",
            "gauge",
            "start time in seconds since 1970/01/01",
            p.start_unix,
        ),
    ];
    for (suffix, kind, help, value) in families {
        let name = format!("{P}nginx_process_{suffix}");
        out.family(&name, kind, help);
        out.sample(&name, constant, value);
    }
}

/// Each TLS host's certificate expiry, labelled as ingress-nginx does.
fn ssl(out: &mut Out<'_>, tls: &TlsTable, class: &str) {
    let name = format!("{P}ssl_expire_time_seconds");
    out.family(
        &name,
        "gauge",
        "Number of seconds since 1970 to the SSL Certificate expire.",
    );
    for cert in &tls.certs {
        out.sample(
            &name,
            &format!(
                "class=\"{}\",host=\"{}\",identifier=\"{}/{}\",namespace=\"{}\",secret_name=\"{}\"",
                escape(class),
                escape(&cert.host),
                escape(&cert.namespace),
                escape(&cert.secret),
                escape(&cert.namespace),
                escape(&cert.secret)
            ),
            cert.not_after,
        );
    }
}
