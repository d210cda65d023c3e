//! The objects of one translation, sorted by kind into lookup tables, and
//! how an Ingress is named in messages.

use crate::gateway_api::{
    BackendTlsPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, ReferenceGrant, TlsRoute,
};
use crate::objects::{describe, KubeObject, SourcedObject, DEFAULT_NAMESPACE};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use rauta_shared::config::IngressRef;
use std::collections::BTreeMap;

/// EndpointSlice label naming the Service the slice belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The objects by kind, in a canonical order.
pub(super) struct Index<'a> {
    pub(super) ingresses: Vec<(&'a SourcedObject, &'a Ingress)>,
    pub(super) classes: Vec<&'a IngressClass>,
    pub(super) services: BTreeMap<(&'a str, &'a str), &'a Service>,
    /// Slices by (namespace, service name), ordered by slice name.
    pub(super) slices: BTreeMap<(&'a str, &'a str), Vec<(&'a SourcedObject, &'a EndpointSlice)>>,
    pub(super) secrets: BTreeMap<(&'a str, &'a str), (&'a SourcedObject, &'a Secret)>,
    pub(super) config_maps: BTreeMap<(&'a str, &'a str), (&'a SourcedObject, &'a ConfigMap)>,
    /// Namespace labels by name (Gateway listeners' namespace selectors).
    pub(super) namespaces: BTreeMap<&'a str, &'a BTreeMap<String, String>>,
    pub(super) gateway_classes: BTreeMap<&'a str, (&'a SourcedObject, &'a GatewayClass)>,
    /// Gateways by (namespace, name).
    pub(super) gateways: BTreeMap<(&'a str, &'a str), (&'a SourcedObject, &'a Gateway)>,
    /// HTTPRoutes by (namespace, name).
    pub(super) http_routes: BTreeMap<(&'a str, &'a str), (&'a SourcedObject, &'a HttpRoute)>,
    /// GRPCRoutes by (namespace, name).
    pub(super) grpc_routes: BTreeMap<(&'a str, &'a str), (&'a SourcedObject, &'a GrpcRoute)>,
    /// TLSRoutes by (namespace, name).
    pub(super) tls_routes: BTreeMap<(&'a str, &'a str), (&'a SourcedObject, &'a TlsRoute)>,
    /// BackendTLSPolicies by (namespace, name).
    pub(super) backend_tls: BTreeMap<(&'a str, &'a str), (&'a SourcedObject, &'a BackendTlsPolicy)>,
    /// ReferenceGrants by namespace.
    pub(super) grants: BTreeMap<&'a str, Vec<&'a ReferenceGrant>>,
}

impl<'a> Index<'a> {
    /// Sorts `objects` into the index.
    pub(super) fn new(objects: &'a [SourcedObject]) -> Index<'a> {
        let mut index = Index {
            ingresses: Vec::new(),
            classes: Vec::new(),
            services: BTreeMap::new(),
            slices: BTreeMap::new(),
            secrets: BTreeMap::new(),
            config_maps: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            gateway_classes: BTreeMap::new(),
            gateways: BTreeMap::new(),
            http_routes: BTreeMap::new(),
            grpc_routes: BTreeMap::new(),
            tls_routes: BTreeMap::new(),
            backend_tls: BTreeMap::new(),
            grants: BTreeMap::new(),
        };
        static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();
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
                KubeObject::ConfigMap(map) => {
                    index
                        .config_maps
                        .insert((ns, src.object.name()), (src, map));
                }
                KubeObject::Namespace(n) => {
                    let labels = n.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
                    index.namespaces.insert(src.object.name(), labels);
                }
                KubeObject::GatewayClass(c) => {
                    index.gateway_classes.insert(src.object.name(), (src, c));
                }
                KubeObject::Gateway(g) => {
                    index.gateways.insert((ns, src.object.name()), (src, g));
                }
                KubeObject::HttpRoute(r) => {
                    index.http_routes.insert((ns, src.object.name()), (src, r));
                }
                KubeObject::GrpcRoute(r) => {
                    index.grpc_routes.insert((ns, src.object.name()), (src, r));
                }
                KubeObject::TlsRoute(r) => {
                    index.tls_routes.insert((ns, src.object.name()), (src, r));
                }
                KubeObject::BackendTlsPolicy(p) => {
                    index.backend_tls.insert((ns, src.object.name()), (src, p));
                }
                KubeObject::ReferenceGrant(g) => index.grants.entry(ns).or_default().push(g),
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
    pub(super) fn class(&self, name: &str) -> Option<&'a IngressClass> {
        self.classes
            .iter()
            .copied()
            .find(|c| c.metadata.name.as_deref() == Some(name))
    }
}

/// Namespace of an Ingress, defaulted.
pub(super) fn ingress_namespace(ing: &Ingress) -> &str {
    ing.metadata
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE)
}

/// `Ingress ns/name`.
pub(super) fn ingress_describe(ing: &Ingress) -> String {
    describe(
        "Ingress",
        Some(ingress_namespace(ing)),
        ing.metadata.name.as_deref().unwrap_or(""),
    )
}

/// `ns/name` of an Ingress, defaulted as [`ingress_namespace`] does.
pub(super) fn ingress_ref(ing: &Ingress) -> IngressRef {
    IngressRef {
        namespace: ingress_namespace(ing).to_string(),
        name: ing.metadata.name.clone().unwrap_or_default(),
        kind: rauta_shared::config::RouteKind::Ingress,
    }
}
