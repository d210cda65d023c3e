//! GRPCRoute through the real binary: real grpcio clients on rauta's plain
//! port (HTTP/2 prior knowledge) and two grpcio servers behind one
//! GRPCRoute. The cases port what `conformance/tests/grpcroute-exact-
//! method-matching`, `-header-matching` and `-listener-hostname-matching`
//! check: a call goes to the rule its service, method and metadata match,
//! a call nothing matches is UNIMPLEMENTED, one whose backend is missing
//! UNAVAILABLE, and each server counts the calls it got.

use crate::common::start;
use rauta_testkit::grpc::{self, GrpcServer};
use rauta_testkit::manifests::{endpoint_slice, join, service, EndpointSpec};
use rauta_testkit::{require, ManifestDir};
use serde_json::Value;

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
  - {name: http, port: 80, protocol: HTTP, hostname: '*.example.com'}
";

const ROUTE: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  hostnames: [grpc.example.com, '*.wild.example.com']
  rules:
  - matches:
    - method: {service: rauta.test.Echo, method: Unary}
      headers: [{name: x-version, value: v2}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: x-served-by, value: b}]}
    backendRefs: [{name: grpc-b, port: 8080}]
  - matches:
    - method: {service: rauta.test.Echo, method: Unary}
    backendRefs: [{name: grpc-a, port: 8080}]
  - matches:
    - method: {type: RegularExpression, service: 'rauta\\.test\\..*', method: 'Server.*'}
    backendRefs: [{name: grpc-b, port: 8080}]
  - matches:
    - method: {service: rauta.test.Echo, method: Bidi}
    backendRefs: [{name: missing, port: 8080}]
";

/// Service infra/`name` (port 8080) with one ready endpoint: `server`.
fn grpc_service(name: &str, server: &GrpcServer) -> String {
    let port = server.addr().port();
    join(&[
        &service("infra", name, &[(Some("grpc"), 8080, port)]),
        &endpoint_slice(
            "infra",
            &format!("{name}-0"),
            name,
            &[(Some("grpc"), port)],
            &[EndpointSpec::ready("127.0.0.1")],
        ),
    ])
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("<no code>")
}

/// Calls the server got (not counting this one), asked directly.
fn calls(server: &GrpcServer) -> u64 {
    let v = grpc::call(server.addr(), "", &["stats"]);
    v["stats"]["calls"].as_u64().unwrap_or(u64::MAX)
}

#[test]
fn grpc_calls_go_to_the_rule_their_method_and_metadata_match() {
    require!(grpc::need());
    let a = GrpcServer::start();
    let b = GrpcServer::start();
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            GATEWAY,
            &grpc_service("grpc-a", &a),
            &grpc_service("grpc-b", &b),
            ROUTE,
        ]),
    );
    let rauta = start(&dir, &[]);
    let at = rauta.addr();
    let host = "grpc.example.com";

    // Exact service and method, no metadata: a.
    let v = grpc::call(at, host, &["unary", "one"]);
    assert_eq!((code(&v), &v["responses"][0]), ("OK", &"one".into()), "{v}");
    assert!(v["initial_metadata"].get("x-served-by").is_none(), "{v}");
    // The same with `x-version: v2`: the rule with the header match, b,
    // and its response header.
    let flags = ["--metadata", "x-version=v2"];
    let v = grpc::call_with(at, host, &["unary", "two"], &flags);
    assert_eq!(code(&v), "OK", "{v}");
    assert_eq!(v["initial_metadata"]["x-served-by"], "b", "{v}");
    // A regex over service and method: ServerStream goes to b.
    let v = grpc::call(at, host, &["server-stream", "3"]);
    assert_eq!(code(&v), "OK", "{v}");
    assert_eq!(v["responses"].as_array().map(Vec::len), Some(3), "{v}");
    // A suffix hostname of any depth takes the same rules.
    let v = grpc::call(at, "a.b.wild.example.com", &["unary", "three"]);
    assert_eq!(code(&v), "OK", "{v}");
    // No rule for ClientStream, and none for another host.
    let v = grpc::call(at, host, &["client-stream", "2", "8"]);
    assert_eq!(code(&v), "UNIMPLEMENTED", "{v}");
    let v = grpc::call(at, "other.example.com", &["unary", "four"]);
    assert_eq!(code(&v), "UNIMPLEMENTED", "{v}");
    // A rule whose Service is missing: UNAVAILABLE, as the spec says.
    let v = grpc::call(at, host, &["bidi", "2"]);
    assert_eq!(code(&v), "UNAVAILABLE", "{v}");

    assert_eq!(calls(&a), 2, "the plain Unary calls");
    assert_eq!(calls(&b), 2, "the v2 Unary and the ServerStream");

    // /routes names the route's kind.
    let routes =
        String::from_utf8_lossy(&rauta.admin_get("/routes").expect("routes").body).into_owned();
    assert!(routes.contains("GRPCRoute"), "{routes}");
}
