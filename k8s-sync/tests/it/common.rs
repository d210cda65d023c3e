//! Fixtures shared by the integration tests: inline manifests and helpers.

use rauta_k8s_sync::api::{ApiOptions, ApiSource, ClientSource, WatchBackoff};
use rauta_k8s_sync::manifests::load_dir;
use rauta_k8s_sync::objects::SourcedObject;
use rauta_k8s_sync::problem::{Problem, Severity};
use rauta_k8s_sync::translate::{translate, Translation};
use rauta_k8s_sync::{ClassSelector, RouteConfig};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Our IngressClass, not the default.
pub const CLASS: &str = "
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: rauta}
spec: {controller: rauta.io/ingress-controller}
---
";

/// Service demo/web (ports http 80 -> 8080, admin 9000 -> 9090) with one
/// slice: 10.0.0.1 ready, 10.0.0.2 ready by default, 10.0.0.3 not ready.
pub const WEB: &str = "
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: admin, port: 9000, targetPort: 9090}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: demo
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: admin, port: 9090}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: web-1}
- addresses: [10.0.0.2]
  targetRef: {kind: Pod, name: web-2}
- addresses: [10.0.0.3]
  conditions: {ready: false, serving: false, terminating: false}
  targetRef: {kind: Pod, name: web-3}
---
";

/// An Ingress demo/`name` of class rauta; `meta` is appended inside
/// `metadata: {...}` and `spec` is appended inside `spec: {...}`.
pub fn ingress(name: &str, meta: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\n\
         metadata: {{name: {name}, namespace: demo{meta}}}\n\
         spec: {{ingressClassName: rauta{spec}}}\n---\n"
    )
}

/// `, rules: [...]` with one rule for `host` (empty: none) and Prefix paths to `web:http`.
pub fn rules(host: &str, paths: &[&str]) -> String {
    let paths: Vec<String> = paths
        .iter()
        .map(|p| path(p, "Prefix", "web", "name: http"))
        .collect();
    let host = if host.is_empty() {
        String::new()
    } else {
        format!("host: {host}, ")
    };
    format!(
        ", rules: [{{{host}http: {{paths: [{}]}}}}]",
        paths.join(", ")
    )
}

/// One flow-style path entry; `port` is `name: x` or `number: n`.
pub fn path(path: &str, path_type: &str, service: &str, port: &str) -> String {
    format!(
        "{{path: {path:?}, pathType: {path_type}, backend: {{service: {{name: {service}, port: {{{port}}}}}}}}}"
    )
}

/// Writes `files` into a fresh directory and loads it.
pub fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<SourcedObject>, Vec<Problem>) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    let (objects, problems) = load_dir(dir.path());
    (dir, objects, problems)
}

/// Writes one file.
pub fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

/// Loads `yaml` as one file and asserts that loading found nothing wrong.
pub fn objects(yaml: &str) -> Vec<SourcedObject> {
    let (_dir, objects, problems) = load(&[("all.yaml", yaml)]);
    assert!(problems.is_empty(), "load problems: {problems:#?}");
    objects
}

/// Loads and translates `yaml` with the default selector.
pub fn run(yaml: &str) -> Translation {
    translate(&objects(yaml), &ClassSelector::default())
}

/// The messages of the problems of `severity`, rendered whole.
pub fn messages(t: &[Problem], severity: Severity) -> Vec<String> {
    t.iter()
        .filter(|p| p.severity == severity)
        .map(ToString::to_string)
        .collect()
}

/// How long "nothing happens" is watched for.
pub const QUIET: Duration = Duration::from_millis(400);

/// API-source options against `api` (kubeconfig file `name`) for tests:
/// short debounce, backoff (50 to 400 ms) and status-write retry.
pub fn options(api: &rauta_testkit::fake_api::FakeApi, name: &str) -> ApiOptions {
    let mut opts = ApiOptions::new(
        ClientSource::Kubeconfig(api.kubeconfig(name)),
        ClassSelector::default(),
    );
    opts.debounce = Duration::from_millis(20);
    opts.backoff = WatchBackoff {
        min: Duration::from_millis(50),
        max: Duration::from_millis(400),
    };
    opts.write_retry = Duration::from_millis(200);
    opts
}

/// Starts an API source with `opts`; its configurations arrive on the receiver.
pub fn start(opts: ApiOptions) -> (ApiSource, mpsc::Receiver<RouteConfig>) {
    let (tx, rx) = mpsc::channel();
    let source = ApiSource::spawn(opts, move |config| {
        let _ = tx.send(config);
    })
    .expect("start the API source");
    (source, rx)
}

/// Receives configurations until one satisfies `check`.
pub fn until(
    rx: &mpsc::Receiver<RouteConfig>,
    what: &str,
    check: impl Fn(&RouteConfig) -> bool,
) -> RouteConfig {
    let patience = rauta_testkit::patience();
    let deadline = Instant::now() + patience;
    let mut last = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(config) if check(&config) => return config,
            Ok(config) => last = Some(config),
            Err(_) => panic!("no configuration with {what} within {patience:?}; last: {last:#?}"),
        }
    }
}
