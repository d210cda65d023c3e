//! Helpers for the annotation-family tests (canary, affinity, limits):
//! Ingresses with ingress-nginx's prefix, a manifests set, and a request
//! that reports which backend answered.

use crate::common::start;
use rauta_testkit::client::{request, Conn};
use rauta_testkit::manifests::{join, rule};
use rauta_testkit::{ingress, rauta_class, Backend, ManifestDir, Rauta};
use std::net::SocketAddr;

const NGINX: &str = "nginx.ingress.kubernetes.io/";

/// One Ingress `name` in `web`; annotation keys without a `/` get
/// ingress-nginx's prefix, others are used as written.
pub fn ing(name: &str, annotations: &[(&str, &str)], host: &str, paths: &[String]) -> String {
    let keys: Vec<String> = annotations
        .iter()
        .map(|(k, _)| {
            if k.contains('/') {
                (*k).to_string()
            } else {
                format!("{NGINX}{k}")
            }
        })
        .collect();
    let pairs: Vec<(&str, &str)> = keys
        .iter()
        .zip(annotations)
        .map(|(k, (_, v))| (k.as_str(), *v))
        .collect();
    ingress("web", name, Some("rauta"), &pairs, &rule(Some(host), paths))
}

/// Starts rauta on the class, `services` (YAML) and `ingresses`, in `all.yaml`.
pub fn serve(services: &[&str], ingresses: &[String], flags: &[&str]) -> (ManifestDir, Rauta) {
    let class = rauta_class();
    let mut docs: Vec<&str> = vec![&class];
    docs.extend(services.iter().copied());
    docs.extend(ingresses.iter().map(String::as_str));
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&docs));
    let rauta = start(&dir, flags);
    (dir, rauta)
}

/// The backend (`x-backend`) that answered `GET path` with `headers`, or
/// the status when no backend did.
pub fn who(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let r = request(addr, "GET", host, path, headers, b"").expect("an answer");
    r.header("x-backend")
        .map_or_else(|| r.status.to_string(), str::to_string)
}

/// Like [`who`], on a kept-alive connection.
pub fn who_on(conn: &mut Conn, host: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let r = conn
        .request("GET", host, path, headers, b"")
        .expect("an answer");
    r.header("x-backend")
        .map_or_else(|| r.status.to_string(), str::to_string)
}

/// The backends' Service YAML, for [`serve`].
pub fn yaml<'a>(services: &'a [&'a (Backend, String)]) -> Vec<&'a str> {
    services.iter().map(|(_, y)| y.as_str()).collect()
}
