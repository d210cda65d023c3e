//! Ingress annotations: each read under every accepted prefix
//! (`rauta.io/` first, then `nginx.ingress.kubernetes.io/`) into one
//! [`Annotations`]. A bad value is an error of the Ingress.

use k8s_openapi::api::networking::v1::Ingress;
use rauta_shared::config::{EndpointConfig, HashKey, LbPolicy};
use std::net::{IpAddr, SocketAddr};

/// Annotation prefixes we read, strongest first.
const ANNOTATION_PREFIXES: [&str; 2] = ["rauta.io/", "nginx.ingress.kubernetes.io/"];
/// Per-endpoint weights (rauta only).
pub(super) const WEIGHTS_ANNOTATION: &str = "rauta.io/endpoint-weights";
/// Largest weight `rauta.io/endpoint-weights` accepts.
const MAX_WEIGHT: u32 = 10_000;

/// What an Ingress's annotations ask for.
pub(super) struct Annotations {
    /// `upstream-hash-by` or `load-balance`.
    pub(super) policy: LbPolicy,
    /// `rauta.io/endpoint-weights`, in order.
    pub(super) weights: Vec<Weight>,
    /// `ssl-redirect` (default true): redirect hosts that have TLS.
    pub(super) ssl_redirect: bool,
    /// `force-ssl-redirect` (default false): redirect every rule.
    pub(super) force_ssl_redirect: bool,
}

impl Annotations {
    /// Reads every annotation we know; what is wrong goes to `errors`.
    pub(super) fn parse(ing: &Ingress, errors: &mut Vec<String>) -> Annotations {
        let policy = parse_policy(ing, errors);
        let ssl_redirect = parse_bool(ing, "ssl-redirect", true, errors);
        let force_ssl_redirect = parse_bool(ing, "force-ssl-redirect", false, errors);
        let weights = match ing
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(WEIGHTS_ANNOTATION))
        {
            Some(value) => parse_weights(value).unwrap_or_else(|e| {
                errors.push(format!("annotation {WEIGHTS_ANNOTATION}: {e}"));
                Vec::new()
            }),
            None => Vec::new(),
        };
        Annotations {
            policy,
            weights,
            ssl_redirect,
            force_ssl_redirect,
        }
    }
}

/// A boolean annotation (`true`/`false`, any case), `default` when absent.
fn parse_bool(ing: &Ingress, key: &str, default: bool, errors: &mut Vec<String>) -> bool {
    match annotation(ing, key) {
        None => default,
        Some((full, value)) => match value.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            other => {
                errors.push(format!("annotation {full}: {other:?} is not true or false"));
                default
            }
        },
    }
}

/// An annotation read under any accepted prefix: (full key, value).
fn annotation<'a>(ing: &'a Ingress, key: &str) -> Option<(String, &'a str)> {
    let annotations = ing.metadata.annotations.as_ref()?;
    ANNOTATION_PREFIXES.iter().find_map(|prefix| {
        let full = format!("{prefix}{key}");
        annotations.get(&full).map(|v| (full, v.as_str()))
    })
}

/// The balancing policy from `upstream-hash-by` (first) or `load-balance`.
///
/// `ewma` is approximated by least-request (P2C on in-flight requests): both
/// prefer the less loaded endpoint, without ewma's latency tracking.
fn parse_policy(ing: &Ingress, errors: &mut Vec<String>) -> LbPolicy {
    let balance = annotation(ing, "load-balance").and_then(|(key, value)| {
        match value.trim() {
            "round_robin" => Some(LbPolicy::RoundRobin),
            "least_request" | "ewma" => Some(LbPolicy::LeastRequest),
            other => {
                errors.push(format!(
                    "annotation {key}: unknown value {other:?} (expected round_robin, least_request or ewma)"
                ));
                None
            }
        }
    });
    let hash = annotation(ing, "upstream-hash-by").and_then(|(key, value)| {
        match parse_hash_key(value.trim()) {
            Some(hash) => Some(LbPolicy::Maglev(hash)),
            None => {
                errors.push(format!(
                    "annotation {key}: unsupported value {value:?} (expected $remote_addr, $binary_remote_addr, $http_<header>, $request_uri or $host)"
                ));
                None
            }
        }
    });
    hash.or(balance).unwrap_or(LbPolicy::RoundRobin)
}

/// The hash key an nginx variable names.
fn parse_hash_key(value: &str) -> Option<HashKey> {
    match value {
        "$remote_addr" | "$binary_remote_addr" => Some(HashKey::ClientIp),
        "$request_uri" => Some(HashKey::RequestUri),
        "$host" => Some(HashKey::Host),
        _ => {
            let header = value.strip_prefix("$http_")?;
            let valid = !header.is_empty()
                && header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            valid.then(|| HashKey::Header(header.to_ascii_lowercase().replace('_', "-")))
        }
    }
}

/// What a weight entry applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WeightKey {
    /// One address and port.
    Addr(SocketAddr),
    /// Every port of one IP.
    Ip(IpAddr),
    /// The endpoint's targetRef (pod) name.
    Target(String),
}

/// One entry of `rauta.io/endpoint-weights`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Weight {
    key: WeightKey,
    /// The key as written, for messages.
    pub(super) raw: String,
    pub(super) weight: u32,
}

/// Parses `KEY=WEIGHT,...`; empty entries (a trailing comma) are ignored.
fn parse_weights(value: &str) -> Result<Vec<Weight>, String> {
    let mut weights: Vec<Weight> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((raw, weight)) = entry.split_once('=') else {
            return Err(format!("entry {entry:?} is not KEY=WEIGHT"));
        };
        let (raw, weight) = (raw.trim(), weight.trim());
        let weight = weight
            .parse::<u32>()
            .ok()
            .filter(|w| *w <= MAX_WEIGHT)
            .ok_or_else(|| {
                format!("entry {entry:?}: weight must be an integer from 0 to {MAX_WEIGHT}")
            })?;
        let key = if let Ok(addr) = raw.parse::<SocketAddr>() {
            WeightKey::Addr(addr)
        } else if let Ok(ip) = raw.parse::<IpAddr>() {
            WeightKey::Ip(ip)
        } else if !raw.is_empty()
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            WeightKey::Target(raw.to_string())
        } else {
            return Err(format!(
                "entry {entry:?}: key must be an IP, IP:port or pod name"
            ));
        };
        if weights.iter().any(|w| w.key == key) {
            return Err(format!("{raw} is weighted more than once"));
        }
        weights.push(Weight {
            key,
            raw: raw.to_string(),
            weight,
        });
    }
    Ok(weights)
}

/// The weight entries that apply to an endpoint, strongest first: address
/// beats IP beats pod name.
pub(super) fn weights_for<'w>(weights: &'w [Weight], ep: &EndpointConfig) -> Vec<&'w Weight> {
    let rank = |key: &WeightKey| match key {
        WeightKey::Addr(addr) => (*addr == ep.addr).then_some(0),
        WeightKey::Ip(ip) => (*ip == ep.addr.ip()).then_some(1),
        WeightKey::Target(t) => (Some(t) == ep.target.as_ref()).then_some(2),
    };
    let mut matching: Vec<(u8, &Weight)> = weights
        .iter()
        .filter_map(|w| rank(&w.key).map(|r| (r, w)))
        .collect();
    matching.sort_by_key(|(r, _)| *r);
    matching.into_iter().map(|(_, w)| w).collect()
}
