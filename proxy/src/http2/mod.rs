//! HTTP/2 from clients: the `h2` crate runs each connection on the shard
//! ([`conn`]), over rauta's own streams ([`io`]); each stream becomes one
//! HTTP/1.1 exchange through a [`Bridge`], so routing, policies, retries,
//! metrics and the access log are the very code HTTP/1.1 runs.
//!
//! The bridge converts at the edge (h2 request -> HTTP/1.1 head, HTTP/1.1
//! response -> h2 HEADERS/DATA) and validates what h2 leaves to the
//! server: header whitespace, Host against :authority, connection-specific
//! fields, the form of :path. Nothing malformed reaches the exchange.
//! Ahead of h2, [`frames`] refuses the frames h2 would refuse with the
//! wrong error code.

mod bridge;
mod conn;
mod frames;
pub mod invariants;
pub(crate) mod io;
pub(crate) mod relay;

pub use bridge::Bridge;
pub use conn::serve;

/// Waits for send capacity on a stream (the peer's window and h2's send
/// buffer); returns how many bytes may be sent now. Yields after a few
/// grants that came to nothing, so one stream cannot spin its task.
pub(crate) fn poll_capacity(
    send: &mut h2::SendStream<bytes::Bytes>,
    cx: &mut std::task::Context<'_>,
    want: usize,
) -> std::task::Poll<std::io::Result<usize>> {
    use std::task::{ready, Poll};
    for _ in 0..4 {
        let cap = send.capacity();
        if cap > 0 {
            return Poll::Ready(Ok(cap));
        }
        send.reserve_capacity(want);
        match ready!(send.poll_capacity(cx)) {
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            None => return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
        }
    }
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// h2's errors as I/O errors: its own I/O error's kind, else a reset (to
/// the exchange, a stream reset or GOAWAY before any response byte is a
/// closed connection, retried where that is safe).
pub(crate) fn io_error(e: h2::Error) -> std::io::Error {
    let kind = match e.get_io() {
        Some(io) => io.kind(),
        None => std::io::ErrorKind::ConnectionReset,
    };
    std::io::Error::new(kind, e)
}

/// The first line of the HTTP/2 connection preface (RFC 9113 §3.4), which
/// an HTTP/1.1 parser sees as a complete head.
pub const PREFACE_LINE: &[u8] = b"PRI * HTTP/2.0\r\n";
