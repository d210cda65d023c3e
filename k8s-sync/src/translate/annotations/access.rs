//! `whitelist-source-range` (= `allowlist-source-range`) and
//! `denylist-source-range`: CIDR lists; a value that does not parse closes
//! the Ingress's paths with 503, as ingress-nginx does.

use super::Reader;
use rauta_shared::policy::{AccessList, Cidr, RoutePolicy};

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
        match entry.parse::<Cidr>() {
            Ok(cidr) => out.push(cidr),
            Err(e) => {
                r.deny(key, e, route);
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
