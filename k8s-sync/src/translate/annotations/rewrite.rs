//! `rewrite-target`, `use-regex` and `x-forwarded-prefix`. Either of the
//! first two puts every host of the Ingress in ingress-nginx's host-wide
//! regex mode (see `router/pattern.rs` in the proxy); the merge step
//! checks every path of such a host compiles.

use super::redirect::is_safe;
use super::Reader;
use rauta_shared::policy::{HostPolicy, Rewrite, RoutePolicy};

/// Reads the rewrite family.
pub(super) fn parse(r: &mut Reader<'_>, route: &mut RoutePolicy, host: &mut HostPolicy) {
    host.regex = r.bool("use-regex", false);
    let prefix = match r.get("x-forwarded-prefix") {
        Some(v) if is_safe(v.trim()) => Some(v.trim().to_string()),
        Some(v) => {
            r.warn(
                "x-forwarded-prefix",
                format!("{v:?} is not a valid header value; ignored"),
            );
            None
        }
        None => None,
    };
    let Some(target) = r.get("rewrite-target") else {
        if prefix.is_some() {
            r.differs(
                "x-forwarded-prefix",
                "sent only with rewrite-target, as in ingress-nginx; this Ingress has none, so it is never sent",
            );
        }
        return;
    };
    let target = target.trim();
    // ingress-nginx's own check; anything else is treated as empty.
    let valid = target
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/:$".contains(&b));
    if !valid || target.is_empty() {
        r.warn(
            "rewrite-target",
            format!("{target:?} has characters outside [-._~a-zA-Z0-9/:$]; no rewrite (as ingress-nginx treats it)"),
        );
        return;
    }
    route.rewrite = Some(Rewrite {
        target: target.to_string(),
        forwarded_prefix: prefix,
    });
}

/// Checks a path of a host in regex mode: it must compile as the proxy
/// will compile it. The message names what Rust's regex lacks.
pub(in crate::translate) fn check_pattern(path: &str) -> Result<(), String> {
    match regex::Regex::new(&format!("(?i)^{path}")) {
        Ok(_) => Ok(()),
        Err(e) => {
            let detail = e.to_string();
            let hint = if detail.contains("look-around") || detail.contains("backreference") {
                " (rauta matches with Rust's regex syntax, which has no look-around or back-references; PCRE's are refused rather than mis-matched)"
            } else {
                ""
            };
            let first = detail.lines().last().unwrap_or("invalid regex").trim();
            Err(format!("path {path:?} is not a valid regex: {first}{hint}"))
        }
    }
}
