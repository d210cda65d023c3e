//! Self-tests of the testkit: the backend against the client, the gRPC
//! peers against each other, the HTTPS backend against rustls clients (no
//! proxy).

use std::net::TcpStream;
use std::time::Duration;

use rauta_testkit::client::{self, raw_exchange, status_of, Conn};
use rauta_testkit::grpc::{self, GrpcServer};
use rauta_testkit::https::{self, HttpsBackend};
use rauta_testkit::{eventually, is_pattern, pattern, tls, xxh3, xxh3_hex, Backend};

#[test]
fn get_default_describes_request() {
    let b = Backend::start("alpha");
    let resp = client::get(b.addr(), "example.test", "/some/path?x=1").expect("get");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("X-Backend"), Some("alpha"));
    assert_eq!(resp.header("content-type"), Some("text/plain"));
    let text = resp.text();
    assert!(
        text.starts_with(
            "backend=alpha\nmethod=GET\npath=/some/path?x=1\nversion=1.1\nbody-len=0\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("body-xxh3={}\n", xxh3_hex(b""))),
        "{text}"
    );
    assert!(text.contains("h:host=example.test\n"), "{text}");
    assert!(text.contains("h:connection=close\n"), "{text}");
    let last = b.last_request().expect("recorded");
    assert_eq!(last.method, "GET");
    assert_eq!(last.path, "/some/path?x=1");
    assert_eq!(last.version, 1);
    assert_eq!(last.header("HOST"), Some("example.test"));
    assert_eq!(last.body_len, 0);
    assert_eq!(b.requests(), 1);
    assert_eq!(b.accepted(), 1);
}

#[test]
fn keep_alive_reuses_one_connection() {
    let b = Backend::start("ka");
    let mut c = Conn::open(b.addr()).expect("open");
    for _ in 0..2 {
        let resp = c.request("GET", "h", "/", &[], &[]).expect("request");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("connection"), None);
    }
    assert_eq!(b.accepted(), 1);
    assert_eq!(b.requests(), 2);
    assert!(!c.is_closed_by_peer(Duration::from_millis(50)));
    // Connection: close is honoured.
    let resp = c
        .request("GET", "h", "/", &[("Connection", "close")], &[])
        .expect("request");
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(c.is_closed_by_peer(Duration::from_secs(2)));
}

#[test]
fn pipelined_requests_and_http10() {
    let b = Backend::start("pipe");
    let mut c = Conn::open(b.addr()).expect("open");
    c.send(b"GET /status/201 HTTP/1.1\r\nHost: h\r\n\r\nHEAD /bytes?n=10 HTTP/1.1\r\nHost: h\r\n\r\nGET /status/204 HTTP/1.1\r\nHost: h\r\n\r\n")
        .expect("send");
    let r1 = c.read_response(false).expect("r1");
    assert_eq!(
        (r1.status, r1.text().as_str()),
        (201, "status 201 from pipe\n")
    );
    let r2 = c.read_response(true).expect("r2");
    assert_eq!((r2.status, r2.header("content-length")), (200, Some("10")));
    assert!(r2.body.is_empty());
    let r3 = c.read_response(false).expect("r3");
    assert_eq!(r3.status, 204);
    assert_eq!(b.accepted(), 1);

    // HTTP/1.0 without keep-alive closes.
    let raw =
        raw_exchange(b.addr(), b"GET /x HTTP/1.0\r\n\r\n", Duration::from_secs(5)).expect("raw");
    assert_eq!(status_of(&raw), Some(200));
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("version=1.0\n"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
}

#[test]
fn chunked_request_body_is_decoded_and_echoed() {
    let b = Backend::start("echo");
    let mut c = Conn::open(b.addr()).expect("open");
    c.send(b"POST /echo-body HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        .expect("send");
    let resp = c.read_response(false).expect("response");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"hello world");
    let last = b.last_request().expect("recorded");
    assert_eq!(last.body_len, 11);
    assert_eq!(last.body_xxh3, xxh3(b"hello world"));

    // Content-Length body via request().
    let body = pattern(100_000);
    let resp = c
        .request("PUT", "h", "/echo-body", &[], &body)
        .expect("put");
    assert_eq!(resp.body, body);

    // Malformed chunked → 400 and close.
    let mut bad = Conn::open(b.addr()).expect("open");
    bad.send(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .expect("send");
    let resp = bad.read_response(false).expect("400");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.header("x-backend"), Some("echo"));
    assert!(bad.is_closed_by_peer(Duration::from_secs(2)));
}

#[test]
fn downloads_bytes_chunked_close_delimited() {
    let b = Backend::start("dl");
    let n = 1_000_003;
    let resp = client::get(b.addr(), "h", &format!("/bytes?n={n}")).expect("bytes");
    assert_eq!(resp.header("content-length"), Some("1000003"));
    assert_eq!(resp.body.len(), n);
    assert!(is_pattern(&resp.body));

    let mut c = Conn::open(b.addr()).expect("open");
    let resp = c
        .request("GET", "h", "/chunked?n=250000&size=777", &[], &[])
        .expect("chunked");
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert_eq!(resp.body.len(), 250_000);
    assert!(is_pattern(&resp.body));
    let resp = c
        .request("GET", "h", "/chunked?n=5", &[], &[])
        .expect("chunked again");
    assert_eq!(resp.body, pattern(5));

    let resp = c
        .request("GET", "h", "/close-delimited?n=70000", &[], &[])
        .expect("close-delimited");
    assert_eq!(resp.header("content-length"), None);
    assert_eq!(resp.header("transfer-encoding"), None);
    assert_eq!(resp.body.len(), 70_000);
    assert!(is_pattern(&resp.body));
    assert_eq!(b.accepted(), 2);
}

#[test]
fn head_has_length_but_no_body() {
    let b = Backend::start("head");
    let mut c = Conn::open(b.addr()).expect("open");
    let get = c.request("GET", "h", "/", &[], &[]).expect("get");
    let head = c.request("HEAD", "h", "/", &[], &[]).expect("head");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let len: usize = head
        .header("content-length")
        .expect("length")
        .parse()
        .expect("number");
    // Same request apart from the method line.
    assert_eq!(len, get.body.len() + 1);
    let after = c
        .request("GET", "h", "/status/503", &[], &[])
        .expect("after head");
    assert_eq!(after.status, 503);
}

#[test]
fn bad_requests_and_stop() {
    let b = Backend::start("bad");
    let raw =
        raw_exchange(b.addr(), b"NOT HTTP AT ALL\r\n\r\n", Duration::from_secs(5)).expect("raw");
    assert_eq!(status_of(&raw), Some(400));
    let resp = client::get(b.addr(), "h", "/status/999").expect("bad status");
    assert_eq!(resp.status, 400);
    let resp = client::get(b.addr(), "h", "/bytes").expect("missing n");
    assert_eq!(resp.status, 400);

    let addr = b.addr();
    let mut idle = Conn::open(addr).expect("open");
    idle.request("GET", "h", "/", &[], &[]).expect("first");
    b.stop();
    assert!(
        TcpStream::connect(addr).is_err(),
        "listener still open after stop"
    );
    // Open connections were shut down before stop() returned.
    assert!(
        idle.request("GET", "h", "/", &[], &[]).is_err(),
        "a connection of a stopped backend still answers"
    );
    // The port can be reused.
    let again = Backend::start_on("again", addr);
    let resp = client::get(again.addr(), "h", "/").expect("restarted");
    assert_eq!(resp.header("x-backend"), Some("again"));
}

#[test]
fn slow_and_hang() {
    let b = Backend::start("slow");
    let start = std::time::Instant::now();
    let resp = client::get(b.addr(), "h", "/slow?ms=200").expect("slow");
    assert_eq!(resp.status, 200);
    assert!(start.elapsed() >= Duration::from_millis(200));
    let raw = raw_exchange(
        b.addr(),
        b"GET /hang HTTP/1.1\r\nHost: h\r\n\r\n",
        Duration::from_millis(300),
    )
    .expect("hang");
    assert!(raw.is_empty());
    assert_eq!(b.last_request().expect("recorded").path, "/hang");
}

#[test]
fn websocket_echo() {
    let b = Backend::start("ws");
    let url = format!("ws://{}/ws", b.addr());
    let (mut ws, resp) = tungstenite::connect(url.as_str()).expect("ws connect");
    assert_eq!(resp.status().as_u16(), 101);
    assert_eq!(
        resp.headers()
            .get("x-backend")
            .and_then(|v| v.to_str().ok()),
        Some("ws")
    );
    ws.send(tungstenite::Message::text("hello"))
        .expect("send text");
    assert_eq!(
        ws.read().expect("read").into_text().expect("text").as_str(),
        "hello"
    );
    ws.send(tungstenite::Message::binary(vec![1u8, 2, 3]))
        .expect("send binary");
    assert_eq!(ws.read().expect("read").into_data().as_ref(), &[1u8, 2, 3]);
    ws.close(None).expect("close");
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unexpected close error: {e}"),
        }
    }
    // A frame sent in the same write as the handshake request is not lost.
    let mut raw = b"GET /ws/x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".to_vec();
    let mask = [1u8, 2, 3, 4];
    raw.extend_from_slice(&[0x81, 0x80 | 2]);
    raw.extend_from_slice(&mask);
    raw.extend(b"hi".iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    let out = raw_exchange(b.addr(), &raw, Duration::from_millis(500)).expect("raw ws");
    let text = String::from_utf8_lossy(&out);
    assert_eq!(status_of(&out), Some(101), "{text}");
    assert!(text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{text}");
    assert!(out.ends_with(&[0x81, 2, b'h', b'i']), "{out:?}");
}

#[test]
fn ten_megabytes_each_way() {
    let b = Backend::start("big");
    let n = 10 * 1024 * 1024;
    let mut c = Conn::open(b.addr()).expect("open");
    let resp = c
        .request("GET", "h", &format!("/bytes?n={n}"), &[], &[])
        .expect("bytes");
    assert_eq!(resp.body.len(), n);
    assert!(is_pattern(&resp.body));
    let resp = c
        .request("GET", "h", &format!("/chunked?n={n}"), &[], &[])
        .expect("chunked");
    assert_eq!(resp.body.len(), n);
    assert!(is_pattern(&resp.body));
    let body = pattern(n);
    let resp = c
        .request("POST", "h", "/echo-body", &[], &body)
        .expect("upload");
    assert!(resp.body == body);
    assert_eq!(b.last_request().expect("recorded").body_xxh3, xxh3(&body));
}

#[test]
fn grpc_peers_unary_streams_and_status() {
    rauta_testkit::require!(grpc::need());
    let server = GrpcServer::start();
    let call = |args: &[&str]| grpc::call(server.addr(), "echo.test", args);

    let out = call(&["unary", "hello"]);
    assert_eq!(out["code"], "OK", "{out}");
    assert_eq!(out["responses"], serde_json::json!(["hello"]), "{out}");
    assert_eq!(out["initial_metadata"]["x-echo-header"], "hi", "{out}");
    assert_eq!(out["trailing_metadata"]["x-echo-trailer"], "done", "{out}");

    // An error status keeps its message and the trailer set before it.
    let out = call(&["unary", "status:5:gone"]);
    assert_eq!(
        (&out["code"], &out["details"]),
        (&"NOT_FOUND".into(), &"gone".into()),
        "{out}"
    );
    assert_eq!(out["responses"], serde_json::json!([]), "{out}");
    assert_eq!(out["trailing_metadata"]["x-echo-trailer"], "done", "{out}");

    let out = call(&["server-stream", "3"]);
    assert_eq!(out["code"], "OK", "{out}");
    assert_eq!(
        out["responses"],
        serde_json::json!(["0:abcdefghijklmn", "1:abcdefghijklmn", "2:abcdefghijklmn"]),
        "{out}"
    );
    assert_eq!(
        (&out["count"], &out["valid"]),
        (&3.into(), &true.into()),
        "{out}"
    );
    assert_eq!(out["trailing_metadata"]["x-echo-trailer"], "done", "{out}");

    let out = call(&["client-stream", "4", "10"]);
    assert_eq!(out["code"], "OK", "{out}");
    assert_eq!(
        out["responses"],
        serde_json::json!(["count=4 bytes=40"]),
        "{out}"
    );

    let out = call(&["bidi", "3"]);
    assert_eq!(out["code"], "OK", "{out}");
    assert_eq!(
        out["responses"],
        serde_json::json!(["bidi-0", "bidi-1", "bidi-2"]),
        "{out}"
    );
    assert_eq!(out["matched"], true, "{out}");

    // Every call above reached the server and none was cancelled.
    let out = call(&["stats"]);
    assert_eq!(
        out["stats"],
        serde_json::json!({"calls": 5, "cancelled": 0}),
        "{out}"
    );
}

/// Sends `request` (a whole HTTP/1.1 request) on `stream` and reads one
/// response with a Content-Length; returns its status and JSON body.
fn tls_exchange(
    stream: &mut (impl std::io::Read + std::io::Write),
    request: &[u8],
) -> (u16, serde_json::Value) {
    stream.write_all(request).expect("send");
    stream.flush().expect("flush");
    let mut buf = Vec::new();
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut fields);
        if let httparse::Status::Complete(head) = parsed.parse(&buf).expect("response head") {
            let len: usize = parsed
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                .expect("Content-Length");
            if buf.len() >= head + len {
                assert_eq!(buf.len(), head + len, "nothing more was asked for");
                let body = serde_json::from_slice(&buf[head..]).expect("JSON body");
                return (parsed.code.unwrap(), body);
            }
        }
        let mut piece = [0u8; 16 * 1024];
        let n = stream.read(&mut piece).expect("read");
        assert!(n > 0, "EOF after {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&piece[..n]);
    }
}

#[test]
fn https_backend_reports_sni_alpn_and_reuse() {
    rauta_testkit::require!(grpc::need());
    let ca = tls::Ca::new();
    let leaf = ca.issue(&["backend.test", "127.0.0.1"], 2099);
    let backend = HttpsBackend::start(&leaf.cert_pem, &leaf.key_pem, None);
    let config = tls::client_config(false);

    // SNI sent; two requests on one connection.
    let mut conn = tls::TlsConn::open(backend.addr(), Some("backend.test"), &config).expect("open");
    assert_eq!(conn.server_cert(), leaf.der);
    let resp = conn.get("backend.test", "/one?x=1").expect("get");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let seen = HttpsBackend::json(&resp);
    assert_eq!(
        seen,
        serde_json::json!({
            "method": "GET", "path": "/one?x=1", "headers": {"host": "backend.test"},
            "sni": "backend.test", "alpn": "http/1.1", "client_cert_cn": null,
            "tls_version": "TLSv1.3", "body_bytes": 0, "connection_requests": 1,
        })
    );
    let seen = HttpsBackend::json(&conn.get("backend.test", "/two").expect("get"));
    assert_eq!(
        (&seen["path"], &seen["connection_requests"]),
        (&"/two".into(), &2.into()),
        "{seen}"
    );

    // No SNI: to an IP address, and with SNI turned off for a name.
    let mut conn = tls::TlsConn::open(backend.addr(), None, &config).expect("open");
    let seen = HttpsBackend::json(&conn.get("h", "/").expect("get"));
    assert_eq!(seen["sni"], serde_json::Value::Null, "{seen}");
    assert_eq!(seen["connection_requests"], 1, "{seen}");
    let mut no_sni = (*config).clone();
    no_sni.enable_sni = false;
    let no_sni = std::sync::Arc::new(no_sni);
    let mut conn = tls::TlsConn::open(backend.addr(), Some("backend.test"), &no_sni).expect("open");
    let seen = HttpsBackend::json(&conn.get("h", "/").expect("get"));
    assert_eq!(seen["sni"], serde_json::Value::Null, "{seen}");

    // TLS 1.2, no ALPN offered, and bodies by length and chunked.
    let mut tls12 = (*tls::client_config(true)).clone();
    tls12.alpn_protocols.clear();
    let tls12 = std::sync::Arc::new(tls12);
    let conn = tls::TlsConn::open(backend.addr(), Some("backend.test"), &tls12).expect("open");
    let mut stream = conn.into_stream();
    let (status, seen) = tls_exchange(
        &mut stream,
        b"POST /len HTTP/1.1\r\nHost: h\r\nX-Twice: a\r\nX-Twice: b\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(status, 200);
    assert_eq!(
        (&seen["tls_version"], &seen["alpn"], &seen["sni"]),
        (
            &"TLSv1.2".into(),
            &serde_json::Value::Null,
            &"backend.test".into()
        ),
        "{seen}"
    );
    assert_eq!(
        (
            &seen["method"],
            &seen["body_bytes"],
            &seen["headers"]["x-twice"]
        ),
        (&"POST".into(), &5.into(), &"b".into()),
        "{seen}"
    );
    let (_, seen) = tls_exchange(
        &mut stream,
        b"PUT /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\na;ext=1\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n",
    );
    assert_eq!(
        (
            &seen["method"],
            &seen["body_bytes"],
            &seen["connection_requests"]
        ),
        (&"PUT".into(), &13.into(), &2.into()),
        "{seen}"
    );

    let stats = backend.stats();
    assert_eq!(
        stats,
        serde_json::json!({"handshake_failures": 0, "connections": 4, "accepted": 4, "requests": 6}),
        "{}",
        backend.stderr()
    );
}

#[test]
fn https_backend_requires_client_cert() {
    rauta_testkit::require!(grpc::need());
    let ca = tls::Ca::new();
    let leaf = ca.issue(&["backend.test"], 2099);
    let client_ca = tls::Ca::new();
    let backend = HttpsBackend::start(&leaf.cert_pem, &leaf.key_pem, Some(&client_ca.pem()));

    // Without a certificate, and with one from another CA: the handshake
    // fails (under TLS 1.3 the client learns it on its first read).
    let stranger = tls::Ca::new().issue(&["stranger.test"], 2099);
    for config in [
        tls::client_config(false),
        tls::client_config(true),
        https::client_config_with_cert(&stranger),
    ] {
        let got = tls::TlsConn::open(backend.addr(), Some("backend.test"), &config)
            .and_then(|mut c| c.get("backend.test", "/"));
        assert!(got.is_err(), "{got:?}");
    }
    eventually("three failed handshakes", || {
        backend.stats()["handshake_failures"] == 3
    });
    assert!(
        backend.stderr().contains("handshake"),
        "{}",
        backend.stderr()
    );

    let client = client_ca.issue(&["client.test"], 2099);
    let config = https::client_config_with_cert(&client);
    let mut conn = tls::TlsConn::open(backend.addr(), Some("backend.test"), &config).expect("open");
    let seen = HttpsBackend::json(&conn.get("backend.test", "/").expect("get"));
    assert_eq!(seen["client_cert_cn"], "client.test", "{seen}");
    assert_eq!(seen["sni"], "backend.test", "{seen}");
    let stats = backend.stats();
    assert_eq!(
        (
            &stats["handshake_failures"],
            &stats["connections"],
            &stats["requests"]
        ),
        (&3.into(), &1.into(), &1.into()),
        "{stats}"
    );
}

#[test]
fn grpcs_server_answers_over_tls() {
    rauta_testkit::require!(grpc::need());
    let ca = tls::Ca::new();
    let leaf = ca.issue(&["echo.test", "127.0.0.1"], 2099);
    let ca_file = grpc::pem_file(&ca.pem());
    let ca_path = ca_file.path().to_str().expect("UTF-8 temp path");
    let server = GrpcServer::start_tls(&leaf.cert_pem, &leaf.key_pem, None);

    // Verified for the authority, and for the IP without one.
    for authority in ["echo.test", ""] {
        let out = grpc::call_with(
            server.addr(),
            authority,
            &["unary", "hello"],
            &["--tls", "--ca", ca_path, "--timeout", "10"],
        );
        assert_eq!(out["code"], "OK", "{authority:?}: {out}");
        assert_eq!(out["responses"], serde_json::json!(["hello"]), "{out}");
    }
    // Plaintext to a TLS server fails.
    let out = grpc::call_with(
        server.addr(),
        "echo.test",
        &["unary", "x"],
        &["--timeout", "5"],
    );
    assert_eq!(out["code"], "UNAVAILABLE", "{out}");

    // A client certificate required.
    let client_ca = tls::Ca::new();
    let client = client_ca.issue(&["client.test"], 2099);
    let (cert, key) = (
        grpc::pem_file(&client.cert_pem),
        grpc::pem_file(&client.key_pem),
    );
    let mtls = GrpcServer::start_tls(&leaf.cert_pem, &leaf.key_pem, Some(&client_ca.pem()));
    let flags = ["--tls", "--ca", ca_path, "--timeout", "10"];
    let out = grpc::call_with(mtls.addr(), "echo.test", &["unary", "hi"], &flags);
    assert_eq!(out["code"], "UNAVAILABLE", "{out}");
    let with_cert = [
        &flags[..],
        &[
            "--client-cert",
            cert.path().to_str().unwrap(),
            "--client-key",
            key.path().to_str().unwrap(),
        ],
    ]
    .concat();
    let out = grpc::call_with(mtls.addr(), "echo.test", &["unary", "hi"], &with_cert);
    assert_eq!(out["code"], "OK", "{out}");
    assert_eq!(out["responses"], serde_json::json!(["hi"]), "{out}");
}
