//! Request mirroring: `mirror-target`, `mirror-request-body`,
//! `mirror-host`. As for `auth-url`, the target's host is resolved here,
//! never by DNS on a shard: an IP literal as it is, a Service name
//! (`svc.ns[.svc[.cluster.local]]`) through its EndpointSlices.
//!
//! ingress-nginx renders `mirror /_mirror-<uid>` with a location that
//! `proxy_pass`es to the target (so `$request_uri` is the client's path
//! and query) with `Host` set to `mirror-host`, else the target's
//! authority. A bad value is warned and the mirror left out; the Ingress
//! is served.

use super::auth::{self, AuthService};
use super::Reader;
use rauta_shared::policy::{AuthTarget, Mirror, RoutePolicy};

/// The only nginx variable a target may use.
const REQUEST_URI: &str = "$request_uri";

/// Reads the family into `route.mirrors`; returns the Service to resolve
/// when the target names one.
pub(super) fn parse(r: &mut Reader<'_>, route: &mut RoutePolicy) -> Option<AuthService> {
    let body = match r.get("mirror-request-body").map(str::trim) {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => {
            r.warn(
                "mirror-request-body",
                format!("{other:?} is not on or off; on is used"),
            );
            true
        }
    };
    let host = r.get("mirror-host").map(str::trim);
    let Some(target) = r.get("mirror-target").map(str::trim) else {
        if host.is_some() {
            r.warn("mirror-host", "without mirror-target; ignored");
        }
        return None;
    };
    let parsed = match parse_target(target) {
        Ok(parsed) => parsed,
        Err(e) => {
            r.warn("mirror-target", format!("{e}; nothing is mirrored"));
            return None;
        }
    };
    if parsed.path_defaulted {
        r.differs(
            "mirror-target",
            "a target without a path mirrors the client's path and query ($request_uri); ingress-nginx sends its internal /_mirror-<uid> path",
        );
    }
    let host = match host {
        None => parsed.authority,
        Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()) => h.to_string(),
        Some(h) => {
            r.warn(
                "mirror-host",
                format!("{h:?} is not a host name; nothing is mirrored"),
            );
            return None;
        }
    };
    let (target_addr, service) = match parsed.host {
        auth::Host::Addr(addr) => (AuthTarget::Addr(addr), None),
        // The index is filled in when the rules are merged.
        auth::Host::Service(s) => (AuthTarget::Backend(0), Some(s)),
    };
    route.mirrors.push(Mirror {
        target: target_addr,
        numerator: 1,
        denominator: 1,
        host: Some(host),
        path: Some(parsed.path),
        body,
        name: target.to_string(),
    });
    service
}

/// A `mirror-target` taken apart.
#[derive(Debug)]
struct Target {
    authority: String,
    host: auth::Host,
    /// The path template, `$request_uri` expanded per request.
    path: String,
    /// The URL had no path: `$request_uri` was taken.
    path_defaulted: bool,
}

/// `http://host[:port][/path][$request_uri]`.
fn parse_target(target: &str) -> Result<Target, String> {
    if target.to_ascii_lowercase().starts_with("https://") {
        return Err(format!(
            "{target:?}: https:// mirrors are not supported yet (only http://)"
        ));
    }
    let (base, vars) = match target.find('$') {
        Some(i) => target.split_at(i),
        None => (target, ""),
    };
    let mut rest = vars;
    while let Some(i) = rest.find('$') {
        let after = &rest[i..];
        let ident_follows = after[REQUEST_URI.len().min(after.len())..]
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !after.starts_with(REQUEST_URI) || ident_follows {
            return Err(format!(
                "{target:?}: only the nginx variable $request_uri is supported"
            ));
        }
        rest = &after[REQUEST_URI.len()..];
    }
    let url = auth::parse_url(base)?;
    let after_scheme = base.get(7..).unwrap_or("");
    let has_path = after_scheme.contains(['/', '?']);
    let (path, path_defaulted) = match (has_path, vars.is_empty()) {
        (true, _) => (format!("{}{vars}", url.path), false),
        (false, false) => (vars.to_string(), false),
        (false, true) => (REQUEST_URI.to_string(), true),
    };
    if !(path.starts_with('/') || path.starts_with(REQUEST_URI)) {
        return Err(format!(
            "{target:?}: the path must start with / or $request_uri"
        ));
    }
    Ok(Target {
        authority: url.authority,
        host: url.host,
        path,
        path_defaulted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = parse_target("http://10.0.0.9:8080$request_uri").expect("valid");
        assert_eq!(t.path, "$request_uri");
        assert_eq!(t.authority, "10.0.0.9:8080");
        let t = parse_target("http://shadow.demo.svc/copy$request_uri").expect("valid");
        assert_eq!(t.path, "/copy$request_uri");
        assert!(matches!(t.host, auth::Host::Service(ref s) if s.name == "shadow" && s.port == 80));
        let t = parse_target("http://shadow.demo/fixed").expect("valid");
        assert_eq!((t.path.as_str(), t.path_defaulted), ("/fixed", false));
        let t = parse_target("http://shadow.demo").expect("valid");
        assert_eq!((t.path.as_str(), t.path_defaulted), ("$request_uri", true));
        for bad in [
            "https://shadow.demo/",
            "http://shadow.demo$uri",
            "http://shadow.demo$request_uri_x",
            "shadow.demo/",
            "http://mirror.example.com/",
            "http://shadow.demo/a b",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
