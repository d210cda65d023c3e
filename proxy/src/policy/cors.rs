//! CORS (`enable-cors`, `cors-*`): every response of the route carries the
//! CORS headers when the origin is allowed, and a preflight (any OPTIONS
//! from an allowed origin) is answered 204 by rauta, never proxied.
//!
//! Unlike ingress-nginx, `*` is never sent together with
//! `Access-Control-Allow-Credentials: true` (browsers reject that pair):
//! with credentials, an allowed request's Origin is echoed instead.

use rauta_shared::policy::{Cors as CorsConfig, CorsOrigins};

/// One allowed origin: scheme, host (or `*.` suffix), port.
#[derive(Debug)]
struct Origin {
    scheme: Box<str>,
    /// Lower-case host; for a wildcard, the part after `*.`.
    host: Box<str>,
    wildcard: bool,
    port: Option<Box<str>>,
}

impl Origin {
    fn parse(s: &str) -> Option<Origin> {
        let (scheme, rest) = s.split_once("://")?;
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
                (h, Some(p.into()))
            }
            _ => (rest, None),
        };
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(suffix) => (true, suffix),
            None => (false, host),
        };
        Some(Origin {
            scheme: scheme.to_ascii_lowercase().into(),
            host: host.to_ascii_lowercase().into(),
            wildcard,
            port,
        })
    }

    /// Case-insensitive; the port must be exactly the same (or both absent);
    /// `*.` stands for exactly one label.
    fn matches(&self, origin: &[u8]) -> bool {
        let Ok(origin) = std::str::from_utf8(origin) else {
            return false;
        };
        let Some(them) = Origin::parse(origin) else {
            return false;
        };
        if them.wildcard || them.scheme != self.scheme || them.port != self.port {
            return false;
        }
        if !self.wildcard {
            return them.host == self.host;
        }
        match them.host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == &*self.host,
            None => false,
        }
    }
}

/// A compiled CORS policy.
#[derive(Debug)]
pub struct Cors {
    /// `None`: any origin.
    origins: Option<Box<[Origin]>>,
    credentials: bool,
    /// The lines every CORS answer carries after ACAO.
    lines: Box<[u8]>,
}

/// What the response of one request gets: the `Access-Control-Allow-Origin` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// `*`.
    Any,
    /// The request's Origin, echoed.
    Echo(Box<[u8]>),
}

impl Cors {
    /// Compiles the headers once.
    pub fn compile(config: &CorsConfig) -> Cors {
        let origins = match &config.origins {
            CorsOrigins::Any => None,
            CorsOrigins::List(list) => Some(list.iter().filter_map(|o| Origin::parse(o)).collect()),
        };
        let mut lines = Vec::new();
        let mut line = |name: &str, value: &str| {
            lines.extend_from_slice(name.as_bytes());
            lines.extend_from_slice(b": ");
            lines.extend_from_slice(value.as_bytes());
            lines.extend_from_slice(b"\r\n");
        };
        line("Access-Control-Allow-Methods", &config.methods);
        line("Access-Control-Allow-Headers", &config.headers);
        line("Access-Control-Max-Age", &config.max_age.to_string());
        if let Some(expose) = &config.expose_headers {
            line("Access-Control-Expose-Headers", expose);
        }
        Cors {
            origins,
            credentials: config.credentials,
            lines: lines.into(),
        }
    }

    /// Whether the request's `origin` gets CORS headers, and which ACAO.
    pub fn allow(&self, origin: Option<&[u8]>) -> Option<Allowed> {
        match (&self.origins, origin) {
            // `*` with credentials would be refused by the browser.
            (None, Some(o)) if self.credentials => Some(Allowed::Echo(o.into())),
            (None, _) => Some(Allowed::Any),
            (Some(list), Some(o)) => list
                .iter()
                .any(|allowed| allowed.matches(o))
                .then(|| Allowed::Echo(o.into())),
            (Some(_), None) => None,
        }
    }

    /// Appends the CORS header lines for `allowed` to `out`.
    pub fn write(&self, allowed: &Allowed, out: &mut Vec<u8>) {
        out.extend_from_slice(b"Access-Control-Allow-Origin: ");
        match allowed {
            Allowed::Any => out.push(b'*'),
            Allowed::Echo(origin) => out.extend_from_slice(origin),
        }
        out.extend_from_slice(b"\r\n");
        if let Allowed::Echo(_) = allowed {
            out.extend_from_slice(b"Vary: Origin\r\n");
            // Never with `*`: browsers refuse credentials for any origin.
            if self.credentials {
                out.extend_from_slice(b"Access-Control-Allow-Credentials: true\r\n");
            }
        }
        out.extend_from_slice(&self.lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: CorsOrigins, credentials: bool) -> Cors {
        Cors::compile(&CorsConfig {
            origins,
            methods: "GET, POST".into(),
            headers: "Content-Type".into(),
            expose_headers: None,
            credentials,
            max_age: 60,
        })
    }

    #[test]
    fn origin_lists_match_scheme_host_port_and_one_wildcard_label() {
        let c = cors(
            CorsOrigins::List(vec![
                "https://app.example.com".into(),
                "http://*.example.org:8080".into(),
            ]),
            false,
        );
        let allowed = |o: &str| c.allow(Some(o.as_bytes())).is_some();
        assert!(allowed("https://app.example.com"));
        assert!(allowed("HTTPS://APP.example.com"));
        assert!(!allowed("http://app.example.com"), "scheme");
        assert!(!allowed("https://app.example.com:8443"), "port");
        assert!(allowed("http://a.example.org:8080"));
        assert!(!allowed("http://a.b.example.org:8080"), "one label only");
        assert!(!allowed("http://example.org:8080"));
        assert!(c.allow(None).is_none());
    }

    #[test]
    fn any_origin_with_credentials_echoes_instead_of_star() {
        let c = cors(CorsOrigins::Any, true);
        assert_eq!(
            c.allow(Some(b"https://x.test")),
            Some(Allowed::Echo(b"https://x.test"[..].into()))
        );
        assert_eq!(c.allow(None), Some(Allowed::Any));
        let mut out = Vec::new();
        c.write(&Allowed::Any, &mut out);
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("Access-Control-Allow-Origin: *\r\n"));
        assert!(!text.contains("Credentials"), "never * with credentials");
        let open = cors(CorsOrigins::Any, false);
        assert_eq!(open.allow(Some(b"https://x.test")), Some(Allowed::Any));
    }
}
