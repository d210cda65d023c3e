//! Request mirroring through the real proxy: ingress-nginx's `mirror-*`
//! annotations and the HTTPRoute `RequestMirror` filter, against real
//! backends. The client always gets the primary's answer, whatever the
//! mirror does; the copies are counted in `rauta_mirror_requests_total`.

use crate::annotated::{assert_reported, ing, serve_docs, service_on};
use crate::common::start;
use rauta_testkit::client::request;
use rauta_testkit::manifests::{join, path, rauta_gateway};
use rauta_testkit::{
    backend_for, eventually, eventually_some, free_port, pattern, xxh3, Backend, ManifestDir,
    Rauta, RecordedRequest, ScriptedBackend,
};
use std::time::Duration;

/// The last request `backend` got, once it is the one for `path` (the
/// backend counts a request before it records it).
fn last_for(backend: &Backend, path: &str) -> RecordedRequest {
    eventually_some(&format!("a request for {path}"), || {
        backend.last_request().filter(|r| r.path == path)
    })
}

/// `rauta_mirror_requests_total` of Ingress web/`name` with `result`.
fn mirrored(rauta: &Rauta, name: &str, result: &str) -> f64 {
    rauta.scrape().value(
        "rauta_mirror_requests_total",
        &[("ingress", name), ("result", result)],
    )
}

#[test]
fn a_mirrored_get_reaches_the_mirror_while_the_client_gets_the_primary() {
    let app = Backend::start("app");
    let shadow = Backend::start("shadow");
    let svc = service_on("app", &[app.port()]);
    let shadow_svc = service_on("shadow", &[shadow.port()]);
    // By Service name, with $request_uri after a prefix; Host defaults to
    // the target's authority.
    let named = ing(
        "named",
        &[(
            "mirror-target",
            "http://shadow.web.svc.cluster.local/copy$request_uri",
        )],
        "named.example",
        &[path("/", "Prefix", "app")],
    );
    // By IP literal, with mirror-host.
    let target = format!("http://127.0.0.1:{}$request_uri", shadow.port());
    let literal = ing(
        "literal",
        &[
            ("mirror-target", target.as_str()),
            ("mirror-host", "shadow.example"),
        ],
        "literal.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &shadow_svc, &named, &literal]);

    let r = request(
        rauta.addr(),
        "GET",
        "named.example",
        "/page?x=1",
        &[("X-Request-ID", "req-7"), ("X-Custom", "kept")],
        b"",
    )
    .expect("answer");
    assert_eq!(r.status, 200, "{}", rauta.log());
    assert_eq!(r.header("x-backend"), Some("app"), "the primary answers");
    let copy = last_for(&shadow, "/copy/page?x=1");
    assert_eq!(shadow.requests(), 1);
    assert_eq!(copy.method, "GET");
    assert_eq!(copy.path, "/copy/page?x=1");
    assert_eq!(copy.header("host"), Some("shadow.web.svc.cluster.local"));
    assert_eq!(copy.header("x-custom"), Some("kept"));
    assert_eq!(copy.header("x-request-id"), Some("req-7"));
    assert_eq!(copy.header("x-forwarded-host"), Some("named.example"));
    assert_eq!(copy.header("x-forwarded-for"), Some("127.0.0.1"));
    let primary = app.last_request().expect("the primary request");
    assert_eq!(primary.path, "/page?x=1");
    assert_eq!(primary.header("host"), Some("named.example"));
    eventually("the copy is counted sent", || {
        mirrored(&rauta, "named", "sent") == 1.0
    });

    let r = request(rauta.addr(), "GET", "literal.example", "/a/b", &[], b"").expect("answer");
    assert_eq!(r.header("x-backend"), Some("app"));
    let copy = last_for(&shadow, "/a/b");
    assert_eq!(copy.path, "/a/b");
    assert_eq!(copy.header("host"), Some("shadow.example"), "mirror-host");
}

#[test]
fn a_mirror_that_is_down_or_hangs_never_fails_the_primary() {
    let app = Backend::start("app");
    // Answers only after a minute: the mirror's read timeout (1 s) ends it.
    let hanging = ScriptedBackend::start(Duration::from_secs(60), None);
    let svc = service_on("app", &[app.port()]);
    let down = format!("http://127.0.0.1:{}/", free_port());
    let hangs = format!("http://127.0.0.1:{}/", hanging.port);
    let to_down = ing(
        "todown",
        &[("mirror-target", down.as_str())],
        "down.example",
        &[path("/", "Prefix", "app")],
    );
    let to_hanging = ing(
        "tohanging",
        &[
            ("mirror-target", hangs.as_str()),
            ("proxy-read-timeout", "1"),
        ],
        "hang.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &to_down, &to_hanging]);
    for _ in 0..3 {
        assert_eq!(rauta.who("down.example", "/"), "app", "{}", rauta.log());
        assert_eq!(rauta.who("hang.example", "/"), "app");
    }
    // A POST, with its body, too.
    let r = request(rauta.addr(), "POST", "hang.example", "/", &[], b"payload").expect("answer");
    assert_eq!(r.header("x-backend"), Some("app"));
    eventually("the copies to the closed port fail", || {
        mirrored(&rauta, "todown", "failed") == 3.0
    });
    eventually("the copies to the hanging mirror time out", || {
        mirrored(&rauta, "tohanging", "failed") == 4.0
    });
    assert_eq!(mirrored(&rauta, "tohanging", "sent"), 0.0);
}

#[test]
fn past_the_shards_cap_copies_are_dropped_not_the_requests() {
    let app = Backend::start("app");
    let hanging = ScriptedBackend::start(Duration::from_secs(60), None);
    let svc = service_on("app", &[app.port()]);
    let hangs = format!("http://127.0.0.1:{}/", hanging.port);
    let capped = ing(
        "capped",
        &[
            ("mirror-target", hangs.as_str()),
            ("proxy-read-timeout", "30"),
        ],
        "cap.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = crate::annotated::serve_docs_with(
        &[&svc, &capped],
        &["--shards", "1", "--mirror-max-in-flight", "1"],
    );
    for _ in 0..3 {
        assert_eq!(rauta.who("cap.example", "/"), "app", "{}", rauta.log());
    }
    // The first copy holds the one place while its mirror hangs.
    eventually("two copies are dropped", || {
        mirrored(&rauta, "capped", "dropped") == 2.0
    });
    assert_eq!(mirrored(&rauta, "capped", "sent"), 0.0);
}

#[test]
fn a_post_body_reaches_the_mirror_intact_and_the_bound_skips_larger_ones() {
    let app = Backend::start("app");
    let shadow = Backend::start("shadow");
    let svc = service_on("app", &[app.port()]);
    let target = format!("http://127.0.0.1:{}$request_uri", shadow.port());
    let with_body = ing(
        "withbody",
        &[("mirror-target", target.as_str())],
        "body.example",
        &[path("/", "Prefix", "app")],
    );
    let no_body = ing(
        "nobody",
        &[
            ("mirror-target", target.as_str()),
            ("mirror-request-body", "off"),
        ],
        "nobody.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs_with_bound(&[&svc, &with_body, &no_body], "100000");

    let body = pattern(60_000);
    let r = request(rauta.addr(), "POST", "body.example", "/upload", &[], &body).expect("answer");
    assert_eq!(r.status, 200, "{}", rauta.log());
    assert_eq!(r.header("x-backend"), Some("app"));
    let primary = app.last_request().expect("primary");
    assert_eq!(
        (primary.body_len, primary.body_xxh3),
        (body.len(), xxh3(&body))
    );
    let copy = last_for(&shadow, "/upload");
    assert_eq!(copy.method, "POST");
    assert_eq!(copy.path, "/upload");
    assert_eq!((copy.body_len, copy.body_xxh3), (body.len(), xxh3(&body)));

    // A chunked body is copied chunked.
    let r = request(
        rauta.addr(),
        "POST",
        "body.example",
        "/chunks",
        &[("Transfer-Encoding", "chunked")],
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .expect("answer");
    assert_eq!(r.header("x-backend"), Some("app"));
    let copy = last_for(&shadow, "/chunks");
    assert_eq!((copy.path.as_str(), copy.body_len), ("/chunks", 11));
    assert_eq!(copy.body_xxh3, xxh3(b"hello world"));

    // Over --mirror-max-body-bytes: the primary gets it, the copy is skipped.
    let big = pattern(150_000);
    let r = request(rauta.addr(), "POST", "body.example", "/big", &[], &big).expect("answer");
    assert_eq!(r.header("x-backend"), Some("app"));
    assert_eq!(app.last_request().map(|p| p.body_len), Some(big.len()));
    eventually("the big copy is skipped", || {
        mirrored(&rauta, "withbody", "skipped") == 1.0
    });

    // mirror-request-body: off sends the head alone, without framing.
    let r = request(rauta.addr(), "POST", "nobody.example", "/form", &[], b"a=1").expect("answer");
    assert_eq!(r.header("x-backend"), Some("app"));
    assert_eq!(app.last_request().map(|p| p.body_len), Some(3));
    let copy = last_for(&shadow, "/form");
    assert_eq!((copy.method.as_str(), copy.body_len), ("POST", 0));
    assert_eq!(copy.header("content-length"), None);
    assert_eq!(shadow.requests(), 3, "nothing for the skipped copy");
}

fn serve_docs_with_bound(docs: &[&str], bound: &str) -> (ManifestDir, Rauta) {
    crate::annotated::serve_docs_with(docs, &["--shards", "1", "--mirror-max-body-bytes", bound])
}

#[test]
fn an_invalid_mirror_annotation_is_reported_and_the_ingress_still_served() {
    let app = Backend::start("app");
    let svc = service_on("app", &[app.port()]);
    let bad = ing(
        "badmirror",
        &[("mirror-target", "http://shadow.web$uri")],
        "bad.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &bad]);
    assert_reported(&rauta, "badmirror", "mirror-target");
    assert_eq!(
        rauta.who("bad.example", "/"),
        "app",
        "the Ingress is served"
    );
}

/// Gateway infra/gw's one listener.
const LISTENER: &str =
    "{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}";

#[test]
fn an_httproute_request_mirror_copies_the_share_it_names() {
    let app = Backend::start("app");
    let all = Backend::start("all");
    let none = Backend::start("none");
    let half = Backend::start("half");
    let route = "
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mirrored, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  hostnames: [gw.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: all, port: 80}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: none, port: 80}, percent: 0}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: half, port: 80}, fraction: {numerator: 1, denominator: 2}}}
    backendRefs: [{name: app, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /elsewhere}}]
    filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: missing, port: 80}}}
    backendRefs: [{name: app, port: 80}]
";
    let mut docs = vec![rauta_gateway("infra", "gw", &[LISTENER])];
    for b in [&app, &all, &none, &half] {
        docs.push(backend_for("infra", b.name(), "http", &[b]));
    }
    docs.push(route.to_string());
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&refs));
    let rauta = start(&dir, &["--shards", "1"]);

    let n = 200;
    for i in 0..n {
        let r = request(
            rauta.addr(),
            "GET",
            "gw.example",
            &format!("/r/{i}"),
            &[],
            b"",
        )
        .expect("answer");
        assert_eq!(r.status, 200, "{}", rauta.log());
        assert!(r.text().contains("backend=app"), "the primary answers");
    }
    eventually("every request is copied to `all`", || all.requests() == n);
    let copy = all.last_request().expect("copy");
    assert_eq!(copy.header("host"), Some("gw.example"), "the client's Host");
    assert!(copy.path.starts_with("/r/"), "{}", copy.path);
    let halves = half.requests();
    assert!(
        (60..=140).contains(&halves),
        "about half of {n} are copied to `half`: {halves}"
    );
    assert_eq!(none.requests(), 0, "percent 0 copies nothing");
    let log = rauta.log();
    assert!(
        log.contains("HTTPRoute infra/mirrored") && log.contains("requestMirror.backendRef"),
        "the rule with a missing mirror backend is reported:\n{log}"
    );
    // That rule is left out: /elsewhere falls to the first rule.
    assert_eq!(all.requests(), n);
    let r = request(rauta.addr(), "GET", "gw.example", "/elsewhere", &[], b"").expect("answer");
    assert_eq!(r.status, 200);
    eventually("/elsewhere is mirrored by the first rule", || {
        all.requests() == n + 1
    });
}

#[test]
fn an_http2_clients_post_is_mirrored_with_its_body() {
    rauta_testkit::require!(rauta_testkit::Need::tool("curl"));
    let app = Backend::start("app");
    let shadow = Backend::start("shadow");
    let svc = service_on("app", &[app.port()]);
    let target = format!("http://127.0.0.1:{}$request_uri", shadow.port());
    let mirrored = ing(
        "h2mirror",
        &[("mirror-target", target.as_str())],
        "h2.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &mirrored]);
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--http2-prior-knowledge"])
        .args(["-H", "Host: h2.example", "--data-binary", "hello over h2"])
        .arg(format!("http://{}/h2/post?q=1", rauta.addr()))
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backend=app"));
    let copy = last_for(&shadow, "/h2/post?q=1");
    assert_eq!(copy.method, "POST");
    assert_eq!(copy.body_len, 13);
    assert_eq!(copy.body_xxh3, xxh3(b"hello over h2"));
}
