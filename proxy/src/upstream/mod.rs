//! Upstream connections: per-shard keep-alive pools and connecting with a
//! deadline, retrying other endpoints while nothing has been sent.

pub mod pool;

use crate::balance::Backend;
use crate::error::ProxyError;
use crate::rt::{self, TcpStream};
use pool::Pool;
use std::net::SocketAddr;
use std::time::Duration;

/// An upstream connection ready for a request.
#[derive(Debug)]
pub struct Upstream {
    /// The connection.
    pub stream: TcpStream,
    /// Which endpoint of the backend it goes to.
    pub endpoint: usize,
    /// Its address (the pool key).
    pub addr: SocketAddr,
    /// True when it came from the pool (it may have gone stale).
    pub reused: bool,
    /// How long connecting took, for a new connection.
    pub connect_us: Option<u64>,
}

/// Connection settings for upstreams.
#[derive(Debug, Clone, Copy)]
pub struct ConnectPolicy {
    /// Deadline for one TCP connect.
    pub timeout: Duration,
    /// Most endpoints tried for one request.
    pub attempts: usize,
    /// Per-read and per-write timeout on upstream connections.
    pub io_timeout: Duration,
}

/// Takes a pooled connection to `first`, or connects to it; on connect
/// failure tries the backend's next endpoints (nothing has been sent, so
/// any method may be retried). `has_body`: the request cannot be resent,
/// so a pooled connection is checked before use.
pub async fn acquire(
    pool: &Pool,
    backend: &Backend,
    first: usize,
    policy: &ConnectPolicy,
    has_body: bool,
) -> Result<Upstream, ProxyError> {
    let addr = backend.endpoints[first].addr;
    if let Some(stream) = pool.take(addr, has_body) {
        return Ok(Upstream {
            stream,
            endpoint: first,
            addr,
            reused: true,
            connect_us: None,
        });
    }
    let attempts = policy.attempts.clamp(1, backend.endpoints.len());
    let mut last_error = None;
    for attempt in 0..attempts {
        let endpoint = backend.retry(first, attempt);
        let addr = backend.endpoints[endpoint].addr;
        if attempt > 0 {
            if let Some(stream) = pool.take(addr, has_body) {
                return Ok(Upstream {
                    stream,
                    endpoint,
                    addr,
                    reused: true,
                    connect_us: None,
                });
            }
        }
        let started = std::time::Instant::now();
        match connect(addr, policy).await {
            Ok(stream) => {
                return Ok(Upstream {
                    stream,
                    endpoint,
                    addr,
                    reused: false,
                    connect_us: Some(started.elapsed().as_micros() as u64),
                })
            }
            Err(e) => {
                tracing::debug!(%addr, backend = %backend.name, error = %e, "upstream connect failed");
                last_error = Some(e);
            }
        }
    }
    Err(ProxyError::Connect(
        last_error.unwrap_or_else(|| std::io::ErrorKind::NotConnected.into()),
    ))
}

/// A fresh connection with the policy's timeouts applied.
pub async fn connect(addr: SocketAddr, policy: &ConnectPolicy) -> std::io::Result<TcpStream> {
    let stream = rt::connect(addr, policy.timeout).await?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(policy.io_timeout))?;
    stream.set_write_timeout(Some(policy.io_timeout))?;
    Ok(stream)
}
