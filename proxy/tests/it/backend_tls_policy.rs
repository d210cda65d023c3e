//! BackendTLSPolicy through the real binary: an HTTPRoute's Service that a
//! policy targets is spoken to over TLS, its certificate verified against
//! the policy's CA ConfigMap for the policy's hostname, which is also the
//! SNI the backend sees; a policy whose CA did not sign the backend's
//! certificate fails the request (502) rather than sending it unverified
//! (conformance: `backendtlspolicy`, `-invalid-ca-certificate-ref`).

use crate::common::start;
use rauta_testkit::client::request;
use rauta_testkit::https::HttpsBackend;
use rauta_testkit::manifests::{
    config_map, endpoint_slice, join, rauta_gateway, service, EndpointSpec,
};
use rauta_testkit::tls::Ca;
use rauta_testkit::{grpc, require, ManifestDir};

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
            &rauta_gateway("infra", "gw", &["{name: http, port: 80, protocol: HTTP}"]),
            &config_map("infra", "ca", &[("ca.crt", &ca.pem())]),
            &config_map("infra", "stranger", &[("ca.crt", &stranger.pem())]),
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

#[test]
fn rauta_check_reports_the_policy_and_the_routes_it_serves() {
    let ca = Ca::new();
    let leaf = ca.issue(&["backend.internal"], 2099);
    let backend = HttpsBackend::start(&leaf.cert_pem, &leaf.key_pem, None);
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_gateway("infra", "gw", &["{name: http, port: 80, protocol: HTTP}"]),
            // The policy names a ConfigMap that is not there.
            &tls_service("secure", &backend),
            &route_with_policy("secure", "secure.example.com", "secure", "missing"),
        ]),
    );
    let out = std::process::Command::new(crate::common::BIN)
        .args(["check", "--output", "json", "--manifests"])
        .arg(dir.path())
        .output()
        .expect("run rauta check");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("check's JSON report");
    let views = report["gateway_api"].as_array().expect("gateway_api");
    let policy = views
        .iter()
        .find(|v| v["object"] == "BackendTLSPolicy infra/secure -> Gateway infra/gw")
        .unwrap_or_else(|| panic!("no policy row: {views:#?}"));
    let conditions = policy["conditions"].to_string();
    assert!(
        conditions.contains("Accepted=False (NoValidCACertificate)"),
        "{conditions}"
    );
    assert!(
        conditions.contains("ResolvedRefs=False (InvalidCACertificateRef)"),
        "{conditions}"
    );
    assert!(
        views
            .iter()
            .any(|v| v["object"] == "HTTPRoute infra/secure -> Gateway infra/gw"),
        "{views:#?}"
    );
}
