//! Test support for rauta: real HTTP/1.1 + WebSocket backends
//! ([`Backend`]), a small blocking client ([`client`]), a launcher for the
//! `rauta` binary ([`Rauta`]), Kubernetes manifest builders
//! ([`manifests`]) and test certificates with a TLS client ([`tls`]).

#![warn(missing_docs)]

pub mod backend;
pub mod client;
pub mod manifests;
pub mod rauta;
pub mod tls;
mod wire;

pub use backend::{is_pattern, pattern, xxh3, xxh3_hex, Backend, RecordedRequest};
pub use client::{get, raw_exchange, status_of, Conn, Response};
pub use manifests::{
    backend_for, endpoint_slice, ingress, ingress_class, service, tls_secret, EndpointSpec,
    ManifestDir,
};
pub use rauta::{free_port, Launch, Rauta};
