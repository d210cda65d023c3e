//! `whitelist-source-range` (= `allowlist-source-range`) and
//! `denylist-source-range`: CIDR lists; a value that does not parse closes
//! the Ingress's paths with 503, as ingress-nginx does.

use super::Reader;
use rauta_shared::policy::{AccessList, Cidr, RoutePolicy};
use std::net::IpAddr;

/// Reads the access family.
pub(super) fn parse(r: &mut Reader<'_>, route: &mut RoutePolicy) {
    let allow_key = if r.has("allowlist-source-range") {
        if r.has("whitelist-source-range") {
            r.get("whitelist-source-range");
            r.warn(
                "whitelist-source-range",
                "allowlist-source-range is also set and wins",
            );
        }
        "allowlist-source-range"
    } else {
        "whitelist-source-range"
    };
    let allow = list(r, allow_key, route);
    let deny = list(r, "denylist-source-range", route);
    if allow.is_some() || deny.is_some() {
        route.access = Some(AccessList {
            deny: deny.unwrap_or_default(),
            allow: allow.unwrap_or_default(),
        });
    }
}

fn list(r: &mut Reader<'_>, key: &str, route: &mut RoutePolicy) -> Option<Vec<Cidr>> {
    let value = r.get(key)?;
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match parse_cidr(entry) {
            Some(cidr) => out.push(cidr),
            None => {
                r.deny(
                    key,
                    format!("{entry:?} is not an IP address or CIDR"),
                    route,
                );
                return None;
            }
        }
    }
    if out.is_empty() {
        r.deny(key, "names no IP address or CIDR", route);
        return None;
    }
    Some(out)
}

/// `10.0.0.0/8`, `2001:db8::/32` or a single address; host bits are cleared.
pub(in crate::translate) fn parse_cidr(s: &str) -> Option<Cidr> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
        None => {
            let a = s.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return None;
    }
    let addr = match addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    };
    Some(Cidr { addr, prefix })
}
