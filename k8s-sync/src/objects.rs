//! The Kubernetes objects that k8s-sync understands, tagged with their source.

use crate::gateway_api::{
    BackendTlsPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, ReferenceGrant, TlsRoute,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::path::PathBuf;

/// The namespace of a namespaced object without `metadata.namespace`, as
/// `kubectl apply` does without `-n`.
pub const DEFAULT_NAMESPACE: &str = "default";

/// An object together with the manifest file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedObject {
    /// The manifest file, or `None` when the object did not come from a file.
    pub file: Option<PathBuf>,
    /// The object itself.
    pub object: KubeObject,
}

/// One of the kinds that routing depends on.
// Objects live once in a Vec per load; boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum KubeObject {
    /// `networking.k8s.io/v1` Ingress.
    Ingress(Ingress),
    /// `networking.k8s.io/v1` IngressClass (cluster-scoped).
    IngressClass(IngressClass),
    /// `v1` Service.
    Service(Service),
    /// `discovery.k8s.io/v1` EndpointSlice.
    EndpointSlice(EndpointSlice),
    /// `v1` Secret (only `kubernetes.io/tls` ones are used).
    Secret(Secret),
    /// `v1` ConfigMap (only the TCP and UDP services maps are used).
    ConfigMap(ConfigMap),
    /// `v1` Namespace (cluster-scoped; its labels, for Gateway listeners'
    /// `allowedRoutes` selectors).
    Namespace(Namespace),
    /// `gateway.networking.k8s.io/v1` GatewayClass (cluster-scoped).
    GatewayClass(GatewayClass),
    /// `gateway.networking.k8s.io/v1` Gateway.
    Gateway(Gateway),
    /// `gateway.networking.k8s.io/v1` HTTPRoute.
    HttpRoute(HttpRoute),
    /// `gateway.networking.k8s.io/v1` GRPCRoute.
    GrpcRoute(GrpcRoute),
    /// `gateway.networking.k8s.io/v1` TLSRoute.
    TlsRoute(TlsRoute),
    /// `gateway.networking.k8s.io/v1` BackendTLSPolicy.
    BackendTlsPolicy(BackendTlsPolicy),
    /// `gateway.networking.k8s.io/v1beta1` (or `v1`) ReferenceGrant.
    ReferenceGrant(ReferenceGrant),
}

impl KubeObject {
    /// The object's kind, e.g. `Ingress`.
    pub fn kind(&self) -> &'static str {
        match self {
            KubeObject::Ingress(_) => "Ingress",
            KubeObject::IngressClass(_) => "IngressClass",
            KubeObject::Service(_) => "Service",
            KubeObject::EndpointSlice(_) => "EndpointSlice",
            KubeObject::Secret(_) => "Secret",
            KubeObject::ConfigMap(_) => "ConfigMap",
            KubeObject::Namespace(_) => "Namespace",
            KubeObject::GatewayClass(_) => "GatewayClass",
            KubeObject::Gateway(_) => "Gateway",
            KubeObject::HttpRoute(_) => "HTTPRoute",
            KubeObject::GrpcRoute(_) => "GRPCRoute",
            KubeObject::TlsRoute(_) => "TLSRoute",
            KubeObject::BackendTlsPolicy(_) => "BackendTLSPolicy",
            KubeObject::ReferenceGrant(_) => "ReferenceGrant",
        }
    }

    /// True for kinds that live in a namespace.
    pub fn is_namespaced(&self) -> bool {
        !matches!(
            self,
            KubeObject::IngressClass(_) | KubeObject::Namespace(_) | KubeObject::GatewayClass(_)
        )
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            KubeObject::Ingress(o) => &o.metadata,
            KubeObject::IngressClass(o) => &o.metadata,
            KubeObject::Service(o) => &o.metadata,
            KubeObject::EndpointSlice(o) => &o.metadata,
            KubeObject::Secret(o) => &o.metadata,
            KubeObject::ConfigMap(o) => &o.metadata,
            KubeObject::Namespace(o) => &o.metadata,
            KubeObject::GatewayClass(o) => &o.metadata,
            KubeObject::Gateway(o) => &o.metadata,
            KubeObject::HttpRoute(o) => &o.metadata,
            KubeObject::GrpcRoute(o) => &o.metadata,
            KubeObject::TlsRoute(o) => &o.metadata,
            KubeObject::BackendTlsPolicy(o) => &o.metadata,
            KubeObject::ReferenceGrant(o) => &o.metadata,
        }
    }

    /// The object's metadata, mutable.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            KubeObject::Ingress(o) => &mut o.metadata,
            KubeObject::IngressClass(o) => &mut o.metadata,
            KubeObject::Service(o) => &mut o.metadata,
            KubeObject::EndpointSlice(o) => &mut o.metadata,
            KubeObject::Secret(o) => &mut o.metadata,
            KubeObject::ConfigMap(o) => &mut o.metadata,
            KubeObject::Namespace(o) => &mut o.metadata,
            KubeObject::GatewayClass(o) => &mut o.metadata,
            KubeObject::Gateway(o) => &mut o.metadata,
            KubeObject::HttpRoute(o) => &mut o.metadata,
            KubeObject::GrpcRoute(o) => &mut o.metadata,
            KubeObject::TlsRoute(o) => &mut o.metadata,
            KubeObject::BackendTlsPolicy(o) => &mut o.metadata,
            KubeObject::ReferenceGrant(o) => &mut o.metadata,
        }
    }

    /// `metadata.name`, empty when missing.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or("")
    }

    /// The namespace (defaulted for namespaced kinds), `None` when cluster-scoped.
    pub fn namespace(&self) -> Option<&str> {
        if !self.is_namespaced() {
            return None;
        }
        Some(
            self.metadata()
                .namespace
                .as_deref()
                .filter(|ns| !ns.is_empty())
                .unwrap_or(DEFAULT_NAMESPACE),
        )
    }

    /// Fills in `metadata.namespace` with `default` where a namespaced object lacks it.
    pub fn default_namespace(&mut self) {
        if self.is_namespaced() {
            let meta = self.metadata_mut();
            if meta.namespace.as_deref().is_none_or(str::is_empty) {
                meta.namespace = Some(DEFAULT_NAMESPACE.to_string());
            }
        }
    }

    /// `Kind ns/name` (or `Kind name` when cluster-scoped), for messages.
    pub fn describe(&self) -> String {
        describe(self.kind(), self.namespace(), self.name())
    }
}

/// `Kind ns/name` or `Kind name`, for objects that may not have parsed.
pub fn describe(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_namespace_means_default() {
        let mut ing = KubeObject::Ingress(Ingress {
            metadata: ObjectMeta {
                name: Some("web".into()),
                ..ObjectMeta::default()
            },
            ..Ingress::default()
        });
        assert_eq!(ing.describe(), "Ingress default/web");
        ing.default_namespace();
        assert_eq!(ing.metadata().namespace.as_deref(), Some("default"));

        let mut class = KubeObject::IngressClass(IngressClass {
            metadata: ObjectMeta {
                name: Some("rauta".into()),
                ..ObjectMeta::default()
            },
            ..IngressClass::default()
        });
        class.default_namespace();
        assert_eq!(class.metadata().namespace, None);
        assert_eq!(class.describe(), "IngressClass rauta");
    }
}
