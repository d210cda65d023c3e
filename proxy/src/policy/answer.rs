//! Answers a route's policies give instead of proxying: written in the
//! one answer place ([`crate::error::write_proxy_answer`]).

use std::io::Write;

/// A request a policy answered itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAnswer {
    /// A redirect (`permanent-redirect`, `temporal-redirect`, `app-root`,
    /// `from-to-www-redirect`).
    Redirect {
        /// 300-308.
        code: u16,
        /// The `Location`.
        location: String,
    },
    /// The client's IP is not allowed (403).
    Forbidden,
    /// A broken security annotation closes the route (503), with why.
    Denied,
    /// A CORS preflight, answered 204 with these header lines.
    Preflight(Vec<u8>),
    /// The auth service said 401; these header lines (its
    /// `WWW-Authenticate`) go with the answer.
    Unauthorized(Vec<u8>),
    /// The auth service said 401 and the route has `auth-signin`: a 302
    /// there, with the auth service's `Set-Cookie` lines.
    SignIn {
        /// The signin URL with `rd=`.
        location: String,
        /// `Set-Cookie: ...\r\n` lines.
        cookies: Vec<u8>,
    },
    /// The auth service failed, answered something other than 2xx, 401 or
    /// 403, or did not answer in time: closed, 500 (as ingress-nginx).
    AuthFailed,
    /// A rate or connection limit rejected the client (503 unless set).
    Limited(u16),
    /// The weighted share that took the request names a backend that could
    /// not be resolved, or every weight is 0 (500, as HTTPRoute asks).
    InvalidBackend,
}

impl PolicyAnswer {
    /// The status the client receives.
    pub fn status(&self) -> u16 {
        match self {
            PolicyAnswer::Redirect { code, .. } => *code,
            PolicyAnswer::Forbidden => 403,
            PolicyAnswer::Denied => 503,
            PolicyAnswer::Preflight(_) => 204,
            PolicyAnswer::Unauthorized(_) => 401,
            PolicyAnswer::SignIn { .. } => 302,
            PolicyAnswer::AuthFailed => 500,
            PolicyAnswer::Limited(status) => *status,
            PolicyAnswer::InvalidBackend => 500,
        }
    }

    /// True for answers that are the route working as configured, not a
    /// refusal: they are not counted as errors.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            PolicyAnswer::Redirect { .. }
                | PolicyAnswer::Preflight(_)
                | PolicyAnswer::SignIn { .. }
        )
    }

    /// Writes the whole answer (head and body) into `out`.
    pub fn write(&self, out: &mut Vec<u8>, close: bool) {
        let status = self.status();
        out.clear();
        let _ = write!(out, "HTTP/1.1 {status} {}\r\n", crate::http::reason(status));
        let body: &[u8] = match self {
            PolicyAnswer::Redirect { location, .. } => {
                out.extend_from_slice(b"Location: ");
                out.extend_from_slice(location.as_bytes());
                out.extend_from_slice(b"\r\n");
                b""
            }
            PolicyAnswer::Preflight(headers) => {
                out.extend_from_slice(headers);
                out.extend_from_slice(b"Content-Type: text/plain charset=UTF-8\r\n");
                b""
            }
            PolicyAnswer::SignIn { location, cookies } => {
                out.extend_from_slice(b"Location: ");
                out.extend_from_slice(location.as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(cookies);
                b""
            }
            PolicyAnswer::Unauthorized(headers) => {
                out.extend_from_slice(headers);
                b"401 Unauthorized\n"
            }
            PolicyAnswer::AuthFailed => {
                b"500 Internal Server Error: the authentication service failed\n"
            }
            PolicyAnswer::Forbidden => b"403 Forbidden\n",
            PolicyAnswer::Limited(_) => b"the client's request limit is reached; try again later\n",
            PolicyAnswer::Denied => {
                b"503 Service Unavailable: this route's configuration is invalid\n"
            }
            PolicyAnswer::InvalidBackend => {
                b"500 Internal Server Error: this route's backend reference is invalid\n"
            }
        };
        if !body.is_empty() {
            out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
        }
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
    }
}
