//! Runtime settings every shard reads (immutable after start).

use crate::cli::ServeArgs;
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
    /// Time to complete a TLS handshake.
    pub tls_handshake_timeout: Duration,
}

impl ProxyConfig {
    /// Settings from `rauta serve` flags.
    pub fn from_args(args: &ServeArgs) -> ProxyConfig {
        ProxyConfig {
            header_read_timeout: args.header_read_timeout,
            idle_timeout: args.idle_timeout,
            drain_timeout: args.drain_timeout,
            max_header_bytes: args.max_header_bytes.max(1024),
            max_headers: usize::from(args.max_headers).min(crate::http::MAX_HEADERS),
            max_body_bytes: (args.max_body_bytes > 0).then_some(args.max_body_bytes),
            max_connections_per_shard: args
                .max_connections_per_shard
                .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_SHARD)
                .max(1),
            tunnel_idle_timeout: args.tunnel_idle_timeout,
            panic_path: std::env::var("RAUTA_TEST_PANIC_PATH")
                .ok()
                .filter(|p| p.starts_with('/'))
                .map(String::into_boxed_str),
            connect: ConnectPolicy {
                timeout: args.connect_timeout,
                attempts: args.connect_attempts.max(1),
                io_timeout: args.upstream_timeout,
            },
            upstream_max_idle: args.upstream_max_idle,
            upstream_idle_timeout: args.upstream_idle_timeout,
            tls_handshake_timeout: args.tls_handshake_timeout,
        }
    }
}
