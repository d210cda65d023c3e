//! TCP and UDP services from ingress-nginx's ConfigMaps
//! (`--tcp-services-configmap`, `--udp-services-configmap`): each data key
//! is a listen port, each value `namespace/service:port[:PROXY[:PROXY]]`.
//! As in ingress-nginx, the first `PROXY` means the clients' connections
//! start with a PROXY protocol header (a load balancer in front), the second
//! that rauta sends one to the backend; both are TCP-only.
//!
//! A bad entry is an error on the ConfigMap that leaves out that entry
//! alone; HTTP routing never depends on it.

use super::endpoints::{resolve_endpoints, Asker};
use super::index::Index;
use super::ingress::{BackendRef, Parsed};
use crate::objects::describe;
use crate::problem::Problem;
use crate::{ClassSelector, ObjectName};
use rauta_shared::config::{
    BackendConfig, ConfigMapEntry, HostMatch, L4Protocol, L4ServiceConfig, LbPolicy,
    PassthroughConfig, RouteConfig, RouteKind, ServicePort, UpstreamProtocol,
};

/// ConfigMap annotation choosing the balancer of every entry: `round_robin`
/// (the default), `least_connections`, or `client_ip` (Maglev on the
/// client address, so a client keeps its endpoint while the set is stable).
pub const LOAD_BALANCE_ANNOTATION: &str = "rauta.io/load-balance";

/// ConfigMap annotation putting TCP entries on the XDP fast path: a
/// comma-separated list of their ports, or `*` for every entry. Entries
/// with a PROXY protocol field stay in user space (XDP cannot add or strip
/// the header).
pub const XDP_FAST_PATH_ANNOTATION: &str = "rauta.io/xdp-fast-path";

/// Which ports [`XDP_FAST_PATH_ANNOTATION`] names.
enum FastPorts {
    All,
    Listed(Vec<u16>),
}

impl FastPorts {
    fn parse(value: &str) -> Result<FastPorts, String> {
        if value.trim() == "*" {
            return Ok(FastPorts::All);
        }
        value
            .split(',')
            .map(|p| {
                p.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("{:?} is not a port", p.trim()))
            })
            .collect::<Result<Vec<u16>, String>>()
            .map(FastPorts::Listed)
    }

    fn contains(&self, port: u16) -> bool {
        match self {
            FastPorts::All => true,
            FastPorts::Listed(ports) => ports.contains(&port),
        }
    }
}

/// Adds the L4 services of the ConfigMaps `sel` names to `config`, with a
/// backend each.
pub(super) fn add_services(
    index: &Index<'_>,
    sel: &ClassSelector,
    config: &mut RouteConfig,
    problems: &mut Vec<Problem>,
) {
    let maps = [
        (
            L4Protocol::Tcp,
            &sel.tcp_services,
            "--tcp-services-configmap",
        ),
        (
            L4Protocol::Udp,
            &sel.udp_services,
            "--udp-services-configmap",
        ),
    ];
    for (protocol, name, flag) in maps {
        if let Some(name) = name {
            add_map(index, sel, protocol, name, flag, config, problems);
        }
    }
    config.l4.sort_by_key(|s| (s.protocol, s.port));
}

/// Adds the hosts of `ssl-passthrough` Ingresses (oldest first: the
/// first Ingress to claim a host keeps it), each relayed to the backend of
/// its first path. An Ingress takes a host from a TLSRoute, reported.
pub(super) fn add_passthrough(
    ingresses: &[Parsed],
    index: &Index<'_>,
    config: &mut RouteConfig,
    problems: &mut Vec<Problem>,
) {
    for ing in ingresses.iter().filter(|i| i.annotations.ssl_passthrough) {
        let asker = Asker::ingress(ing);
        for ((host, _, _), backend) in &ing.paths {
            if let Some(i) = config.passthrough.iter().position(|p| &p.host == host) {
                let taken = &config.passthrough[i];
                if taken.source.kind != RouteKind::TlsRoute {
                    continue;
                }
                problems.push(Problem::warning(
                    Some(taken.source.to_string()),
                    format!("TLS passthrough for {host:?} is served by {} (ssl-passthrough), which wins over the TLSRoute", ing.object),
                ));
                config.passthrough.remove(i);
            }
            if *host == HostMatch::Any {
                problems.push(
                    Problem::warning(
                        Some(ing.object.clone()),
                        "ssl-passthrough needs a host (the TLS server name picks the backend); the rule without host is served as HTTP only",
                    )
                    .in_file(ing.file.clone()),
                );
                continue;
            }
            let namespace = &ing.source.namespace;
            let policy = LbPolicy::RoundRobin;
            let backend = add_backend(&asker, index, namespace, backend, policy, config, problems);
            config.passthrough.push(PassthroughConfig {
                host: host.clone(),
                backend,
                source: ing.source.clone(),
            });
        }
    }
}

fn add_map(
    index: &Index<'_>,
    sel: &ClassSelector,
    protocol: L4Protocol,
    name: &ObjectName,
    flag: &str,
    config: &mut RouteConfig,
    problems: &mut Vec<Problem>,
) {
    let object = describe("ConfigMap", Some(&name.namespace), &name.name);
    let Some((src, map)) = index
        .config_maps
        .get(&(name.namespace.as_str(), name.name.as_str()))
    else {
        problems.push(Problem::warning(
            Some(object),
            format!(
                "named by {flag} but not found; no {} services",
                protocol.as_str()
            ),
        ));
        return;
    };
    let file = src.file.clone();
    let error =
        |message: String| Problem::error(Some(object.clone()), message).in_file(file.clone());
    let annotations = map.metadata.annotations.as_ref();
    let policy = match annotations.and_then(|a| a.get(LOAD_BALANCE_ANNOTATION)) {
        None => LbPolicy::RoundRobin,
        Some(v) => match v.trim() {
            "round_robin" => LbPolicy::RoundRobin,
            "least_connections" => LbPolicy::LeastRequest,
            "client_ip" => LbPolicy::Maglev(rauta_shared::config::HashKey::ClientIp),
            other => {
                problems.push(
                    Problem::warning(
                        Some(object.clone()),
                        format!("annotation {LOAD_BALANCE_ANNOTATION}: {other:?} is not round_robin, least_connections or client_ip; round_robin is used"),
                    )
                    .in_file(file.clone()),
                );
                LbPolicy::RoundRobin
            }
        },
    };
    let fast = match annotations.and_then(|a| a.get(XDP_FAST_PATH_ANNOTATION)) {
        None => None,
        Some(_) if protocol == L4Protocol::Udp => {
            problems.push(
                Problem::warning(
                    Some(object.clone()),
                    format!("annotation {XDP_FAST_PATH_ANNOTATION}: the XDP fast path carries TCP services only; UDP services stay in user space"),
                )
                .in_file(file.clone()),
            );
            None
        }
        Some(v) => match FastPorts::parse(v) {
            Ok(ports) => Some(ports),
            Err(why) => {
                problems.push(
                    Problem::warning(
                        Some(object.clone()),
                        format!("annotation {XDP_FAST_PATH_ANNOTATION}: {why} (a comma-separated list of ports, or *); no entry is on the fast path"),
                    )
                    .in_file(file.clone()),
                );
                None
            }
        },
    };
    if let Some(FastPorts::Listed(ports)) = &fast {
        for port in ports {
            if !map
                .data
                .iter()
                .flatten()
                .any(|(k, _)| k.trim().parse() == Ok(*port))
            {
                problems.push(
                    Problem::warning(
                        Some(object.clone()),
                        format!("annotation {XDP_FAST_PATH_ANNOTATION}: port {port} is not a key of this ConfigMap"),
                    )
                    .in_file(file.clone()),
                );
            }
        }
    }
    for (key, value) in map.data.iter().flatten() {
        let entry = ConfigMapEntry {
            namespace: name.namespace.clone(),
            name: name.name.clone(),
            key: key.clone(),
        };
        let parsed = match parse_entry(protocol, key, value) {
            Ok(parsed) => parsed,
            Err(why) => {
                problems.push(error(format!("key {key:?}: {why}; entry left out")));
                continue;
            }
        };
        let reserved = sel.reserved_ports.iter().find(|(p, _)| *p == parsed.listen);
        if let (L4Protocol::Tcp, Some((port, what))) = (protocol, reserved) {
            problems.push(error(format!(
                "key {key:?}: port {port} is rauta's own {what} port; entry left out"
            )));
            continue;
        }
        let asker = Asker {
            object: &object,
            file: file.as_deref(),
            service_upstream: false,
        };
        let backend = BackendRef {
            service: parsed.service.clone(),
            port: parsed.port.clone(),
        };
        let namespace = &parsed.namespace;
        let policy = policy.clone();
        let backend = add_backend(&asker, index, namespace, &backend, policy, config, problems);
        let mut xdp_fast_path = fast.as_ref().is_some_and(|f| f.contains(parsed.listen));
        if xdp_fast_path && (parsed.decode || parsed.encode) {
            problems.push(
                Problem::warning(
                    Some(object.clone()),
                    format!("key {key:?}: annotation {XDP_FAST_PATH_ANNOTATION}: an entry with a PROXY protocol field stays in user space (XDP cannot add or strip the header)"),
                )
                .in_file(file.clone()),
            );
            xdp_fast_path = false;
        }
        config.l4.push(L4ServiceConfig {
            protocol,
            port: parsed.listen,
            backend,
            proxy_protocol_downstream: parsed.decode,
            proxy_protocol_upstream: parsed.encode,
            xdp_fast_path,
            source: entry,
        });
    }
}

/// Adds the endpoints of `backend` (a Service port in `namespace`) as a
/// backend that relays bytes (no HTTP, no TLS); returns its index.
fn add_backend(
    asker: &Asker<'_>,
    index: &Index<'_>,
    namespace: &str,
    backend: &BackendRef,
    policy: LbPolicy,
    config: &mut RouteConfig,
    problems: &mut Vec<Problem>,
) -> usize {
    let endpoints = resolve_endpoints(asker, index, namespace, backend, problems);
    config.backends.push(BackendConfig {
        name: format!("{namespace}/{}:{}", backend.service, backend.port),
        namespace: namespace.to_string(),
        service: backend.service.clone(),
        port: backend.port.clone(),
        endpoints,
        policy,
        protocol: UpstreamProtocol::Http,
        tls: None,
    });
    config.backends.len() - 1
}

/// One entry, parsed.
#[derive(Debug, PartialEq)]
struct Entry {
    listen: u16,
    namespace: String,
    service: String,
    port: ServicePort,
    /// Accept a PROXY header from the client side.
    decode: bool,
    /// Send a PROXY header to the backend.
    encode: bool,
}

/// Parses `port` -> `namespace/service:port[:PROXY[:PROXY]]`.
fn parse_entry(protocol: L4Protocol, key: &str, value: &str) -> Result<Entry, String> {
    let listen = match key.trim().parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => return Err("the key must be a port number from 1 to 65535".into()),
    };
    let fields: Vec<&str> = value.trim().split(':').collect();
    if fields.len() < 2 || fields.len() > 4 {
        return Err(format!(
            "{value:?} is not namespace/service:port[:PROXY[:PROXY]]"
        ));
    }
    let (namespace, service) = match fields[0].split_once('/') {
        Some((ns, svc)) if dns_label(ns) && dns_label(svc) => (ns, svc),
        _ => {
            return Err(format!(
                "{:?} is not namespace/service (lower-case DNS labels)",
                fields[0]
            ))
        }
    };
    let port = match fields[1].parse::<u16>() {
        Ok(0) => return Err("service port 0".into()),
        Ok(n) => ServicePort::Number(n),
        Err(_) if dns_label(fields[1]) => ServicePort::Name(fields[1].to_string()),
        Err(_) => {
            return Err(format!(
                "{:?} is neither a port number nor a port name",
                fields[1]
            ))
        }
    };
    let mut flags = [false, false];
    for (flag, field) in flags.iter_mut().zip(&fields[2..]) {
        match *field {
            f if f.eq_ignore_ascii_case("PROXY") => *flag = true,
            // ingress-nginx writes an empty field to send without accepting.
            "" => {}
            other => return Err(format!("{other:?} is neither PROXY nor empty")),
        }
    }
    if protocol == L4Protocol::Udp && flags.contains(&true) {
        return Err("PROXY protocol is for TCP services only".into());
    }
    Ok(Entry {
        listen,
        namespace: namespace.to_string(),
        service: service.to_string(),
        port,
        decode: flags[0],
        encode: flags[1],
    })
}

/// An RFC 1123 label, as namespace and Service names are.
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(key: &str, value: &str) -> Result<Entry, String> {
        parse_entry(L4Protocol::Tcp, key, value)
    }

    #[test]
    fn entries_parse_as_ingress_nginx_reads_them() {
        let e = tcp("9000", "default/db:5432").unwrap();
        assert_eq!(
            (e.listen, e.namespace.as_str(), e.service.as_str()),
            (9000, "default", "db")
        );
        assert_eq!(e.port, ServicePort::Number(5432));
        assert!(!e.decode && !e.encode);
        let e = tcp("9000", "default/db:postgres:PROXY").unwrap();
        assert_eq!(e.port, ServicePort::Name("postgres".into()));
        assert!(e.decode && !e.encode);
        let e = tcp("9000", "default/db:5432::proxy").unwrap();
        assert!(!e.decode && e.encode);
        let e = tcp("9000", "default/db:5432:PROXY:PROXY").unwrap();
        assert!(e.decode && e.encode);
    }

    #[test]
    fn fast_path_ports_are_a_list_or_a_star() {
        let all = FastPorts::parse(" * ").unwrap();
        assert!(all.contains(1) && all.contains(9000));
        let some = FastPorts::parse("9000, 9001").unwrap();
        assert!(some.contains(9001) && !some.contains(9002));
        for bad in ["", "9000,", "x", "0", "70000"] {
            assert!(FastPorts::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        for (key, value, says) in [
            ("0", "default/db:5432", "port number"),
            ("70000", "default/db:5432", "port number"),
            ("http", "default/db:5432", "port number"),
            ("9000", "db:5432", "namespace/service"),
            ("9000", "default/db", "namespace/service:port"),
            ("9000", "default/Db:5432", "namespace/service"),
            ("9000", "default/db:0", "service port 0"),
            ("9000", "default/db:5432:SEND", "neither PROXY"),
            (
                "9000",
                "default/db:5432:PROXY:PROXY:PROXY",
                "namespace/service:port",
            ),
        ] {
            let err = tcp(key, value).unwrap_err();
            assert!(err.contains(says), "{key}={value}: {err}");
        }
        let err = parse_entry(L4Protocol::Udp, "53", "kube-system/dns:53:PROXY").unwrap_err();
        assert!(err.contains("TCP services only"), "{err}");
    }
}
