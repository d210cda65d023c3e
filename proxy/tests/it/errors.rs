//! Failures and bad input through the real binary: each answer status,
//! smuggling shapes, slow clients, connect failures and retries.

use crate::common::{service, start};
use rauta_testkit::manifests::join;
use rauta_testkit::rauta_class;
use rauta_testkit::{
    endpoint_slice, ingress, raw_exchange, status_of, Backend, Conn, EndpointSpec, ManifestDir,
    Rauta,
};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(3);

/// rauta with host `ok.example` -> a live backend, `empty.example` -> a
/// Service without endpoints, `dead.example` -> an endpoint nobody listens on.
fn setup(extra: &[&str]) -> (Rauta, Backend, ManifestDir) {
    let (backend, svc) = service("e", "live");
    let empty = join(&[
        &rauta_testkit::service("e", "empty", &[(Some("http"), 80, 9)]),
        &endpoint_slice("e", "empty-1", "empty", &[(Some("http"), 9)], &[]),
    ]);
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dead = join(&[
        &rauta_testkit::service("e", "dead", &[(Some("http"), 80, dead_port)]),
        &endpoint_slice(
            "e",
            "dead-1",
            "dead",
            &[(Some("http"), dead_port)],
            &[EndpointSpec::ready("127.0.0.1")],
        ),
    ]);
    let rule = |host: &str, svc: &str| {
        format!("- host: {host}\n  http:\n    paths:\n    - path: /\n      pathType: Prefix\n      backend:\n        service:\n          name: {svc}\n          port:\n            name: http\n")
    };
    let rules = [
        rule("ok.example", "live"),
        rule("empty.example", "empty"),
        rule("dead.example", "dead"),
    ]
    .concat();
    let ing = ingress("e", "errors", Some("rauta"), &[], &rules);
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[&rauta_class(), &svc, &empty, &dead, &ing]),
    );
    (start(&dir, extra), backend, dir)
}

fn status(rauta: &Rauta, raw: &[u8]) -> Option<u16> {
    status_of(&raw_exchange(rauta.addr(), raw, WAIT).expect("exchange"))
}

#[test]
fn every_failure_has_its_status() {
    let (rauta, _backend, _dir) =
        setup(&["--max-body-bytes", "1000", "--upstream-timeout", "500ms"]);
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: ok.example\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: ok.example\r\n{}\r\n",
        "X-H: 1\r\n".repeat(101)
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed request line", b"GARBAGE\r\n\r\n".to_vec(), 400),
        ("missing host", b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("bad host", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(), 400),
        ("no route", b"GET / HTTP/1.1\r\nHost: nowhere.example\r\nConnection: close\r\n\r\n".to_vec(), 404),
        ("CONNECT", b"CONNECT ok.example:443 HTTP/1.1\r\nHost: ok.example\r\n\r\n".to_vec(), 405),
        ("body over the limit", b"POST / HTTP/1.1\r\nHost: ok.example\r\nContent-Length: 2000\r\n\r\n".to_vec(), 413),
        ("chunked body over the limit", format!("POST / HTTP/1.1\r\nHost: ok.example\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n{}\r\n0\r\n\r\n", "x".repeat(2000)).into_bytes(), 413),
        ("chunk extensions carrying what the limit forbids", format!("POST / HTTP/1.1\r\nHost: ok.example\r\nTransfer-Encoding: chunked\r\n\r\n{}0\r\n\r\n", format!("1;{}\r\nx\r\n", "e".repeat(400)).repeat(3)).into_bytes(), 413),
        ("a trailer that is a request line", b"POST / HTTP/1.1\r\nHost: ok.example\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nGET /admin HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("unknown expectation", b"GET / HTTP/1.1\r\nHost: ok.example\r\nExpect: magic\r\n\r\n".to_vec(), 417),
        ("head over 64 KiB", big_header.into_bytes(), 431),
        ("too many headers", many_headers.into_bytes(), 431),
        ("unknown transfer coding", b"POST / HTTP/1.1\r\nHost: ok.example\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), 501),
        ("connect refused", b"GET / HTTP/1.1\r\nHost: dead.example\r\nConnection: close\r\n\r\n".to_vec(), 502),
        ("no endpoints", b"GET / HTTP/1.1\r\nHost: empty.example\r\nConnection: close\r\n\r\n".to_vec(), 503),
        ("upstream too slow", b"GET /slow?ms=3000 HTTP/1.1\r\nHost: ok.example\r\nConnection: close\r\n\r\n".to_vec(), 504),
        ("upstream never answers", b"GET /hang HTTP/1.1\r\nHost: ok.example\r\nConnection: close\r\n\r\n".to_vec(), 504),
    ];
    let mut failures = Vec::new();
    for (what, raw, want) in &cases {
        let got = status(&rauta, raw);
        if got != Some(*want) {
            failures.push(format!("{what}: want {want}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nlog:\n{}",
        failures.join("\n"),
        rauta.log()
    );
}

#[test]
fn smuggling_shapes_are_rejected_before_reaching_a_backend() {
    let (rauta, backend, _dir) = setup(&[]);
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: ok.example\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: ok.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: ok.example\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        b"POST / HTTP/1.1\r\nHost: ok.example\r\nContent-Length: 4, 5\r\n\r\nabcde",
        b"POST / HTTP/1.1\r\nHost: ok.example\r\nContent-Length: +4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: ok.example\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: ok.example\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.0\r\nHost: ok.example\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: ok.example\r\nHost: evil.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: ok.example\r\nX-Folded: a\r\n b\r\n\r\n",
    ];
    for raw in cases {
        let got = status(&rauta, raw);
        assert!(
            matches!(got, Some(400 | 501)),
            "{:?} got {got:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(
        backend.requests(),
        0,
        "no smuggling shape may reach the backend"
    );
    // A bad chunk size is found while streaming: the client gets 400 and
    // its connection is closed.
    let raw = b"POST / HTTP/1.1\r\nHost: ok.example\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: ok.example\r\n\r\n";
    let out = raw_exchange(rauta.addr(), raw, WAIT).expect("exchange");
    assert_eq!(status_of(&out), Some(400));
    assert!(
        !String::from_utf8_lossy(&out).contains("path=/smuggled"),
        "the smuggled request must not be served"
    );
    assert!(backend.last_request().is_none_or(|r| r.path != "/smuggled"));
}

#[test]
fn a_malformed_request_closes_only_its_own_connection() {
    let (rauta, _backend, _dir) = setup(&[]);
    let mut good = Conn::open(rauta.addr()).expect("connect");
    assert_eq!(
        good.request("GET", "ok.example", "/", &[], b"")
            .expect("first")
            .status,
        200
    );
    let mut bad = Conn::open(rauta.addr()).expect("connect");
    bad.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
        .expect("send");
    assert_eq!(bad.read_response(false).expect("answer").status, 400);
    assert!(bad.is_closed_by_peer(WAIT));
    assert_eq!(
        good.request("GET", "ok.example", "/", &[], b"")
            .expect("still served")
            .status,
        200
    );
}

#[test]
fn keep_alive_survives_routing_errors_without_body() {
    let (rauta, _backend, _dir) = setup(&[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    assert_eq!(
        conn.request("GET", "nowhere.example", "/", &[], b"")
            .expect("404")
            .status,
        404
    );
    assert_eq!(
        conn.request("GET", "empty.example", "/", &[], b"")
            .expect("503")
            .status,
        503
    );
    assert_eq!(
        conn.request("GET", "ok.example", "/", &[], b"")
            .expect("then 200")
            .status,
        200
    );
}

#[test]
fn slow_and_idle_clients_are_timed_out() {
    let (rauta, _backend, _dir) =
        setup(&["--header-read-timeout", "500ms", "--idle-timeout", "1s"]);
    let started = Instant::now();
    let out = raw_exchange(
        rauta.addr(),
        b"GET / HTTP/1.1\r\nHost: ok.exa",
        Duration::from_secs(5),
    )
    .expect("exchange");
    assert_eq!(
        status_of(&out),
        Some(408),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the header deadline is not per read"
    );
    // Trickling bytes does not extend the header deadline.
    let mut slow = std::net::TcpStream::connect(rauta.addr()).expect("connect");
    slow.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let started = Instant::now();
    let mut answer = Vec::new();
    for b in b"GET / HTTP/1.1\r\nHost: ok.example\r\nX-Slow: "
        .iter()
        .cycle()
        .take(200)
    {
        if slow.write_all(&[*b]).is_err() {
            break;
        }
        let mut piece = [0u8; 1024];
        match slow.read(&mut piece) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&piece[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
        if !answer.is_empty() {
            break;
        }
    }
    assert_eq!(
        status_of(&answer),
        Some(408),
        "slow-loris client kept its slot"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // An idle keep-alive connection is closed after the idle timeout.
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    assert_eq!(
        conn.request("GET", "ok.example", "/", &[], b"")
            .expect("served")
            .status,
        200
    );
    assert!(
        conn.is_closed_by_peer(Duration::from_secs(3)),
        "idle connection not closed"
    );
}

#[test]
fn connect_failure_is_retried_on_another_endpoint() {
    let live = Backend::start("live");
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let svc = rauta_testkit::service("r", "mixed", &[(Some("http"), 80, live.port())]);
    let ok = endpoint_slice(
        "r",
        "mixed-live",
        "mixed",
        &[(Some("http"), live.port())],
        &[EndpointSpec::ready("127.0.0.1")],
    );
    let bad = endpoint_slice(
        "r",
        "mixed-dead",
        "mixed",
        &[(Some("http"), dead_port)],
        &[EndpointSpec::ready("127.0.0.1")],
    );
    let ing = ingress(
        "r",
        "mixed",
        Some("rauta"),
        &[],
        "defaultBackend:\n  service:\n    name: mixed\n    port:\n      name: http\n",
    );
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&[&rauta_class(), &svc, &ok, &bad, &ing]));
    let rauta = start(&dir, &[]);
    for _ in 0..20 {
        let r = rauta_testkit::client::request(rauta.addr(), "POST", "any", "/", &[], b"payload")
            .expect("response");
        assert_eq!(
            r.status,
            200,
            "a refused connect must be retried elsewhere: {}",
            r.text()
        );
    }
    assert_eq!(live.requests(), 20);
}

#[test]
fn a_stale_pooled_connection_is_replaced_transparently() {
    // The upstream closes keep-alive connections after 100 ms idle, as a
    // backend with a short keepalive timeout (or a restarting pod) does.
    let upstream =
        rauta_testkit::ScriptedBackend::start(Duration::ZERO, Some(Duration::from_millis(100)));
    let svc = rauta_testkit::service("s", "short", &[(Some("http"), 80, upstream.port)]);
    let slice = endpoint_slice(
        "s",
        "short-1",
        "short",
        &[(Some("http"), upstream.port)],
        &[EndpointSpec::ready("127.0.0.1")],
    );
    let ing = ingress(
        "s",
        "short",
        Some("rauta"),
        &[],
        "defaultBackend:\n  service:\n    name: short\n    port:\n      name: http\n",
    );
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&[&rauta_class(), &svc, &slice, &ing]));
    let rauta = start(&dir, &["--shards", "1"]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    for _ in 0..5 {
        assert_eq!(
            conn.request("GET", "any", "/", &[], b"")
                .expect("served")
                .status,
            200
        );
        std::thread::sleep(Duration::from_millis(250)); // pacing: outlast the upstream's idle close
    }
    assert_eq!(upstream.requests(), 5);
    assert_eq!(
        upstream.accepted(),
        5,
        "each request needed a fresh upstream connection"
    );
}

#[test]
fn garbage_and_mutated_requests_never_take_the_proxy_down() {
    let (mut rauta, _backend, _dir) = setup(&["--header-read-timeout", "300ms"]);
    let valid = b"POST /echo-body HTTP/1.1\r\nHost: ok.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let addr = rauta.addr();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let inputs: Vec<Vec<u8>> = (0..30)
                .map(|i| {
                    let mut raw = valid.to_vec();
                    if i % 4 == 0 {
                        // Pure noise.
                        raw = (0..(next() % 300)).map(|_| next() as u8).collect();
                    } else {
                        // A valid request with a few bytes flipped, cut or inserted.
                        for _ in 0..(1 + next() % 4) {
                            let at = (next() as usize) % raw.len();
                            match next() % 3 {
                                0 => raw[at] = next() as u8,
                                1 => raw.truncate(at.max(1)),
                                _ => raw.insert(at, next() as u8),
                            }
                        }
                    }
                    raw
                })
                .collect();
            std::thread::spawn(move || {
                for raw in inputs {
                    let _ = raw_exchange(addr, &raw, Duration::from_millis(400));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    assert!(
        rauta.try_exit().is_none(),
        "rauta died; log:\n{}",
        rauta.log()
    );
    assert!(
        !rauta.log().contains("panicked"),
        "a task panicked:\n{}",
        rauta.log()
    );
    let r = rauta_testkit::get(rauta.addr(), "ok.example", "/").expect("still serving");
    assert_eq!(r.status, 200);
}

#[test]
fn an_oversized_body_gets_413_while_it_is_still_streaming() {
    let (rauta, backend, _dir) = setup(&["--max-body-bytes", "1000"]);
    // The whole body is on its way when rauta answers 413 and closes (with
    // a lingering close, so the unread body cannot reset the answer away).
    let mut raw =
        b"POST / HTTP/1.1\r\nHost: ok.example\r\nContent-Length: 2000000\r\n\r\n".to_vec();
    raw.extend_from_slice(&vec![b'x'; 2_000_000]);
    for _ in 0..5 {
        let out = raw_exchange(rauta.addr(), &raw, WAIT).expect("exchange");
        assert_eq!(
            status_of(&out),
            Some(413),
            "{}",
            String::from_utf8_lossy(&out[..out.len().min(200)])
        );
    }
    assert_eq!(backend.requests(), 0);
}
