//! HTTP/2 from clients: the `h2` crate runs each connection on the shard
//! ([`conn`]), over rauta's own streams ([`io`]); each stream becomes one
//! HTTP/1.1 exchange through a [`Bridge`], so routing, policies, retries,
//! metrics and the access log are the very code HTTP/1.1 runs.
//!
//! The bridge converts at the edge (h2 request -> HTTP/1.1 head, HTTP/1.1
//! response -> h2 HEADERS/DATA) and validates what h2 leaves to the
//! server: header whitespace, Host against :authority, connection-specific
//! fields. Nothing malformed reaches the exchange.

mod bridge;
mod conn;
mod io;

pub use bridge::Bridge;
pub use conn::serve;

/// The first line of the HTTP/2 connection preface (RFC 9113 §3.4), which
/// an HTTP/1.1 parser sees as a complete head.
pub const PREFACE_LINE: &[u8] = b"PRI * HTTP/2.0\r\n";
