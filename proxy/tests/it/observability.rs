//! Per-route metrics, the admin API and the access log, through the real
//! binary.

use crate::common::{service, start};
use rauta_testkit::manifests::join;
use rauta_testkit::{eventually, manifests::path, manifests::rule, rauta_class};
use rauta_testkit::{ingress, require, Conn, ManifestDir, Need, Rauta};

/// Two routes on `shop.example`: Prefix `/` -> service `alpha`, Exact `/b` -> `beta`.
fn two_routes(
    extra: &[&str],
) -> (
    Rauta,
    ManifestDir,
    rauta_testkit::Backend,
    rauta_testkit::Backend,
) {
    let (a, svc_a) = service("shop", "alpha");
    let (b, svc_b) = service("shop", "beta");
    let ing = ingress(
        "shop",
        "front",
        Some("rauta"),
        &[],
        &rule(
            Some("shop.example"),
            &[path("/", "Prefix", "alpha"), path("/b", "Exact", "beta")],
        ),
    );
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&[&rauta_class(), &svc_a, &svc_b, &ing]));
    (start(&dir, extra), dir, a, b)
}

const A: [(&str, &str); 5] = [
    ("namespace", "shop"),
    ("ingress", "front"),
    ("service", "alpha"),
    ("host", "shop.example"),
    ("path", "/"),
];
const B: [(&str, &str); 2] = [("service", "beta"), ("path", "/b")];

fn with<'a>(base: &[(&'a str, &'a str)], more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(more).copied().collect()
}

#[test]
fn counters_and_histograms_count_exactly_per_route() {
    let (rauta, _dir, _a, _b) = two_routes(&[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    for _ in 0..5 {
        assert_eq!(
            conn.request("GET", "shop.example", "/a/x", &[], b"")
                .expect("a")
                .status,
            200
        );
    }
    for _ in 0..3 {
        assert_eq!(
            conn.request("POST", "shop.example", "/b", &[], b"12345")
                .expect("b")
                .status,
            200
        );
    }
    assert_eq!(
        conn.request("GET", "shop.example", "/status/503", &[], b"")
            .expect("503")
            .status,
        503
    );
    assert_eq!(
        conn.request("GET", "nowhere.example", "/", &[], b"")
            .expect("404")
            .status,
        404
    );
    let s = rauta.scrape();
    assert_eq!(
        s.value(
            "rauta_requests_total",
            &with(&A, &[("method", "GET"), ("status", "2xx")])
        ),
        5.0
    );
    assert_eq!(
        s.value(
            "rauta_requests_total",
            &with(&A, &[("method", "GET"), ("status", "5xx")])
        ),
        1.0
    );
    assert_eq!(
        s.value(
            "rauta_requests_total",
            &with(&B, &[("method", "POST"), ("status", "2xx")])
        ),
        3.0
    );
    assert_eq!(s.value("rauta_request_duration_seconds_count", &A), 6.0);
    assert_eq!(
        s.value(
            "rauta_request_duration_seconds_bucket",
            &with(&A, &[("le", "+Inf")])
        ),
        6.0
    );
    assert_eq!(s.value("rauta_response_duration_seconds_count", &B), 3.0);
    assert_eq!(s.value("rauta_request_quantiles_seconds_count", &B), 3.0);
    assert_eq!(s.value("rauta_errors_total", &[("cause", "no_route")]), 1.0);
    assert_eq!(s.value("rauta_requests_in_flight", &A), 0.0);
    assert!(
        s.value("rauta_request_bytes_total", &B) >= 3.0 * 5.0,
        "bodies count as request bytes"
    );
    assert!(s.value("rauta_response_bytes_total", &A) > 0.0);
    // One keep-alive client connection, pooled upstreams.
    assert_eq!(s.value("rauta_accepted_connections_total", &[]), 1.0);
    assert!(s.value("rauta_upstream_idle_connections", &[]) >= 1.0);
    assert_eq!(s.value("rauta_route_table_generation", &[]), 1.0);
    assert_eq!(s.value("rauta_config_reloads_total", &[]), 1.0);
    assert!(s.value("rauta_jemalloc_allocated_bytes", &[]) > 0.0);
    // Counters accumulate across scrapes (shards hand over deltas).
    conn.request("GET", "shop.example", "/a", &[], b"")
        .expect("a");
    let s = rauta.scrape();
    assert_eq!(
        s.value(
            "rauta_requests_total",
            &with(&A, &[("method", "GET"), ("status", "2xx")])
        ),
        6.0
    );
    assert_eq!(s.value("rauta_request_duration_seconds_count", &A), 7.0);
}

#[test]
fn promtool_accepts_the_exposition() {
    require!(Need::tool(&rauta_testkit::metrics::promtool()));
    let (rauta, _dir, _a, _b) = two_routes(&[]);
    // Every kind of series: routed answers of both routes, and no route.
    for (host, p, status) in [
        ("shop.example", "/a", 200),
        ("shop.example", "/b", 200),
        ("shop.example", "/none", 200),
        ("other.example", "/", 404),
    ] {
        let r =
            rauta_testkit::get(rauta.addr(), host, p).unwrap_or_else(|e| panic!("{host}{p}: {e}"));
        assert_eq!(r.status, status, "{host}{p}");
    }
    let m = rauta.scrape();
    assert_eq!(
        m.value("rauta_requests_total", &[("status", "2xx")]),
        3.0,
        "the exposition has the requests' series"
    );
    assert_eq!(m.value("rauta_errors_total", &[("cause", "no_route")]), 1.0);
    let text = m.text();
    let (status, report) = rauta_testkit::metrics::promtool_check(text);
    assert!(
        status.success(),
        "promtool rejected the exposition:\n{report}\n--- exposition ---\n{text}"
    );
}

#[test]
fn quantiles_move_when_the_backend_gets_slow() {
    let (rauta, _dir, _a, _b) = two_routes(&[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    for _ in 0..20 {
        conn.request("GET", "shop.example", "/a", &[], b"")
            .expect("fast");
    }
    let s = rauta.scrape();
    let p99_fast = s.value(
        "rauta_request_quantiles_seconds",
        &with(&A, &[("quantile", "0.99")]),
    );
    assert!(p99_fast < 0.1, "p99 of fast requests {p99_fast}");
    for _ in 0..20 {
        conn.request("GET", "shop.example", "/slow?ms=150", &[], b"")
            .expect("slow");
    }
    let s = rauta.scrape();
    let p99 = s.value(
        "rauta_request_quantiles_seconds",
        &with(&A, &[("quantile", "0.99")]),
    );
    let p50 = s.value(
        "rauta_request_quantiles_seconds",
        &with(&A, &[("quantile", "0.5")]),
    );
    assert!(p99 >= 0.15, "p99 {p99} did not move");
    assert!(p50 < 0.15, "half the requests were fast: p50 {p50}");
    let slow_upstream = s.value(
        "rauta_response_duration_seconds_bucket",
        &with(&A, &[("le", "0.1")]),
    );
    assert_eq!(
        slow_upstream, 20.0,
        "20 upstream answers under 100 ms, 20 over"
    );
    assert_eq!(s.value("rauta_response_duration_seconds_count", &A), 40.0);
}

#[test]
fn in_flight_requests_show_while_they_run() {
    let (rauta, _dir, _a, _b) = two_routes(&[]);
    let addr = rauta.addr();
    let slow =
        std::thread::spawn(move || rauta_testkit::get(addr, "shop.example", "/slow?ms=1500"));
    eventually("one request in flight", || {
        rauta.scrape().value("rauta_requests_in_flight", &A) == 1.0
    });
    assert_eq!(slow.join().expect("thread").expect("answer").status, 200);
    assert_eq!(rauta.scrape().value("rauta_requests_in_flight", &A), 0.0);
}

#[test]
fn series_of_removed_routes_vanish() {
    let (rauta, dir, _a, _b) = two_routes(&[]);
    rauta_testkit::get(rauta.addr(), "shop.example", "/b").expect("b");
    assert_eq!(
        rauta
            .scrape()
            .value("rauta_request_duration_seconds_count", &B),
        1.0
    );
    let (_a2, svc_a) = service("shop", "alpha");
    let only_a = ingress(
        "shop",
        "front",
        Some("rauta"),
        &[],
        &rule(Some("shop.example"), &[path("/", "Prefix", "alpha")]),
    );
    let generation = rauta.generation().expect("ready");
    dir.write("all.yaml", &join(&[&rauta_class(), &svc_a, &only_a]));
    rauta.wait_generation(generation + 1);
    let s = rauta.scrape();
    let text = s.text();
    assert_eq!(s.value("rauta_request_duration_seconds_count", &B), 0.0);
    assert!(
        !text.contains("path=\"/b\""),
        "series of /b still exposed:\n{text}"
    );
    assert_eq!(
        s.value("rauta_route_table_generation", &[]),
        (generation + 1) as f64
    );
}

#[test]
fn failed_reloads_are_counted() {
    let (rauta, dir, _a, _b) = two_routes(&[]);
    dir.write(
        "broken.yaml",
        "kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: [\n",
    );
    eventually("a rejected reload counted", || {
        rauta
            .scrape()
            .value("rauta_config_reloads_failed_total", &[])
            >= 1.0
    });
    let s = rauta.scrape();
    // A file that does not parse rejects the set: a fatal problem.
    assert!(s.value("rauta_config_problems", &[("severity", "fatal")]) >= 1.0);
    assert_eq!(
        s.value("rauta_config_problems", &[("severity", "error")]),
        0.0
    );
    assert_eq!(s.value("rauta_route_table_generation", &[]), 1.0);
}

#[test]
fn debug_route_explains_the_decision() {
    let (_x, svc_x) = service("web", "exact");
    let (_p, svc_p) = service("web", "prefix");
    let (_w, svc_w) = service("web", "wild");
    let (_d, svc_d) = service("web", "fallback");
    let rules = [
        rule(
            Some("app.example"),
            &[
                path("/foo", "Exact", "exact"),
                path("/foo", "Prefix", "prefix"),
            ],
        ),
        rule(Some("*.wild.example"), &[path("/", "Prefix", "wild")]),
    ]
    .concat();
    let spec =
        format!(
        "defaultBackend:\n  service:\n    name: fallback\n    port:\n      name: http\nrules:\n{}",
        rules.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    let ing = ingress("web", "site", Some("rauta"), &[], &spec);
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[&rauta_class(), &svc_x, &svc_p, &svc_w, &svc_d, &ing]),
    );
    let rauta = start(&dir, &[]);
    let explain = |host: &str, path: &str| -> serde_json::Value {
        let q = format!(
            "/debug/route?host={}&path={}&method=POST",
            host,
            path.replace('?', "%3F")
        );
        let r = rauta.admin_get(&q).expect("debug route");
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice(&r.body).expect("JSON")
    };
    let e = explain("APP.example:8080", "/foo");
    assert_eq!(e["host"], "app.example");
    assert_eq!(e["host_match"], "exact");
    assert_eq!(e["result"], "rule");
    assert_eq!(e["winner"]["path_type"], "Exact", "{e}");
    assert_eq!(e["candidates"].as_array().map(Vec::len), Some(2));
    assert!(
        e["why"]
            .as_str()
            .is_some_and(|w| w.contains("Exact beats Prefix")),
        "{e}"
    );
    let e = explain("app.example", "/foo/bar?x=1");
    assert_eq!(
        (e["winner"]["path_type"].as_str(), e["path"].as_str()),
        (Some("Prefix"), Some("/foo/bar"))
    );
    let candidates = e["candidates"].as_array().expect("list");
    assert!(candidates
        .iter()
        .any(|c| c["path_type"] == "Exact" && c["matches"] == false));
    let e = explain("a.wild.example", "/x");
    assert_eq!(
        (e["host_match"].as_str(), e["winner"]["backend"].as_str()),
        (Some("wildcard"), Some("web/wild:http"))
    );
    let e = explain("app.example", "/foobar");
    assert_eq!(e["result"], "default-backend", "{e}");
    assert_eq!(e["winner"]["backend"], "web/fallback:http");
    let e = explain("a.b.wild.example", "/");
    assert_eq!(
        (e["host_match"].as_str(), e["result"].as_str()),
        (Some("none"), Some("default-backend"))
    );
    assert_eq!(
        rauta
            .admin_get("/debug/route?host=x")
            .expect("usage")
            .status,
        400
    );
    assert_eq!(rauta.admin_get("/nope").expect("404").status, 404);
}

#[test]
fn routes_shows_the_live_table() {
    let (rauta, _dir, a, _b) = two_routes(&[]);
    let r = rauta.admin_get("/routes").expect("routes");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(v["generation"], 1);
    assert_eq!(v["live_on_every_shard"], true);
    let rules = v["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 2);
    assert!(rules.iter().any(|r| r["path"] == "/b"
        && r["path_type"] == "Exact"
        && r["backend"] == "shop/beta:http"));
    let alpha = v["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .find(|b| b["service"] == "alpha")
        .cloned()
        .expect("alpha");
    assert_eq!(alpha["policy"], "round_robin");
    assert_eq!(
        alpha["endpoints"][0]["address"],
        format!("127.0.0.1:{}", a.port())
    );
    assert_eq!(alpha["endpoints"][0]["state"], "ready");
}

#[test]
fn access_log_lines_are_json_with_every_field() {
    let (rauta, _dir, a, _b) = two_routes(&["--access-log"]);
    let r = rauta_testkit::client::request(
        rauta.addr(),
        "POST",
        "shop.example",
        "/a/x?q=1",
        &[("X-Request-Id", "req-42")],
        b"hello",
    )
    .expect("served");
    assert_eq!(r.status, 200);
    rauta_testkit::get(rauta.addr(), "nowhere.example", "/missing").expect("404");
    let lines = || -> Vec<serde_json::Value> {
        rauta
            .log()
            .lines()
            .filter(|l| l.starts_with("{\"time\""))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    eventually("two access-log lines", || lines().len() >= 2);
    let all = lines();
    let ok = all
        .iter()
        .find(|l| l["request_id"] == "req-42")
        .expect("line of the first request");
    assert_eq!(ok["method"], "POST");
    assert_eq!(ok["host"], "shop.example");
    assert_eq!(ok["path"], "/a/x?q=1");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["upstream_status"], 200);
    assert_eq!(ok["upstream"], format!("127.0.0.1:{}", a.port()));
    assert!(
        ok["bytes_in"].as_u64().is_some_and(|n| n > 5)
            && ok["bytes_out"].as_u64().is_some_and(|n| n > 0)
    );
    assert!(ok["request_time"].as_f64().is_some() && ok["upstream_time"].as_f64().is_some());
    assert!(
        ok["route"]
            .as_str()
            .is_some_and(|r| r.starts_with("shop/front|shop.example|/|Prefix|")),
        "{ok}"
    );
    assert!(ok["client"]
        .as_str()
        .is_some_and(|c| c.starts_with("127.0.0.1:")));
    assert!(ok["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let missing = all
        .iter()
        .find(|l| l["path"] == "/missing")
        .expect("line of the 404");
    assert_eq!(
        (missing["status"].as_u64(), missing["route"].is_null()),
        (Some(404), true)
    );
    assert_eq!(
        missing["request_id"].as_str().map(str::len),
        Some(32),
        "generated ids are logged"
    );
    assert_eq!(
        rauta.scrape().value("rauta_access_log_dropped_total", &[]),
        0.0
    );
}

#[test]
fn the_metrics_listener_serves_metrics_and_healthz_and_nothing_else() {
    let port = rauta_testkit::free_port();
    let listen = format!("127.0.0.1:{port}");
    let (rauta, _dir, _a, _b) = two_routes(&["--metrics-listen", &listen]);
    let addr: std::net::SocketAddr = listen.parse().expect("address");
    assert_eq!(rauta.who("shop.example", "/a"), "alpha");
    // Both listeners drain the same shard counters: the request shows on
    // either, whichever scrapes first, and is never lost or counted twice.
    let counted = |body: &str| {
        body.lines()
            .filter(|l| l.starts_with("rauta_requests_total{") && l.contains("shop.example"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    let scrape = rauta_testkit::get(addr, "", "/metrics").expect("scrape");
    assert_eq!(scrape.status, 200);
    assert_eq!(counted(&scrape.text()), 1, "{}", scrape.text());
    let admin = rauta.admin_get("/metrics").expect("admin scrape");
    assert_eq!(
        counted(&admin.text()),
        1,
        "the admin listener sees the same totals"
    );
    assert_eq!(
        rauta_testkit::get(addr, "", "/healthz")
            .expect("healthz")
            .status,
        200
    );
    for local_only in [
        "/routes",
        "/debug/route?host=shop.example&path=/a",
        "/readyz",
    ] {
        let r = rauta_testkit::get(addr, "", local_only).expect("answer");
        assert_eq!(r.status, 404, "{local_only} stays on the admin listener");
    }
    assert_eq!(rauta.admin_get("/routes").expect("routes").status, 200);
}
