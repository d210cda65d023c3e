//! What changes how the upstream is reached: `proxy-body-size`,
//! `upstream-vhost`, `server-alias` and `backend-protocol`.

use super::redirect::is_safe;
use super::Reader;
use crate::translate::ingress::parse_host;
use rauta_shared::config::{HostMatch, UpstreamProtocol};
use rauta_shared::policy::{BodyLimit, HostPolicy, RoutePolicy};

/// Reads the upstream family; returns `service-upstream` and the
/// backends' protocol.
pub(super) fn parse(
    r: &mut Reader<'_>,
    route: &mut RoutePolicy,
    host: &mut HostPolicy,
) -> (bool, UpstreamProtocol) {
    if let Some(v) = r.get("proxy-body-size") {
        match parse_size(v.trim()) {
            Some(0) => route.body_limit = Some(BodyLimit::Unlimited),
            Some(n) => route.body_limit = Some(BodyLimit::Bytes(n)),
            None => r.warn(
                "proxy-body-size",
                format!("{v:?} is not a size (digits and an optional b, k, m or g); the global limit is used"),
            ),
        }
    }
    if let Some(v) = r.get("upstream-vhost") {
        let v = v.trim();
        if is_safe(v) {
            route.upstream_host = Some(v.to_string());
        } else {
            r.warn(
                "upstream-vhost",
                format!("{v:?} is not a valid Host value; ignored"),
            );
        }
    }
    if let Some(v) = r.get("server-alias") {
        for alias in v.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match parse_host(alias) {
                Ok(HostMatch::Exact(name)) => host.aliases.push(name),
                Ok(_) => r.warn(
                    "server-alias",
                    format!("{alias:?}: only exact host names can be aliases; left out"),
                ),
                Err(e) => r.warn("server-alias", format!("{e}; left out")),
            }
        }
    }
    let mut protocol = UpstreamProtocol::Http;
    if let Some(v) = r.get("backend-protocol") {
        match v.trim().to_ascii_uppercase().as_str() {
            "HTTP" => {}
            "GRPC" => protocol = UpstreamProtocol::Grpc,
            "HTTPS" => protocol = UpstreamProtocol::Https,
            "GRPCS" => protocol = UpstreamProtocol::Grpcs,
            "AUTO_HTTP" => r.refuse(
                "backend-protocol",
                "AUTO_HTTP (the client's scheme towards the backend) is not supported; the Ingress is not served rather than sent one scheme for both".to_string(),
            ),
            "FCGI" => r.refuse(
                "backend-protocol",
                "FastCGI backends are not supported; the Ingress is not served rather than sent HTTP".to_string(),
            ),
            other => r.warn(
                "backend-protocol",
                format!("unknown protocol {other:?}; HTTP is used (as ingress-nginx does)"),
            ),
        }
    }
    for key in ["proxy-buffering", "proxy-request-buffering"] {
        match r.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => {}
            Some(v) if v == "off" => {}
            Some(v) if v == "on" => r.differs(
                key,
                "rauta streams bodies in both directions and never buffers them to disk; \"on\" is served as \"off\"",
            ),
            Some(v) => r.warn(key, format!("{v:?} is not on or off; rauta streams (as \"off\")")),
        }
    }
    (r.bool("service-upstream", false), protocol)
}

/// `^\d+[bkmg]?$` (any case), k/m/g being powers of 1024.
fn parse_size(v: &str) -> Option<u64> {
    let (digits, unit) = match v.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&v[..i], c.to_ascii_lowercase()),
        _ => (v, 'b'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        'b' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_as_nginx_reads_them() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("8k"), Some(8192));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("15r"), None);
        assert_eq!(parse_size("m"), None);
        assert_eq!(parse_size("1.5m"), None);
    }
}
