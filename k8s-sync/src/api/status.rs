//! Ingress status: `status.loadBalancer.ingress` is our publish address on
//! every Ingress we serve, and is cleared again when an Ingress leaves our
//! class. Deciding is pure ([`plan`]); writing is a merge patch on the
//! `status` subresource.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};
use kube::api::{Patch, PatchParams};
use kube::Api;
use rauta_shared::config::IngressRef;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The address written into `status.loadBalancer.ingress`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PublishTarget {
    /// Write no status at all.
    #[default]
    None,
    /// These IPs or host names.
    Addresses(Vec<String>),
    /// The addresses of this Service: its load-balancer ingress, else its
    /// external IPs, else its cluster IP.
    Service {
        /// Namespace of the Service.
        namespace: String,
        /// Name of the Service.
        name: String,
    },
}

impl PublishTarget {
    /// Parses `NS/NAME` for [`PublishTarget::Service`].
    pub fn service(spec: &str) -> Result<PublishTarget, String> {
        match spec.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(PublishTarget::Service {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(format!(
                "publish service {spec:?} must be NAMESPACE/NAME, e.g. rauta-system/rauta"
            )),
        }
    }
}

/// One status address, compared by what it says (ports and ipMode ignored).
pub(crate) type Addr = (Option<String>, Option<String>);

/// `ip` for an IP address, else `hostname`.
fn status_entry(address: &str) -> IngressLoadBalancerIngress {
    let address = address.trim();
    if address.parse::<IpAddr>().is_ok() {
        IngressLoadBalancerIngress {
            ip: Some(address.to_string()),
            ..IngressLoadBalancerIngress::default()
        }
    } else {
        IngressLoadBalancerIngress {
            hostname: Some(address.to_string()),
            ..IngressLoadBalancerIngress::default()
        }
    }
}

/// The entries to publish for `target`; `None` when nothing should be
/// written (no target, or the Service is missing or has no address yet).
pub(crate) fn desired(
    target: &PublishTarget,
    service: Option<&Service>,
) -> Option<Vec<IngressLoadBalancerIngress>> {
    let entries: Vec<IngressLoadBalancerIngress> = match target {
        PublishTarget::None => return None,
        PublishTarget::Addresses(addresses) => addresses
            .iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| status_entry(a))
            .collect(),
        PublishTarget::Service { .. } => {
            let service = service?;
            let balancer: Vec<IngressLoadBalancerIngress> = service
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter(|i| i.ip.is_some() || i.hostname.is_some())
                .map(|i| IngressLoadBalancerIngress {
                    ip: i.ip.clone(),
                    hostname: i.hostname.clone(),
                    ..IngressLoadBalancerIngress::default()
                })
                .collect();
            if !balancer.is_empty() {
                balancer
            } else {
                let spec = service.spec.as_ref();
                let external = spec
                    .and_then(|s| s.external_ips.clone())
                    .unwrap_or_default();
                if !external.is_empty() {
                    external.iter().map(|a| status_entry(a)).collect()
                } else {
                    spec.and_then(|s| s.cluster_ip.as_deref())
                        .filter(|ip| !ip.is_empty() && *ip != "None")
                        .map(status_entry)
                        .into_iter()
                        .collect()
                }
            }
        }
    };
    (!entries.is_empty()).then_some(entries)
}

/// The addresses in a status, sorted.
pub(crate) fn addrs(entries: &[IngressLoadBalancerIngress]) -> Vec<Addr> {
    let mut out: Vec<Addr> = entries
        .iter()
        .map(|e| (e.ip.clone(), e.hostname.clone()))
        .collect();
    out.sort();
    out
}

/// The addresses an Ingress's status holds now, sorted.
pub(crate) fn current(ing: &Ingress) -> Vec<Addr> {
    let entries = ing
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or(&[]);
    addrs(entries)
}

/// `ns/name` of an Ingress.
pub(crate) fn ingress_ref(ing: &Ingress) -> IngressRef {
    IngressRef {
        namespace: ing.metadata.namespace.clone().unwrap_or_default(),
        name: ing.metadata.name.clone().unwrap_or_default(),
        kind: rauta_shared::config::RouteKind::Ingress,
    }
}

/// Remembers Ingresses that left our class while carrying a status, with
/// the status they had then: that status was ours and is to be cleared (as
/// long as nobody else has written another one meanwhile).
#[derive(Debug, Default)]
pub(crate) struct ClassTracker {
    served: Option<BTreeSet<IngressRef>>,
    left: BTreeMap<IngressRef, Vec<Addr>>,
}

impl ClassTracker {
    /// Updates the record with the Ingresses now in the store and those we serve.
    pub(crate) fn update(&mut self, ingresses: &[&Ingress], served: &BTreeSet<IngressRef>) {
        let now: BTreeMap<IngressRef, Vec<Addr>> = ingresses
            .iter()
            .map(|ing| (ingress_ref(ing), current(ing)))
            .collect();
        if let Some(before) = &self.served {
            for gone in before.difference(served) {
                if let Some(status) = now.get(gone).filter(|s| !s.is_empty()) {
                    self.left.insert(gone.clone(), status.clone());
                }
            }
        }
        // Forget what was deleted, is ours again, or no longer holds the
        // status it had when it left (cleared, or written by someone else).
        self.left.retain(|key, status| {
            !served.contains(key) && now.get(key).is_some_and(|s| s == status)
        });
        self.served = Some(served.clone());
    }

    /// The status an Ingress had when it left our class, if it still has it.
    pub(crate) fn left(&self) -> &BTreeMap<IngressRef, Vec<Addr>> {
        &self.left
    }
}

/// One status write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatusChange {
    /// The Ingress.
    pub(crate) ingress: IngressRef,
    /// Its resourceVersion when the change was planned.
    pub(crate) resource_version: Option<String>,
    /// The new entries; `None` clears `status.loadBalancer.ingress`.
    pub(crate) entries: Option<Vec<IngressLoadBalancerIngress>>,
}

/// The writes that bring every Ingress's status where it belongs: our
/// address on the served ones (when we have one), nothing on those that
/// are not served but still show our address, or the status they had when
/// they left our class.
pub(crate) fn plan(
    ingresses: &[&Ingress],
    served: &BTreeSet<IngressRef>,
    left: &BTreeMap<IngressRef, Vec<Addr>>,
    desired: Option<&[IngressLoadBalancerIngress]>,
) -> Vec<StatusChange> {
    let want = desired.map(addrs);
    let mut changes = Vec::new();
    for ing in ingresses {
        if ing.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let key = ingress_ref(ing);
        let now = current(ing);
        let entries = if served.contains(&key) {
            match (desired, &want) {
                (Some(entries), Some(want)) if *want != now => Some(entries.to_vec()),
                _ => continue,
            }
        } else {
            let ours_now = want.as_ref().is_some_and(|w| *w == now);
            let ours_then = left.get(&key).is_some_and(|s| *s == now);
            if now.is_empty() || !(ours_now || ours_then) {
                continue;
            }
            None
        };
        changes.push(StatusChange {
            ingress: key,
            resource_version: ing.metadata.resource_version.clone(),
            entries,
        });
    }
    changes
}

/// Writes one change with a merge patch on the `status` subresource.
pub(crate) async fn apply(client: &kube::Client, change: &StatusChange) -> Result<(), kube::Error> {
    let api: Api<Ingress> = Api::namespaced(client.clone(), &change.ingress.namespace);
    // In a JSON merge patch, null removes the field.
    let patch = serde_json::json!({
        "status": {"loadBalancer": {"ingress": change.entries}}
    });
    api.patch_status(
        &change.ingress.name,
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, ServiceSpec, ServiceStatus,
    };
    use k8s_openapi::api::networking::v1::{IngressLoadBalancerStatus, IngressStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ing(name: &str, status: &[&str]) -> Ingress {
        Ingress {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("demo".into()),
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            status: (!status.is_empty()).then(|| IngressStatus {
                load_balancer: Some(IngressLoadBalancerStatus {
                    ingress: Some(status.iter().map(|a| status_entry(a)).collect()),
                }),
            }),
            ..Ingress::default()
        }
    }

    fn key(name: &str) -> IngressRef {
        IngressRef {
            namespace: "demo".into(),
            name: name.into(),
            kind: rauta_shared::config::RouteKind::Ingress,
        }
    }

    #[test]
    fn addresses_become_ip_or_hostname() {
        let target = PublishTarget::Addresses(vec!["10.1.2.3".into(), "lb.example.com".into()]);
        let entries = desired(&target, None).expect("addresses");
        assert_eq!(entries[0].ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(entries[1].hostname.as_deref(), Some("lb.example.com"));
        assert_eq!(desired(&PublishTarget::None, None), None);
    }

    #[test]
    fn service_addresses_prefer_the_load_balancer() {
        let target = PublishTarget::service("sys/rauta").expect("valid");
        assert!(PublishTarget::service("rauta").is_err());
        assert!(PublishTarget::service("a/b/c").is_err());
        assert_eq!(desired(&target, None), None, "missing Service: no status");
        let mut svc = Service {
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.96.0.5".into()),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        };
        let entries = desired(&target, Some(&svc)).expect("cluster IP");
        assert_eq!(entries[0].ip.as_deref(), Some("10.96.0.5"));
        svc.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![LoadBalancerIngress {
                    hostname: Some("lb.example.com".into()),
                    ..LoadBalancerIngress::default()
                }]),
            }),
            ..ServiceStatus::default()
        });
        let entries = desired(&target, Some(&svc)).expect("balancer");
        assert_eq!(entries[0].hostname.as_deref(), Some("lb.example.com"));
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn plan_sets_ours_and_clears_what_left() {
        let want = [status_entry("10.0.0.9")];
        let (a, b, c, d) = (
            ing("a", &[]),
            ing("b", &["10.0.0.9"]),
            ing("c", &["10.0.0.9"]),
            ing("d", &["192.0.2.1"]),
        );
        let all = [&a, &b, &c, &d];
        let served: BTreeSet<_> = [key("a"), key("b")].into();
        let changes = plan(&all, &served, &BTreeMap::new(), Some(&want));
        // a gets the address, b already has it, c (not ours) shows our
        // address and is cleared, d belongs to someone else.
        let touched: Vec<_> = changes.iter().map(|c| c.ingress.name.as_str()).collect();
        assert_eq!(touched, ["a", "c"]);
        assert_eq!(changes[0].entries.as_deref(), Some(&want[..]));
        assert_eq!(changes[1].entries, None);

        // Without an address to publish, nothing is set.
        assert!(plan(&all[..1], &served, &BTreeMap::new(), None).is_empty());
    }

    #[test]
    fn tracker_remembers_the_status_an_ingress_left_with() {
        let mut tracker = ClassTracker::default();
        let old = ing("old", &["192.0.2.1"]);
        tracker.update(&[&old], &[key("old")].into());
        assert!(tracker.left().is_empty());
        tracker.update(&[&old], &BTreeSet::new());
        assert_eq!(tracker.left().get(&key("old")), Some(&current(&old)));
        // A different publish address (another leader's) is still cleared.
        let changes = plan(
            &[&old],
            &BTreeSet::new(),
            tracker.left(),
            Some(&[status_entry("10.0.0.9")]),
        );
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].entries, None);
        // Once someone else writes another status, it is left alone.
        let taken = ing("old", &["203.0.113.7"]);
        tracker.update(&[&taken], &BTreeSet::new());
        assert!(tracker.left().is_empty());
    }
}
