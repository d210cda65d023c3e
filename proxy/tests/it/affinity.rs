//! Cookie affinity (`affinity: cookie`, `session-cookie-*`) through the
//! real proxy: the cookie's attributes, stickiness over many requests and
//! connections, a cookie naming an unknown endpoint re-picked and re-set,
//! and `session-cookie-change-on-failure` after a backend dies.

use crate::annotated::{ing, serve};
use rauta_testkit::client::{request, Response};
use rauta_testkit::manifests::path;
use rauta_testkit::{backend_for, Backend};
use std::collections::BTreeSet;

/// A Service `name` with `n` endpoints, backends named `name-0`…
fn pool(name: &str, n: usize) -> (Vec<Backend>, String) {
    let backends: Vec<Backend> = (0..n)
        .map(|i| Backend::start(&format!("{name}-{i}")))
        .collect();
    let refs: Vec<&Backend> = backends.iter().collect();
    let yaml = backend_for("web", name, "http", &refs);
    (backends, yaml)
}

fn get_with(addr: std::net::SocketAddr, host: &str, path: &str, cookie: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("Cookie", c)).into_iter().collect();
    request(addr, "GET", host, path, &headers, b"").expect("an answer")
}

/// `NAME=VALUE` of a `Set-Cookie`, and its attributes.
fn split_cookie(set_cookie: &str) -> (String, Vec<String>) {
    let mut parts = set_cookie.split(';').map(|p| p.trim().to_string());
    let pair = parts.next().unwrap_or_default();
    (pair, parts.collect())
}

#[test]
fn the_cookie_names_an_endpoint_with_ingress_nginx_attributes_and_keeps_the_client_there() {
    let (_backends, app) = pool("app", 3);
    let sticky = ing(
        "sticky",
        &[
            ("affinity", "cookie"),
            ("session-cookie-max-age", "3600"),
            ("session-cookie-expires", "7200"),
            ("session-cookie-samesite", "Lax"),
        ],
        "s.example",
        &[path("/app", "Prefix", "app")],
    );
    let named = ing(
        "named",
        &[
            ("affinity", "cookie"),
            ("session-cookie-name", "route"),
            ("session-cookie-path", "/"),
            ("session-cookie-secure", "true"),
        ],
        "n.example",
        &[path("/", "Prefix", "app")],
    );
    // The same Service without affinity: no cookie (no per-Service leak).
    let plain = ing("plain", &[], "p.example", &[path("/", "Prefix", "app")]);
    let (_dir, rauta) = serve(&[&app], &[sticky, named, plain], &[]);
    let a = rauta.addr();

    let first = get_with(a, "s.example", "/app/x", None);
    assert_eq!(first.status, 200, "{}", rauta.log());
    let set = first
        .header("set-cookie")
        .expect("a Set-Cookie on the first request");
    let (pair, attrs) = split_cookie(set);
    let value = pair.strip_prefix("INGRESSCOOKIE=").expect("default name");
    assert_eq!(value.len(), 16, "an opaque id: {value}");
    assert!(!value.contains("127.0.0.1"), "never the address in clear");
    assert!(attrs.contains(&"Path=/app".to_string()), "{set}");
    assert!(attrs.contains(&"Max-Age=3600".to_string()), "{set}");
    assert!(attrs.contains(&"HttpOnly".to_string()), "{set}");
    assert!(attrs.contains(&"SameSite=Lax".to_string()), "{set}");
    assert!(
        attrs
            .iter()
            .any(|a| a.starts_with("Expires=") && a.ends_with(" GMT")),
        "{set}"
    );
    assert!(
        !attrs.contains(&"Secure".to_string()),
        "plain HTTP, not asked: {set}"
    );
    let home = first.header("x-backend").expect("backend").to_string();

    // Sticky across many requests, each on a new connection (so on any shard).
    for _ in 0..30 {
        let r = get_with(a, "s.example", "/app/", Some(&pair));
        assert_eq!(r.header("x-backend"), Some(home.as_str()));
        assert_eq!(
            r.header("set-cookie"),
            None,
            "no new endpoint, no Set-Cookie"
        );
    }
    // Without a cookie the balancer spreads clients, each getting a cookie.
    let spread: BTreeSet<String> = (0..6)
        .map(|_| {
            let r = get_with(a, "s.example", "/app", None);
            assert!(r.header("set-cookie").is_some());
            r.header("x-backend").unwrap_or("").to_string()
        })
        .collect();
    assert_eq!(spread.len(), 3, "{spread:?}");
    // A cookie naming no endpoint (or garbage) is re-picked and re-set.
    for stale in [
        "INGRESSCOOKIE=0123456789abcdef",
        "INGRESSCOOKIE=xyz",
        "other=1",
    ] {
        let r = get_with(a, "s.example", "/app", Some(stale));
        assert_eq!(r.status, 200);
        let (pair, _) = split_cookie(r.header("set-cookie").expect("re-set"));
        let again = get_with(a, "s.example", "/app", Some(&pair));
        assert_eq!(again.header("x-backend"), r.header("x-backend"));
    }

    let r = get_with(a, "n.example", "/", None);
    let set = r.header("set-cookie").expect("cookie");
    let (pair, attrs) = split_cookie(set);
    assert!(pair.starts_with("route="), "{set}");
    assert!(
        attrs.contains(&"Path=/".to_string()) && attrs.contains(&"Secure".to_string()),
        "{set}"
    );
    assert!(
        !attrs
            .iter()
            .any(|a| a.starts_with("Max-Age") || a.starts_with("Expires")),
        "{set}"
    );

    let r = get_with(a, "p.example", "/", None);
    assert_eq!(
        r.header("set-cookie"),
        None,
        "affinity stays with its Ingress"
    );
}

#[test]
fn change_on_failure_moves_the_session_and_without_it_the_dead_endpoint_answers_502() {
    let (backends, app) = pool("app", 2);
    let moving = ing(
        "moving",
        &[
            ("affinity", "cookie"),
            ("affinity-mode", "persistent"),
            ("session-cookie-change-on-failure", "true"),
        ],
        "m.example",
        &[path("/", "Prefix", "app")],
    );
    let pinned = ing(
        "pinned",
        &[("affinity", "cookie")],
        "pin.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve(&[&app], &[moving, pinned], &[]);
    let a = rauta.addr();
    let first = get_with(a, "m.example", "/", None);
    let (m_pair, _) = split_cookie(first.header("set-cookie").expect("cookie"));
    let m_home = first.header("x-backend").expect("backend").to_string();
    // A pinned client on the same endpoint.
    let (p_pair, p_home) = loop {
        let r = get_with(a, "pin.example", "/", None);
        let (pair, _) = split_cookie(r.header("set-cookie").expect("cookie"));
        if r.header("x-backend") == Some(m_home.as_str()) {
            break (pair, m_home.clone());
        }
    };
    backends
        .iter()
        .find(|b| b.name() == m_home)
        .expect("the home backend")
        .stop();

    let r = get_with(a, "m.example", "/", Some(&m_pair));
    assert_eq!(r.status, 200, "{}", rauta.log());
    let moved = r.header("x-backend").expect("backend").to_string();
    assert_ne!(moved, m_home);
    let (new_pair, _) = split_cookie(
        r.header("set-cookie")
            .expect("the cookie names the new endpoint"),
    );
    assert_ne!(new_pair, m_pair);
    for _ in 0..5 {
        let r = get_with(a, "m.example", "/", Some(&new_pair));
        assert_eq!(r.header("x-backend"), Some(moved.as_str()));
        assert_eq!(r.header("set-cookie"), None);
    }

    let r = get_with(a, "pin.example", "/", Some(&p_pair));
    assert_eq!(
        r.status, 502,
        "without change-on-failure the session stays on {p_home}"
    );
}

#[test]
fn bad_affinity_values_fall_back_with_a_warning_naming_file_and_object() {
    let (_backends, app) = pool("app", 1);
    let bad = ing(
        "bad",
        &[
            ("affinity", "cookie"),
            ("session-cookie-name", "no spaces"),
            ("session-cookie-max-age", "soon"),
            ("session-cookie-samesite", "Sometimes"),
        ],
        "b.example",
        &[path("/", "Prefix", "app")],
    );
    let odd = ing(
        "odd",
        &[("affinity", "ip")],
        "o.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve(&[&app], &[bad, odd], &[]);
    let r = get_with(rauta.addr(), "b.example", "/", None);
    let set = r.header("set-cookie").expect("cookie");
    assert!(set.starts_with("INGRESSCOOKIE="), "{set}");
    assert!(
        !set.contains("Max-Age") && !set.contains("SameSite"),
        "{set}"
    );
    let r = get_with(rauta.addr(), "o.example", "/", None);
    assert_eq!((r.status, r.header("set-cookie")), (200, None));
    let log = rauta.log();
    for needle in [
        "all.yaml: Ingress web/bad",
        "session-cookie-name",
        "session-cookie-max-age",
        "session-cookie-samesite",
        "all.yaml: Ingress web/odd",
    ] {
        assert!(log.contains(needle), "{needle}: {log}");
    }
}

#[test]
fn a_session_on_the_canary_stays_on_the_canary_by_default() {
    let (_main, app) = pool("app", 2);
    let (_canary, canary) = pool("canary", 2);
    let main = ing(
        "main",
        &[("affinity", "cookie")],
        "c.example",
        &[path("/", "Prefix", "app")],
    );
    let can = ing(
        "can",
        &[("canary", "true"), ("canary-weight", "50")],
        "c.example",
        &[path("/", "Prefix", "canary")],
    );
    let (_dir, rauta) = serve(&[&app, &canary], &[main, can], &[]);
    let a = rauta.addr();
    // Find one session on each side; with weight 50 a few tries suffice.
    let mut sessions = std::collections::BTreeMap::new();
    for _ in 0..200 {
        let r = get_with(a, "c.example", "/", None);
        let name = r.header("x-backend").expect("backend").to_string();
        let (pair, _) = split_cookie(r.header("set-cookie").expect("a new session gets a cookie"));
        sessions
            .entry(name.starts_with("canary"))
            .or_insert((name, pair));
        if sessions.len() == 2 {
            break;
        }
    }
    assert_eq!(sessions.len(), 2, "{}", rauta.log());
    for (name, pair) in sessions.values() {
        for _ in 0..20 {
            let r = get_with(a, "c.example", "/", Some(pair));
            assert_eq!(
                r.header("x-backend"),
                Some(name.as_str()),
                "weight 50 never moves a session"
            );
        }
    }
}

#[test]
fn the_cookie_is_secure_over_https_even_when_not_asked() {
    let (_backends, app) = pool("app", 1);
    let sticky = ing(
        "sticky",
        &[
            ("affinity", "cookie"),
            ("session-cookie-secure", "false"),
            ("ssl-redirect", "false"),
        ],
        "s.example",
        &[path("/", "Prefix", "app")],
    );
    let https = std::net::SocketAddr::from(([127, 0, 0, 1], rauta_testkit::free_port()));
    let listen = https.to_string();
    let (_dir, rauta) = serve(&[&app], &[sticky], &["--listen-tls", &listen]);
    let config = rauta_testkit::tls::client_config(false);
    let mut conn =
        rauta_testkit::tls::TlsConn::open(https, Some("s.example"), &config).expect("handshake");
    let r = conn.get("s.example", "/").expect("answer");
    let set = r.header("set-cookie").expect("cookie");
    let (_, attrs) = split_cookie(set);
    assert!(
        attrs.contains(&"Secure".to_string()),
        "{set}\n{}",
        rauta.log()
    );
    let plain = get_with(rauta.addr(), "s.example", "/", None);
    let set = plain.header("set-cookie").expect("cookie");
    assert!(!set.contains("Secure"), "{set}");
}
