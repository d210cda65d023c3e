//! The client side of a connection (downstream, the mirror of `upstream/`):
//! its byte stream, plain TCP or TLS over it, the connection with its
//! reused buffers, what it does after an exchange, and the proxy's own
//! error answer with the lingering close that protects it.
//!
//! The stream is one enum rather than generics through every module; the
//! plain arm forwards each call unchanged, so plain HTTP pays one branch
//! and nothing else.

use crate::error::{write_grpc_answer, write_proxy_answer, ProxyError};
use crate::http::buf::IoBuf;
use crate::http::head::IpText;
use crate::rt::{self, TcpStream};
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use futures_rustls::server::TlsStream;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

/// What the connection does after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ready for the next request.
    KeepAlive,
    /// Close the client connection.
    Close,
    /// The connection was already closed or handed over (tunnel).
    Done,
}

/// Initial size of each connection buffer; grows only for large heads.
pub(crate) const INITIAL_BUF: usize = 16 * 1024;

/// A client connection and its reused buffers.
#[derive(Debug)]
pub struct ClientConn {
    /// The socket, plain or TLS.
    pub stream: ClientStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// The client's IP as text, for the forwarding headers.
    pub peer_ip: IpText,
    /// The local port the client connected to.
    pub port: u16,
    /// Bytes read from the client.
    pub rbuf: IoBuf,
    /// Bytes read from the upstream.
    pub ubuf: IoBuf,
    /// Heads being written.
    pub out: Vec<u8>,
    /// The access-log line being built (when the access log is on).
    pub log: Vec<u8>,
}

/// Writes the proxy's own answer to `e` into `conn.out`: in gRPC's form
/// for a gRPC call, else as HTTP.
pub fn write_error(conn: &mut ClientConn, e: &ProxyError, close: bool) {
    if conn.stream.is_grpc() {
        write_grpc_answer(&mut conn.out, e);
    } else {
        write_proxy_answer(&mut conn.out, e, close);
    }
}

/// Writes an error answer, then closes the connection.
pub async fn answer_and_close(conn: &mut ClientConn, e: &ProxyError) {
    tracing::debug!(peer = %conn.peer, status = e.status(), fault = ?e.fault(), error = %e, "answered with an error");
    write_error(conn, e, true);
    if conn.stream.write_all(&conn.out).await.is_ok() {
        lingering_close(conn).await;
    }
}

/// Most time spent discarding what a client still sends after its answer.
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);
/// Most bytes discarded that way.
const LINGER_BYTES: usize = 1 << 20;

/// Half-closes, then reads and discards what the client still sends (an
/// unread request body, say) for a short while before closing. Closing a
/// socket with unread data makes the kernel send a reset, which can destroy
/// the answer before the client has read it; nginx lingers the same way.
async fn lingering_close(conn: &mut ClientConn) {
    let _ = conn.stream.close().await;
    let deadline = Instant::now() + LINGER_TIME;
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        conn.rbuf.clear();
        let left = deadline.saturating_duration_since(Instant::now());
        match rt::timeout(left, conn.rbuf.fill(&mut conn.stream)).await {
            Some(Ok(n)) if n > 0 => discarded += n,
            _ => return,
        }
    }
}

/// A client connection after accept (and, for TLS, after the handshake).
#[derive(Debug)]
pub enum ClientStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS terminated here.
    Tls(Box<TlsConn>),
    /// One stream of an HTTP/2 connection, seen as an HTTP/1.1 exchange.
    H2(Box<crate::http2::Bridge>),
}

/// A TLS stream whose writes reach the socket before they count as done.
#[derive(Debug)]
pub struct TlsConn {
    stream: TlsStream<TcpStream>,
    /// Bytes rustls took from the caller whose records are not all written
    /// yet; reported once they are.
    unflushed: usize,
}

impl ClientStream {
    /// A TLS connection whose handshake is complete.
    pub fn tls(stream: TlsStream<TcpStream>) -> ClientStream {
        ClientStream::Tls(Box::new(TlsConn {
            stream,
            unflushed: 0,
        }))
    }

    /// The TCP socket underneath (for addresses, options and timeouts);
    /// none for an HTTP/2 stream, which shares its connection's.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            ClientStream::Plain(s) => Some(s),
            ClientStream::Tls(t) => Some(t.stream.get_ref().0),
            ClientStream::H2(_) => None,
        }
    }

    /// The protocol ALPN chose on a TLS connection.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            ClientStream::Tls(t) => t.stream.get_ref().1.alpn_protocol(),
            _ => None,
        }
    }

    /// The client reads its answer before it sends more, so the next read
    /// starts by waiting (see [`TcpStream::expect_read_wait`]). Under TLS
    /// this concerns the socket only: plaintext rustls already holds is
    /// returned without touching it.
    pub fn expect_read_wait(&mut self) {
        match self {
            ClientStream::Plain(s) => s.expect_read_wait(),
            ClientStream::Tls(t) => t.stream.get_mut().0.expect_read_wait(),
            ClientStream::H2(_) => {}
        }
    }

    /// The HTTP/2 stream under an exchange, if it is one.
    pub fn bridge(&mut self) -> Option<&mut crate::http2::Bridge> {
        match self {
            ClientStream::H2(b) => Some(b),
            _ => None,
        }
    }

    /// The HTTP/2 stream under an exchange, if it is one (shared).
    #[inline]
    pub fn bridge_ref(&self) -> Option<&crate::http2::Bridge> {
        match self {
            ClientStream::H2(b) => Some(b),
            _ => None,
        }
    }

    /// True for a gRPC call (an HTTP/2 stream with a gRPC content type).
    #[inline]
    pub fn is_grpc(&self) -> bool {
        match self {
            ClientStream::H2(b) => b.is_grpc(),
            _ => false,
        }
    }

    /// True when the client connected over TLS.
    #[inline]
    pub fn is_tls(&self) -> bool {
        match self {
            ClientStream::Plain(_) => false,
            ClientStream::Tls(_) => true,
            ClientStream::H2(b) => b.is_tls(),
        }
    }
}

impl AsyncRead for ClientStream {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(t) => Pin::new(&mut t.stream).poll_read(cx, buf),
            ClientStream::H2(b) => b.poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(t) => t.poll_write(cx, buf),
            ClientStream::H2(b) => b.poll_write(cx, buf),
        }
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            other => {
                let buf = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
                Pin::new(other).poll_write(cx, buf)
            }
        }
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(t) => Pin::new(&mut t.stream).poll_flush(cx),
            ClientStream::H2(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_close(cx),
            // Sends close_notify, then closes the socket.
            ClientStream::Tls(t) => Pin::new(&mut t.stream).poll_close(cx),
            // Ends the stream (or resets it when the answer is incomplete).
            ClientStream::H2(b) => b.poll_close(),
        }
    }
}

impl TlsConn {
    /// Writes like a socket: done once the records are on the socket.
    ///
    /// futures-rustls accepts bytes into rustls and may return before their
    /// records are written when the socket is full; the rest would then
    /// wait for the next write or flush. The proxy writes an answer and
    /// then reads, and a tunnel copies without flushing, so that rest
    /// could wait forever. Here a write is only reported once flushed; a
    /// `Pending` in between is resumed by the caller's retry of the same
    /// bytes, as `write_all` and copies do.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.unflushed == 0 {
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, buf))?;
            if n == 0 {
                return Poll::Ready(Ok(0));
            }
            self.unflushed = n;
        }
        let flushed = ready!(Pin::new(&mut self.stream).poll_flush(cx));
        let n = std::mem::take(&mut self.unflushed);
        Poll::Ready(flushed.map(|()| n))
    }
}
