//! TLS to the backends through the real binary: `backend-protocol: HTTPS`
//! to a real TLS server that reports what it saw (SNI, ALPN, the client
//! certificate, keep-alive), with ingress-nginx's defaults (no verification,
//! no SNI) and each `proxy-ssl-*` annotation; `GRPCS` to a real grpcio
//! server over TLS.

use crate::common::start;
use rauta_testkit::grpc::{self, GrpcServer};
use rauta_testkit::https::HttpsBackend;
use rauta_testkit::manifests::{base64, join};
use rauta_testkit::tls::Ca;
use rauta_testkit::{
    endpoint_slice, ingress, manifests, rauta_class, require, Conn, EndpointSpec, ManifestDir,
};
use serde_json::Value;
use std::fmt::Write;

/// The Service `name` (port `https`) with one ready endpoint on 127.0.0.1:`port`.
fn tls_service(name: &str, port: u16) -> String {
    join(&[
        &manifests::service("app", name, &[(Some("https"), 443, port)]),
        &endpoint_slice(
            "app",
            &format!("{name}-0"),
            name,
            &[(Some("https"), port)],
            &[EndpointSpec::ready("127.0.0.1")],
        ),
    ])
}

/// An Ingress for `host` to Service `svc` with `backend-protocol: protocol`
/// and `proxy-ssl-*` annotations `ssl` (keys without prefix).
fn tls_ingress(host: &str, svc: &str, protocol: &str, ssl: &[(&str, &str)]) -> String {
    let keys: Vec<(String, &str)> = ssl
        .iter()
        .map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), *v))
        .collect();
    let mut annotations = vec![("nginx.ingress.kubernetes.io/backend-protocol", protocol)];
    annotations.extend(keys.iter().map(|(k, v)| (k.as_str(), *v)));
    let name = host.split('.').next().unwrap_or(host);
    ingress(
        "app",
        name,
        Some("rauta"),
        &annotations,
        &format!("rules:\n- host: {host}\n  http:\n    paths:\n    - path: /\n      pathType: Prefix\n      backend:\n        service:\n          name: {svc}\n          port:\n            name: https\n"),
    )
}

/// An Opaque Secret app/`name` with `fields`.
fn secret(name: &str, fields: &[(&str, &str)]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: app\ntype: Opaque\ndata:\n"
    );
    for (k, v) in fields {
        let _ = writeln!(y, "  {k}: {}", base64(v.as_bytes()));
    }
    y
}

fn get_json(conn: &mut Conn, host: &str) -> (u16, Value) {
    let resp = conn
        .request("GET", host, "/hello", &[], b"")
        .expect("answer");
    let json = if resp.status == 200 {
        HttpsBackend::json(&resp)
    } else {
        Value::String(resp.text())
    };
    (resp.status, json)
}

#[test]
fn https_backends_get_ingress_nginx_defaults_and_stay_pooled() {
    require!(grpc::need());
    let ca = Ca::new();
    let leaf = ca.issue(&["web.app.svc"], 2035);
    let backend = HttpsBackend::start(&leaf.cert_pem, &leaf.key_pem, None);
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_class(),
            &tls_service("web", backend.addr().port()),
            &tls_ingress("plain.example.com", "web", "HTTPS", &[]),
        ]),
    );
    let rauta = start(&dir, &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    let (status, first) = get_json(&mut conn, "plain.example.com");
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["path"], "/hello", "{first}");
    assert_eq!(first["sni"], Value::Null, "no SNI by default: {first}");
    assert_eq!(first["alpn"], "http/1.1", "{first}");
    assert!(first["headers"]["x-forwarded-for"].is_string(), "{first}");
    // Kept alive in the pool: later requests ride the same TLS connection.
    let mut last = first.clone();
    for _ in 0..5 {
        let (status, json) = get_json(&mut conn, "plain.example.com");
        assert_eq!(status, 200, "{json}");
        last = json;
    }
    assert!(
        last["connection_requests"].as_u64() > first["connection_requests"].as_u64(),
        "pooled TLS connection reused: first {first}, last {last}"
    );
    assert!(
        backend.stats()["connections"].as_u64() <= Some(2),
        "{}",
        backend.stats()
    );
}

#[test]
fn proxy_ssl_verify_name_sni_and_client_certificate() {
    require!(grpc::need());
    let ca = Ca::new();
    let other_ca = Ca::new();
    let server = ca.issue(&["backend.internal"], 2035);
    let client = ca.issue(&["rauta-client"], 2035);
    // The backend demands a client certificate from `ca`.
    let backend = HttpsBackend::start(&server.cert_pem, &server.key_pem, Some(&ca.pem()));
    let ca_pem = ca.pem();
    let other_pem = other_ca.pem();
    let with_client = [
        ("ca.crt", ca_pem.as_str()),
        ("tls.crt", client.cert_pem.as_str()),
        ("tls.key", client.key_pem.as_str()),
    ];
    let foreign_ca = [
        ("ca.crt", other_pem.as_str()),
        ("tls.crt", client.cert_pem.as_str()),
        ("tls.key", client.key_pem.as_str()),
    ];
    let verified = [
        ("proxy-ssl-verify", "on"),
        ("proxy-ssl-secret", "app/upstream"),
        ("proxy-ssl-name", "backend.internal"),
        ("proxy-ssl-server-name", "on"),
    ];
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_class(),
            &secret("upstream", &with_client),
            &secret("foreign", &foreign_ca),
            &tls_service("web", backend.addr().port()),
            &tls_ingress("good.example.com", "web", "HTTPS", &verified),
            &tls_ingress(
                "unverified.example.com",
                "web",
                "HTTPS",
                &[("proxy-ssl-secret", "app/upstream")],
            ),
            &tls_ingress(
                "wrongname.example.com",
                "web",
                "HTTPS",
                &[
                    ("proxy-ssl-verify", "on"),
                    ("proxy-ssl-secret", "app/upstream"),
                    ("proxy-ssl-name", "someone-else.internal"),
                ],
            ),
            &tls_ingress(
                "foreign.example.com",
                "web",
                "HTTPS",
                &[
                    ("proxy-ssl-verify", "on"),
                    ("proxy-ssl-secret", "app/foreign"),
                    ("proxy-ssl-name", "backend.internal"),
                ],
            ),
            &tls_ingress("nocert.example.com", "web", "HTTPS", &[]),
        ]),
    );
    let rauta = start(&dir, &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");

    let (status, json) = get_json(&mut conn, "good.example.com");
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["sni"], "backend.internal",
        "proxy-ssl-server-name: {json}"
    );
    assert_eq!(
        json["client_cert_cn"], "rauta-client",
        "proxy-ssl-secret: {json}"
    );

    // Verification off (the default): the certificate is taken; no SNI.
    let (status, json) = get_json(&mut conn, "unverified.example.com");
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["sni"], Value::Null, "{json}");

    // Verification on: a certificate for another name, or from a CA the
    // Secret does not hold, is refused: 502, never served unverified.
    for host in ["wrongname.example.com", "foreign.example.com"] {
        let (status, body) = get_json(&mut conn, host);
        assert_eq!(status, 502, "{host}: {body}");
    }
    // The backend wants a client certificate the route does not have.
    let (status, body) = get_json(&mut conn, "nocert.example.com");
    assert_eq!(status, 502, "{body}");
}

#[test]
fn grpcs_calls_reach_a_tls_grpc_server() {
    require!(grpc::need());
    let ca = Ca::new();
    let leaf = ca.issue(&["grpc.internal"], 2035);
    let server = GrpcServer::start_tls(&leaf.cert_pem, &leaf.key_pem, None);
    let ca_pem = ca.pem();
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_class(),
            &secret("grpc-ca", &[("ca.crt", ca_pem.as_str())]),
            &tls_service("echo", server.addr().port()),
            &tls_ingress(
                "grpcs.example.com",
                "echo",
                "GRPCS",
                &[
                    ("proxy-ssl-verify", "on"),
                    ("proxy-ssl-secret", "app/grpc-ca"),
                    ("proxy-ssl-name", "grpc.internal"),
                    ("proxy-ssl-server-name", "on"),
                ],
            ),
        ]),
    );
    let rauta = start(&dir, &[]);
    let v = grpc::call(rauta.addr(), "grpcs.example.com", &["unary", "over tls"]);
    assert_eq!(v["code"], "OK", "{v}");
    assert_eq!(v["responses"][0], "over tls", "{v}");
    assert_eq!(v["trailing_metadata"]["x-echo-trailer"], "done", "{v}");
    let v = grpc::call(rauta.addr(), "grpcs.example.com", &["bidi", "5"]);
    assert_eq!(v["matched"], true, "{v}");
}
