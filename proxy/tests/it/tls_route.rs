//! TLSRoute through the real binary: a Gateway's TLS Passthrough listener
//! and HTTPS listener on rauta's TLS port. A TLSRoute host reaches a real
//! TLS server unterminated (the client sees the backend's certificate and
//! the backend the client's SNI), at any depth below a `*.` hostname; other
//! hosts are terminated with the listener's certificate; a TLSRoute whose
//! Service is missing refuses its connections (conformance:
//! `tlsroute-simple-same-namespace`, `-hostname-intersection`,
//! `-invalid-backendref-nonexistent`, `-mixed-termination-same-namespace`).

use crate::common::start;
use rauta_testkit::https::HttpsBackend;
use rauta_testkit::manifests::{endpoint_slice, join, service, EndpointSpec};
use rauta_testkit::tls::{client_config, first_der, Ca, TlsConn};
use rauta_testkit::{backend_for, free_port, grpc, require, tls_secret, Backend, ManifestDir};
use std::net::SocketAddr;

const GATEWAY: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: rauta
  listeners:
  - {name: pass, port: 443, protocol: TLS, tls: {mode: Passthrough}}
  - name: https
    port: 443
    protocol: HTTPS
    hostname: web.example.com
    tls: {certificateRefs: [{name: gw-cert}]}
";

const ROUTES: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: pass, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: pass}]
  hostnames: [pass.example.com, '*.deep.example.com']
  rules:
  - backendRefs: [{name: secure, port: 443}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: nowhere, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: pass}]
  hostnames: [gone.example.com]
  rules:
  - backendRefs: [{name: missing, port: 443}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: https}]
  rules:
  - backendRefs: [{name: plain, port: 80}]
";

#[test]
fn tls_route_hosts_pass_through_and_others_are_terminated() {
    require!(grpc::need());
    let ca = Ca::new();
    let leaf = ca.issue(&["pass.example.com", "*.a.deep.example.com"], 2099);
    let gw_leaf = ca.issue(&["web.example.com"], 2099);
    let secure = HttpsBackend::start(&leaf.cert_pem, &leaf.key_pem, None);
    let plain = Backend::start("plain");
    let port = secure.addr().port();
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            GATEWAY,
            &tls_secret("infra", "gw-cert", &gw_leaf.cert_pem, &gw_leaf.key_pem),
            &service("infra", "secure", &[(Some("tls"), 443, port)]),
            &endpoint_slice(
                "infra",
                "secure-0",
                "secure",
                &[(Some("tls"), port)],
                &[EndpointSpec::ready("127.0.0.1")],
            ),
            &backend_for("infra", "plain", "http", &[&plain]),
            ROUTES,
        ]),
    );
    let https = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let rauta = start(&dir, &["--listen-tls", &https.to_string()]);
    let config = client_config(false);

    for sni in ["pass.example.com", "x.a.deep.example.com"] {
        let mut conn = TlsConn::open(https, Some(sni), &config).expect(sni);
        assert_eq!(conn.server_cert(), first_der(&leaf.cert_pem), "{sni}");
        let seen = HttpsBackend::json(&conn.get(sni, "/through").expect(sni));
        assert_eq!(seen["sni"], sni);
        assert_eq!(seen["path"], "/through");
    }

    // The HTTPS listener's host is terminated by rauta, with its certificate.
    let mut web = TlsConn::open(https, Some("web.example.com"), &config).expect("web");
    assert_eq!(web.server_cert(), first_der(&gw_leaf.cert_pem));
    let resp = web.get("web.example.com", "/").expect("web GET");
    assert_eq!(resp.status, 200);
    assert!(resp.text().contains("backend=plain"), "{}", resp.text());

    // A missing Service: the connection is refused, not terminated.
    assert!(
        TlsConn::open(https, Some("gone.example.com"), &config)
            .and_then(|mut c| c.get("gone.example.com", "/"))
            .is_err(),
        "a TLSRoute without a backend must not answer"
    );

    let routes =
        String::from_utf8_lossy(&rauta.admin_get("/routes").expect("routes").body).into_owned();
    assert!(routes.contains("pass.example.com"), "{routes}");
    assert!(routes.contains("deep.example.com"), "{routes}");
}
