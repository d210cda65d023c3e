//! Upstream connections: per-shard keep-alive pools that count their
//! active connections, and connecting with a deadline.

pub mod pool;

use crate::balance::Backend;
use crate::error::ProxyError;
use crate::rt::{self, TcpStream};
use pool::Pool;
use std::net::SocketAddr;
use std::time::Duration;

/// An upstream connection carrying a request; counted as active in its
/// pool until dropped or put back.
#[derive(Debug)]
pub struct Upstream<'p> {
    /// The socket, with the upstream timeouts set.
    pub stream: TcpStream,
    /// Its address (the pool key).
    pub addr: SocketAddr,
    /// True when it came from the pool (it may have gone stale).
    pub reused: bool,
    /// How long connecting took, for a new connection.
    pub connect_us: Option<u64>,
    /// Keeps the pool's active count for `addr` while the request runs.
    pub(crate) _active: pool::Active<'p>,
}

/// Connection settings for upstreams.
#[derive(Debug, Clone, Copy)]
pub struct ConnectPolicy {
    /// Deadline for one TCP connect.
    pub timeout: Duration,
    /// Most endpoints tried for one request.
    pub attempts: usize,
    /// Longest wait for one read from the upstream (idle, not total).
    pub read_timeout: Duration,
    /// Longest wait for one write to the upstream (idle, not total).
    pub write_timeout: Duration,
}

/// An upstream connection to `endpoint`, with the policy's read and write
/// timeouts (a route's own, or the global ones): a pooled one unless
/// `fresh`, or a new one. `has_body`: the request cannot be resent, so a
/// pooled connection is checked before use. Retrying a failure is the
/// caller's decision, taken from the error ([`ProxyError::retry`]).
pub async fn acquire<'p>(
    pool: &'p Pool,
    backend: &Backend,
    endpoint: usize,
    policy: &ConnectPolicy,
    has_body: bool,
    fresh: bool,
) -> Result<Upstream<'p>, ProxyError> {
    let addr = backend.endpoints[endpoint].addr;
    if !fresh {
        if let Some(stream) = pool.take(addr, has_body) {
            // Another route may have used it with other timeouts (setting
            // them only records the values: it cannot fail).
            let _ = stream.set_read_timeout(Some(policy.read_timeout));
            let _ = stream.set_write_timeout(Some(policy.write_timeout));
            return Ok(Upstream {
                stream,
                addr,
                reused: true,
                connect_us: None,
                _active: pool.checkout(addr),
            });
        }
    }
    let started = std::time::Instant::now();
    match connect(addr, policy).await {
        Ok(stream) => Ok(Upstream {
            stream,
            addr,
            reused: false,
            connect_us: Some(started.elapsed().as_micros() as u64),
            _active: pool.checkout(addr),
        }),
        Err(e) => {
            tracing::debug!(%addr, backend = %backend.name, error = %e, "upstream connect failed");
            Err(ProxyError::Connect(e))
        }
    }
}

/// A fresh connection with the policy's timeouts applied.
async fn connect(addr: SocketAddr, policy: &ConnectPolicy) -> std::io::Result<TcpStream> {
    let stream = rt::connect(addr, policy.timeout).await?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(policy.read_timeout))?;
    stream.set_write_timeout(Some(policy.write_timeout))?;
    Ok(stream)
}
