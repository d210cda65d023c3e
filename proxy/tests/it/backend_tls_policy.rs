//! BackendTLSPolicy through the real binary: an HTTPRoute's Service that a
//! policy targets is spoken to over TLS, its certificate verified against
//! the policy's CA ConfigMap for the policy's hostname, which is also the
//! SNI the backend sees; a policy whose CA did not sign the backend's
//! certificate fails the request (502) rather than sending it unverified
//! (conformance: `backendtlspolicy`, `-invalid-ca-certificate-ref`).

use crate::common::start;
use rauta_testkit::client::request;
use rauta_testkit::https::HttpsBackend;
use rauta_testkit::manifests::{endpoint_slice, join, service, EndpointSpec};
use rauta_testkit::tls::Ca;
use rauta_testkit::{grpc, require, ManifestDir};

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
  - {name: http, port: 80, protocol: HTTP}
";

/// HTTPRoute infra/`name` for `host` to Service `svc` port 443, and a
/// BackendTLSPolicy for that Service verifying with ConfigMap `ca_map`.
fn route_with_policy(name: &str, host: &str, svc: &str, ca_map: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
         metadata: {{name: {name}, namespace: infra}}\n\
         spec:\n  parentRefs: [{{name: gw}}]\n  hostnames: [{host}]\n  \
         rules: [{{backendRefs: [{{name: {svc}, port: 443}}]}}]\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\n\
         metadata: {{name: {name}, namespace: infra}}\n\
         spec:\n  targetRefs: [{{group: '', kind: Service, name: {svc}, sectionName: https}}]\n  \
         validation: {{caCertificateRefs: [{{group: '', kind: ConfigMap, name: {ca_map}}}], hostname: backend.internal}}\n"
    )
}

/// ConfigMap infra/`name` with `ca.crt`.
fn ca_map(name: &str, pem: &str) -> String {
    let indented = pem.trim_end().replace('\n', "\n    ");
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: infra}}\n\
         data:\n  ca.crt: |\n    {indented}\n"
    )
}

/// Service infra/`name` (port 443 `https`) with `backend` as its endpoint.
fn tls_service(name: &str, backend: &HttpsBackend) -> String {
    let port = backend.addr().port();
    join(&[
        &service("infra", name, &[(Some("https"), 443, port)]),
        &endpoint_slice(
            "infra",
            &format!("{name}-0"),
            name,
            &[(Some("https"), port)],
            &[EndpointSpec::ready("127.0.0.1")],
        ),
    ])
}

#[test]
fn a_backend_tls_policy_verifies_the_backend_and_sends_its_hostname() {
    require!(grpc::need());
    let ca = Ca::new();
    let stranger = Ca::new();
    let leaf = ca.issue(&["backend.internal"], 2099);
    let good = HttpsBackend::start(&leaf.cert_pem, &leaf.key_pem, None);
    let other = HttpsBackend::start(&leaf.cert_pem, &leaf.key_pem, None);
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            GATEWAY,
            &ca_map("ca", &ca.pem()),
            &ca_map("stranger", &stranger.pem()),
            &tls_service("secure", &good),
            &tls_service("other", &other),
            &route_with_policy("secure", "secure.example.com", "secure", "ca"),
            &route_with_policy("other", "other.example.com", "other", "stranger"),
        ]),
    );
    let rauta = start(&dir, &[]);

    let resp = request(rauta.addr(), "GET", "secure.example.com", "/in", &[], b"").expect("GET");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let seen = HttpsBackend::json(&resp);
    assert_eq!(seen["sni"], "backend.internal", "{seen}");
    assert_eq!(seen["path"], "/in", "{seen}");

    // The backend's certificate is not signed by the policy's CA.
    let resp = request(rauta.addr(), "GET", "other.example.com", "/", &[], b"").expect("GET");
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert_eq!(
        other.stats()["requests"],
        0,
        "nothing reached the unverified backend"
    );
}
