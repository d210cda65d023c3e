//! Upstream connections: per-shard keep-alive pools that count their
//! active connections, connecting with a deadline, and HTTP/2 calls to
//! gRPC endpoints ([`h2`]) behind the same byte-stream face.

pub mod h2;
pub mod pool;

use crate::balance::Backend;
use crate::error::ProxyError;
use crate::rt::{self, TcpStream};
use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::client::TlsStream;
use pool::Pool;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// What an exchange reads and writes upstream: an HTTP/1.1 connection, or
/// one HTTP/2 call that reads and writes like one.
#[derive(Debug)]
pub enum UpStream {
    /// HTTP/1.1 over TCP.
    Tcp(TcpStream),
    /// HTTP/1.1 over TLS.
    Tls(Box<TlsStream<TcpStream>>),
    /// One call on a shared HTTP/2 connection.
    H2(Box<h2::H2Call>),
}

impl UpStream {
    /// The next read waits for readiness first (see
    /// [`TcpStream::expect_read_wait`]); nothing to do for a call.
    #[inline]
    pub fn expect_read_wait(&mut self) {
        match self {
            UpStream::Tcp(s) => s.expect_read_wait(),
            // A read through TLS may find a record already decrypted.
            UpStream::Tls(_) | UpStream::H2(_) => {}
        }
    }

    /// The TCP socket, for what only a whole connection can do (a tunnel).
    pub fn tcp(&mut self) -> Option<&mut TcpStream> {
        match self {
            UpStream::Tcp(s) => Some(s),
            UpStream::Tls(s) => Some(s.get_mut().0),
            UpStream::H2(_) => None,
        }
    }

    fn set_timeouts(&mut self, policy: &ConnectPolicy) {
        match self {
            // Setting them only records the values: it cannot fail.
            UpStream::Tcp(s) => set_tcp_timeouts(s, policy),
            UpStream::Tls(s) => set_tcp_timeouts(s.get_mut().0, policy),
            UpStream::H2(c) => {
                c.set_read_timeout(policy.read_timeout);
                c.set_write_timeout(policy.write_timeout);
            }
        }
    }
}

fn set_tcp_timeouts(s: &TcpStream, policy: &ConnectPolicy) {
    let _ = s.set_read_timeout(Some(policy.read_timeout));
    let _ = s.set_write_timeout(Some(policy.write_timeout));
}

impl AsyncRead for UpStream {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            UpStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            UpStream::H2(c) => Pin::new(c.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpStream {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            UpStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            UpStream::H2(c) => Pin::new(c.as_mut()).poll_write(cx, buf),
        }
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            UpStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            UpStream::H2(c) => Pin::new(c.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            UpStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            UpStream::H2(c) => Pin::new(c.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpStream::Tcp(s) => Pin::new(s).poll_close(cx),
            UpStream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            UpStream::H2(c) => Pin::new(c.as_mut()).poll_close(cx),
        }
    }
}

/// An upstream connection carrying a request; counted as active in its
/// pool until dropped or put back.
#[derive(Debug)]
pub struct Upstream<'p> {
    /// The socket (or HTTP/2 call), with the upstream timeouts set.
    pub stream: UpStream,
    /// Its address (the pool key).
    pub addr: SocketAddr,
    /// Its TLS settings' id, 0 for plain TCP (the rest of the pool key).
    pub tls: u64,
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
    let tls = match &backend.tls {
        None => None,
        Some(Ok(tls)) => Some(tls.as_ref()),
        Some(Err(why)) => return Err(ProxyError::Connect(io::Error::other(why.to_string()))),
    };
    let tls_id = tls.map_or(0, |t| t.id);
    let started = std::time::Instant::now();
    if backend.protocol.is_h2() {
        return match pool.h2_call(addr, tls, policy, fresh).await {
            Ok((call, reused)) => Ok(Upstream {
                stream: UpStream::H2(Box::new(call)),
                addr,
                tls: tls_id,
                reused,
                connect_us: (!reused).then(|| started.elapsed().as_micros() as u64),
                _active: pool.checkout(addr),
            }),
            Err(e) => {
                tracing::debug!(%addr, backend = %backend.name, error = %e, "upstream HTTP/2 connect failed");
                Err(ProxyError::Connect(e))
            }
        };
    }
    if !fresh {
        if let Some(mut stream) = pool.take(addr, tls_id, has_body) {
            // Another route may have used it with other timeouts.
            stream.set_timeouts(policy);
            return Ok(Upstream {
                stream,
                addr,
                tls: tls_id,
                reused: true,
                connect_us: None,
                _active: pool.checkout(addr),
            });
        }
    }
    let connected = match connect(addr, policy).await {
        Ok(tcp) => match tls {
            None => Ok(UpStream::Tcp(tcp)),
            // Boxed, as it is large and rare (pooled connections skip it):
            // inline it would grow every exchange's future.
            Some(tls) => Box::pin(tls.handshake(tcp, policy.timeout))
                .await
                .map(|s| UpStream::Tls(Box::new(s))),
        },
        Err(e) => Err(e),
    };
    match connected {
        Ok(stream) => Ok(Upstream {
            stream,
            addr,
            tls: tls_id,
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
