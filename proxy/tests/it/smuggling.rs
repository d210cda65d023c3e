//! Request smuggling through hop-by-hop headers, through the real binary:
//! whatever a client's (or a backend's) `Connection` header lists, the
//! other side frames exactly the message rauta relays. The backend frames
//! the byte stream by its own parser and logs every request it sees, so a
//! second, smuggled request would show up in its log.

use crate::common::{service, start};
use rauta_testkit::manifests::join;
use rauta_testkit::{endpoint_slice, ingress, Backend, Conn, EndpointSpec, ManifestDir, Rauta};
use rauta_testkit::{manifests::path, manifests::rule, rauta_class, ScriptedBackend};

/// A request that, read as a body, looks like a request of its own.
const SMUGGLED: &str = "GET /SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n";

fn setup() -> (Rauta, Backend, ManifestDir) {
    let (backend, svc) = service("s", "app");
    let ing = ingress(
        "s",
        "app",
        Some("rauta"),
        &[],
        &rule(Some("app.example"), &[path("/", "Prefix", "app")]),
    );
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&[&rauta_class(), &svc, &ing]));
    // One shard and one pooled upstream connection: a smuggled request would
    // sit on the very connection the next client's request takes.
    let rauta = start(&dir, &["--shards", "1"]);
    (rauta, backend, dir)
}

/// The backend's description of the request it got (its default answer).
fn described(conn: &mut Conn, raw: &[u8]) -> String {
    conn.send(raw).expect("send");
    let r = conn.read_response(false).expect("response");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

#[test]
fn connection_cannot_strip_the_framing_of_a_relayed_body() {
    let (rauta, backend, _dir) = setup();
    let len = SMUGGLED.len();
    let chunked = format!("{len:x}\r\n{SMUGGLED}\r\n0\r\n\r\n");
    let cases: Vec<(&str, String)> = vec![
        (
            "Connection lists Content-Length",
            format!("POST /a HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, Content-Length\r\nContent-Length: {len}\r\n\r\n{SMUGGLED}"),
        ),
        (
            "a second Connection header lists it",
            format!("POST /a HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive\r\nConnection: content-length\r\nContent-Length: {len}\r\n\r\n{SMUGGLED}"),
        ),
        (
            "Connection lists Transfer-Encoding",
            format!("POST /a HTTP/1.1\r\nHost: app.example\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}"),
        ),
        (
            "Proxy-Connection and Keep-Alive list it",
            format!("POST /a HTTP/1.1\r\nHost: app.example\r\nProxy-Connection: content-length\r\nKeep-Alive: content-length\r\nContent-Length: {len}\r\n\r\n{SMUGGLED}"),
        ),
        (
            "Connection lists every framing header at once",
            format!("POST /a HTTP/1.1\r\nHost: app.example\r\nConnection: content-length, transfer-encoding, host, te, upgrade\r\nContent-Length: {len}\r\n\r\n{SMUGGLED}"),
        ),
    ];
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    for (what, raw) in &cases {
        let text = described(&mut conn, raw.as_bytes());
        assert!(
            text.contains(&format!("body-len={len}\n")),
            "{what}: the backend must get the whole body as a body:\n{text}"
        );
        // A request after it, on the same client and upstream connections.
        let text = described(
            &mut conn,
            b"GET /after HTTP/1.1\r\nHost: app.example\r\n\r\n",
        );
        assert!(text.contains("path=/after\n"), "{what}: {text}");
    }
    let targets = backend.targets();
    let want: Vec<&str> = cases.iter().flat_map(|_| ["/a", "/after"]).collect();
    assert_eq!(
        targets,
        want,
        "the backend saw requests no client sent\nlog:\n{}",
        rauta.log()
    );
}

#[test]
fn connection_cannot_strip_host() {
    let (rauta, backend, _dir) = setup();
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    let text = described(
        &mut conn,
        b"GET /h HTTP/1.1\r\nConnection: host, x-drop\r\nHost: app.example\r\nX-Drop: 1\r\nX-Keep: 2\r\n\r\n",
    );
    assert!(text.contains("h:host=app.example\n"), "{text}");
    assert!(
        text.contains("h:x-keep=2\n") && !text.contains("x-drop"),
        "{text}"
    );
    assert_eq!(backend.targets(), ["/h"]);
}

/// rauta in front of a scripted upstream that answers every request with
/// `answer`.
fn behind(answer: &[u8]) -> (Rauta, ScriptedBackend, ManifestDir) {
    let upstream = ScriptedBackend::answering(answer);
    // The Service's one endpoint is the scripted upstream's port.
    let svc = join(&[
        &rauta_testkit::service("s", "raw", &[(Some("http"), 80, upstream.port)]),
        &endpoint_slice(
            "s",
            "raw-1",
            "raw",
            &[(Some("http"), upstream.port)],
            &[EndpointSpec::ready("127.0.0.1")],
        ),
    ]);
    let ing = ingress(
        "s",
        "raw",
        Some("rauta"),
        &[],
        &rule(Some("raw.example"), &[path("/", "Prefix", "raw")]),
    );
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&[&rauta_class(), &svc, &ing]));
    let rauta = start(&dir, &["--shards", "1"]);
    (rauta, upstream, dir)
}

#[test]
fn a_backend_cannot_desynchronise_the_client_through_connection() {
    let cases: &[(&str, &[u8], &str, Option<&str>)] = &[
        (
            "the backend lists its Content-Length in Connection",
            b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello",
            "hello",
            Some("5"),
        ),
        (
            "the backend sends both Transfer-Encoding and Content-Length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "hello",
            None,
        ),
    ];
    for (what, answer, body, length) in cases {
        let (rauta, upstream, _dir) = behind(answer);
        let mut conn = Conn::open(rauta.addr()).expect("connect");
        // Two requests on one connection: the second answer is read where
        // the first one's framing says it starts.
        for i in 0..2 {
            conn.send(b"GET / HTTP/1.1\r\nHost: raw.example\r\n\r\n")
                .expect("send");
            let r = conn.read_response(false).expect("response");
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, *body),
                "{what}, request {i}"
            );
            assert_eq!(
                r.header("content-length"),
                *length,
                "{what}: {:?}",
                r.headers
            );
            let both =
                r.header("content-length").is_some() && r.header("transfer-encoding").is_some();
            assert!(
                !both,
                "{what}: both framing headers reached the client: {:?}",
                r.headers
            );
        }
        assert_eq!(upstream.requests(), 2, "{what}");
    }
}
