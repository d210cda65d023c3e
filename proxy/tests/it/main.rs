//! rauta's integration tests, as one test binary: the real `rauta` binary
//! in front of real backends (see `rauta-testkit`), one module per area.

mod common;
mod xdp_util;

mod balancing;
mod errors;
mod hardening;
mod kubernetes;
mod lifecycle;
mod migration;
mod observability;
mod proxying;
mod routing;
mod smuggling;
mod tls;
mod xdp_degrade;
mod xdp_fixtures;
mod xdp_reuseport;
mod xdp_veth;
