//! Test support for rauta: real HTTP/1.1 + WebSocket backends
//! ([`Backend`]), a small blocking client ([`client`]), the one launcher of
//! the `rauta` binary ([`Rauta`], [`Builder`]), Kubernetes manifest builders
//! ([`manifests`]), a fake Kubernetes API server ([`fake_api`]), test
//! certificates with a TLS client ([`tls`]), `/metrics` look-ups
//! ([`metrics`]), network namespaces ([`netns`]), real gRPC peers in Python
//! ([`grpc`]), an HTTPS backend in Python that reports the TLS its client
//! used ([`https`]), headless Chromium through chromedriver ([`browser`]),
//! waiting on evidence ([`eventually`]) and what a test needs from the
//! machine ([`require!`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
pub mod browser;
pub mod client;
pub mod fake_api;
pub mod grpc;
pub mod https;
pub mod manifests;
pub mod metrics;
pub mod need;
pub mod netns;
pub mod otlp;
pub mod pattern;
pub mod prometheus;
pub mod rauta;
pub mod tls;
pub mod wait;
mod wire;

pub use backend::{Backend, RecordedRequest, ScriptedBackend};
pub use client::{get, raw_exchange, status_of, Conn, Response};
pub use manifests::{
    backend_for, catch_all, endpoint_slice, ingress, ingress_class, rauta_class, service,
    tls_secret, EndpointSpec, ManifestDir,
};
pub use metrics::Metrics;
pub use need::{require, Need};
pub use pattern::{is_pattern, pattern, pattern_byte, xxh3, xxh3_hex};
pub use rauta::{free_port, Builder, Launch, Rauta, Signal};
pub use wait::{eventually, eventually_some, patience};
