//! HTTP/2 from clients through the real binary, with curl: prior knowledge
//! on the plain port beside HTTP/1.1, ALPN h2 on TLS (and `--http2 off`),
//! bodies both ways, many streams on one connection, error answers.

use crate::common::{service, start};
use rauta_testkit::manifests::join;
use rauta_testkit::{
    free_port, ingress, is_pattern, pattern, rauta_class, require, xxh3_hex, Backend, ManifestDir,
    Need, Rauta,
};
use std::net::SocketAddr;
use std::process::{Command, Output};

/// rauta in front of one backend for host h2.example.com, with a TLS listener.
fn site(extra: &[&str]) -> (Rauta, SocketAddr, Backend, ManifestDir) {
    let (backend, svc) = service("app", "h2app");
    let ing = ingress(
        "app",
        "h2",
        Some("rauta"),
        &[],
        "rules:\n- host: h2.example.com\n  http:\n    paths:\n    - path: /\n      pathType: Prefix\n      backend:\n        service:\n          name: h2app\n          port:\n            name: http\n",
    );
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&[&rauta_class(), &svc, &ing]));
    let https = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let listen = https.to_string();
    let mut args = vec!["--listen-tls", listen.as_str()];
    args.extend_from_slice(extra);
    (start(&dir, &args), https, backend, dir)
}

/// curl with `args`, the host resolved to rauta's ports; fails the test if
/// curl itself fails.
fn curl(rauta: &Rauta, https: SocketAddr, args: &[&str]) -> Output {
    let out = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "20"])
        .arg("--resolve")
        .arg(format!("h2.example.com:{}:127.0.0.1", rauta.addr().port()))
        .arg("--resolve")
        .arg(format!("h2.example.com:{}:127.0.0.1", https.port()))
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn prior_knowledge_and_http11_share_the_plain_port() {
    require!(Need::tool("curl"));
    let (rauta, https, _backend, _dir) = site(&[]);
    let url = format!("http://h2.example.com:{}/hello?x=1", rauta.addr().port());
    let before = rauta.scrape().value("rauta_http2_connections_total", &[]);
    let out = curl(
        &rauta,
        https,
        &[
            "--http2-prior-knowledge",
            "-w",
            "\nversion=%{http_version} status=%{http_code}",
            "-H",
            "cookie: a=1",
            "-H",
            "cookie: b=2",
            &url,
        ],
    );
    let body = text(&out);
    assert!(body.contains("version=2 status=200"), "{body}");
    // The backend gets HTTP/1.1 with the forwarding headers and one cookie field.
    assert!(body.contains("backend=h2app"), "{body}");
    assert!(body.contains("path=/hello"), "{body}");
    assert!(body.contains("h:host=h2.example.com"), "{body}");
    assert!(body.contains("h:x-forwarded-proto=http\n"), "{body}");
    assert!(body.contains("h:cookie=a=1; b=2"), "{body}");
    let h1 = curl(
        &rauta,
        https,
        &["-w", "\nversion=%{http_version} status=%{http_code}", &url],
    );
    assert!(
        text(&h1).contains("version=1.1 status=200"),
        "{}",
        text(&h1)
    );
    let m = rauta.scrape();
    let after = m.value("rauta_http2_connections_total", &[]);
    assert_eq!(after - before, 1.0, "one HTTP/2 connection counted");
    // Each request counted once, under the client's protocol.
    for protocol in ["h2", "http/1.1"] {
        let n = m.value(
            "rauta_requests_total",
            &[("host", "h2.example.com"), ("protocol", protocol)],
        );
        assert_eq!(n, 1.0, "{protocol}\n{}", m.text());
    }
}

#[test]
fn tls_offers_h2_first_and_http2_off_keeps_http11() {
    require!(Need::tool("curl"));
    let (rauta, https, _backend, _dir) = site(&[]);
    let url = format!("https://h2.example.com:{}/tls", https.port());
    let out = curl(
        &rauta,
        https,
        &["-w", "\nversion=%{http_version} status=%{http_code}", &url],
    );
    let body = text(&out);
    assert!(body.contains("version=2 status=200"), "{body}");
    assert!(body.contains("h:x-forwarded-proto=https"), "{body}");
    drop(rauta);

    let (rauta, https, _backend, _dir) = site(&["--http2", "off"]);
    let url = format!("https://h2.example.com:{}/tls", https.port());
    let out = curl(
        &rauta,
        https,
        &["--http2", "-w", "\nversion=%{http_version}", &url],
    );
    assert!(text(&out).contains("version=1.1"), "{}", text(&out));
    // Nor is the preface taken on the plain port: curl sees no HTTP/2.
    let plain = format!("http://h2.example.com:{}/", rauta.addr().port());
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--http2-prior-knowledge"])
        .arg("--resolve")
        .arg(format!("h2.example.com:{}:127.0.0.1", rauta.addr().port()))
        .arg(&plain)
        .output()
        .expect("run curl");
    assert!(
        !out.status.success(),
        "prior knowledge accepted with --http2 off"
    );
}

#[test]
fn bodies_stream_both_ways() {
    require!(Need::tool("curl"));
    let (rauta, https, _backend, _dir) = site(&[]);
    let port = https.port();
    let upload = pattern(3_000_001);
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &upload).expect("write upload");
    let data = format!("@{}", file.path().display());
    let url = format!("https://h2.example.com:{port}/echo-body");
    let out = curl(
        &rauta,
        https,
        &["--http2", "--data-binary", &data, "-o", "-", &url],
    );
    assert_eq!(out.stdout.len(), upload.len());
    assert_eq!(xxh3_hex(&out.stdout), xxh3_hex(&upload));
    // Without a length (stdin): sent chunked to the backend.
    let stdin_upload = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 200000 {} | curl -sS -k --max-time 20 --http2 --resolve h2.example.com:{port}:127.0.0.1 -T - https://h2.example.com:{port}/echo-body",
            file.path().display()
        ))
        .output()
        .expect("run curl");
    assert_eq!(
        stdin_upload.stdout.len(),
        200_000,
        "an upload of unknown length"
    );
    assert!(is_pattern(&stdin_upload.stdout));
    // Downloads: sized, chunked upstream, close-delimited upstream.
    for (path, n) in [
        ("/bytes?n=5000000", 5_000_000),
        ("/chunked?n=300000&size=7000", 300_000),
        ("/close-delimited?n=70000", 70_000),
    ] {
        let url = format!("https://h2.example.com:{port}{path}");
        let out = curl(&rauta, https, &["--http2", "-o", "-", &url]);
        assert_eq!(out.stdout.len(), n, "{path}");
        assert!(is_pattern(&out.stdout), "{path}");
    }
    let url = format!("https://h2.example.com:{port}/bytes?n=100");
    let head = curl(
        &rauta,
        https,
        &["--http2", "-I", "-w", "%{http_code}", &url],
    );
    assert!(
        text(&head).contains("content-length: 100"),
        "{}",
        text(&head)
    );
}

#[test]
fn many_streams_share_one_connection_and_errors_are_answers() {
    require!(Need::tool("curl"));
    let (rauta, https, _backend, _dir) = site(&[]);
    // Over TLS: curl 7.88's multiplexing over prior knowledge fails on its
    // own side ("Error in the HTTP2 framing layer" before stream 3 is sent).
    let tls_port = https.port();
    let urls: Vec<String> = (0..60)
        .map(|i| format!("https://h2.example.com:{tls_port}/s{i}"))
        .collect();
    let mut args = vec![
        "--http2",
        "-Z",
        "--parallel-max",
        "30",
        "-w",
        "%{http_code}\n",
        "-o",
        "/dev/null",
    ];
    for u in &urls {
        args.push(u);
        args.push("-o");
        args.push("/dev/null");
    }
    args.truncate(args.len() - 2);
    let out = curl(&rauta, https, &args);
    let codes = text(&out);
    assert_eq!(codes.lines().filter(|l| *l == "200").count(), 60, "{codes}");
    // `value` sums the samples of every shard.
    let m = rauta.scrape();
    let streams = m.value("rauta_http2_streams_total", &[]);
    let conns = m.value("rauta_http2_connections_total", &[]);
    assert_eq!(streams, 60.0);
    assert!(conns <= 2.0, "{conns} connections for 60 streams");
    // rauta's own answers go out as HTTP/2 responses too.
    let port = rauta.addr().port();
    let url = format!("http://nowhere.example.com:{port}/");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--http2-prior-knowledge"])
        .arg("--resolve")
        .arg(format!("nowhere.example.com:{port}:127.0.0.1"))
        .args(["-w", "\nversion=%{http_version} status=%{http_code}", &url])
        .output()
        .expect("run curl");
    let body = text(&out);
    assert!(body.contains("version=2 status=404"), "{body}");
}

/// Runs `proxy/testkit/python/h2_conn.py` (one whole HTTP/2 connection
/// driven with the h2 package) and returns its JSON.
fn h2_conn(args: &[&str]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/testkit/python/h2_conn.py");
    let out = Command::new(rauta_testkit::grpc::python())
        .arg(script)
        .args(args)
        .output()
        .expect("run h2_conn.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "h2_conn.py {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("h2_conn.py {args:?}: {e}: {stdout}"))
}

#[test]
fn idle_connections_get_goaway_and_vanished_peers_are_found_by_ping() {
    require!(rauta_testkit::grpc::need());
    let (rauta, _https, _backend, _dir) =
        site(&["--idle-timeout", "2s", "--http2-ping-interval", "1s"]);
    let addr = rauta.addr().to_string();
    // Answered, then idle: GOAWAY (NO_ERROR) after the idle timeout, as an
    // HTTP/1.1 keep-alive connection is closed; the PINGs meanwhile answered.
    let v = h2_conn(&["idle", &addr, "h2.example.com", "8"]);
    assert_eq!(v["responses"], 1, "{v}");
    assert_eq!(v["goaway"]["error_code"], 0, "{v}");
    let at = v["goaway"]["at_s"].as_f64().unwrap_or(0.0);
    assert!(
        (1.5..=6.0).contains(&at),
        "GOAWAY after the 2 s idle timeout: {v}"
    );
    assert!(v["closed_after"].is_number(), "then closed: {v}");
    drop(rauta);

    // A peer that stops answering (PINGs included) is closed before the
    // idle timeout would.
    let (rauta, _https, _backend, _dir) =
        site(&["--idle-timeout", "60s", "--http2-ping-interval", "1s"]);
    let v = h2_conn(&["silent", &rauta.addr().to_string(), "h2.example.com", "5"]);
    assert_eq!(v["closed"], true, "{v}");
    // One that answers stays.
    let v = h2_conn(&["idle", &rauta.addr().to_string(), "h2.example.com", "4"]);
    assert!(v["pings"].as_u64() >= Some(2), "{v}");
    assert_eq!(v["goaway"], serde_json::Value::Null, "{v}");
}

#[test]
fn clients_resetting_most_streams_get_goaway_enhance_your_calm() {
    require!(rauta_testkit::grpc::need());
    let (rauta, _https, _backend, _dir) = site(&[]);
    // Each stream waits on a slow backend, then the client resets it: the
    // work was started for nothing (rapid reset, CVE-2023-44487).
    let v = h2_conn(&[
        "rapid-reset",
        &rauta.addr().to_string(),
        "h2.example.com",
        "400",
        "/slow?ms=100",
        "5",
    ]);
    assert_eq!(v["goaway"]["error_code"], 0xb, "ENHANCE_YOUR_CALM: {v}");
    let m = rauta.scrape();
    assert_eq!(
        m.value("rauta_http2_abusive_connections_total", &[]),
        1.0,
        "{}",
        m.text()
    );
    assert!(
        m.value("rauta_http2_premature_resets_total", &[]) > 100.0,
        "{}",
        m.text()
    );
    // A well-behaved client on a new connection is served.
    let url = format!("http://h2.example.com:{}/after", rauta.addr().port());
    let out = curl(
        &rauta,
        _https,
        &[
            "--http2-prior-knowledge",
            "-w",
            "\nstatus=%{http_code}",
            &url,
        ],
    );
    assert!(text(&out).contains("status=200"), "{}", text(&out));
}
