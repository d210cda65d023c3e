//! One served Ingress, validated: its rules, default backend, `spec.tls`
//! entries and annotations. An Ingress with any error is used not at all.

use super::annotations::{Annotations, Findings};
use super::index::{ingress_describe, ingress_ref};
use super::IngressAnnotations;
use crate::objects::SourcedObject;
use crate::problem::Problem;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rauta_shared::config::{HostMatch, IngressRef, PathType, ServicePort};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// The (host, path, path type) a rule is keyed by; at most one rule per key.
pub(super) type RuleKey = (HostMatch, String, PathType);

/// A Service port that an Ingress points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct BackendRef {
    pub(super) service: String,
    pub(super) port: ServicePort,
}

/// A served Ingress that passed validation.
pub(super) struct Parsed {
    pub(super) file: Option<PathBuf>,
    pub(super) object: String,
    pub(super) source: IngressRef,
    /// Missing timestamps sort after present ones, then by namespace/name.
    pub(super) order: (bool, Option<Time>, IngressRef),
    /// What its annotations ask for.
    pub(super) annotations: Annotations,
    pub(super) paths: Vec<(RuleKey, BackendRef)>,
    pub(super) default_backend: Option<BackendRef>,
    /// `spec.tls` entries, in order.
    pub(super) tls: Vec<TlsEntry>,
}

/// One `spec.tls` entry of a served Ingress.
pub(super) struct TlsEntry {
    /// Position in `spec.tls`, for messages.
    pub(super) position: usize,
    /// Valid hosts of the entry.
    pub(super) hosts: Vec<HostMatch>,
    /// The Secret's name; `None` means "the default certificate".
    pub(super) secret: Option<String>,
}

impl Parsed {
    /// True when `spec.tls` lists `host`, or the wildcard covering it.
    fn has_tls(&self, host: &HostMatch) -> bool {
        let parent = match host {
            HostMatch::Exact(h) => h.split_once('.').map(|(_, p)| p),
            _ => None,
        };
        self.tls.iter().flat_map(|e| &e.hosts).any(|h| {
            h == host || matches!((h, parent), (HostMatch::Wildcard(w), Some(p)) if w == p)
        })
    }

    /// Whether plain-HTTP requests for a rule on `host` are redirected.
    pub(super) fn redirects(&self, host: &HostMatch) -> bool {
        let a = &self.annotations;
        a.force_ssl_redirect || (a.ssl_redirect && self.has_tls(host))
    }

    /// True for a canary Ingress (`canary: "true"`): it lends its backends
    /// to main Ingresses' rules and claims none of its own.
    pub(super) fn is_canary(&self) -> bool {
        self.annotations.route.canary.is_some()
    }

    /// A warning about this Ingress.
    pub(super) fn warning(&self, message: impl Into<String>) -> Problem {
        Problem::warning(Some(self.object.clone()), message).in_file(self.file.clone())
    }
}

/// Validates a served Ingress. On any error, reports everything found and
/// returns `None`: an Ingress is used whole or not at all.
pub(super) fn parse_ingress(
    src: &SourcedObject,
    ing: &Ingress,
    problems: &mut Vec<Problem>,
    reports: &mut Vec<IngressAnnotations>,
) -> Option<Parsed> {
    let object = ingress_describe(ing);
    let mut findings = Findings::default();
    let annotations = Annotations::parse(ing, &mut findings);
    let Findings {
        mut errors,
        mut warnings,
    } = findings;
    reports.push(IngressAnnotations {
        ingress: ingress_ref(ing),
        object: object.clone(),
        file: src.file.clone(),
        verdicts: annotations.verdicts.clone(),
    });
    let tls = parse_tls(ing, &mut warnings);

    let spec = ing.spec.as_ref();
    let mut paths = Vec::new();
    for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
        let host = match parse_host(rule.host.as_deref().unwrap_or("")) {
            Ok(host) => host,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for p in rule.http.iter().flat_map(|h| &h.paths) {
            let key = parse_path(p.path.as_deref(), &p.path_type)
                .map(|(path, path_type)| (host.clone(), path, path_type));
            let backend = parse_backend(&p.backend);
            match (key, backend) {
                (Ok(key), Ok(Some(backend))) => paths.push((key, backend)),
                (Ok((_, path, _)), Ok(None)) => warnings.push(format!(
                    "path {path:?}: resource backends are not supported; path skipped"
                )),
                (key, backend) => {
                    errors.extend(key.err());
                    errors.extend(backend.err());
                }
            }
        }
    }
    let default_backend = match spec
        .and_then(|s| s.default_backend.as_ref())
        .map(parse_backend)
    {
        None => None,
        Some(Ok(Some(backend))) => Some(backend),
        Some(Ok(None)) => {
            warnings.push("defaultBackend: resource backends are not supported; ignored".into());
            None
        }
        Some(Err(e)) => {
            errors.push(format!("defaultBackend: {e}"));
            None
        }
    };

    let file = src.file.clone();
    let has_errors = !errors.is_empty();
    for message in errors {
        problems.push(Problem::error(Some(object.clone()), message).in_file(file.clone()));
    }
    for message in warnings {
        problems.push(Problem::warning(Some(object.clone()), message).in_file(file.clone()));
    }
    if has_errors {
        return None;
    }
    let source = ingress_ref(ing);
    let created = ing.metadata.creation_timestamp.clone();
    Some(Parsed {
        file,
        object,
        order: (created.is_none(), created, source.clone()),
        source,
        annotations,
        paths,
        default_backend,
        tls,
    })
}

/// The `spec.tls` entries; bad hosts are warnings and left out.
fn parse_tls(ing: &Ingress, warnings: &mut Vec<String>) -> Vec<TlsEntry> {
    let entries = ing.spec.as_ref().and_then(|s| s.tls.as_ref());
    let mut out = Vec::new();
    for (position, entry) in entries.into_iter().flatten().enumerate() {
        let mut hosts = Vec::new();
        for raw in entry.hosts.iter().flatten() {
            match parse_host(raw) {
                Ok(HostMatch::Any) => {
                    warnings.push(format!("spec.tls[{position}]: an empty host is ignored"))
                }
                Ok(host) => hosts.push(host),
                Err(e) => warnings.push(format!("spec.tls[{position}]: {e}; ignored")),
            }
        }
        if hosts.is_empty() {
            warnings.push(format!(
                "spec.tls[{position}] names no valid host; entry ignored"
            ));
            continue;
        }
        let secret = entry.secret_name.clone().filter(|n| !n.is_empty());
        out.push(TlsEntry {
            position,
            hosts,
            secret,
        });
    }
    out
}

/// Checks a rule host; `*.example.com` becomes a wildcard, no host matches any.
pub(super) fn parse_host(raw: &str) -> Result<HostMatch, String> {
    let host = raw.to_ascii_lowercase();
    if host.is_empty() {
        return Ok(HostMatch::Any);
    }
    let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
    if unbracketed.parse::<IpAddr>().is_ok() || host.parse::<SocketAddr>().is_ok() {
        return Err(format!(
            "host {raw:?} is an IP address; Ingress hosts must be DNS names"
        ));
    }
    if host.contains(':') {
        return Err(format!("host {raw:?} must not contain a port"));
    }
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host.as_str()),
    };
    if name.contains('*') {
        return Err(format!(
            "host {raw:?}: a wildcard is only allowed as the whole first label, as in *.example.com"
        ));
    }
    if name.len() > 253 {
        return Err(format!("host {raw:?} is longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("host {raw:?} has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "host {raw:?} has a label longer than 63 characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "host {raw:?} has invalid characters (allowed: letters, digits, '-' and '.')"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "host {raw:?} has a label that starts or ends with '-'"
            ));
        }
    }
    Ok(if wildcard {
        HostMatch::Wildcard(name.to_string())
    } else {
        HostMatch::Exact(name.to_string())
    })
}

/// Checks a path and its type.
///
/// As the API server does, an `ImplementationSpecific` path may be empty; it
/// then means `/`.
fn parse_path(path: Option<&str>, path_type: &str) -> Result<(String, PathType), String> {
    let path_type = match path_type {
        "Exact" => PathType::Exact,
        "Prefix" => PathType::Prefix,
        "ImplementationSpecific" => PathType::ImplementationSpecific,
        "" => {
            return Err(format!(
                "path {:?}: pathType is missing (Exact, Prefix or ImplementationSpecific)",
                path.unwrap_or("")
            ))
        }
        other => {
            return Err(format!(
                "path {:?}: unknown pathType {other:?} (Exact, Prefix or ImplementationSpecific)",
                path.unwrap_or("")
            ))
        }
    };
    let path = path.unwrap_or("");
    if path.is_empty() && path_type == PathType::ImplementationSpecific {
        return Ok(("/".to_string(), path_type));
    }
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must start with \"/\""));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "path {path:?} must not contain whitespace or control characters"
        ));
    }
    // The API server rejects these for Exact and Prefix; matching them would be ambiguous.
    if path_type != PathType::ImplementationSpecific {
        let bad = ["//", "/./", "/../", "%2f", "%2F"]
            .iter()
            .any(|s| path.contains(s))
            || path.ends_with("/.")
            || path.ends_with("/..");
        if bad {
            return Err(format!(
                "path {path:?} must not contain '//', '/./', '/../' or '%2f', nor end in '/.' or '/..'"
            ));
        }
    }
    Ok((path.to_string(), path_type))
}

/// Checks a backend: `Ok(None)` for a (unsupported) resource backend.
fn parse_backend(backend: &IngressBackend) -> Result<Option<BackendRef>, String> {
    let service = match (&backend.service, &backend.resource) {
        (Some(_), Some(_)) => {
            return Err("backend has both service and resource; exactly one is allowed".into())
        }
        (None, None) => return Err("backend has neither service nor resource".into()),
        (None, Some(_)) => return Ok(None),
        (Some(service), None) => service,
    };
    let name = &service.name;
    if name.is_empty() {
        return Err("backend service has no name".into());
    }
    let port = service.port.as_ref();
    let number = port.and_then(|p| p.number);
    let port_name = port
        .and_then(|p| p.name.as_deref())
        .filter(|n| !n.is_empty());
    let port = match (number, port_name) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "backend service {name} has both a port number and a port name"
            ))
        }
        (None, None) => {
            return Err(format!(
                "backend service {name} has neither port number nor port name"
            ))
        }
        (Some(n), None) => match u16::try_from(n) {
            Ok(n) if n > 0 => ServicePort::Number(n),
            _ => return Err(format!("backend service {name}: port {n} is out of range")),
        },
        (None, Some(port_name)) => ServicePort::Name(port_name.to_string()),
    };
    Ok(Some(BackendRef {
        service: name.clone(),
        port,
    }))
}
