//! Gateway API objects -> rules on the same tables as the Ingresses.
//!
//! One file per step: `listeners` finds the Gateways of our GatewayClasses
//! and what each listener serves (port -> rauta listener, hostname,
//! certificate, allowed routes), `attach` decides which listeners each
//! HTTPRoute's `parentRefs` reach and with which hostnames, `rules` turns
//! each HTTPRoute rule into [`GatewayRule`]s (matches -> conditions,
//! filters -> policy, `backendRefs` -> a weighted split), `grants` answers
//! whether a ReferenceGrant allows a cross-namespace reference.
//!
//! Precedence: within one (host, path, path type) the rules are ordered as
//! the HTTPRoute spec says (method, then most header matches, then most
//! query matches, then the oldest route, then `namespace/name`, then rule
//! and match order); across paths the router's order holds (Exact, then
//! RegularExpression, then the longest prefix). An Ingress rule for the
//! same host, path and path type wins over an HTTPRoute rule, which is
//! reported: the Ingress is what served the host before the move.

mod attach;
mod backend_tls;
mod cors;
mod grants;
mod grpc;
mod listeners;
mod rules;
pub mod status;
mod tls;

use super::index::Index;
use super::ingress::RuleKey;
use super::merge::{BackendKey, Builder};
use crate::problem::Problem;
use crate::ClassSelector;
use attach::Route;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rauta_shared::config::{Conditions, IngressRef, RouteKind, SecretRef, UpstreamProtocol};
use rauta_shared::policy::RoutePolicy;
use status::{Condition, GatewayApiStatus, ObjectStatus, RouteStatus};
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// Route age: missing timestamps sort after present ones, then by
/// namespace/name.
pub(super) type RouteOrder = (bool, Option<Time>, IngressRef);

/// One HTTPRoute match on one host and listener scope, ready to merge.
pub(crate) struct GatewayRule {
    pub(super) key: RuleKey,
    pub(super) conditions: Conditions,
    pub(super) source: IngressRef,
    /// Route age, then rule index, then match index.
    pub(super) order: (RouteOrder, usize, usize),
    pub(super) policy: RoutePolicy,
    /// The backend that names the rule: the first valid one, else none.
    pub(super) backend: BackendKey,
    /// Weighted backends (`None`: an invalid reference) when more than
    /// one, an invalid one, or a weight of 0 is involved.
    pub(super) split: Option<Vec<(Option<BackendKey>, u32)>>,
    /// The backends of the policy's mirrors, in order.
    pub(super) mirrors: Vec<BackendKey>,
    /// A warning about the route, for conflicts found when merging.
    pub(super) warn: Problem,
}

impl GatewayRule {
    /// Precedence within one (host, path, path type): smaller first.
    pub(super) fn rank(&self) -> impl Ord + '_ {
        let c = &self.conditions;
        (
            Reverse(c.method.is_some()),
            Reverse(c.headers.len()),
            Reverse(c.query.len()),
            &self.order,
            (c.tls, c.port),
        )
    }
}

/// The Secrets our Gateways' HTTPS listeners name, granted or not.
pub(super) fn certificate_refs(index: &Index<'_>, sel: &ClassSelector) -> Vec<SecretRef> {
    let mut out = Vec::new();
    for (&(ns, _), &(_, gateway)) in &index.gateways {
        if !listeners::is_ours(index, sel, gateway) {
            continue;
        }
        let tls = gateway.spec.listeners.iter().filter_map(|l| l.tls.as_ref());
        for cert in tls.flat_map(|t| &t.certificate_refs) {
            if cert.kind.as_deref().unwrap_or("Secret") == "Secret" {
                out.push(SecretRef {
                    namespace: cert.namespace.clone().unwrap_or_else(|| ns.to_string()),
                    name: cert.name.clone(),
                });
            }
        }
    }
    out
}

/// Adds the rules and certificates of the Gateway API objects that `sel`
/// serves to `builder`; returns what their status should say.
pub(super) fn add(
    index: &Index<'_>,
    sel: &ClassSelector,
    builder: &mut Builder,
    problems: &mut Vec<Problem>,
) -> GatewayApiStatus {
    let mut out = GatewayApiStatus::default();
    for (name, (_, class)) in &index.gateway_classes {
        if class.spec.controller_name == sel.gateway_controller {
            out.classes.insert(
                name.to_string(),
                ObjectStatus {
                    generation: class.metadata.generation,
                    conditions: vec![Condition::ok("Accepted", "Accepted")],
                },
            );
        }
    }
    let gateways = listeners::served(index, sel, builder, problems);
    let policies = backend_tls::Policies::new(index, problems);
    // Each BackendTLSPolicy's ancestors: the Gateways of the routes using it.
    let mut ancestors: BTreeMap<backend_tls::PolicyKey, Vec<serde_json::Value>> = BTreeMap::new();
    // HTTPRoutes and GRPCRoutes: attached first, so that of two routes of
    // the two kinds sharing a host on a listener only the older is served.
    enum Rules<'a> {
        Http(&'a crate::gateway_api::HttpRoute),
        Grpc(&'a crate::gateway_api::GrpcRoute),
    }
    let mut web = Vec::new();
    let http_routes = (index.http_routes.iter()).map(|(&key, &(src, route))| {
        let spec = &route.spec;
        let r = Route::new(
            RouteKind::HttpRoute,
            key,
            src,
            &spec.parent_refs,
            &spec.hostnames,
        );
        (r, &route.metadata, Rules::Http(route))
    });
    let grpc_routes = (index.grpc_routes.iter()).map(|(&key, &(src, route))| {
        let spec = &route.spec;
        let r = Route::new(
            RouteKind::GrpcRoute,
            key,
            src,
            &spec.parent_refs,
            &spec.hostnames,
        );
        (r, &route.metadata, Rules::Grpc(route))
    });
    for (r, meta, rules) in http_routes.chain(grpc_routes) {
        let (attached, parents) = attach::attach(&r, &gateways, index, problems);
        let created = meta.creation_timestamp.clone();
        let age = (created.is_none(), created, r.ns, r.name);
        web.push((age, r, meta.generation, rules, attached, parents));
    }
    web.sort_by(|a, b| a.0.cmp(&b.0));
    let mut served: Vec<(RouteKind, String, Vec<attach::Attachment>)> = Vec::new();
    for ((_, created, ..), r, generation, rules, attached, mut parents) in web {
        let rival = served
            .iter()
            .find(|(kind, _, theirs)| *kind != r.kind && attach::overlap(&attached, theirs));
        if let Some((kind, rival, _)) = rival {
            let message = format!(
                "shares a hostname on a listener with {} {rival}, which is older: a listener serves HTTPRoutes or GRPCRoutes for a host, not both",
                kind.as_str()
            );
            problems.push(
                Problem::warning(Some(r.object()), format!("{message}; not served"))
                    .in_file(r.src.file.clone()),
            );
            for p in parents.iter_mut().filter(|p| p.conditions[0].status) {
                p.conditions[0] = Condition::failed("Accepted", "Conflicted", message.clone());
            }
            record(&mut out, &r, generation, parents, None);
            continue;
        }
        let outcome = (!attached.is_empty()).then(|| {
            let (rules, protocol) = match rules {
                Rules::Http(route) => (rules::http_rules(route), UpstreamProtocol::Http),
                Rules::Grpc(route) => (grpc::rules(route), UpstreamProtocol::Grpc),
            };
            rules::add(
                &r, created, rules, protocol, &policies, &attached, index, builder, problems,
            )
        });
        for policy in outcome.iter().flat_map(|o| &o.policies) {
            let list = ancestors.entry(policy.clone()).or_default();
            for p in parents.iter().filter(|p| p.conditions[0].status) {
                let mut gateway = p.parent_ref.clone();
                if let Some(g) = gateway.as_object_mut() {
                    g.remove("sectionName");
                    g.remove("port");
                }
                if !list.contains(&gateway) {
                    list.push(gateway);
                }
            }
        }
        record(&mut out, &r, generation, parents, outcome);
        served.push((r.kind, format!("{}/{}", r.ns, r.name), attached));
    }
    // The oldest TLSRoute claims a contested host first.
    let mut tls_routes: Vec<_> = index.tls_routes.iter().collect();
    tls_routes.sort_by_key(|(key, (_, route))| {
        let created = route.metadata.creation_timestamp.clone();
        (created.is_none(), created, *key)
    });
    for (&key, &(src, route)) in tls_routes {
        let spec = &route.spec;
        let r = Route::new(
            RouteKind::TlsRoute,
            key,
            src,
            &spec.parent_refs,
            &spec.hostnames,
        );
        let (attached, parents) = attach::attach(&r, &gateways, index, problems);
        let outcome = (!attached.is_empty())
            .then(|| tls::add(&r, route, &attached, index, builder, problems));
        record(&mut out, &r, route.metadata.generation, parents, outcome);
    }
    for (key, generation, conditions) in policies.conditions() {
        let Some(list) = ancestors.get(key) else {
            continue;
        };
        let parents = list
            .iter()
            .map(|gateway| status::ParentStatus {
                parent_ref: gateway.clone(),
                conditions: conditions.to_vec(),
            })
            .collect();
        out.policies.insert(
            key.clone(),
            RouteStatus {
                generation,
                parents,
            },
        );
    }
    for ((ns, name), served) in &gateways {
        let generation = index
            .gateways
            .get(&(*ns, *name))
            .and_then(|(_, g)| g.metadata.generation);
        out.gateways.insert(
            (ns.to_string(), name.to_string()),
            listeners::status(served, generation),
        );
    }
    out
}

/// Records a route's status per parent: Accepted from attaching, then
/// what became of its rules (every rule bad: not accepted; some:
/// PartiallyInvalid) and ResolvedRefs.
fn record(
    out: &mut GatewayApiStatus,
    route: &Route<'_>,
    generation: Option<i64>,
    mut parents: Vec<status::ParentStatus>,
    outcome: Option<rules::Outcome>,
) {
    if parents.is_empty() {
        return;
    }
    for parent in &mut parents {
        let accepted = parent.conditions.first().is_some_and(|c| c.status);
        let Some(outcome) = outcome.as_ref().filter(|_| accepted) else {
            continue;
        };
        if outcome.dropped == outcome.rules {
            parent.conditions[0] = Condition::failed(
                "Accepted",
                "UnsupportedValue",
                "every rule has an error (see the route's problems)",
            );
        } else if outcome.dropped > 0 {
            parent.conditions.push(Condition {
                kind: "PartiallyInvalid",
                status: true,
                reason: "UnsupportedValue".into(),
                message: format!(
                    "{} of {} rules have errors and are not served",
                    outcome.dropped, outcome.rules
                ),
            });
        }
        parent.conditions.push(match &outcome.bad_ref {
            None => Condition::ok("ResolvedRefs", "ResolvedRefs"),
            Some((reason, message)) => Condition::failed("ResolvedRefs", reason, message.clone()),
        });
    }
    out.routes.insert(
        (route.kind, route.ns.to_string(), route.name.to_string()),
        RouteStatus {
            generation,
            parents,
        },
    );
}
