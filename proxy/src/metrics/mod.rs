//! Per-route statistics: recorded per shard without locks or atomics
//! ([`route`], [`shard`]), handed to the admin thread as deltas on request
//! ([`snapshot`]), accumulated there ([`registry`]) and rendered as
//! Prometheus text ([`exposition`]).

pub mod exposition;
pub mod l4;
pub mod latency;
pub mod outcome;
pub mod procfs;
pub mod registry;
pub mod route;
pub mod shard;
pub mod snapshot;

use crate::tls::acceptor::Handshake;

/// Methods counted separately; everything else is `OTHER` (bounded labels).
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
];

/// Index of a method in [`METHODS`].
#[inline]
pub fn method_index(method: &str) -> usize {
    METHODS[..7].iter().position(|m| *m == method).unwrap_or(7)
}

/// Status classes counted: 1xx..5xx.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The `protocol` label values, by the ALPN names: the client's HTTP
/// version (index 0: HTTP/1.x, 1: HTTP/2).
pub const PROTOCOLS: [&str; 2] = ["http/1.1", "h2"];

/// Index of a status code's class in [`STATUS_CLASSES`].
#[inline]
pub fn status_index(status: u16) -> usize {
    (usize::from(status / 100)).clamp(1, 5) - 1
}

/// What became of a mirrored copy, as counted in
/// `rauta_mirror_requests_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorResult {
    /// The mirror answered (any status).
    Sent = 0,
    /// Connecting, sending or reading the answer failed or timed out.
    Failed,
    /// The shard had `--mirror-max-in-flight` copies in flight.
    Dropped,
    /// The body was not copied (larger than `--mirror-max-body-bytes`, or
    /// not sent whole to the primary), so neither was the request.
    Skipped,
}

/// The `result` label values, by [`MirrorResult`] index.
pub const MIRROR_RESULTS: [&str; 4] = ["sent", "failed", "dropped", "skipped"];

/// Why a request failed, as counted in `rauta_errors_total{cause}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// No rule and no default backend (404).
    NoRoute,
    /// The backend has no endpoint (503).
    NoEndpoint,
    /// Connecting to every endpoint tried failed (502).
    ConnectFailure,
    /// The upstream did not answer in time (504).
    UpstreamTimeout,
    /// The upstream closed or reset the connection mid-exchange (502).
    UpstreamReset,
    /// The upstream answer was not valid HTTP (502).
    UpstreamProtocol,
    /// The client was too slow (408).
    ClientTimeout,
    /// The request was malformed or over a limit (4xx).
    BadRequest,
    /// No route table was loaded yet (503).
    NotReady,
    /// A route policy refused the client (an IP list: 403; a rate limit).
    Refused,
    /// The route's own configuration is broken (a bad security annotation: 503).
    InvalidRoute,
    /// The backend had `--backend-max-requests` in flight on the shard (503).
    Overloaded,
}

impl Cause {
    /// Every cause, in label order.
    pub const ALL: [Cause; 12] = [
        Cause::NoRoute,
        Cause::NoEndpoint,
        Cause::ConnectFailure,
        Cause::UpstreamTimeout,
        Cause::UpstreamReset,
        Cause::UpstreamProtocol,
        Cause::ClientTimeout,
        Cause::BadRequest,
        Cause::NotReady,
        Cause::Refused,
        Cause::InvalidRoute,
        Cause::Overloaded,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Cause::NoRoute => "no_route",
            Cause::NoEndpoint => "no_endpoint",
            Cause::ConnectFailure => "connect_failure",
            Cause::UpstreamTimeout => "upstream_timeout",
            Cause::UpstreamReset => "upstream_reset",
            Cause::UpstreamProtocol => "upstream_protocol",
            Cause::ClientTimeout => "client_timeout",
            Cause::BadRequest => "bad_request",
            Cause::NotReady => "not_ready",
            Cause::Refused => "refused",
            Cause::InvalidRoute => "invalid_route",
            Cause::Overloaded => "backend_overloaded",
        }
    }

    /// The counter slot.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Number of causes.
pub const CAUSES: usize = Cause::ALL.len();

/// Number of TLS handshake results counted, in [`Handshake::ALL`] order.
pub const HANDSHAKE_RESULTS: usize = Handshake::ALL.len();

/// Why `accept` failed, as counted in `rauta_accept_errors_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// The connection died in the backlog (ECONNABORTED, EPROTO, network
    /// errors, EINTR): retried at once.
    Transient,
    /// Out of file descriptors (EMFILE, ENFILE).
    Descriptors,
    /// Out of socket memory (ENOBUFS, ENOMEM).
    Memory,
    /// Anything else.
    Other,
}

impl AcceptError {
    /// Every kind, in index order.
    pub const ALL: [AcceptError; 4] = [
        AcceptError::Transient,
        AcceptError::Descriptors,
        AcceptError::Memory,
        AcceptError::Other,
    ];

    /// Classifies an `accept4` error (accept(2), "Error handling").
    pub fn of(e: &std::io::Error) -> AcceptError {
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE) => AcceptError::Descriptors,
            Some(libc::ENOBUFS | libc::ENOMEM) => AcceptError::Memory,
            Some(
                libc::ECONNABORTED
                | libc::EPROTO
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
                | libc::ETIMEDOUT
                | libc::EPERM
                | libc::EINTR
                | libc::EAGAIN,
            ) => AcceptError::Transient,
            _ => AcceptError::Other,
        }
    }

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            AcceptError::Transient => "transient",
            AcceptError::Descriptors => "descriptors",
            AcceptError::Memory => "memory",
            AcceptError::Other => "other",
        }
    }
}
