//! External authentication: `auth-url`, `auth-method`, `auth-signin`,
//! `auth-response-headers`. The URL's host is resolved here, never by DNS
//! on a shard: an IP literal is used as it is, a Service name
//! (`svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`) through the
//! Service and its EndpointSlices, like any backend.

use super::Reader;
use rauta_shared::policy::{AuthTarget, ExtAuth, RoutePolicy};
use std::net::{IpAddr, SocketAddr};

/// The Service an `auth-url` names; resolved to a backend when rules are merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::translate) struct AuthService {
    /// The Service's namespace (from the host name, not the Ingress's).
    pub(in crate::translate) namespace: String,
    /// The Service's name.
    pub(in crate::translate) name: String,
    /// The Service port (the URL's, 80 by default).
    pub(in crate::translate) port: u16,
}

/// What the URL's host is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Host {
    Addr(SocketAddr),
    Service(AuthService),
}

/// An `auth-url` taken apart.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct AuthUrl {
    /// The authority as written, for the `Host` header.
    pub(super) authority: String,
    pub(super) host: Host,
    /// Path and query, at least `/`.
    pub(super) path: String,
}

/// Methods ingress-nginx accepts for `auth-method`.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
];

/// Reads the family into `route.auth`; a broken `auth-url`, `auth-method`
/// or `auth-response-headers` denies the Ingress's paths (503), as in
/// ingress-nginx, and a bad `auth-signin` is warned and left out. Returns
/// the Service to resolve when the URL names one.
pub(super) fn parse(r: &mut Reader<'_>, route: &mut RoutePolicy) -> Option<AuthService> {
    let url = r.get("auth-url")?;
    let parsed = match parse_url(url.trim()) {
        Ok(parsed) => parsed,
        Err(e) => {
            r.deny("auth-url", e, route);
            return None;
        }
    };
    let method = match r.get("auth-method").map(str::trim) {
        None => "GET".to_string(),
        Some(m) if METHODS.contains(&m) => m.to_string(),
        Some(m) => {
            r.deny(
                "auth-method",
                format!("{m:?} is not one of {}", METHODS.join(", ")),
                route,
            );
            return None;
        }
    };
    let mut response_headers = Vec::new();
    if let Some(list) = r.get("auth-response-headers") {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let valid = name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                r.deny(
                    "auth-response-headers",
                    format!("{name:?} is not a header name"),
                    route,
                );
                return None;
            }
            let name = name.to_ascii_lowercase();
            if !response_headers.contains(&name) {
                response_headers.push(name);
            }
        }
    }
    let signin = r
        .get("auth-signin")
        .and_then(|s| match signin_template(s.trim()) {
            Ok(t) => Some(t),
            Err(e) => {
                r.warn("auth-signin", format!("{e}; a 401 is answered instead"));
                None
            }
        });
    let (target, service) = match parsed.host {
        Host::Addr(addr) => (AuthTarget::Addr(addr), None),
        // The index is filled in when the rules are merged.
        Host::Service(s) => (AuthTarget::Backend(0), Some(s)),
    };
    route.auth = Some(ExtAuth {
        url: url.trim().to_string(),
        method,
        signin,
        response_headers,
        host: parsed.authority,
        path: parsed.path,
        target,
    });
    service
}

/// True for bytes that may appear in a URL we send or redirect to as written.
fn url_safe(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

/// Takes an `http://host[:port][/path][?query]` URL apart.
pub(super) fn parse_url(url: &str) -> Result<AuthUrl, String> {
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &url[7..]
    } else if lower.starts_with("https://") {
        return Err(format!(
            "{url:?}: https:// auth services are not supported yet (only http://)"
        ));
    } else {
        return Err(format!("{url:?} is not an http:// URL"));
    };
    if !url_safe(url) {
        return Err(format!("{url:?} contains spaces or control characters"));
    }
    if url.contains('$') {
        return Err(format!(
            "{url:?}: nginx variables are not supported in auth-url"
        ));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url:?} has no host, or has user info"));
    }
    let tail = tail.split('#').next().unwrap_or("");
    let path = match tail.chars().next() {
        None => "/".to_string(),
        Some('?') => format!("/{tail}"),
        Some(_) => tail.to_string(),
    };
    let (host, port) = split_port(authority).ok_or_else(|| format!("{url:?}: bad port"))?;
    let host = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: IpAddr = v6
            .parse()
            .map_err(|_| format!("{url:?}: {v6} is not an IPv6 address"))?;
        Host::Addr(SocketAddr::new(ip, port))
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        Host::Addr(SocketAddr::new(ip, port))
    } else {
        Host::Service(service_name(&host.to_ascii_lowercase(), port).ok_or_else(|| {
            format!(
                "{url:?}: host {host} is neither an IP address nor a Service name (svc.namespace, svc.namespace.svc or svc.namespace.svc.cluster.local); rauta resolves no other names"
            )
        })?)
    };
    Ok(AuthUrl {
        authority: authority.to_string(),
        host,
        path,
    })
}

/// `host` and the port (80 when absent).
fn split_port(authority: &str) -> Option<(&str, u16)> {
    let colon = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => i,
        _ => return Some((authority, 80)),
    };
    let port = authority[colon + 1..]
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)?;
    Some((&authority[..colon], port))
}

/// The Service a cluster DNS name designates.
fn service_name(host: &str, port: u16) -> Option<AuthService> {
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    let valid = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let (name, namespace) = match labels.as_slice() {
        [name, ns] | [name, ns, "svc"] | [name, ns, "svc", "cluster", "local"] => (*name, *ns),
        _ => return None,
    };
    (valid(name) && valid(namespace)).then(|| AuthService {
        namespace: namespace.to_string(),
        name: name.to_string(),
        port,
    })
}

/// The signin location with ingress-nginx's `rd=` parameter: `?rd=` when
/// the URL has no query, `&rd=` when it has one without `rd`, nothing
/// when it already carries `rd`. `$scheme`, `$http_host`, `$host`,
/// `$request_uri` and `$escaped_request_uri` are expanded per request.
fn signin_template(url: &str) -> Result<String, String> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) || !url_safe(url) {
        return Err(format!("{url:?} is not an http(s) URL"));
    }
    const RD: &str = "rd=$scheme://$http_host$escaped_request_uri";
    Ok(match url.split_once('?') {
        None => format!("{url}?{RD}"),
        Some((_, "")) => format!("{url}{RD}"),
        Some((_, query)) if query.split('&').any(|kv| kv.starts_with("rd=")) => url.to_string(),
        Some(_) => format!("{url}&{RD}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://10.0.0.7:9000/check?x=1").expect("valid");
        assert_eq!(u.authority, "10.0.0.7:9000");
        assert_eq!(u.host, Host::Addr("10.0.0.7:9000".parse().expect("addr")));
        assert_eq!(u.path, "/check?x=1");
        let u = parse_url("http://[::1]").expect("valid");
        assert_eq!(u.host, Host::Addr("[::1]:80".parse().expect("addr")));
        assert_eq!(u.path, "/");
        let u = parse_url("HTTP://oauth2.auth.svc.cluster.local:4180/oauth2/auth").expect("valid");
        assert_eq!(
            u.host,
            Host::Service(AuthService {
                namespace: "auth".into(),
                name: "oauth2".into(),
                port: 4180
            })
        );
        assert!(parse_url("http://auth.ns.svc").is_ok());
        for bad in [
            "https://1.2.3.4/",
            "ftp://x.y/",
            "http:///x",
            "http://a b/",
            "http://$host/auth",
            "http://auth.example.com/",
            "http://auth/",
            "http://1.2.3.4:0/",
            "http://u@1.2.3.4/",
            "not a url",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signin_gets_rd_once() {
        assert_eq!(
            signin_template("https://login.example.com/start").expect("valid"),
            "https://login.example.com/start?rd=$scheme://$http_host$escaped_request_uri"
        );
        assert_eq!(
            signin_template("https://l.example.com/s?a=1").expect("valid"),
            "https://l.example.com/s?a=1&rd=$scheme://$http_host$escaped_request_uri"
        );
        assert_eq!(
            signin_template("https://l.example.com/s?rd=/home").expect("valid"),
            "https://l.example.com/s?rd=/home"
        );
        assert!(signin_template("/relative").is_err());
    }
}
