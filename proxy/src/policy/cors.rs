//! CORS, one mechanism for ingress-nginx's `enable-cors`/`cors-*` and the
//! Gateway API's HTTPRoute `CORS` filter; the contract's
//! [`CorsOriginMatch`] and [`CorsAnswers`] say where the two differ.
//!
//! ingress-nginx ([`CorsAnswers::Every`]): every response of the route
//! carries all the CORS lines when the origin is allowed, and any OPTIONS
//! from an allowed origin is answered 204 by rauta, never proxied.
//!
//! Fetch ([`CorsAnswers::Fetch`]): a preflight (OPTIONS with `Origin` and
//! `Access-Control-Request-Method`) is always answered 204 by rauta, with
//! the CORS lines only for an allowed origin; Allow-Methods / Allow-Headers
//! only when the preflight asks; other responses get the origin,
//! credentials and expose lines.
//!
//! Unlike ingress-nginx, `*` is never sent together with
//! `Access-Control-Allow-Credentials: true` (browsers reject that pair):
//! with credentials, an allowed request's Origin is echoed instead (and,
//! under Fetch, its requested method and headers).

use rauta_shared::policy::{Cors as CorsConfig, CorsAnswers, CorsOriginMatch, CorsOrigins};

/// `scheme://host[:port]` split, as written (no case folding).
#[derive(Debug, Clone, Copy)]
struct Parts<'a> {
    scheme: &'a [u8],
    host: &'a [u8],
    port: Option<&'a [u8]>,
}

impl<'a> Parts<'a> {
    fn split(s: &'a [u8]) -> Option<Parts<'a>> {
        let at = s.windows(3).position(|w| w == b"://")?;
        let (scheme, rest) = (&s[..at], &s[at + 3..]);
        let (host, port) = match rest.iter().rposition(|&b| b == b':') {
            Some(colon)
                if colon + 1 < rest.len() && rest[colon + 1..].iter().all(u8::is_ascii_digit) =>
            {
                (&rest[..colon], Some(&rest[colon + 1..]))
            }
            _ => (rest, None),
        };
        Some(Parts { scheme, host, port })
    }

    /// The port, `None` when it is the scheme's default (Gateway API).
    fn explicit_port(self) -> Option<&'a [u8]> {
        let default: &[u8] = if self.scheme.eq_ignore_ascii_case(b"https") {
            b"443"
        } else if self.scheme.eq_ignore_ascii_case(b"http") {
            b"80"
        } else {
            return self.port;
        };
        self.port.filter(|p| *p != default)
    }
}

/// One allowed origin: scheme, host (or wildcard suffix), port.
#[derive(Debug)]
struct Origin {
    /// Lower-case.
    scheme: Box<[u8]>,
    /// Lower-case host; for a wildcard, the suffix the host must end with
    /// (one label: without the dot; greedy: with it, or empty for `*`).
    host: Box<[u8]>,
    wildcard: bool,
    /// Greedy: `None` also for the scheme's default port.
    port: Option<Box<[u8]>>,
}

impl Origin {
    fn parse(s: &str, how: CorsOriginMatch) -> Option<Origin> {
        let parts = Parts::split(s.as_bytes())?;
        let (wildcard, host, port) = match how {
            CorsOriginMatch::OneLabel => match parts.host.strip_prefix(b"*.") {
                Some(suffix) => (true, suffix, parts.port),
                None => (false, parts.host, parts.port),
            },
            CorsOriginMatch::Greedy => {
                let port = parts.explicit_port();
                match parts.host {
                    b"*" => (true, &b""[..], port),
                    h if h.starts_with(b"*.") => (true, &h[1..], port),
                    h => (false, h, port),
                }
            }
        };
        Some(Origin {
            scheme: parts.scheme.to_ascii_lowercase().into(),
            host: host.to_ascii_lowercase().into(),
            wildcard,
            port: port.map(Into::into),
        })
    }

    /// Scheme and host compare case-insensitively; the port as
    /// [`CorsOriginMatch`] says; a wildcard takes one label or, greedy,
    /// any number of them.
    fn matches(&self, them: Parts<'_>, how: CorsOriginMatch) -> bool {
        let port = match how {
            CorsOriginMatch::OneLabel => them.port,
            CorsOriginMatch::Greedy => them.explicit_port(),
        };
        if !them.scheme.eq_ignore_ascii_case(&self.scheme) || port != self.port.as_deref() {
            return false;
        }
        if !self.wildcard {
            return them.host.eq_ignore_ascii_case(&self.host);
        }
        match how {
            CorsOriginMatch::OneLabel => match them.host.iter().position(|&b| b == b'.') {
                Some(dot) => dot > 0 && them.host[dot + 1..].eq_ignore_ascii_case(&self.host),
                None => false,
            },
            CorsOriginMatch::Greedy => {
                let n = self.host.len();
                them.host.len() > n
                    && them.host[them.host.len() - n..].eq_ignore_ascii_case(&self.host)
                    && them.host[0] != b'.'
            }
        }
    }
}

/// An Allow-Methods or Allow-Headers line of a Fetch preflight.
#[derive(Debug)]
enum Allow {
    /// Not configured: never sent.
    Nothing,
    /// `*`: sent as `*`, or the request's value with credentials.
    Any,
    /// The configured list.
    List(Box<[u8]>),
}

impl Allow {
    fn compile(value: &str) -> Allow {
        match value.trim() {
            "" => Allow::Nothing,
            "*" => Allow::Any,
            v => Allow::List(v.as_bytes().into()),
        }
    }

    /// The line's value for a preflight asking for `requested`.
    fn value<'a>(&'a self, requested: Option<&'a [u8]>, credentials: bool) -> Option<&'a [u8]> {
        let requested = requested?;
        match self {
            Allow::Nothing => None,
            Allow::Any if credentials => Some(requested),
            Allow::Any => Some(b"*"),
            Allow::List(v) => Some(v),
        }
    }
}

/// What a Fetch preflight adds to the common lines.
#[derive(Debug)]
struct Preflight {
    methods: Allow,
    headers: Allow,
    /// `Access-Control-Max-Age: N\r\n`.
    max_age: Box<[u8]>,
}

/// A compiled CORS policy.
#[derive(Debug)]
pub struct Cors {
    /// `None`: any origin.
    origins: Option<Box<[Origin]>>,
    how: CorsOriginMatch,
    credentials: bool,
    /// The lines every CORS answer carries after ACAO (under Fetch, only
    /// the expose line).
    lines: Box<[u8]>,
    /// Fetch only: the preflight's own lines.
    fetch: Option<Box<Preflight>>,
}

/// What the response of one request gets: the `Access-Control-Allow-Origin` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// `*`.
    Any,
    /// The request's Origin, echoed.
    Echo(Box<[u8]>),
}

/// The CORS request headers a preflight is judged by.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    /// `Origin`.
    pub origin: Option<&'a [u8]>,
    /// `Access-Control-Request-Method`.
    pub method: Option<&'a [u8]>,
    /// `Access-Control-Request-Headers`.
    pub headers: Option<&'a [u8]>,
}

fn line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

impl Cors {
    /// Compiles the headers once.
    pub fn compile(config: &CorsConfig) -> Cors {
        let how = config.origin_match;
        let origins = match &config.origins {
            CorsOrigins::Any => None,
            CorsOrigins::List(list) => {
                Some(list.iter().filter_map(|o| Origin::parse(o, how)).collect())
            }
        };
        let mut lines = Vec::new();
        let max_age = config.max_age.to_string();
        let fetch = match config.answers {
            CorsAnswers::Every => {
                line(
                    &mut lines,
                    "Access-Control-Allow-Methods",
                    config.methods.as_bytes(),
                );
                line(
                    &mut lines,
                    "Access-Control-Allow-Headers",
                    config.headers.as_bytes(),
                );
                line(&mut lines, "Access-Control-Max-Age", max_age.as_bytes());
                None
            }
            CorsAnswers::Fetch => {
                let mut age = Vec::new();
                line(&mut age, "Access-Control-Max-Age", max_age.as_bytes());
                Some(Box::new(Preflight {
                    methods: Allow::compile(&config.methods),
                    headers: Allow::compile(&config.headers),
                    max_age: age.into(),
                }))
            }
        };
        if let Some(expose) = &config.expose_headers {
            line(
                &mut lines,
                "Access-Control-Expose-Headers",
                expose.as_bytes(),
            );
        }
        Cors {
            origins,
            how,
            credentials: config.credentials,
            lines: lines.into(),
            fetch,
        }
    }

    /// Whether the request's `origin` gets CORS headers, and which ACAO.
    pub fn allow(&self, origin: Option<&[u8]>) -> Option<Allowed> {
        match (&self.origins, origin) {
            // `*` with credentials would be refused by the browser.
            (None, Some(o)) if self.credentials => Some(Allowed::Echo(o.into())),
            (None, _) => Some(Allowed::Any),
            (Some(list), Some(o)) => {
                let them =
                    Parts::split(o).filter(|p| !p.host.is_empty() && !p.host.contains(&b'*'))?;
                list.iter()
                    .any(|allowed| allowed.matches(them, self.how))
                    .then(|| Allowed::Echo(o.into()))
            }
            (Some(_), None) => None,
        }
    }

    /// The header lines of rauta's 204 answer when an OPTIONS request is a
    /// preflight (`allowed` is [`Cors::allow`]'s verdict on its Origin);
    /// `None`: it is not one, and is proxied.
    pub fn preflight(&self, allowed: Option<&Allowed>, asked: &Asked<'_>) -> Option<Vec<u8>> {
        let Some(fetch) = &self.fetch else {
            let mut out = Vec::with_capacity(256);
            self.write(allowed?, &mut out);
            return Some(out);
        };
        asked.origin?;
        asked.method?;
        let mut out = Vec::with_capacity(256);
        let Some(allowed) = allowed else {
            // Answered, without CORS lines: the browser refuses the request.
            return Some(out);
        };
        self.write(allowed, &mut out);
        if let Some(v) = fetch.methods.value(asked.method, self.credentials) {
            line(&mut out, "Access-Control-Allow-Methods", v);
        }
        if let Some(v) = fetch.headers.value(asked.headers, self.credentials) {
            line(&mut out, "Access-Control-Allow-Headers", v);
        }
        out.extend_from_slice(&fetch.max_age);
        Some(out)
    }

    /// Appends the CORS header lines every answer for `allowed` carries.
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
            origin_match: CorsOriginMatch::OneLabel,
            methods: "GET, POST".into(),
            headers: "Content-Type".into(),
            expose_headers: None,
            credentials,
            max_age: 60,
            answers: CorsAnswers::Every,
        })
    }

    fn gateway(origins: &[&str], methods: &str, headers: &str, credentials: bool) -> Cors {
        let origins = match origins {
            ["*"] => CorsOrigins::Any,
            list => CorsOrigins::List(list.iter().map(|o| o.to_string()).collect()),
        };
        Cors::compile(&CorsConfig {
            origins,
            origin_match: CorsOriginMatch::Greedy,
            methods: methods.into(),
            headers: headers.into(),
            expose_headers: Some("x-header-3, x-header-4".into()),
            credentials,
            max_age: 5,
            answers: CorsAnswers::Fetch,
        })
    }

    fn text(out: &[u8]) -> String {
        String::from_utf8(out.to_vec()).expect("ascii")
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
        assert!(
            !allowed("https://app.example.com:443"),
            "ports compare as written"
        );
        assert!(allowed("http://a.example.org:8080"));
        assert!(!allowed("http://a.b.example.org:8080"), "one label only");
        assert!(!allowed("http://example.org:8080"));
        assert!(!allowed("http://*.example.org:8080"));
        assert!(c.allow(None).is_none());
    }

    #[test]
    fn gateway_origins_match_greedily_to_the_left_and_default_ports_equal_none() {
        let c = gateway(
            &[
                "https://www.foo.com",
                "https://*.bar.com",
                "http://*.baz.com:8080",
                "http://plain.test:80",
            ],
            "GET",
            "",
            false,
        );
        let allowed = |o: &str| c.allow(Some(o.as_bytes())).is_some();
        assert!(allowed("https://www.foo.com"));
        assert!(allowed("https://www.foo.com:443"), "https default port");
        assert!(!allowed("https://www.foo.com:8443"));
        assert!(!allowed("http://www.foo.com"), "scheme");
        assert!(!allowed("https://foo.com"));
        assert!(allowed("https://www.bar.com"));
        assert!(allowed("https://xpto.www.bar.com"), "any number of labels");
        assert!(allowed("HTTPS://A.B.C.Bar.Com:443"));
        assert!(!allowed("https://bar.com"), "the wildcard takes a label");
        assert!(!allowed("https://xbar.com"), "labels, not characters");
        assert!(!allowed("https://.bar.com"));
        assert!(!allowed("https://*.bar.com"), "a wildcard is not an origin");
        assert!(allowed("http://a.b.baz.com:8080"));
        assert!(!allowed("http://a.baz.com"), "the listed port");
        assert!(allowed("http://plain.test"), "http default port");
        assert!(allowed("http://plain.test:80"));
        assert!(!allowed("https://foobar.com"));
        assert!(!allowed("null"));
        assert!(c.allow(None).is_none());

        let any_host = gateway(&["https://*"], "GET", "", false);
        assert!(any_host
            .allow(Some(b"https://anything.example:443"))
            .is_some());
        assert!(any_host.allow(Some(b"https://x")).is_some());
        assert!(any_host.allow(Some(b"http://x")).is_none(), "scheme");
        assert!(any_host.allow(Some(b"https://x:8443")).is_none(), "port");
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
        let text = text(&out);
        assert!(text.starts_with("Access-Control-Allow-Origin: *\r\n"));
        assert!(!text.contains("Credentials"), "never * with credentials");
        let open = cors(CorsOrigins::Any, false);
        assert_eq!(open.allow(Some(b"https://x.test")), Some(Allowed::Any));
    }

    #[test]
    fn ingress_nginx_preflights_are_any_options_from_an_allowed_origin() {
        let c = cors(CorsOrigins::List(vec!["https://a.test".into()]), false);
        let asked = Asked {
            origin: Some(b"https://a.test"),
            ..Asked::default()
        };
        let allowed = c.allow(asked.origin);
        let out = c.preflight(allowed.as_ref(), &asked).expect("a preflight");
        let t = text(&out);
        assert!(
            t.contains("Access-Control-Allow-Methods: GET, POST\r\n"),
            "{t}"
        );
        assert!(
            t.contains("Access-Control-Allow-Headers: Content-Type\r\n"),
            "{t}"
        );
        assert!(t.contains("Access-Control-Max-Age: 60\r\n"), "{t}");
        assert!(c.preflight(None, &asked).is_none(), "a stranger is proxied");
    }

    #[test]
    fn fetch_preflights_send_what_was_asked_and_echo_wildcards_with_credentials() {
        let asked = Asked {
            origin: Some(b"https://other.foo.com"),
            method: Some(b"PUT"),
            headers: Some(b"x-header-1, x-header-2"),
        };
        let answer = |c: &Cors, asked: &Asked<'_>| {
            c.preflight(c.allow(asked.origin).as_ref(), asked)
                .map(|out| text(&out))
        };
        let with = gateway(&["*"], "*", "*", true);
        let t = answer(&with, &asked).expect("a preflight");
        assert!(t.contains("Access-Control-Allow-Origin: https://other.foo.com\r\n"));
        assert!(t.contains("Access-Control-Allow-Credentials: true\r\n"));
        assert!(t.contains("Access-Control-Allow-Methods: PUT\r\n"), "{t}");
        assert!(t.contains("Access-Control-Allow-Headers: x-header-1, x-header-2\r\n"));
        assert!(t.contains("Access-Control-Max-Age: 5\r\n"));
        assert!(t.contains("Access-Control-Expose-Headers: x-header-3, x-header-4\r\n"));
        assert!(!t.contains(": *"), "never * with credentials: {t}");

        let without = gateway(&["*"], "*", "*", false);
        let t = answer(&without, &asked).expect("a preflight");
        assert!(t.contains("Access-Control-Allow-Origin: *\r\n"));
        assert!(t.contains("Access-Control-Allow-Methods: *\r\n"));
        assert!(t.contains("Access-Control-Allow-Headers: *\r\n"));
        assert!(!t.contains("Credentials"));

        let no_headers = Asked {
            headers: None,
            ..asked
        };
        let t = answer(&without, &no_headers).expect("a preflight");
        assert!(t.contains("Access-Control-Allow-Methods"));
        assert!(
            !t.contains("Access-Control-Allow-Headers"),
            "not asked: {t}"
        );

        let not_a_preflight = Asked {
            method: None,
            ..asked
        };
        assert_eq!(answer(&without, &not_a_preflight), None, "proxied");

        let listed = gateway(&["https://www.foo.com"], "GET, OPTIONS", "", true);
        let t = answer(&listed, &asked).expect("answered");
        assert_eq!(t, "", "a refused origin: 204 without CORS lines");

        let mut out = Vec::new();
        with.write(&Allowed::Echo(b"https://o.test"[..].into()), &mut out);
        let t = text(&out);
        assert!(t.contains("Access-Control-Expose-Headers"));
        assert!(
            !t.contains("Methods") && !t.contains("Max-Age"),
            "a simple request gets no preflight lines: {t}"
        );
    }
}
