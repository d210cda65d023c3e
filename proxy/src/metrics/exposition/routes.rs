//! The route families: requests, in-flight, durations, bytes and errors,
//! one series per route of the live table, labelled from it.

use super::text::{escape, Out};
use crate::metrics::registry::{Registry, RouteTotals, Timing};
use crate::metrics::{Cause, METHODS, PROTOCOLS, STATUS_CLASSES};
use crate::router::{Route, RouteTable};
use std::collections::HashMap;

/// How a duration family shows its distribution.
#[derive(Clone, Copy)]
enum Shape {
    /// Cumulative buckets (`histogram`).
    Histogram,
    /// A few quantiles (`summary`).
    Quantiles,
}

/// A duration family: (name, shape, help, which timing).
type Duration = (
    &'static str,
    Shape,
    &'static str,
    fn(&RouteTotals) -> &Timing,
);

/// The duration families, in page order.
const DURATIONS: [Duration; 5] = [
    (
        "rauta_request_duration_seconds",
        Shape::Histogram,
        "Time from a complete request head to the last response byte, by route.",
        |t| &t.request,
    ),
    (
        "rauta_request_quantiles_seconds",
        Shape::Quantiles,
        "p50/p99/p99.9 of rauta_request_duration_seconds since the route appeared.",
        |t| &t.request,
    ),
    (
        "rauta_response_duration_seconds",
        Shape::Histogram,
        "Time spent with the upstream (request sent to last response byte), by route.",
        |t| &t.upstream,
    ),
    (
        "rauta_response_quantiles_seconds",
        Shape::Quantiles,
        "p50/p99/p99.9 of rauta_response_duration_seconds since the route appeared.",
        |t| &t.upstream,
    ),
    (
        "rauta_connect_duration_seconds",
        Shape::Histogram,
        "Time to establish new upstream connections, by route.",
        |t| &t.connect,
    ),
];

/// A per-route counter family: (name, help, value).
type PerRoute = (&'static str, &'static str, fn(&RouteTotals) -> u64);

/// The byte counters, in page order.
const BYTES: [PerRoute; 2] = [
    (
        "rauta_request_bytes_total",
        "Request bytes received from clients (head and body), by route.",
        |t| t.bytes_in,
    ),
    (
        "rauta_response_bytes_total",
        "Response bytes sent to clients (head and body), by route.",
        |t| t.bytes_out,
    ),
];

/// The route labels of failures that happened before a route was chosen.
const NO_ROUTE: &str = "namespace=\"\",ingress=\"\",service=\"\",host=\"\",path=\"\",kind=\"\"";

/// Writes the route families.
pub(super) fn render(out: &mut Out<'_>, registry: &Registry, table: Option<&RouteTable>) {
    let series = series(registry, table);
    out.family(
        "rauta_requests_total",
        "counter",
        "Requests answered, by route, client protocol (http/1.1, h2), method and status class.",
    );
    for (labels, t) in &series {
        for (p, protocol) in PROTOCOLS.iter().enumerate() {
            for (m, method) in METHODS.iter().enumerate() {
                for (c, class) in STATUS_CLASSES.iter().enumerate() {
                    if t.requests[p][m][c] > 0 {
                        out.sample(
                            "rauta_requests_total",
                            &format!("{labels},protocol=\"{protocol}\",method=\"{method}\",status=\"{class}\""),
                            t.requests[p][m][c],
                        );
                    }
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
        let in_flight: i64 = t.in_flight.values().sum();
        out.sample("rauta_requests_in_flight", labels, in_flight);
    }
    for (name, shape, help, timing) in DURATIONS {
        let kind = match shape {
            Shape::Histogram => "histogram",
            Shape::Quantiles => "summary",
        };
        out.family(name, kind, help);
        for (labels, t) in &series {
            match shape {
                Shape::Histogram => out.histogram(name, labels, timing(t)),
                Shape::Quantiles => out.quantiles(name, labels, timing(t)),
            }
        }
    }
    for (name, help, value) in BYTES {
        out.family(name, "counter", help);
        for (labels, t) in &series {
            out.sample(name, labels, value(t));
        }
    }
    out.family(
        "rauta_errors_total",
        "counter",
        "Failed requests by cause; route labels are empty when no route was chosen.",
    );
    for (labels, t) in &series {
        errors(out, labels, |cause| t.errors[cause.index()]);
    }
    errors(out, NO_ROUTE, |cause| {
        let unrouted = registry.shards.values();
        unrouted.map(|s| s.unrouted[cause.index()]).sum()
    });
    out.family(
        "rauta_mirror_requests_total",
        "counter",
        "Mirrored copies of requests by route and result: sent (the mirror answered), failed, dropped (--mirror-max-in-flight), skipped (body over --mirror-max-body-bytes).",
    );
    for (labels, t) in &series {
        for (i, result) in crate::metrics::MIRROR_RESULTS.iter().enumerate() {
            if t.mirrors[i] > 0 {
                out.sample(
                    "rauta_mirror_requests_total",
                    &format!("{labels},result=\"{result}\""),
                    t.mirrors[i],
                );
            }
        }
    }
}

/// The `rauta_errors_total` samples of one route, causes with no failure left out.
fn errors(out: &mut Out<'_>, labels: &str, count: impl Fn(Cause) -> u64) {
    for cause in Cause::ALL {
        let n = count(cause);
        if n > 0 {
            out.sample(
                "rauta_errors_total",
                &format!("{labels},cause=\"{}\"", cause.label()),
                n,
            );
        }
    }
}

/// The totals of every route in the live table, with its labels, in label order.
fn series<'r>(
    registry: &'r Registry,
    table: Option<&RouteTable>,
) -> Vec<(String, &'r RouteTotals)> {
    let mut series = Vec::new();
    if let Some(table) = table {
        let by_key: HashMap<&str, &Route> = table.routes().iter().map(|r| (&*r.key, r)).collect();
        for (key, totals) in &registry.routes {
            if let Some(route) = by_key.get(&**key) {
                // rauta's own families also say what kind of object `ingress` names.
                let labels = route_labels(route, table);
                let kind = route.kind.as_str();
                series.push((format!("{labels},kind=\"{kind}\""), totals));
            }
        }
    }
    series.sort_by(|a, b| a.0.cmp(&b.0));
    series
}

/// `namespace`, `ingress`, `service`, `host` and `path` of a route.
pub(super) fn route_labels(route: &Route, table: &RouteTable) -> String {
    format!(
        "namespace=\"{}\",ingress=\"{}\",service=\"{}\",host=\"{}\",path=\"{}\"",
        escape(&route.namespace),
        escape(&route.ingress),
        escape(&table.backend(route.backend).service),
        escape(&route.host),
        escape(&route.path)
    )
}
