//! Which listeners a route's `parentRefs` reach, and with which
//! hostnames: `sectionName` and `port` select listeners, the listener's
//! protocol and `allowedRoutes` (namespaces, kinds) admit the route's kind,
//! and the route's hostnames are intersected with the listener's. The same
//! for HTTPRoute, GRPCRoute and TLSRoute.

use super::super::index::Index;
use super::listeners::{Gateways, ServedListener};
use super::status::{Condition, ParentStatus};
use crate::gateway_api::{ObjectRef, GROUP};
use crate::objects::SourcedObject;
use crate::problem::Problem;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use rauta_shared::config::{HostMatch, IngressRef, RouteKind};
use std::collections::BTreeMap;
use std::collections::BTreeSet;

/// A host the route serves, and on which of rauta's listeners.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Attachment {
    pub(super) host: HostMatch,
    /// `None`: plain and TLS listeners alike.
    pub(super) tls: Option<bool>,
    /// Only the TLS listener on this port.
    pub(super) port: Option<u16>,
}

/// What attaching reads of a route of any kind.
pub(super) struct Route<'a> {
    pub(super) kind: RouteKind,
    pub(super) ns: &'a str,
    pub(super) name: &'a str,
    pub(super) src: &'a SourcedObject,
    pub(super) parent_refs: &'a [ObjectRef],
    pub(super) hostnames: &'a [String],
}

impl<'a> Route<'a> {
    /// The route of `kind` at (`ns`, `name`), with its spec's parentRefs
    /// and hostnames.
    pub(super) fn new(
        kind: RouteKind,
        (ns, name): (&'a str, &'a str),
        src: &'a SourcedObject,
        parent_refs: &'a [ObjectRef],
        hostnames: &'a [String],
    ) -> Route<'a> {
        Route {
            kind,
            ns,
            name,
            src,
            parent_refs,
            hostnames,
        }
    }

    /// The route as the source of the rules and hosts it gives.
    pub(super) fn source(&self) -> IngressRef {
        IngressRef {
            namespace: self.ns.to_string(),
            name: self.name.to_string(),
            kind: self.kind,
        }
    }

    /// `HTTPRoute ns/name`, for messages.
    pub(super) fn object(&self) -> String {
        format!("{} {}/{}", self.kind.as_str(), self.ns, self.name)
    }
}

/// The hosts and listener scopes `route` is attached with, and the
/// `Accepted` condition of each parentRef to one of our Gateways; problems
/// for parentRefs that reach nothing.
pub(super) fn attach(
    route: &Route<'_>,
    gateways: &Gateways<'_>,
    index: &Index<'_>,
    problems: &mut Vec<Problem>,
) -> (Vec<Attachment>, Vec<ParentStatus>) {
    let ns = route.ns;
    let mut parents = Vec::new();
    let warn = |message: String| {
        Problem::warning(Some(route.object()), message).in_file(route.src.file.clone())
    };
    let mut route_hosts = Vec::new();
    for raw in route.hostnames {
        match super::listeners::parse_hostname(raw) {
            Ok(h) => route_hosts.push(h),
            Err(e) => problems.push(warn(format!("spec.hostnames: {e}; ignored"))),
        }
    }
    let mut scopes: BTreeSet<(HostMatch, bool, Option<u16>)> = BTreeSet::new();
    for (i, parent) in route.parent_refs.iter().enumerate() {
        let place = format!("parentRefs[{i}]");
        let group = parent.group.as_deref().unwrap_or(GROUP);
        let kind = parent.kind.as_deref().unwrap_or("Gateway");
        if group != GROUP || kind != "Gateway" {
            problems.push(warn(format!(
                "{place}: parent kind {kind} of group {group:?} is not supported (Gateway is)"
            )));
            continue;
        }
        let gw_ns = parent.namespace.as_deref().unwrap_or(ns);
        let Some(gateway) = gateways.get(&(gw_ns, parent.name.as_str())) else {
            // Another controller's Gateway is none of our business.
            if !index.gateways.contains_key(&(gw_ns, parent.name.as_str())) {
                problems.push(warn(format!(
                    "{place}: Gateway {gw_ns}/{} not found",
                    parent.name
                )));
            }
            continue;
        };
        let selected: Vec<&ServedListener<'_>> = gateway
            .listeners
            .iter()
            .filter(|l| {
                parent
                    .section_name
                    .as_ref()
                    .is_none_or(|s| *s == l.spec.name)
            })
            .filter(|l| parent.port.is_none_or(|p| p == l.spec.port))
            .collect();
        let parent_ref = parent_json(parent, gw_ns);
        if selected.is_empty() {
            let message = format!(
                "Gateway {gw_ns}/{} has no listener{}{}",
                parent.name,
                parent
                    .section_name
                    .as_ref()
                    .map_or(String::new(), |s| format!(" named {s:?}")),
                parent
                    .port
                    .map_or(String::new(), |p| format!(" on port {p}")),
            );
            problems.push(warn(format!("{place}: {message} (NoMatchingParent)")));
            parents.push(ParentStatus {
                parent_ref,
                conditions: vec![Condition::failed("Accepted", "NoMatchingParent", message)],
            });
            continue;
        }
        // (reason for the status, words for people)
        let mut reasons: BTreeSet<(&str, &str)> = BTreeSet::new();
        let mut attached = false;
        for l in selected {
            let Some(scope) = l.scope else {
                reasons.insert((
                    "NoMatchingParent",
                    "its listener is not served (see the Gateway's problems)",
                ));
                continue;
            };
            if !l.kinds.contains(&route.kind) {
                reasons.insert((
                    "NotAllowedByListeners",
                    "the listener's protocol or allowedRoutes.kinds do not take this kind of route (NotAllowedByListeners)",
                ));
                continue;
            }
            if !allows_namespace(l, gw_ns, ns, index) {
                reasons.insert((
                    "NotAllowedByListeners",
                    "the listener's allowedRoutes.namespaces exclude the route's namespace (NotAllowedByListeners)",
                ));
                continue;
            }
            let hosts = intersect(l.hostname.as_ref(), &route_hosts);
            if hosts.is_empty() {
                reasons.insert((
                    "NoMatchingListenerHostname",
                    "no route hostname matches the listener's hostname (NoMatchingListenerHostname)",
                ));
                continue;
            }
            attached = true;
            l.attached.set(l.attached.get() + 1);
            for host in hosts {
                scopes.insert((host, scope.tls, scope.port));
            }
        }
        if attached {
            parents.push(ParentStatus {
                parent_ref,
                conditions: vec![Condition::ok("Accepted", "Accepted")],
            });
        } else {
            let words: Vec<&str> = reasons.iter().map(|(_, w)| *w).collect();
            let message = format!(
                "not attached to Gateway {gw_ns}/{}: {}",
                parent.name,
                words.join("; ")
            );
            problems.push(warn(format!("{place}: {message}")));
            let reason = reasons.first().map_or("NoMatchingParent", |(r, _)| *r);
            parents.push(ParentStatus {
                parent_ref,
                conditions: vec![Condition::failed("Accepted", reason, message)],
            });
        }
    }
    (merge_scopes(scopes), parents)
}

/// True when two routes' attachments share a host (one takes the other's
/// names) on a listener scope they both reach.
pub(super) fn overlap(a: &[Attachment], b: &[Attachment]) -> bool {
    let scopes = |x: &Attachment, y: &Attachment| match (x.tls, y.tls) {
        (None, _) | (_, None) => true,
        (Some(s), Some(t)) => s == t && (x.port.is_none() || y.port.is_none() || x.port == y.port),
    };
    a.iter().any(|x| {
        b.iter().any(|y| {
            scopes(x, y)
                && (!intersect(Some(&x.host), std::slice::from_ref(&y.host)).is_empty()
                    || x.host == HostMatch::Any
                    || y.host == HostMatch::Any)
        })
    })
}

/// A parentRef as the status repeats it, defaults filled in.
fn parent_json(parent: &crate::gateway_api::ObjectRef, gw_ns: &str) -> serde_json::Value {
    let mut v = serde_json::json!({
        "group": parent.group.as_deref().unwrap_or(GROUP),
        "kind": parent.kind.as_deref().unwrap_or("Gateway"),
        "namespace": gw_ns,
        "name": parent.name,
    });
    if let Some(s) = &parent.section_name {
        v["sectionName"] = serde_json::json!(s);
    }
    if let Some(p) = parent.port {
        v["port"] = serde_json::json!(p);
    }
    v
}

/// One attachment per host and scope; a host on the plain listener and
/// on every TLS listener needs no listener condition at all.
fn merge_scopes(scopes: BTreeSet<(HostMatch, bool, Option<u16>)>) -> Vec<Attachment> {
    let mut by_host: BTreeMap<HostMatch, BTreeSet<(bool, Option<u16>)>> = BTreeMap::new();
    for (host, tls, port) in scopes {
        by_host.entry(host).or_default().insert((tls, port));
    }
    let mut out = Vec::new();
    for (host, mut set) in by_host {
        if set.contains(&(false, None)) && set.contains(&(true, None)) {
            set.retain(|(_, port)| port.is_some());
            // A TLS port listener is covered by the all-TLS one.
            set.clear();
            out.push(Attachment {
                host: host.clone(),
                tls: None,
                port: None,
            });
        }
        let all_tls = set.contains(&(true, None));
        for (tls, port) in set {
            if tls && port.is_some() && all_tls {
                continue;
            }
            out.push(Attachment {
                host: host.clone(),
                tls: Some(tls),
                port,
            });
        }
    }
    out
}

/// `allowedRoutes.namespaces`: `Same` (default), `All`, or `Selector`.
fn allows_namespace(
    l: &ServedListener<'_>,
    gw_ns: &str,
    route_ns: &str,
    index: &Index<'_>,
) -> bool {
    let namespaces = l.allowed().and_then(|a| a.namespaces.as_ref());
    match namespaces.and_then(|n| n.from.as_deref()).unwrap_or("Same") {
        "All" => true,
        "Selector" => {
            let Some(selector) = namespaces.and_then(|n| n.selector.as_ref()) else {
                return false;
            };
            let mut labels = index
                .namespaces
                .get(route_ns)
                .map(|l| (*l).clone())
                .unwrap_or_default();
            // The API server sets this label on every namespace.
            labels
                .entry("kubernetes.io/metadata.name".to_string())
                .or_insert_with(|| route_ns.to_string());
            selects(selector, &labels)
        }
        _ => gw_ns == route_ns,
    }
}

/// A label selector's verdict on `labels` (matchLabels and matchExpressions).
fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or(&[]);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

/// The hosts a route serves on a listener: the spec's intersection of the
/// listener's hostname with the route's hostnames.
pub(super) fn intersect(listener: Option<&HostMatch>, route: &[HostMatch]) -> Vec<HostMatch> {
    let Some(l) = listener else {
        return if route.is_empty() {
            vec![HostMatch::Any]
        } else {
            route.to_vec()
        };
    };
    if route.is_empty() {
        return vec![l.clone()];
    }
    let mut out = Vec::new();
    for r in route {
        let host = match (l, r) {
            (a, b) if a == b => Some(r.clone()),
            // A wildcard listener takes the route's more specific names.
            (HostMatch::Wildcard(s), HostMatch::Exact(h)) if is_below(h, s) => Some(r.clone()),
            (HostMatch::Wildcard(s), HostMatch::Wildcard(t)) if is_below(t, s) => Some(r.clone()),
            // A wildcard route takes the listener's more specific name.
            (HostMatch::Exact(h), HostMatch::Wildcard(s)) if is_below(h, s) => Some(l.clone()),
            (HostMatch::Wildcard(t), HostMatch::Wildcard(s)) if is_below(t, s) => Some(l.clone()),
            _ => None,
        };
        if let Some(h) = host {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

/// True when `name` is a subdomain of `suffix` (at least one more label).
fn is_below(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1
        && name.ends_with(suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> HostMatch {
        super::super::listeners::parse_hostname(s).expect("host")
    }

    #[test]
    fn hostnames_intersect_as_the_spec_says() {
        // (listener, route hostnames, expected)
        let cases: &[(Option<&str>, &[&str], &[&str])] = &[
            (None, &[], &["*any*"]),
            (None, &["a.example.com"], &["a.example.com"]),
            (Some("a.example.com"), &[], &["a.example.com"]),
            (
                Some("test.example.com"),
                &["test.example.com"],
                &["test.example.com"],
            ),
            (
                Some("test.example.com"),
                &["*.example.com"],
                &["test.example.com"],
            ),
            (Some("test.example.com"), &["*.example.net"], &[]),
            (
                Some("*.example.com"),
                &[
                    "*.example.com",
                    "test.example.com",
                    "foo.test.example.com",
                    "example.com",
                    "test.example.net",
                ],
                &["*.example.com", "test.example.com", "foo.test.example.com"],
            ),
            (
                Some("*.example.com"),
                &["*.foo.example.com"],
                &["*.foo.example.com"],
            ),
            (
                Some("*.foo.example.com"),
                &["*.example.com"],
                &["*.foo.example.com"],
            ),
        ];
        for (listener, route, want) in cases {
            let l = listener.map(h);
            let r: Vec<HostMatch> = route.iter().map(|s| h(s)).collect();
            let want: Vec<HostMatch> = want
                .iter()
                .map(|s| if *s == "*any*" { HostMatch::Any } else { h(s) })
                .collect();
            assert_eq!(intersect(l.as_ref(), &r), want, "{listener:?} {route:?}");
        }
    }

    #[test]
    fn a_host_on_every_listener_needs_no_listener_condition() {
        let a = h("a.example.com");
        let scopes = BTreeSet::from([
            (a.clone(), false, None),
            (a.clone(), true, None),
            (HostMatch::Any, true, Some(8443)),
        ]);
        assert_eq!(
            merge_scopes(scopes),
            vec![
                Attachment {
                    host: HostMatch::Any,
                    tls: Some(true),
                    port: Some(8443)
                },
                Attachment {
                    host: a,
                    tls: None,
                    port: None
                },
            ]
        );
    }
}
