//! Every manifest under deploy/ is checked against the Kubernetes 1.33 API
//! schemas with `kubernetes-validate` (PyPI; it ships the schemas, so it
//! runs offline; `scripts/setup.sh` installs it), in strict mode so that a
//! misspelt field fails. The seccomp profile is checked for what the
//! DaemonSet relies on.

use rauta_testkit::{require, Need};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The validator's command.
const VALIDATOR: &str = "kubernetes-validate";
/// The API version the manifests target (k8s-openapi's `v1_33`).
const KUBERNETES_VERSION: &str = "1.33.0";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every `*.yaml`/`*.yml` under `dir`, recursively, sorted.
fn manifests(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(manifests(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Runs the validator on `files`; returns (success, output).
fn validate(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(VALIDATOR)
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {VALIDATOR}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn every_manifest_in_deploy_is_valid() {
    require!(Need::tool(VALIDATOR));
    let files = manifests(&deploy_dir());
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(deploy_dir())
                .unwrap_or(f)
                .display()
                .to_string()
        })
        .collect();
    for expected in [
        "00-namespace.yaml",
        "01-rbac.yaml",
        "02-ingressclass.yaml",
        "03-daemonset.yaml",
        "examples/echo.yaml",
        "examples/rbac-namespaced.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "deploy/{expected} is missing: {names:?}"
        );
    }
    let (ok, output) = validate(&files);
    assert!(ok, "deploy/ has invalid manifests:\n{output}");
}

/// The rules of the `kind` named `name` in `file`: (apiGroup/resource, verb).
fn rbac_rules(file: &str, kind: &str, name: &str) -> Vec<(String, String)> {
    use serde::Deserialize;
    let path = deploy_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let doc = Value::deserialize(doc).expect("YAML");
        if doc["kind"] != kind || doc["metadata"]["name"] != name {
            continue;
        }
        for rule in doc["rules"].as_array().expect("rules") {
            let strings = |key: &str| -> Vec<String> {
                (rule[key].as_array().into_iter().flatten())
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            };
            for group in strings("apiGroups") {
                for resource in strings("resources") {
                    for verb in strings("verbs") {
                        out.push((format!("{group}/{resource}"), verb));
                    }
                }
            }
        }
    }
    assert!(!out.is_empty(), "no {kind} {name} in {file}");
    out
}

/// What the API source reads (list + watch) and writes, by API group.
const READ_NAMESPACED: [&str; 11] = [
    "networking.k8s.io/ingresses",
    "/services",
    "/secrets",
    "/configmaps",
    "discovery.k8s.io/endpointslices",
    "gateway.networking.k8s.io/gateways",
    "gateway.networking.k8s.io/httproutes",
    "gateway.networking.k8s.io/grpcroutes",
    "gateway.networking.k8s.io/tlsroutes",
    "gateway.networking.k8s.io/backendtlspolicies",
    "gateway.networking.k8s.io/referencegrants",
];
const READ_CLUSTER: [&str; 3] = [
    "networking.k8s.io/ingressclasses",
    "gateway.networking.k8s.io/gatewayclasses",
    "/namespaces",
];
const STATUS_NAMESPACED: [&str; 6] = [
    "networking.k8s.io/ingresses/status",
    "gateway.networking.k8s.io/gateways/status",
    "gateway.networking.k8s.io/httproutes/status",
    "gateway.networking.k8s.io/grpcroutes/status",
    "gateway.networking.k8s.io/tlsroutes/status",
    "gateway.networking.k8s.io/backendtlspolicies/status",
];
const STATUS_CLUSTER: &str = "gateway.networking.k8s.io/gatewayclasses/status";

fn grants(rules: &[(String, String)], resource: &str, verbs: &[&str]) -> bool {
    verbs
        .iter()
        .all(|v| rules.iter().any(|(r, verb)| r == resource && verb == v))
}

#[test]
fn rbac_grants_what_the_api_source_reads_and_writes() {
    // Every namespace: one ClusterRole.
    let cluster = rbac_rules("01-rbac.yaml", "ClusterRole", "rauta");
    for resource in READ_NAMESPACED.iter().chain(&READ_CLUSTER) {
        assert!(grants(&cluster, resource, &["list", "watch"]), "{resource}");
    }
    for resource in STATUS_NAMESPACED.iter().chain([&STATUS_CLUSTER]) {
        assert!(grants(&cluster, resource, &["patch"]), "{resource}");
    }
    assert!(grants(&cluster, "events.k8s.io/events", &["create"]));

    // --watch-namespace: the namespaced kinds in a Role, the cluster-scoped
    // ones in a ClusterRole that grants nothing namespaced.
    let file = "examples/rbac-namespaced.yaml";
    let role = rbac_rules(file, "Role", "rauta");
    for resource in READ_NAMESPACED {
        assert!(grants(&role, resource, &["list", "watch"]), "{resource}");
    }
    for resource in STATUS_NAMESPACED {
        assert!(grants(&role, resource, &["patch"]), "{resource}");
    }
    assert!(grants(&role, "events.k8s.io/events", &["create"]));
    let scoped = rbac_rules(file, "ClusterRole", "rauta-cluster-scoped");
    for resource in READ_CLUSTER {
        assert!(grants(&scoped, resource, &["list", "watch"]), "{resource}");
    }
    assert!(grants(&scoped, STATUS_CLUSTER, &["patch"]));
    for (resource, _) in &scoped {
        assert!(
            READ_CLUSTER.contains(&resource.as_str()) || resource == STATUS_CLUSTER,
            "the cluster-wide part grants {resource}"
        );
    }
}

#[test]
fn the_validator_rejects_a_misspelt_field() {
    require!(Need::tool(VALIDATOR));
    // Guards against a validator that passes everything (e.g. schemas missing).
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x, namespace: y}\n\
         spec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n\
         \x20   spec:\n      hostNetwork: true\n      containers: [{name: c, image: x, imagePullPolicy: Sometimes, portz: []}]\n",
    )
    .expect("write");
    let (ok, output) = validate(&[bad]);
    assert!(!ok, "a misspelt field passed validation:\n{output}");
    assert!(output.contains("portz"), "{output}");
}

#[test]
fn seccomp_profile_allows_io_uring_and_bpf() {
    let path = deploy_dir().join("seccomp/rauta-io-uring.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let profile: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        profile["defaultAction"], "SCMP_ACT_ERRNO",
        "an allowlist profile"
    );
    let rules = profile["syscalls"].as_array().expect("syscalls");
    // Unconditional rules only: no args, no capability or arch conditions.
    let unconditional = |action: &str, name: &str| {
        rules.iter().any(|r| {
            r["action"] == action
                && r["args"].as_array().is_none_or(Vec::is_empty)
                && r["includes"]
                    .as_object()
                    .is_none_or(serde_json::Map::is_empty)
                && r["excludes"]
                    .as_object()
                    .is_none_or(serde_json::Map::is_empty)
                && r["names"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|n| n == name))
        })
    };
    let mentioned = |name: &str| {
        rules
            .iter()
            .filter(|r| {
                r["names"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|n| n == name))
            })
            .count()
    };
    for name in [
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "bpf",
        "epoll_wait",
        "accept4",
        "setsockopt",
        "mmap",
    ] {
        assert!(
            unconditional("SCMP_ACT_ALLOW", name),
            "{name} must be allowed"
        );
        assert_eq!(mentioned(name), 1, "{name} must appear once");
    }
    // Container escapes stay blocked (the default action denies them).
    for name in [
        "mount",
        "unshare",
        "setns",
        "ptrace",
        "keyctl",
        "clone3",
        "kexec_load",
    ] {
        assert!(
            !unconditional("SCMP_ACT_ALLOW", name),
            "{name} must not be allowed"
        );
    }
}
