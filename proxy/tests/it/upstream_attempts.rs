//! `proxy-*-timeout` and `proxy-next-upstream` through the real proxy:
//! per-route timeouts (504 on a read timeout, 502 on a refused connect),
//! and retries on another endpoint as the route's tokens allow.

use crate::annotated::{assert_reported, ing, serve_docs, serve_docs_with, service_on};
use rauta_testkit::client::{get, request};
use rauta_testkit::manifests::path;
use rauta_testkit::{Backend, ScriptedBackend};
use std::time::{Duration, Instant};

/// A 502 answer no retry should reach the client from.
const BAD_GATEWAY: &[u8] =
    b"HTTP/1.1 502 Bad Gateway\r\nx-backend: failing\r\nContent-Length: 4\r\n\r\nbad\n";

#[test]
fn proxy_read_timeout_is_the_routes_own_and_answers_504() {
    let app = Backend::start("app");
    let svc = service_on("app", &[app.port()]);
    let short = ing(
        "short",
        &[("proxy-read-timeout", "1"), ("proxy-next-upstream", "off")],
        "short.example",
        &[path("/", "Prefix", "app")],
    );
    let plain = ing("plain", &[], "plain.example", &[path("/", "Prefix", "app")]);
    let bad = ing(
        "bad",
        &[("proxy-read-timeout", "50k")],
        "bad.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &short, &plain, &bad]);

    let started = Instant::now();
    let r = get(rauta.addr(), "short.example", "/slow?ms=6000").expect("answer");
    assert_eq!(r.status, 504, "{}", rauta.log());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within 3× the 1 s timeout, not after the backend's 6 s"
    );
    // A read timeout is idle time: a backend that answers within it is served.
    assert_eq!(rauta.who("short.example", "/slow?ms=200"), "app");
    // Other routes keep the global 60 s.
    assert_eq!(rauta.who("plain.example", "/slow?ms=1500"), "app");
    // "50k" is not whole seconds: the global value, with a warning naming file and object.
    assert_eq!(rauta.who("bad.example", "/slow?ms=1500"), "app");
    assert_reported(&rauta, "bad", "proxy-read-timeout");
}

#[test]
fn a_refused_connect_is_502_and_with_off_not_retried() {
    let app = Backend::start("app");
    let closed = rauta_testkit::free_port();
    let svc = service_on("app", &[closed, app.port()]);
    let off = ing(
        "off",
        &[("proxy-next-upstream", "off")],
        "off.example",
        &[path("/", "Prefix", "app")],
    );
    let default = ing(
        "default",
        &[],
        "default.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &off, &default]);
    let statuses: Vec<String> = (0..4).map(|_| rauta.who("off.example", "/")).collect();
    assert!(
        statuses.iter().any(|s| s == "502") && statuses.iter().any(|s| s == "app"),
        "with off the refused endpoint's requests get 502: {statuses:?}\n{}",
        rauta.log()
    );
    // rauta's default retries a failed connect on the other endpoint.
    for _ in 0..4 {
        assert_eq!(rauta.who("default.example", "/"), "app");
    }
}

#[test]
fn http_502_is_retried_on_the_other_endpoint_and_a_post_only_with_non_idempotent() {
    let failing = ScriptedBackend::answering(BAD_GATEWAY);
    let app = Backend::start("app");
    let svc = service_on("app", &[failing.port, app.port()]);
    let retried = ing(
        "retried",
        &[("proxy-next-upstream", "error timeout http_502")],
        "retry.example",
        &[path("/", "Prefix", "app")],
    );
    let posts = ing(
        "posts",
        &[(
            "proxy-next-upstream",
            "error timeout http_502 non_idempotent",
        )],
        "posts.example",
        &[path("/", "Prefix", "app")],
    );
    let plain = ing("plain", &[], "plain.example", &[path("/", "Prefix", "app")]);
    let (_dir, rauta) = serve_docs(&[&svc, &retried, &posts, &plain]);

    for _ in 0..4 {
        assert_eq!(rauta.who("retry.example", "/"), "app", "{}", rauta.log());
    }
    assert!(
        failing.requests() >= 2,
        "round robin sent half to the failing endpoint first"
    );
    // Without http_502 the 502 is the answer.
    let plain: Vec<String> = (0..4).map(|_| rauta.who("plain.example", "/")).collect();
    assert!(plain.iter().any(|s| s == "failing"), "{plain:?}");
    // A POST was sent: it is not tried again (its 502 is relayed) ...
    let post = |host: &str| {
        request(rauta.addr(), "POST", host, "/", &[], b"")
            .expect("answer")
            .header("x-backend")
            .unwrap_or("none")
            .to_string()
    };
    let posted: Vec<String> = (0..4).map(|_| post("retry.example")).collect();
    assert!(posted.iter().any(|s| s == "failing"), "{posted:?}");
    // ... unless non_idempotent says so.
    for _ in 0..4 {
        assert_eq!(post("posts.example"), "app");
    }
}

#[test]
fn tries_bound_the_attempts_and_timeout_is_retried_on_another_endpoint() {
    let failing: Vec<ScriptedBackend> = (0..3)
        .map(|_| ScriptedBackend::answering(BAD_GATEWAY))
        .collect();
    let ports: Vec<u16> = failing.iter().map(|b| b.port).collect();
    let svc = service_on("failing", &ports);
    let bounded = ing(
        "bounded",
        &[
            ("proxy-next-upstream", "http_502"),
            ("proxy-next-upstream-tries", "2"),
        ],
        "tries.example",
        &[path("/", "Prefix", "failing")],
    );
    let slow = ScriptedBackend::start(Duration::from_secs(10), None);
    let app = Backend::start("app");
    let slow_svc = service_on("slowapp", &[slow.port, app.port()]);
    let timeout = ing(
        "timeout",
        &[
            ("proxy-read-timeout", "1"),
            ("proxy-next-upstream", "timeout"),
        ],
        "timeout.example",
        &[path("/", "Prefix", "slowapp")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &bounded, &slow_svc, &timeout]);

    let r = get(rauta.addr(), "tries.example", "/").expect("answer");
    assert_eq!(
        r.status, 502,
        "every endpoint fails: the last 502 is relayed"
    );
    let sent: u64 = failing.iter().map(ScriptedBackend::requests).sum();
    assert_eq!(sent, 2, "tries 2: two endpoints asked, not three");

    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(rauta.who("timeout.example", "/"), "app", "{}", rauta.log());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert!(
        slow.requests() >= 1,
        "the slow endpoint was asked first once"
    );
}

#[test]
fn no_retry_once_response_bytes_reached_the_client() {
    // An interim 103 goes to the client before the 502: nothing may be tried again.
    let hinted = ScriptedBackend::answering(
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 502 Bad Gateway\r\nx-backend: hinted\r\nContent-Length: 0\r\n\r\n",
    );
    let app = Backend::start("app");
    let svc = service_on("app", &[hinted.port, app.port()]);
    let retried = ing(
        "retried",
        &[("proxy-next-upstream", "error timeout http_502")],
        "hints.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &retried]);
    let answers: Vec<String> = (0..4).map(|_| rauta.who("hints.example", "/")).collect();
    let served = answers.iter().filter(|s| *s == "app").count() as u64;
    assert!(
        answers.iter().any(|s| s == "hinted"),
        "{answers:?}\n{}",
        rauta.log()
    );
    assert_eq!(
        app.requests(),
        served,
        "no request reached app as a retry: {answers:?}"
    );
}

/// rauta (one shard unless `extra` says) in front of `app` and a port
/// nothing listens on, without connect retries; `extra` flags.
fn one_dead_of_three(
    extra: &[&str],
) -> (
    (Backend, Backend, rauta_testkit::ManifestDir),
    rauta_testkit::Rauta,
    u16,
) {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let dead = rauta_testkit::free_port();
    let svc = service_on("app", &[a.port(), dead, b.port()]);
    let route = ing("app", &[], "app.example", &[path("/", "Prefix", "app")]);
    let mut args = vec!["--connect-attempts", "1"];
    if !extra.contains(&"--shards") {
        args.extend(["--shards", "1"]);
    }
    args.extend_from_slice(extra);
    let (dir, rauta) = serve_docs_with(&[&svc, &route], &args);
    ((a, b, dir), rauta, dead)
}

/// Failed answers among `n` GETs on one keep-alive connection.
fn failures(rauta: &rauta_testkit::Rauta, n: usize) -> usize {
    let mut conn = rauta_testkit::Conn::open(rauta.addr()).expect("connect");
    (0..n)
        .filter(|_| {
            let r = conn
                .request("GET", "app.example", "/", &[], b"")
                .expect("answer");
            r.status != 200
        })
        .count()
}

#[test]
fn an_endpoint_failing_in_a_row_is_ejected_from_the_picks() {
    // Without retries, every pick of the dead endpoint fails: a third of
    // the requests while it stays in the EndpointSlice.
    let (_keep, off, _) = one_dead_of_three(&["--outlier-consecutive-failures", "0"]);
    assert_eq!(
        failures(&off, 90),
        30,
        "no ejection: one pick in three fails"
    );
    drop(off);

    let (_keep, rauta, dead) = one_dead_of_three(&[]);
    assert_eq!(
        failures(&rauta, 90),
        5,
        "ejected after 5 failures in a row, then never picked"
    );
    let m = rauta.scrape();
    let endpoint = format!("127.0.0.1:{dead}");
    assert_eq!(
        m.value("rauta_outlier_ejections_total", &[]),
        1.0,
        "{}",
        m.text()
    );
    assert_eq!(
        m.value("rauta_upstream_ejected_shards", &[("endpoint", &endpoint)]),
        1.0,
        "{}",
        m.text()
    );
    // The operator sees it where they look for a route's endpoints.
    let ejected_shards = |endpoints: &serde_json::Value, addr: &str| {
        endpoints
            .as_array()
            .and_then(|all| all.iter().find(|e| e["address"] == addr))
            .map(|e| e["ejected_shards"].clone())
    };
    let routes: serde_json::Value =
        serde_json::from_str(&rauta.admin_get("/routes").expect("routes").text()).expect("json");
    let endpoints = &routes["backends"][0]["endpoints"];
    assert_eq!(
        ejected_shards(endpoints, &endpoint),
        Some(1.into()),
        "{routes}"
    );
    let healthy = format!("127.0.0.1:{}", _keep.0.port());
    assert_eq!(
        ejected_shards(endpoints, &healthy),
        Some(0.into()),
        "{routes}"
    );
    let debug: serde_json::Value = serde_json::from_str(
        &rauta
            .admin_get("/debug/route?host=app.example&path=/")
            .expect("debug")
            .text(),
    )
    .expect("json");
    assert_eq!(
        ejected_shards(&debug["endpoints"], &endpoint),
        Some(1.into()),
        "{debug}"
    );
}

#[test]
fn a_shard_that_ejects_an_endpoint_tells_the_others() {
    rauta_testkit::require!(rauta_testkit::Need::Cpus(2));
    let (_keep, rauta, dead) = one_dead_of_three(&["--shards", "2"]);
    // One keep-alive connection: one shard sees every failure.
    assert_eq!(failures(&rauta, 30), 5);
    let endpoint = format!("127.0.0.1:{dead}");
    rauta_testkit::eventually("both shards leave the endpoint out", || {
        let m = rauta.scrape();
        m.value("rauta_upstream_ejected_shards", &[("endpoint", &endpoint)]) == 2.0
    });
    let m = rauta.scrape();
    assert_eq!(
        m.value("rauta_outlier_ejections_total", &[]),
        1.0,
        "one shard decided: {}",
        m.text()
    );
    // The other shard's connections never reach the dead endpoint now.
    for _ in 0..6 {
        assert_eq!(failures(&rauta, 6), 0);
    }
}

#[test]
fn an_ejection_ends_with_its_time_and_a_failed_probe_renews_it() {
    // With a 1 s ejection: the dead endpoint is out, then back on
    // probation, and out again after one failure.
    let (_keep, rauta, _dead) = one_dead_of_three(&["--outlier-ejection-time", "1s"]);
    assert_eq!(failures(&rauta, 30), 5);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        failures(&rauta, 30),
        1,
        "probed once, ejected again for 2 s"
    );
    let m = rauta.scrape();
    assert_eq!(
        m.value("rauta_outlier_ejections_total", &[]),
        2.0,
        "{}",
        m.text()
    );
}

#[test]
fn by_default_a_get_that_timed_out_is_sent_again_elsewhere() {
    // ingress-nginx's default, proxy-next-upstream "error timeout": an
    // idempotent request whose upstream failed before answering goes to
    // another endpoint, within the backend's retry budget.
    let slow = ScriptedBackend::start(Duration::from_secs(3), None);
    let good = Backend::start("good");
    let svc = service_on("app", &[slow.port, good.port()]);
    let route = ing("app", &[], "app.example", &[path("/", "Prefix", "app")]);
    let (_dir, rauta) = serve_docs_with(
        &[&svc, &route],
        &[
            "--shards",
            "1",
            "--upstream-timeout",
            "300ms",
            "--access-log",
        ],
    );
    let mut conn = rauta_testkit::Conn::open(rauta.addr()).expect("connect");
    for i in 0..4 {
        let r = conn
            .request("GET", "app.example", "/", &[], b"")
            .expect("answer");
        assert_eq!((i, r.status, r.header("x-backend")), (i, 200, Some("good")));
    }
    let m = rauta.scrape();
    assert!(
        m.value("rauta_upstream_resends_total", &[]) >= 1.0,
        "{}",
        m.text()
    );
    let timeouts = m.value("rauta_upstream_retries_total", &[("reason", "timeout")]);
    assert!(timeouts >= 1.0, "{}", m.text());
    assert_eq!(
        m.value("rauta_upstream_retries_total", &[]),
        timeouts,
        "no retry for another reason"
    );
    assert_eq!(m.value("rauta_retry_budget_exhausted_total", &[]), 0.0);
    // The access log names the endpoint that timed out, and why.
    let slow_addr = format!("127.0.0.1:{}", slow.port);
    rauta_testkit::eventually("an access-log line with a retry", || {
        rauta.log().lines().any(|l| {
            serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| {
                v["retries"][0]["upstream"] == slow_addr.as_str()
                    && v["retries"][0]["reason"] == "timeout"
                    && v["upstream"] == format!("127.0.0.1:{}", good.port()).as_str()
            })
        })
    });
}

#[test]
fn past_the_backends_request_bound_the_answer_is_503_with_retry_after() {
    let app = Backend::start("app");
    let svc = service_on("app", &[app.port()]);
    let route = ing("app", &[], "app.example", &[path("/", "Prefix", "app")]);
    let (_dir, rauta) = serve_docs_with(
        &[&svc, &route],
        &["--shards", "1", "--backend-max-requests", "2"],
    );
    let addr = rauta.addr();
    // Two slow requests fill the bound...
    let slow: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(addr, "app.example", "/slow?ms=1500")))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // ...so a third is answered at once, and told when to come back.
    let started = Instant::now();
    let r = get(addr, "app.example", "/").expect("answer");
    assert_eq!(r.status, 503, "{}", rauta.log());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(started.elapsed() < Duration::from_secs(1), "not queued");
    for s in slow {
        let r = s.join().expect("thread").expect("answer");
        assert_eq!(r.status, 200, "the requests in flight are served");
    }
    // With room again, requests go through.
    assert_eq!(rauta.who("app.example", "/"), "app");
    let m = rauta.scrape();
    assert_eq!(
        m.value("rauta_errors_total", &[("cause", "backend_overloaded")]),
        1.0,
        "{}",
        m.text()
    );
}

#[test]
fn killing_one_of_three_pods_under_get_load_fails_no_request() {
    let pods = [
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    ];
    let ports: Vec<u16> = pods.iter().map(Backend::port).collect();
    let svc = service_on("app", &ports);
    let route = ing("app", &[], "app.example", &[path("/", "Prefix", "app")]);
    let (_dir, rauta) = serve_docs_with(&[&svc, &route], &["--shards", "2"]);
    let addr = rauta.addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Eight keep-alive clients send GETs, slow ones among them so that
    // requests are in flight on the pod when it dies.
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut conn = rauta_testkit::Conn::open(addr).expect("connect");
                let target = if i % 2 == 0 { "/slow?ms=20" } else { "/" };
                let (mut sent, mut failed) = (0, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    sent += 1;
                    match conn.request("GET", "app.example", target, &[], b"") {
                        Ok(r) if r.status == 200 => {}
                        Ok(r) => failed.push(format!("status {}", r.status)),
                        Err(e) => {
                            failed.push(format!("{e}"));
                            conn = rauta_testkit::Conn::open(addr).expect("reconnect");
                        }
                    }
                }
                (sent, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    pods[1].stop();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent = 0;
    let mut failed = Vec::new();
    for c in clients {
        let (s, f) = c.join().expect("client");
        sent += s;
        failed.extend(f);
    }
    assert!(sent > 200, "a load ran: {sent} requests");
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {failed:?}\n{}",
        failed.len(),
        rauta.log()
    );
    // The dead pod was left: the node stopped sending there.
    let m = rauta.scrape();
    let endpoint = format!("127.0.0.1:{}", ports[1]);
    assert_eq!(
        m.value("rauta_upstream_ejected_shards", &[("endpoint", &endpoint)]),
        2.0,
        "every shard left the dead pod out\n{}",
        m.text()
    );
}

#[test]
fn a_backend_sending_an_endless_response_head_gets_502_at_the_head_limit() {
    // 8 MiB of header lines and never the empty line that ends a head:
    // rauta stops reading at its head limit rather than buffering them.
    let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
    while endless.len() < 8 << 20 {
        endless
            .extend_from_slice(b"x-filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let bad = rauta_testkit::ScriptedBackend::answering(&endless);
    let svc = service_on("app", &[bad.port]);
    let route = ing(
        "app",
        &[("proxy-next-upstream", "off")],
        "app.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &route]);
    for _ in 0..5 {
        let r = get(rauta.addr(), "app.example", "/").expect("answer");
        assert_eq!(r.status, 502, "{}", rauta.log());
    }
    let m = rauta.scrape();
    assert_eq!(
        m.value("rauta_errors_total", &[("cause", "upstream_protocol")]),
        5.0,
        "{}",
        m.text()
    );
}
