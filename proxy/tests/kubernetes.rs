//! End to end: the real `rauta` binary with `--kubernetes` against a fake
//! API server (real list/watch wire format, real socket), routing to real
//! backends; plus the command-line rules for choosing the source.

#[path = "../../k8s-sync/tests/fake_api/mod.rs"]
mod fake_api;

use fake_api::{status_addresses, FakeApi};
use rauta_testkit::{free_port, Backend, Conn};
use serde_json::{json, Value};
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rauta");
const WAIT: Duration = Duration::from_secs(20);

/// `rauta serve --kubernetes ...` on free ports, killed on drop (the log
/// is printed when a test fails).
struct KubeRauta {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    log: tempfile::NamedTempFile,
}

impl KubeRauta {
    /// Starts it and waits for `/readyz` (three attempts if it exits early,
    /// e.g. when a free port was taken meanwhile).
    fn start(args: &[&str]) -> KubeRauta {
        let mut failures = String::new();
        for _ in 0..3 {
            let mut rauta = KubeRauta::spawn(args);
            let deadline = Instant::now() + WAIT;
            loop {
                if let Some(status) = rauta.try_exit() {
                    failures.push_str(&format!("exited with {status}:\n{}\n", rauta.log()));
                    break;
                }
                if rauta
                    .admin_get("/readyz")
                    .is_some_and(|(code, _)| code == 200)
                {
                    return rauta;
                }
                assert!(Instant::now() < deadline, "rauta not ready within {WAIT:?}");
                thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("rauta --kubernetes did not start:\n{failures}");
    }

    fn spawn(args: &[&str]) -> KubeRauta {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let log = tempfile::NamedTempFile::new().expect("log file");
        let out: File = log.as_file().try_clone().expect("log fd");
        let err: File = log.as_file().try_clone().expect("log fd");
        let child = Command::new(BIN)
            .args(["serve", "--kubernetes", "--shards", "1"])
            .args(["--listen", &addr.to_string(), "--admin", &admin.to_string()])
            .args(args)
            .env("RUST_LOG", "info")
            .env("POD_NAME", "rauta-test-pod")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("run rauta");
        KubeRauta {
            child,
            addr,
            admin,
            log,
        }
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.log.path()).unwrap_or_default()).into_owned()
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Status and body of `GET path` on the admin port.
    fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        let mut conn = Conn::open(self.admin).ok()?;
        conn.set_timeout(Duration::from_secs(2)).ok()?;
        let resp = conn
            .request("GET", "localhost", path, &[("Connection", "close")], &[])
            .ok()?;
        Some((resp.status, resp.text()))
    }

    /// Which backend answered `GET /` for `host` (its `x-backend`), or the status.
    fn who(&self, host: &str) -> String {
        match rauta_testkit::get(self.addr, host, "/") {
            Ok(r) => r
                .header("x-backend")
                .map(str::to_string)
                .unwrap_or_else(|| r.status.to_string()),
            Err(e) => format!("error: {e}"),
        }
    }
}

impl Drop for KubeRauta {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("---- rauta log ----\n{}\n---- end ----", self.log());
        }
    }
}

fn poll(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(20));
    }
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
    let kubeconfig = api.kubeconfig("kubeconfig");
    let rauta = KubeRauta::start(&[
        "--kubeconfig",
        kubeconfig.to_str().expect("UTF-8 path"),
        "--publish-address",
        "192.0.2.10",
        "--lease-namespace",
        "rauta-system",
        "--admin-reuse-port",
    ]);
    assert_eq!(rauta.who("echo.example.com"), "a");
    assert_eq!(rauta.who("other.example.com"), "404");

    // The only instance leads: it holds the Lease and writes the status.
    api.wait_for("the Ingress status", WAIT, |api| {
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
    poll("traffic on the new endpoint", || {
        rauta.who("echo.example.com") == "b"
    });
    // Scale in: only the new pod is left.
    api.apply(slice(&["127.0.0.2"], a.port()));
    poll("traffic only on the remaining endpoint", || {
        (0..4).all(|_| rauta.who("echo.example.com") == "b")
    });

    // The API server goes away: the last table keeps serving, /readyz stays 200.
    api.set_down(true);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(rauta.who("echo.example.com"), "b");
    assert_eq!(rauta.admin_get("/readyz").map(|(c, _)| c), Some(200));
    // Changes made meanwhile arrive once it is back.
    api.apply(slice(&["127.0.0.1"], a.port()));
    api.set_down(false);
    poll("the change made during the outage", || {
        (0..4).all(|_| rauta.who("echo.example.com") == "a")
    });
    drop(b);
}

#[test]
fn sigterm_releases_the_lease() {
    let a = Backend::start("a");
    let api = FakeApi::start();
    seed(&api, a.port());
    let kubeconfig = api.kubeconfig("kubeconfig");
    let mut rauta = KubeRauta::start(&[
        "--kubeconfig",
        kubeconfig.to_str().expect("UTF-8 path"),
        "--lease-namespace",
        "rauta-system",
        "--drain-timeout",
        "2s",
    ]);
    api.wait_for("the Lease", WAIT, |api| {
        let lease = api.get("leases", "rauta-system", "rauta-leader")?;
        (lease["spec"]["holderIdentity"] == "rauta-test-pod").then_some(())
    });
    // Without a publish address, no status is written.
    assert!(api.requests().iter().all(|r| !r.path.ends_with("/status")));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(rauta.child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = rauta.try_exit() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "rauta did not exit after SIGTERM"
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}\n{}", rauta.log());
    let lease = api
        .get("leases", "rauta-system", "rauta-leader")
        .expect("the Lease");
    assert!(lease["spec"]["holderIdentity"].is_null(), "{lease:#}");
}

/// A `kubernetes.io/tls` Secret demo/`name` as the API server returns it.
fn tls_secret(name: &str, leaf: &rauta_testkit::tls::Leaf) -> Value {
    use rauta_testkit::manifests::base64;
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "demo"},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64(leaf.cert_pem.as_bytes()),
            "tls.key": base64(leaf.key_pem.as_bytes()),
        },
    })
}

#[test]
fn https_with_a_secret_from_the_api_server() {
    use rauta_testkit::tls::{client_config, Ca, TlsConn};
    let a = Backend::start("a");
    let api = FakeApi::start();
    seed(&api, a.port());
    let ca = Ca::new();
    let first = ca.issue(&["echo.example.com"], 2031);
    api.apply(tls_secret("echo-tls", &first));
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
    let kubeconfig = api.kubeconfig("kubeconfig");
    let rauta = KubeRauta::start(&[
        "--kubeconfig",
        kubeconfig.to_str().expect("UTF-8 path"),
        "--lease-namespace",
        "rauta-system",
        "--listen-tls",
        &https.to_string(),
    ]);
    let served = || {
        TlsConn::open(https, Some("echo.example.com"), &client_config(false))
            .map(|c| c.server_cert())
            .unwrap_or_default()
    };
    poll("the Secret's certificate", || served() == first.der);
    let mut conn =
        TlsConn::open(https, Some("echo.example.com"), &client_config(false)).expect("handshake");
    let r = conn.get("echo.example.com", "/").expect("response");
    assert_eq!(r.header("x-backend"), Some("a"));
    // Plain HTTP is redirected to the TLS port.
    let plain = rauta_testkit::get(rauta.addr, "echo.example.com", "/x").expect("answer");
    assert_eq!(plain.status, 308);
    assert_eq!(
        plain.header("location"),
        Some(format!("https://echo.example.com:{}/x", https.port()).as_str())
    );

    // The Secret is renewed through the API: new handshakes get it.
    let renewed = ca.issue(&["echo.example.com"], 2035);
    api.apply(tls_secret("echo-tls", &renewed));
    poll("the renewed certificate", || served() == renewed.der);
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
