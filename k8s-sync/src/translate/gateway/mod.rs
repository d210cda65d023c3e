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
mod grants;
mod listeners;
mod rules;
pub mod status;

use super::index::Index;
use super::ingress::RuleKey;
use super::merge::{BackendKey, Builder};
use crate::problem::Problem;
use crate::ClassSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rauta_shared::config::{Conditions, IngressRef, SecretRef};
use rauta_shared::policy::RoutePolicy;
use status::{Condition, GatewayApiStatus, ObjectStatus, RouteStatus};
use std::cmp::Reverse;

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
    for ((ns, name), (src, route)) in &index.http_routes {
        let (attached, mut parents) =
            attach::attach(ns, name, src, route, &gateways, index, problems);
        let outcome = if attached.is_empty() {
            None
        } else {
            Some(rules::add(
                ns, name, src, route, &attached, index, builder, problems,
            ))
        };
        if parents.is_empty() {
            continue;
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
                Some((reason, message)) => {
                    Condition::failed("ResolvedRefs", reason, message.clone())
                }
            });
        }
        out.routes.insert(
            (ns.to_string(), name.to_string()),
            RouteStatus {
                generation: route.metadata.generation,
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
