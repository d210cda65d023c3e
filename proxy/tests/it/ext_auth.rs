//! `auth-url`, `auth-method`, `auth-signin`, `auth-response-headers`
//! through the real proxy, against real auth services: what the auth
//! service is sent, each answer's outcome, and failing closed.

use crate::annotated::{assert_reported, ing, serve_docs, service_on};
use rauta_testkit::client::{get, request};
use rauta_testkit::manifests::path;
use rauta_testkit::{Backend, ScriptedBackend};
use std::time::{Duration, Instant};

#[test]
fn the_auth_service_gets_the_client_headers_and_its_status_decides() {
    let app = Backend::start("app");
    let auth = Backend::start("auth");
    let svc = service_on("app", &[app.port()]);
    let auth_svc = service_on("auth", &[auth.port()]);
    let at = |status: &str| format!("http://127.0.0.1:{}/status/{status}", auth.port());
    let guarded = |name: &str, status: &str| {
        let url = at(status);
        ing(
            name,
            &[("auth-url", url.as_str())],
            &format!("{name}.example"),
            &[path("/", "Prefix", "app")],
        )
    };
    let ok = guarded("ok", "200");
    let denied = guarded("denied", "401");
    let forbidden = guarded("forbidden", "403");
    let broken = guarded("broken", "404");
    // The auth service as a Service name, resolved through its EndpointSlice.
    let by_name = ing(
        "byname",
        &[
            ("auth-url", "http://auth.web.svc.cluster.local/status/204"),
            ("auth-method", "POST"),
        ],
        "byname.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &auth_svc, &ok, &denied, &forbidden, &broken, &by_name]);

    let r = request(
        rauta.addr(),
        "GET",
        "ok.example",
        "/page?x=1",
        &[
            ("Authorization", "Bearer t0k3n"),
            ("X-Request-ID", "req-42"),
        ],
        b"",
    )
    .expect("answer");
    assert_eq!(r.status, 200, "{}", rauta.log());
    assert_eq!(r.header("x-backend"), Some("app"));
    let asked = auth.last_request().expect("the auth service was asked");
    assert_eq!(asked.method, "GET");
    assert_eq!(asked.path, "/status/200");
    assert_eq!(asked.body_len, 0);
    let h = |n: &str| asked.header(n).map(str::to_string);
    assert_eq!(h("host"), Some(format!("127.0.0.1:{}", auth.port())));
    assert_eq!(h("authorization").as_deref(), Some("Bearer t0k3n"));
    assert_eq!(
        h("x-original-url").as_deref(),
        Some("http://ok.example/page?x=1")
    );
    assert_eq!(h("x-original-method").as_deref(), Some("GET"));
    assert_eq!(h("x-auth-request-redirect").as_deref(), Some("/page?x=1"));
    assert_eq!(
        h("x-sent-from").as_deref(),
        Some("nginx-ingress-controller")
    );
    assert_eq!(h("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(h("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(h("x-request-id").as_deref(), Some("req-42"));
    assert_eq!(
        app.last_request()
            .and_then(|r| r.header("x-request-id").map(str::to_string)),
        Some("req-42".to_string()),
        "the upstream request carries the same id"
    );

    let before = app.requests();
    assert_eq!(rauta.who("denied.example", "/"), "401");
    assert_eq!(rauta.who("forbidden.example", "/"), "403");
    assert_eq!(
        rauta.who("broken.example", "/"),
        "500",
        "any other status is a 500"
    );
    assert_eq!(
        app.requests(),
        before,
        "refused requests never reach the app"
    );

    assert_eq!(rauta.who("byname.example", "/"), "app", "{}", rauta.log());
    let asked = auth.last_request().expect("asked by name");
    assert_eq!(asked.method, "POST", "auth-method");
    assert_eq!(asked.header("host"), Some("auth.web.svc.cluster.local"));
    assert_eq!(asked.header("x-original-uri"), Some("/"));
}

#[test]
fn a_401_redirects_to_the_signin_url_with_rd() {
    let app = Backend::start("app");
    let auth = Backend::start("auth");
    let svc = service_on("app", &[app.port()]);
    let url = format!("http://127.0.0.1:{}/status/401", auth.port());
    let plain = ing(
        "signin",
        &[
            ("auth-url", url.as_str()),
            ("auth-signin", "https://login.example/start"),
        ],
        "s.example",
        &[path("/", "Prefix", "app")],
    );
    let queried = ing(
        "signinq",
        &[
            ("auth-url", url.as_str()),
            ("auth-signin", "https://login.example/start?app=shop"),
        ],
        "q.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &plain, &queried]);
    let r = get(rauta.addr(), "s.example", "/cart?item=7").expect("answer");
    assert_eq!(r.status, 302, "{}", rauta.log());
    assert_eq!(
        r.header("location"),
        Some("https://login.example/start?rd=http://s.example%2Fcart%3Fitem%3D7")
    );
    let r = get(rauta.addr(), "q.example", "/").expect("answer");
    assert_eq!(
        r.header("location"),
        Some("https://login.example/start?app=shop&rd=http://q.example%2F")
    );
}

#[test]
fn auth_response_headers_replace_the_clients_and_the_cookie_is_relayed() {
    let app = Backend::start("app");
    let svc = service_on("app", &[app.port()]);
    let auth = ScriptedBackend::answering(
        b"HTTP/1.1 200 OK\r\nX-User: alice\r\nX-Groups: admins\r\nSet-Cookie: session=abc; Path=/\r\nContent-Length: 0\r\n\r\n",
    );
    let url = format!("http://127.0.0.1:{}/auth", auth.port);
    let guarded = ing(
        "headers",
        &[
            ("auth-url", url.as_str()),
            ("auth-response-headers", "X-User, X-Groups, X-Missing"),
        ],
        "h.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &guarded]);
    for _ in 0..2 {
        let r = request(
            rauta.addr(),
            "GET",
            "h.example",
            "/",
            &[
                ("X-User", "mallory"),
                ("X-Missing", "spoofed"),
                ("X-Other", "kept"),
            ],
            b"",
        )
        .expect("answer");
        assert_eq!(r.status, 200, "{}", rauta.log());
        assert_eq!(r.header("set-cookie"), Some("session=abc; Path=/"));
        let seen = app.last_request().expect("proxied");
        assert_eq!(
            seen.header_all("x-user"),
            vec!["alice"],
            "the client's X-User is replaced"
        );
        assert_eq!(seen.header("x-groups"), Some("admins"));
        assert_eq!(
            seen.header("x-missing"),
            None,
            "named but not in the auth answer: not sent at all"
        );
        assert_eq!(seen.header("x-other"), Some("kept"));
    }
}

#[test]
fn an_auth_service_down_or_hanging_fails_closed_and_other_routes_are_served() {
    let app = Backend::start("app");
    let svc = service_on("app", &[app.port()]);
    let down = format!("http://127.0.0.1:{}/auth", rauta_testkit::free_port());
    let hanging = ScriptedBackend::start(Duration::from_secs(30), None);
    let hang = format!("http://127.0.0.1:{}/auth", hanging.port);
    let gone = ing(
        "down",
        &[("auth-url", down.as_str())],
        "down.example",
        &[path("/", "Prefix", "app")],
    );
    let slow = ing(
        "hanging",
        &[("auth-url", hang.as_str()), ("proxy-read-timeout", "1")],
        "hang.example",
        &[path("/", "Prefix", "app")],
    );
    let invalid = ing(
        "invalid",
        &[("auth-url", "ftp://auth.example/check")],
        "invalid.example",
        &[path("/", "Prefix", "app")],
    );
    let open = ing("open", &[], "open.example", &[path("/", "Prefix", "app")]);
    let (_dir, rauta) = serve_docs(&[&svc, &gone, &slow, &invalid, &open]);

    assert_eq!(rauta.who("down.example", "/"), "500", "{}", rauta.log());
    let addr = rauta.addr();
    let waiting = std::thread::spawn(move || {
        let started = Instant::now();
        let status = get(addr, "hang.example", "/").map(|r| r.status);
        (status.ok(), started.elapsed())
    });
    // While one request waits on the hanging auth service, others are served.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(rauta.who("open.example", "/"), "app");
    let (status, took) = waiting.join().expect("client thread");
    assert_eq!(status, Some(500));
    assert!(
        took < Duration::from_secs(3),
        "failed closed within 3× the 1 s timeout: {took:?}"
    );
    assert_eq!(app.requests(), 1, "only the open route reached the app");

    let r = get(rauta.addr(), "invalid.example", "/").expect("answer");
    assert_eq!(r.status, 503, "an invalid auth-url denies the location");
    assert_reported(&rauta, "invalid", "auth-url");
}
