//! End to end: the real `rauta` binary with `--kubernetes` against a fake
//! API server (real list/watch wire format, real socket), routing to real
//! backends; plus the command-line rules for choosing the source.

use crate::common::BIN;
use rauta_testkit::fake_api::{status_addresses, FakeApi};
use rauta_testkit::{eventually, free_port, tls_secret, Backend, Rauta, Signal};
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;

/// `rauta serve --kubernetes` against `api` (one shard, pod name
/// `rauta-test-pod`) with more flags, started and ready.
fn start(api: &FakeApi, args: &[&str]) -> Rauta {
    Rauta::builder(BIN)
        .kubernetes(api.kubeconfig("kubeconfig"))
        .args(["--shards", "1"])
        .args(args)
        .env("POD_NAME", "rauta-test-pod")
        .start()
}

/// EndpointSlice demo/echo-abc: these ready IPs on `port`.
fn slice(ips: &[&str], port: u16) -> Value {
    let endpoints: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "echo-abc", "namespace": "demo",
                     "labels": {"kubernetes.io/service-name": "echo"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port}],
        "endpoints": endpoints,
    })
}

fn seed(api: &FakeApi, port: u16) {
    api.apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "rauta"},
        "spec": {"controller": "rauta.io/ingress-controller"},
    }));
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "echo", "namespace": "demo"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]},
    }));
    api.apply(slice(&["127.0.0.1"], port));
    api.apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "echo", "namespace": "demo"},
        "spec": {"ingressClassName": "rauta", "rules": [{"host": "echo.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "echo", "port": {"name": "http"}}}}
        ]}}]},
    }));
}

#[test]
fn routes_what_the_api_server_says_and_follows_it() {
    let a = Backend::start("a");
    let api = FakeApi::start();
    seed(&api, a.port());
    let rauta = start(
        &api,
        &[
            "--publish-address",
            "192.0.2.10",
            "--lease-namespace",
            "rauta-system",
            "--admin-reuse-port",
        ],
    );
    assert_eq!(rauta.who("echo.example.com", "/"), "a");
    assert_eq!(rauta.who("other.example.com", "/"), "404");

    // The only instance leads: it holds the Lease and writes the status.
    api.wait_for("the Ingress status", |api| {
        let ing = api.get("ingresses", "demo", "echo")?;
        (status_addresses(&ing) == ["192.0.2.10"]).then_some(())
    });
    let lease = api
        .get("leases", "rauta-system", "rauta-leader")
        .expect("the Lease");
    assert_eq!(lease["spec"]["holderIdentity"], "rauta-test-pod");

    // Scale out: a second pod (on 127.0.0.2, same port) joins the slice.
    let b = Backend::start_on("b", ("127.0.0.2", a.port()));
    api.apply(slice(&["127.0.0.1", "127.0.0.2"], a.port()));
    eventually("traffic on the new endpoint", || {
        rauta.who("echo.example.com", "/") == "b"
    });
    // Scale in: only the new pod is left.
    api.apply(slice(&["127.0.0.2"], a.port()));
    eventually("traffic only on the remaining endpoint", || {
        (0..4).all(|_| rauta.who("echo.example.com", "/") == "b")
    });

    // The API server goes away: the last table keeps serving, /readyz stays 200.
    api.set_down(true);
    let refused = api.refused();
    eventually("rauta failing to reach the API server", || {
        api.refused() > refused
    });
    assert_eq!(rauta.who("echo.example.com", "/"), "b");
    assert_eq!(rauta.admin_get("/readyz").map(|r| r.status).ok(), Some(200));
    // Changes made meanwhile arrive once it is back.
    api.apply(slice(&["127.0.0.1"], a.port()));
    api.set_down(false);
    eventually("the change made during the outage", || {
        (0..4).all(|_| rauta.who("echo.example.com", "/") == "a")
    });
    drop(b);
}

#[test]
fn sigterm_releases_the_lease() {
    let a = Backend::start("a");
    let api = FakeApi::start();
    seed(&api, a.port());
    let mut rauta = start(
        &api,
        &["--lease-namespace", "rauta-system", "--drain-timeout", "2s"],
    );
    api.wait_for("the Lease", |api| {
        let lease = api.get("leases", "rauta-system", "rauta-leader")?;
        (lease["spec"]["holderIdentity"] == "rauta-test-pod").then_some(())
    });
    // Without a publish address, no status is written.
    assert!(api.requests().iter().all(|r| !r.path.ends_with("/status")));
    rauta.signal(Signal::SIGTERM);
    let status = rauta.wait_exited();
    assert!(status.success(), "{status}\n{}", rauta.log());
    let lease = api
        .get("leases", "rauta-system", "rauta-leader")
        .expect("the Lease");
    assert!(lease["spec"]["holderIdentity"].is_null(), "{lease:#}");
}

#[test]
fn https_with_a_secret_from_the_api_server() {
    use rauta_testkit::tls::{client_config, Ca, TlsConn};
    let a = Backend::start("a");
    let api = FakeApi::start();
    seed(&api, a.port());
    let ca = Ca::new();
    let first = ca.issue(&["echo.example.com"], 2031);
    api.apply_yaml(&tls_secret(
        "demo",
        "echo-tls",
        &first.cert_pem,
        &first.key_pem,
    ));
    api.apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "echo", "namespace": "demo"},
        "spec": {"ingressClassName": "rauta",
            "tls": [{"hosts": ["echo.example.com"], "secretName": "echo-tls"}],
            "rules": [{"host": "echo.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "echo", "port": {"name": "http"}}}}
            ]}}]},
    }));
    let https = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let rauta = start(
        &api,
        &[
            "--lease-namespace",
            "rauta-system",
            "--listen-tls",
            &https.to_string(),
        ],
    );
    let served = || {
        TlsConn::open(https, Some("echo.example.com"), &client_config(false))
            .map(|c| c.server_cert())
            .unwrap_or_default()
    };
    eventually("the Secret's certificate", || served() == first.der);
    let mut conn =
        TlsConn::open(https, Some("echo.example.com"), &client_config(false)).expect("handshake");
    let r = conn.get("echo.example.com", "/").expect("response");
    assert_eq!(r.header("x-backend"), Some("a"));
    // Plain HTTP is redirected to the TLS port.
    let plain = rauta_testkit::get(rauta.addr(), "echo.example.com", "/x").expect("answer");
    assert_eq!(plain.status, 308);
    assert_eq!(
        plain.header("location"),
        Some(format!("https://echo.example.com:{}/x", https.port()).as_str())
    );

    // The Secret is renewed through the API: new handshakes get it.
    let renewed = ca.issue(&["echo.example.com"], 2035);
    api.apply_yaml(&tls_secret(
        "demo",
        "echo-tls",
        &renewed.cert_pem,
        &renewed.key_pem,
    ));
    eventually("the renewed certificate", || served() == renewed.der);
    assert_eq!(
        conn.get("echo.example.com", "/")
            .expect("still served")
            .status,
        200
    );
}

/// Runs `rauta serve ARGS` expecting a usage error; returns its stderr.
fn usage_error(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .output()
        .expect("run rauta");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} should be a usage error"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn exactly_one_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path().to_str().expect("UTF-8 path");
    let err = usage_error(&[]);
    assert!(
        err.contains("--manifests") && err.contains("--kubernetes"),
        "{err}"
    );
    let err = usage_error(&["--manifests", dir, "--kubernetes"]);
    assert!(err.contains("cannot be used with"), "{err}");
    let err = usage_error(&["--manifests", dir, "--kubeconfig", "/nonexistent"]);
    assert!(err.contains("cannot be used with"), "{err}");
    let err = usage_error(&[
        "--kubernetes",
        "--publish-address",
        "192.0.2.1",
        "--publish-service",
        "ns/name",
    ]);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn bad_kubernetes_options_fail_before_serving() {
    for (args, expected) in [
        (
            vec!["--kubernetes", "--kubeconfig", "/nonexistent/kubeconfig"],
            "/nonexistent/kubeconfig",
        ),
        (
            vec!["--kubernetes", "--publish-service", "no-slash"],
            "NAMESPACE/NAME",
        ),
        (
            vec!["--kubernetes", "--publish-address", "not an address"],
            "neither an IP address nor a host name",
        ),
    ] {
        let out = Command::new(BIN)
            .arg("serve")
            .args(&args)
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .output()
            .expect("run rauta");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
