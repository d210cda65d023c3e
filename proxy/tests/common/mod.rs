//! Shared set-up for the integration tests: the real `rauta` binary on
//! manifests written to a temporary directory, in front of real backends.
#![allow(dead_code)]

use rauta_testkit::{backend_for, ingress_class, Backend, ManifestDir, Rauta};
use std::time::Duration;

/// Our IngressClass, not marked default.
pub fn class() -> String {
    ingress_class("rauta", "rauta.io/ingress-controller", false)
}

/// Starts rauta on `dir` with extra flags.
pub fn start(dir: &ManifestDir, extra: &[&str]) -> Rauta {
    Rauta::start(env!("CARGO_BIN_EXE_rauta"), dir.path(), extra)
}

/// A named backend and the Service + EndpointSlices for it in `ns`
/// (Service port 80 named `http`).
pub fn service(ns: &str, name: &str) -> (Backend, String) {
    let b = Backend::start(name);
    let yaml = backend_for(ns, name, "http", &[&b]);
    (b, yaml)
}

/// One path entry of an Ingress rule (YAML list item).
pub fn path(path: &str, path_type: &str, service: &str) -> String {
    format!(
        "- path: {path}\n  pathType: {path_type}\n  backend:\n    service:\n      name: {service}\n      port:\n        name: http\n"
    )
}

/// An Ingress rule (YAML list item) for `host` (None: no host) with paths.
pub fn rule(host: Option<&str>, paths: &[String]) -> String {
    let mut y = String::new();
    match host {
        Some(h) => y.push_str(&format!("- host: \"{h}\"\n  http:\n    paths:\n")),
        None => y.push_str("- http:\n    paths:\n"),
    }
    for p in paths {
        for line in p.lines() {
            y.push_str("      ");
            y.push_str(line);
            y.push('\n');
        }
    }
    y
}

/// Which backend answered a GET (its `x-backend` header), or the status
/// when the proxy answered itself.
pub fn who(rauta: &Rauta, host: &str, path: &str) -> String {
    match rauta_testkit::get(rauta.addr(), host, path) {
        Ok(r) => r.header("x-backend").map(str::to_string).unwrap_or_else(|| r.status.to_string()),
        Err(e) => format!("error: {e}"),
    }
}

/// Polls until `f` returns true (panics after `timeout`).
pub fn eventually(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
