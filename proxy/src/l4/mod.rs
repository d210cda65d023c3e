//! Layer 4: what the listener reads from a connection before choosing how
//! to serve it, such as the ClientHello's SNI for TLS passthrough.

pub mod client_hello;
