//! OpenTelemetry traces through the real binary: W3C `traceparent`
//! continued or started, the span exported over OTLP/HTTP (JSON) to a real
//! receiver, the per-Ingress annotations, and a stalled receiver that
//! costs spans (counted) but never requests.

use crate::common::{service, start};
use rauta_testkit::manifests::{join, path, rule};
use rauta_testkit::otlp::{OtlpReceiver, ReceivedSpan};
use rauta_testkit::{eventually, eventually_some, ingress, rauta_class, Backend, Conn};
use rauta_testkit::{ManifestDir, Rauta};
use std::time::Duration;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// `shop.example` -> alpha; `off.example` with `enable-opentelemetry:
/// false`; `new.example` with `opentelemetry-trust-incoming-span: false`;
/// `moved.example` a permanent redirect; `empty.example` a Service
/// without endpoints; `guarded.example` behind an auth service (alpha's
/// `/status/401`) that refuses; `pages.example` to the Service without
/// endpoints with alpha as its error backend (`default-backend`).
fn setup(receiver: &OtlpReceiver, ratio: &str, extra: &[&str]) -> (Rauta, ManifestDir, Backend) {
    let (a, svc) = service("shop", "alpha");
    let plain = ingress(
        "shop",
        "front",
        Some("rauta"),
        &[],
        &rule(Some("shop.example"), &[path("/", "Prefix", "alpha")]),
    );
    let off = ingress(
        "shop",
        "quiet",
        Some("rauta"),
        &[("nginx.ingress.kubernetes.io/enable-opentelemetry", "false")],
        &rule(Some("off.example"), &[path("/", "Prefix", "alpha")]),
    );
    let untrusted = ingress(
        "shop",
        "edge",
        Some("rauta"),
        &[(
            "nginx.ingress.kubernetes.io/opentelemetry-trust-incoming-span",
            "false",
        )],
        &rule(Some("new.example"), &[path("/", "Prefix", "alpha")]),
    );
    let moved = ingress(
        "shop",
        "moved",
        Some("rauta"),
        &[(
            "nginx.ingress.kubernetes.io/permanent-redirect",
            "https://elsewhere.example/",
        )],
        &rule(Some("moved.example"), &[path("/", "Prefix", "alpha")]),
    );
    let nobody = rauta_testkit::service("shop", "nobody", &[(Some("http"), 80, 8080)]);
    let empty = ingress(
        "shop",
        "empty",
        Some("rauta"),
        &[],
        &rule(Some("empty.example"), &[path("/", "Prefix", "nobody")]),
    );
    let auth_url = format!("http://127.0.0.1:{}/status/401", a.port());
    let guarded = ingress(
        "shop",
        "guarded",
        Some("rauta"),
        &[("nginx.ingress.kubernetes.io/auth-url", auth_url.as_str())],
        &rule(Some("guarded.example"), &[path("/", "Prefix", "alpha")]),
    );
    let pages = ingress(
        "shop",
        "pages",
        Some("rauta"),
        &[("nginx.ingress.kubernetes.io/default-backend", "alpha")],
        &rule(Some("pages.example"), &[path("/", "Prefix", "nobody")]),
    );
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_class(),
            &svc,
            &plain,
            &off,
            &untrusted,
            &moved,
            &nobody,
            &empty,
            &guarded,
            &pages,
        ]),
    );
    let endpoint = receiver.endpoint();
    let mut args = vec![
        "--otlp-endpoint",
        &endpoint,
        "--otlp-sample-ratio",
        ratio,
        "--otlp-service-name",
        "rauta-test",
        "--otlp-resource-attribute",
        "deployment.environment=ci",
    ];
    args.extend_from_slice(extra);
    (start(&dir, &args), dir, a)
}

fn get(rauta: &Rauta, host: &str, target: &str, headers: &[(&str, &str)]) -> u16 {
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    conn.request("GET", host, target, headers, b"")
        .expect("answered")
        .status
}

/// The `traceparent` the backend last saw, split: (trace id, parent id, flags).
fn forwarded(backend: &Backend) -> Option<(String, String, String)> {
    let req = backend.last_request().expect("a request");
    let v = req.header("traceparent")?.to_string();
    let parts: Vec<&str> = v.split('-').collect();
    assert_eq!(parts.len(), 4, "{v}");
    assert_eq!(parts[0], "00");
    Some((parts[1].into(), parts[2].into(), parts[3].into()))
}

fn span_of(receiver: &OtlpReceiver, span_id: &str) -> ReceivedSpan {
    eventually_some("the span exported", || {
        receiver.spans().into_iter().find(|s| s.span_id == span_id)
    })
}

#[test]
fn a_client_trace_is_continued_and_its_span_exported_with_attributes() {
    let receiver = OtlpReceiver::start();
    let (rauta, _dir, a) = setup(&receiver, "0", &["--access-log"]);
    let client = format!("00-{TRACE}-{PARENT}-01");
    let status = get(
        &rauta,
        "shop.example",
        "/cart?x=1",
        &[
            ("traceparent", client.as_str()),
            ("tracestate", "vendor=v1"),
        ],
    );
    assert_eq!(status, 200);
    let (trace, parent, flags) = forwarded(&a).expect("traceparent forwarded");
    assert_eq!(trace, TRACE);
    assert_ne!(parent, PARENT, "rauta's own span is the upstream's parent");
    assert_eq!(flags, "01");
    let req = a.last_request().expect("request");
    assert_eq!(req.header("tracestate"), Some("vendor=v1"));
    assert_eq!(req.header_all("traceparent").len(), 1);

    let span = span_of(&receiver, &parent);
    assert_eq!(span.trace_id, TRACE);
    assert_eq!(span.parent_span_id, PARENT);
    assert_eq!(span.kind, 2, "SERVER");
    assert_eq!(span.status_code, 0);
    assert_eq!(span.attr("http.request.method"), Some("GET"));
    assert_eq!(span.attr("http.response.status_code"), Some("200"));
    assert_eq!(span.attr("http.route"), Some("/"));
    assert_eq!(span.attr("url.path"), Some("/cart"));
    assert_eq!(span.attr("url.scheme"), Some("http"));
    assert_eq!(span.attr("server.address"), Some("shop.example"));
    assert_eq!(span.attr("client.address"), Some("127.0.0.1"));
    assert_eq!(span.attr("rauta.ingress"), Some("shop/front"));
    let upstream = format!("127.0.0.1:{}", a.port());
    assert_eq!(span.attr("rauta.upstream"), Some(upstream.as_str()));
    assert_eq!(
        span.resource.get("service.name").map(String::as_str),
        Some("rauta-test")
    );
    assert_eq!(
        span.resource
            .get("deployment.environment")
            .map(String::as_str),
        Some("ci")
    );

    // The access log carries the span context.
    let line = eventually_some("the access-log line", || {
        rauta
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["path"] == "/cart?x=1")
    });
    assert_eq!(line["trace_id"], TRACE);
    assert_eq!(line["span_id"], parent.as_str());

    // A 5xx answer is an ERROR span.
    let client = format!("00-{TRACE}-{PARENT}-01");
    assert_eq!(
        get(
            &rauta,
            "shop.example",
            "/status/503",
            &[("traceparent", client.as_str())]
        ),
        503
    );
    let (_, parent, _) = forwarded(&a).expect("traceparent");
    let span = span_of(&receiver, &parent);
    assert_eq!(span.status_code, 2);
    assert_eq!(span.attr("http.response.status_code"), Some("503"));
}

#[test]
fn ratio_one_starts_a_trace_and_ratio_zero_invents_nothing() {
    let receiver = OtlpReceiver::start();
    let (rauta, _dir, a) = setup(&receiver, "1", &[]);
    assert_eq!(get(&rauta, "shop.example", "/", &[]), 200);
    let (trace, parent, flags) = forwarded(&a).expect("a new trace forwarded");
    assert_eq!(flags, "01");
    let span = span_of(&receiver, &parent);
    assert_eq!(span.trace_id, trace);
    assert_eq!(span.parent_span_id, "");
    // An invalid traceparent counts as none: a new trace.
    let upper = format!("00-{}-{PARENT}-01", TRACE.to_uppercase());
    assert_eq!(
        get(
            &rauta,
            "shop.example",
            "/",
            &[("traceparent", upper.as_str())]
        ),
        200
    );
    let (trace, _, _) = forwarded(&a).expect("traceparent");
    assert_ne!(trace, TRACE.to_uppercase());
    assert_ne!(trace, TRACE);

    let receiver = OtlpReceiver::start();
    let (rauta, _dir, a) = setup(&receiver, "0", &[]);
    assert_eq!(get(&rauta, "shop.example", "/", &[]), 200);
    assert_eq!(forwarded(&a), None, "nothing invented at ratio 0");
    // An unsampled parent is propagated (our span as its parent), not exported.
    let client = format!("00-{TRACE}-{PARENT}-00");
    assert_eq!(
        get(
            &rauta,
            "shop.example",
            "/",
            &[("traceparent", client.as_str())]
        ),
        200
    );
    let (trace, parent, flags) = forwarded(&a).expect("propagated");
    assert_eq!((trace.as_str(), flags.as_str()), (TRACE, "00"));
    assert_ne!(parent, PARENT);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(receiver.spans().is_empty(), "{:?}", receiver.spans());
}

#[test]
fn the_annotations_turn_spans_off_or_start_a_new_trace() {
    let receiver = OtlpReceiver::start();
    let (rauta, _dir, a) = setup(&receiver, "1", &[]);
    let client = format!("00-{TRACE}-{PARENT}-01");
    assert_eq!(
        get(
            &rauta,
            "off.example",
            "/",
            &[("traceparent", client.as_str())]
        ),
        200
    );
    let req = a.last_request().expect("request");
    assert_eq!(
        req.header("traceparent"),
        Some(client.as_str()),
        "passed through untouched"
    );
    assert_eq!(
        get(
            &rauta,
            "new.example",
            "/",
            &[("traceparent", client.as_str())]
        ),
        200
    );
    let (trace, parent, _) = forwarded(&a).expect("a new trace");
    assert_ne!(trace, TRACE);
    let span = span_of(&receiver, &parent);
    assert_eq!(span.parent_span_id, "");
    assert_eq!(span.attr("rauta.ingress"), Some("shop/edge"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        receiver.spans().iter().all(|s| s.trace_id != TRACE),
        "no span for the switched-off Ingress"
    );
}

#[test]
fn a_stalled_receiver_drops_and_counts_spans_and_never_blocks_requests() {
    let receiver = OtlpReceiver::start();
    receiver.stall(true);
    let (rauta, _dir, _a) = setup(&receiver, "1", &["--otlp-queue-spans", "1"]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    for _ in 0..40 {
        for _ in 0..50 {
            let r = conn
                .request("GET", "shop.example", "/", &[], b"")
                .expect("served");
            assert_eq!(r.status, 200);
        }
        std::thread::sleep(Duration::from_millis(60));
    }
    eventually("spans dropped and counted", || {
        rauta.scrape().value("rauta_otel_spans_dropped_total", &[]) > 0.0
    });
    assert!(receiver.posts() >= 1);
    receiver.stall(false);
}

/// The one span of trace `trace` (the client's, continued).
fn one_span(receiver: &OtlpReceiver, trace: &str) -> ReceivedSpan {
    eventually_some("the span exported", || {
        receiver.spans().into_iter().find(|s| s.trace_id == trace)
    })
}

fn exported(rauta: &Rauta) -> f64 {
    rauta.scrape().value("rauta_otel_spans_exported_total", &[])
}

fn failed(rauta: &Rauta) -> f64 {
    rauta.scrape().value("rauta_otel_spans_failed_total", &[])
}

#[test]
fn answers_rauta_gives_itself_get_one_span_each() {
    let receiver = OtlpReceiver::start();
    // Ratio 0: only the client's sampled parent makes these spans.
    let (rauta, _dir, a) = setup(&receiver, "0", &[]);
    let traced = |trace: &str| format!("00-{trace}-{PARENT}-01");

    // No route: 404, no route attributes.
    let t404 = "4bf92f3577b34da6a3ce929d0e0e0404";
    let status = get(
        &rauta,
        "nowhere.example",
        "/x?q=1",
        &[("traceparent", traced(t404).as_str())],
    );
    assert_eq!(status, 404);
    let span = one_span(&receiver, t404);
    assert_eq!(span.parent_span_id, PARENT);
    assert_ne!(span.span_id, PARENT);
    assert_eq!(span.kind, 2, "SERVER");
    assert_eq!(span.status_code, 0, "a 4xx is not a server error");
    assert_eq!(span.name, "GET");
    assert_eq!(span.attr("http.response.status_code"), Some("404"));
    assert_eq!(span.attr("http.request.method"), Some("GET"));
    assert_eq!(span.attr("url.path"), Some("/x"));
    assert_eq!(span.attr("server.address"), Some("nowhere.example"));
    assert_eq!(span.attr("http.route"), None);
    assert_eq!(span.attr("rauta.ingress"), None);
    assert_eq!(span.attr("rauta.upstream"), None);
    assert_eq!(span.attr("error.type"), None);

    // A redirect the route's policy answers: its route, no upstream.
    let t301 = "4bf92f3577b34da6a3ce929d0e0e0301";
    let status = get(
        &rauta,
        "moved.example",
        "/old",
        &[("traceparent", traced(t301).as_str())],
    );
    assert_eq!(status, 301);
    let span = one_span(&receiver, t301);
    assert_eq!(span.parent_span_id, PARENT);
    assert_eq!(span.status_code, 0);
    assert_eq!(span.name, "GET /");
    assert_eq!(span.attr("http.response.status_code"), Some("301"));
    assert_eq!(span.attr("http.route"), Some("/"));
    assert_eq!(span.attr("rauta.ingress"), Some("shop/moved"));
    assert_eq!(span.attr("rauta.upstream"), None);

    // No endpoint: 503, an ERROR span that says why.
    let t503 = "4bf92f3577b34da6a3ce929d0e0e0503";
    let status = get(
        &rauta,
        "empty.example",
        "/",
        &[("traceparent", traced(t503).as_str())],
    );
    assert_eq!(status, 503);
    let span = one_span(&receiver, t503);
    assert_eq!(span.status_code, 2);
    assert_eq!(span.attr("http.response.status_code"), Some("503"));
    assert_eq!(span.attr("error.type"), Some("no_endpoint"));
    assert_eq!(span.attr("rauta.ingress"), Some("shop/empty"));
    assert!(a.last_request().is_none(), "no backend saw any of them");

    // The auth service refuses: 401, the route's span, no upstream.
    let t401 = "4bf92f3577b34da6a3ce929d0e0e0401";
    let status = get(
        &rauta,
        "guarded.example",
        "/",
        &[("traceparent", traced(t401).as_str())],
    );
    assert_eq!(status, 401);
    let span = one_span(&receiver, t401);
    assert_eq!(span.parent_span_id, PARENT);
    assert_eq!(span.attr("http.response.status_code"), Some("401"));
    assert_eq!(span.attr("rauta.ingress"), Some("shop/guarded"));
    assert_eq!(span.attr("http.route"), Some("/"));
    assert_eq!(span.attr("rauta.upstream"), None);

    // No endpoint, and the error backend answers instead: its answer and
    // its address.
    let terr = "4bf92f3577b34da6a3ce929d0e0e0e44";
    let status = get(
        &rauta,
        "pages.example",
        "/",
        &[("traceparent", traced(terr).as_str())],
    );
    assert_eq!(status, 200);
    let span = one_span(&receiver, terr);
    assert_eq!(span.parent_span_id, PARENT);
    assert_eq!(span.attr("http.response.status_code"), Some("200"));
    assert_eq!(span.attr("rauta.ingress"), Some("shop/pages"));
    let upstream = format!("127.0.0.1:{}", a.port());
    assert_eq!(span.attr("rauta.upstream"), Some(upstream.as_str()));

    // One span each, and the exporter counted exactly what arrived.
    eventually("the exported counter matches the spans received", || {
        exported(&rauta) == receiver.spans().len() as f64
    });
    assert_eq!(receiver.spans().len(), 5, "{:?}", receiver.spans());
    assert_eq!(failed(&rauta), 0.0);
}

#[test]
fn the_exporter_keeps_its_connection_and_counts_what_a_down_or_failing_receiver_cost() {
    let receiver = OtlpReceiver::start();
    let (rauta, _dir, _a) = setup(&receiver, "1", &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    let mut send = |n: usize| {
        for _ in 0..n {
            let r = conn
                .request("GET", "shop.example", "/", &[], b"")
                .expect("served");
            assert_eq!(r.status, 200);
        }
    };
    // Three exports, one after another, on one connection.
    for round in 1..=3 {
        send(1);
        eventually("the span exported", || exported(&rauta) == f64::from(round));
    }
    assert!(receiver.posts() >= 3);
    assert_eq!(receiver.connections(), 1, "one kept-alive connection");
    assert_eq!(receiver.spans().len(), 3);

    // Down: the spans fail and are counted; requests are served as before.
    receiver.set_down(true);
    send(20);
    eventually("spans failed and counted", || failed(&rauta) >= 20.0);
    assert_eq!(exported(&rauta), 3.0);

    // Back: the exporter connects again.
    receiver.set_down(false);
    send(5);
    eventually("exported again", || exported(&rauta) >= 8.0);

    // A receiver answering 503: failed, not exported.
    let before = failed(&rauta);
    receiver.set_failing(true);
    send(5);
    eventually("spans refused and counted", || {
        failed(&rauta) >= before + 5.0
    });
    receiver.set_failing(false);
    assert_eq!(
        exported(&rauta),
        receiver.spans().len() as f64,
        "every span counted as exported arrived"
    );
}
