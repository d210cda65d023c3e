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

/// Service `name` in `web` (port 80, named `http`) whose endpoints are
/// 127.0.0.1 on each of `ports` (any servers, scripted ones too), one
/// EndpointSlice each; no ports: a Service without endpoints.
pub fn service_on(name: &str, ports: &[u16]) -> String {
    use rauta_testkit::{endpoint_slice, service, EndpointSpec};
    let target = ports.first().copied().unwrap_or(80);
    let mut docs = vec![service("web", name, &[(Some("http"), 80, target)])];
    for (i, port) in ports.iter().enumerate() {
        let mut ep = EndpointSpec::ready("127.0.0.1");
        ep.pod = Some(format!("{name}-{i}"));
        docs.push(endpoint_slice(
            "web",
            &format!("{name}-{i}"),
            name,
            &[(Some("http"), *port)],
            &[ep],
        ));
    }
    if ports.is_empty() {
        let slice = format!("{name}-0");
        docs.push(endpoint_slice(
            "web",
            &slice,
            name,
            &[(Some("http"), 80)],
            &[],
        ));
    }
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    join(&refs)
}

/// Starts rauta with one shard (round robin is then predictable) on the
/// class and `docs`, in `all.yaml`.
pub fn serve_docs(docs: &[&str]) -> (ManifestDir, Rauta) {
    serve_docs_with(docs, &["--shards", "1"])
}

/// [`serve_docs`] with rauta started with `args`.
pub fn serve_docs_with(docs: &[&str], args: &[&str]) -> (ManifestDir, Rauta) {
    let class = rauta_class();
    let mut all: Vec<&str> = vec![&class];
    all.extend_from_slice(docs);
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&all));
    let rauta = start(&dir, args);
    (dir, rauta)
}

/// Asserts that the log reports a problem of Ingress `web/name` in
/// `all.yaml` that mentions `key`.
pub fn assert_reported(rauta: &Rauta, name: &str, key: &str) {
    let log = rauta.log();
    let line = log
        .lines()
        .find(|l| l.contains(&format!("Ingress web/{name}")) && l.contains(key));
    assert!(
        line.is_some_and(|l| l.contains("all.yaml")),
        "a problem naming all.yaml, Ingress web/{name} and {key}:\n{log}"
    );
}
