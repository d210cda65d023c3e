//! Kubernetes manifest builders (YAML strings) and a temporary manifests
//! directory written atomically.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use tempfile::TempDir;

use crate::backend::Backend;

/// A temporary directory of manifest files, deleted on drop.
#[derive(Debug)]
pub struct ManifestDir {
    dir: TempDir,
}

impl Default for ManifestDir {
    fn default() -> Self {
        ManifestDir::new()
    }
}

impl ManifestDir {
    /// Creates an empty temporary directory.
    pub fn new() -> ManifestDir {
        ManifestDir {
            dir: tempfile::Builder::new()
                .prefix("rauta-manifests-")
                .tempdir()
                .expect("cannot create a temporary manifests directory"),
        }
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `yaml` to `file_name` atomically (a dot-prefixed temporary
    /// file in the same directory, then rename).
    pub fn write(&self, file_name: &str, yaml: &str) {
        let target = self.dir.path().join(file_name);
        let tmp = self.dir.path().join(format!(".{file_name}.tmp"));
        let result = (|| -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(yaml.as_bytes())?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &target)
        })();
        result.unwrap_or_else(|e| panic!("cannot write manifest {}: {e}", target.display()));
    }

    /// Deletes `file_name` (no error if it does not exist).
    pub fn remove(&self, file_name: &str) {
        let target = self.dir.path().join(file_name);
        match fs::remove_file(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot remove manifest {}: {e}", target.display()),
        }
    }
}

/// `s` as a double-quoted YAML scalar (JSON-style escaping).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Joins YAML documents with `---` lines.
pub fn join(docs: &[&str]) -> String {
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(doc);
        if !doc.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// An `IngressClass` named `name` for `controller`, marked default
/// (`ingressclass.kubernetes.io/is-default-class: "true"`) if `default`.
pub fn ingress_class(name: &str, controller: &str, default: bool) -> String {
    let mut y = String::new();
    y.push_str("apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n");
    let _ = writeln!(y, "  name: {}", quote(name));
    if default {
        y.push_str("  annotations:\n    ingressclass.kubernetes.io/is-default-class: \"true\"\n");
    }
    let _ = writeln!(y, "spec:\n  controller: {}", quote(controller));
    y
}

/// rauta's own IngressClass (`rauta`, controller
/// `rauta.io/ingress-controller`), not marked default.
pub fn rauta_class() -> String {
    ingress_class("rauta", "rauta.io/ingress-controller", false)
}

/// rauta's GatewayClass (`rauta`, controller `rauta.io/gateway-controller`)
/// and Gateway `ns`/`name` of that class with `listeners`, each a YAML flow
/// mapping such as `{name: http, port: 80, protocol: HTTP}`.
pub fn rauta_gateway(ns: &str, name: &str, listeners: &[&str]) -> String {
    let mut y = String::from(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\n\
         metadata: {name: rauta}\nspec: {controllerName: rauta.io/gateway-controller}\n---\n",
    );
    let _ = writeln!(
        y,
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n\
         metadata: {{name: {}, namespace: {}}}\n\
         spec:\n  gatewayClassName: rauta\n  listeners:",
        quote(name),
        quote(ns)
    );
    for l in listeners {
        let _ = writeln!(y, "  - {l}");
    }
    y
}

/// rauta's IngressClass and an Ingress `ns/all` of that class routing
/// every path of every host to Service `service` (port `http`).
pub fn catch_all(ns: &str, service: &str) -> String {
    let rules = rule(None, &[path("/", "Prefix", service)]);
    join(&[
        &rauta_class(),
        &ingress(ns, "all", Some("rauta"), &[], &rules),
    ])
}

/// One path entry of an Ingress rule (a YAML list item) to Service
/// `service`, port `http`.
pub fn path(path: &str, path_type: &str, service: &str) -> String {
    format!(
        "- path: {path}\n  pathType: {path_type}\n  backend:\n    service:\n      name: {service}\n      port:\n        name: http\n"
    )
}

/// An Ingress rule (a YAML list item, for [`ingress`]'s `rules_yaml`) for
/// `host` (`None`: any host) with `paths` (from [`path`]).
pub fn rule(host: Option<&str>, paths: &[String]) -> String {
    let mut y = String::new();
    match host {
        Some(h) => {
            let _ = writeln!(y, "- host: {}\n  http:\n    paths:", quote(h));
        }
        None => y.push_str("- http:\n    paths:\n"),
    }
    for p in paths {
        for line in p.lines() {
            let _ = writeln!(y, "      {line}");
        }
    }
    y
}

/// A `Service` with `ports` as (name, port, targetPort) over TCP.
pub fn service(ns: &str, name: &str, ports: &[(Option<&str>, u16, u16)]) -> String {
    let mut y = String::new();
    y.push_str("apiVersion: v1\nkind: Service\nmetadata:\n");
    let _ = writeln!(y, "  name: {}\n  namespace: {}", quote(name), quote(ns));
    y.push_str("spec:\n  type: ClusterIP\n");
    if ports.is_empty() {
        y.push_str("  ports: []\n");
    } else {
        y.push_str("  ports:\n");
        for (port_name, port, target) in ports {
            y.push_str("  - ");
            if let Some(n) = port_name {
                let _ = write!(y, "name: {}\n    ", quote(n));
            }
            let _ = writeln!(
                y,
                "port: {port}\n    targetPort: {target}\n    protocol: TCP"
            );
        }
    }
    y
}

/// One endpoint of an `EndpointSlice`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The endpoint address.
    pub ip: String,
    /// `conditions.ready` (omitted when `None`).
    pub ready: Option<bool>,
    /// `conditions.serving` (omitted when `None`).
    pub serving: Option<bool>,
    /// `conditions.terminating` (omitted when `None`).
    pub terminating: Option<bool>,
    /// `targetRef` Pod name (omitted when `None`).
    pub pod: Option<String>,
}

impl EndpointSpec {
    /// A ready endpoint: ready, serving, not terminating.
    pub fn ready(ip: &str) -> EndpointSpec {
        EndpointSpec {
            ip: ip.to_string(),
            ready: Some(true),
            serving: Some(true),
            terminating: Some(false),
            pod: None,
        }
    }

    /// A not-ready endpoint: not ready, not serving, not terminating.
    pub fn not_ready(ip: &str) -> EndpointSpec {
        EndpointSpec {
            ip: ip.to_string(),
            ready: Some(false),
            serving: Some(false),
            terminating: Some(false),
            pod: None,
        }
    }

    /// A terminating endpoint (not ready) that is still `serving` or not.
    pub fn terminating(ip: &str, serving: bool) -> EndpointSpec {
        EndpointSpec {
            ip: ip.to_string(),
            ready: Some(false),
            serving: Some(serving),
            terminating: Some(true),
            pod: None,
        }
    }
}

/// An `EndpointSlice` labelled for `service` with `ports` as (name, port)
/// and `endpoints` (addressType IPv6 if the first endpoint's IP has a `:`).
pub fn endpoint_slice(
    ns: &str,
    slice_name: &str,
    service: &str,
    ports: &[(Option<&str>, u16)],
    endpoints: &[EndpointSpec],
) -> String {
    let mut y = String::new();
    y.push_str("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n");
    let _ = writeln!(
        y,
        "  name: {}\n  namespace: {}",
        quote(slice_name),
        quote(ns)
    );
    let _ = writeln!(
        y,
        "  labels:\n    kubernetes.io/service-name: {}",
        quote(service)
    );
    let ipv6 = endpoints.first().is_some_and(|e| e.ip.contains(':'));
    let _ = writeln!(y, "addressType: {}", if ipv6 { "IPv6" } else { "IPv4" });
    if ports.is_empty() {
        y.push_str("ports: []\n");
    } else {
        y.push_str("ports:\n");
        for (name, port) in ports {
            y.push_str("- ");
            if let Some(n) = name {
                let _ = write!(y, "name: {}\n  ", quote(n));
            }
            let _ = writeln!(y, "port: {port}\n  protocol: TCP");
        }
    }
    if endpoints.is_empty() {
        y.push_str("endpoints: []\n");
    } else {
        y.push_str("endpoints:\n");
        for ep in endpoints {
            let _ = writeln!(y, "- addresses:\n  - {}", quote(&ep.ip));
            let conditions = [
                ("ready", ep.ready),
                ("serving", ep.serving),
                ("terminating", ep.terminating),
            ];
            if conditions.iter().any(|(_, v)| v.is_some()) {
                y.push_str("  conditions:\n");
                for (k, v) in conditions {
                    if let Some(v) = v {
                        let _ = writeln!(y, "    {k}: {v}");
                    }
                }
            }
            if let Some(pod) = &ep.pod {
                let _ = writeln!(
                    y,
                    "  targetRef:\n    kind: Pod\n    name: {}\n    namespace: {}",
                    quote(pod),
                    quote(ns)
                );
            }
        }
    }
    y
}

/// A `Service` `service` (port 80 named `port_name`, unnamed if empty;
/// targetPort = the first backend's port) plus one `EndpointSlice`
/// `<service>-<i>` per backend with a single ready endpoint 127.0.0.1 on
/// that backend's port (one slice with no endpoints if `backends` is
/// empty), joined as one multi-document YAML.
pub fn backend_for(ns: &str, service_name: &str, port_name: &str, backends: &[&Backend]) -> String {
    let port_name = (!port_name.is_empty()).then_some(port_name);
    let target = backends.first().map_or(80, |b| b.port());
    let mut docs = vec![service(ns, service_name, &[(port_name, 80, target)])];
    if backends.is_empty() {
        docs.push(endpoint_slice(
            ns,
            &format!("{service_name}-0"),
            service_name,
            &[(port_name, 80)],
            &[],
        ));
    }
    for (i, b) in backends.iter().enumerate() {
        let mut ep = EndpointSpec::ready("127.0.0.1");
        ep.pod = Some(format!("{service_name}-{i}"));
        docs.push(endpoint_slice(
            ns,
            &format!("{service_name}-{i}"),
            service_name,
            &[(port_name, b.port())],
            &[ep],
        ));
    }
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    join(&refs)
}

/// Removes the common leading indentation of the non-blank lines and
/// indents every line by `indent` spaces.
fn reindent(text: &str, indent: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let strip = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())
        .min()
        .unwrap_or(0);
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for l in lines {
        if l.trim().is_empty() {
            continue;
        }
        let _ = writeln!(out, "{pad}{}", &l[strip.min(l.len())..]);
    }
    out
}

/// A `kubernetes.io/tls` `Secret` with `tls.crt` and `tls.key` as base64
/// `data`, as `kubectl create secret tls` writes it.
pub fn tls_secret(ns: &str, name: &str, cert_pem: &str, key_pem: &str) -> String {
    let mut y = String::new();
    y.push_str("apiVersion: v1\nkind: Secret\nmetadata:\n");
    let _ = writeln!(y, "  name: {}\n  namespace: {}", quote(name), quote(ns));
    y.push_str("type: kubernetes.io/tls\ndata:\n");
    let _ = writeln!(y, "  tls.crt: {}", base64(cert_pem.as_bytes()));
    let _ = writeln!(y, "  tls.key: {}", base64(key_pem.as_bytes()));
    y
}

/// A `v1` `ConfigMap` with `data` (values quoted, so PEM keeps its lines).
pub fn config_map(ns: &str, name: &str, data: &[(&str, &str)]) -> String {
    let mut y = String::new();
    y.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata:\n");
    let _ = writeln!(y, "  name: {}\n  namespace: {}", quote(name), quote(ns));
    y.push_str("data:\n");
    for (k, v) in data {
        let _ = writeln!(y, "  {}: {}", quote(k), quote(v));
    }
    y
}

/// Standard base64 with padding (Secret `data` values).
pub fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// An `networking.k8s.io/v1` `Ingress`. `rules_yaml` is the body of
/// `spec.rules` (a YAML list, any consistent indentation; it is
/// re-indented); if it instead starts with a spec key (`rules:`,
/// `defaultBackend:`, `tls:`, `ingressClassName:`) it is used as the
/// whole `spec` body.
pub fn ingress(
    ns: &str,
    name: &str,
    class: Option<&str>,
    annotations: &[(&str, &str)],
    rules_yaml: &str,
) -> String {
    let mut y = String::new();
    y.push_str("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n");
    let _ = writeln!(y, "  name: {}\n  namespace: {}", quote(name), quote(ns));
    if !annotations.is_empty() {
        y.push_str("  annotations:\n");
        for (k, v) in annotations {
            let _ = writeln!(y, "    {}: {}", quote(k), quote(v));
        }
    }
    y.push_str("spec:\n");
    if let Some(class) = class {
        let _ = writeln!(y, "  ingressClassName: {}", quote(class));
    }
    let first = rules_yaml
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let is_spec_body = ["rules:", "defaultBackend:", "tls:", "ingressClassName:"]
        .iter()
        .any(|k| first.starts_with(k));
    if first.is_empty() {
        y.push_str("  rules: []\n");
    } else if is_spec_body {
        y.push_str(&reindent(rules_yaml, 2));
    } else {
        y.push_str("  rules:\n");
        y.push_str(&reindent(rules_yaml, 4));
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("a"), "\"a\"");
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(quote("\u{1}"), "\"\\u0001\"");
    }

    #[test]
    fn ingress_reindents_rules() {
        let rules = "
            - host: a.example
              http:
                paths:
                - path: /
                  pathType: Prefix
                  backend:
                    service:
                      name: svc
                      port:
                        name: http
        ";
        let y = ingress("default", "ing", Some("rauta"), &[("k", "v")], rules);
        assert!(y.contains(
            "spec:\n  ingressClassName: \"rauta\"\n  rules:\n    - host: a.example\n      http:\n"
        ));
        assert!(
            y.contains("\n                  name: http\n")
                || y.contains("\n                name: http\n")
        );
        let y = ingress("default", "ing", None, &[], "rules:\n- host: b\n");
        assert!(y.ends_with("spec:\n  rules:\n  - host: b\n"), "{y}");
        let y = ingress("default", "ing", None, &[], "");
        assert!(y.ends_with("spec:\n  rules: []\n"), "{y}");
    }

    #[test]
    fn rules_and_catch_all_parse() {
        let d = docs(&catch_all("ns", "svc"));
        assert_eq!(d[0]["kind"].as_str(), Some("IngressClass"));
        let rule0 = &d[1]["spec"]["rules"][0];
        assert!(rule0.get("host").is_none());
        assert_eq!(rule0["http"]["paths"][0]["path"].as_str(), Some("/"));
        assert_eq!(
            rule0["http"]["paths"][0]["backend"]["service"]["name"].as_str(),
            Some("svc")
        );
        let rules = [
            rule(
                Some("a.example"),
                &[path("/x", "Exact", "a"), path("/", "Prefix", "b")],
            ),
            rule(Some("*.w.example"), &[path("/", "Prefix", "w")]),
        ]
        .concat();
        let d = docs(&ingress("ns", "i", None, &[], &rules));
        let r = &d[0]["spec"]["rules"];
        assert_eq!(r[0]["host"].as_str(), Some("a.example"));
        assert_eq!(
            r[0]["http"]["paths"][1]["pathType"].as_str(),
            Some("Prefix")
        );
        assert_eq!(r[1]["host"].as_str(), Some("*.w.example"));
    }

    #[test]
    fn slices_and_services() {
        let s = service("ns", "svc", &[(Some("http"), 80, 8080), (None, 81, 8081)]);
        assert!(s.contains("  - name: \"http\"\n    port: 80\n    targetPort: 8080\n"));
        assert!(s.contains("  - port: 81\n    targetPort: 8081\n"));
        let e = endpoint_slice(
            "ns",
            "svc-a",
            "svc",
            &[(Some("http"), 8080)],
            &[
                EndpointSpec::ready("10.0.0.1"),
                EndpointSpec::terminating("10.0.0.2", true),
            ],
        );
        assert!(e.contains("kubernetes.io/service-name: \"svc\""));
        assert!(e.contains("addressType: IPv4"));
        assert!(e.contains("- addresses:\n  - \"10.0.0.2\"\n  conditions:\n    ready: false\n    serving: true\n    terminating: true\n"));
        let c = ingress_class("rauta", "rauta.dev/ingress", true);
        assert!(c.contains("is-default-class: \"true\""));
        assert_eq!(join(&["a: 1", "b: 2\n"]), "a: 1\n---\nb: 2\n");
    }

    /// Parses every `---`-separated document.
    fn docs(yaml: &str) -> Vec<serde_yaml_ng::Value> {
        yaml.split("\n---\n")
            .map(|d| serde_yaml_ng::from_str(d).unwrap_or_else(|e| panic!("{e}:\n{d}")))
            .collect()
    }

    #[test]
    fn yaml_parses_with_expected_structure() {
        let (a, b) = (Backend::start("a"), Backend::start("b"));
        let all = join(&[
            &backend_for("ns1", "svc", "http", &[&a, &b]),
            &ingress_class("rauta", "rauta.dev/c", false),
            &ingress(
                "ns1",
                "ing",
                Some("rauta"),
                &[("rauta.dev/x", "y: \"z\"")],
                "- host: h\n  http:\n    paths:\n    - path: /\n      pathType: Prefix\n      backend:\n        service:\n          name: svc\n          port:\n            name: http\n",
            ),
            &endpoint_slice("ns1", "v6", "svc6", &[(None, 80)], &[EndpointSpec { ip: "::1".into(), ..EndpointSpec::default() }]),
        ]);
        let d = docs(&all);
        assert_eq!(d.len(), 6, "{all}");
        assert_eq!(d[0]["kind"].as_str(), Some("Service"));
        assert_eq!(d[0]["spec"]["ports"][0]["name"].as_str(), Some("http"));
        assert_eq!(d[0]["spec"]["ports"][0]["port"].as_u64(), Some(80));
        assert_eq!(
            d[0]["spec"]["ports"][0]["targetPort"].as_u64(),
            Some(u64::from(a.port()))
        );
        for (i, be) in [&a, &b].iter().enumerate() {
            let s = &d[1 + i];
            assert_eq!(s["kind"].as_str(), Some("EndpointSlice"));
            assert_eq!(
                s["metadata"]["name"].as_str(),
                Some(format!("svc-{i}").as_str())
            );
            assert_eq!(
                s["metadata"]["labels"]["kubernetes.io/service-name"].as_str(),
                Some("svc")
            );
            assert_eq!(s["ports"][0]["name"].as_str(), Some("http"));
            assert_eq!(s["ports"][0]["port"].as_u64(), Some(u64::from(be.port())));
            assert_eq!(
                s["endpoints"][0]["addresses"][0].as_str(),
                Some("127.0.0.1")
            );
            assert_eq!(
                s["endpoints"][0]["conditions"]["ready"].as_bool(),
                Some(true)
            );
        }
        assert_eq!(d[3]["spec"]["controller"].as_str(), Some("rauta.dev/c"));
        assert_eq!(
            d[4]["metadata"]["annotations"]["rauta.dev/x"].as_str(),
            Some("y: \"z\"")
        );
        assert_eq!(d[4]["spec"]["ingressClassName"].as_str(), Some("rauta"));
        assert_eq!(
            d[4]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["name"]
                .as_str(),
            Some("http")
        );
        assert_eq!(d[5]["addressType"].as_str(), Some("IPv6"));
        assert!(d[5]["endpoints"][0].get("conditions").is_none());
        assert!(d[5]["ports"][0].get("name").is_none());
    }
}
