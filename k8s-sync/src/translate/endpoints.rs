//! The endpoints behind a Service port, from its EndpointSlices, weighted
//! by `rauta.io/endpoint-weights`.

use super::annotations::weights_for;
use super::index::Index;
use super::ingress::{BackendRef, Parsed};
use crate::objects::describe;
use crate::problem::Problem;
use rauta_shared::config::{EndpointConfig, ServicePort};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

/// The endpoints of `backend` for `ing`, with their weights; those weighted
/// 0 are left out. Records in `used_weights` every weight entry that matched.
pub(super) fn weighted_endpoints(
    ing: &Parsed,
    index: &Index<'_>,
    backend: &BackendRef,
    used_weights: &mut BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> Vec<EndpointConfig> {
    let namespace = &ing.source.namespace;
    let mut endpoints =
        resolve_endpoints(&Asker::ingress(ing), index, namespace, backend, problems);
    endpoints.retain_mut(|ep| {
        let matching = weights_for(&ing.annotations.weights, ep);
        used_weights.extend(matching.iter().map(|w| w.raw.clone()));
        match matching.first() {
            Some(w) => {
                ep.weight = w.weight;
                w.weight > 0
            }
            None => true,
        }
    });
    endpoints
}

/// Who asks for a Service's endpoints: an Ingress, or an L4 services
/// ConfigMap entry. Their warnings name it.
pub(super) struct Asker<'a> {
    /// `Kind ns/name` for messages.
    pub(super) object: &'a str,
    /// The manifest file, when it came from one.
    pub(super) file: Option<&'a std::path::Path>,
    /// `service-upstream`: the Service's cluster IP instead of its endpoints.
    pub(super) service_upstream: bool,
}

impl<'a> Asker<'a> {
    /// An Ingress asks, with its annotations.
    pub(super) fn ingress(ing: &'a Parsed) -> Asker<'a> {
        Asker {
            object: &ing.object,
            file: ing.file.as_deref(),
            service_upstream: ing.annotations.service_upstream,
        }
    }

    fn warning(&self, message: String) -> Problem {
        Problem::warning(Some(self.object.to_string()), message)
            .in_file(self.file.map(std::path::Path::to_path_buf))
    }
}

/// The endpoints behind a Service port (in any namespace, unweighted: an
/// `auth-url` Service or an L4 service uses this directly): ready ones, or
/// serving+terminating ones when none is ready; sorted by address, without
/// duplicates.
pub(super) fn resolve_endpoints(
    ing: &Asker<'_>,
    index: &Index<'_>,
    namespace: &str,
    backend: &BackendRef,
    problems: &mut Vec<Problem>,
) -> Vec<EndpointConfig> {
    let service_name = describe("Service", Some(namespace), &backend.service);
    let Some(service) = index.services.get(&(namespace, backend.service.as_str())) else {
        problems.push(ing.warning(format!(
            "{service_name} not found; backend {}:{} has no endpoints",
            backend.service, backend.port
        )));
        return Vec::new();
    };
    let spec = service.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
        problems.push(ing.warning(format!(
            "{service_name} is of type ExternalName, which is not supported; backend has no endpoints"
        )));
        return Vec::new();
    }
    let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
    let found = ports.iter().find(|p| match &backend.port {
        ServicePort::Number(n) => p.port == i32::from(*n),
        ServicePort::Name(name) => p.name.as_deref() == Some(name.as_str()),
    });
    let Some(service_port) = found else {
        problems.push(ing.warning(format!(
            "{service_name} has no port {}; backend has no endpoints",
            backend.port
        )));
        return Vec::new();
    };
    if ing.service_upstream {
        let ip = spec
            .and_then(|s| s.cluster_ip.as_deref())
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        match (ip, u16::try_from(service_port.port)) {
            (Some(ip), Ok(port)) => {
                return vec![EndpointConfig {
                    addr: SocketAddr::new(ip, port),
                    weight: 1,
                    ready: true,
                    target: None,
                }]
            }
            _ => problems.push(ing.warning(format!(
                "annotation service-upstream: {service_name} has no cluster IP (headless?); its endpoints are used"
            ))),
        }
    }
    // Single-port Services may leave the port name out; absent and "" are the same.
    let port_name = service_port.name.as_deref().unwrap_or("");

    let mut ready = Vec::new();
    let mut fallback = Vec::new();
    let slices = index.slices.get(&(namespace, backend.service.as_str()));
    for (src, slice) in slices.into_iter().flatten() {
        let slice_problem = |message: String| {
            Problem::warning(Some(src.object.describe()), message).in_file(src.file.clone())
        };
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            problems.push(slice_problem(format!(
                "addressType {} is not supported (only IPv4 and IPv6); slice skipped",
                slice.address_type
            )));
            continue;
        }
        let port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0);
        let Some(port) = port else {
            continue;
        };
        for ep in &slice.endpoints {
            let conditions = ep.conditions.as_ref();
            // Per the API: unknown readiness means ready, unknown serving means
            // the same as ready, unknown terminating means not terminating.
            let is_ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(is_ready);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let target = ep.target_ref.as_ref().and_then(|r| r.name.clone());
            for address in &ep.addresses {
                let Ok(ip) = address.parse::<IpAddr>() else {
                    problems.push(slice_problem(format!(
                        "address {address:?} is not an IP address; skipped"
                    )));
                    continue;
                };
                let endpoint = EndpointConfig {
                    addr: SocketAddr::new(ip, port),
                    weight: 1,
                    ready: is_ready,
                    target: target.clone(),
                };
                if is_ready {
                    ready.push(endpoint);
                } else if serving && terminating {
                    fallback.push(endpoint);
                }
            }
        }
    }
    let mut endpoints = if ready.is_empty() { fallback } else { ready };
    endpoints.sort_by(|a, b| a.addr.cmp(&b.addr).then_with(|| a.target.cmp(&b.target)));
    endpoints.dedup_by(|a, b| a.addr == b.addr);
    endpoints
}
