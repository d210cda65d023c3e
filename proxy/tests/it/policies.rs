//! ingress-nginx annotations through the real proxy: regex paths and
//! rewrites, redirects, IP lists, CORS, body size, upstream Host, aliases.
//! Each test writes the Ingresses a migrating user would have and checks
//! what a client and the backend see.

use crate::annotated::{self, ing, yaml};
use crate::common::service;
use rauta_testkit::client::{get, request};
use rauta_testkit::manifests::path;
use rauta_testkit::{Backend, ManifestDir, Rauta};

/// Starts rauta on the class, the backends' Services and `ingresses`.
fn serve(
    services: &[&(Backend, String)],
    ingresses: &[String],
    flags: &[&str],
) -> (ManifestDir, Rauta) {
    annotated::serve(&yaml(services), ingresses, flags)
}

#[test]
fn rewrite_target_replaces_the_whole_path_with_captures_and_turns_the_host_to_regex_mode() {
    let app = service("web", "app");
    let other = service("web", "other");
    let rewrite = ing(
        "rewrite",
        &[
            ("rewrite-target", "/$2"),
            ("x-forwarded-prefix", "/something"),
        ],
        "r.example",
        &[path("/something(/|$)(.*)", "ImplementationSpecific", "app")],
    );
    // A plain Ingress on the same host: regex mode makes its Prefix /foo a
    // case-insensitive regex anchored at the start, as in ingress-nginx.
    let plain = ing(
        "plain",
        &[],
        "r.example",
        &[path("/foo", "Prefix", "other")],
    );
    // The same plain path on another host stays an Ingress Prefix.
    let elsewhere = ing(
        "elsewhere",
        &[],
        "p.example",
        &[path("/foo", "Prefix", "other")],
    );
    let (_dir, rauta) = serve(&[&app, &other], &[rewrite, plain, elsewhere], &[]);

    let r = get(rauta.addr(), "r.example", "/something/new/page?x=1&y=2").expect("answer");
    assert_eq!(r.status, 200, "{}", rauta.log());
    let seen = app.0.last_request().expect("app was asked");
    assert_eq!(
        seen.path, "/new/page?x=1&y=2",
        "whole path replaced, query kept"
    );
    assert_eq!(seen.header("x-forwarded-prefix"), Some("/something"));

    get(rauta.addr(), "r.example", "/SOMETHING").expect("answer");
    assert_eq!(
        app.0.last_request().expect("asked").path,
        "/",
        "case-insensitive; empty capture"
    );

    // A client cannot smuggle its own X-Forwarded-Prefix past the rewrite.
    request(
        rauta.addr(),
        "GET",
        "r.example",
        "/something/x",
        &[("X-Forwarded-Prefix", "/evil")],
        b"",
    )
    .expect("answer");
    assert_eq!(
        app.0
            .last_request()
            .expect("asked")
            .header_all("x-forwarded-prefix"),
        vec!["/something"]
    );

    assert_eq!(
        rauta.who("r.example", "/foobar"),
        "other",
        "regex mode: ^/foo matches /foobar"
    );
    assert_eq!(
        rauta.who("r.example", "/FOO/x"),
        "other",
        "regex mode is case-insensitive"
    );
    assert_eq!(
        other.0.last_request().expect("asked").path,
        "/FOO/x",
        "no rewrite on the plain Ingress"
    );
    assert_eq!(
        rauta.who("p.example", "/foobar"),
        "404",
        "Ingress Prefix elsewhere"
    );
    assert_eq!(rauta.who("p.example", "/foo/x"), "other");
}

#[test]
fn regex_paths_match_longest_first_and_a_pcre_only_path_is_left_out_with_a_problem() {
    let a = service("web", "short");
    let b = service("web", "long");
    let c = service("web", "good");
    let ingress = ing(
        "regex",
        &[("use-regex", "true")],
        "re.example",
        &[
            path("/api", "ImplementationSpecific", "short"),
            path("/api/v[0-9]+/users", "ImplementationSpecific", "long"),
            path("/(?=look)ahead", "ImplementationSpecific", "good"),
        ],
    );
    let neighbour = ing(
        "neighbour",
        &[],
        "n.example",
        &[path("/", "Prefix", "good")],
    );
    let (_dir, rauta) = serve(&[&a, &b, &c], &[ingress, neighbour], &[]);
    assert_eq!(
        rauta.who("re.example", "/api/v2/users/7"),
        "long",
        "{}",
        rauta.log()
    );
    assert_eq!(rauta.who("re.example", "/api/vx/users"), "short");
    assert_eq!(rauta.who("re.example", "/Api"), "short");
    assert_eq!(
        rauta.who("re.example", "/lookahead"),
        "404",
        "the look-ahead path is not served"
    );
    assert_eq!(
        rauta.who("n.example", "/"),
        "good",
        "other Ingresses are served"
    );
    let log = rauta.log();
    assert!(
        log.contains("Ingress web/regex")
            && log.contains("look-around")
            && log.contains("(?=look)ahead"),
        "the problem names the Ingress, the path and what Rust regex lacks:\n{log}"
    );
}

#[test]
fn redirects_app_root_and_www_redirects() {
    let app = service("web", "app");
    let moved = ing(
        "moved",
        &[("permanent-redirect", "https://new.example/from$request_uri")],
        "old.example",
        &[path("/", "Prefix", "app")],
    );
    let temporal = ing(
        "temporal",
        &[
            ("temporal-redirect", "https://maint.example/"),
            ("temporal-redirect-code", "307"),
        ],
        "maint.example",
        &[path("/", "Prefix", "app")],
    );
    let bad_code = ing(
        "badcode",
        &[
            ("permanent-redirect", "https://x.example/"),
            ("permanent-redirect-code", "399"),
        ],
        "bad.example",
        &[path("/", "Prefix", "app")],
    );
    let root = ing(
        "root",
        &[("app-root", "/app")],
        "root.example",
        &[path("/", "Prefix", "app")],
    );
    let www = ing(
        "www",
        &[("from-to-www-redirect", "true")],
        "example.org",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve(&[&app], &[moved, temporal, bad_code, root, www], &[]);
    let port = rauta.addr().port();

    let r = get(rauta.addr(), "old.example", "/a/b?c=1").expect("answer");
    assert_eq!(r.status, 301, "{}", rauta.log());
    assert_eq!(
        r.header("location"),
        Some("https://new.example/from/a/b?c=1")
    );
    let r = get(rauta.addr(), "maint.example", "/x").expect("answer");
    assert_eq!(
        (r.status, r.header("location")),
        (307, Some("https://maint.example/"))
    );
    let r = get(rauta.addr(), "bad.example", "/").expect("answer");
    assert_eq!(r.status, 301, "an out-of-range code falls back to 301");
    assert!(
        rauta.log().contains("permanent-redirect-code"),
        "{}",
        rauta.log()
    );
    assert_eq!(app.0.requests(), 0, "redirects are never proxied");

    let host = format!("root.example:{port}");
    let r = get(rauta.addr(), &host, "/?q=1").expect("answer");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location").map(str::to_string),
        Some(format!("http://{host}/app"))
    );
    assert_eq!(
        rauta.who("root.example", "/other"),
        "app",
        "only exactly / is redirected"
    );

    let r = get(rauta.addr(), &format!("www.example.org:{port}"), "/p?x=1").expect("answer");
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location").map(str::to_string),
        Some(format!("http://example.org:{port}/p?x=1"))
    );
    assert_eq!(rauta.who("example.org", "/p"), "app");
}

#[test]
fn source_ranges_deny_before_allow_and_a_bad_range_closes_only_its_ingress() {
    let app = service("web", "app");
    let outside = ing(
        "outside",
        &[("whitelist-source-range", "10.0.0.0/8, 192.168.0.0/16")],
        "a.example",
        &[path("/", "Prefix", "app")],
    );
    let inside = ing(
        "inside",
        &[("allowlist-source-range", "127.0.0.1/32")],
        "b.example",
        &[path("/", "Prefix", "app")],
    );
    let denied = ing(
        "denied",
        &[
            ("whitelist-source-range", "127.0.0.0/8"),
            ("denylist-source-range", "127.0.0.1"),
        ],
        "c.example",
        &[path("/", "Prefix", "app")],
    );
    let broken = ing(
        "broken",
        &[("whitelist-source-range", "10.0.0.0/33")],
        "d.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve(&[&app], &[outside, inside, denied, broken], &[]);
    assert_eq!(rauta.who("a.example", "/"), "403", "{}", rauta.log());
    assert_eq!(rauta.who("b.example", "/"), "app");
    assert_eq!(
        rauta.who("c.example", "/"),
        "403",
        "deny is checked before allow"
    );
    assert_eq!(
        rauta.who("d.example", "/"),
        "503",
        "a range that does not parse closes the location"
    );
    let log = rauta.log();
    assert!(
        log.contains("Ingress web/broken") && log.contains("10.0.0.0/33"),
        "{log}"
    );
}

#[test]
fn cors_headers_on_every_response_and_preflights_answered_by_the_proxy() {
    let app = service("web", "app");
    let open = ing(
        "open",
        &[("enable-cors", "true")],
        "open.example",
        &[path("/", "Prefix", "app")],
    );
    let listed = ing(
        "listed",
        &[
            ("enable-cors", "true"),
            (
                "cors-allow-origin",
                "https://app.example, https://*.tenant.example, no-scheme.example",
            ),
            ("cors-allow-credentials", "false"),
            ("cors-max-age", "600"),
            ("cors-expose-headers", "X-Total"),
        ],
        "listed.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve(&[&app], &[open, listed], &[]);

    let r = get(rauta.addr(), "open.example", "/status/500").expect("answer");
    assert_eq!(r.status, 500);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("*"),
        "any status gets the headers"
    );
    assert_eq!(
        r.header("access-control-allow-credentials"),
        None,
        "never * with credentials"
    );
    assert_eq!(r.header("access-control-max-age"), Some("1728000"));
    let with_origin = [("Origin", "https://site.example")];
    let r = request(rauta.addr(), "GET", "open.example", "/", &with_origin, b"").expect("answer");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://site.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));

    let before = app.0.requests();
    let pre = [
        ("Origin", "https://a.tenant.example"),
        ("Access-Control-Request-Method", "PUT"),
    ];
    let r = request(rauta.addr(), "OPTIONS", "listed.example", "/api", &pre, b"").expect("answer");
    assert_eq!(r.status, 204, "{}", rauta.log());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://a.tenant.example")
    );
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, PUT, POST, DELETE, PATCH, OPTIONS")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("access-control-allow-credentials"), None);
    assert_eq!(app.0.requests(), before, "a preflight is never proxied");

    let stranger = [("Origin", "https://evil.example")];
    let r = request(rauta.addr(), "GET", "listed.example", "/", &stranger, b"").expect("answer");
    assert_eq!(r.status, 200, "an unlisted origin is still proxied");
    assert_eq!(r.header("access-control-allow-origin"), None);
    let deep = [("Origin", "https://a.b.tenant.example")];
    let r = request(rauta.addr(), "GET", "listed.example", "/", &deep, b"").expect("answer");
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "*. is one label"
    );
    let ok = [("Origin", "https://APP.example")];
    let r = request(rauta.addr(), "GET", "listed.example", "/", &ok, b"").expect("answer");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://APP.example")
    );
    assert_eq!(r.header("access-control-expose-headers"), Some("X-Total"));
    assert!(
        rauta.log().contains("no-scheme.example"),
        "the dropped origin is reported"
    );
}

#[test]
fn body_size_per_ingress_upstream_vhost_and_server_alias() {
    let app = service("web", "app");
    let small = ing(
        "small",
        &[("proxy-body-size", "10")],
        "small.example",
        &[path("/", "Prefix", "app")],
    );
    let unlimited = ing(
        "unlimited",
        &[("proxy-body-size", "0")],
        "big.example",
        &[path("/", "Prefix", "app")],
    );
    let bad = ing(
        "badsize",
        &[("proxy-body-size", "15r")],
        "bad.example",
        &[path("/", "Prefix", "app")],
    );
    let vhost = ing(
        "vhost",
        &[
            ("upstream-vhost", "internal.svc"),
            ("server-alias", "alias.example, Other.Example"),
        ],
        "v.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve(
        &[&app],
        &[small, unlimited, bad, vhost],
        &["--max-body-bytes", "100"],
    );

    let post = |host: &str, n: usize| {
        request(
            rauta.addr(),
            "POST",
            host,
            "/echo-body",
            &[],
            &vec![b'x'; n],
        )
        .expect("answer")
        .status
    };
    assert_eq!(post("small.example", 10), 200, "exactly at the limit");
    assert_eq!(post("small.example", 11), 413);
    assert_eq!(post("big.example", 1000), 200, "0 lifts the global limit");
    assert_eq!(
        post("bad.example", 101),
        413,
        "a bad size keeps the global limit"
    );
    assert!(rauta.log().contains("\"15r\""), "{}", rauta.log());

    get(rauta.addr(), "v.example", "/x").expect("answer");
    let seen = app.0.last_request().expect("asked");
    assert_eq!(seen.header("host"), Some("internal.svc"));
    assert_eq!(seen.header("x-forwarded-host"), Some("v.example"));
    assert_eq!(rauta.who("alias.example", "/"), "app");
    assert_eq!(rauta.who("other.example", "/"), "app");
    assert_eq!(
        app.0.last_request().expect("asked").header("host"),
        Some("internal.svc")
    );
}

#[test]
fn service_upstream_sends_to_the_cluster_ip_not_the_endpoints() {
    let app = Backend::start("cluster-ip");
    let port = app.port();
    // The EndpointSlice names a port nothing listens on: only the cluster
    // IP (here 127.0.0.1 and the Service port) reaches the backend.
    let dead = rauta_testkit::free_port();
    let svc = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\n  namespace: web\nspec:\n  clusterIP: 127.0.0.1\n  ports:\n  - name: http\n    port: {port}\n    targetPort: {dead}\n\
---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: app-1\n  namespace: web\n  labels:\n    kubernetes.io/service-name: app\naddressType: IPv4\nports:\n- name: http\n  port: {dead}\nendpoints:\n- addresses: [\"127.0.0.1\"]\n  conditions: {{ready: true}}\n"
    );
    let via_ip = ing(
        "via-ip",
        &[("service-upstream", "true")],
        "ip.example",
        &[path("/", "Prefix", "app")],
    );
    let via_eps = ing("via-eps", &[], "eps.example", &[path("/", "Prefix", "app")]);
    let holder = (Backend::start("unused"), svc);
    let (_dir, rauta) = serve(&[&holder], &[via_ip, via_eps], &[]);
    assert_eq!(
        rauta.who("ip.example", "/"),
        "cluster-ip",
        "{}",
        rauta.log()
    );
    assert_eq!(
        rauta.who("eps.example", "/"),
        "502",
        "without the annotation the endpoints are used"
    );
}

#[test]
fn location_policies_stay_with_their_ingress_and_the_oldest_ingress_sets_host_wide_ones() {
    let app = service("web", "app");
    let with_time = |name: &str, time: &str, annotations: &[(&str, &str)], p: &str| {
        ing(
            name,
            annotations,
            "shared.example",
            &[path(p, "Prefix", "app")],
        )
        .replacen(
            "metadata:\n",
            &format!("metadata:\n  creationTimestamp: \"{time}\"\n"),
            1,
        )
    };
    let older = with_time(
        "older",
        "2024-01-01T00:00:00Z",
        &[
            ("whitelist-source-range", "10.0.0.0/8"),
            ("server-alias", "old-alias.example"),
        ],
        "/locked",
    );
    let newer = with_time(
        "newer",
        "2025-01-01T00:00:00Z",
        &[
            ("server-alias", "new-alias.example"),
            ("enable-cors", "true"),
        ],
        "/open",
    );
    let (_dir, rauta) = serve(&[&app], &[newer, older], &[]);
    assert_eq!(
        rauta.who("shared.example", "/locked"),
        "403",
        "{}",
        rauta.log()
    );
    assert_eq!(
        rauta.who("shared.example", "/open"),
        "app",
        "the allow-list is per location"
    );
    let r = get(rauta.addr(), "shared.example", "/locked").expect("answer");
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "CORS is per location too"
    );
    let r = get(rauta.addr(), "shared.example", "/open").expect("answer");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        rauta.who("old-alias.example", "/open"),
        "app",
        "the oldest Ingress's alias wins"
    );
    assert_eq!(rauta.who("new-alias.example", "/open"), "404");
}

#[test]
fn an_access_control_rauta_lacks_closes_the_paths_instead_of_serving_them_open() {
    let app = service("web", "app");
    let basic = ing(
        "basic",
        &[("auth-type", "basic"), ("auth-secret", "htpasswd")],
        "basic.example",
        &[path("/", "Prefix", "app")],
    );
    let mtls = ing(
        "mtls",
        &[("auth-tls-secret", "web/ca")],
        "mtls.example",
        &[path("/", "Prefix", "app")],
    );
    let open = ing("open", &[], "open.example", &[path("/", "Prefix", "app")]);
    let (_dir, rauta) = serve(&[&app], &[basic, mtls, open], &[]);
    assert_eq!(rauta.who("basic.example", "/"), "503", "{}", rauta.log());
    assert_eq!(rauta.who("mtls.example", "/"), "503");
    assert_eq!(rauta.who("open.example", "/"), "app");
    assert_eq!(
        app.0.requests(),
        1,
        "nothing reached the backend unprotected"
    );
    let log = rauta.log();
    assert!(
        log.contains("Ingress web/basic") && log.contains("auth-type"),
        "{log}"
    );
}
