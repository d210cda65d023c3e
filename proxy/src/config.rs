//! Runtime settings every shard reads (immutable after start).

use crate::upstream::ConnectPolicy;
use std::time::Duration;

/// Client connections per shard unless the flag or the open-file limit
/// says otherwise.
pub const DEFAULT_MAX_CONNECTIONS_PER_SHARD: usize = 16_384;

/// Limits and timeouts of the data plane.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Time to receive a complete request head once it started.
    pub header_read_timeout: Duration,
    /// Keep-alive idle time, and per-read timeout on request bodies.
    pub idle_timeout: Duration,
    /// After SIGTERM, how long in-flight requests may take.
    pub drain_timeout: Duration,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Most request headers.
    pub max_headers: usize,
    /// Largest request body (None: unlimited).
    pub max_body_bytes: Option<u64>,
    /// Client connections per shard.
    pub max_connections_per_shard: usize,
    /// Idle time (both directions) after which a tunnel is closed.
    pub tunnel_idle_timeout: Duration,
    /// Test hook: a request for this exact path panics its connection task
    /// (from `RAUTA_TEST_PANIC_PATH`; shows that a panic costs only that
    /// connection).
    pub panic_path: Option<Box<str>>,
    /// Upstream connect/IO settings.
    pub connect: ConnectPolicy,
    /// Idle upstream connections kept per endpoint and shard.
    pub upstream_max_idle: usize,
    /// How long idle upstream connections are kept.
    pub upstream_idle_timeout: Duration,
    /// Most requests a shard has in flight to one backend; past it, 503
    /// with `Retry-After` (`--backend-max-requests`).
    pub backend_max_requests: u32,
    /// Mirrored requests a shard has in flight at most; past it, further
    /// copies are dropped (`--mirror-max-in-flight`).
    pub mirror_max_in_flight: usize,
    /// The largest request body a mirror copies; a copy of a larger one
    /// is skipped (`--mirror-max-body-bytes`).
    pub mirror_max_body_bytes: usize,
    /// HTTP/2 from clients: ALPN `h2` on TLS listeners and the connection
    /// preface on plain ones (`--http2`).
    pub http2: bool,
    /// Most concurrent streams per HTTP/2 client connection.
    pub http2_max_streams: u32,
    /// HTTP/2 client connections are pinged this often (`--http2-ping-interval`).
    pub http2_ping_interval: Duration,
    /// When failing endpoints are left out of the picks (`--outlier-*`).
    pub outliers: crate::balance::outlier::OutlierPolicy,
    /// Time to complete a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// TCP and UDP services' timeouts.
    pub l4: crate::l4::L4Settings,
}
