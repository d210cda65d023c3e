//! The HTTPRoute `CORS` filter (`HTTPCORSFilter`) -> the CORS policy the
//! ingress-nginx annotations also produce, with the Gateway API's origin
//! matching ([`CorsOriginMatch::Greedy`]) and the Fetch standard's answers
//! ([`CorsAnswers::Fetch`]). Values the CRD's validation would refuse are
//! errors here too: a manifest directory has no API server to check them.

use crate::gateway_api::CorsFilter;
use rauta_shared::policy::{is_header_name, Cors, CorsAnswers, CorsOriginMatch, CorsOrigins};

/// `Access-Control-Max-Age` when `maxAge` is not set.
const DEFAULT_MAX_AGE: u64 = 5;

/// The filter as a policy, or what is wrong with it.
pub(super) fn parse(f: &CorsFilter) -> Result<Cors, String> {
    let credentials = f.allow_credentials.unwrap_or(false);
    let origins = if f.allow_origins.iter().any(|o| o == "*") {
        alone(&f.allow_origins, "allowOrigins")?;
        CorsOrigins::Any
    } else {
        let mut list: Vec<String> = Vec::new();
        for o in &f.allow_origins {
            check_origin(o).map_err(|e| format!("allowOrigins: {o:?} {e}"))?;
            let o = o.to_ascii_lowercase();
            if !list.contains(&o) {
                list.push(o);
            }
        }
        CorsOrigins::List(list)
    };
    let methods = list(&f.allow_methods, "allowMethods", "method", true)?;
    let headers = list(&f.allow_headers, "allowHeaders", "header name", true)?;
    let mut expose = list(&f.expose_headers, "exposeHeaders", "header name", false)?;
    if credentials {
        // With credentials `*` names no header: the spec forbids sending it.
        expose = expose
            .split(", ")
            .filter(|h| *h != "*")
            .collect::<Vec<_>>()
            .join(", ");
    }
    let max_age = match f.max_age {
        None => DEFAULT_MAX_AGE,
        Some(n) if n >= 1 => n as u64,
        Some(n) => return Err(format!("maxAge {n} is not at least 1")),
    };
    Ok(Cors {
        origins,
        origin_match: CorsOriginMatch::Greedy,
        methods,
        headers,
        expose_headers: Some(expose).filter(|e| !e.is_empty()),
        credentials,
        max_age,
        answers: CorsAnswers::Fetch,
    })
}

/// `*` may only stand alone.
fn alone(values: &[String], field: &str) -> Result<(), String> {
    if values.len() > 1 {
        return Err(format!("{field}: * cannot be listed with other values"));
    }
    Ok(())
}

/// Method tokens (case-sensitive) or header names (kept as written), joined
/// `, `; with `wildcard_alone`, `*` must be the only entry.
fn list(
    values: &[String],
    field: &str,
    what: &str,
    wildcard_alone: bool,
) -> Result<String, String> {
    let mut out: Vec<&str> = Vec::new();
    for v in values {
        if v == "*" {
            if wildcard_alone {
                alone(values, field)?;
            }
        } else if !is_header_name(v) || v.contains('*') {
            return Err(format!("{field}: {v:?} is not a valid {what}"));
        }
        let seen = if what == "method" {
            out.contains(&v.as_str())
        } else {
            out.iter().any(|o| o.eq_ignore_ascii_case(v))
        };
        if !seen {
            out.push(v);
        }
    }
    Ok(out.join(", "))
}

/// `http(s)://host[:port]`: the host DNS labels (the first may be `*`) or
/// `*` alone, the port 1-65535, nothing else (no path, no user).
fn check_origin(o: &str) -> Result<(), String> {
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
        .ok_or("is not * or http(s)://host[:port]")?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    if let Some(p) = port {
        let ok = p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n));
        if !ok {
            return Err(format!("has port {p:?}, not 1-65535"));
        }
    }
    if host == "*" {
        return Ok(());
    }
    let labels = host.strip_prefix("*.").unwrap_or(host);
    let label_ok =
        |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if host.len() > 253 || !labels.split('.').all(label_ok) {
        return Err(format!(
            "has host {host:?}, not DNS labels (the first may be *)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_as_the_crd_pattern_says() {
        for good in [
            "https://www.foo.com",
            "https://*.bar.com",
            "http://*",
            "http://10.0.0.1:8080",
            "https://a-b.example:65535",
        ] {
            assert_eq!(check_origin(good), Ok(()), "{good}");
        }
        for bad in [
            "www.foo.com",
            "ftp://foo.com",
            "https://",
            "https://foo.com/",
            "https://foo.com:0",
            "https://foo.com:65536",
            "https://foo.com:",
            "https://a.*.com",
            "https://*foo.com",
            "https://user@foo.com",
            "https://foo..com",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards_stand_alone_and_expose_star_goes_with_credentials() {
        let f = |origins: &[&str], methods: &[&str], credentials| CorsFilter {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_methods: methods.iter().map(|s| s.to_string()).collect(),
            expose_headers: vec!["*".into(), "X-Total".into()],
            allow_credentials: Some(credentials),
            ..CorsFilter::default()
        };
        assert!(parse(&f(&["*", "https://a.test"], &[], false)).is_err());
        assert!(parse(&f(&["*"], &["*", "GET"], false)).is_err());
        assert!(parse(&f(&["*"], &["G E T"], false)).is_err());
        let c = parse(&f(&["*"], &["GET", "PURGE", "GET"], true)).expect("valid");
        assert_eq!(c.methods, "GET, PURGE");
        assert_eq!(c.expose_headers.as_deref(), Some("X-Total"));
        assert_eq!(c.max_age, 5);
        let c = parse(&f(&["https://A.test"], &[], false)).expect("valid");
        assert_eq!(c.origins, CorsOrigins::List(vec!["https://a.test".into()]));
        assert_eq!(c.expose_headers.as_deref(), Some("*, X-Total"));
    }
}
