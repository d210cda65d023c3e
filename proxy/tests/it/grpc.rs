//! gRPC through the real binary: a real grpcio client on rauta's plain
//! port (HTTP/2 with prior knowledge), a real grpcio server behind an
//! Ingress with `backend-protocol: GRPC` (HTTP/2 to the pod). Every call
//! shape streams with its metadata and trailers; rauta's own failures reach
//! the client as gRPC statuses; a cancel reaches the server; many calls
//! share few upstream connections.

use crate::common::start;
use rauta_testkit::grpc::{self, GrpcServer};
use rauta_testkit::manifests::join;
use rauta_testkit::{
    backend_for, endpoint_slice, eventually, free_port, ingress, manifests, rauta_class, require,
    EndpointSpec, ManifestDir, Rauta,
};
use serde_json::Value;

const HOST: &str = "grpc.example.com";

/// An Ingress for `host` to Service `svc` (port `grpc`), gRPC to the pods.
fn grpc_ingress(name: &str, host: &str, svc: &str, extra: &[(&str, &str)]) -> String {
    let mut annotations = vec![("nginx.ingress.kubernetes.io/backend-protocol", "GRPC")];
    annotations.extend_from_slice(extra);
    ingress(
        "app",
        name,
        Some("rauta"),
        &annotations,
        &format!("rules:\n- host: {host}\n  http:\n    paths:\n    - path: /\n      pathType: Prefix\n      backend:\n        service:\n          name: {svc}\n          port:\n            name: grpc\n"),
    )
}

/// The Service `name` (port `grpc`) with one ready endpoint on 127.0.0.1:`port`.
fn grpc_service(name: &str, port: u16) -> String {
    join(&[
        &manifests::service("app", name, &[(Some("grpc"), 80, port)]),
        &endpoint_slice(
            "app",
            &format!("{name}-0"),
            name,
            &[(Some("grpc"), port)],
            &[EndpointSpec::ready("127.0.0.1")],
        ),
    ])
}

/// rauta in front of one grpcio server, for [`HOST`].
fn site(extra: &[(&str, &str)]) -> (Rauta, GrpcServer, ManifestDir) {
    let server = GrpcServer::start();
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_class(),
            &grpc_service("echo", server.addr().port()),
            &grpc_ingress("echo", HOST, "echo", extra),
        ]),
    );
    (start(&dir, &[]), server, dir)
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("<no code>")
}

#[test]
fn every_call_shape_streams_with_metadata_and_trailers() {
    require!(grpc::need());
    let (rauta, _server, _dir) = site(&[]);
    let at = rauta.addr();

    let v = grpc::call(at, HOST, &["unary", "hello"]);
    assert_eq!(code(&v), "OK", "{v}");
    assert_eq!(v["responses"][0], "hello", "{v}");
    assert_eq!(v["initial_metadata"]["x-echo-header"], "hi", "{v}");
    assert_eq!(v["trailing_metadata"]["x-echo-trailer"], "done", "{v}");

    // An error status from the server, with its trailers, passes as is.
    let v = grpc::call(at, HOST, &["unary", "status:5:gone away"]);
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    assert_eq!(v["details"], "gone away", "{v}");
    assert_eq!(v["trailing_metadata"]["x-echo-trailer"], "done", "{v}");

    let v = grpc::call(at, HOST, &["unary-large", "5000000"]);
    assert_eq!(code(&v), "OK", "{v}");
    assert_eq!(v["matched"], true, "5 MB each way: {v}");

    let v = grpc::call(at, HOST, &["server-stream", "200", "1000"]);
    assert_eq!(code(&v), "OK", "{v}");
    assert_eq!(
        (v["count"].as_u64(), &v["valid"]),
        (Some(200), &Value::Bool(true)),
        "{v}"
    );
    assert_eq!(v["trailing_metadata"]["x-echo-trailer"], "done", "{v}");

    let v = grpc::call(at, HOST, &["client-stream", "50", "3000"]);
    assert_eq!(code(&v), "OK", "{v}");
    assert_eq!(v["responses"][0], "count=50 bytes=150000", "{v}");

    // Each echo comes back before the next message is sent: nothing is
    // buffered until the end of the call.
    let v = grpc::call(at, HOST, &["bidi", "20"]);
    assert_eq!(code(&v), "OK", "{v}");
    assert_eq!(v["matched"], true, "{v}");

    let m = rauta.scrape();
    let calls = m.value(
        "rauta_requests_total",
        &[("host", HOST), ("protocol", "h2")],
    );
    assert!(
        calls >= 6.0,
        "calls counted per route: {calls}\n{}",
        m.text()
    );
}

#[test]
fn many_calls_share_few_upstream_connections() {
    require!(grpc::need());
    let (rauta, server, _dir) = site(&[]);
    let v = grpc::call(rauta.addr(), HOST, &["many", "400", "40"]);
    assert_eq!(v["succeeded"], 400, "{v}");
    // One connection per shard at most carries all 40 concurrent calls
    // (nginx and HAProxy open one per call).
    let endpoint = server.addr().to_string();
    let m = rauta.scrape();
    let open = m.value(
        "rauta_upstream_http2_connections",
        &[("endpoint", &endpoint)],
    );
    assert!(
        (1.0..=2.0).contains(&open),
        "HTTP/2 connections to {endpoint}: {open}\n{}",
        m.text()
    );
}

#[test]
fn rauta_answers_grpc_clients_with_grpc_statuses() {
    require!(grpc::need());
    let server = GrpcServer::start();
    let down = free_port();
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_class(),
            &grpc_service("echo", server.addr().port()),
            &grpc_ingress(
                "slow",
                "slow.example.com",
                "echo",
                &[("nginx.ingress.kubernetes.io/proxy-read-timeout", "1")],
            ),
            &grpc_service("down", down),
            &grpc_ingress("down", "down.example.com", "down", &[]),
            &backend_for("app", "empty", "grpc", &[]),
            &grpc_ingress("empty", "empty.example.com", "empty", &[]),
        ]),
    );
    let rauta = start(&dir, &[]);
    let at = rauta.addr();

    let v = grpc::call(at, "nowhere.example.com", &["unary", "x"]);
    assert_eq!(code(&v), "UNIMPLEMENTED", "no route: {v}");
    assert!(
        v["details"].as_str().unwrap_or("").starts_with("404"),
        "{v}"
    );

    let v = grpc::call(at, "empty.example.com", &["unary", "x"]);
    assert_eq!(code(&v), "UNAVAILABLE", "no endpoint: {v}");

    let v = grpc::call(at, "down.example.com", &["unary", "x"]);
    assert_eq!(code(&v), "UNAVAILABLE", "connect refused: {v}");
    assert!(
        v["details"].as_str().unwrap_or("").starts_with("502"),
        "{v}"
    );

    // proxy-read-timeout 1 s against a 3 s handler, under the client's 10 s deadline.
    let v = grpc::call_with(
        at,
        "slow.example.com",
        &["unary", "sleep:3000"],
        &["--timeout", "10"],
    );
    assert_eq!(code(&v), "DEADLINE_EXCEEDED", "upstream timeout: {v}");
    assert!(
        v["details"].as_str().unwrap_or("").starts_with("504"),
        "{v}"
    );
    // The same route serves a quick call.
    let v = grpc::call(at, "slow.example.com", &["unary", "quick"]);
    assert_eq!(code(&v), "OK", "{v}");
}

#[test]
fn a_cancelled_call_is_cancelled_at_the_server() {
    require!(grpc::need());
    let (rauta, _server, _dir) = site(&[]);
    let v = grpc::call(rauta.addr(), HOST, &["cancel"]);
    assert_eq!(v["ok"], true, "{v}");
    eventually("the server saw the cancel", || {
        let v = grpc::call(rauta.addr(), HOST, &["stats"]);
        v["stats"]["cancelled"].as_u64().unwrap_or(0) >= 1
    });
}
