//! `affinity: cookie` and `session-cookie-name/-path/-expires/-max-age/
//! -secure/-samesite/-change-on-failure`, `affinity-mode`,
//! `affinity-canary-behavior`. Scoped to the rules of the carrying Ingress,
//! not to its Service as in ingress-nginx. Bad values fall back to the
//! default with a warning.

use super::Reader;
use rauta_shared::policy::{Affinity, RoutePolicy, SameSite};

/// ingress-nginx's default cookie name.
const DEFAULT_COOKIE: &str = "INGRESSCOOKIE";

const KEYS: [&str; 9] = [
    "session-cookie-name",
    "session-cookie-path",
    "session-cookie-expires",
    "session-cookie-max-age",
    "session-cookie-secure",
    "session-cookie-samesite",
    "session-cookie-change-on-failure",
    "affinity-mode",
    "affinity-canary-behavior",
];

/// Reads the affinity family.
pub(super) fn parse(r: &mut Reader<'_>, route: &mut RoutePolicy) {
    let kind = r.get("affinity").map(|v| v.trim().to_ascii_lowercase());
    match kind.as_deref() {
        Some("cookie") => {}
        other => {
            if let Some(v) = other {
                r.warn(
                    "affinity",
                    format!("{v:?}: only \"cookie\" is supported; no affinity"),
                );
            }
            for key in KEYS {
                if r.get(key).is_some() {
                    r.warn(key, "affinity is not \"cookie\"; ignored");
                }
            }
            return;
        }
    }
    let cookie = match r.get("session-cookie-name").map(str::trim) {
        None => DEFAULT_COOKIE.to_string(),
        Some(name) if !name.is_empty() && name.bytes().all(is_cookie_name_byte) => name.to_string(),
        Some(name) => {
            r.warn(
                "session-cookie-name",
                format!("{name:?} is not a cookie name; {DEFAULT_COOKIE} is used"),
            );
            DEFAULT_COOKIE.to_string()
        }
    };
    let path = match r.get("session-cookie-path").map(str::trim) {
        None => None,
        Some(p) if p.starts_with('/') && p.bytes().all(is_path_byte) => Some(p.to_string()),
        Some(p) => {
            r.warn(
                "session-cookie-path",
                format!("{p:?} is not a cookie path; the rule's path is used"),
            );
            None
        }
    };
    let expires_s = seconds(r, "session-cookie-expires");
    let max_age_s = seconds(r, "session-cookie-max-age");
    let secure = r.bool("session-cookie-secure", false);
    let samesite = match r.get("session-cookie-samesite").map(str::trim) {
        None => None,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "none" => Some(SameSite::None),
            "lax" => Some(SameSite::Lax),
            "strict" => Some(SameSite::Strict),
            _ => {
                r.warn(
                    "session-cookie-samesite",
                    format!("{v:?} is not None, Lax or Strict; no SameSite"),
                );
                None
            }
        },
    };
    let change_on_failure = r.bool("session-cookie-change-on-failure", false);
    let persistent = match r
        .get("affinity-mode")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => {
            note_balanced(r);
            false
        }
        Some(m) if m == "balanced" => {
            note_balanced(r);
            false
        }
        Some(m) if m == "persistent" => true,
        Some(m) => {
            r.warn(
                "affinity-mode",
                format!("{m:?} is not balanced or persistent; balanced is used"),
            );
            false
        }
    };
    let canary_sticky = match r
        .get("affinity-canary-behavior")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => true,
        Some(b) if b == "sticky" => true,
        Some(b) if b == "legacy" => false,
        Some(b) => {
            r.warn(
                "affinity-canary-behavior",
                format!("{b:?} is not sticky or legacy; sticky is used"),
            );
            true
        }
    };
    route.affinity = Some(Affinity {
        cookie,
        path,
        expires_s,
        max_age_s,
        secure,
        samesite,
        change_on_failure,
        persistent,
        canary_sticky,
    });
}

/// `balanced` (the default) is served like `persistent`; said on the key
/// when it is written.
fn note_balanced(r: &mut Reader<'_>) {
    if r.has("affinity-mode") {
        r.differs(
            "affinity-mode",
            "balanced is served as persistent: a session stays on its endpoint while it exists, also on scale-up",
        );
    }
}

/// Seconds, else none with a warning.
fn seconds(r: &mut Reader<'_>, key: &str) -> Option<u64> {
    let v = r.get(key)?;
    match v.trim().parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => {
            r.warn(key, format!("{v:?} is not a number of seconds; not sent"));
            None
        }
    }
}

/// RFC 6265 cookie-name (a token).
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What may stand in a `Path` attribute without breaking the header.
fn is_path_byte(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && b != b';' && b != b','
}
