//! `ssl-passthrough`: TLS for a passthrough host reaches a real TLS server
//! unterminated (the client sees the backend's certificate, not rauta's);
//! other hosts are terminated as before; malformed hellos get an alert.

use rauta_testkit::https::HttpsBackend;
use rauta_testkit::manifests::{join, path, rule};
use rauta_testkit::tls::{client_config, first_der, Ca, TlsConn};
use rauta_testkit::{
    backend_for, eventually, free_port, grpc, ingress, rauta_class, require, Backend, ManifestDir,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[test]
fn a_passthrough_host_reaches_its_backends_certificate_and_others_are_terminated() {
    require!(grpc::need());
    let ca = Ca::new();
    let leaf = ca.issue(&["pass.example.com"], 2099);
    let tls_backend = HttpsBackend::start(&leaf.cert_pem, &leaf.key_pem, None);
    let plain = Backend::start("plain");
    let pass_svc = rauta_testkit::manifests::service(
        "web",
        "secure",
        &[(Some("http"), 443, tls_backend.addr().port())],
    );
    let pass_slice = rauta_testkit::manifests::endpoint_slice(
        "web",
        "secure-0",
        "secure",
        &[(Some("http"), tls_backend.addr().port())],
        &[rauta_testkit::manifests::EndpointSpec::ready("127.0.0.1")],
    );
    let plain_svc = backend_for("web", "plain", "http", &[&plain]);
    let pass_ing = ingress(
        "web",
        "secure",
        Some("rauta"),
        &[("nginx.ingress.kubernetes.io/ssl-passthrough", "true")],
        &rule(Some("pass.example.com"), &[path("/", "Prefix", "secure")]),
    );
    let plain_ing = ingress(
        "web",
        "plain",
        Some("rauta"),
        &[],
        &rule(Some("other.example.com"), &[path("/", "Prefix", "plain")]),
    );
    let dir = ManifestDir::new();
    let class = rauta_class();
    dir.write(
        "all.yaml",
        &join(&[
            &class,
            &pass_svc,
            &pass_slice,
            &plain_svc,
            &pass_ing,
            &plain_ing,
        ]),
    );
    let https = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let listen = https.to_string();
    let rauta = crate::common::start(&dir, &["--listen-tls", &listen]);

    // The passthrough host: the backend's own certificate and answer (it
    // saw the client's SNI itself).
    let config = client_config(false);
    let mut conn = TlsConn::open(https, Some("pass.example.com"), &config).unwrap();
    assert_eq!(conn.server_cert(), first_der(&leaf.cert_pem));
    let seen = HttpsBackend::json(&conn.get("pass.example.com", "/through").unwrap());
    assert_eq!(seen["sni"], "pass.example.com");
    assert_eq!(seen["path"], "/through");

    // Another host on the same port is terminated by rauta as before.
    let mut other = TlsConn::open(https, Some("other.example.com"), &config).unwrap();
    assert_ne!(other.server_cert(), first_der(&leaf.cert_pem));
    assert_eq!(other.get("other.example.com", "/").unwrap().status, 200);
    // No SNI at all: terminated with the default certificate.
    let mut bare = TlsConn::open(https, None, &config).unwrap();
    assert_eq!(bare.get("other.example.com", "/").unwrap().status, 200);

    // A hello split over many segments is still read whole.
    let mut slow = TcpStream::connect(https).unwrap();
    slow.set_nodelay(true).unwrap();
    let hello = client_hello_bytes("pass.example.com");
    for piece in hello.chunks(40) {
        slow.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    // The backend (OpenSSL) answers with its ServerHello: a handshake record.
    let mut first = [0u8; 1];
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    slow.read_exact(&mut first).unwrap();
    assert_eq!(first[0], 22, "a TLS handshake record from the backend");

    // A malformed hello: a decode_error alert, then close.
    let mut bad = TcpStream::connect(https).unwrap();
    bad.write_all(&[22, 3, 1, 0, 5, 1, 0, 0, 1, 0]).unwrap();
    let mut answer = Vec::new();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = bad.read_to_end(&mut answer);
    assert_eq!(answer, [21, 3, 3, 0, 2, 2, 50]);

    let hellos = |result: &str| {
        rauta
            .scrape()
            .value("rauta_tls_client_hellos_total", &[("result", result)])
    };
    eventually("the hellos counted", || {
        hellos("passthrough") == 2.0 && hellos("terminated") == 1.0 && hellos("no_sni") == 1.0
    });
    assert_eq!(hellos("bad_length"), 1.0);
    let routes = String::from_utf8_lossy(&rauta.admin_get("/routes").unwrap().body).into_owned();
    assert!(routes.contains("pass.example.com"), "{routes}");
}

/// A real ClientHello for `sni`, from rustls.
fn client_hello_bytes(sni: &str) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(client_config(false), name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}
