//! `--metrics-compat ingress-nginx` as its users meet it: a real Prometheus
//! scrapes the real binary while real traffic flows, and every query of
//! ingress-nginx's Grafana dashboards and of its Helm chart's example
//! alerts returns data.
//!
//! The PromQL expressions below are interoperability data, as published by
//! kubernetes/ingress-nginx: `deploy/grafana/dashboards/nginx.json`,
//! `deploy/grafana/dashboards/request-handling-performance.json` (panel
//! queries, template variables and annotations) and
//! `charts/ingress-nginx/values.yaml` (`prometheusRule` examples).
//! Multi-line ones are written on one line.

use crate::common::{service, start};
use rauta_testkit::manifests::{join, path, rule};
use rauta_testkit::prometheus::Prometheus;
use rauta_testkit::tls::Ca;
use rauta_testkit::{eventually, free_port, ingress, rauta_class, require, tls_secret};
use rauta_testkit::{Conn, ManifestDir, Metrics, Need, Rauta};
use std::net::SocketAddr;

use std::time::{Duration, Instant};

/// nginx.json: (panel, expression).
const NGINX_JSON: &[(&str, &str)] = &[
    (
        "Controller Request Volume",
        r#"round(sum(irate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace"}[2m])), 0.001)"#,
    ),
    (
        "Controller Connections",
        r#"sum(avg_over_time(nginx_ingress_controller_nginx_process_connections{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",state="active"}[2m]))"#,
    ),
    (
        "Controller Success Rate",
        r#"sum(rate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace",status!~"[4-5].*"}[2m])) / sum(rate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace"}[2m]))"#,
    ),
    (
        "Config Reloads",
        r#"avg(irate(nginx_ingress_controller_success{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}[1m])) * 60"#,
    ),
    (
        "Last Config Failed",
        r#"count(nginx_ingress_controller_config_last_reload_successful{controller_pod=~"$controller",controller_namespace=~"$namespace"} == 0)"#,
    ),
    (
        "Ingress Request Volume",
        r#"round(sum(irate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",exported_namespace=~"$exported_namespace",ingress=~"$ingress"}[2m])) by (ingress), 0.001)"#,
    ),
    (
        "Ingress Success Rate",
        r#"sum(rate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace",exported_namespace=~"$exported_namespace",ingress=~"$ingress",status!~"[4-5].*"}[2m])) by (ingress) / sum(rate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace",exported_namespace=~"$exported_namespace",ingress=~"$ingress"}[2m])) by (ingress)"#,
    ),
    (
        "Network I/O pressure: received",
        r#"sum (irate (nginx_ingress_controller_request_size_sum{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}[2m]))"#,
    ),
    (
        "Network I/O pressure: sent",
        r#"- sum (irate (nginx_ingress_controller_response_size_sum{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}[2m]))"#,
    ),
    (
        "Average Memory Usage",
        r#"avg(nginx_ingress_controller_nginx_process_resident_memory_bytes{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"})"#,
    ),
    (
        "Average CPU Usage",
        r#"avg (rate (nginx_ingress_controller_nginx_process_cpu_seconds_total{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}[2m]))"#,
    ),
    (
        "Ingress Percentile Response Times: p50",
        r#"histogram_quantile(0.50, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le, ingress))"#,
    ),
    (
        "Ingress Percentile Response Times: p90",
        r#"histogram_quantile(0.90, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le, ingress))"#,
    ),
    (
        "Ingress Percentile Response Times: p99",
        r#"histogram_quantile(0.99, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le, ingress))"#,
    ),
    (
        "Ingress Percentile Response Times: in",
        r#"sum(irate(nginx_ingress_controller_request_size_sum{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (ingress)"#,
    ),
    (
        "Ingress Percentile Response Times: out",
        r#"sum(irate(nginx_ingress_controller_response_size_sum{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (ingress)"#,
    ),
    (
        "Ingress Namespaces: P80",
        r#"histogram_quantile(0.80, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le))"#,
    ),
    (
        "Ingress Namespaces: P90",
        r#"histogram_quantile(0.90, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le))"#,
    ),
    (
        "Ingress Namespaces: P99",
        r#"histogram_quantile(0.99, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le))"#,
    ),
    (
        "Ingress Request Latency Heatmap",
        r#"sum(increase(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le)"#,
    ),
    (
        "Ingress Certificate Expiry",
        r#"avg(nginx_ingress_controller_ssl_expire_time_seconds{kubernetes_pod_name=~"$controller",namespace=~"$namespace",ingress=~"$ingress"}) by (host) - time()"#,
    ),
    (
        "annotation: Config Reloads",
        r#"sum(changes(nginx_ingress_controller_config_last_reload_successful_timestamp_seconds{instance!="unknown",controller_class=~"$controller_class",namespace=~"$namespace"}[30s])) by (controller_class)"#,
    ),
];

/// request-handling-performance.json: (panel, expression).
const REQUEST_HANDLING_JSON: &[(&str, &str)] = &[
    (
        "Request Latency Percentiles: .5",
        r#"histogram_quantile(0.5, sum by (le)(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress =~ "$ingress"}[5m])))"#,
    ),
    (
        "Request Latency Percentiles: .95",
        r#"histogram_quantile(0.95, sum by (le)(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress =~ "$ingress"}[5m])))"#,
    ),
    (
        "Request Latency Percentiles: .99",
        r#"histogram_quantile(0.99, sum by (le)(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress =~ "$ingress"}[5m])))"#,
    ),
    (
        "Upstream Response Latency Percentiles: .5",
        r#"histogram_quantile(0.5, sum by (le)(rate(nginx_ingress_controller_response_duration_seconds_bucket{ingress =~ "$ingress"}[5m])))"#,
    ),
    (
        "Upstream Response Latency Percentiles: .95",
        r#"histogram_quantile(0.95, sum by (le)(rate(nginx_ingress_controller_response_duration_seconds_bucket{ingress =~ "$ingress"}[5m])))"#,
    ),
    (
        "Upstream Response Latency Percentiles: .99",
        r#"histogram_quantile(0.99, sum by (le)(rate(nginx_ingress_controller_response_duration_seconds_bucket{ingress =~ "$ingress"}[5m])))"#,
    ),
    (
        "Request Rate by Method and Path",
        r#"sum by (method, host, path)(rate(nginx_ingress_controller_request_duration_seconds_count{ingress =~ "$ingress"}[5m]))"#,
    ),
    (
        "Median Upstream Response Time by Method and Path",
        r#"histogram_quantile(.5, sum by (le, method, host, path)(rate(nginx_ingress_controller_response_duration_seconds_bucket{ingress =~ "$ingress"}[5m])))"#,
    ),
    (
        "Response Error Rate by Method and Path",
        r#"sum by (method, host, path) (rate(nginx_ingress_controller_request_duration_seconds_count{ingress =~ "$ingress", status =~ "[4-5].*"}[5m])) / sum by (method, host, path) (rate(nginx_ingress_controller_request_duration_seconds_count{ingress =~ "$ingress",}[5m]))"#,
    ),
    (
        "Upstream Response Time by Method and Path",
        r#"sum by (method, host, path) (rate(nginx_ingress_controller_response_duration_seconds_sum{ingress =~ "$ingress"}[5m]))"#,
    ),
    (
        "Response Error Rate by Method, Path and Status",
        r#"sum (rate(nginx_ingress_controller_request_duration_seconds_count{ingress =~ "$ingress", status =~"[4-5].*",}[5m])) by(method, host, path, status)"#,
    ),
    (
        "Average Response Size by Method and Path",
        r#"sum (rate (nginx_ingress_controller_response_size_sum {ingress =~ "$ingress",}[5m])) by (method, host, path) / sum (rate(nginx_ingress_controller_response_size_count {ingress =~ "$ingress",}[5m])) by (method, host, path)"#,
    ),
    (
        "Response Size Buckets",
        r#"sum (rate(nginx_ingress_controller_response_size_bucket{ingress =~ "$ingress",}[5m])) by (le)"#,
    ),
];

/// charts/ingress-nginx values.yaml `prometheusRule` examples: (alert, expression).
const ALERTS: &[(&str, &str)] = &[
    (
        "NGINXConfigFailed",
        r#"count(nginx_ingress_controller_config_last_reload_successful == 0) > 0"#,
    ),
    (
        "NGINXCertificateExpiry",
        r#"(avg(nginx_ingress_controller_ssl_expire_time_seconds{host!="_"}) by (host) - time()) < 604800"#,
    ),
    (
        "NGINXTooMany500s",
        r#"100 * ( sum( nginx_ingress_controller_requests{status=~"5.+"} ) / sum(nginx_ingress_controller_requests) ) > 5"#,
    ),
    (
        "NGINXTooMany400s",
        r#"100 * ( sum( nginx_ingress_controller_requests{status=~"4.+"} ) / sum(nginx_ingress_controller_requests) ) > 5"#,
    ),
];

const CONTROLLER_NS: &str = "ingress-nginx";
const CONTROLLER_POD: &str = "rauta-7xk2p";
const CLASS: &str = "rauta.io/ingress-controller";

/// Ingress shop/front on shop.example (`/` -> alpha, `/api` -> beta), its
/// host's certificate expiring in three days, rauta with the compatible
/// families on, a TLS listener, and the backends.
pub(crate) fn shop() -> (Rauta, ManifestDir, [rauta_testkit::Backend; 2]) {
    let (a, svc_a) = service("shop", "alpha");
    let (b, svc_b) = service("shop", "beta");
    let leaf = Ca::new().issue_for_days(&["shop.example"], 3);
    let spec = format!(
        "tls:\n- hosts: [shop.example]\n  secretName: shop-tls\nrules:\n{}",
        rule(
            Some("shop.example"),
            &[path("/", "Prefix", "alpha"), path("/api", "Prefix", "beta")]
        )
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect::<String>()
    );
    // Plain HTTP is served too, so the traffic needs no TLS client.
    let no_redirect = [("nginx.ingress.kubernetes.io/ssl-redirect", "false")];
    let ing = ingress("shop", "front", Some("rauta"), &no_redirect, &spec);
    let secret = tls_secret("shop", "shop-tls", &leaf.cert_pem, &leaf.key_pem);
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[&rauta_class(), &svc_a, &svc_b, &ing, &secret]),
    );
    let https = SocketAddr::from(([127, 0, 0, 1], free_port())).to_string();
    let rauta = start(
        &dir,
        &[
            "--listen-tls",
            &https,
            "--metrics-compat",
            "ingress-nginx",
            "--controller-namespace",
            CONTROLLER_NS,
            "--controller-pod",
            CONTROLLER_POD,
        ],
    );
    (rauta, dir, [a, b])
}

/// What the traffic sent, per kind.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    ok: u64,
    posts: u64,
    not_found: u64,
    unavailable: u64,
}

/// Keep-alive traffic for `how_long`: mostly 200s, and 404s and 503s from
/// the backend (each well above the alerts' 5%).
pub(crate) fn traffic(addr: SocketAddr, how_long: Duration) -> Sent {
    let mut conn = Conn::open(addr).expect("connect");
    let mut sent = Sent::default();
    let until = Instant::now() + how_long;
    while Instant::now() < until {
        for (method, p, status, body) in [
            ("GET", "/", 200, &b""[..]),
            ("GET", "/page", 200, b""),
            ("POST", "/api/items", 200, b"{\"name\":\"x\"}"),
            ("GET", "/status/404", 404, b""),
            ("GET", "/status/503", 503, b""),
        ] {
            let r = conn
                .request(method, "shop.example", p, &[], body)
                .unwrap_or_else(|e| panic!("{method} {p}: {e}"));
            assert_eq!(r.status, status, "{method} {p}");
            match (method, status) {
                ("POST", _) => sent.posts += 1,
                (_, 200) => sent.ok += 1,
                (_, 404) => sent.not_found += 1,
                _ => sent.unavailable += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    sent
}

/// `expr` with Grafana's template variables replaced by `vars`.
pub(crate) fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
    let mut vars = vars.to_vec();
    // `$controller` is a prefix of `$controller_class`: longest first.
    vars.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    vars.iter().fold(expr.to_string(), |e, (name, value)| {
        e.replace(&format!("${name}"), value)
    })
}

#[test]
fn ingress_nginx_dashboards_and_alerts_get_data_from_rauta() {
    require!(Need::tool("prometheus"));
    let (rauta, dir, _backends) = shop();
    // What service discovery adds to a pod target (kube-prometheus,
    // ServiceMonitor): the pod's namespace, which turns the exposed
    // `namespace` into `exported_namespace` as the dashboard expects.
    let prom = Prometheus::start(
        "prometheus",
        rauta.admin_addr(),
        &[
            ("namespace", CONTROLLER_NS),
            ("kubernetes_pod_name", CONTROLLER_POD),
        ],
    );
    let sent = traffic(rauta.addr(), Duration::from_secs(4));

    // The counters mean what ingress-nginx's mean.
    let m = rauta.scrape();
    let front = [
        ("controller_namespace", CONTROLLER_NS),
        ("controller_class", CLASS),
        ("controller_pod", CONTROLLER_POD),
        ("namespace", "shop"),
        ("ingress", "front"),
        ("host", "shop.example"),
        ("canary", ""),
    ];
    let series = |service, path, method, status| {
        let more = [
            ("service", service),
            ("path", path),
            ("method", method),
            ("status", status),
        ];
        front.iter().chain(&more).copied().collect::<Vec<_>>()
    };
    let requests = "nginx_ingress_controller_requests";
    let alpha = |status| series("alpha", "/", "GET", status);
    assert_eq!(m.value(requests, &alpha("200")), sent.ok as f64);
    assert_eq!(m.value(requests, &alpha("404")), sent.not_found as f64);
    assert_eq!(m.value(requests, &alpha("503")), sent.unavailable as f64);
    let posts = series("beta", "/api", "POST", "200");
    assert_eq!(m.value(requests, &posts), sent.posts as f64);
    let durations = "nginx_ingress_controller_request_duration_seconds_count";
    assert_eq!(m.value(durations, &alpha("200")), sent.ok as f64);
    assert!(
        m.value("nginx_ingress_controller_request_size_sum", &posts) >= 12.0 * sent.posts as f64,
        "request bodies count in request_size"
    );
    assert_eq!(
        m.value(
            "nginx_ingress_controller_config_last_reload_successful",
            &[]
        ),
        1.0
    );

    // A configuration that cannot be loaded: the "Last Config Failed"
    // panel and the NGINXConfigFailed alert need one.
    dir.write("broken.yaml", "kind: [unclosed\n");
    eventually("the broken reload is reported", || {
        rauta.scrape().value(
            "nginx_ingress_controller_config_last_reload_successful",
            &[],
        ) == 0.0
    });
    eventually("prometheus scraped the failed reload", || {
        prom.query("nginx_ingress_controller_config_last_reload_successful == 0")
            .is_ok_and(|r| !r.is_empty())
    });

    // Template variables resolve as Grafana resolves them.
    let values = |selector: &str, label: &str| {
        prom.label_values(selector, label)
            .unwrap_or_else(|e| panic!("label_values({selector}, {label}): {e}"))
    };
    assert_eq!(
        values(
            "nginx_ingress_controller_config_hash",
            "controller_namespace"
        ),
        [CONTROLLER_NS]
    );
    assert_eq!(
        values("nginx_ingress_controller_config_hash", "controller_class"),
        [CLASS]
    );
    assert_eq!(
        values("nginx_ingress_controller_config_hash", "controller_pod"),
        [CONTROLLER_POD]
    );
    assert_eq!(
        values("nginx_ingress_controller_requests", "exported_namespace"),
        ["shop"]
    );
    assert_eq!(
        values("nginx_ingress_controller_requests", "ingress"),
        ["front"]
    );

    let all = [
        ("namespace", ".*"),
        ("controller_class", ".*"),
        ("controller", ".*"),
        ("exported_namespace", ".*"),
        ("ingress", ".*"),
    ];
    let concrete = [
        ("namespace", CONTROLLER_NS),
        ("controller_class", CLASS),
        ("controller", CONTROLLER_POD),
        ("exported_namespace", "shop"),
        ("ingress", "front"),
    ];
    let mut failed = Vec::new();
    for (source, queries) in [
        ("nginx.json", NGINX_JSON),
        ("request-handling-performance.json", REQUEST_HANDLING_JSON),
        ("values.yaml prometheusRule", ALERTS),
    ] {
        for (panel, expr) in queries {
            for (mode, vars) in [("All", &all), ("concrete", &concrete)] {
                // ingress-nginx's ssl_expire_time_seconds has no `ingress`
                // label, so this panel is empty there too for one Ingress.
                if *panel == "Ingress Certificate Expiry" && mode == "concrete" {
                    continue;
                }
                let q = substitute(expr, vars);
                match prom.query(&q) {
                    Ok(r) if !r.is_empty() => {}
                    Ok(_) => failed.push(format!("{source} / {panel} ({mode}): no data\n    {q}")),
                    Err(e) => failed.push(format!("{source} / {panel} ({mode}): {e}\n    {q}")),
                }
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} queries returned nothing:\n{}\n--- scrapes ---\n{:?}\n--- prometheus log ---\n{}",
        failed.len(),
        failed.join("\n"),
        prom.query("count_over_time(up[1m])"),
        prom.log()
    );
}

/// Lines `promtool check metrics` prints for ingress-nginx's own counter
/// names, which lack `_total`; renaming them would break the dashboards.
const INGRESS_NGINX_LINT: [&str; 3] = [
    "nginx_ingress_controller_requests counter metrics should have \"_total\" suffix",
    "nginx_ingress_controller_success counter metrics should have \"_total\" suffix",
    "nginx_ingress_controller_errors counter metrics should have \"_total\" suffix",
];

#[test]
fn promtool_accepts_the_ingress_nginx_families() {
    require!(Need::tool(&rauta_testkit::metrics::promtool()));
    let (rauta, _dir, _backends) = shop();
    traffic(rauta.addr(), Duration::from_millis(100));
    let m: Metrics = rauta.scrape();
    assert!(
        m.value(
            "nginx_ingress_controller_ssl_expire_time_seconds",
            &[("host", "shop.example")]
        ) > 0.0
    );
    let text = m.text();
    let (status, report) = rauta_testkit::metrics::promtool_check(text);
    let other: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty() && !INGRESS_NGINX_LINT.contains(&l.trim()))
        .collect();
    // Exit 3 is "lint problems only"; 1 would be a parse error.
    assert!(
        (status.success() || status.code() == Some(3)) && other.is_empty(),
        "promtool: {status:?}\n{report}\n--- exposition ---\n{text}"
    );
}
