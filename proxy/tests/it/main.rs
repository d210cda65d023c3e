//! rauta's integration tests, as one test binary: the real `rauta` binary
//! in front of real backends (see `rauta-testkit`), one module per area.

mod annotated;
mod common;
mod xdp_util;

mod affinity;
mod balancing;
mod canary;
mod dashboard;
mod error_pages;
mod errors;
mod ext_auth;
mod gateway_api;
mod grpc;
mod grpc_route;
mod hardening;
mod http2;
mod http2_conformance;
mod ingress_nginx_metrics;
mod kubernetes;
mod kubernetes_metrics;
mod l4;
mod lifecycle;
mod limits;
mod migration;
mod mirror;
mod observability;
mod passthrough;
mod policies;
mod proxying;
mod routing;
mod smuggling;
mod splice;
mod status_page;
mod tls;
mod tls_route;
mod tracing;
mod upstream_attempts;
mod upstream_tls;
mod xdp_degrade;
mod xdp_fast;
mod xdp_fast_fixtures;
mod xdp_fixtures;
mod xdp_reuseport;
mod xdp_steer;
mod xdp_veth;
