//! `canary`, `canary-by-header`, `-by-header-value`, `-by-header-pattern`,
//! `-by-cookie`, `-weight` and `-weight-total`. A canary Ingress creates no
//! rules: each of its (host, path, pathType) lends its backend to the main
//! Ingress's rule with the same key (see `merge`). Bad values fall back to
//! the default with a warning, as in ingress-nginx.

use super::verdict::Verdict;
use super::Reader;
use rauta_shared::config::IngressRef;
use rauta_shared::policy::Canary;

/// The keys that only mean something with `canary: "true"`.
const KEYS: [&str; 6] = [
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
    "canary-weight",
    "canary-weight-total",
];

/// The keys a canary Ingress may carry besides the canary family; all
/// others are ignored on it, as in ingress-nginx.
const KEPT_ON_CANARY: [&str; 3] = ["load-balance", "upstream-hash-by", "endpoint-weights"];

/// Reads the canary family: `Some` when the Ingress is a canary (its
/// `backend` and `source` are filled in by the merge).
pub(super) fn parse(r: &mut Reader<'_>) -> Option<Canary> {
    if !r.bool("canary", false) {
        for key in KEYS {
            if r.get(key).is_some() {
                r.warn(
                    key,
                    "canary is not \"true\"; ignored, and the Ingress is served as a main Ingress (as ingress-nginx does)",
                );
            }
        }
        return None;
    }
    let header = r
        .get("canary-by-header")
        .map(|h| h.trim().to_ascii_lowercase());
    let header = header.filter(|h| {
        let ok = !h.is_empty() && h.bytes().all(is_token_byte);
        if !ok {
            r.warn("canary-by-header", "not a header name; ignored");
        }
        ok
    });
    let mut header_value = r.get("canary-by-header-value").map(str::to_string);
    let mut header_pattern = r.get("canary-by-header-pattern").map(str::to_string);
    if header.is_none() {
        header_value = None;
        header_pattern = None;
        for key in ["canary-by-header-value", "canary-by-header-pattern"] {
            if r.has(key) {
                r.warn(key, "canary-by-header is not set; ignored");
            }
        }
    } else if header_value.is_some() && header_pattern.is_some() {
        r.warn(
            "canary-by-header-pattern",
            "canary-by-header-value is also set and wins",
        );
        header_pattern = None;
    } else if let Some(p) = &header_pattern {
        if let Err(e) = regex::Regex::new(p) {
            r.differs(
                "canary-by-header-pattern",
                format!(
                    "the pattern does not compile ({}); requests with the header go to the main backend, as in ingress-nginx",
                    first_line(&e.to_string())
                ),
            );
        }
    }
    let cookie = r.get("canary-by-cookie").map(|c| c.trim().to_string());
    let weight = number(r, "canary-weight", 0);
    let total = number(r, "canary-weight-total", 100);
    let weight_total = if total > 100 { total } else { 100 };
    if total != weight_total {
        r.differs(
            "canary-weight-total",
            "a total of 100 or less counts as 100, as in ingress-nginx",
        );
    }
    Some(Canary {
        backend: 0,
        header,
        header_value,
        header_pattern,
        cookie: cookie.filter(|c| !c.is_empty()),
        weight,
        weight_total,
        source: IngressRef {
            namespace: String::new(),
            name: String::new(),
            kind: rauta_shared::config::RouteKind::Ingress,
        },
    })
}

/// On a canary Ingress every annotation outside the canary family (and
/// balancing) is ignored, as in ingress-nginx: their verdicts say so.
pub(super) fn ignore_the_rest(r: &mut Reader<'_>) {
    let note = "ignored on a canary Ingress (as in ingress-nginx): the main Ingress's annotations apply to its rules";
    for (full, verdict) in r.verdicts.iter_mut() {
        let key = super::ANNOTATION_PREFIXES
            .iter()
            .find_map(|p| full.strip_prefix(p))
            .unwrap_or(full);
        let kept = key == "canary" || KEYS.contains(&key) || KEPT_ON_CANARY.contains(&key);
        if !kept && matches!(verdict, Verdict::Honoured | Verdict::Differs(_)) {
            *verdict = Verdict::Ignored(note.to_string());
        }
    }
}

/// A non-negative integer, else `default` with a warning.
fn number(r: &mut Reader<'_>, key: &str, default: u32) -> u32 {
    let Some(v) = r.get(key) else {
        return default;
    };
    match v.trim().parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            r.warn(
                key,
                format!("{v:?} is not a non-negative integer; {default} is used"),
            );
            default
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}

/// RFC 9110 token characters (header names).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
