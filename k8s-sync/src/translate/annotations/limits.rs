//! `limit-rps`, `limit-rpm`, `limit-burst-multiplier`, `limit-connections`,
//! `limit-whitelist`, and rauta's `rauta.io/limit-status-code`. Limits are
//! per client IP and per Ingress (one zone, `namespace/name`, shared by all
//! its rules). A value that is not a number (or a whitelist entry that is
//! not a CIDR) refuses the Ingress, as ingress-nginx's validators do.

use super::Reader;
use rauta_shared::policy::{Cidr, RateLimit, RoutePolicy};

/// ingress-nginx's `limit-burst-multiplier` default.
const DEFAULT_MULTIPLIER: u32 = 5;
/// ingress-nginx's `limit-req-status-code` / `limit-conn-status-code` default.
const DEFAULT_STATUS: u16 = 503;
/// rauta's per-Ingress answer status for limited requests (ingress-nginx
/// only has the global `limit-req-status-code` / `limit-conn-status-code`).
const STATUS_KEY: &str = "rauta.io/limit-status-code";

/// Reads the rate-limit family; `zone` is the Ingress's `namespace/name`.
pub(super) fn parse(r: &mut Reader<'_>, route: &mut RoutePolicy, zone: String) {
    let rps = count(r, "limit-rps");
    let rpm = count(r, "limit-rpm");
    let connections = count(r, "limit-connections");
    let multiplier = match r.get("limit-burst-multiplier") {
        None => Some(DEFAULT_MULTIPLIER),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                r.refuse(
                    "limit-burst-multiplier",
                    format!("{v:?} is not a non-negative integer"),
                );
                None
            }
        },
    };
    let whitelist = match r.get("limit-whitelist") {
        None => Some(Vec::new()),
        Some(v) => {
            let mut out = Vec::new();
            let mut bad = None;
            for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                match entry.parse::<Cidr>() {
                    Ok(c) => out.push(c),
                    Err(e) => {
                        bad = Some(e);
                        break;
                    }
                }
            }
            match bad {
                Some(e) => {
                    r.refuse("limit-whitelist", e);
                    None
                }
                None => Some(out),
            }
        }
    };
    let status = match r.get_exact(STATUS_KEY) {
        None => DEFAULT_STATUS,
        Some(v) => match v.trim().parse::<u16>() {
            Ok(code) if (400..=599).contains(&code) => code,
            _ => {
                r.warn_exact(
                    STATUS_KEY,
                    format!("{v:?} is not a status from 400 to 599; {DEFAULT_STATUS} is used"),
                );
                DEFAULT_STATUS
            }
        },
    };
    let (Some(rps), Some(rpm), Some(connections), Some(burst_multiplier), Some(whitelist)) =
        (rps, rpm, connections, multiplier, whitelist)
    else {
        return;
    };
    if rps.is_none() && rpm.is_none() && connections.is_none() {
        for key in ["limit-burst-multiplier", "limit-whitelist"] {
            if r.has(key) {
                r.warn(key, "no limit-rps, limit-rpm or limit-connections; ignored");
            }
        }
        return;
    }
    route.rate_limit = Some(RateLimit {
        zone,
        rps,
        rpm,
        burst_multiplier,
        connections,
        whitelist,
        status,
    });
}

/// `Some(None)` when absent or 0 (no limit), `Some(Some(n))` for a limit,
/// `None` when the Ingress is refused for a value that is not a number.
fn count(r: &mut Reader<'_>, key: &str) -> Option<Option<u32>> {
    let Some(v) = r.get(key) else {
        return Some(None);
    };
    match v.trim().parse::<u32>() {
        Ok(0) => Some(None),
        Ok(n) => Some(Some(n)),
        Err(_) => {
            r.refuse(key, format!("{v:?} is not a non-negative integer"));
            None
        }
    }
}
