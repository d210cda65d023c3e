//! Set-up for the annotation tests of the upstream families (timeouts,
//! retries, external auth, error pages): Ingresses with ingress-nginx
//! annotations, Services over any backends' ports, and rauta on them.

use crate::common::start;
use rauta_testkit::manifests::{join, rule};
use rauta_testkit::{
    endpoint_slice, ingress, rauta_class, service, EndpointSpec, ManifestDir, Rauta,
};

const NGINX: &str = "nginx.ingress.kubernetes.io/";

/// One Ingress `name` in `web` with `annotations` (keys without prefix),
/// one host and its paths.
pub fn ing(name: &str, annotations: &[(&str, &str)], host: &str, paths: &[String]) -> String {
    let keys: Vec<String> = annotations
        .iter()
        .map(|(k, _)| format!("{NGINX}{k}"))
        .collect();
    let pairs: Vec<(&str, &str)> = keys
        .iter()
        .zip(annotations)
        .map(|(k, (_, v))| (k.as_str(), *v))
        .collect();
    ingress("web", name, Some("rauta"), &pairs, &rule(Some(host), paths))
}

/// Service `name` in `web` (port 80, named `http`) whose endpoints are
/// 127.0.0.1 on each of `ports`, in one EndpointSlice each.
pub fn service_on(name: &str, ports: &[u16]) -> String {
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
        docs.push(endpoint_slice(
            "web",
            &format!("{name}-0"),
            name,
            &[(Some("http"), 80)],
            &[],
        ));
    }
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    join(&refs)
}

/// Starts rauta (one shard unless `flags` say otherwise, so round robin
/// is predictable) on the class and `docs`.
pub fn serve(docs: &[&str], flags: &[&str]) -> (ManifestDir, Rauta) {
    let class = rauta_class();
    let mut all: Vec<&str> = vec![&class];
    all.extend_from_slice(docs);
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&all));
    let mut args = vec!["--shards", "1"];
    args.extend_from_slice(flags);
    let rauta = start(&dir, &args);
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
