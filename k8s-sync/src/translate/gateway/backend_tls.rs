//! BackendTLSPolicy -> the TLS settings of the backends whose Service (and
//! port, by `sectionName`) a policy targets: TLS to the endpoints,
//! verified against the policy's CA bundle, with its `hostname` as SNI and
//! as the name verified. A policy that cannot be honoured still turns TLS
//! on with verification and no CA, so its connects fail (502): traffic is
//! never sent unverified or in clear text because a policy is broken.

use super::super::index::Index;
use super::status::Condition;
use crate::gateway_api::BackendTlsPolicy;
use crate::problem::Problem;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rauta_shared::config::{HostMatch, UpstreamProtocol, UpstreamTls};
use std::collections::BTreeMap;

/// Where `wellKnownCACertificates: System` is read from (Debian's bundle;
/// `SSL_CERT_FILE` overrides it, as for OpenSSL).
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A policy by (namespace, name).
pub(super) type PolicyKey = (String, String);

/// What a policy targets: namespace, Service, port name (none: every port).
type Target = (String, String, Option<String>);

/// What one policy gives, and its own conditions.
struct Policy {
    key: PolicyKey,
    /// Route age order: the oldest wins a contested target.
    age: (bool, Option<Time>),
    tls: UpstreamTls,
    generation: Option<i64>,
    /// Accepted, ResolvedRefs.
    conditions: Vec<Condition>,
}

/// Every BackendTLSPolicy, indexed by what it targets.
pub(super) struct Policies {
    policies: Vec<Policy>,
    /// What each policy targets -> index into `policies`.
    targets: BTreeMap<Target, usize>,
}

impl Policies {
    /// Reads, validates and indexes every policy; conflicts (two policies
    /// for one target) are decided by age, then namespace/name.
    pub(super) fn new(index: &Index<'_>, problems: &mut Vec<Problem>) -> Policies {
        let mut policies = Vec::new();
        let mut wanted: Vec<(Target, usize)> = Vec::new();
        for (&(ns, name), &(src, policy)) in &index.backend_tls {
            let object = format!("BackendTLSPolicy {ns}/{name}");
            let warn = |message: String| {
                Problem::warning(Some(object.clone()), message).in_file(src.file.clone())
            };
            let (tls, conditions) = validate(ns, policy, index, &warn, problems);
            let i = policies.len();
            for (k, t) in policy.spec.target_refs.iter().enumerate() {
                let group = t.group.as_deref().unwrap_or("");
                let kind = t.kind.as_deref().unwrap_or("");
                if !group.is_empty() || kind != "Service" {
                    problems.push(warn(format!(
                        "targetRefs[{k}]: kind {kind} of group {group:?} is not supported (Service is); ignored"
                    )));
                    continue;
                }
                let target = (ns.to_string(), t.name.clone(), t.section_name.clone());
                wanted.push((target, i));
            }
            let created = policy.metadata.creation_timestamp.clone();
            policies.push(Policy {
                key: (ns.to_string(), name.to_string()),
                age: (created.is_none(), created),
                tls,
                generation: policy.metadata.generation,
                conditions,
            });
        }
        let mut targets: BTreeMap<Target, usize> = BTreeMap::new();
        for (target, i) in wanted {
            let Some(&held) = targets.get(&target) else {
                targets.insert(target, i);
                continue;
            };
            let older = |a: &Policy, b: &Policy| (&a.age, &a.key) < (&b.age, &b.key);
            let (winner, loser) = match older(&policies[i], &policies[held]) {
                true => (i, held),
                false => (held, i),
            };
            targets.insert(target.clone(), winner);
            let (w, l) = (&policies[winner].key, &policies[loser].key);
            let message = format!(
                "targets Service {}/{}{} like BackendTLSPolicy {}/{}, which is older and wins",
                target.0,
                target.1,
                target
                    .2
                    .as_ref()
                    .map_or(String::new(), |s| format!(" port {s}")),
                w.0,
                w.1
            );
            problems.push(Problem::warning(
                Some(format!("BackendTLSPolicy {}/{}", l.0, l.1)),
                message.clone(),
            ));
            policies[loser].conditions[0] = Condition::failed("Accepted", "Conflicted", message);
        }
        Policies { policies, targets }
    }

    /// The protocol and TLS of a backend on Service `ns/service` port
    /// `port` (its number; its name looked up in the Service) spoken to
    /// with `protocol`, and the policy that decided it; no policy: as given.
    pub(super) fn apply(
        &self,
        index: &Index<'_>,
        ns: &str,
        service: &str,
        port: u16,
        protocol: UpstreamProtocol,
    ) -> (UpstreamProtocol, Option<UpstreamTls>, Option<PolicyKey>) {
        if self.targets.is_empty() {
            return (protocol, None, None);
        }
        let port_name = index
            .services
            .get(&(ns, service))
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.ports.as_ref())
            .and_then(|ports| ports.iter().find(|p| p.port == i32::from(port)))
            .and_then(|p| p.name.clone());
        let key = |section: Option<String>| (ns.to_string(), service.to_string(), section);
        // A policy for the port wins over one for the whole Service.
        let found = port_name
            .and_then(|name| self.targets.get(&key(Some(name))))
            .or_else(|| self.targets.get(&key(None)));
        let Some(&i) = found else {
            return (protocol, None, None);
        };
        let p = &self.policies[i];
        let tls_protocol = match protocol {
            UpstreamProtocol::Grpc | UpstreamProtocol::Grpcs => UpstreamProtocol::Grpcs,
            _ => UpstreamProtocol::Https,
        };
        (tls_protocol, Some(p.tls.clone()), Some(p.key.clone()))
    }

    /// The policies' own conditions and generation, by key.
    pub(super) fn conditions(
        &self,
    ) -> impl Iterator<Item = (&PolicyKey, Option<i64>, &[Condition])> {
        (self.policies.iter()).map(|p| (&p.key, p.generation, p.conditions.as_slice()))
    }
}

/// The TLS a policy asks for and its Accepted and ResolvedRefs
/// conditions; problems reported.
fn validate(
    ns: &str,
    policy: &BackendTlsPolicy,
    index: &Index<'_>,
    warn: &dyn Fn(String) -> Problem,
    problems: &mut Vec<Problem>,
) -> (UpstreamTls, Vec<Condition>) {
    let v = &policy.spec.validation;
    // Verification on from the start: whatever goes wrong below leaves
    // no CA, and the connects fail.
    let mut tls = UpstreamTls {
        verify: true,
        verify_depth: 100,
        sni: true,
        ..UpstreamTls::default()
    };
    let mut accepted = Condition::ok("Accepted", "Accepted");
    let mut resolved = Condition::ok("ResolvedRefs", "ResolvedRefs");
    let mut refuse =
        |accepted_reason: &'static str, message: String, problems: &mut Vec<Problem>| {
            problems.push(warn(format!(
                "{message}; connections to its Services fail (502)"
            )));
            accepted = Condition::failed("Accepted", accepted_reason, message);
        };
    match super::listeners::parse_hostname(&v.hostname) {
        Ok(HostMatch::Exact(h)) => tls.server_name = Some(h),
        _ => refuse(
            "Invalid",
            format!(
                "validation.hostname {:?} is not a precise host name",
                v.hostname
            ),
            problems,
        ),
    }
    if !v.subject_alt_names.is_empty() {
        refuse(
            "Invalid",
            "validation.subjectAltNames is not supported yet (the hostname is verified)".into(),
            problems,
        );
    }
    for key in policy.spec.options.keys() {
        problems.push(warn(format!(
            "options[{key:?}] is not a known option; ignored"
        )));
    }
    let mut bundle = String::new();
    let mut bad_refs = Vec::new();
    for (k, r) in v.ca_certificate_refs.iter().enumerate() {
        let group = r.group.as_deref().unwrap_or("");
        let kind = r.kind.as_deref().unwrap_or("");
        if !group.is_empty() || kind != "ConfigMap" {
            let message = format!(
                "validation.caCertificateRefs[{k}]: kind {kind} of group {group:?} is not supported (ConfigMap is)"
            );
            bad_refs.push(("InvalidKind", message));
            continue;
        }
        let map = index.config_maps.get(&(ns, r.name.as_str()));
        let ca = map.and_then(|(_, m)| m.data.as_ref()?.get("ca.crt").cloned());
        let problem = match (map, &ca) {
            (None, _) => Some(format!("ConfigMap {ns}/{} not found", r.name)),
            (Some(_), None) => Some(format!("ConfigMap {ns}/{} has no ca.crt", r.name)),
            (Some(_), Some(pem)) => crate::tls::parse_chain(pem.as_bytes()).err().map(|e| {
                format!(
                    "ConfigMap {ns}/{}: {}",
                    r.name,
                    e.replacen("tls.crt", "ca.crt", 1)
                )
            }),
        };
        match (problem, ca) {
            (Some(p), _) => bad_refs.push((
                "InvalidCACertificateRef",
                format!("validation.caCertificateRefs[{k}]: {p}"),
            )),
            (None, Some(pem)) => bundle.push_str(&pem),
            (None, None) => {}
        }
    }
    for (reason, message) in &bad_refs {
        problems.push(warn(message.clone()));
        if resolved.status {
            resolved = Condition::failed("ResolvedRefs", reason, message.clone());
        }
    }
    match (
        v.ca_certificate_refs.is_empty(),
        v.well_known_ca_certificates.as_deref(),
    ) {
        (false, Some(_)) => refuse(
            "Invalid",
            "validation sets both caCertificateRefs and wellKnownCACertificates".into(),
            problems,
        ),
        (true, Some("System")) => match system_bundle() {
            Ok(pem) => tls.ca_pem = Some(pem),
            Err(e) => refuse("Invalid", e, problems),
        },
        (true, Some(other)) => refuse(
            "Invalid",
            format!("wellKnownCACertificates {other:?} is not supported (System is)"),
            problems,
        ),
        (true, None) => refuse(
            "Invalid",
            "validation has neither caCertificateRefs nor wellKnownCACertificates".into(),
            problems,
        ),
        (false, None) if bundle.is_empty() => refuse(
            "NoValidCACertificate",
            "no caCertificateRef is usable".into(),
            problems,
        ),
        (false, None) => tls.ca_pem = Some(bundle),
    }
    if !accepted.status {
        tls.ca_pem = None;
    }
    (tls, vec![accepted, resolved])
}

/// The system's CA bundle, read once.
fn system_bundle() -> Result<String, String> {
    static BUNDLE: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let path = std::env::var("SSL_CERT_FILE").unwrap_or_else(|_| SYSTEM_BUNDLE.into());
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| format!("wellKnownCACertificates System: {path}: {e}"))?;
            crate::tls::parse_chain(pem.as_bytes())
                .map_err(|e| format!("wellKnownCACertificates System: {path}: {e}"))?;
            Ok(pem)
        })
        .clone()
}
