//! Kubernetes objects -> [`RouteConfig`]: class selection, validation,
//! merging, conflict resolution and endpoint resolution. Pure: no I/O.
//!
//! One file per step, in the order [`translate`] runs them: `index` sorts
//! the objects by kind, `class` picks the Ingresses we serve, `ingress`
//! validates each one (reading its `annotations`), `merge` claims rules,
//! backends and TLS hosts oldest Ingress first, `endpoints` finds the
//! addresses behind each Service port, and `l4` adds the TCP and UDP
//! services of the ConfigMaps the flags name. `gateway` adds the Gateway
//! API's Gateways and HTTPRoutes on the same tables.
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

mod annotations;
pub use annotations::{AnnotationVerdict, Verdict};
mod class;
mod endpoints;
mod gateway;
pub use gateway::status::{self as gateway_status, GatewayApiStatus};
mod index;
mod ingress;
mod l4;
mod merge;

use crate::objects::SourcedObject;
use crate::problem::Problem;
use crate::ClassSelector;
use class::is_served;
use index::{ingress_namespace, ingress_ref, Index};
use ingress::parse_ingress;
use k8s_openapi::api::networking::v1::Ingress;
use merge::Builder;
use rauta_shared::config::{IngressRef, RouteConfig, SecretRef};
use std::collections::HashSet;

/// The result of a translation: the configuration and what was wrong.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translation {
    /// The configuration, without the objects that have errors; only
    /// meaningful when [`Translation::is_rejected`] is false.
    pub config: RouteConfig,
    /// Errors and warnings, in a deterministic order.
    pub problems: Vec<Problem>,
    /// The verdict on every annotation of every served Ingress, refused
    /// ones included, sorted by Ingress.
    pub annotations: Vec<IngressAnnotations>,
    /// What the status of our Gateway API objects should say.
    pub gateway_status: GatewayApiStatus,
}

/// The annotations of one served Ingress and what rauta does with each.
#[derive(Debug, Clone, PartialEq)]
pub struct IngressAnnotations {
    /// The Ingress.
    pub ingress: IngressRef,
    /// `Ingress ns/name`, for messages.
    pub object: String,
    /// The manifest file, when it came from one.
    pub file: Option<std::path::PathBuf>,
    /// One verdict per annotation, by key.
    pub verdicts: Vec<AnnotationVerdict>,
}

impl Translation {
    /// True when any problem is an error: some object is left out, or the
    /// whole set is rejected.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }

    /// True when the set cannot be used at all (a [`Severity::Fatal`]
    /// problem: a file that cannot be read or parsed); the last good
    /// configuration must stay live.
    ///
    /// [`Severity::Fatal`]: crate::problem::Severity::Fatal
    pub fn is_rejected(&self) -> bool {
        self.problems.iter().any(Problem::is_fatal)
    }
}

/// Translates a set of objects into a route configuration and its problems.
///
/// The result does not depend on the order of `objects`.
pub fn translate(objects: &[SourcedObject], sel: &ClassSelector) -> Translation {
    let index = Index::new(objects);
    let mut problems = Vec::new();
    let mut ingresses = Vec::new();
    let mut annotations = Vec::new();
    for (src, ing) in &index.ingresses {
        if is_served(src, ing, sel, &index, &mut problems) {
            ingresses.extend(parse_ingress(src, ing, &mut problems, &mut annotations));
        }
    }
    annotations.sort_by(|a: &IngressAnnotations, b| a.ingress.cmp(&b.ingress));
    // The oldest Ingress claims contested rules first; names break ties.
    ingresses.sort_by(|a, b| a.order.cmp(&b.order));
    let mut builder = Builder::default();
    // Main Ingresses claim rules first; canaries then join the rules they match.
    for ing in ingresses.iter().filter(|i| !i.is_canary()) {
        builder.claim(ing, &index, &mut problems);
    }
    for ing in ingresses.iter().filter(|i| i.is_canary()) {
        builder.claim_canary(ing, &index, &mut problems);
    }
    // Gateway API routes after every Ingress: an Ingress wins a tie.
    let gateway_status = gateway::add(&index, sel, &mut builder, &mut problems);
    let (mut config, differences) = builder.finish(&mut problems);
    l4::add_services(&index, sel, &mut config, &mut problems);
    l4::add_passthrough(&ingresses, &index, &mut config, &mut problems);
    for d in differences {
        let verdicts = annotations
            .iter_mut()
            .filter(|a| a.ingress == d.ingress)
            .flat_map(|a| a.verdicts.iter_mut());
        for v in verdicts {
            let bare = v.key.rsplit_once('/').map_or(v.key.as_str(), |(_, k)| k);
            if bare == d.key && v.verdict == Verdict::Honoured {
                v.verdict = Verdict::Differs(d.note.clone());
            }
        }
    }
    Translation {
        config,
        problems: dedup(problems),
        annotations,
        gateway_status,
    }
}

/// The Ingresses among `objects` that `sel` serves, valid or not, by the
/// same class rules as [`translate`]; sorted, without duplicates.
pub fn served_ingresses(objects: &[SourcedObject], sel: &ClassSelector) -> Vec<IngressRef> {
    let index = Index::new(objects);
    sorted_unique(served(&index, sel).map(ingress_ref))
}

/// The Secrets that the `spec.tls` of served Ingresses name (in the
/// Ingress's namespace) and the certificates of our Gateways' listeners
/// name, valid or not; sorted, without duplicates.
pub fn referenced_secrets(objects: &[SourcedObject], sel: &ClassSelector) -> Vec<SecretRef> {
    let index = Index::new(objects);
    let listeners = gateway::certificate_refs(&index, sel);
    sorted_unique(
        listeners
            .into_iter()
            .chain(served(&index, sel).flat_map(|ing| {
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
            })),
    )
}

/// The ConfigMaps (as namespace/name pairs) that BackendTLSPolicies name
/// as CA bundles; sorted, without duplicates.
pub fn referenced_ca_maps(objects: &[SourcedObject]) -> Vec<SecretRef> {
    let index = Index::new(objects);
    sorted_unique(
        index
            .backend_tls
            .iter()
            .flat_map(|(&(ns, _), (_, policy))| {
                let refs = policy.spec.validation.ca_certificate_refs.iter();
                refs.filter(|r| {
                    r.kind.as_deref() == Some("ConfigMap")
                        && r.group.as_deref().unwrap_or("").is_empty()
                })
                .map(move |r| SecretRef {
                    namespace: ns.to_string(),
                    name: r.name.clone(),
                })
            }),
    )
}

/// The Ingresses of `index` that `sel` serves, by [`is_served`]. Its
/// warnings are dropped: [`translate`] reports them, here only the verdict
/// counts.
fn served<'a>(index: &'a Index<'a>, sel: &'a ClassSelector) -> impl Iterator<Item = &'a Ingress> {
    let mut scratch = Vec::new();
    index
        .ingresses
        .iter()
        .filter(move |(src, ing)| is_served(src, ing, sel, index, &mut scratch))
        .map(|(_, ing)| *ing)
}

/// `items` sorted, without duplicates.
fn sorted_unique<T: Ord>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = items.collect();
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
