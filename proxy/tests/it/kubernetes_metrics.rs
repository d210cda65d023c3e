//! The control plane shows itself: the real `rauta` binary with
//! `--kubernetes` against the fake API server, its `rauta_kubernetes_*`
//! families scraped from `/metrics` as failures are injected, and
//! `--watch-namespace` keeping every namespaced read in its namespaces.

use crate::common::BIN;
use rauta_testkit::fake_api::{status_addresses, FakeApi};
use rauta_testkit::{eventually, Backend, ManifestDir, Metrics, Rauta};
use rauta_testkit::{require, Need};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

/// Every resource the API source watches (the `resource` label).
const RESOURCES: [&str; 14] = [
    "ingresses",
    "ingressclasses",
    "services",
    "endpointslices",
    "secrets",
    "configmaps",
    "namespaces",
    "gatewayclasses",
    "gateways",
    "httproutes",
    "grpcroutes",
    "tlsroutes",
    "backendtlspolicies",
    "referencegrants",
];

/// `rauta serve --kubernetes` against `api` (one shard) with more flags.
fn start(api: &FakeApi, args: &[&str]) -> Rauta {
    Rauta::builder(BIN)
        .kubernetes(api.kubeconfig("kubeconfig"))
        .args(["--shards", "1", "--lease-namespace", "rauta-system"])
        .args(args)
        .env("POD_NAME", "rauta-metrics-pod")
        .start()
}

/// EndpointSlice `ns`/echo-abc with these ready IPs on `port`.
fn slice(ns: &str, ips: &[&str], port: u16) -> Value {
    let endpoints: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "echo-abc", "namespace": ns,
                     "labels": {"kubernetes.io/service-name": "echo"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port}],
        "endpoints": endpoints,
    })
}

/// Ingress `ns`/`name` for `host` to Service echo, port `http`.
fn ingress(ns: &str, name: &str, host: &str, path: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ingressClassName": "rauta", "rules": [{"host": host, "http": {"paths": [
            {"path": path, "pathType": "Prefix",
             "backend": {"service": {"name": "echo", "port": {"name": "http"}}}}
        ]}}]},
    })
}

/// Service echo, its slice and an Ingress for `host` in `ns`, to `port`.
fn seed(api: &FakeApi, ns: &str, host: &str, port: u16) {
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "echo", "namespace": ns},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]},
    }));
    api.apply(slice(ns, &["127.0.0.1"], port));
    api.apply(ingress(ns, "echo", host, "/"));
}

fn class(api: &FakeApi) {
    api.apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "rauta"},
        "spec": {"controller": "rauta.io/ingress-controller"},
    }));
}

/// Scrapes until `check` holds; returns that scrape.
#[track_caller]
fn scrape_until(rauta: &Rauta, what: &str, check: impl Fn(&Metrics) -> bool) -> Metrics {
    rauta_testkit::eventually_some(what, || {
        let m = rauta.scrape();
        check(&m).then_some(m)
    })
}

fn errors(m: &Metrics, resource: &str) -> f64 {
    m.value(
        "rauta_kubernetes_watch_errors_total",
        &[("resource", resource)],
    )
}

fn restarts(m: &Metrics, resource: &str) -> f64 {
    m.value(
        "rauta_kubernetes_watch_restarts_total",
        &[("resource", resource)],
    )
}

fn objects(m: &Metrics, kind: &str) -> f64 {
    m.value("rauta_kubernetes_objects", &[("kind", kind)])
}

fn writes(m: &Metrics, kind: &str, result: &str) -> f64 {
    m.value(
        "rauta_kubernetes_status_writes_total",
        &[("kind", kind), ("result", result)],
    )
}

#[test]
fn the_api_source_shows_itself_on_metrics() {
    require!(Need::tool(&rauta_testkit::metrics::promtool()));
    let a = Backend::start("a");
    let api = FakeApi::start();
    class(&api);
    seed(&api, "demo", "echo.example.com", a.port());
    // An invalid Ingress: left out, and an Event on it.
    api.apply(ingress("demo", "bad", "bad.example.com", "no-slash"));
    let rauta = start(&api, &["--publish-address", "192.0.2.10"]);
    assert_eq!(rauta.who("echo.example.com", "/"), "a");

    // Elected, status written, the Event sent, the objects counted.
    let m = scrape_until(&rauta, "leader, status and Event", |m| {
        m.value("rauta_kubernetes_leader", &[]) == 1.0
            && writes(m, "Ingress", "ok") >= 1.0
            && m.value("rauta_kubernetes_events_total", &[("result", "ok")]) == 1.0
    });
    let text = m.text();
    for family in [
        "rauta_kubernetes_watch_errors_total counter",
        "rauta_kubernetes_watch_restarts_total counter",
        "rauta_kubernetes_objects gauge",
        "rauta_kubernetes_last_sync_timestamp_seconds gauge",
        "rauta_kubernetes_leader gauge",
        "rauta_kubernetes_leader_since_timestamp_seconds gauge",
        "rauta_kubernetes_status_writes_total counter",
        "rauta_kubernetes_events_total counter",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family}\n")),
            "{family}:\n{text}"
        );
    }
    for resource in RESOURCES {
        assert!(
            m.has(
                "rauta_kubernetes_watch_errors_total",
                &[("resource", resource)]
            ),
            "{resource}"
        );
        assert_eq!(errors(&m, resource), 0.0, "{resource}");
        assert_eq!(restarts(&m, resource), 0.0, "{resource}");
    }
    assert_eq!(objects(&m, "Ingress"), 2.0);
    assert_eq!(objects(&m, "Service"), 1.0);
    assert_eq!(objects(&m, "EndpointSlice"), 1.0);
    assert_eq!(objects(&m, "IngressClass"), 1.0);
    assert_eq!(writes(&m, "Ingress", "failed"), 0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let synced = m.value("rauta_kubernetes_last_sync_timestamp_seconds", &[]);
    assert!(
        (now - 60.0..=now + 1.0).contains(&synced),
        "{synced} vs {now}"
    );
    let since = m.value("rauta_kubernetes_leader_since_timestamp_seconds", &[]);
    assert!(
        (now - 60.0..=now + 1.0).contains(&since),
        "{since} vs {now}"
    );
    let (status, report) = rauta_testkit::metrics::promtool_check(text);
    assert!(
        status.success(),
        "promtool rejected the exposition:\n{report}\n--- exposition ---\n{text}"
    );

    // The EndpointSlice list fails from now on; the history is compacted
    // behind the watches and the connections drop, so every kind lists
    // again: EndpointSlices fail, again and again, and back off.
    api.fail_when(|r| {
        (r.method == "GET" && r.path == "/apis/discovery.k8s.io/v1/endpointslices" && !r.is_watch())
            .then_some(500)
    });
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "unrelated", "namespace": "elsewhere"},
        "spec": {"ports": [{"port": 80}]},
    }));
    // pacing: the Service watch takes in its event before the history goes.
    std::thread::sleep(Duration::from_millis(200));
    api.compact();
    api.drop_connections();
    let failing = scrape_until(&rauta, "EndpointSlice list errors", |m| {
        errors(m, "endpointslices") >= 2.0 && restarts(m, "ingresses") >= 1.0
    });
    assert!(restarts(&failing, "endpointslices") >= 1.0);
    // The other kinds had their 410 (an error) and listed again, once.
    assert!(errors(&failing, "ingressclasses") <= 1.0);
    // The last good table keeps serving.
    assert_eq!(rauta.who("echo.example.com", "/"), "a");

    // The API server answers again: the errors stop, changes flow.
    api.clear_failures();
    let b = Backend::start_on("b", ("127.0.0.2", a.port()));
    api.apply(slice("demo", &["127.0.0.2"], a.port()));
    eventually("the new endpoint after recovery", || {
        rauta.who("echo.example.com", "/") == "b"
    });
    let recovered = rauta.scrape();
    std::thread::sleep(Duration::from_millis(500)); // pacing: an absence of new errors
    let later = rauta.scrape();
    assert_eq!(
        errors(&later, "endpointslices"),
        errors(&recovered, "endpointslices")
    );
    assert_eq!(objects(&later, "Service"), 2.0);

    // A status write that fails is counted, and so is its retry.
    let ok = writes(&later, "Ingress", "ok");
    api.fail_when(|r| (r.method == "PATCH" && r.path.ends_with("/status")).then_some(500));
    api.apply(ingress("demo", "second", "second.example.com", "/"));
    scrape_until(&rauta, "a failed status write", |m| {
        writes(m, "Ingress", "failed") >= 1.0
    });
    api.clear_failures();
    api.wait_for("the status written on a retry", |api| {
        let second = api.get("ingresses", "demo", "second")?;
        (status_addresses(&second) == ["192.0.2.10"]).then_some(())
    });
    scrape_until(&rauta, "the retry counted", |m| {
        writes(m, "Ingress", "ok") == ok + 1.0
    });
    drop(b);
}

#[test]
fn a_manifests_source_exports_no_kubernetes_families() {
    let dir = ManifestDir::new();
    let rauta = Rauta::start(BIN, dir.path(), &["--shards", "1"]);
    let m = rauta.scrape();
    assert!(m.has("rauta_config_reloads_total", &[]));
    assert!(!m.text().contains("rauta_kubernetes_"), "{}", m.text());
}

#[test]
fn watch_namespace_serves_only_those_namespaces() {
    let a = Backend::start("a");
    let b = Backend::start_on("b", ("127.0.0.2", a.port()));
    let api = FakeApi::start();
    class(&api);
    seed(&api, "team-a", "a.example.com", a.port());
    seed(&api, "team-b", "b.example.com", a.port());
    api.apply(slice("team-b", &["127.0.0.2"], a.port()));
    let rauta = start(&api, &["--watch-namespace", "team-a"]);
    assert_eq!(rauta.who("a.example.com", "/"), "a");
    assert_eq!(rauta.who("b.example.com", "/"), "404");
    let m = scrape_until(&rauta, "the leader's counts", |m| {
        m.value("rauta_kubernetes_leader", &[]) == 1.0
    });
    assert_eq!(objects(&m, "Ingress"), 1.0);
    assert_eq!(objects(&m, "Service"), 1.0);

    // Changes in team-b are not seen.
    api.apply(ingress("team-b", "more", "more.example.com", "/"));
    api.apply(ingress("team-a", "more", "more.a.example.com", "/"));
    eventually("team-a's new Ingress", || {
        rauta.who("more.a.example.com", "/") == "a"
    });
    assert_eq!(rauta.who("more.example.com", "/"), "404");

    // Only team-a (and the Lease's namespace) was read for namespaced kinds.
    for r in api.requests() {
        let Some((resource, ns)) = r.resource() else {
            continue;
        };
        match resource {
            "ingressclasses" | "gatewayclasses" | "namespaces" => {
                assert_eq!(ns, None, "{} {}", r.method, r.path)
            }
            "leases" => assert_eq!(ns, Some("rauta-system"), "{}", r.path),
            _ => assert_eq!(ns, Some("team-a"), "{} {}", r.method, r.path),
        }
    }
    drop(b);

    // `rauta check` reads the same way.
    let kubeconfig = api.kubeconfig("check");
    let out = Command::new(BIN)
        .args(["check", "--kubernetes", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--watch-namespace", "team-a", "--output", "json"])
        .output()
        .expect("run rauta check");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    let ingresses: Vec<&str> = report["ingresses"]
        .as_array()
        .expect("ingresses")
        .iter()
        .filter_map(|i| i["ingress"].as_str())
        .collect();
    assert_eq!(ingresses, ["team-a/echo", "team-a/more"], "{report:#}");
    for r in api.requests().iter().filter(|r| r.client == "check") {
        let (resource, ns) = r.resource().expect("an API path");
        if !["ingressclasses", "gatewayclasses", "namespaces"].contains(&resource) {
            assert_eq!(ns, Some("team-a"), "{}", r.path);
        }
    }
}

#[test]
fn watch_namespace_flag_errors() {
    let dir = ManifestDir::new();
    let dir = dir.path().to_str().expect("UTF-8 path");
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .output()
            .expect("run rauta");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--manifests", dir, "--watch-namespace", "a"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
    let (code, err) = run(&[
        "--kubernetes",
        "--kubeconfig",
        "/nonexistent",
        "--watch-namespace",
        "a",
        "--tcp-services-configmap",
        "ingress/tcp",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("add --watch-namespace ingress"), "{err}");
    let (code, err) = run(&[
        "--kubernetes",
        "--kubeconfig",
        "/nonexistent",
        "--watch-namespace",
        "Bad_Name",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("Bad_Name"), "{err}");
}
