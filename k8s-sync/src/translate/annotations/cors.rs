//! `enable-cors` and `cors-allow-origin/-methods/-headers/-credentials/
//! -expose-headers/-max-age`, with ingress-nginx's defaults. A bad value
//! falls back to the default with a warning, as in ingress-nginx.

use super::Reader;
use rauta_shared::policy::{Cors, CorsAnswers, CorsOriginMatch, CorsOrigins, RoutePolicy};

const DEFAULT_METHODS: &str = "GET, PUT, POST, DELETE, PATCH, OPTIONS";
const DEFAULT_HEADERS: &str = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization";
const DEFAULT_MAX_AGE: u64 = 1_728_000;

/// Reads the CORS family.
pub(super) fn parse(r: &mut Reader<'_>, route: &mut RoutePolicy) {
    const KEYS: [&str; 6] = [
        "cors-allow-origin",
        "cors-allow-methods",
        "cors-allow-headers",
        "cors-allow-credentials",
        "cors-expose-headers",
        "cors-max-age",
    ];
    if !r.bool("enable-cors", false) {
        for key in KEYS {
            if r.get(key).is_some() {
                r.warn(key, "enable-cors is not true; ignored");
            }
        }
        return;
    }
    let credentials = r.bool("cors-allow-credentials", true);
    let origins = origins(r);
    if credentials && origins == CorsOrigins::Any {
        r.differs(
            "enable-cors",
            "with credentials and origin *, rauta echoes the request's Origin (browsers refuse * with credentials); ingress-nginx sends *",
        );
    }
    let methods = list(r, "cors-allow-methods", DEFAULT_METHODS, |b| {
        b.is_ascii_alphabetic() || b == b',' || b == b' '
    });
    let headers = list(r, "cors-allow-headers", DEFAULT_HEADERS, header_byte);
    let expose_headers = r.get("cors-expose-headers").and_then(|v| {
        let v = v.trim();
        if v.bytes().all(|b| header_byte(b) || b == b'*') {
            Some(v.to_string()).filter(|v| !v.is_empty())
        } else {
            r.warn(
                "cors-expose-headers",
                format!("{v:?} is not a header list; ignored"),
            );
            None
        }
    });
    let max_age = match r.get("cors-max-age") {
        None => DEFAULT_MAX_AGE,
        Some(v) => v.trim().parse().unwrap_or_else(|_| {
            r.warn(
                "cors-max-age",
                format!("{v:?} is not a number of seconds; {DEFAULT_MAX_AGE} is used"),
            );
            DEFAULT_MAX_AGE
        }),
    };
    route.cors = Some(Cors {
        origins,
        origin_match: CorsOriginMatch::OneLabel,
        methods,
        headers,
        expose_headers,
        credentials,
        max_age,
        answers: CorsAnswers::Every,
    });
}

fn header_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_, ".contains(&b)
}

/// A comma list whose bytes pass `ok`, else the default (warned).
fn list(r: &mut Reader<'_>, key: &str, default: &str, ok: fn(u8) -> bool) -> String {
    match r.get(key) {
        None => default.to_string(),
        Some(v) if !v.trim().is_empty() && v.bytes().all(ok) => v.trim().to_string(),
        Some(v) => {
            r.warn(
                key,
                format!("{v:?} is not a valid list; the default is used"),
            );
            default.to_string()
        }
    }
}

/// `*`, or `scheme://host[:port]` entries; entries without a scheme are
/// dropped (warned), as ingress-nginx drops them.
fn origins(r: &mut Reader<'_>) -> CorsOrigins {
    let Some(value) = r.get("cors-allow-origin") else {
        return CorsOrigins::Any;
    };
    let mut list = Vec::new();
    let mut dropped = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "*" {
            return CorsOrigins::Any;
        }
        let valid = entry.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme.bytes().all(|b| b.is_ascii_alphabetic())
                && !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:*".contains(&b))
        });
        if valid {
            list.push(entry.to_ascii_lowercase());
        } else {
            dropped.push(entry.to_string());
        }
    }
    if !dropped.is_empty() {
        r.warn(
            "cors-allow-origin",
            format!("{} not scheme://host[:port]; dropped", dropped.join(", ")),
        );
    }
    if list.is_empty() {
        return CorsOrigins::Any;
    }
    CorsOrigins::List(list)
}
