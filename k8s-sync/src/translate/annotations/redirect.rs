//! Redirects: `permanent-redirect` / `temporal-redirect` (+ `-code`),
//! `app-root` and `from-to-www-redirect`.

use super::Reader;
use rauta_shared::policy::{HostPolicy, Redirect, RoutePolicy};

/// Reads the redirect family.
pub(super) fn parse(r: &mut Reader<'_>, route: &mut RoutePolicy, host: &mut HostPolicy) -> bool {
    // Temporal wins over permanent, as in ingress-nginx.
    let temporal = redirect(r, "temporal-redirect", 302, 300..=307);
    let permanent = redirect(r, "permanent-redirect", 301, 300..=308);
    if let (Some(_), Some(_)) = (&temporal, &permanent) {
        r.warn(
            "permanent-redirect",
            "temporal-redirect is also set and wins",
        );
    }
    route.redirect = temporal.or(permanent);
    if let Some(root) = r.get("app-root") {
        let root = root.trim();
        if root.contains("://") || !root.starts_with('/') {
            r.warn(
                "app-root",
                format!("{root:?} is not a path starting with \"/\" (an absolute URL is ignored, as in ingress-nginx)"),
            );
        } else if !is_safe(root) {
            r.warn(
                "app-root",
                format!("{root:?} contains characters not allowed in a path"),
            );
        } else {
            host.app_root = Some(root.to_string());
        }
    }
    r.bool("from-to-www-redirect", false)
}

/// One fixed redirect and its `-code` annotation.
fn redirect(
    r: &mut Reader<'_>,
    key: &str,
    default_code: u16,
    codes: std::ops::RangeInclusive<u16>,
) -> Option<Redirect> {
    let code_key = format!("{key}-code");
    let code = match r.get(&code_key) {
        None => default_code,
        Some(v) => match v.trim().parse::<u16>() {
            Ok(c) if codes.contains(&c) => c,
            _ => {
                r.warn(
                    &code_key,
                    format!(
                        "{v:?} is not a redirect code from {} to {}; {default_code} is used",
                        codes.start(),
                        codes.end()
                    ),
                );
                default_code
            }
        },
    };
    let url = r.get(key)?.trim();
    if url.is_empty() {
        return None;
    }
    let http = url.starts_with("http://") || url.starts_with("https://");
    if !http || !is_safe(url) {
        r.warn(key, format!("{url:?} is not an http(s) URL; ignored"));
        return None;
    }
    Some(Redirect {
        code,
        location: url.to_string(),
    })
}

/// True when `s` can go into a header as is: visible ASCII, no spaces.
pub(super) fn is_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}
