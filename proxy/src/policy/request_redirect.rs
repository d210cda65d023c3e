//! HTTPRoute `RequestRedirect`: rauta answers with a `Location` that is
//! the request's URL with the filter's parts put in:
//! `scheme://host[:port]path[?query]`. Without a port in the filter, a
//! scheme in it brings its well-known port (http 80, https 443), else the
//! port the request arrived on (the listener socket's local port) stays.
//! Port 80 with http and 443 with https are not written.

use super::path_rewrite::PathRewrite;
use super::CompileError;
use rauta_shared::config::PathType;
use rauta_shared::policy::RequestRedirect as Config;

/// A compiled [`Config`].
#[derive(Debug)]
pub struct RequestRedirect {
    scheme: Option<Box<str>>,
    hostname: Option<Box<str>>,
    port: Option<u16>,
    path: Option<PathRewrite>,
    /// The status of the answer.
    pub code: u16,
}

/// The request URL a location is built from.
#[derive(Debug, Clone, Copy)]
pub struct Url<'a> {
    /// `http` or `https`: how the client reached rauta.
    pub scheme: &'a str,
    /// The request host, normalised (lower-case, without port).
    pub host: &'a str,
    /// The local port the request arrived on.
    pub port: u16,
    /// The path, without query.
    pub path: &'a str,
    /// The query, without `?`.
    pub query: Option<&'a str>,
}

impl RequestRedirect {
    /// Compiles `r` for a rule with `path` of `path_type`.
    pub fn compile(
        r: &Config,
        path: &str,
        path_type: PathType,
    ) -> Result<RequestRedirect, CompileError> {
        Ok(RequestRedirect {
            scheme: r.scheme.as_deref().map(Into::into),
            hostname: r.hostname.as_deref().map(Into::into),
            port: r.port,
            path: match &r.path {
                Some(p) => Some(PathRewrite::compile(p, path, path_type)?),
                None => None,
            },
            code: r.code,
        })
    }

    /// The `Location` for a request to `url`.
    pub fn location(&self, url: &Url<'_>) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(url.scheme);
        let port = match (self.port, &self.scheme) {
            (Some(port), _) => port,
            (None, Some(_)) => well_known_port(scheme).unwrap_or(url.port),
            (None, None) => url.port,
        };
        let host = self.hostname.as_deref().unwrap_or(url.host);
        let mut out = String::with_capacity(16 + host.len() + url.path.len());
        out.push_str(scheme);
        out.push_str("://");
        out.push_str(host);
        if well_known_port(scheme) != Some(port) {
            out.push(':');
            out.push_str(&port.to_string());
        }
        match &self.path {
            Some(rewrite) => rewrite.write(url.path, &mut out),
            None => out.push_str(url.path),
        }
        if let Some(query) = url.query.filter(|q| !q.is_empty()) {
            out.push('?');
            out.push_str(query);
        }
        out
    }
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rauta_shared::policy::PathRewrite as Path;

    /// A rule (PathPrefix `rule`) with a redirect of these parts.
    struct Case {
        rule: &'static str,
        scheme: Option<&'static str>,
        hostname: Option<&'static str>,
        port: Option<u16>,
        path: Option<Path>,
        /// The request: scheme, listener port, path and query.
        request: (&'static str, u16, &'static str, Option<&'static str>),
        want: &'static str,
    }

    fn case(
        rule: &'static str,
        request: (&'static str, u16, &'static str, Option<&'static str>),
        want: &'static str,
    ) -> Case {
        Case {
            rule,
            scheme: None,
            hostname: None,
            port: None,
            path: None,
            request,
            want,
        }
    }

    fn run(cases: &[Case]) {
        for c in cases {
            let config = Config {
                scheme: c.scheme.map(Into::into),
                hostname: c.hostname.map(Into::into),
                port: c.port,
                path: c.path.clone(),
                code: 302,
            };
            let r = RequestRedirect::compile(&config, c.rule, PathType::Prefix).expect("compiles");
            let (scheme, port, path, query) = c.request;
            let url = Url {
                scheme,
                host: "gw.example",
                port,
                path,
                query,
            };
            assert_eq!(
                r.location(&url),
                c.want,
                "rule {} request {:?}",
                c.rule,
                c.request
            );
        }
    }

    /// A request without query to the default Gateway's listener, port 80.
    fn http80(path: &'static str) -> (&'static str, u16, &'static str, Option<&'static str>) {
        ("http", 80, path, None)
    }

    /// httproute-redirect-path, -host-and-status, -scheme and -port on the
    /// default Gateway (an HTTP listener on port 80).
    #[test]
    fn the_conformance_redirects() {
        let prefix = |to: &str| Some(Path::Prefix(to.into()));
        let full = |to: &str| Some(Path::Full(to.into()));
        let example = Some("example.org");
        run(&[
            // redirect-path
            Case {
                path: prefix("/replacement-prefix"),
                ..case(
                    "/original-prefix",
                    http80("/original-prefix/lemon"),
                    "http://gw.example/replacement-prefix/lemon",
                )
            },
            Case {
                path: full("/full-path-replacement"),
                ..case(
                    "/full",
                    http80("/full/path/original"),
                    "http://gw.example/full-path-replacement",
                )
            },
            Case {
                hostname: example,
                path: prefix("/replacement-prefix"),
                ..case(
                    "/path-and-host",
                    http80("/path-and-host"),
                    "http://example.org/replacement-prefix",
                )
            },
            Case {
                path: prefix("/replacement-prefix"),
                ..case(
                    "/path-and-status",
                    http80("/path-and-status"),
                    "http://gw.example/replacement-prefix",
                )
            },
            Case {
                hostname: example,
                path: full("/replacement-full"),
                ..case(
                    "/full-path-and-host",
                    http80("/full-path-and-host"),
                    "http://example.org/replacement-full",
                )
            },
            Case {
                path: full("/replacement-full"),
                ..case(
                    "/full-path-and-status",
                    http80("/full-path-and-status"),
                    "http://gw.example/replacement-full",
                )
            },
            // redirect-host-and-status
            Case {
                hostname: example,
                ..case(
                    "/hostname-redirect",
                    http80("/hostname-redirect"),
                    "http://example.org/hostname-redirect",
                )
            },
            Case {
                hostname: example,
                ..case(
                    "/host-and-status",
                    http80("/host-and-status"),
                    "http://example.org/host-and-status",
                )
            },
            // redirect-scheme
            Case {
                scheme: Some("https"),
                ..case("/scheme", http80("/scheme"), "https://gw.example/scheme")
            },
            Case {
                scheme: Some("https"),
                hostname: example,
                ..case(
                    "/scheme-and-host",
                    http80("/scheme-and-host"),
                    "https://example.org/scheme-and-host",
                )
            },
            // redirect-port
            Case {
                port: Some(8083),
                ..case("/port", http80("/port"), "http://gw.example:8083/port")
            },
            Case {
                port: Some(8083),
                hostname: example,
                ..case(
                    "/port-and-host",
                    http80("/port-and-host"),
                    "http://example.org:8083/port-and-host",
                )
            },
        ]);
    }

    /// httproute-redirect-port-and-scheme: the HTTP listeners on 80 and
    /// 8080 and the HTTPS listener on 443, each with hostname example.org.
    #[test]
    fn the_conformance_ports_and_schemes() {
        let at = |scheme: Option<&'static str>, port: Option<u16>, request, want| Case {
            scheme,
            port,
            hostname: Some("example.org"),
            ..case("/", request, want)
        };
        let on = |scheme, listener| move |path| (scheme, listener, path, None);
        let (l80, l8080, l443) = (on("http", 80), on("http", 8080), on("https", 443));
        run(&[
            at(
                None,
                None,
                l80("/scheme-nil-and-port-nil"),
                "http://example.org/scheme-nil-and-port-nil",
            ),
            at(
                None,
                Some(80),
                l80("/scheme-nil-and-port-80"),
                "http://example.org/scheme-nil-and-port-80",
            ),
            at(
                None,
                Some(8080),
                l80("/scheme-nil-and-port-8080"),
                "http://example.org:8080/scheme-nil-and-port-8080",
            ),
            at(
                Some("https"),
                None,
                l80("/scheme-https-and-port-nil"),
                "https://example.org/scheme-https-and-port-nil",
            ),
            at(
                Some("https"),
                Some(443),
                l80("/scheme-https-and-port-443"),
                "https://example.org/scheme-https-and-port-443",
            ),
            at(
                Some("https"),
                Some(8443),
                l80("/scheme-https-and-port-8443"),
                "https://example.org:8443/scheme-https-and-port-8443",
            ),
            at(
                None,
                None,
                l8080("/scheme-nil-and-port-nil"),
                "http://example.org:8080/scheme-nil-and-port-nil",
            ),
            at(
                None,
                Some(80),
                l8080("/scheme-nil-and-port-80"),
                "http://example.org/scheme-nil-and-port-80",
            ),
            at(
                Some("https"),
                None,
                l8080("/scheme-https-and-port-nil"),
                "https://example.org/scheme-https-and-port-nil",
            ),
            at(
                None,
                None,
                l443("/scheme-nil-and-port-nil"),
                "https://example.org/scheme-nil-and-port-nil",
            ),
            at(
                None,
                Some(443),
                l443("/scheme-nil-and-port-443"),
                "https://example.org/scheme-nil-and-port-443",
            ),
            at(
                None,
                Some(8443),
                l443("/scheme-nil-and-port-8443"),
                "https://example.org:8443/scheme-nil-and-port-8443",
            ),
            at(
                Some("http"),
                None,
                l443("/scheme-http-and-port-nil"),
                "http://example.org/scheme-http-and-port-nil",
            ),
            at(
                Some("http"),
                Some(80),
                l443("/scheme-http-and-port-80"),
                "http://example.org/scheme-http-and-port-80",
            ),
            at(
                Some("http"),
                Some(8080),
                l443("/scheme-http-and-port-8080"),
                "http://example.org:8080/scheme-http-and-port-8080",
            ),
        ]);
    }

    /// httproute-backend-request-redirect, and the query kept.
    #[test]
    fn paths_with_the_query_kept() {
        run(&[
            Case {
                path: Some(Path::Full("/redirected-full".into())),
                ..case(
                    "/full",
                    ("http", 80, "/full/x", Some("a=1")),
                    "http://gw.example/redirected-full?a=1",
                )
            },
            Case {
                path: Some(Path::Prefix("/redirected-prefix".into())),
                ..case(
                    "/prefix",
                    ("http", 80, "/prefix/x", Some("a=1&b")),
                    "http://gw.example/redirected-prefix/x?a=1&b",
                )
            },
            case(
                "/",
                ("https", 8443, "/keep", Some("")),
                "https://gw.example:8443/keep",
            ),
        ]);
    }
}
