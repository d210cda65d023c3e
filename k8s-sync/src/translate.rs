//! Kubernetes objects -> [`RouteConfig`]: class selection, validation,
//! merging, conflict resolution and endpoint resolution. Pure: no I/O.
//!
//! Ingress annotations (prefix `rauta.io/` or `nginx.ingress.kubernetes.io/`,
//! `rauta.io/` winning): `load-balance` (`round_robin`, `least_request`, and
//! `ewma`, which is approximated by least-request), `upstream-hash-by`
//! (Maglev; wins over `load-balance`), `rauta.io/endpoint-weights`, and
//! `ssl-redirect` / `force-ssl-redirect` (`true` or `false`).
//!
//! TLS: each `spec.tls` entry names hosts and a `kubernetes.io/tls` Secret
//! in the Ingress's namespace. A missing, mistyped or broken Secret, or a
//! certificate that does not cover a host, is a warning: those hosts get the
//! default certificate and every other host keeps its own.

use crate::objects::{describe, KubeObject, SourcedObject, DEFAULT_NAMESPACE};
use crate::problem::Problem;
use crate::tls;
use crate::ClassSelector;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rauta_shared::config::{
    BackendConfig, EndpointConfig, HashKey, HostMatch, IngressRef, LbPolicy, PathType, RouteConfig,
    RuleConfig, SecretRef, ServicePort, TlsCertConfig,
};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Legacy annotation that selects a class by name (checked before `ingressClassName`).
const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// IngressClass annotation that makes it the class of Ingresses that name none.
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// EndpointSlice label naming the Service the slice belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Annotation prefixes we read, strongest first.
const ANNOTATION_PREFIXES: [&str; 2] = ["rauta.io/", "nginx.ingress.kubernetes.io/"];
/// Per-endpoint weights (rauta only).
const WEIGHTS_ANNOTATION: &str = "rauta.io/endpoint-weights";
/// Largest weight `rauta.io/endpoint-weights` accepts.
const MAX_WEIGHT: u32 = 10_000;

/// The result of a translation: the configuration and what was wrong.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translation {
    /// The configuration; only meaningful when [`Translation::has_errors`] is false.
    pub config: RouteConfig,
    /// Errors and warnings, in a deterministic order.
    pub problems: Vec<Problem>,
}

impl Translation {
    /// True when any problem is an error, i.e. the object set must be rejected.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }
}

/// Translates a set of objects into a route configuration and its problems.
///
/// The result does not depend on the order of `objects`.
pub fn translate(objects: &[SourcedObject], sel: &ClassSelector) -> Translation {
    let index = Index::new(objects);
    let mut problems = Vec::new();
    let mut ingresses = Vec::new();
    for (src, ing) in &index.ingresses {
        if is_served(src, ing, sel, &index, &mut problems) {
            ingresses.extend(parse_ingress(src, ing, &mut problems));
        }
    }
    // The oldest Ingress claims contested rules first; names break ties.
    ingresses.sort_by(|a, b| a.order.cmp(&b.order));
    let mut builder = Builder::default();
    for ing in &ingresses {
        builder.claim(ing, &index, &mut problems);
    }
    Translation {
        config: builder.finish(),
        problems: dedup(problems),
    }
}

/// The Ingresses among `objects` that `sel` serves, valid or not, by the
/// same class rules as [`translate`]; sorted, without duplicates.
pub fn served_ingresses(objects: &[SourcedObject], sel: &ClassSelector) -> Vec<IngressRef> {
    let index = Index::new(objects);
    // The warnings are reported by `translate`; here only the verdict counts.
    let mut scratch = Vec::new();
    let mut served: Vec<IngressRef> = index
        .ingresses
        .iter()
        .filter(|(src, ing)| is_served(src, ing, sel, &index, &mut scratch))
        .map(|(_, ing)| IngressRef {
            namespace: ingress_namespace(ing).to_string(),
            name: ing.metadata.name.clone().unwrap_or_default(),
        })
        .collect();
    served.sort();
    served.dedup();
    served
}

/// The Secrets that the `spec.tls` of served Ingresses name (in the
/// Ingress's namespace), valid or not; sorted, without duplicates.
pub fn referenced_secrets(objects: &[SourcedObject], sel: &ClassSelector) -> Vec<SecretRef> {
    let index = Index::new(objects);
    let mut scratch = Vec::new();
    let mut out: Vec<SecretRef> = index
        .ingresses
        .iter()
        .filter(|(src, ing)| is_served(src, ing, sel, &index, &mut scratch))
        .flat_map(|(_, ing)| {
            let namespace = ingress_namespace(ing).to_string();
            let entries = ing.spec.as_ref().and_then(|s| s.tls.as_ref());
            entries
                .into_iter()
                .flatten()
                .filter_map(|e| e.secret_name.clone().filter(|n| !n.is_empty()))
                .map(move |name| SecretRef {
                    namespace: namespace.clone(),
                    name,
                })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Drops repeated problems (e.g. one bad EndpointSlice used by many Ingresses).
fn dedup(problems: Vec<Problem>) -> Vec<Problem> {
    let mut seen = HashSet::new();
    problems
        .into_iter()
        .filter(|p| seen.insert(p.to_string()))
        .collect()
}

/// The objects by kind, in a canonical order.
struct Index<'a> {
    ingresses: Vec<(&'a SourcedObject, &'a Ingress)>,
    classes: Vec<&'a IngressClass>,
    services: BTreeMap<(&'a str, &'a str), &'a Service>,
    /// Slices by (namespace, service name), ordered by slice name.
    slices: BTreeMap<(&'a str, &'a str), Vec<(&'a SourcedObject, &'a EndpointSlice)>>,
    secrets: BTreeMap<(&'a str, &'a str), (&'a SourcedObject, &'a Secret)>,
}

impl<'a> Index<'a> {
    /// Sorts `objects` into the index.
    fn new(objects: &'a [SourcedObject]) -> Index<'a> {
        let mut index = Index {
            ingresses: Vec::new(),
            classes: Vec::new(),
            services: BTreeMap::new(),
            slices: BTreeMap::new(),
            secrets: BTreeMap::new(),
        };
        for src in objects {
            let ns = src.object.namespace().unwrap_or(DEFAULT_NAMESPACE);
            match &src.object {
                KubeObject::Ingress(ing) => index.ingresses.push((src, ing)),
                KubeObject::IngressClass(class) => index.classes.push(class),
                KubeObject::Service(svc) => {
                    index.services.insert((ns, src.object.name()), svc);
                }
                KubeObject::EndpointSlice(slice) => {
                    let labels = slice.metadata.labels.as_ref();
                    if let Some(service) = labels.and_then(|l| l.get(SERVICE_NAME_LABEL)) {
                        index
                            .slices
                            .entry((ns, service.as_str()))
                            .or_default()
                            .push((src, slice));
                    }
                }
                KubeObject::Secret(secret) => {
                    index.secrets.insert((ns, src.object.name()), (src, secret));
                }
            }
        }
        index
            .ingresses
            .sort_by_key(|(src, _)| src.object.describe());
        index
            .classes
            .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for slices in index.slices.values_mut() {
            slices.sort_by(|a, b| a.1.metadata.name.cmp(&b.1.metadata.name));
        }
        index
    }

    /// The IngressClass named `name`, if any.
    fn class(&self, name: &str) -> Option<&'a IngressClass> {
        self.classes
            .iter()
            .copied()
            .find(|c| c.metadata.name.as_deref() == Some(name))
    }
}

/// The controller an IngressClass names.
fn controller(class: &IngressClass) -> Option<&str> {
    class.spec.as_ref()?.controller.as_deref()
}

/// Decides whether we serve `ing`; warns when it names our class but the
/// class is missing or belongs to another controller.
fn is_served(
    src: &SourcedObject,
    ing: &Ingress,
    sel: &ClassSelector,
    index: &Index<'_>,
    problems: &mut Vec<Problem>,
) -> bool {
    let object = ingress_describe(ing);
    let annotations = ing.metadata.annotations.as_ref();
    let ours = index
        .class(&sel.class_name)
        .filter(|c| controller(c) == Some(sel.controller.as_str()));
    if let Some(class) = annotations.and_then(|a| a.get(LEGACY_CLASS_ANNOTATION)) {
        let served = *class == sel.class_name;
        if !served {
            tracing::debug!(ingress = %object, class, "Ingress of another class (annotation), ignored");
        }
        return served;
    }
    let class_name = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .filter(|n| !n.is_empty());
    match class_name {
        Some(name) if name == sel.class_name => {
            if ours.is_some() {
                return true;
            }
            let message = match index.class(name).and_then(controller) {
                Some(other) => format!(
                    "IngressClass {name} has controller {other:?}, not {:?}; Ingress not served",
                    sel.controller
                ),
                None => format!(
                    "IngressClass {name} (controller {:?}) does not exist; Ingress not served",
                    sel.controller
                ),
            };
            problems.push(Problem::warning(Some(object), message).in_file(src.file.clone()));
            false
        }
        Some(name) => {
            tracing::debug!(ingress = %object, class = name, "Ingress of another class, ignored");
            false
        }
        None => {
            let default = ours.is_some_and(|c| {
                c.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                    .is_some_and(|v| v == "true")
            });
            if !default {
                tracing::debug!(ingress = %object, "Ingress without class and ours is not the default, ignored");
            }
            default
        }
    }
}

/// Namespace of an Ingress, defaulted.
fn ingress_namespace(ing: &Ingress) -> &str {
    ing.metadata
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE)
}

/// `Ingress ns/name`.
fn ingress_describe(ing: &Ingress) -> String {
    describe(
        "Ingress",
        Some(ingress_namespace(ing)),
        ing.metadata.name.as_deref().unwrap_or(""),
    )
}

/// The (host, path, path type) a rule is keyed by; at most one rule per key.
type RuleKey = (HostMatch, String, PathType);

/// A Service port that an Ingress points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct BackendRef {
    service: String,
    port: ServicePort,
}

/// A served Ingress that passed validation.
struct Parsed {
    file: Option<PathBuf>,
    object: String,
    source: IngressRef,
    /// Missing timestamps sort after present ones, then by namespace/name.
    order: (bool, Option<Time>, IngressRef),
    policy: LbPolicy,
    weights: Vec<Weight>,
    paths: Vec<(RuleKey, BackendRef)>,
    default_backend: Option<BackendRef>,
    /// `spec.tls` entries, in order.
    tls: Vec<TlsEntry>,
    /// `ssl-redirect` (default true): redirect hosts that have TLS.
    ssl_redirect: bool,
    /// `force-ssl-redirect` (default false): redirect every rule.
    force_ssl_redirect: bool,
}

/// One `spec.tls` entry of a served Ingress.
struct TlsEntry {
    /// Position in `spec.tls`, for messages.
    position: usize,
    /// Valid hosts of the entry.
    hosts: Vec<HostMatch>,
    /// The Secret's name; `None` means "the default certificate".
    secret: Option<String>,
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
    fn redirects(&self, host: &HostMatch) -> bool {
        self.force_ssl_redirect || (self.ssl_redirect && self.has_tls(host))
    }
}

impl Parsed {
    /// A warning about this Ingress.
    fn warning(&self, message: impl Into<String>) -> Problem {
        Problem::warning(Some(self.object.clone()), message).in_file(self.file.clone())
    }
}

/// Validates a served Ingress. On any error, reports everything found and
/// returns `None`: an Ingress is used whole or not at all.
fn parse_ingress(
    src: &SourcedObject,
    ing: &Ingress,
    problems: &mut Vec<Problem>,
) -> Option<Parsed> {
    let object = ingress_describe(ing);
    let mut errors: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();

    let policy = parse_policy(ing, &mut errors);
    let ssl_redirect = parse_bool(ing, "ssl-redirect", true, &mut errors);
    let force_ssl_redirect = parse_bool(ing, "force-ssl-redirect", false, &mut errors);
    let tls = parse_tls(ing, &mut warnings);
    let weights = match ing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(WEIGHTS_ANNOTATION))
    {
        Some(value) => parse_weights(value).unwrap_or_else(|e| {
            errors.push(format!("annotation {WEIGHTS_ANNOTATION}: {e}"));
            Vec::new()
        }),
        None => Vec::new(),
    };

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
    let source = IngressRef {
        namespace: ingress_namespace(ing).to_string(),
        name: ing.metadata.name.clone().unwrap_or_default(),
    };
    let created = ing.metadata.creation_timestamp.clone();
    Some(Parsed {
        file,
        object,
        order: (created.is_none(), created, source.clone()),
        source,
        policy,
        weights,
        paths,
        default_backend,
        tls,
        ssl_redirect,
        force_ssl_redirect,
    })
}

/// A boolean annotation (`true`/`false`, any case), `default` when absent.
fn parse_bool(ing: &Ingress, key: &str, default: bool, errors: &mut Vec<String>) -> bool {
    match annotation(ing, key) {
        None => default,
        Some((full, value)) => match value.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            other => {
                errors.push(format!("annotation {full}: {other:?} is not true or false"));
                default
            }
        },
    }
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
fn parse_host(raw: &str) -> Result<HostMatch, String> {
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

/// An annotation read under any accepted prefix: (full key, value).
fn annotation<'a>(ing: &'a Ingress, key: &str) -> Option<(String, &'a str)> {
    let annotations = ing.metadata.annotations.as_ref()?;
    ANNOTATION_PREFIXES.iter().find_map(|prefix| {
        let full = format!("{prefix}{key}");
        annotations.get(&full).map(|v| (full, v.as_str()))
    })
}

/// The balancing policy from `upstream-hash-by` (first) or `load-balance`.
///
/// `ewma` is approximated by least-request (P2C on in-flight requests): both
/// prefer the less loaded endpoint, without ewma's latency tracking.
fn parse_policy(ing: &Ingress, errors: &mut Vec<String>) -> LbPolicy {
    let balance = annotation(ing, "load-balance").and_then(|(key, value)| {
        match value.trim() {
            "round_robin" => Some(LbPolicy::RoundRobin),
            "least_request" | "ewma" => Some(LbPolicy::LeastRequest),
            other => {
                errors.push(format!(
                    "annotation {key}: unknown value {other:?} (expected round_robin, least_request or ewma)"
                ));
                None
            }
        }
    });
    let hash = annotation(ing, "upstream-hash-by").and_then(|(key, value)| {
        match parse_hash_key(value.trim()) {
            Some(hash) => Some(LbPolicy::Maglev(hash)),
            None => {
                errors.push(format!(
                    "annotation {key}: unsupported value {value:?} (expected $remote_addr, $binary_remote_addr, $http_<header>, $request_uri or $host)"
                ));
                None
            }
        }
    });
    hash.or(balance).unwrap_or(LbPolicy::RoundRobin)
}

/// The hash key an nginx variable names.
fn parse_hash_key(value: &str) -> Option<HashKey> {
    match value {
        "$remote_addr" | "$binary_remote_addr" => Some(HashKey::ClientIp),
        "$request_uri" => Some(HashKey::RequestUri),
        "$host" => Some(HashKey::Host),
        _ => {
            let header = value.strip_prefix("$http_")?;
            let valid = !header.is_empty()
                && header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            valid.then(|| HashKey::Header(header.to_ascii_lowercase().replace('_', "-")))
        }
    }
}

/// What a weight entry applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WeightKey {
    /// One address and port.
    Addr(SocketAddr),
    /// Every port of one IP.
    Ip(IpAddr),
    /// The endpoint's targetRef (pod) name.
    Target(String),
}

/// One entry of `rauta.io/endpoint-weights`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Weight {
    key: WeightKey,
    /// The key as written, for messages.
    raw: String,
    weight: u32,
}

/// Parses `KEY=WEIGHT,...`; empty entries (a trailing comma) are ignored.
fn parse_weights(value: &str) -> Result<Vec<Weight>, String> {
    let mut weights: Vec<Weight> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((raw, weight)) = entry.split_once('=') else {
            return Err(format!("entry {entry:?} is not KEY=WEIGHT"));
        };
        let (raw, weight) = (raw.trim(), weight.trim());
        let weight = weight
            .parse::<u32>()
            .ok()
            .filter(|w| *w <= MAX_WEIGHT)
            .ok_or_else(|| {
                format!("entry {entry:?}: weight must be an integer from 0 to {MAX_WEIGHT}")
            })?;
        let key = if let Ok(addr) = raw.parse::<SocketAddr>() {
            WeightKey::Addr(addr)
        } else if let Ok(ip) = raw.parse::<IpAddr>() {
            WeightKey::Ip(ip)
        } else if !raw.is_empty()
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            WeightKey::Target(raw.to_string())
        } else {
            return Err(format!(
                "entry {entry:?}: key must be an IP, IP:port or pod name"
            ));
        };
        if weights.iter().any(|w| w.key == key) {
            return Err(format!("{raw} is weighted more than once"));
        }
        weights.push(Weight {
            key,
            raw: raw.to_string(),
            weight,
        });
    }
    Ok(weights)
}

/// The weight entries that apply to an endpoint, strongest first: address
/// beats IP beats pod name.
fn weights_for<'w>(weights: &'w [Weight], ep: &EndpointConfig) -> Vec<&'w Weight> {
    let rank = |key: &WeightKey| match key {
        WeightKey::Addr(addr) => (*addr == ep.addr).then_some(0),
        WeightKey::Ip(ip) => (*ip == ep.addr.ip()).then_some(1),
        WeightKey::Target(t) => (Some(t) == ep.target.as_ref()).then_some(2),
    };
    let mut matching: Vec<(u8, &Weight)> = weights
        .iter()
        .filter_map(|w| rank(&w.key).map(|r| (r, w)))
        .collect();
    matching.sort_by_key(|(r, _)| *r);
    matching.into_iter().map(|(_, w)| w).collect()
}

/// Identity of a backend: equal keys mean equal [`BackendConfig`]s.
type BackendKey = (
    String,
    String,
    ServicePort,
    (u8, String),
    Vec<(SocketAddr, u32)>,
);

/// An orderable stand-in for [`LbPolicy`].
fn policy_key(policy: &LbPolicy) -> (u8, String) {
    match policy {
        LbPolicy::RoundRobin => (0, String::new()),
        LbPolicy::LeastRequest => (1, String::new()),
        LbPolicy::Maglev(HashKey::ClientIp) => (2, String::new()),
        LbPolicy::Maglev(HashKey::Header(h)) => (3, h.clone()),
        LbPolicy::Maglev(HashKey::RequestUri) => (4, String::new()),
        LbPolicy::Maglev(HashKey::Host) => (5, String::new()),
    }
}

/// Collects claimed rules and backends while Ingresses are visited oldest first.
#[derive(Default)]
struct Builder {
    rules: BTreeMap<RuleKey, (IngressRef, BackendKey, bool)>,
    default_backend: Option<(IngressRef, BackendKey)>,
    backends: BTreeMap<BackendKey, BackendConfig>,
    /// Which Secret each TLS host got, and from which Ingress.
    tls_hosts: BTreeMap<HostMatch, (IngressRef, Option<SecretRef>)>,
    /// Certificates in use, by Secret.
    certs: BTreeMap<SecretRef, TlsCertConfig>,
    /// Secrets already checked: their pair, or `None` when unusable.
    checked: BTreeMap<SecretRef, Option<(String, String, i64)>>,
}

impl Builder {
    /// Adds the rules and default backend of `ing` that no older Ingress claimed.
    fn claim(&mut self, ing: &Parsed, index: &Index<'_>, problems: &mut Vec<Problem>) {
        let mut resolved: BTreeMap<BackendRef, BackendKey> = BTreeMap::new();
        let mut used_weights: BTreeSet<String> = BTreeSet::new();
        for ((host, path, path_type), backend) in &ing.paths {
            let key = (host.clone(), path.clone(), *path_type);
            if let Some((owner, _, _)) = self.rules.get(&key) {
                let message = if *owner == ing.source {
                    format!(
                        "{} is listed more than once; the first one is used",
                        rule_name(&key)
                    )
                } else {
                    format!(
                        "{} is already served by Ingress {owner}; ignored here",
                        rule_name(&key)
                    )
                };
                problems.push(ing.warning(message));
                continue;
            }
            let bkey = self.resolve(
                ing,
                backend,
                index,
                &mut resolved,
                &mut used_weights,
                problems,
            );
            let redirect = ing.redirects(host);
            self.rules.insert(key, (ing.source.clone(), bkey, redirect));
        }
        if let Some(backend) = &ing.default_backend {
            match &self.default_backend {
                Some((owner, _)) => problems.push(ing.warning(format!(
                    "defaultBackend is already set by Ingress {owner}; ignored here"
                ))),
                None => {
                    let bkey = self.resolve(
                        ing,
                        backend,
                        index,
                        &mut resolved,
                        &mut used_weights,
                        problems,
                    );
                    self.default_backend = Some((ing.source.clone(), bkey));
                }
            }
        }
        self.claim_tls(ing, index, problems);
        // Only meaningful when some backend was looked at; otherwise every key is unused.
        if !resolved.is_empty() {
            for w in ing
                .weights
                .iter()
                .filter(|w| !used_weights.contains(&w.raw))
            {
                problems.push(ing.warning(format!(
                    "annotation {WEIGHTS_ANNOTATION}: {} matches no endpoint",
                    w.raw
                )));
            }
        }
    }

    /// Claims the TLS hosts of `ing` that no older Ingress claimed, with
    /// their certificates; whatever is wrong is a warning and only costs
    /// the hosts concerned their own certificate.
    fn claim_tls(&mut self, ing: &Parsed, index: &Index<'_>, problems: &mut Vec<Problem>) {
        for entry in &ing.tls {
            let secret = entry.secret.as_ref().map(|name| SecretRef {
                namespace: ing.source.namespace.clone(),
                name: name.clone(),
            });
            let hosts = entry
                .hosts
                .iter()
                .map(host_name)
                .collect::<Vec<_>>()
                .join(", ");
            let pair = match &secret {
                Some(secret) => {
                    self.check_secret(ing, entry.position, secret, &hosts, index, problems)
                }
                None => None,
            };
            for host in &entry.hosts {
                if let Some((owner, owned)) = self.tls_hosts.get(host) {
                    if *owned != secret {
                        let what = |s: &Option<SecretRef>| {
                            s.as_ref()
                                .map_or("the default certificate".to_string(), |s| {
                                    format!("Secret {s}")
                                })
                        };
                        problems.push(ing.warning(format!(
                            "spec.tls[{}]: TLS host {} already gets {} from Ingress {owner}; {} ignored for it",
                            entry.position,
                            host_name(host),
                            what(owned),
                            what(&secret)
                        )));
                    }
                    continue;
                }
                let (Some(secret), Some((crt, key, not_after))) = (&secret, &pair) else {
                    // No Secret named, or an unusable one: the default certificate.
                    self.tls_hosts
                        .insert(host.clone(), (ing.source.clone(), secret.clone()));
                    continue;
                };
                if !tls::covers(crt.as_bytes(), host) {
                    // Not claimed: an Ingress with a fitting certificate may still take the host.
                    problems.push(ing.warning(format!(
                        "spec.tls[{}]: the certificate in Secret {secret} does not cover host {}; the host gets the default certificate",
                        entry.position,
                        host_name(host)
                    )));
                    continue;
                }
                self.tls_hosts
                    .insert(host.clone(), (ing.source.clone(), Some(secret.clone())));
                self.certs
                    .entry(secret.clone())
                    .or_insert_with(|| TlsCertConfig {
                        hosts: Vec::new(),
                        secret: secret.clone(),
                        cert_pem: crt.clone(),
                        key_pem: key.clone(),
                        not_after: *not_after,
                        source: ing.source.clone(),
                    })
                    .hosts
                    .push(host.clone());
            }
        }
    }

    /// The PEM pair and expiry of a Secret, checked once; `None` (reported)
    /// when it is missing or unusable.
    fn check_secret(
        &mut self,
        ing: &Parsed,
        position: usize,
        secret: &SecretRef,
        hosts: &str,
        index: &Index<'_>,
        problems: &mut Vec<Problem>,
    ) -> Option<(String, String, i64)> {
        if let Some(checked) = self.checked.get(secret) {
            return checked.clone();
        }
        let found = index
            .secrets
            .get(&(secret.namespace.as_str(), secret.name.as_str()));
        let result = match found {
            None => {
                problems.push(ing.warning(format!(
                    "spec.tls[{position}]: Secret {secret} not found; {hosts} get the default certificate"
                )));
                None
            }
            Some((src, object)) => {
                let checked = tls::secret_pair(object).and_then(|(crt, key)| {
                    let facts = tls::check_pair_cached(&crt, &key)?;
                    let text = |b: Vec<u8>, what: &str| {
                        String::from_utf8(b).map_err(|_| format!("{what} is not text"))
                    };
                    Ok((
                        text(crt, "tls.crt")?,
                        text(key, "tls.key")?,
                        facts.not_after,
                    ))
                });
                match checked {
                    Ok(pair) => Some(pair),
                    Err(message) => {
                        problems.push(
                            Problem::warning(
                                Some(src.object.describe()),
                                format!(
                                    "{message}; not used for Ingress {} ({hosts} get the default certificate)",
                                    ing.source
                                ),
                            )
                            .in_file(src.file.clone()),
                        );
                        None
                    }
                }
            }
        };
        self.checked.insert(secret.clone(), result.clone());
        result
    }

    /// The key of the backend `backend` resolves to for `ing`, creating it if new.
    fn resolve(
        &mut self,
        ing: &Parsed,
        backend: &BackendRef,
        index: &Index<'_>,
        resolved: &mut BTreeMap<BackendRef, BackendKey>,
        used_weights: &mut BTreeSet<String>,
        problems: &mut Vec<Problem>,
    ) -> BackendKey {
        if let Some(key) = resolved.get(backend) {
            return key.clone();
        }
        let namespace = &ing.source.namespace;
        let mut endpoints = resolve_endpoints(ing, index, namespace, backend, problems);
        endpoints.retain_mut(|ep| {
            let matching = weights_for(&ing.weights, ep);
            used_weights.extend(matching.iter().map(|w| w.raw.clone()));
            match matching.first() {
                Some(w) => {
                    ep.weight = w.weight;
                    w.weight > 0
                }
                None => true,
            }
        });
        let key: BackendKey = (
            namespace.clone(),
            backend.service.clone(),
            backend.port.clone(),
            policy_key(&ing.policy),
            endpoints.iter().map(|e| (e.addr, e.weight)).collect(),
        );
        self.backends
            .entry(key.clone())
            .or_insert_with(|| BackendConfig {
                name: String::new(),
                namespace: namespace.clone(),
                service: backend.service.clone(),
                port: backend.port.clone(),
                endpoints,
                policy: ing.policy.clone(),
            });
        resolved.insert(backend.clone(), key.clone());
        key
    }

    /// The final configuration: backends in key order, rules in (host, path, type) order.
    fn finish(self) -> RouteConfig {
        let mut positions: BTreeMap<BackendKey, usize> = BTreeMap::new();
        let mut backends = Vec::with_capacity(self.backends.len());
        let mut name_uses: BTreeMap<String, usize> = BTreeMap::new();
        for (i, (key, mut backend)) in self.backends.into_iter().enumerate() {
            let base = format!("{}/{}:{}", backend.namespace, backend.service, backend.port);
            // Same Service port with another policy or weights: keep names unique.
            let uses = name_uses.entry(base.clone()).or_insert(0);
            *uses += 1;
            backend.name = if *uses == 1 {
                base
            } else {
                format!("{base}#{uses}")
            };
            positions.insert(key, i);
            backends.push(backend);
        }
        let index_of = |key: &BackendKey| positions.get(key).copied().unwrap_or(0);
        let rules = self
            .rules
            .into_iter()
            .map(
                |((host, path, path_type), (source, bkey, ssl_redirect))| RuleConfig {
                    host,
                    path,
                    path_type,
                    backend: index_of(&bkey),
                    source,
                    ssl_redirect,
                },
            )
            .collect();
        let (default_backend, default_backend_source) = match self.default_backend {
            Some((source, bkey)) => (Some(index_of(&bkey)), Some(source)),
            None => (None, None),
        };
        let tls = self
            .certs
            .into_values()
            .map(|mut cert| {
                cert.hosts.sort();
                cert
            })
            .collect();
        RouteConfig {
            rules,
            default_backend,
            default_backend_source,
            backends,
            tls,
        }
    }
}

/// `path "/api" (Prefix) on host example.com`, for messages.
fn rule_name((host, path, path_type): &RuleKey) -> String {
    let host = match host {
        HostMatch::Any => "any host".to_string(),
        _ => format!("host {}", host_name(host)),
    };
    format!("path {path:?} ({path_type:?}) on {host}")
}

/// A host as written in an Ingress (`*` for any host).
fn host_name(host: &HostMatch) -> String {
    match host {
        HostMatch::Any => "*".to_string(),
        HostMatch::Exact(h) => h.clone(),
        HostMatch::Wildcard(h) => format!("*.{h}"),
    }
}

/// The endpoints behind a Service port: ready ones, or serving+terminating
/// ones when none is ready; sorted by address, without duplicates.
fn resolve_endpoints(
    ing: &Parsed,
    index: &Index<'_>,
    namespace: &str,
    backend: &BackendRef,
    problems: &mut Vec<Problem>,
) -> Vec<EndpointConfig> {
    let service_name = describe("Service", Some(namespace), &backend.service);
    let Some(service) = index.services.get(&(namespace, backend.service.as_str())) else {
        problems.push(ing.warning(format!(
            "{service_name} not found; backend {}:{} has no endpoints",
            backend.service, backend.port
        )));
        return Vec::new();
    };
    let spec = service.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
        problems.push(ing.warning(format!(
            "{service_name} is of type ExternalName, which is not supported; backend has no endpoints"
        )));
        return Vec::new();
    }
    let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
    let found = ports.iter().find(|p| match &backend.port {
        ServicePort::Number(n) => p.port == i32::from(*n),
        ServicePort::Name(name) => p.name.as_deref() == Some(name.as_str()),
    });
    let Some(service_port) = found else {
        problems.push(ing.warning(format!(
            "{service_name} has no port {}; backend has no endpoints",
            backend.port
        )));
        return Vec::new();
    };
    // Single-port Services may leave the port name out; absent and "" are the same.
    let port_name = service_port.name.as_deref().unwrap_or("");

    let mut ready = Vec::new();
    let mut fallback = Vec::new();
    let slices = index.slices.get(&(namespace, backend.service.as_str()));
    for (src, slice) in slices.into_iter().flatten() {
        let slice_problem = |message: String| {
            Problem::warning(Some(src.object.describe()), message).in_file(src.file.clone())
        };
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            problems.push(slice_problem(format!(
                "addressType {} is not supported (only IPv4 and IPv6); slice skipped",
                slice.address_type
            )));
            continue;
        }
        let port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0);
        let Some(port) = port else {
            continue;
        };
        for ep in &slice.endpoints {
            let conditions = ep.conditions.as_ref();
            // Per the API: unknown readiness means ready, unknown serving means
            // the same as ready, unknown terminating means not terminating.
            let is_ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(is_ready);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let target = ep.target_ref.as_ref().and_then(|r| r.name.clone());
            for address in &ep.addresses {
                let Ok(ip) = address.parse::<IpAddr>() else {
                    problems.push(slice_problem(format!(
                        "address {address:?} is not an IP address; skipped"
                    )));
                    continue;
                };
                let endpoint = EndpointConfig {
                    addr: SocketAddr::new(ip, port),
                    weight: 1,
                    ready: is_ready,
                    target: target.clone(),
                };
                if is_ready {
                    ready.push(endpoint);
                } else if serving && terminating {
                    fallback.push(endpoint);
                }
            }
        }
    }
    let mut endpoints = if ready.is_empty() { fallback } else { ready };
    endpoints.sort_by(|a, b| a.addr.cmp(&b.addr).then_with(|| a.target.cmp(&b.target)));
    endpoints.dedup_by(|a, b| a.addr == b.addr);
    endpoints
}
