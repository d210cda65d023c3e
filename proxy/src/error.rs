//! Every way an exchange can fail (or be answered by the proxy itself, as
//! the HTTPS redirect is), who is at fault, whether a retry is safe, and
//! the one place where such an answer is written.

use crate::http::body::BodyError;
use crate::http::{reason, RequestError};
use crate::policy::PolicyAnswer;
use std::io;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client sent something wrong, too slowly, or went away.
    Downstream,
    /// The backend failed, was slow, or does not exist.
    Upstream,
    /// The proxy itself (configuration, not ready).
    Internal,
}

/// Why an exchange did not complete normally.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request head is unacceptable.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The request body exceeds the configured limit.
    #[error("request body larger than the limit")]
    BodyTooLarge,
    /// The client did not send a complete head in time.
    #[error("client did not send a complete request head in time")]
    ClientTimeout,
    /// The request body could not be read from the client.
    #[error("request body: {0}")]
    ClientBody(BodyError),
    /// The Host header is not a valid host.
    #[error("invalid Host header")]
    BadHost,
    /// No rule and no default backend match.
    #[error("no route for this host and path")]
    NoRoute,
    /// The backend has no endpoint.
    #[error("no endpoint available for the backend")]
    NoEndpoint,
    /// The backend already has as many requests in flight on this shard as
    /// `--backend-max-requests` allows.
    #[error("the backend has too many requests in flight; try again shortly")]
    Overloaded,
    /// No route table has been received yet.
    #[error("no route table loaded yet")]
    NotReady,
    /// No endpoint accepted a connection.
    #[error("connecting to the upstream failed: {0}")]
    Connect(io::Error),
    /// The upstream did not answer in time.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The upstream closed or reset the connection before answering
    /// anything (a pooled connection may have just timed out there).
    #[error("upstream closed the connection before answering: {0}")]
    UpstreamClosed(io::Error),
    /// The upstream connection failed or closed mid-exchange.
    #[error("upstream connection failed: {0}")]
    UpstreamIo(io::Error),
    /// The upstream sent something that is not valid HTTP/1.x.
    #[error("invalid upstream response: {0}")]
    UpstreamProtocol(&'static str),
    /// Not a failure: a plain-HTTP request for a host served over HTTPS
    /// gets a redirect to this location.
    #[error("this host is served over HTTPS: {0}")]
    HttpsRedirect(String),
    /// The upstream answered with a status its route retries
    /// (`proxy-next-upstream: http_502`, ...); produced only when the
    /// retry is taken, so never answered.
    #[error("upstream answered {0}, which the route retries")]
    UpstreamStatus(u16),
    /// A route policy answered the request itself (a redirect, a refusal,
    /// a CORS preflight).
    #[error("answered by the route's policy ({})", .0.status())]
    Policy(PolicyAnswer),
}

impl ProxyError {
    /// The status code the client receives.
    pub fn status(&self) -> u16 {
        match self {
            ProxyError::Request(RequestError::Bad(_)) | ProxyError::BadHost => 400,
            ProxyError::Request(RequestError::HeadTooLarge) => 431,
            ProxyError::Request(RequestError::Expectation) => 417,
            ProxyError::Request(RequestError::NotImplemented(_)) => 501,
            ProxyError::Request(RequestError::Method) => 405,
            ProxyError::BodyTooLarge | ProxyError::ClientBody(BodyError::TooLarge) => 413,
            ProxyError::ClientTimeout => 408,
            ProxyError::ClientBody(BodyError::Framing(_)) => 400,
            ProxyError::ClientBody(_) => 400,
            ProxyError::NoRoute => 404,
            ProxyError::NoEndpoint | ProxyError::NotReady | ProxyError::Overloaded => 503,
            ProxyError::Connect(_)
            | ProxyError::UpstreamClosed(_)
            | ProxyError::UpstreamIo(_)
            | ProxyError::UpstreamProtocol(_) => 502,
            ProxyError::UpstreamTimeout => 504,
            ProxyError::UpstreamStatus(status) => *status,
            ProxyError::HttpsRedirect(_) => 308,
            ProxyError::Policy(answer) => answer.status(),
        }
    }

    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            ProxyError::Request(_)
            | ProxyError::BodyTooLarge
            | ProxyError::ClientTimeout
            | ProxyError::ClientBody(_)
            | ProxyError::BadHost
            | ProxyError::HttpsRedirect(_) => Fault::Downstream,
            ProxyError::Policy(PolicyAnswer::Denied | PolicyAnswer::InvalidBackend) => {
                Fault::Internal
            }
            ProxyError::Policy(PolicyAnswer::AuthFailed) => Fault::Upstream,
            ProxyError::Policy(_) => Fault::Downstream,
            ProxyError::NoRoute | ProxyError::NotReady => Fault::Internal,
            ProxyError::NoEndpoint
            | ProxyError::Overloaded
            | ProxyError::Connect(_)
            | ProxyError::UpstreamTimeout
            | ProxyError::UpstreamClosed(_)
            | ProxyError::UpstreamIo(_)
            | ProxyError::UpstreamProtocol(_)
            | ProxyError::UpstreamStatus(_) => Fault::Upstream,
        }
    }

    /// Whether the endpoint tried is to blame (counted toward its
    /// ejection): it refused, reset, timed out, spoke garbage or answered
    /// 502, 503 or 504. A pooled connection (`reused`) that had closed is not: idle
    /// connections close.
    pub fn blames_endpoint(&self, reused: bool) -> bool {
        match self {
            ProxyError::Connect(_)
            | ProxyError::UpstreamTimeout
            | ProxyError::UpstreamIo(_)
            | ProxyError::UpstreamProtocol(_) => true,
            ProxyError::UpstreamClosed(_) => !reused,
            ProxyError::UpstreamStatus(status) => (502..=504).contains(status),
            _ => false,
        }
    }

    /// The cause it is counted under in `rauta_errors_total`; `None` for
    /// answers that are not failures (the HTTPS redirect).
    pub fn cause(&self) -> Option<crate::metrics::Cause> {
        use crate::metrics::Cause;
        Some(match self {
            ProxyError::NoRoute => Cause::NoRoute,
            ProxyError::NoEndpoint => Cause::NoEndpoint,
            ProxyError::Overloaded => Cause::Overloaded,
            ProxyError::NotReady => Cause::NotReady,
            ProxyError::Connect(_) => Cause::ConnectFailure,
            ProxyError::UpstreamTimeout => Cause::UpstreamTimeout,
            ProxyError::UpstreamClosed(_) | ProxyError::UpstreamIo(_) => Cause::UpstreamReset,
            ProxyError::UpstreamProtocol(_) => Cause::UpstreamProtocol,
            ProxyError::ClientTimeout | ProxyError::ClientBody(BodyError::Read(_)) => {
                Cause::ClientTimeout
            }
            ProxyError::Request(_)
            | ProxyError::BodyTooLarge
            | ProxyError::ClientBody(_)
            | ProxyError::BadHost => Cause::BadRequest,
            ProxyError::HttpsRedirect(_) | ProxyError::UpstreamStatus(_) => return None,
            ProxyError::Policy(answer) if answer.is_success() => return None,
            ProxyError::Policy(PolicyAnswer::AuthFailed) => Cause::UpstreamProtocol,
            ProxyError::Policy(PolicyAnswer::Denied | PolicyAnswer::InvalidBackend) => {
                Cause::InvalidRoute
            }
            ProxyError::Policy(_) => Cause::Refused,
        })
    }

    /// How the exchange may be tried again after failing this way; the
    /// route's policy and the attempt decide the rest (`exchange::forward`).
    pub fn retry(&self) -> Retry {
        match self {
            ProxyError::Connect(e) if e.kind() == io::ErrorKind::TimedOut => {
                Retry::NotSent(Why::Timeout)
            }
            ProxyError::Connect(_) => Retry::NotSent(Why::Error),
            ProxyError::UpstreamClosed(_) => Retry::IfReused,
            ProxyError::UpstreamIo(_) => Retry::Sent(Why::Error),
            ProxyError::UpstreamTimeout => Retry::Sent(Why::Timeout),
            ProxyError::UpstreamProtocol(_) => Retry::Sent(Why::InvalidHeader),
            ProxyError::UpstreamStatus(status) => Retry::Sent(Why::Status(*status)),
            _ => Retry::Never,
        }
    }
}

/// Why an attempt failed, in `proxy-next-upstream`'s terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A connect failure, or the connection failed before the response head.
    Error,
    /// A connect, write or response-head read timed out.
    Timeout,
    /// The response head is not valid HTTP.
    InvalidHeader,
    /// The response head has this status.
    Status(u16),
}

/// The `reason` labels of `rauta_upstream_retries_total` and the access
/// log's `retries`, in [`Retry::reason`] order: a failed connect is told
/// apart from a request that reached the backend.
pub const RETRY_REASONS: [&str; 13] = [
    "connect_error",
    "connect_timeout",
    "error",
    "timeout",
    "invalid_header",
    "http_403",
    "http_404",
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "http_other",
];

/// Whether a failed exchange may be tried again (pingora's `RetryType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Nothing reached the upstream (the connect failed): another endpoint
    /// may be tried, with any method and body.
    NotSent(Why),
    /// A connection taken from the pool closed before answering: the
    /// request may be sent again on a new connection if it can be resent
    /// whole (it has no body). On a new connection it is `Sent(Error)`.
    IfReused,
    /// The upstream may have acted on the request: tried again only where
    /// the route's `proxy-next-upstream` says so, for a request that can be
    /// sent again.
    Sent(Why),
    /// Never tried again (the client's doing, or the proxy's own answer).
    Never,
}

impl Retry {
    /// The index in [`RETRY_REASONS`] of a retry taken after this failure.
    pub fn reason(self) -> usize {
        match self {
            Retry::NotSent(Why::Timeout) => 1,
            Retry::NotSent(_) => 0,
            Retry::Sent(Why::Error) | Retry::IfReused | Retry::Never => 2,
            Retry::Sent(Why::Timeout) => 3,
            Retry::Sent(Why::InvalidHeader) => 4,
            Retry::Sent(Why::Status(status)) => match status {
                403 => 5,
                404 => 6,
                429 => 7,
                500 => 8,
                502 => 9,
                503 => 10,
                504 => 11,
                _ => 12,
            },
        }
    }
}

/// Writes the proxy's own answer to `e` into `out`: a redirect with its
/// `Location`, or a short plain-text error.
pub fn write_proxy_answer(out: &mut Vec<u8>, e: &ProxyError, close: bool) {
    match e {
        ProxyError::HttpsRedirect(location) => write_redirect(out, e.status(), location, close),
        ProxyError::Policy(answer) => answer.write(out, close),
        // The bound is passing: a client that waits a second finds room.
        ProxyError::Overloaded => write_answer_with(out, 503, e, b"Retry-After: 1\r\n", close),
        _ => write_answer(out, e.status(), e, close),
    }
}

/// Writes the proxy's own answer to `e` for a gRPC client, in gRPC's
/// trailers-only form (HTTP 200, the error in `grpc-status` and
/// `grpc-message`), so the client sees a gRPC error rather than a broken
/// call; redirects stay HTTP.
pub fn write_grpc_answer(out: &mut Vec<u8>, e: &ProxyError) {
    use std::io::Write;
    let status = e.status();
    if status < 400 {
        return write_proxy_answer(out, e, false);
    }
    out.clear();
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: {}\r\n",
        grpc_code(status)
    );
    if matches!(e, ProxyError::Overloaded) {
        // gRPC's Retry-After: clients with a retry policy wait this long.
        out.extend_from_slice(b"grpc-retry-pushback-ms: 1000\r\n");
    }
    out.extend_from_slice(b"grpc-message: ");
    // Percent-encoded, as the gRPC wire format wants it.
    let message = format!("{status} {}: {e}", reason(status));
    for b in message.bytes() {
        if (b' '..=b'~').contains(&b) && b != b'%' {
            out.push(b);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
}

/// gRPC's status code for an HTTP status (gRPC's own HTTP mapping, with
/// the timeouts as DEADLINE_EXCEEDED and the limits as RESOURCE_EXHAUSTED).
fn grpc_code(status: u16) -> u8 {
    match status {
        401 => 16,             // UNAUTHENTICATED
        403 => 7,              // PERMISSION_DENIED
        404 | 405 | 501 => 12, // UNIMPLEMENTED
        408 | 504 => 4,        // DEADLINE_EXCEEDED
        413 | 431 => 8,        // RESOURCE_EXHAUSTED
        429 | 502 | 503 => 14, // UNAVAILABLE
        400 => 13,             // INTERNAL
        _ => 2,                // UNKNOWN
    }
}

/// Writes a redirect to `location` (no body, as nginx's 308 has none worth reading).
fn write_redirect(out: &mut Vec<u8>, status: u16, location: &str, close: bool) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nLocation: ");
    out.extend_from_slice(location.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: 0\r\n");
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes a complete short plain-text answer for `status` into `out`.
pub fn write_answer(out: &mut Vec<u8>, status: u16, detail: &dyn std::fmt::Display, close: bool) {
    write_answer_with(out, status, detail, b"", close)
}

/// [`write_answer`] with `extra` header lines (each ending in CRLF).
fn write_answer_with(
    out: &mut Vec<u8>,
    status: u16,
    detail: &dyn std::fmt::Display,
    extra: &[u8],
    close: bool,
) {
    use std::io::Write;
    let reason = reason(status);
    out.clear();
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
    );
    out.extend_from_slice(extra);
    let body_start = out.len();
    // Body first into the tail, then move the length header in front of it.
    let _ = writeln!(out, "{status} {reason}: {detail}");
    let body_len = out.len() - body_start;
    let mut header = Vec::with_capacity(64);
    let _ = write!(header, "Content-Length: {body_len}\r\n");
    if close {
        header.extend_from_slice(b"Connection: close\r\n");
    }
    header.extend_from_slice(b"\r\n");
    out.splice(body_start..body_start, header);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_is_a_complete_response() {
        let mut out = Vec::new();
        write_answer(&mut out, 404, &ProxyError::NoRoute, true);
        let text = String::from_utf8(out).expect("ascii");
        let body = "404 Not Found: no route for this host and path\n";
        assert_eq!(
            text,
            format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
        );
    }

    #[test]
    fn redirect_has_a_location_and_no_body() {
        let mut out = Vec::new();
        let e = ProxyError::HttpsRedirect("https://a.example.com:8443/x?y=1".into());
        write_proxy_answer(&mut out, &e, false);
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://a.example.com:8443/x?y=1\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(e.cause(), None);
    }

    #[test]
    fn grpc_clients_get_grpc_errors() {
        let mut out = Vec::new();
        write_grpc_answer(&mut out, &ProxyError::NoEndpoint);
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 14\r\ngrpc-message: 503 Service Unavailable"), "{text}");
        assert!(text.ends_with("\r\ncontent-length: 0\r\n\r\n"), "{text}");
        let mut out = Vec::new();
        write_grpc_answer(&mut out, &ProxyError::UpstreamTimeout);
        assert!(String::from_utf8_lossy(&out).contains("grpc-status: 4\r\n"));
        let mut out = Vec::new();
        write_grpc_answer(&mut out, &ProxyError::NoRoute);
        assert!(String::from_utf8_lossy(&out).contains("grpc-status: 12\r\n"));
    }

    #[test]
    fn statuses_and_faults() {
        assert_eq!(
            ProxyError::Request(RequestError::HeadTooLarge).status(),
            431
        );
        assert_eq!(ProxyError::UpstreamTimeout.status(), 504);
        assert_eq!(ProxyError::NoEndpoint.fault(), Fault::Upstream);
        let refused = ProxyError::Connect(io::ErrorKind::ConnectionRefused.into());
        assert_eq!(refused.retry(), Retry::NotSent(Why::Error));
        let slow = ProxyError::Connect(io::ErrorKind::TimedOut.into());
        assert_eq!(slow.retry(), Retry::NotSent(Why::Timeout));
        let closed = ProxyError::UpstreamClosed(io::ErrorKind::UnexpectedEof.into());
        assert_eq!(closed.retry(), Retry::IfReused);
        assert_eq!(
            ProxyError::UpstreamTimeout.retry(),
            Retry::Sent(Why::Timeout)
        );
        assert_eq!(
            ProxyError::UpstreamIo(io::ErrorKind::BrokenPipe.into()).retry(),
            Retry::Sent(Why::Error)
        );
        assert_eq!(ProxyError::NoEndpoint.retry(), Retry::Never);
    }
}
