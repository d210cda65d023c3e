//! GRPCRoute rules read into the HTTPRoute rules' form: a call's
//! `/service/method` is its `:path`, so a method match is a path (Exact
//! `/S/M`, PathPrefix `/S`, or a regex) and header matches are header
//! conditions. Backends are spoken to with HTTP/2 prior knowledge (h2c).

use super::rules::{check_regex, values, RuleInput};
use crate::gateway_api::{GrpcMethodMatch, GrpcRoute, GrpcRouteMatch, GrpcRouteRule};
use rauta_shared::config::{Conditions, PathType};

/// The filters GRPCRoute takes (RequestRedirect, URLRewrite and CORS are
/// HTTPRoute's only).
const FILTERS: &[&str] = &[
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "ExtensionRef",
];

/// The rules of a GRPCRoute; none: one rule matching every call, with
/// no backend (the route answers UNAVAILABLE).
pub(super) fn rules(route: &GrpcRoute) -> Vec<RuleInput<'_>> {
    static DEFAULT: std::sync::OnceLock<GrpcRouteRule> = std::sync::OnceLock::new();
    let rules = match route.spec.rules.as_slice() {
        [] => std::slice::from_ref(DEFAULT.get_or_init(GrpcRouteRule::default)),
        rules => rules,
    };
    rules
        .iter()
        .map(|rule| {
            let mut ignored = Vec::new();
            if rule.session_persistence.is_some() {
                ignored.push("sessionPersistence");
            }
            RuleInput {
                name: rule.name.as_deref(),
                matches: check_filters(rule).and_then(|()| matches(rule)),
                filters: &rule.filters,
                backend_refs: &rule.backend_refs,
                timeouts: None,
                ignored,
            }
        })
        .collect()
}

fn check_filters(rule: &GrpcRouteRule) -> Result<(), String> {
    match rule
        .filters
        .iter()
        .enumerate()
        .find(|(_, f)| !FILTERS.contains(&f.kind.as_str()))
    {
        Some((k, f)) => Err(format!(
            "filters[{k}]: filter {:?} is not a GRPCRoute filter ({})",
            f.kind,
            FILTERS.join(", ")
        )),
        None => Ok(()),
    }
}

fn matches(rule: &GrpcRouteRule) -> Result<Vec<(String, PathType, Conditions)>, String> {
    let every = [GrpcRouteMatch::default()];
    let list = match rule.matches.as_slice() {
        [] => &every[..],
        list => list,
    };
    list.iter()
        .enumerate()
        .map(|(j, m)| one(m).map_err(|e| format!("matches[{j}]: {e}")))
        .collect()
}

fn one(m: &GrpcRouteMatch) -> Result<(String, PathType, Conditions), String> {
    let conditions = Conditions {
        headers: values(&m.headers, true, "header")?,
        ..Conditions::default()
    };
    let (path, path_type) = match &m.method {
        None => ("/".to_string(), PathType::Prefix),
        Some(method) => path(method)?,
    };
    Ok((path, path_type, conditions))
}

/// The `:path` a method match stands for.
fn path(m: &GrpcMethodMatch) -> Result<(String, PathType), String> {
    let service = m.service.as_deref().filter(|s| !s.is_empty());
    let method = m.method.as_deref().filter(|s| !s.is_empty());
    let neither = || "method match without service or method".to_string();
    match m.kind.as_deref().unwrap_or("Exact") {
        "Exact" => {
            for (what, value) in [("service", service), ("method", method)] {
                if let Some(v) = value.filter(|v| !is_name(v, what == "service")) {
                    return Err(format!(
                        "{what} {v:?} is not a valid gRPC {what} name for an Exact match"
                    ));
                }
            }
            Ok(match (service, method) {
                (Some(s), Some(m)) => (format!("/{s}/{m}"), PathType::Exact),
                (Some(s), None) => (format!("/{s}"), PathType::Prefix),
                (None, Some(m)) => (
                    format!("/[^/]+/{}", regex::escape(m)),
                    PathType::RegularExpression,
                ),
                (None, None) => return Err(neither()),
            })
        }
        "RegularExpression" => {
            if service.is_none() && method.is_none() {
                return Err(neither());
            }
            for value in [service, method].into_iter().flatten() {
                check_regex(value)?;
            }
            let s = service.unwrap_or("[^/]+");
            let m = method.unwrap_or("[^/]+");
            let pattern = format!("/(?:{s})/(?:{m})");
            check_regex(&pattern)?;
            Ok((pattern, PathType::RegularExpression))
        }
        other => Err(format!(
            "method match type {other:?} is not Exact or RegularExpression"
        )),
    }
}

/// A protobuf service (dotted) or method name: letters, digits and `_`,
/// not starting with a digit; no `/`.
fn is_name(s: &str, dotted: bool) -> bool {
    let part_ok = |p: &str| {
        p.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if dotted {
        s.split('.').all(part_ok)
    } else {
        part_ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: Option<&str>, s: Option<&str>, me: Option<&str>) -> GrpcMethodMatch {
        GrpcMethodMatch {
            kind: kind.map(str::to_string),
            service: s.map(str::to_string),
            method: me.map(str::to_string),
        }
    }

    #[test]
    fn method_matches_become_paths() {
        let exact = |s, me| path(&m(None, s, me));
        assert_eq!(
            exact(Some("grpc.health.v1.Health"), Some("Check")),
            Ok(("/grpc.health.v1.Health/Check".into(), PathType::Exact))
        );
        assert_eq!(
            exact(Some("a.B"), None),
            Ok(("/a.B".into(), PathType::Prefix))
        );
        assert_eq!(
            exact(None, Some("Check")),
            Ok(("/[^/]+/Check".into(), PathType::RegularExpression))
        );
        assert!(exact(None, None).is_err());
        assert!(exact(Some("a/b"), Some("C")).is_err());
        assert!(exact(Some("a"), Some("C.d")).is_err());
        assert_eq!(
            path(&m(Some("RegularExpression"), Some("a\\..*"), None)),
            Ok(("/(?:a\\..*)/(?:[^/]+)".into(), PathType::RegularExpression))
        );
        assert!(path(&m(Some("RegularExpression"), Some("("), None)).is_err());
        assert!(path(&m(Some("Prefix"), Some("a"), None)).is_err());
    }
}
