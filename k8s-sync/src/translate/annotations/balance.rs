//! Load balancing: `load-balance`, `upstream-hash-by` and
//! `rauta.io/endpoint-weights`.

use super::Reader;
use rauta_shared::config::{EndpointConfig, HashKey, LbPolicy};
use std::net::{IpAddr, SocketAddr};

/// Largest weight `rauta.io/endpoint-weights` accepts.
const MAX_WEIGHT: u32 = 10_000;

/// The balancing policy from `upstream-hash-by` (first) or `load-balance`.
///
/// `ewma` is approximated by least-request (P2C on in-flight requests): both
/// prefer the less loaded endpoint, without ewma's latency tracking.
pub(super) fn parse_policy(r: &mut Reader<'_>) -> LbPolicy {
    let balance = r.get("load-balance").and_then(|value| match value.trim() {
        "round_robin" => Some(LbPolicy::RoundRobin),
        "least_request" => Some(LbPolicy::LeastRequest),
        "ewma" => {
            r.differs(
                "load-balance",
                "ewma is approximated by least_request (P2C on in-flight requests, no latency tracking)",
            );
            Some(LbPolicy::LeastRequest)
        }
        other => {
            r.refuse(
                "load-balance",
                format!("unknown value {other:?} (expected round_robin, least_request or ewma)"),
            );
            None
        }
    });
    let hash = r.get("upstream-hash-by").and_then(|value| {
        match parse_hash_key(value.trim()) {
            Some(hash) => Some(LbPolicy::Maglev(hash)),
            None => {
                r.refuse(
                    "upstream-hash-by",
                    format!("unsupported value {value:?} (expected $remote_addr, $binary_remote_addr, $http_<header>, $request_uri or $host)"),
                );
                None
            }
        }
    });
    hash.or(balance).unwrap_or(LbPolicy::RoundRobin)
}

/// `rauta.io/endpoint-weights`, in order; none when absent or bad.
pub(super) fn parse_weights_annotation(r: &mut Reader<'_>) -> Vec<Weight> {
    match r.get_exact(super::WEIGHTS_ANNOTATION) {
        Some(value) => parse_weights(value).unwrap_or_else(|e| {
            r.refuse_exact(super::WEIGHTS_ANNOTATION, e);
            Vec::new()
        }),
        None => Vec::new(),
    }
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
pub(in crate::translate) struct Weight {
    key: WeightKey,
    /// The key as written, for messages.
    pub(in crate::translate) raw: String,
    pub(in crate::translate) weight: u32,
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
pub(in crate::translate) fn weights_for<'w>(
    weights: &'w [Weight],
    ep: &EndpointConfig,
) -> Vec<&'w Weight> {
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
