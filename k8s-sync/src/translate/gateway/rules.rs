//! HTTPRoute and GRPCRoute rules -> [`GatewayRule`]s: each match becomes
//! a path and conditions, the filters become the rule's policy, the
//! backendRefs a weighted split. A rule with an error is left out,
//! reported; the route's other rules are served (the spec's
//! PartiallyInvalid). GRPCRoute matches are read into the same form by
//! `grpc`.

use super::super::endpoints::Asker;
use super::super::index::Index;
use super::super::merge::{BackendKey, Builder};
use super::attach::{Attachment, Route};
use super::backend_tls::{Policies, PolicyKey};
use super::grants;
use super::{GatewayRule, RouteOrder};
use crate::gateway_api::{
    HeaderFilter, HttpBackendRef, HttpRoute, HttpRouteFilter, HttpRouteMatch, HttpRouteRule,
    HttpRouteTimeouts, PathModifier, GROUP,
};
use crate::problem::Problem;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rauta_shared::config::{
    Conditions, HostMatch, PathType, StringMatch, UpstreamProtocol, ValueMatch,
};
use rauta_shared::policy::{
    is_header_name, HeaderModifier, PathRewrite, RequestRedirect, RoutePolicy,
};
use std::collections::BTreeSet;

/// The methods an HTTPRoute match may name.
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// What became of a route's rules, for its status.
pub(super) struct Outcome {
    /// Rules in the route (the default rule counts).
    pub(super) rules: usize,
    /// Rules left out for an error.
    pub(super) dropped: usize,
    /// The first invalid backendRef: the spec's reason and a message.
    pub(super) bad_ref: Option<(&'static str, String)>,
    /// BackendTLSPolicies that apply to its backends.
    pub(super) policies: BTreeSet<PolicyKey>,
}

/// One rule of an HTTPRoute or a GRPCRoute, its matches already read.
pub(super) struct RuleInput<'a> {
    pub(super) name: Option<&'a str>,
    /// (path, path type, conditions) per match, or why the rule is invalid.
    pub(super) matches: Result<Vec<(String, PathType, Conditions)>, String>,
    pub(super) filters: &'a [HttpRouteFilter],
    pub(super) backend_refs: &'a [HttpBackendRef],
    pub(super) timeouts: Option<&'a HttpRouteTimeouts>,
    /// Experimental fields set on the rule, reported as ignored.
    pub(super) ignored: Vec<&'static str>,
}

/// The rules of an HTTPRoute; none: one rule matching every path, with
/// no backend.
pub(super) fn http_rules(route: &HttpRoute) -> Vec<RuleInput<'_>> {
    static DEFAULT: std::sync::OnceLock<HttpRouteRule> = std::sync::OnceLock::new();
    let rules = match route.spec.rules.as_deref() {
        Some(rules) => rules,
        None => std::slice::from_ref(DEFAULT.get_or_init(HttpRouteRule::default)),
    };
    rules
        .iter()
        .map(|rule| {
            let mut ignored = Vec::new();
            if rule.retry.is_some() {
                ignored.push("retry");
            }
            if rule.session_persistence.is_some() {
                ignored.push("sessionPersistence");
            }
            RuleInput {
                name: rule.name.as_deref(),
                matches: parse_matches(rule),
                filters: &rule.filters,
                backend_refs: &rule.backend_refs,
                timeouts: rule.timeouts.as_ref(),
                ignored,
            }
        })
        .collect()
}

/// Adds the rules of one attached route to `builder`; its backends speak
/// `protocol` (with TLS where `policies` say).
#[allow(clippy::too_many_arguments)]
pub(super) fn add(
    route: &Route<'_>,
    created: Option<Time>,
    rules: Vec<RuleInput<'_>>,
    protocol: UpstreamProtocol,
    policies: &Policies,
    attached: &[Attachment],
    index: &Index<'_>,
    builder: &mut Builder,
    problems: &mut Vec<Problem>,
) -> Outcome {
    let (ns, src) = (route.ns, route.src);
    let mut dropped = 0;
    let mut bad_ref: Option<(&'static str, String)> = None;
    let object = route.object();
    let warning = Problem::warning(Some(object.clone()), "").in_file(src.file.clone());
    let source = route.source();
    let order: RouteOrder = (created.is_none(), created, source.clone());
    let count = rules.len();
    let mut used = BTreeSet::new();
    for (i, rule) in rules.into_iter().enumerate() {
        let place = match rule.name {
            Some(n) => format!("rules[{i}] ({n:?})"),
            None => format!("rules[{i}]"),
        };
        let error = |message: String| {
            Problem::error(
                Some(object.clone()),
                format!("{place}: {message}; rule left out"),
            )
            .in_file(src.file.clone())
        };
        let warn = |message: String| {
            Problem::warning(Some(object.clone()), format!("{place}: {message}"))
                .in_file(src.file.clone())
        };
        let matches = match rule.matches {
            Ok(m) => m,
            Err(e) => {
                dropped += 1;
                problems.push(error(e));
                continue;
            }
        };
        let policy = match parse_filters(rule.filters, &matches) {
            Ok(p) => p,
            Err(e) => {
                dropped += 1;
                problems.push(error(e));
                continue;
            }
        };
        let mut policy = policy;
        if let Err(e) = parse_timeouts(rule.timeouts, &mut policy) {
            dropped += 1;
            problems.push(error(e));
            continue;
        }
        for field in &rule.ignored {
            problems.push(warn(format!(
                "{field} (experimental channel) is not supported; ignored"
            )));
        }
        if let Some(k) = rule.backend_refs.iter().position(|b| !b.filters.is_empty()) {
            dropped += 1;
            problems.push(error(format!(
                "backendRefs[{k}].filters are not supported yet"
            )));
            continue;
        }
        let asker = Asker {
            object: &object,
            file: src.file.as_deref(),
            service_upstream: false,
        };
        // A call's body streams to its HTTP/2 backend and is never copied:
        // a GRPCRoute mirror would only ever count skipped copies.
        let mirror_filters = match route.kind {
            rauta_shared::config::RouteKind::GrpcRoute if !policy.mirrors.is_empty() => {
                problems.push(warn(
                    "RequestMirror on a GRPCRoute is not supported yet (a call's body is streamed, not copied); ignored".into(),
                ));
                policy.mirrors.clear();
                &[][..]
            }
            _ => rule.filters,
        };
        let on = (route, protocol, policies, &mut used);
        let mirrors = match mirror_backends(on, mirror_filters, index, builder, &asker, problems) {
            Ok(keys) => keys,
            Err(e) => {
                dropped += 1;
                problems.push(error(e));
                continue;
            }
        };
        let redirects = policy.request_redirect.is_some();
        let refs: Vec<(Option<BackendKey>, u32)> = rule
            .backend_refs
            .iter()
            .enumerate()
            .map(|(k, b)| {
                let policies = Some((policies, &mut used));
                let key = backend(
                    route, b, protocol, policies, index, builder, &asker, problems,
                )
                .map_err(|(reason, e)| {
                    if !redirects {
                        problems.push(warn(format!(
                            "backendRefs[{k}]: {e}; its share of requests is answered 500"
                        )));
                        bad_ref.get_or_insert((reason, e));
                    }
                })
                .ok();
                (key, u32::try_from(b.weight.unwrap_or(1)).unwrap_or(0))
            })
            .collect();
        let first_valid = refs.iter().find_map(|(k, _)| k.clone());
        let backend = match first_valid {
            Some(k) => k,
            None => builder.no_backend(ns),
        };
        // gRPC: an invalid share, or no backend at all, is UNAVAILABLE (a
        // backend without endpoints: 503), not the 500 (INTERNAL) of HTTP.
        let grpc = protocol.is_h2();
        let refs: Vec<(Option<BackendKey>, u32)> = match grpc {
            true => (refs.into_iter())
                .map(|(k, w)| (Some(k.unwrap_or_else(|| builder.no_backend(ns))), w))
                .collect(),
            false => refs,
        };
        let split = match refs.as_slice() {
            _ if redirects => None,
            [] if grpc => None,
            [(Some(_), w)] if *w > 0 => None,
            _ => Some(refs),
        };
        for (j, (path, path_type, conditions)) in matches.iter().enumerate() {
            for a in attached {
                let mut conditions = conditions.clone();
                conditions.tls = a.tls;
                conditions.port = a.port;
                // Gateway API wildcards take any number of labels.
                let host = match &a.host {
                    HostMatch::Wildcard(s) => HostMatch::Suffix(s.clone()),
                    other => other.clone(),
                };
                builder.add_gateway_rule(GatewayRule {
                    key: (host, path.clone(), *path_type),
                    conditions,
                    source: source.clone(),
                    order: (order.clone(), i, j),
                    policy: policy.clone(),
                    backend: backend.clone(),
                    split: split.clone(),
                    mirrors: mirrors.clone(),
                    warn: warning.clone(),
                });
            }
        }
    }
    Outcome {
        rules: count,
        dropped,
        bad_ref,
        policies: used,
    }
}

/// The rule's matches as (path, path type, conditions); none: PathPrefix `/`.
fn parse_matches(rule: &HttpRouteRule) -> Result<Vec<(String, PathType, Conditions)>, String> {
    let default = [HttpRouteMatch::default()];
    let matches = rule
        .matches
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(&default);
    matches
        .iter()
        .enumerate()
        .map(|(j, m)| parse_match(m).map_err(|e| format!("matches[{j}]: {e}")))
        .collect()
}

fn parse_match(m: &HttpRouteMatch) -> Result<(String, PathType, Conditions), String> {
    let path = m.path.as_ref();
    let value = path
        .and_then(|p| p.value.clone())
        .unwrap_or_else(|| "/".into());
    let kind = path.and_then(|p| p.kind.as_deref()).unwrap_or("PathPrefix");
    let path_type = match kind {
        "Exact" => PathType::Exact,
        "PathPrefix" => PathType::Prefix,
        "RegularExpression" => PathType::RegularExpression,
        other => {
            return Err(format!(
                "path type {other:?} is not Exact, PathPrefix or RegularExpression"
            ))
        }
    };
    match path_type {
        PathType::RegularExpression => check_regex(&value)?,
        _ if !value.starts_with('/') => {
            return Err(format!("path {value:?} does not start with /"))
        }
        _ if value.contains("//")
            || value.contains("/./")
            || value.contains("/../")
            || value.contains('#') =>
        {
            return Err(format!(
                "path {value:?} is not normalised (//, /./, /../ or #)"
            ))
        }
        _ => {}
    }
    let mut conditions = Conditions::default();
    if let Some(method) = &m.method {
        if !METHODS.contains(&method.as_str()) {
            return Err(format!(
                "method {method:?} is not one of {}",
                METHODS.join(", ")
            ));
        }
        conditions.method = Some(method.clone());
    }
    conditions.headers = values(&m.headers, true, "header")?;
    conditions.query = values(&m.query_params, false, "query parameter")?;
    Ok((value, path_type, conditions))
}

/// Header or query conditions; a repeated name counts once (the first),
/// as the spec says.
pub(super) fn values(
    raw: &[crate::gateway_api::ValueMatch],
    fold_case: bool,
    what: &str,
) -> Result<Vec<ValueMatch>, String> {
    let mut out: Vec<ValueMatch> = Vec::new();
    for v in raw {
        if !is_header_name(&v.name) {
            return Err(format!("{what} name {:?} is not a valid name", v.name));
        }
        let name = if fold_case {
            v.name.to_ascii_lowercase()
        } else {
            v.name.clone()
        };
        if out.iter().any(|o| o.name == name) {
            continue;
        }
        let value = match v.kind.as_deref().unwrap_or("Exact") {
            "Exact" => StringMatch::Exact(v.value.clone()),
            "RegularExpression" => {
                check_regex(&v.value)?;
                StringMatch::RegularExpression(v.value.clone())
            }
            other => {
                return Err(format!(
                    "{what} match type {other:?} is not Exact or RegularExpression"
                ))
            }
        };
        out.push(ValueMatch { name, value });
    }
    Ok(out)
}

pub(super) fn check_regex(pattern: &str) -> Result<(), String> {
    regex::Regex::new(pattern).map(|_| ()).map_err(|e| {
        let detail = e.to_string();
        let first = detail
            .lines()
            .last()
            .unwrap_or("invalid")
            .trim()
            .to_string();
        format!("{pattern:?} is not a valid regex (Rust regex syntax): {first}")
    })
}

/// The rule's filters as a policy.
fn parse_filters(
    filters: &[HttpRouteFilter],
    matches: &[(String, PathType, Conditions)],
) -> Result<RoutePolicy, String> {
    let mut policy = RoutePolicy::default();
    let mut seen: Vec<&str> = Vec::new();
    for (k, f) in filters.iter().enumerate() {
        let place = format!("filters[{k}]");
        // A rule may mirror to several backends.
        if f.kind != "RequestMirror" && seen.contains(&f.kind.as_str()) {
            return Err(format!("{place}: filter {} appears twice", f.kind));
        }
        seen.push(&f.kind);
        let missing = || {
            format!(
                "{place}: type {} without its {} field",
                f.kind,
                lower_first(&f.kind)
            )
        };
        match f.kind.as_str() {
            "RequestHeaderModifier" => {
                let m = f.request_header_modifier.as_ref().ok_or_else(missing)?;
                policy.request_headers = Some(modifier(m).map_err(|e| format!("{place}: {e}"))?);
            }
            "ResponseHeaderModifier" => {
                let m = f.response_header_modifier.as_ref().ok_or_else(missing)?;
                policy.response_headers = Some(modifier(m).map_err(|e| format!("{place}: {e}"))?);
            }
            "RequestRedirect" => {
                let r = f.request_redirect.as_ref().ok_or_else(missing)?;
                let scheme = match r.scheme.as_deref() {
                    None => None,
                    Some(s @ ("http" | "https")) => Some(s.to_string()),
                    Some(s) => return Err(format!("{place}: scheme {s:?} is not http or https")),
                };
                let code = match r.status_code.unwrap_or(302) {
                    c @ (301 | 302 | 303 | 307 | 308) => c as u16,
                    c => {
                        return Err(format!(
                            "{place}: statusCode {c} is not 301, 302, 303, 307 or 308"
                        ))
                    }
                };
                let port = match r.port {
                    None => None,
                    Some(p) => Some(
                        u16::try_from(p)
                            .ok()
                            .filter(|p| *p > 0)
                            .ok_or_else(|| format!("{place}: port {p} is not 1-65535"))?,
                    ),
                };
                let hostname = match &r.hostname {
                    None => None,
                    Some(h) => match super::listeners::parse_hostname(h) {
                        Ok(rauta_shared::config::HostMatch::Exact(h)) => Some(h),
                        _ => {
                            return Err(format!(
                                "{place}: hostname {h:?} is not a precise host name"
                            ))
                        }
                    },
                };
                let path = r
                    .path
                    .as_ref()
                    .map(|p| path_modifier(p, matches))
                    .transpose()
                    .map_err(|e| format!("{place}: {e}"))?;
                policy.request_redirect = Some(RequestRedirect {
                    scheme,
                    hostname,
                    port,
                    path,
                    code,
                });
            }
            "URLRewrite" => {
                let r = f.url_rewrite.as_ref().ok_or_else(missing)?;
                if let Some(h) = &r.hostname {
                    match super::listeners::parse_hostname(h) {
                        Ok(rauta_shared::config::HostMatch::Exact(h)) => {
                            policy.upstream_host = Some(h)
                        }
                        _ => {
                            return Err(format!(
                                "{place}: hostname {h:?} is not a precise host name"
                            ))
                        }
                    }
                }
                policy.path_rewrite = r
                    .path
                    .as_ref()
                    .map(|p| path_modifier(p, matches))
                    .transpose()
                    .map_err(|e| format!("{place}: {e}"))?;
            }
            "RequestMirror" => {
                let m = f.request_mirror.as_ref().ok_or_else(missing)?;
                policy
                    .mirrors
                    .push(mirror(m).map_err(|e| format!("{place}: {e}"))?);
            }
            "CORS" => {
                let c = f
                    .cors
                    .as_ref()
                    .ok_or_else(|| format!("{place}: type CORS without its cors field"))?;
                policy.cors = Some(super::cors::parse(c).map_err(|e| format!("{place}: {e}"))?);
            }
            "ExtensionRef" | "ExternalAuth" => {
                return Err(format!(
                    "{place}: filter {} is not supported yet (UnsupportedValue)",
                    f.kind
                ))
            }
            other => return Err(format!("{place}: unknown filter type {other:?}")),
        }
    }
    if policy.request_redirect.is_some()
        && (policy.path_rewrite.is_some() || policy.upstream_host.is_some())
    {
        return Err("RequestRedirect and URLRewrite cannot be used together".into());
    }
    Ok(policy)
}

/// A `RequestMirror` filter, its backend filled in by [`mirror_backends`]:
/// the share mirrored, the Host and path of the request as it is sent.
fn mirror(m: &crate::gateway_api::MirrorFilter) -> Result<rauta_shared::policy::Mirror, String> {
    let (numerator, denominator) = match (m.percent, &m.fraction) {
        (Some(_), Some(_)) => return Err("requestMirror sets both percent and fraction".into()),
        (Some(p), None) if (0..=100).contains(&p) => (p, 100),
        (Some(p), None) => return Err(format!("requestMirror.percent {p} is not 0-100")),
        (None, Some(f)) => (f.numerator, f.denominator.unwrap_or(100)),
        (None, None) => (1, 1),
    };
    if denominator < 1 || numerator < 0 || numerator > denominator {
        return Err(format!(
            "requestMirror.fraction {numerator}/{denominator} is not a share (0 <= numerator <= denominator, denominator >= 1)"
        ));
    }
    let r = &m.backend_ref;
    let port = r.port.map_or(String::new(), |p| format!(":{p}"));
    Ok(rauta_shared::policy::Mirror {
        target: rauta_shared::policy::AuthTarget::Backend(0),
        numerator: numerator as u32,
        denominator: denominator as u32,
        host: None,
        path: None,
        body: true,
        name: format!("{}{port}", r.name),
    })
}

/// The backends of the rule's `RequestMirror` filters, in order, or the
/// first invalid one's error.
fn mirror_backends(
    (route, protocol, policies, used): (
        &Route<'_>,
        UpstreamProtocol,
        &Policies,
        &mut BTreeSet<PolicyKey>,
    ),
    filters: &[HttpRouteFilter],
    index: &Index<'_>,
    builder: &mut Builder,
    asker: &Asker<'_>,
    problems: &mut Vec<Problem>,
) -> Result<Vec<BackendKey>, String> {
    let mut keys = Vec::new();
    for (k, f) in filters.iter().enumerate() {
        let Some(m) = f
            .request_mirror
            .as_ref()
            .filter(|_| f.kind == "RequestMirror")
        else {
            continue;
        };
        let target = HttpBackendRef {
            target: m.backend_ref.clone(),
            ..HttpBackendRef::default()
        };
        let tls = Some((policies, &mut *used));
        let key = backend(
            route, &target, protocol, tls, index, builder, asker, problems,
        )
        .map_err(|(_, e)| format!("filters[{k}]: requestMirror.backendRef: {e}"))?;
        keys.push(key);
    }
    Ok(keys)
}

/// `requestRedirect` -> `requestRedirect` for messages.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// A header filter as a modifier, checked as the proxy compiles it
/// (Host may be set, never added or removed, on either side).
fn modifier(f: &HeaderFilter) -> Result<HeaderModifier, String> {
    let pair = |h: &crate::gateway_api::Header| (h.name.clone(), h.value.clone());
    let out = HeaderModifier {
        set: f.set.iter().map(pair).collect(),
        add: f.add.iter().map(pair).collect(),
        remove: f.remove.clone(),
    };
    out.check(true)?;
    Ok(out)
}

fn path_modifier(
    p: &PathModifier,
    matches: &[(String, PathType, Conditions)],
) -> Result<PathRewrite, String> {
    match p.kind.as_str() {
        "ReplaceFullPath" => {
            let path = p
                .replace_full_path
                .clone()
                .ok_or("ReplaceFullPath without replaceFullPath")?;
            Ok(PathRewrite::Full(path))
        }
        "ReplacePrefixMatch" => {
            let path = p
                .replace_prefix_match
                .clone()
                .ok_or("ReplacePrefixMatch without replacePrefixMatch")?;
            if matches.iter().any(|(_, t, _)| *t != PathType::Prefix) {
                return Err(
                    "ReplacePrefixMatch needs every match of the rule to be a PathPrefix".into(),
                );
            }
            Ok(PathRewrite::Prefix(path))
        }
        other => Err(format!(
            "path modifier type {other:?} is not ReplaceFullPath or ReplacePrefixMatch"
        )),
    }
}

/// `timeouts.request` and `timeouts.backendRequest`.
fn parse_timeouts(
    timeouts: Option<&HttpRouteTimeouts>,
    policy: &mut RoutePolicy,
) -> Result<(), String> {
    let Some(t) = timeouts else {
        return Ok(());
    };
    let request = t.request.as_deref().map(duration_ms).transpose()?;
    let backend = t.backend_request.as_deref().map(duration_ms).transpose()?;
    // 0s turns the timeout off.
    let request = request.filter(|ms| *ms > 0);
    let backend = backend.filter(|ms| *ms > 0);
    if let (Some(r), Some(b)) = (request, backend) {
        if b > r {
            return Err(format!(
                "timeouts.backendRequest ({b} ms) is longer than timeouts.request ({r} ms)"
            ));
        }
    }
    policy.timeouts.request_ms = request;
    policy.timeouts.backend_request_ms = backend;
    Ok(())
}

/// A Gateway API duration (GEP-2257): 1 to 4 parts of up to 5 digits
/// with unit `h`, `m`, `s` or `ms`, e.g. `1h30m`, `500ms`.
fn duration_ms(raw: &str) -> Result<u64, String> {
    let bad = || format!("duration {raw:?} is not like 1h30m, 10s or 500ms");
    let mut rest = raw;
    let mut total: u64 = 0;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 5 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else {
            return Err(bad());
        };
        rest = &rest[len..];
        total += n * unit;
        parts += 1;
    }
    if parts == 0 || parts > 4 {
        return Err(bad());
    }
    Ok(total)
}

/// The backend of one backendRef, or why it is invalid. With `policies`,
/// a BackendTLSPolicy for its Service port turns on TLS (its key is put in
/// `used`).
#[allow(clippy::too_many_arguments)]
pub(super) fn backend(
    route: &Route<'_>,
    b: &HttpBackendRef,
    protocol: UpstreamProtocol,
    policies: Option<(&Policies, &mut BTreeSet<PolicyKey>)>,
    index: &Index<'_>,
    builder: &mut Builder,
    asker: &Asker<'_>,
    problems: &mut Vec<Problem>,
) -> Result<BackendKey, (&'static str, String)> {
    let t = &b.target;
    let group = t.group.as_deref().unwrap_or("");
    let kind = t.kind.as_deref().unwrap_or("Service");
    if !group.is_empty() || kind != "Service" {
        return Err((
            "InvalidKind",
            format!("kind {kind} of group {group:?} is not supported (InvalidKind; Service is)"),
        ));
    }
    let ns = route.ns;
    let svc_ns = t.namespace.as_deref().unwrap_or(ns);
    let from = grants::From {
        group: GROUP,
        kind: route.kind.as_str(),
        namespace: ns,
    };
    if !grants::allowed(index, &from, "", "Service", svc_ns, &t.name) {
        return Err((
            "RefNotPermitted",
            format!(
                "Service {svc_ns}/{} is in another namespace and no ReferenceGrant there allows it (RefNotPermitted)",
                t.name
            ),
        ));
    }
    let Some(port) = t
        .port
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
    else {
        return Err((
            "UnsupportedValue",
            format!("Service {svc_ns}/{} without a port", t.name),
        ));
    };
    if !index.services.contains_key(&(svc_ns, t.name.as_str())) {
        return Err((
            "BackendNotFound",
            format!("Service {svc_ns}/{} not found (BackendNotFound)", t.name),
        ));
    }
    let speech = match policies {
        Some((policies, used)) => {
            let (protocol, tls, policy) = policies.apply(index, svc_ns, &t.name, port, protocol);
            used.extend(policy);
            (protocol, tls)
        }
        None => (protocol, None),
    };
    Ok(builder.plain_backend(asker, index, svc_ns, &t.name, port, speech, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_gep_2257_says() {
        for (raw, ms) in [
            ("10s", 10_000),
            ("500ms", 500),
            ("1h30m", 5_400_000),
            ("1m1s1ms", 61_001),
            ("0s", 0),
        ] {
            assert_eq!(duration_ms(raw), Ok(ms), "{raw}");
        }
        for bad in ["", "10", "1.5s", "s", "123456s", "1h1h1h1h1h", "10S", "-1s"] {
            assert!(duration_ms(bad).is_err(), "{bad}");
        }
    }
}
