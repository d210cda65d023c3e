//! HTTP/1.1 proxying through the real binary: keep-alive and pooling,
//! bodies, pipelining, HTTP/1.0, 100-continue, headers, WebSocket.

use crate::common::{service, start};
use rauta_testkit::manifests::join;
use rauta_testkit::rauta_class;
use rauta_testkit::{ingress, is_pattern, pattern, xxh3, Backend, Conn, ManifestDir, Rauta};
use std::io::{Read, Write};
use std::time::Duration;

/// rauta in front of one backend for every host and path.
fn proxy_to(name: &str, extra: &[&str]) -> (Rauta, Backend, ManifestDir) {
    let (backend, svc) = service("app", name);
    let ing = ingress(
        "app",
        "all",
        Some("rauta"),
        &[],
        &format!("defaultBackend:\n  service:\n    name: {name}\n    port:\n      name: http\n"),
    );
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&[&rauta_class(), &svc, &ing]));
    (start(&dir, extra), backend, dir)
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("number")
}

#[test]
fn upstream_connections_are_pooled_and_reused() {
    let (rauta, backend, _dir) = proxy_to("pooled", &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    for _ in 0..50 {
        assert_eq!(
            conn.request("GET", "a.example", "/", &[], b"")
                .expect("response")
                .status,
            200
        );
    }
    for _ in 0..30 {
        assert_eq!(
            rauta_testkit::get(rauta.addr(), "a.example", "/")
                .expect("response")
                .status,
            200
        );
    }
    assert_eq!(backend.requests(), 80);
    // Each shard keeps its own pool: at most one upstream connection per
    // shard for strictly sequential traffic.
    assert!(
        backend.accepted() <= 2,
        "{} upstream connections for 80 sequential requests",
        backend.accepted()
    );
}

#[test]
fn chunked_bodies_both_ways() {
    let (rauta, backend, _dir) = proxy_to("chunky", &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    let data = pattern(300_000);
    let mut raw =
        b"POST /echo-body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in data.chunks(7_001) {
        raw.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\nX-Trailer: yes\r\n\r\n");
    conn.send(&raw).expect("send");
    let r = conn.read_response(false).expect("response");
    assert_eq!(r.status, 200);
    assert!(
        r.body == data,
        "echoed body differs ({} bytes back)",
        r.body.len()
    );
    let seen = backend.last_request().expect("request seen");
    assert_eq!((seen.body_len, seen.body_xxh3), (data.len(), xxh3(&data)));

    let r = conn
        .request("GET", "a", "/chunked?n=250000&size=3333", &[], b"")
        .expect("response");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body.len(), 250_000);
    assert!(is_pattern(&r.body));
    // Still usable afterwards: framing was followed exactly.
    assert_eq!(
        conn.request("GET", "a", "/", &[], b"")
            .expect("response")
            .status,
        200
    );
}

#[test]
fn ten_megabyte_bodies_stream_with_bounded_memory() {
    let (rauta, backend, _dir) = proxy_to("big", &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    conn.set_timeout(Duration::from_secs(30)).expect("timeout");
    // Warm up, then take the peak RSS as the baseline.
    assert_eq!(
        conn.request("GET", "a", "/bytes?n=100000", &[], b"")
            .expect("warm")
            .status,
        200
    );
    let base = peak_rss_kib(rauta.pid());
    let ten = 10 * 1024 * 1024;
    let r = conn
        .request("GET", "a", &format!("/bytes?n={ten}"), &[], b"")
        .expect("download");
    assert_eq!(r.body.len(), ten);
    assert!(is_pattern(&r.body));
    let upload = pattern(ten);
    let r = conn
        .request("POST", "a", "/", &[], &upload)
        .expect("upload");
    assert_eq!(r.status, 200);
    let seen = backend.last_request().expect("seen");
    assert_eq!((seen.body_len, seen.body_xxh3), (ten, xxh3(&upload)));
    let grown = peak_rss_kib(rauta.pid()).saturating_sub(base);
    assert!(
        grown < 4 * 1024,
        "peak RSS grew by {grown} KiB while relaying 20 MiB"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (rauta, _backend, _dir) = proxy_to("pipe", &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    let mut raw = Vec::new();
    for i in 0..8 {
        raw.extend_from_slice(format!("GET /req/{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        if i == 3 {
            raw.extend_from_slice(
                b"POST /with-body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            );
        }
    }
    conn.send(&raw).expect("send all at once");
    let mut order = Vec::new();
    for _ in 0..9 {
        let r = conn.read_response(false).expect("response");
        let path = r
            .text()
            .lines()
            .find_map(|l| l.strip_prefix("path=").map(str::to_string))
            .expect("path line");
        order.push(path);
    }
    let want: Vec<String> = (0..8)
        .flat_map(|i| {
            let mut v = vec![format!("/req/{i}")];
            if i == 3 {
                v.push("/with-body".into());
            }
            v
        })
        .collect();
    assert_eq!(order, want);
}

#[test]
fn http10_clients_get_what_they_understand() {
    let (rauta, _backend, _dir) = proxy_to("old", &[]);
    // Without keep-alive: one response, then close.
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    conn.send(b"GET /x HTTP/1.0\r\nHost: a\r\n\r\n")
        .expect("send");
    let r = conn.read_response(false).expect("response");
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("version=1.1"),
        "upstream speaks HTTP/1.1: {}",
        r.text()
    );
    assert!(conn.is_closed_by_peer(Duration::from_secs(2)));
    // With keep-alive: told so, and the connection stays.
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    conn.send(b"GET /x HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        .expect("send");
    let r = conn.read_response(false).expect("response");
    assert_eq!(r.header("connection"), Some("keep-alive"));
    conn.send(b"GET /y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .expect("send without Host");
    assert_eq!(conn.read_response(false).expect("second").status, 200);
    // A chunked upstream answer is decoded and delimited by close.
    conn.send(b"GET /chunked?n=5000 HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        .expect("send");
    let r = conn.read_response(false).expect("response");
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.body.len(), 5000);
    assert!(is_pattern(&r.body));
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let (rauta, backend, _dir) = proxy_to("expect", &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    conn.send(
        b"PUT /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
    )
    .expect("head");
    let interim = conn.read_response(false).expect("interim");
    assert_eq!(interim.status, 100);
    conn.send(b"hello world").expect("body");
    let r = conn.read_response(false).expect("final");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("body-len=11"));
    assert_eq!(backend.last_request().expect("seen").header("expect"), None);
}

#[test]
fn headers_are_forwarded_added_and_stripped() {
    let (rauta, backend, _dir) = proxy_to("hdr", &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    let r = conn
        .request(
            "GET",
            "Shop.Example:8443",
            "/h",
            &[
                ("Connection", "keep-alive, X-Hop"),
                ("X-Hop", "secret"),
                ("Keep-Alive", "timeout=5"),
                ("X-Forwarded-For", "203.0.113.9"),
                ("X-Forwarded-Proto", "https"),
                ("X-Custom", "kept"),
            ],
            b"",
        )
        .expect("response");
    assert_eq!(r.status, 200);
    let seen = backend.last_request().expect("seen");
    assert_eq!(
        seen.header("x-hop"),
        None,
        "headers named in Connection are hop-by-hop"
    );
    assert_eq!(seen.header("keep-alive"), None);
    assert_eq!(seen.header("x-custom"), Some("kept"));
    assert_eq!(seen.header("host"), Some("Shop.Example:8443"));
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(
        seen.header("x-forwarded-proto"),
        Some("http"),
        "the client cannot claim https"
    );
    assert_eq!(seen.header("x-forwarded-host"), Some("Shop.Example:8443"));
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    let id = seen
        .header("x-request-id")
        .expect("request id added")
        .to_string();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    conn.request("GET", "a", "/h", &[], b"").expect("second");
    let next = backend
        .last_request()
        .expect("seen")
        .header("x-request-id")
        .map(str::to_string);
    assert_ne!(next.as_deref(), Some(id.as_str()), "ids are unique");
    conn.request("GET", "a", "/h", &[("X-Request-Id", "from-client")], b"")
        .expect("third");
    assert_eq!(
        backend.last_request().expect("seen").header("x-request-id"),
        Some("from-client")
    );
}

#[test]
fn head_204_304_and_close_delimited_framing() {
    let (rauta, _backend, _dir) = proxy_to("framing", &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    let r = conn
        .request("HEAD", "a", "/bytes?n=1000", &[], b"")
        .expect("head");
    assert_eq!(
        (r.status, r.header("content-length"), r.body.len()),
        (200, Some("1000"), 0)
    );
    assert_eq!(
        conn.request("GET", "a", "/status/204", &[], b"")
            .expect("204")
            .status,
        204
    );
    assert_eq!(
        conn.request("GET", "a", "/status/304", &[], b"")
            .expect("304")
            .status,
        304
    );
    let r = conn
        .request("GET", "a", "/bytes?n=10", &[], b"")
        .expect("after no-body answers");
    assert_eq!(
        r.body.len(),
        10,
        "framing kept in step after bodiless answers"
    );
    let r = conn
        .request("GET", "a", "/close-delimited?n=70000", &[], b"")
        .expect("close-delimited");
    assert_eq!(r.body.len(), 70_000);
    assert!(is_pattern(&r.body));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(conn.is_closed_by_peer(Duration::from_secs(2)));
}

#[test]
fn websocket_echo_through_the_tunnel() {
    let (rauta, _backend, _dir) = proxy_to("ws", &[]);
    let stream = std::net::TcpStream::connect(rauta.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let url = format!("ws://{}/ws", rauta.addr());
    let (mut ws, resp) =
        tungstenite::client::client(url.as_str(), stream).expect("handshake through the proxy");
    assert_eq!(resp.status(), 101);
    crate::common::websocket_echoes(&mut ws, 5, 200_000);
}

#[test]
fn a_plain_websocket_tunnel_is_spliced_in_the_kernel() {
    rauta_testkit::require!(
        rauta_testkit::Need::EbpfPrivilege,
        crate::xdp_util::ebpf_object()
    );
    let (rauta, _backend, _dir) = proxy_to("ws", &["--l4-splice", "auto"]);
    let stream = std::net::TcpStream::connect(rauta.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let url = format!("ws://{}/ws", rauta.addr());
    let (mut ws, _) = tungstenite::client::client(url.as_str(), stream).expect("handshake");
    crate::common::websocket_echoes(&mut ws, 5, 2_000_000);
    // The 2 MB message went both ways through the kernel, not rauta.
    let moved = rauta.scrape().value("rauta_l4_splice_bytes_total", &[]);
    assert!(moved >= 4_000_000.0, "the kernel moved only {moved} bytes");
}

#[test]
fn many_concurrent_clients() {
    let (rauta, backend, _dir) = proxy_to("busy", &[]);
    let addr = rauta.addr();
    let clients: Vec<_> = (0..16)
        .map(|c| {
            std::thread::spawn(move || {
                let mut conn = Conn::open(addr).expect("connect");
                for i in 0..50 {
                    let body = format!("client {c} request {i}");
                    let r = conn
                        .request("POST", "a", "/echo-body", &[], body.as_bytes())
                        .expect("response");
                    assert_eq!(r.text(), body);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    assert_eq!(backend.requests(), 800);
    // Raw read of the admin port stays responsive under load.
    let mut s = std::net::TcpStream::connect(rauta.admin_addr()).expect("admin");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}
