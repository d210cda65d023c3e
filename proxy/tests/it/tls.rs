//! TLS termination through the real proxy: SNI selection, renewed Secrets,
//! HTTP -> HTTPS redirects, handshake failures, real clients (curl,
//! openssl s_client) and a rustls client, the check report and metrics.

use crate::common::service;
use rauta_testkit::manifests::join;
use rauta_testkit::tls::{client_config, first_der, Ca, Leaf, TlsConn};
use rauta_testkit::{eventually, manifests::path, manifests::rule, rauta_class};
use rauta_testkit::{
    free_port, get, ingress, require, tls_secret, Backend, Conn, ManifestDir, Need, Rauta,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

/// The common name of the default (self-signed) certificate.
const FAKE_CN: &str = "Kubernetes Ingress Controller Fake Certificate";

/// rauta serving plain HTTP and HTTPS on its own ports.
struct Tls {
    rauta: Rauta,
    https: SocketAddr,
    dir: ManifestDir,
}

/// Starts rauta on `dir` with a TLS listener (and `extra` flags).
fn start_tls(dir: ManifestDir, extra: &[&str]) -> Tls {
    let https = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let listen = https.to_string();
    let mut args = vec!["--listen-tls", listen.as_str()];
    args.extend_from_slice(extra);
    let rauta = crate::common::start(&dir, &args);
    Tls { rauta, https, dir }
}

/// An Ingress web/`name` with `rules` and `tls` entries (hosts, Secret).
fn tls_ingress(
    name: &str,
    annotations: &[(&str, &str)],
    tls: &[(&[&str], &str)],
    rules: &str,
) -> String {
    let mut spec = String::from("tls:\n");
    for (hosts, secret) in tls {
        spec.push_str(&format!("- hosts: {hosts:?}\n  secretName: {secret}\n"));
    }
    spec.push_str("rules:\n");
    for line in rules.lines() {
        spec.push_str(&format!("  {line}\n"));
    }
    ingress("web", name, Some("rauta"), annotations, &spec)
}

/// A prefix rule `/` for `host` to service `svc`.
fn root(host: &str, svc: &str) -> String {
    rule(Some(host), &[path("/", "Prefix", svc)])
}

/// Writes the files and certificates of a typical set-up: one backend
/// `app`, a.example.com with its own certificate, *.wild.example.com with a
/// wildcard one.
struct Site {
    ca: Ca,
    a: Leaf,
    wild: Leaf,
    backend: Backend,
    dir: ManifestDir,
}

fn site() -> Site {
    let ca = Ca::new();
    let a = ca.issue(&["a.example.com"], 2031);
    let wild = ca.issue(&["*.wild.example.com"], 2032);
    let (backend, svc) = service("web", "app");
    let dir = ManifestDir::new();
    let ing = tls_ingress(
        "site",
        &[],
        &[
            (&["a.example.com"], "a-tls"),
            (&["*.wild.example.com"], "wild-tls"),
        ],
        &[
            root("a.example.com", "app"),
            root("*.wild.example.com", "app"),
        ]
        .concat(),
    );
    dir.write("app.yaml", &join(&[&rauta_class(), &svc, &ing]));
    dir.write(
        "a-tls.yaml",
        &tls_secret("web", "a-tls", &a.cert_pem, &a.key_pem),
    );
    dir.write(
        "wild-tls.yaml",
        &tls_secret("web", "wild-tls", &wild.cert_pem, &wild.key_pem),
    );
    Site {
        ca,
        a,
        wild,
        backend,
        dir,
    }
}

/// True when `der` is the default (self-signed) certificate.
fn is_default(der: &[u8]) -> bool {
    der.windows(FAKE_CN.len()).any(|w| w == FAKE_CN.as_bytes())
}

/// The value of `rauta_tls_handshakes_total{result}`.
fn handshakes(rauta: &Rauta, result: &str) -> f64 {
    let samples = rauta.scrape();
    samples.value("rauta_tls_handshakes_total", &[("result", result)])
}

#[test]
fn sni_selects_exact_then_wildcard_then_default() {
    let site = site();
    let t = start_tls(site.dir, &[]);
    let config = client_config(false);
    let cases: &[(Option<&str>, Option<&Leaf>)] = &[
        (Some("a.example.com"), Some(&site.a)),
        (Some("x.wild.example.com"), Some(&site.wild)),
        (Some("y.wild.example.com"), Some(&site.wild)),
        // One label only: a.b.wild.example.com is not covered by the wildcard.
        (Some("a.b.wild.example.com"), None),
        (Some("unknown.example.com"), None),
        (None, None),
    ];
    for (sni, expected) in cases {
        let conn = TlsConn::open(t.https, *sni, &config).expect("handshake");
        let served = conn.server_cert();
        match expected {
            Some(leaf) => assert_eq!(served, leaf.der, "SNI {sni:?}"),
            None => assert!(
                is_default(&served),
                "SNI {sni:?} should get the default certificate"
            ),
        }
    }
    // The server finishes a handshake just after the client does.
    eventually("every handshake counted", || {
        handshakes(&t.rauta, "ok") == cases.len() as f64
    });

    // A request over TLS reaches the backend, which learns it was HTTPS.
    let mut conn = TlsConn::open(t.https, Some("a.example.com"), &config).expect("handshake");
    assert_eq!(conn.version(), "Some(TLSv1_3)");
    let r = conn.get("a.example.com", "/hello").expect("response");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("backend=app"), "{}", r.text());
    let seen = site
        .backend
        .last_request()
        .expect("backend saw the request");
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    let port = t.https.port().to_string();
    assert_eq!(seen.header("x-forwarded-port"), Some(port.as_str()));
    // Keep-alive on the same TLS connection.
    let r = conn
        .get("a.example.com", "/again")
        .expect("second response");
    assert_eq!(r.status, 200);

    // TLS 1.2 works too, and a second connection resumes the session.
    let tls12 = client_config(true);
    let first = TlsConn::open(t.https, Some("a.example.com"), &tls12).expect("TLS 1.2");
    assert_eq!(first.version(), "Some(TLSv1_2)");
    assert_eq!(first.server_cert(), site.a.der);
    drop(first);
    let mut warm = TlsConn::open(t.https, Some("a.example.com"), &config).expect("again");
    warm.get("a.example.com", "/").expect("response");
    let mut again = TlsConn::open(t.https, Some("a.example.com"), &config).expect("again");
    assert!(again.resumed(), "the session ticket was not accepted");
    let samples = t.rauta.scrape();
    assert!(samples.value("rauta_tls_resumed_sessions_total", &[]) >= 1.0);
    assert_eq!(
        again.get("a.example.com", "/").expect("response").status,
        200
    );
}

#[test]
fn curl_and_openssl_see_the_right_certificate() {
    require!(Need::tool("curl"), Need::tool("openssl"));
    let site = site();
    let t = start_tls(site.dir, &[]);
    let ca_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(ca_file.path(), site.ca.pem()).expect("write CA");
    let port = t.https.port();

    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca_file.path())
        .args([
            "--resolve",
            &format!("a.example.com:{port}:127.0.0.1"),
            "-w",
            "\n%{http_code} %{scheme} %{ssl_verify_result}",
            &format!("https://a.example.com:{port}/curl"),
        ])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("backend=app"), "{text}");
    assert!(text.contains("h:x-forwarded-proto=https"), "{text}");
    assert!(text.trim_end().ends_with("200 HTTPS 0"), "{text}");

    // A wildcard name verifies against the wildcard certificate.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
        ])
        .arg(ca_file.path())
        .args([
            "--resolve",
            &format!("x.wild.example.com:{port}:127.0.0.1"),
            &format!("https://x.wild.example.com:{port}/"),
        ])
        .output()
        .expect("run curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");

    let s_client = |servername: Option<&str>| {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-connect", &t.https.to_string(), "-CAfile"])
            .arg(ca_file.path());
        if let Some(name) = servername {
            cmd.args(["-servername", name]);
        } else {
            cmd.arg("-noservername");
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run openssl");
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("openssl output");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let named = s_client(Some("a.example.com"));
    assert!(named.contains("subject=CN = a.example.com"), "{named}");
    assert!(named.contains("Verify return code: 0 (ok)"), "{named}");
    assert!(
        named.contains("ALPN protocol: http/1.1") || named.contains("No ALPN"),
        "{named}"
    );
    let anonymous = s_client(None);
    assert!(anonymous.contains(FAKE_CN), "{anonymous}");
}

#[test]
fn renewed_secret_is_live_without_breaking_open_connections() {
    let site = site();
    let t = start_tls(site.dir, &[]);
    let config = client_config(false);
    let mut old = TlsConn::open(t.https, Some("a.example.com"), &config).expect("handshake");
    assert_eq!(old.server_cert(), site.a.der);
    assert_eq!(
        old.get("a.example.com", "/1").expect("response").status,
        200
    );
    let samples = t.rauta.scrape();
    let labels = [
        ("host", "a.example.com"),
        ("namespace", "web"),
        ("secret", "a-tls"),
    ];
    let expiry = samples.value("rauta_tls_certificate_expiry_seconds", &labels);
    assert_eq!(expiry, 1_956_441_600.0, "2031-12-31");

    let generation = t.rauta.generation().expect("generation");
    let renewed = site.ca.issue(&["a.example.com"], 2035);
    t.dir.write(
        "a-tls.yaml",
        &tls_secret("web", "a-tls", &renewed.cert_pem, &renewed.key_pem),
    );
    t.rauta.wait_generation(generation + 1);

    // New connections get the renewed certificate...
    let fresh =
        TlsConn::open(t.https, Some("a.example.com"), &client_config(false)).expect("handshake");
    assert_eq!(fresh.server_cert(), renewed.der);
    // ...a client holding a session ticket from before resumes it...
    let resumed = TlsConn::open(t.https, Some("a.example.com"), &config).expect("handshake");
    assert!(resumed.resumed(), "tickets outlive the table swap");
    // ...while the open one keeps its session and goes on serving.
    assert_eq!(
        old.get("a.example.com", "/2").expect("response").status,
        200
    );
    assert_eq!(old.server_cert(), site.a.der);
    let samples = t.rauta.scrape();
    let expiry = samples.value("rauta_tls_certificate_expiry_seconds", &labels);
    assert_eq!(expiry, 2_082_672_000.0, "2035-12-31");
}

#[test]
fn plain_http_is_redirected_for_hosts_with_tls() {
    let ca = Ca::new();
    let leaf = ca.issue(&["a.example.com", "off.example.com"], 2031);
    let (_backend, svc) = service("web", "app");
    let dir = ManifestDir::new();
    let on = tls_ingress(
        "on",
        &[],
        &[(&["a.example.com"], "s")],
        &root("a.example.com", "app"),
    );
    let off = tls_ingress(
        "off",
        &[("nginx.ingress.kubernetes.io/ssl-redirect", "false")],
        &[(&["off.example.com"], "s")],
        &root("off.example.com", "app"),
    );
    let plain = ingress(
        "web",
        "plain",
        Some("rauta"),
        &[],
        &root("plain.example.com", "app"),
    );
    let forced = ingress(
        "web",
        "forced",
        Some("rauta"),
        &[("rauta.io/force-ssl-redirect", "true")],
        &root("forced.example.com", "app"),
    );
    let secret = tls_secret("web", "s", &leaf.cert_pem, &leaf.key_pem);
    dir.write(
        "all.yaml",
        &join(&[&rauta_class(), &svc, &on, &off, &plain, &forced, &secret]),
    );
    let t = start_tls(dir, &[]);
    let port = t.https.port();

    let mut conn = Conn::open(t.rauta.addr()).expect("connect");
    let r = conn
        .request("GET", "A.example.com:80", "/some/path?q=1&r=2", &[], &[])
        .expect("response");
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some(format!("https://a.example.com:{port}/some/path?q=1&r=2").as_str())
    );
    assert!(r.body.is_empty());
    // The redirect is a normal answer: the connection goes on.
    let r = conn
        .request("GET", "forced.example.com", "/form", &[], &[])
        .expect("response");
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some(format!("https://forced.example.com:{port}/form").as_str())
    );
    let r = conn
        .request("GET", "off.example.com", "/", &[], &[])
        .expect("response");
    assert_eq!(r.status, 200, "ssl-redirect: false serves plain HTTP");
    let r = conn
        .request("GET", "plain.example.com", "/", &[], &[])
        .expect("response");
    assert_eq!(r.status, 200, "a host without TLS is not redirected");

    // Over HTTPS the same host is served, not redirected.
    let mut tls =
        TlsConn::open(t.https, Some("a.example.com"), &client_config(false)).expect("tls");
    assert_eq!(tls.get("a.example.com", "/").expect("response").status, 200);

    let samples = t.rauta.scrape();
    let redirected = samples.value(
        "rauta_requests_total",
        &[("ingress", "on"), ("status", "3xx")],
    );
    assert_eq!(redirected, 1.0);
    // A request with a body is answered without reading it: that
    // connection closes after the redirect.
    let mut conn = Conn::open(t.rauta.addr()).expect("connect");
    let r = conn
        .request("POST", "a.example.com", "/form", &[], b"field=value")
        .expect("response");
    assert_eq!(r.status, 308);
    assert_eq!(r.header("connection"), Some("close"));
    let errors = samples.value("rauta_errors_total", &[("ingress", "on")]);
    assert_eq!(errors, 0.0, "a redirect is not an error");
}

#[test]
fn failed_handshakes_are_cut_and_counted() {
    require!(Need::tool("openssl"));
    let site = site();
    let t = start_tls(site.dir, &["--tls-handshake-timeout", "1s"]);

    // A TLS 1.0-only client.
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &t.https.to_string(),
            "-servername",
            "a.example.com",
            "-tls1",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "TLS 1.0 must fail: {text}");
    assert!(
        text.contains("alert"),
        "the server answers with an alert: {text}"
    );
    eventually("protocol_version counted", || {
        handshakes(&t.rauta, "protocol_version") == 1.0
    });

    // Plain HTTP (garbage for TLS) on the TLS port: an alert, then close.
    let mut s = TcpStream::connect(t.https).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert_eq!(
        answer.first(),
        Some(&0x15),
        "a TLS alert record: {answer:?}"
    );
    eventually("bad_record counted", || {
        handshakes(&t.rauta, "bad_record") == 1.0
    });

    // A client that connects and says nothing is cut at the timeout.
    let mut silent = TcpStream::connect(t.https).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    let read = silent.read(&mut byte);
    assert!(
        matches!(read, Ok(0))
            || read.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset)
    );
    eventually("timeout counted", || handshakes(&t.rauta, "timeout") == 1.0);

    // A client that goes away mid-handshake.
    drop(TcpStream::connect(t.https).expect("connect"));
    eventually("eof counted", || handshakes(&t.rauta, "eof") == 1.0);
    // Nothing of this disturbed the listener.
    let mut ok = TlsConn::open(t.https, Some("a.example.com"), &client_config(false)).expect("tls");
    assert_eq!(ok.get("a.example.com", "/").expect("response").status, 200);
}

#[test]
fn bad_pair_is_reported_and_only_costs_its_own_host() {
    let ca = Ca::new();
    let a = ca.issue(&["a.example.com"], 2031);
    let b = ca.issue(&["b.example.com"], 2031);
    let stray = ca.issue(&["b.example.com"], 2031);
    let (_backend, svc) = service("web", "app");
    let dir = ManifestDir::new();
    let ing = tls_ingress(
        "site",
        &[],
        &[(&["a.example.com"], "a-tls"), (&["b.example.com"], "b-tls")],
        &[root("a.example.com", "app"), root("b.example.com", "app")].concat(),
    );
    dir.write("app.yaml", &join(&[&rauta_class(), &svc, &ing]));
    dir.write(
        "a-tls.yaml",
        &tls_secret("web", "a-tls", &a.cert_pem, &a.key_pem),
    );
    // b's certificate with another key.
    dir.write(
        "b-tls.yaml",
        &tls_secret("web", "b-tls", &b.cert_pem, &stray.key_pem),
    );

    let out = Command::new(env!("CARGO_BIN_EXE_rauta"))
        .args(["check", "--manifests"])
        .arg(dir.path())
        .output()
        .expect("run rauta check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "a bad certificate is not fatal: {text}"
    );
    let file = dir.path().join("b-tls.yaml");
    let expected = format!(
        "warning: {}: Secret web/b-tls: tls.key does not match the certificate in tls.crt",
        file.display()
    );
    assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    assert!(
        text.contains("a.example.com  web/a-tls  2031-12-31"),
        "{text}"
    );

    let t = start_tls(dir, &[]);
    let config = client_config(false);
    let conn = TlsConn::open(t.https, Some("a.example.com"), &config).expect("a");
    assert_eq!(conn.server_cert(), a.der);
    let conn = TlsConn::open(t.https, Some("b.example.com"), &config).expect("b");
    assert!(
        is_default(&conn.server_cert()),
        "b gets the default certificate"
    );
    let samples = t.rauta.scrape();
    assert!(samples.value("rauta_config_problems", &[("severity", "warning")]) >= 1.0);
    assert_eq!(
        samples.value(
            "rauta_tls_certificate_expiry_seconds",
            &[("host", "b.example.com")]
        ),
        0.0
    );
}

#[test]
fn default_certificate_from_flags() {
    let site = site();
    let ca = Ca::new();
    let fallback = ca.issue(&["fallback.example.com"], 2030);
    let cert = tempfile::NamedTempFile::new().expect("temp");
    let key = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(cert.path(), &fallback.cert_pem).expect("write");
    std::fs::write(key.path(), &fallback.key_pem).expect("write");
    let (cert_path, key_path) = (cert.path().to_string_lossy(), key.path().to_string_lossy());
    let t = start_tls(
        site.dir,
        &[
            "--default-tls-cert",
            &cert_path,
            "--default-tls-key",
            &key_path,
        ],
    );
    let config = client_config(false);
    let conn = TlsConn::open(t.https, Some("other.example.com"), &config).expect("handshake");
    assert_eq!(conn.server_cert(), first_der(&fallback.cert_pem));
    let conn = TlsConn::open(t.https, Some("a.example.com"), &config).expect("handshake");
    assert_eq!(conn.server_cert(), site.a.der);
}

#[test]
fn websocket_over_tls() {
    let site = site();
    let t = start_tls(site.dir, &[]);
    let conn = TlsConn::open(t.https, Some("a.example.com"), &client_config(false)).expect("tls");
    let (mut ws, resp) =
        tungstenite::client::client("wss://a.example.com/ws", conn.into_stream()).expect("upgrade");
    assert_eq!(resp.status(), 101);
    crate::common::websocket_echoes(&mut ws, 3, 300_000);
    // Plain HTTP on the same rauta still works.
    assert_eq!(
        get(t.rauta.addr(), "plain", "/").expect("plain").status,
        404
    );
}
