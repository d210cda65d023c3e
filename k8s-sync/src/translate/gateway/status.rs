//! What the Gateway API objects' status should say, as the translation
//! found it: conditions of our GatewayClasses, Gateways (and their
//! listeners) and of each route (HTTPRoute, GRPCRoute, TLSRoute) per
//! parent. Pure data; the API source's writer puts it on the objects
//! (leader only).

use rauta_shared::config::RouteKind;
use std::collections::BTreeMap;

/// One condition (`metav1.Condition` without times: the writer adds them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `Accepted`, `Programmed`, `ResolvedRefs`, ...
    pub kind: &'static str,
    /// `True` or `False`.
    pub status: bool,
    /// The spec's reason (`Accepted`, `NotAllowedByListeners`, ...).
    pub reason: String,
    /// For people.
    pub message: String,
}

impl Condition {
    /// A condition that holds, with the reason named like its type.
    pub fn ok(kind: &'static str, reason: &str) -> Condition {
        Condition {
            kind,
            status: true,
            reason: reason.to_string(),
            message: String::new(),
        }
    }

    /// A condition that fails for `reason`.
    pub fn failed(kind: &'static str, reason: &str, message: impl Into<String>) -> Condition {
        Condition {
            kind,
            status: false,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// The status of one object we own a part of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectStatus {
    /// `metadata.generation` the status describes (`observedGeneration`).
    pub generation: Option<i64>,
    /// The object's own conditions.
    pub conditions: Vec<Condition>,
}

/// A listener's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerStatus {
    /// The listener's name.
    pub name: String,
    /// Routes attached to it.
    pub attached_routes: i32,
    /// The route kinds it takes (`supportedKinds`; empty when not served).
    pub supported_kinds: Vec<RouteKind>,
    /// Its conditions.
    pub conditions: Vec<Condition>,
}

/// A Gateway's status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayStatus {
    /// The Gateway's own status.
    pub object: ObjectStatus,
    /// One per listener, in spec order.
    pub listeners: Vec<ListenerStatus>,
}

/// One `status.parents` entry of an HTTPRoute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentStatus {
    /// The parentRef as written (group, kind, namespace, name, sectionName, port).
    pub parent_ref: serde_json::Value,
    /// Its conditions.
    pub conditions: Vec<Condition>,
}

/// An HTTPRoute's status for the parents that are ours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteStatus {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// Our entries.
    pub parents: Vec<ParentStatus>,
}

/// Every status the translation decided, by (namespace, name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayApiStatus {
    /// Our GatewayClasses, by name.
    pub classes: BTreeMap<String, ObjectStatus>,
    /// Our Gateways.
    pub gateways: BTreeMap<(String, String), GatewayStatus>,
    /// Routes (HTTPRoute, GRPCRoute, TLSRoute) with a parentRef to one of
    /// our Gateways, by (kind, namespace, name).
    pub routes: BTreeMap<(RouteKind, String, String), RouteStatus>,
    /// BackendTLSPolicies our routes use, by (namespace, name): one entry
    /// per ancestor Gateway (`status.ancestors`).
    pub policies: BTreeMap<(String, String), RouteStatus>,
}

impl GatewayApiStatus {
    /// The routes' entries and the policies', by (kind, namespace, name):
    /// a route's are its parents, a BackendTLSPolicy's its ancestors.
    pub fn entries(&self) -> impl Iterator<Item = ((RouteKind, String, String), &RouteStatus)> {
        let routes = self.routes.iter().map(|(key, route)| (key.clone(), route));
        let policies = self.policies.iter().map(|((ns, name), policy)| {
            let key = (RouteKind::BackendTlsPolicy, ns.clone(), name.clone());
            (key, policy)
        });
        routes.chain(policies)
    }
}
