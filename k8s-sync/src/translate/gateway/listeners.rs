//! The Gateways of our GatewayClasses and what each listener serves: the
//! rauta listener its port maps to, its hostname, its certificate, and
//! which routes may attach.

use super::super::index::Index;
use super::super::merge::Builder;
use super::grants;
use super::status::{Condition, GatewayStatus, ListenerStatus, ObjectStatus};
use crate::gateway_api::{AllowedRoutes, Gateway, Listener, GROUP};
use crate::problem::Problem;
use crate::ClassSelector;
use rauta_shared::config::{HostMatch, IngressRef, RouteKind, SecretRef};
use std::collections::BTreeMap;

/// A served Gateway, by (namespace, name).
pub(super) type Gateways<'a> = BTreeMap<(&'a str, &'a str), Served<'a>>;

/// A Gateway of one of our GatewayClasses.
pub(super) struct Served<'a> {
    /// Its listeners, served or not, in spec order.
    pub(super) listeners: Vec<ServedListener<'a>>,
}

/// One listener and where rauta serves it.
pub(super) struct ServedListener<'a> {
    pub(super) spec: &'a Listener,
    /// `None` when rauta cannot serve it (reported once, on the Gateway).
    pub(super) scope: Option<Scope>,
    /// The listener's hostname; `None`: every host.
    pub(super) hostname: Option<HostMatch>,
    /// Why it is not accepted (reason, message), for its status.
    pub(super) refused: Option<(&'static str, String)>,
    /// Why its certificate is not used (reason, message).
    pub(super) bad_ref: Option<(&'static str, String)>,
    /// Routes attached to it, counted by `attach`.
    pub(super) attached: std::cell::Cell<i32>,
    /// The route kinds it takes: its protocol's, narrowed by
    /// `allowedRoutes.kinds`; empty when it is not served.
    pub(super) kinds: Vec<RouteKind>,
    /// `HostnameConflict` or `ProtocolConflict`: not served.
    pub(super) conflicted: Option<&'static str>,
}

/// Which of rauta's listeners a Gateway listener is served on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Scope {
    /// TLS listeners (`--listen-tls`) or the plain one (`--listen`).
    pub(super) tls: bool,
    /// Only the TLS listener on this port; `None`: all of them.
    pub(super) port: Option<u16>,
}

impl ServedListener<'_> {
    /// The listener's `allowedRoutes`.
    pub(super) fn allowed(&self) -> Option<&AllowedRoutes> {
        self.spec.allowed_routes.as_ref()
    }
}

/// The Gateways whose class has our `controllerName`; listener problems
/// are reported and their certificates claimed in `builder`.
pub(super) fn served<'a>(
    index: &Index<'a>,
    sel: &ClassSelector,
    builder: &mut Builder,
    problems: &mut Vec<Problem>,
) -> Gateways<'a> {
    let mut out = Gateways::new();
    for (&(ns, name), &(src, gateway)) in &index.gateways {
        if !is_ours(index, sel, gateway) {
            continue;
        }
        let warn = |message: String| {
            Problem::warning(Some(format!("Gateway {ns}/{name}")), message)
                .in_file(src.file.clone())
        };
        let conflicts = conflicts(&gateway.spec.listeners);
        let listeners = (gateway.spec.listeners.iter().zip(conflicts))
            .map(|(l, conflict)| match conflict {
                Some((reason, message)) => {
                    let place = format!("listener {:?}", l.name);
                    problems.push(warn(format!("{place}: {message}; listener not served")));
                    ServedListener {
                        spec: l,
                        scope: None,
                        hostname: None,
                        refused: Some((reason, message)),
                        bad_ref: None,
                        attached: Default::default(),
                        kinds: Vec::new(),
                        conflicted: Some(reason),
                    }
                }
                None => listener(ns, name, l, index, sel, builder, &warn, problems),
            })
            .collect();
        out.insert((ns, name), Served { listeners });
    }
    out
}

/// True when the Gateway's class names our controller.
pub(super) fn is_ours(index: &Index<'_>, sel: &ClassSelector, gateway: &Gateway) -> bool {
    let class = index
        .gateway_classes
        .get(gateway.spec.gateway_class_name.as_str());
    class.is_some_and(|(_, c)| c.spec.controller_name == sel.gateway_controller)
}

/// One listener: where it is served, its hostname and its certificate.
#[allow(clippy::too_many_arguments)]
fn listener<'a>(
    ns: &str,
    name: &str,
    l: &'a Listener,
    index: &Index<'_>,
    sel: &ClassSelector,
    builder: &mut Builder,
    warn: &dyn Fn(String) -> Problem,
    problems: &mut Vec<Problem>,
) -> ServedListener<'a> {
    let place = format!("listener {:?}", l.name);
    let hostname = match l.hostname.as_deref().map(parse_hostname) {
        None => None,
        Some(Ok(h)) => Some(h),
        Some(Err(e)) => {
            problems.push(warn(format!("{place}: {e}; listener not served")));
            return ServedListener {
                spec: l,
                scope: None,
                hostname: None,
                refused: Some(("UnsupportedValue", e)),
                bad_ref: None,
                attached: Default::default(),
                kinds: Vec::new(),
                conflicted: None,
            };
        }
    };
    let port = u16::try_from(l.port).ok().filter(|p| *p > 0);
    let mode = l
        .tls
        .as_ref()
        .and_then(|t| t.mode.as_deref())
        .unwrap_or("Terminate");
    let mut refused = None;
    let mut refuse = |reason: &'static str, message: String| {
        problems.push(warn(format!("{place}: {message}; listener not served")));
        refused = Some((reason, message));
        None
    };
    let tls_ports = || {
        let ports: Vec<String> = sel.tls_ports.iter().map(u16::to_string).collect();
        ports.join(", ")
    };
    let scope = match (l.protocol.as_str(), mode, port) {
        ("HTTP", _, Some(p)) if p == 80 || Some(p) == sel.http_port => Some(Scope {
            tls: false,
            port: None,
        }),
        ("HTTPS", "Terminate", Some(443)) | ("TLS", "Passthrough", Some(443)) => Some(Scope {
            tls: true,
            port: None,
        }),
        ("HTTPS", "Terminate", Some(p)) | ("TLS", "Passthrough", Some(p))
            if sel.tls_ports.contains(&p) =>
        {
            Some(Scope {
                tls: true,
                port: Some(p),
            })
        }
        ("HTTP", _, _) => {
            let listen = sel.http_port.map_or("none".to_string(), |p| p.to_string());
            refuse("PortUnavailable", format!(
                "port {} has no rauta listener (HTTP is served on port 80 and on --listen's port, {listen})",
                l.port
            ))
        }
        ("HTTPS", "Terminate", _) | ("TLS", "Passthrough", _) => refuse(
            "PortUnavailable",
            format!(
                "port {} has no rauta listener ({} is served on port 443 and on --listen-tls's ports, {})",
                l.port,
                l.protocol,
                tls_ports()
            ),
        ),
        ("HTTPS", other, _) => refuse(
            "UnsupportedValue",
            format!("tls.mode {other:?} is not valid for HTTPS (Terminate is)"),
        ),
        ("TLS", other, _) => refuse(
            "UnsupportedValue",
            format!("tls.mode {other:?} is not supported for TLS listeners yet (Passthrough is; terminate TLS with an HTTPS listener)"),
        ),
        (other, _, _) => refuse(
            "UnsupportedProtocol",
            format!("protocol {other:?} is not supported yet (HTTP, HTTPS and TLS passthrough are)"),
        ),
    };
    let passthrough = l.protocol == "TLS";
    let mut bad_ref = None;
    if let (Some(scope), Some(tls)) = (scope, &l.tls) {
        if scope.tls && !passthrough {
            let host = hostname.as_ref();
            bad_ref = certificate(ns, name, l, tls, host, index, builder, warn, problems).err();
        }
    } else if scope.is_some_and(|s| s.tls) && !passthrough {
        problems.push(warn(format!(
            "{place}: HTTPS without tls.certificateRefs; it gets the default certificate"
        )));
        bad_ref = Some((
            "InvalidCertificateRef",
            "no tls.certificateRefs".to_string(),
        ));
    }
    let offered: &[RouteKind] = match (scope, passthrough) {
        (None, _) => &[],
        (Some(_), true) => &[RouteKind::TlsRoute],
        (Some(_), false) => &[RouteKind::HttpRoute, RouteKind::GrpcRoute],
    };
    let mut kinds = offered.to_vec();
    if let Some(allowed) = l.allowed_routes.as_ref().filter(|a| !a.kinds.is_empty()) {
        let named = |k: &crate::gateway_api::GroupKind| {
            offered
                .iter()
                .copied()
                .find(|o| o.as_str() == k.kind && k.group.as_deref().unwrap_or(GROUP) == GROUP)
        };
        kinds.retain(|o| allowed.kinds.iter().any(|k| named(k) == Some(*o)));
        let invalid: Vec<&str> = allowed
            .kinds
            .iter()
            .filter(|k| named(k).is_none())
            .map(|k| k.kind.as_str())
            .collect();
        if !invalid.is_empty() && scope.is_some() {
            let message = format!(
                "allowedRoutes.kinds {} cannot attach to a {} listener",
                invalid.join(", "),
                l.protocol
            );
            problems.push(warn(format!("{place}: {message} (InvalidRouteKinds)")));
            bad_ref.get_or_insert(("InvalidRouteKinds", message));
        }
    }
    ServedListener {
        spec: l,
        scope,
        hostname,
        refused,
        bad_ref,
        attached: Default::default(),
        kinds,
        conflicted: None,
    }
}

/// Listeners that rauta could not tell apart, each with its reason and a
/// message: on one port, plain HTTP beside HTTPS or TLS
/// (`ProtocolConflict`: one socket speaks one of them), or two HTTPS/TLS
/// or two HTTP listeners with the same hostname (`HostnameConflict`: no
/// SNI or Host could pick one). None of them is served, as the spec says.
fn conflicts(listeners: &[Listener]) -> Vec<Option<(&'static str, String)>> {
    let web = |l: &Listener| matches!(l.protocol.as_str(), "HTTP" | "HTTPS" | "TLS");
    let host = |l: &Listener| l.hostname.as_deref().map(str::to_ascii_lowercase);
    listeners
        .iter()
        .map(|l| {
            if !web(l) {
                return None;
            }
            let others = listeners
                .iter()
                .filter(|o| !std::ptr::eq(*o, l) && web(o) && o.port == l.port);
            let mut names = Vec::new();
            let mut reason = None;
            for o in others {
                let plain = |x: &Listener| x.protocol == "HTTP";
                if plain(o) != plain(l) {
                    reason = Some("ProtocolConflict");
                    names.push(o.name.as_str());
                } else if host(o) == host(l) {
                    reason = reason.or(Some("HostnameConflict"));
                    names.push(o.name.as_str());
                }
            }
            let reason = reason?;
            let message = match reason {
                "ProtocolConflict" => format!(
                    "port {} also has {} of another protocol (HTTP and HTTPS/TLS cannot share a port)",
                    l.port,
                    quoted(&names)
                ),
                _ => format!(
                    "port {} also has {} with the same hostname",
                    l.port,
                    quoted(&names)
                ),
            };
            Some((reason, message))
        })
        .collect()
}

fn quoted(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match names.len() {
        1 => format!("listener {}", names[0]),
        _ => format!("listeners {}", names.join(", ")),
    }
}

/// Claims the listener's first certificate for its hostname (or as the
/// fallback certificate when it has none).
#[allow(clippy::too_many_arguments)]
fn certificate(
    ns: &str,
    name: &str,
    l: &Listener,
    tls: &crate::gateway_api::ListenerTls,
    hostname: Option<&HostMatch>,
    index: &Index<'_>,
    builder: &mut Builder,
    warn: &dyn Fn(String) -> Problem,
    problems: &mut Vec<Problem>,
) -> Result<(), (&'static str, String)> {
    let place = format!("listener {:?}", l.name);
    let Some(cert) = tls.certificate_refs.first() else {
        problems.push(warn(format!(
            "{place}: no tls.certificateRefs; it gets the default certificate"
        )));
        return Err(("InvalidCertificateRef", "no tls.certificateRefs".into()));
    };
    if tls.certificate_refs.len() > 1 {
        problems.push(warn(format!(
            "{place}: only the first of {} certificateRefs is served",
            tls.certificate_refs.len()
        )));
    }
    let group = cert.group.as_deref().unwrap_or("");
    let kind = cert.kind.as_deref().unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        let message = format!(
            "certificateRefs[0] is a {kind} of group {group:?}; only core Secrets are supported"
        );
        problems.push(warn(format!(
            "{place}: {message} (InvalidCertificateRef); it gets the default certificate"
        )));
        return Err(("InvalidCertificateRef", message));
    }
    let secret_ns = cert.namespace.as_deref().unwrap_or(ns);
    let from = grants::From {
        group: GROUP,
        kind: "Gateway",
        namespace: ns,
    };
    if !grants::allowed(index, &from, "", "Secret", secret_ns, &cert.name) {
        let message = format!(
            "Secret {secret_ns}/{} is in another namespace and no ReferenceGrant there allows it",
            cert.name
        );
        problems.push(warn(format!(
            "{place}: {message} (RefNotPermitted); it gets the default certificate"
        )));
        return Err(("RefNotPermitted", message));
    }
    let secret = SecretRef {
        namespace: secret_ns.to_string(),
        name: cert.name.clone(),
    };
    let gateway = IngressRef {
        namespace: ns.to_string(),
        name: name.to_string(),
        kind: RouteKind::Gateway,
    };
    let host = hostname.cloned().unwrap_or(HostMatch::Any);
    builder
        .claim_listener_cert(&gateway, warn, &place, &secret, &host, index, problems)
        .map_err(|message| ("InvalidCertificateRef", message))
}

/// A Gateway API hostname: `host` or `*.suffix`, lower-cased; no IPs.
pub(super) fn parse_hostname(raw: &str) -> Result<HostMatch, String> {
    let h = raw.to_ascii_lowercase();
    let (wild, rest) = match h.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, h.as_str()),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if rest.is_empty() || rest.len() > 253 || !rest.split('.').all(label_ok) {
        return Err(format!(
            "hostname {raw:?} is not a valid DNS name or *.suffix"
        ));
    }
    if rest.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "hostname {raw:?} is an IP address, which the Gateway API does not allow"
        ));
    }
    Ok(if wild {
        HostMatch::Wildcard(rest.to_string())
    } else {
        HostMatch::Exact(rest.to_string())
    })
}

/// What a served Gateway's status says: Accepted and Programmed when a
/// listener is served, and per listener its conditions and routes.
pub(super) fn status(gateway: &Served<'_>, generation: Option<i64>) -> GatewayStatus {
    let listeners: Vec<ListenerStatus> = gateway
        .listeners
        .iter()
        .map(|l| {
            let mut conditions = Vec::new();
            match &l.refused {
                None => conditions.push(Condition::ok("Accepted", "Accepted")),
                Some((reason, message)) => {
                    conditions.push(Condition::failed("Accepted", reason, message.clone()))
                }
            }
            match &l.bad_ref {
                None => conditions.push(Condition::ok("ResolvedRefs", "ResolvedRefs")),
                Some((reason, message)) => {
                    conditions.push(Condition::failed("ResolvedRefs", reason, message.clone()))
                }
            }
            conditions.push(match l.conflicted {
                Some(reason) => Condition {
                    kind: "Conflicted",
                    status: true,
                    reason: reason.into(),
                    message: l.refused.as_ref().map_or(String::new(), |r| r.1.clone()),
                },
                None => Condition::failed("Conflicted", "NoConflicts", ""),
            });
            conditions.push(match (l.scope, l.conflicted) {
                (Some(_), _) => Condition::ok("Programmed", "Programmed"),
                (None, Some(reason)) => {
                    Condition::failed("Programmed", reason, "the listener conflicts with another")
                }
                (None, None) => {
                    Condition::failed("Programmed", "Invalid", "the listener is not served")
                }
            });
            ListenerStatus {
                name: l.spec.name.clone(),
                attached_routes: l.attached.get(),
                supported_kinds: l.kinds.clone(),
                conditions,
            }
        })
        .collect();
    let served = gateway.listeners.iter().any(|l| l.scope.is_some());
    let conflicted: Vec<&str> = (gateway.listeners.iter())
        .filter(|l| l.conflicted.is_some())
        .map(|l| l.spec.name.as_str())
        .collect();
    let conditions = if served && !conflicted.is_empty() {
        vec![
            Condition {
                kind: "Accepted",
                status: true,
                reason: "ListenersNotValid".into(),
                message: format!(
                    "conflicted listeners are not served: {}",
                    conflicted.join(", ")
                ),
            },
            Condition::ok("Programmed", "Programmed"),
        ]
    } else if served {
        vec![
            Condition::ok("Accepted", "Accepted"),
            Condition::ok("Programmed", "Programmed"),
        ]
    } else {
        vec![
            Condition::failed("Accepted", "ListenersNotValid", "no listener can be served"),
            Condition::failed("Programmed", "Invalid", "no listener can be served"),
        ]
    };
    GatewayStatus {
        object: ObjectStatus {
            generation,
            conditions,
        },
        listeners,
    }
}
