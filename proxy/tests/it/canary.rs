//! Canary Ingresses (`canary`, `canary-by-header(-value/-pattern)`,
//! `canary-by-cookie`, `canary-weight(-total)`) through the real proxy:
//! ingress-nginx's precedence (header, then cookie, then weight; `never`
//! decides at once), scoped to the main rule with the same host, path and
//! pathType. Weighted checks count a fixed number of requests with wide
//! bounds, never time.

use crate::annotated::{ing, serve, who, who_on, yaml};
use crate::common::service;
use rauta_testkit::client::Conn;
use rauta_testkit::manifests::path;

fn main_and_canary(host: &str, canary: &[(&str, &str)]) -> Vec<String> {
    let mut annotations = vec![("canary", "true")];
    annotations.extend_from_slice(canary);
    vec![
        ing(
            &format!("main-{host}"),
            &[],
            host,
            &[path("/", "Prefix", "app")],
        ),
        ing(
            &format!("canary-{host}"),
            &annotations,
            host,
            &[path("/", "Prefix", "canary")],
        ),
    ]
}

/// How many of `n` requests on one connection the canary took.
fn canary_share(addr: std::net::SocketAddr, host: &str, n: usize) -> usize {
    let mut conn = Conn::open(addr).expect("connect");
    (0..n)
        .filter(|_| who_on(&mut conn, host, "/", &[]) == "canary")
        .count()
}

#[test]
fn header_then_cookie_then_weight_with_always_and_never_deciding_at_once() {
    let app = service("web", "app");
    let canary = service("web", "canary");
    let mut ingresses = main_and_canary(
        "c.example",
        &[
            ("canary-by-header", "X-Canary"),
            ("canary-by-cookie", "use_canary"),
            ("canary-weight", "100"),
        ],
    );
    ingresses.extend(main_and_canary(
        "v.example",
        &[
            ("canary-by-header", "X-Version"),
            ("canary-by-header-value", "v2"),
        ],
    ));
    let (_dir, rauta) = serve(&yaml(&[&app, &canary]), &ingresses, &[]);
    let a = rauta.addr();
    assert_eq!(who(a, "c.example", "/", &[]), "canary", "{}", rauta.log());
    assert_eq!(
        who(
            a,
            "c.example",
            "/",
            &[("X-Canary", "never"), ("Cookie", "use_canary=always")]
        ),
        "app",
        "header never wins over cookie and weight"
    );
    assert_eq!(
        who(a, "c.example", "/x", &[("x-canary", "always")]),
        "canary",
        "the header name is case-insensitive"
    );
    assert_eq!(
        who(
            a,
            "c.example",
            "/",
            &[("X-Canary", "maybe"), ("Cookie", "a=b; use_canary=never")]
        ),
        "app",
        "another header value falls through to the cookie, whose never decides"
    );
    assert_eq!(
        who(a, "c.example", "/", &[("Cookie", "use_canary=always")]),
        "canary"
    );
    // weight 100: every request without header or cookie.
    assert_eq!(canary_share(a, "c.example", 200), 200);

    // With -by-header-value only that value selects; always is just a value.
    assert_eq!(who(a, "v.example", "/", &[("X-Version", "v2")]), "canary");
    assert_eq!(who(a, "v.example", "/", &[("X-Version", "always")]), "app");
    // weight 0 (unset): never by weight.
    assert_eq!(canary_share(a, "v.example", 200), 0);
}

#[test]
fn header_pattern_matches_and_a_broken_pattern_sends_the_header_to_the_main_backend() {
    let app = service("web", "app");
    let canary = service("web", "canary");
    let mut ingresses = main_and_canary(
        "p.example",
        &[
            ("canary-by-header", "X-Version"),
            ("canary-by-header-pattern", "^v[23]$"),
        ],
    );
    // Look-behind is PCRE, not Rust regex: the pattern does not compile.
    ingresses.extend(main_and_canary(
        "b.example",
        &[
            ("canary-by-header", "X-Version"),
            ("canary-by-header-pattern", "(?<=x)v"),
            ("canary-weight", "100"),
        ],
    ));
    let (_dir, rauta) = serve(&yaml(&[&app, &canary]), &ingresses, &[]);
    let a = rauta.addr();
    assert_eq!(who(a, "p.example", "/", &[("X-Version", "v3")]), "canary");
    assert_eq!(who(a, "p.example", "/", &[("X-Version", "v4")]), "app");
    assert_eq!(
        who(a, "b.example", "/", &[("X-Version", "xv")]),
        "app",
        "a pattern error sends to the main backend at once, weight or not"
    );
    assert_eq!(
        who(a, "b.example", "/", &[]),
        "canary",
        "weight 100 without the header"
    );
}

#[test]
fn weights_split_traffic_statistically() {
    let app = service("web", "app");
    let canary = service("web", "canary");
    let mut ingresses = main_and_canary("w.example", &[("canary-weight", "30")]);
    ingresses.extend(main_and_canary(
        "t.example",
        &[("canary-weight", "250"), ("canary-weight-total", "1000")],
    ));
    let (_dir, rauta) = serve(&yaml(&[&app, &canary]), &ingresses, &[]);
    // 1000 requests: the expected 300 has a standard deviation near 14.5.
    let n = canary_share(rauta.addr(), "w.example", 1000);
    assert!((220..=380).contains(&n), "30% weight gave {n}/1000");
    let n = canary_share(rauta.addr(), "t.example", 1000);
    assert!((170..=330).contains(&n), "250 of 1000 gave {n}/1000");
}

#[test]
fn a_canary_takes_effect_only_on_the_same_host_path_and_path_type_and_never_leaks_per_service() {
    let app = service("web", "app");
    let canary = service("web", "canary");
    let ingresses = vec![
        ing("main", &[], "s.example", &[path("/", "Prefix", "app")]),
        // The same Service on another host: ingress-nginx would send its
        // traffic to the canary too (per-Service upstream); rauta does not.
        ing("other", &[], "o.example", &[path("/", "Prefix", "app")]),
        ing(
            "canary",
            &[("canary", "true"), ("canary-weight", "100")],
            "s.example",
            &[
                path("/", "Prefix", "canary"),
                // Different path, and a different pathType: inert.
                path("/only-canary", "Prefix", "canary"),
            ],
        ),
        ing(
            "exact",
            &[("canary", "true"), ("canary-weight", "100")],
            "e.example",
            &[path("/", "Exact", "canary")],
        ),
        ing("main-e", &[], "e.example", &[path("/", "Prefix", "app")]),
        // A canary alone creates no host.
        ing(
            "lonely",
            &[("canary", "true"), ("canary-weight", "100")],
            "alone.example",
            &[path("/", "Prefix", "canary")],
        ),
        // A second canary for the same rule is ignored (the first wins).
        ing(
            "second",
            &[("canary", "true"), ("canary-by-header", "X-Second")],
            "s.example",
            &[path("/", "Prefix", "app")],
        ),
    ];
    let (_dir, rauta) = serve(&yaml(&[&app, &canary]), &ingresses, &[]);
    let a = rauta.addr();
    assert_eq!(who(a, "s.example", "/", &[]), "canary", "{}", rauta.log());
    assert_eq!(
        who(a, "s.example", "/only-canary/x", &[]),
        "canary",
        "served by the main rule /, whose canary takes it"
    );
    assert_eq!(who(a, "o.example", "/", &[]), "app", "no per-Service leak");
    assert_eq!(
        who(a, "e.example", "/", &[]),
        "app",
        "pathType Exact is not the main rule's Prefix"
    );
    assert_eq!(who(a, "alone.example", "/", &[]), "404");
    let log = rauta.log();
    assert!(
        log.contains("all.yaml")
            && log.contains("Ingress web/lonely")
            && log.contains("no main Ingress serves"),
        "{log}"
    );
    assert!(
        log.contains("Ingress web/second")
            && log.contains("already has the canary of Ingress web/canary"),
        "{log}"
    );
}

#[test]
fn canary_keys_without_canary_true_and_bad_weights_are_reported_with_file_and_object() {
    let app = service("web", "app");
    let canary = service("web", "canary");
    let ingresses = vec![
        // Not a canary: served as a main Ingress of its own host, keys ignored.
        ing(
            "half",
            &[("canary-weight", "50")],
            "half.example",
            &[path("/", "Prefix", "canary")],
        ),
        ing("main", &[], "bad.example", &[path("/", "Prefix", "app")]),
        ing(
            "bad",
            &[
                ("canary", "true"),
                ("canary-weight", "lots"),
                ("canary-by-header", "X-C"),
            ],
            "bad.example",
            &[path("/", "Prefix", "canary")],
        ),
    ];
    let (_dir, rauta) = serve(&yaml(&[&app, &canary]), &ingresses, &[]);
    let a = rauta.addr();
    assert_eq!(
        who(a, "half.example", "/", &[]),
        "canary",
        "{}",
        rauta.log()
    );
    let n = canary_share(a, "bad.example", 50);
    assert_eq!(n, 0, "a bad weight is 0");
    assert_eq!(who(a, "bad.example", "/", &[("X-C", "always")]), "canary");
    let log = rauta.log();
    assert!(
        log.contains("all.yaml: Ingress web/half")
            && log.contains("canary-weight")
            && log.contains("canary is not \"true\""),
        "{log}"
    );
    assert!(
        log.contains("all.yaml: Ingress web/bad") && log.contains("\"lots\""),
        "{log}"
    );
}
