//! External authentication (`auth-url`): the subrequest a request of the
//! route first sends to the auth service, and what its answer means.
//! Sending it is a step of the exchange (`exchange::auth`); this file
//! holds the request it sends and the decision on the answer.

use super::{PolicyAnswer, Request, State};
use crate::balance::Backend;
use crate::http::response::ResponseHead;
use rauta_shared::config::{BackendConfig, LbPolicy, ServicePort};
use rauta_shared::policy::{AuthTarget, ExtAuth};

/// Where the subrequest goes.
#[derive(Debug)]
pub enum Target {
    /// A backend of the table (a Service the auth URL names).
    Backend(usize),
    /// The URL's IP literal, as a one-endpoint backend of its own.
    Addr(Backend),
}

impl Target {
    /// `target` compiled; `name` and `host` name an address's backend.
    pub fn compile(target: &AuthTarget, name: &str, host: &str) -> Target {
        match target {
            AuthTarget::Backend(i) => Target::Backend(*i),
            AuthTarget::Addr(addr) => Target::Addr(Backend::compile(&BackendConfig {
                name: name.to_string(),
                namespace: String::new(),
                service: host.to_string(),
                port: ServicePort::Number(addr.port()),
                endpoints: vec![rauta_shared::config::EndpointConfig {
                    addr: *addr,
                    weight: 1,
                    ready: true,
                    target: None,
                }],
                policy: LbPolicy::RoundRobin,
                protocol: Default::default(),
                tls: None,
            })),
        }
    }
}

/// A route's auth service, compiled.
#[derive(Debug)]
pub struct Auth {
    method: Box<str>,
    /// `auth-method` was set: ingress-nginx then also sends X-Original-URI and X-Scheme.
    method_set: bool,
    host: Box<str>,
    path: Box<str>,
    signin: Option<Box<str>>,
    copy: Box<[Box<str>]>,
    target: Target,
}

/// One request's subrequest, prepared in the request phase (the client's
/// head is gone by the time it is sent).
#[derive(Debug)]
pub struct Call {
    /// The whole subrequest head.
    pub head: Vec<u8>,
    /// Where a 401 redirects, expanded for this request.
    pub signin: Option<String>,
    /// The subrequest is a HEAD (its answer has no body).
    pub head_request: bool,
}

/// Client headers the subrequest never copies: hop-by-hop, framing (it
/// has no body), and the ones it sets itself.
const NOT_COPIED: [&str; 17] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
    "x-original-url",
    "x-original-method",
    "x-auth-request-redirect",
    "x-sent-from",
    "x-real-ip",
    "x-forwarded-for",
    "x-forwarded-proto",
];

impl Auth {
    /// Compiles the route's [`ExtAuth`].
    pub fn compile(a: &ExtAuth) -> Auth {
        let target = Target::compile(&a.target, &a.url, &a.host);
        Auth {
            method_set: a.method != "GET",
            method: a.method.as_str().into(),
            host: a.host.as_str().into(),
            path: a.path.as_str().into(),
            signin: a.signin.as_deref().map(Into::into),
            copy: a
                .response_headers
                .iter()
                .map(|h| h.as_str().into())
                .collect(),
            target,
        }
    }

    /// Where the subrequest goes.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The (lower-case) headers copied from the auth answer: the client's
    /// own of these names are never sent upstream.
    pub fn copied(&self) -> &[Box<str>] {
        &self.copy
    }

    /// The subrequest for `req`: the client's headers, then what
    /// ingress-nginx adds; `client_ip` and `request_id` as the upstream
    /// request carries them.
    pub fn call(&self, req: &Request<'_, '_, '_>, client_ip: &[u8], request_id: &[u8]) -> Call {
        let head = req.head;
        let mut out = Vec::with_capacity(512 + head.len);
        let line = |out: &mut Vec<u8>, name: &[u8], parts: &[&[u8]]| {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            for p in parts {
                out.extend_from_slice(p);
            }
            out.extend_from_slice(b"\r\n");
        };
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        line(&mut out, b"Host", &[self.host.as_bytes()]);
        let mut id_sent = false;
        for h in head.headers {
            let name = h.name;
            if NOT_COPIED.iter().any(|n| name.eq_ignore_ascii_case(n))
                || head.connection.names(name)
            {
                continue;
            }
            if name.eq_ignore_ascii_case("x-request-id") {
                if h.value.is_empty() {
                    continue;
                }
                id_sent = true;
            }
            line(&mut out, name.as_bytes(), &[h.value]);
        }
        let uri = head.origin_target.as_bytes();
        let scheme = req.scheme().as_bytes();
        line(
            &mut out,
            b"X-Original-URL",
            &[scheme, b"://", req.http_host().as_bytes(), uri],
        );
        line(&mut out, b"X-Original-Method", &[head.method.as_bytes()]);
        if self.method_set {
            line(&mut out, b"X-Original-URI", &[uri]);
            line(&mut out, b"X-Scheme", &[scheme]);
        }
        line(&mut out, b"X-Auth-Request-Redirect", &[uri]);
        line(&mut out, b"X-Sent-From", &[b"nginx-ingress-controller"]);
        line(&mut out, b"X-Real-IP", &[client_ip]);
        line(&mut out, b"X-Forwarded-For", &[client_ip]);
        if !id_sent {
            line(&mut out, b"X-Request-ID", &[request_id]);
        }
        out.extend_from_slice(b"\r\n");
        Call {
            head: out,
            signin: self.signin.as_deref().map(|t| super::expand(t, req)),
            head_request: &*self.method == "HEAD",
        }
    }

    /// What the auth service's answer means: 2xx lets the request through,
    /// with the named headers added to the upstream head (`upstream`, a
    /// complete head) and the `Set-Cookie` lines kept for the client's
    /// response; 401 is answered 401 (or the signin redirect), 403 is 403,
    /// and anything else 500.
    pub fn decide(
        &self,
        resp: &ResponseHead<'_, '_>,
        call: &mut Call,
        upstream: &mut Vec<u8>,
        state: &mut State,
    ) -> Result<(), PolicyAnswer> {
        let lines = |pick: &dyn Fn(&str) -> bool| {
            let mut out = Vec::new();
            for h in resp.headers.iter().filter(|h| pick(h.name)) {
                out.extend_from_slice(h.name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(h.value);
                out.extend_from_slice(b"\r\n");
            }
            out
        };
        let cookies = || lines(&|n| n.eq_ignore_ascii_case("set-cookie"));
        match resp.status {
            200..=299 => {
                let copied = lines(&|n| self.copy.iter().any(|c| n.eq_ignore_ascii_case(c)));
                if !copied.is_empty() && upstream.ends_with(b"\r\n\r\n") {
                    let at = upstream.len() - 2;
                    upstream.splice(at..at, copied);
                }
                state.auth_cookies = cookies();
                Ok(())
            }
            401 => Err(match call.signin.take() {
                Some(location) => PolicyAnswer::SignIn {
                    location,
                    cookies: cookies(),
                },
                None => PolicyAnswer::Unauthorized(lines(&|n| {
                    n.eq_ignore_ascii_case("www-authenticate")
                })),
            }),
            403 => Err(PolicyAnswer::Forbidden),
            _ => Err(PolicyAnswer::AuthFailed),
        }
    }
}

/// Whether the client's response gets the auth `Set-Cookie`: nginx's
/// `add_header` applies to these statuses only.
pub fn relays_cookies(status: u16) -> bool {
    matches!(
        status,
        200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
    )
}

/// `$escaped_request_uri`: every byte but unreserved ones percent-encoded.
pub fn escape_uri(uri: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in uri.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_ngx_escape_uri() {
        let mut s = String::new();
        escape_uri("/a b?x=1&y=~z", &mut s);
        assert_eq!(s, "%2Fa%20b%3Fx%3D1%26y%3D~z");
    }

    #[test]
    fn cookies_go_with_success_and_redirect_statuses() {
        assert!(relays_cookies(200) && relays_cookies(302));
        assert!(!relays_cookies(503) && !relays_cookies(404));
    }
}
