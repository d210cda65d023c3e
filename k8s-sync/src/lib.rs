//! rauta-k8s-sync: turns Kubernetes objects into a [`RouteConfig`].
//!
//! Sources (a manifests directory, or the API server: [`api::ApiSource`]) produce
//! [`objects::SourcedObject`]s; [`translate::translate`] is a pure function
//! from those objects to a validated, conflict-free [`RouteConfig`] plus the
//! problems found; [`manifests::ManifestSource`] watches a directory and
//! publishes every usable configuration (invalid objects left out; a set
//! with a file that does not parse rejected whole); [`report`] is
//! `rauta check`'s migration report.

#![forbid(unsafe_code)]

pub mod api;
pub mod gateway_api;
pub mod manifests;
pub mod objects;
pub mod problem;
pub mod report;
pub mod stats;
pub mod tls;
pub mod translate;

pub use rauta_shared::config::RouteConfig;

/// What this controller serves: the Ingresses of one IngressClass, and
/// the L4 services of the ConfigMaps its flags name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSelector {
    /// Name of the IngressClass (default `rauta`).
    pub class_name: String,
    /// Its `spec.controller` (default `rauta.io/ingress-controller`).
    pub controller: String,
    /// The TCP services ConfigMap (`--tcp-services-configmap`).
    pub tcp_services: Option<ObjectName>,
    /// The UDP services ConfigMap (`--udp-services-configmap`).
    pub udp_services: Option<ObjectName>,
    /// TCP ports rauta itself listens on (HTTP, HTTPS, admin, metrics),
    /// with what each is: never a TCP service's.
    pub reserved_ports: Vec<(u16, String)>,
    /// The `controllerName` of the GatewayClasses served (default
    /// `rauta.io/gateway-controller`).
    pub gateway_controller: String,
    /// The port of `--listen`: Gateway HTTP listeners on port 80 or on
    /// this port are served there.
    pub http_port: Option<u16>,
    /// The ports of `--listen-tls`: Gateway HTTPS listeners on 443 are
    /// served on all of them, one on another port only on that port.
    pub tls_ports: Vec<u16>,
}

impl Default for ClassSelector {
    fn default() -> Self {
        ClassSelector {
            class_name: "rauta".to_string(),
            controller: "rauta.io/ingress-controller".to_string(),
            tcp_services: None,
            udp_services: None,
            reserved_ports: Vec::new(),
            gateway_controller: "rauta.io/gateway-controller".to_string(),
            http_port: None,
            tls_ports: Vec::new(),
        }
    }
}

/// Namespace and name of an object, as a flag gives it (`NAMESPACE/NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectName {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl std::str::FromStr for ObjectName {
    type Err = String;

    fn from_str(s: &str) -> Result<ObjectName, String> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(ObjectName {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(format!("{s:?} is not NAMESPACE/NAME")),
        }
    }
}

impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}
