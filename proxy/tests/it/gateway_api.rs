//! Gateway API through the real proxy: Gateways and HTTPRoutes from
//! manifests, with the behaviour the upstream conformance tests check
//! (`conformance/tests/httproute-*.go` of kubernetes-sigs/gateway-api),
//! ported as tables. Each route has a host of its own so that all of them
//! share one rauta; the Gateway's listeners take every host.

use crate::common::start;
use rauta_testkit::client::request;
use rauta_testkit::manifests::join;
use rauta_testkit::tls::{client_config, first_der, Ca, TlsConn};
use rauta_testkit::{
    backend_for, free_port, ingress, manifests::path, manifests::rule, rauta_class, tls_secret,
    Backend, ManifestDir, Rauta, Response,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;

const NS: &str = "infra";

/// GatewayClass `rauta` and Gateway infra/gw: HTTP on 80 and HTTPS on 443
/// with the Secret infra/gw-cert (for `*.example.com`).
const GATEWAY: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: rauta
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
  - name: https
    port: 443
    protocol: HTTPS
    hostname: '*.example.com'
    tls: {certificateRefs: [{name: gw-cert}]}
    allowedRoutes: {namespaces: {from: All}}
";

/// An HTTPRoute infra/`name` on host `host`, attached to both listeners
/// (or to `section` only), with `rules` (YAML, indented two spaces).
fn route(name: &str, host: &str, section: Option<&str>, rules: &str) -> String {
    let section = section.map_or(String::new(), |s| format!(", sectionName: {s}"));
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
         metadata: {{name: {name}, namespace: {NS}}}\n\
         spec:\n  parentRefs: [{{name: gw{section}}}]\n  hostnames: [{host}]\n  rules:\n{rules}"
    )
}

/// rauta serving the routes of `docs` (plus the Gateway and three
/// backends v1, v2, v3 as Services infra/v1.. on port 8080).
struct Setup {
    rauta: Rauta,
    https: SocketAddr,
    /// The listener certificate (DER).
    cert: Vec<u8>,
    _dir: ManifestDir,
    _backends: Vec<Backend>,
}

fn setup(docs: &[String]) -> Setup {
    let backends: Vec<Backend> = ["v1", "v2", "v3"]
        .iter()
        .map(|n| Backend::start(n))
        .collect();
    let ca = Ca::new();
    let leaf = ca.issue(&["*.example.com"], 2099);
    let mut all: Vec<String> = vec![
        GATEWAY.to_string(),
        tls_secret(NS, "gw-cert", &leaf.cert_pem, &leaf.key_pem),
    ];
    for b in &backends {
        all.push(backend_for(NS, b.name(), "http", &[b]));
    }
    all.extend(docs.iter().cloned());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&refs));
    let https = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let listen_tls = https.to_string();
    let rauta = start(&dir, &["--listen-tls", &listen_tls]);
    Setup {
        rauta,
        https,
        cert: first_der(&leaf.cert_pem),
        _dir: dir,
        _backends: backends,
    }
}

/// The backend that answered (`backend=` line), or `status N`.
fn who(resp: &Response) -> String {
    let text = resp.text();
    match text.lines().find_map(|l| l.strip_prefix("backend=")) {
        Some(b) if resp.status == 200 => b.to_string(),
        _ => format!("status {}", resp.status),
    }
}

/// One request case: method, host, target, headers -> expected answer.
type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

fn check(s: &Setup, cases: &[Case<'_>]) {
    for (method, host, target, headers, want) in cases {
        let resp = request(s.rauta.addr(), method, host, target, headers, b"").expect("request");
        assert_eq!(who(&resp), *want, "{method} {host}{target} {headers:?}");
    }
}

fn conformance_routes() -> Vec<String> {
    vec![
        // httproute-matching.yaml
        route(
            "matching",
            "matching.example.com",
            None,
            "  - matches: [{path: {type: PathPrefix, value: /}}, {headers: [{name: version, value: one}]}]
    backendRefs: [{name: v1, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: two}]}]
    backendRefs: [{name: v2, port: 80}]
",
        ),
        // httproute-method-matching.yaml
        route(
            "method-matching",
            "method.example.com",
            None,
            "  - matches: [{method: POST}]
    backendRefs: [{name: v1, port: 80}]
  - matches: [{method: GET}]
    backendRefs: [{name: v2, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /path1}, method: GET}]
    backendRefs: [{name: v1, port: 80}]
  - matches: [{headers: [{name: version, value: one}], method: PUT}]
    backendRefs: [{name: v2, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /path2}, headers: [{name: version, value: two}], method: POST}]
    backendRefs: [{name: v3, port: 80}]
  - matches:
    - {path: {type: PathPrefix, value: /path3}, method: PATCH}
    - {path: {type: PathPrefix, value: /path4}, headers: [{name: version, value: three}], method: DELETE}
    backendRefs: [{name: v1, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /path5}}]
    backendRefs: [{name: v1, port: 80}]
  - matches: [{method: PATCH}]
    backendRefs: [{name: v2, port: 80}]
  - matches: [{headers: [{name: version, value: four}]}]
    backendRefs: [{name: v3, port: 80}]
",
        ),
        // httproute-query-param-matching.yaml
        route(
            "query-param-matching",
            "query.example.com",
            None,
            "  - matches: [{queryParams: [{name: animal, value: whale}]}]
    backendRefs: [{name: v1, port: 80}]
  - matches: [{queryParams: [{name: animal, value: dolphin}]}]
    backendRefs: [{name: v2, port: 80}]
  - matches:
    - queryParams: [{name: animal, value: dolphin}, {name: color, value: blue}]
    - queryParams: [{name: ANIMAL, value: Whale}]
    backendRefs: [{name: v3, port: 80}]
",
        ),
        // httproute-header-matching.yaml (Exact and RegularExpression)
        route(
            "header-matching",
            "header.example.com",
            None,
            "  - matches: [{headers: [{name: version, value: one}]}]
    backendRefs: [{name: v1, port: 80}]
  - matches: [{headers: [{name: version, value: two}]}]
    backendRefs: [{name: v2, port: 80}]
  - matches: [{headers: [{name: version, value: two}, {name: color, value: orange}]}]
    backendRefs: [{name: v1, port: 80}]
  - matches: [{headers: [{name: color, type: RegularExpression, value: 'bl.e|gr[a-z]+n'}]}]
    backendRefs: [{name: v3, port: 80}]
",
        ),
        // httproute-exact-path-matching.yaml and a RegularExpression path.
        route(
            "exact-path",
            "exact.example.com",
            None,
            "  - matches: [{path: {type: Exact, value: /one}}]
    backendRefs: [{name: v1, port: 80}]
  - matches: [{path: {type: Exact, value: /two}}]
    backendRefs: [{name: v2, port: 80}]
  - matches: [{path: {type: RegularExpression, value: '/items/[0-9]+'}}]
    backendRefs: [{name: v3, port: 80}]
",
        ),
    ]
}

#[test]
fn httproute_matching_as_the_conformance_tests_check() {
    let s = setup(&conformance_routes());
    let none: &[(&str, &str)] = &[];
    let m = "matching.example.com";
    let me = "method.example.com";
    let q = "query.example.com";
    let h = "header.example.com";
    let e = "exact.example.com";
    check(
        &s,
        &[
            // httproute-matching.go
            ("GET", m, "/", none, "v1"),
            ("GET", m, "/example", none, "v1"),
            ("GET", m, "/", &[("Version", "one")], "v1"),
            ("GET", m, "/v2", none, "v2"),
            ("GET", m, "/v2/example", none, "v2"),
            ("GET", m, "/", &[("Version", "two")], "v2"),
            ("GET", m, "/v2/", none, "v2"),
            ("GET", m, "/v2example", none, "v1"),
            ("GET", m, "/foo/v2/example", none, "v1"),
            // httproute-method-matching.go
            ("POST", me, "/", none, "v1"),
            ("GET", me, "/", none, "v2"),
            ("HEAD", me, "/", none, "status 404"),
            ("GET", me, "/path1", none, "v1"),
            ("PUT", me, "/", &[("version", "one")], "v2"),
            ("POST", me, "/path2", &[("version", "two")], "v3"),
            ("PATCH", me, "/path3", none, "v1"),
            ("DELETE", me, "/path4", &[("version", "three")], "v1"),
            ("PUT", me, "/", none, "status 404"),
            ("DELETE", me, "/path4", none, "status 404"),
            ("PATCH", me, "/path5", none, "v1"),
            ("PATCH", me, "/", &[("version", "four")], "v2"),
            // httproute-query-param-matching.go
            ("GET", q, "/?animal=whale", none, "v1"),
            ("GET", q, "/?animal=dolphin", none, "v2"),
            ("GET", q, "/?animal=dolphin&color=blue", none, "v3"),
            ("GET", q, "/?ANIMAL=Whale", none, "v3"),
            ("GET", q, "/?animal=whale&otherparam=irrelevant", none, "v1"),
            ("GET", q, "/?animal=dolphin&color=yellow", none, "v2"),
            ("GET", q, "/?color=blue", none, "status 404"),
            ("GET", q, "/?animal=dog", none, "status 404"),
            ("GET", q, "/?animal=whaledolphin", none, "status 404"),
            ("GET", q, "/", none, "status 404"),
            // httproute-header-matching.go
            ("GET", h, "/", &[("Version", "one")], "v1"),
            ("GET", h, "/", &[("Version", "two")], "v2"),
            (
                "GET",
                h,
                "/",
                &[("Version", "two"), ("Color", "orange")],
                "v1",
            ),
            ("GET", h, "/", &[("Color", "blue")], "v3"),
            ("GET", h, "/", &[("Color", "green")], "v3"),
            ("GET", h, "/", &[("Color", "red")], "status 404"),
            ("GET", h, "/", &[("Version", "three")], "status 404"),
            // httproute-exact-path-matching.go, and regex paths match whole.
            ("GET", e, "/one", none, "v1"),
            ("GET", e, "/two", none, "v2"),
            ("GET", e, "/", none, "status 404"),
            ("GET", e, "/one/example", none, "status 404"),
            ("GET", e, "/items/42", none, "v3"),
            ("GET", e, "/items/42/x", none, "status 404"),
            ("GET", e, "/items/abc", none, "status 404"),
        ],
    );
}

#[test]
fn weights_split_traffic_and_invalid_backends_answer_500() {
    let routes = vec![
        // httproute-weight.yaml: 70/30/0.
        route(
            "weight",
            "weight.example.com",
            None,
            "  - backendRefs:
    - {name: v1, port: 80, weight: 70}
    - {name: v2, port: 80, weight: 30}
    - {name: v3, port: 80, weight: 0}
",
        ),
        // httproute-invalid-*: a missing Service, a cross-namespace one
        // without a grant, an unknown kind: 500. Half valid: half 500.
        route(
            "invalid",
            "invalid.example.com",
            None,
            "  - matches: [{path: {value: /missing}}]
    backendRefs: [{name: nonexistent, port: 80}]
  - matches: [{path: {value: /foreign}}]
    backendRefs: [{name: v1, namespace: elsewhere, port: 80}]
  - matches: [{path: {value: /kind}}]
    backendRefs: [{group: example.com, kind: Bucket, name: v1}]
  - matches: [{path: {value: /none}}]
  - matches: [{path: {value: /half}}]
    backendRefs: [{name: v1, port: 80}, {name: nonexistent, port: 80}]
",
        ),
    ];
    let s = setup(&routes);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..400 {
        let resp =
            request(s.rauta.addr(), "GET", "weight.example.com", "/", &[], b"").expect("request");
        *seen.entry(who(&resp)).or_default() += 1;
    }
    let v1 = seen.get("v1").copied().unwrap_or(0);
    let v2 = seen.get("v2").copied().unwrap_or(0);
    assert_eq!(v1 + v2, 400, "only v1 and v2 answer: {seen:?}");
    // 280 expected for v1; the conformance test allows a wide margin.
    assert!((240..=320).contains(&v1), "70/30 split: {seen:?}");
    let none: &[(&str, &str)] = &[];
    let i = "invalid.example.com";
    check(
        &s,
        &[
            ("GET", i, "/missing", none, "status 500"),
            ("GET", i, "/foreign", none, "status 500"),
            ("GET", i, "/kind", none, "status 500"),
            ("GET", i, "/none", none, "status 500"),
        ],
    );
    let mut half: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..100 {
        let resp = request(s.rauta.addr(), "GET", i, "/half", &[], b"").expect("request");
        *half.entry(who(&resp)).or_default() += 1;
    }
    assert_eq!(
        half.keys().cloned().collect::<Vec<_>>(),
        ["status 500", "v1"],
        "{half:?}"
    );
}

#[test]
fn filters_modify_headers_redirect_and_rewrite() {
    let routes = vec![
        route(
            "headers",
            "headers.example.com",
            None,
            "  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Header-Set, value: set-overwrites-values}]
        add: [{name: X-Header-Add, value: add-appends-values}]
        remove: [X-Header-Remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: X-Response-Set, value: set}]
        add: [{name: X-Response-Add, value: added}]
        remove: [X-Backend-Name]
    backendRefs: [{name: v1, port: 80}]
",
        ),
        route(
            "redirect",
            "redirect.example.com",
            None,
            "  - matches: [{path: {value: /scheme}}]
    filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]
  - matches: [{path: {value: /host-and-status}}]
    filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org, statusCode: 301}}]
  - matches: [{path: {value: /full}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /full-path-replaced}}}]
  - matches: [{path: {value: /prefix}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /replaced}}}]
  - matches: [{path: {value: /port}}]
    filters: [{type: RequestRedirect, requestRedirect: {port: 8083}}]
",
        ),
        route(
            "rewrite",
            "rewrite.example.com",
            None,
            "  - matches: [{path: {value: /prefix/one}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}}]
    backendRefs: [{name: v1, port: 80}]
  - matches: [{path: {value: /strip-prefix}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]
    backendRefs: [{name: v1, port: 80}]
  - matches: [{path: {value: /full}}]
    filters: [{type: URLRewrite, urlRewrite: {hostname: internal.example.com, path: {type: ReplaceFullPath, replaceFullPath: /one}}}]
    backendRefs: [{name: v1, port: 80}]
",
        ),
    ];
    let s = setup(&routes);
    let addr = s.rauta.addr();
    let port = addr.port();

    let resp = request(
        addr,
        "GET",
        "headers.example.com",
        "/",
        &[
            ("X-Header-Set", "some-other-value"),
            ("X-Header-Add", "existing"),
            ("X-Header-Remove", "gone"),
        ],
        b"",
    )
    .expect("request");
    assert_eq!(resp.status, 200);
    let text = resp.text();
    let backend_saw = |name: &str| -> Vec<String> {
        let prefix = format!("h:{name}=");
        text.lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(backend_saw("x-header-set"), ["set-overwrites-values"]);
    assert_eq!(
        backend_saw("x-header-add"),
        ["existing", "add-appends-values"]
    );
    assert!(backend_saw("x-header-remove").is_empty());
    assert_eq!(resp.header("x-response-set"), Some("set"));
    assert_eq!(resp.header("x-response-add"), Some("added"));
    assert_eq!(resp.header("x-backend-name"), None);

    // httproute-request-redirect-*: Location and status.
    let redirects: &[(&str, u16, String)] = &[
        (
            "/scheme",
            302,
            "https://redirect.example.com/scheme".to_string(),
        ),
        (
            "/host-and-status",
            301,
            format!("http://example.org:{port}/host-and-status"),
        ),
        (
            "/full/x?q=1",
            302,
            format!("http://redirect.example.com:{port}/full-path-replaced?q=1"),
        ),
        (
            "/prefix/one/two",
            302,
            format!("http://redirect.example.com:{port}/replaced/one/two"),
        ),
        (
            "/prefix",
            302,
            format!("http://redirect.example.com:{port}/replaced"),
        ),
        (
            "/port",
            302,
            "http://redirect.example.com:8083/port".to_string(),
        ),
    ];
    for (target, code, location) in redirects {
        let resp = request(addr, "GET", "redirect.example.com", target, &[], b"").expect("request");
        assert_eq!(resp.status, *code, "{target}");
        assert_eq!(resp.header("location"), Some(location.as_str()), "{target}");
    }

    // httproute-rewrite-path / -host: what the backend received.
    let rewrites: &[(&str, &str, &str)] = &[
        ("/prefix/one/two", "/one/two", "rewrite.example.com"),
        ("/prefix/one", "/one", "rewrite.example.com"),
        ("/strip-prefix/three", "/three", "rewrite.example.com"),
        ("/strip-prefix", "/", "rewrite.example.com"),
        ("/full/x?q=1", "/one?q=1", "internal.example.com"),
    ];
    for (target, path, host) in rewrites {
        let resp = request(addr, "GET", "rewrite.example.com", target, &[], b"").expect("request");
        let text = resp.text();
        assert!(
            text.contains(&format!("\npath={path}\n")),
            "{target}: {text}"
        );
        assert!(text.contains(&format!("h:host={host}")), "{target}: {text}");
    }
}

#[test]
fn listeners_scope_routes_and_certificates_and_ingresses_keep_their_hosts() {
    let ing = ingress(
        NS,
        "legacy",
        Some("rauta"),
        &[],
        &rule(Some("legacy.example.com"), &[path("/", "Prefix", "v1")]),
    );
    let routes = vec![
        rauta_class(),
        ing,
        // Only on the HTTPS listener.
        route(
            "secure",
            "secure.example.com",
            Some("https"),
            "  - backendRefs: [{name: v2, port: 80}]\n",
        ),
        // The same host and path as the Ingress: the Ingress keeps it.
        route(
            "takeover",
            "legacy.example.com",
            None,
            "  - backendRefs: [{name: v3, port: 80}]\n  - matches: [{path: {value: /new}}]\n    backendRefs: [{name: v3, port: 80}]\n",
        ),
        // A Gateway API wildcard takes any number of labels.
        route(
            "wildcard",
            "'*.deep.example.com'",
            None,
            "  - backendRefs: [{name: v3, port: 80}]\n",
        ),
        // A bad rule is left out; the route's good rule is served.
        route(
            "partly-bad",
            "bad.example.com",
            None,
            "  - matches: [{path: {type: RegularExpression, value: '/(unclosed'}}]\n    backendRefs: [{name: v1, port: 80}]\n  - matches: [{path: {value: /good}}]\n    backendRefs: [{name: v2, port: 80}]\n",
        ),
    ];
    let s = setup(&routes);
    let none: &[(&str, &str)] = &[];
    check(
        &s,
        &[
            ("GET", "secure.example.com", "/", none, "status 404"),
            ("GET", "legacy.example.com", "/", none, "v1"),
            ("GET", "legacy.example.com", "/new", none, "v3"),
            ("GET", "bad.example.com", "/good", none, "v2"),
            ("GET", "a.deep.example.com", "/", none, "v3"),
            ("GET", "a.b.deep.example.com", "/x", none, "v3"),
            ("GET", "deep.example.com", "/", none, "status 404"),
            ("GET", "bad.example.com", "/(unclosed", none, "status 404"),
        ],
    );
    // Over TLS: the listener's certificate, and the HTTPS-only route.
    let config = client_config(false);
    let mut conn = TlsConn::open(s.https, Some("secure.example.com"), &config).expect("handshake");
    assert_eq!(conn.server_cert(), s.cert, "the listener's certificate");
    let resp = conn.get("secure.example.com", "/").expect("https get");
    assert_eq!(who(&resp), "v2");
    let log = s.rauta.log();
    assert!(
        log.contains("already served by Ingress infra/legacy"),
        "{log}"
    );
    assert!(log.contains("HTTPRoute infra/partly-bad"), "{log}");
}

/// What one CORS response header must be: one of these values (spaces
/// ignored, as the conformance test does), or absent.
enum Want {
    OneOf(&'static [&'static str]),
    Absent,
}

/// A CORS case: name, method, target, request headers -> who answered
/// (`status 204` for rauta's preflight answer, `v1` when proxied) and the
/// response headers.
type CorsCase = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static [(&'static str, Want)],
);

const ACAO: &str = "access-control-allow-origin";
const ACAM: &str = "access-control-allow-methods";
const ACAH: &str = "access-control-allow-headers";
const ACEH: &str = "access-control-expose-headers";
const ACAC: &str = "access-control-allow-credentials";
const MAX_AGE: &str = "access-control-max-age";

/// httproute-cors.go's cases (its four routes, same order), then rauta's
/// own choices: default ports, what a preflight did not ask for, an
/// OPTIONS that is not a preflight, and the 204 for a refused origin.
const CORS_CASES: &[CorsCase] = &[
    (
        "preflight from an exact matching origin",
        "OPTIONS",
        "/cors-1",
        &[
            ("Origin", "https://www.foo.com"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "x-header-1, x-header-2"),
        ],
        "status 204",
        &[
            (ACAO, Want::OneOf(&["https://www.foo.com"])),
            (ACAM, Want::OneOf(&["GET,OPTIONS", "OPTIONS,GET"])),
            (
                ACAH,
                Want::OneOf(&["x-header-1,x-header-2", "x-header-2,x-header-1"]),
            ),
            (
                ACEH,
                Want::OneOf(&["x-header-3,x-header-4", "x-header-4,x-header-3"]),
            ),
            (MAX_AGE, Want::OneOf(&["3600"])),
            (ACAC, Want::OneOf(&["true"])),
        ],
    ),
    (
        "preflight from a wildcard matching origin",
        "OPTIONS",
        "/cors-1",
        &[
            ("Origin", "https://www.bar.com"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "x-header-1, x-header-2"),
        ],
        "status 204",
        &[
            (ACAO, Want::OneOf(&["https://www.bar.com"])),
            (ACAM, Want::OneOf(&["GET,OPTIONS", "OPTIONS,GET"])),
            (
                ACAH,
                Want::OneOf(&["x-header-1,x-header-2", "x-header-2,x-header-1"]),
            ),
            (
                ACEH,
                Want::OneOf(&["x-header-3,x-header-4", "x-header-4,x-header-3"]),
            ),
            (MAX_AGE, Want::OneOf(&["3600"])),
            (ACAC, Want::OneOf(&["true"])),
        ],
    ),
    (
        "preflight from a wildcard matching any number of labels left of *",
        "OPTIONS",
        "/cors-1",
        &[
            ("Origin", "https://xpto.www.bar.com"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "x-header-1, x-header-2"),
        ],
        "status 204",
        &[
            (ACAO, Want::OneOf(&["https://xpto.www.bar.com"])),
            (ACAM, Want::OneOf(&["GET,OPTIONS", "OPTIONS,GET"])),
            (
                ACAH,
                Want::OneOf(&["x-header-1,x-header-2", "x-header-2,x-header-1"]),
            ),
            (
                ACEH,
                Want::OneOf(&["x-header-3,x-header-4", "x-header-4,x-header-3"]),
            ),
            (MAX_AGE, Want::OneOf(&["3600"])),
            (ACAC, Want::OneOf(&["true"])),
        ],
    ),
    (
        "preflight from a non-matching origin",
        "OPTIONS",
        "/cors-1",
        &[
            ("Origin", "https://foobar.com"),
            ("Access-Control-Request-Method", "GET"),
        ],
        "status 204",
        &[
            (ACAO, Want::Absent),
            (ACAM, Want::Absent),
            (ACAC, Want::Absent),
        ],
    ),
    (
        "simple request from an exact matching origin",
        "GET",
        "/cors-1",
        &[
            ("Origin", "https://www.foo.com"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "x-header-1, x-header-2"),
        ],
        "v1",
        &[
            (ACAO, Want::OneOf(&["https://www.foo.com"])),
            (ACAC, Want::OneOf(&["true"])),
            (ACEH, Want::OneOf(&["x-header-3,x-header-4"])),
            (ACAM, Want::Absent),
            (MAX_AGE, Want::Absent),
        ],
    ),
    (
        "simple request from a wildcard matching origin",
        "GET",
        "/cors-1",
        &[
            ("Origin", "https://www.bar.com"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "x-header-1, x-header-2"),
        ],
        "v1",
        &[(ACAO, Want::OneOf(&["https://www.bar.com"]))],
    ),
    (
        "simple request from a non-matching origin",
        "GET",
        "/cors-1",
        &[
            ("Origin", "https://foobar.com"),
            ("Access-Control-Request-Method", "GET"),
        ],
        "v1",
        &[
            (ACAO, Want::Absent),
            (ACAC, Want::Absent),
            (ACEH, Want::Absent),
        ],
    ),
    (
        "preflight with POST allowed by allowMethods *, without credentials",
        "OPTIONS",
        "/cors-2",
        &[
            ("Origin", "https://www.foo.com"),
            ("Access-Control-Request-Method", "POST"),
        ],
        "status 204",
        &[
            (ACAM, Want::OneOf(&["POST", "*"])),
            (ACAO, Want::OneOf(&["https://www.foo.com"])),
            (ACAC, Want::Absent),
            (MAX_AGE, Want::OneOf(&["5"])),
            (ACAH, Want::Absent),
        ],
    ),
    (
        "preflight from a wildcard origin",
        "OPTIONS",
        "/cors-wildcard-origin",
        &[
            ("Origin", "https://foobar.com"),
            ("Access-Control-Request-Method", "PUT"),
        ],
        "status 204",
        &[
            (ACAO, Want::OneOf(&["https://foobar.com", "*"])),
            (ACAM, Want::OneOf(&["PUT"])),
            (ACAC, Want::Absent),
        ],
    ),
    (
        "preflight from a wildcard origin containing a port",
        "OPTIONS",
        "/cors-wildcard-origin",
        &[
            ("Origin", "https://foobar.com:12345"),
            ("Access-Control-Request-Method", "PUT"),
        ],
        "status 204",
        &[
            (ACAO, Want::OneOf(&["https://foobar.com:12345", "*"])),
            (ACAM, Want::OneOf(&["PUT"])),
            (ACAC, Want::Absent),
        ],
    ),
    (
        "request from a wildcard origin containing a port",
        "PUT",
        "/cors-wildcard-origin",
        &[("Origin", "https://foobar.com:12345")],
        "v1",
        &[(ACAO, Want::OneOf(&["https://foobar.com:12345", "*"]))],
    ),
    (
        "simple request from a wildcard origin",
        "PUT",
        "/cors-wildcard-origin",
        &[("Origin", "https://foobar.com")],
        "v1",
        &[
            (ACAO, Want::OneOf(&["https://foobar.com", "*"])),
            (ACAC, Want::Absent),
        ],
    ),
    (
        "preflight with wildcards and credentials echoes origin, method and headers",
        "OPTIONS",
        "/cors-wildcard-methods-headers",
        &[
            ("Origin", "https://other.foo.com"),
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "x-header-1, x-header-2"),
        ],
        "status 204",
        &[
            (ACAO, Want::OneOf(&["https://other.foo.com"])),
            (ACAM, Want::OneOf(&["PUT"])),
            (
                ACAH,
                Want::OneOf(&["x-header-1,x-header-2", "x-header-2,x-header-1"]),
            ),
            (ACAC, Want::OneOf(&["true"])),
        ],
    ),
    (
        "preflight with wildcards without credentials",
        "OPTIONS",
        "/cors-wildcard-methods-headers-unauth",
        &[
            ("Origin", "https://other.foo.com"),
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "x-header-1, x-header-2"),
        ],
        "status 204",
        &[
            (ACAO, Want::OneOf(&["https://other.foo.com", "*"])),
            (ACAM, Want::OneOf(&["PUT", "*"])),
            (
                ACAH,
                Want::OneOf(&["x-header-1,x-header-2", "x-header-2,x-header-1", "*"]),
            ),
            (ACAC, Want::Absent),
        ],
    ),
    (
        "request to a wildcard origin with credentials",
        "GET",
        "/cors-wildcard-methods-headers",
        &[("Origin", "https://other.foo.com")],
        "v1",
        &[
            (ACAO, Want::OneOf(&["https://other.foo.com"])),
            (ACAC, Want::OneOf(&["true"])),
        ],
    ),
    (
        "request to a wildcard origin without credentials",
        "GET",
        "/cors-wildcard-methods-headers-unauth",
        &[("Origin", "https://other.foo.com")],
        "v1",
        &[
            (ACAO, Want::OneOf(&["https://other.foo.com", "*"])),
            (ACAC, Want::Absent),
        ],
    ),
    // rauta's own.
    (
        "an origin with the scheme's default port matches one without",
        "OPTIONS",
        "/cors-1",
        &[
            ("Origin", "https://www.foo.com:443"),
            ("Access-Control-Request-Method", "GET"),
        ],
        "status 204",
        &[
            (ACAO, Want::OneOf(&["https://www.foo.com:443"])),
            (ACAH, Want::Absent),
        ],
    ),
    (
        "another port does not",
        "GET",
        "/cors-1",
        &[("Origin", "https://www.foo.com:8443")],
        "v1",
        &[(ACAO, Want::Absent)],
    ),
    (
        "a preflight asking for no headers gets no Allow-Headers",
        "OPTIONS",
        "/cors-wildcard-methods-headers",
        &[
            ("Origin", "https://other.foo.com"),
            ("Access-Control-Request-Method", "DELETE"),
        ],
        "status 204",
        &[
            (ACAM, Want::OneOf(&["DELETE"])),
            (ACAH, Want::Absent),
            (MAX_AGE, Want::OneOf(&["5"])),
        ],
    ),
    (
        "an OPTIONS without Access-Control-Request-Method is no preflight: proxied",
        "OPTIONS",
        "/cors-1",
        &[("Origin", "https://www.foo.com")],
        "v1",
        &[
            (ACAO, Want::OneOf(&["https://www.foo.com"])),
            (ACAM, Want::Absent),
        ],
    ),
];

#[test]
fn cors_filter_answers_as_the_conformance_test_checks() {
    let cors = |name: &str, rules: &str| route(name, "cors.example.com", None, rules);
    let routes = vec![
        // httproute-cors.yaml
        cors(
            "cors-multiple-origins-methods-headers",
            "  - matches: [{path: {type: PathPrefix, value: /cors-1}}]
    filters:
    - type: CORS
      cors:
        allowOrigins: ['https://www.foo.com', 'https://*.bar.com']
        allowMethods: [GET, OPTIONS]
        allowHeaders: [x-header-1, x-header-2]
        exposeHeaders: [x-header-3, x-header-4]
        allowCredentials: true
        maxAge: 3600
    backendRefs: [{name: v1, port: 80}]
",
        ),
        cors(
            "cors-wildcard-methods",
            "  - matches: [{path: {type: PathPrefix, value: /cors-2}}]
    filters: [{type: CORS, cors: {allowOrigins: ['https://www.foo.com'], allowMethods: ['*']}}]
    backendRefs: [{name: v1, port: 80}]
",
        ),
        cors(
            "cors-wildcard-origin",
            "  - matches: [{path: {type: PathPrefix, value: /cors-wildcard-origin}}]
    filters: [{type: CORS, cors: {allowOrigins: ['*'], allowMethods: [PUT], allowCredentials: false}}]
    backendRefs: [{name: v1, port: 80}]
",
        ),
        cors(
            "cors-wildcard-methods-headers",
            "  - matches: [{path: {type: PathPrefix, value: /cors-wildcard-methods-headers}}]
    filters: [{type: CORS, cors: {allowOrigins: ['*'], allowMethods: ['*'], allowHeaders: ['*'], allowCredentials: true}}]
    backendRefs: [{name: v1, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /cors-wildcard-methods-headers-unauth}}]
    filters: [{type: CORS, cors: {allowOrigins: ['*'], allowMethods: ['*'], allowHeaders: ['*'], allowCredentials: false}}]
    backendRefs: [{name: v1, port: 80}]
",
        ),
    ];
    let s = setup(&routes);
    let squeeze = |v: &str| v.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let mut failures = Vec::new();
    for (name, method, target, headers, answered_by, want) in CORS_CASES {
        let resp = request(
            s.rauta.addr(),
            method,
            "cors.example.com",
            target,
            headers,
            b"",
        )
        .expect("request");
        let mut wrong = Vec::new();
        if who(&resp) != *answered_by {
            wrong.push(format!("answered by {}, not {answered_by}", who(&resp)));
        }
        for (header, want) in *want {
            let got = resp.header(header).map(squeeze);
            let ok = match want {
                Want::Absent => got.is_none(),
                Want::OneOf(values) => got
                    .as_deref()
                    .is_some_and(|g| values.iter().any(|v| squeeze(v) == g)),
            };
            if !ok {
                wrong.push(format!("{header}: {got:?}"));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{name}: {}", wrong.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}\n{}", s.rauta.log());
}
