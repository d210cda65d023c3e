//! Gateway API status: the translation's [`GatewayApiStatus`] written on
//! our GatewayClasses, Gateways and on the routes' `status.parents`
//! (only our entries: other controllers' are kept). Deciding is pure
//! ([`plan`]); writing is a merge patch on the `status` subresource.

use crate::gateway_api::{
    BackendTlsPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, TlsRoute, GROUP,
};
use crate::translate::gateway_status::{Condition, GatewayApiStatus};
use k8s_openapi::api::networking::v1::IngressLoadBalancerIngress;
use kube::api::{Patch, PatchParams};
use kube::Api;
use rauta_shared::config::RouteKind;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The routes' status as the API server holds it, by (kind, namespace,
/// name): other controllers' parent entries are kept from it.
pub(crate) type CurrentStatus = BTreeMap<(RouteKind, String, String), Value>;

/// Which object a status write is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Target {
    /// `GatewayClass`, `Gateway`, `HTTPRoute`, `GRPCRoute` or `TLSRoute`.
    pub(crate) kind: &'static str,
    /// Empty for the cluster-scoped GatewayClass.
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.namespace.as_str() {
            "" => write!(f, "{} {}", self.kind, self.name),
            ns => write!(f, "{} {ns}/{}", self.kind, self.name),
        }
    }
}

/// One status write: the `status` object, without transition times (the
/// writer stamps them), so that equal plans compare equal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub(crate) target: Target,
    pub(crate) status: Value,
}

/// The status every object of `status` should carry. `current` is the
/// routes' status as the API server has it (other controllers' parent
/// entries are kept); `addresses` go into Gateways' status.
pub(crate) fn plan(
    status: &GatewayApiStatus,
    current: &CurrentStatus,
    controller: &str,
    addresses: Option<&[IngressLoadBalancerIngress]>,
) -> Vec<Change> {
    let mut out = Vec::new();
    for (name, class) in &status.classes {
        out.push(Change {
            target: Target {
                kind: "GatewayClass",
                namespace: String::new(),
                name: name.clone(),
            },
            status: json!({"conditions": conditions(&class.conditions, class.generation)}),
        });
    }
    let addresses: Vec<Value> = addresses
        .unwrap_or(&[])
        .iter()
        .filter_map(|a| match (&a.ip, &a.hostname) {
            (Some(ip), _) => Some(json!({"type": "IPAddress", "value": ip})),
            (None, Some(h)) => Some(json!({"type": "Hostname", "value": h})),
            _ => None,
        })
        .collect();
    for ((ns, name), gw) in &status.gateways {
        let generation = gw.object.generation;
        let listeners: Vec<Value> = gw
            .listeners
            .iter()
            .map(|l| {
                let kinds: Vec<Value> = l
                    .supported_kinds
                    .iter()
                    .map(|k| json!({"group": GROUP, "kind": k.as_str()}))
                    .collect();
                json!({
                    "name": l.name,
                    "attachedRoutes": l.attached_routes,
                    "supportedKinds": kinds,
                    "conditions": conditions(&l.conditions, generation),
                })
            })
            .collect();
        let mut body = json!({
            "conditions": conditions(&gw.object.conditions, generation),
            "listeners": listeners,
        });
        if !addresses.is_empty() {
            body["addresses"] = Value::Array(addresses.clone());
        }
        out.push(Change {
            target: Target {
                kind: "Gateway",
                namespace: ns.clone(),
                name: name.clone(),
            },
            status: body,
        });
    }
    for (key, route) in status.entries() {
        // A policy's entries are its ancestors, a route's its parents.
        let (list, reference) = match key.0 {
            RouteKind::BackendTlsPolicy => ("ancestors", "ancestorRef"),
            _ => ("parents", "parentRef"),
        };
        let others = current
            .get(&key)
            .and_then(|s| s.get(list))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("controllerName").and_then(Value::as_str) != Some(controller))
            .cloned();
        let ours = route.parents.iter().map(|p| {
            json!({
                (reference): p.parent_ref,
                "controllerName": controller,
                "conditions": conditions(&p.conditions, route.generation),
            })
        });
        let entries: Vec<Value> = others.chain(ours).collect();
        let (kind, namespace, name) = key;
        out.push(Change {
            target: Target {
                kind: kind.as_str(),
                namespace,
                name,
            },
            status: json!({ (list): entries }),
        });
    }
    out
}

/// `metav1.Condition`s without `lastTransitionTime`.
fn conditions(list: &[Condition], generation: Option<i64>) -> Vec<Value> {
    list.iter()
        .map(|c| {
            let mut v = json!({
                "type": c.kind,
                "status": if c.status { "True" } else { "False" },
                "reason": c.reason,
                "message": c.message,
            });
            if let Some(g) = generation {
                v["observedGeneration"] = json!(g);
            }
            v
        })
        .collect()
}

/// `status` with `lastTransitionTime` set on every condition that has none.
fn stamped(mut status: Value, now: &str) -> Value {
    fn walk(v: &mut Value, now: &str) {
        match v {
            Value::Object(map) => {
                if map.contains_key("type") && map.contains_key("reason") {
                    map.entry("lastTransitionTime")
                        .or_insert_with(|| json!(now));
                }
                for child in map.values_mut() {
                    walk(child, now);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, now)),
            _ => {}
        }
    }
    walk(&mut status, now);
    status
}

/// Writes one change with a merge patch on the `status` subresource.
pub(crate) async fn apply(client: &kube::Client, change: &Change) -> Result<(), kube::Error> {
    let now = k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now())
        .to_string();
    let patch = json!({ "status": stamped(change.status.clone(), &now) });
    let patch = Patch::Merge(&patch);
    let params = PatchParams::default();
    let t = &change.target;
    match t.kind {
        "GatewayClass" => {
            let api: Api<GatewayClass> = Api::all(client.clone());
            api.patch_status(&t.name, &params, &patch).await.map(|_| ())
        }
        "Gateway" => {
            let api: Api<Gateway> = Api::namespaced(client.clone(), &t.namespace);
            api.patch_status(&t.name, &params, &patch).await.map(|_| ())
        }
        "GRPCRoute" => {
            let api: Api<GrpcRoute> = Api::namespaced(client.clone(), &t.namespace);
            api.patch_status(&t.name, &params, &patch).await.map(|_| ())
        }
        "TLSRoute" => {
            let api: Api<TlsRoute> = Api::namespaced(client.clone(), &t.namespace);
            api.patch_status(&t.name, &params, &patch).await.map(|_| ())
        }
        "BackendTLSPolicy" => {
            let api: Api<BackendTlsPolicy> = Api::namespaced(client.clone(), &t.namespace);
            api.patch_status(&t.name, &params, &patch).await.map(|_| ())
        }
        _ => {
            let api: Api<HttpRoute> = Api::namespaced(client.clone(), &t.namespace);
            api.patch_status(&t.name, &params, &patch).await.map(|_| ())
        }
    }
}
