//! L4 services: TCP and UDP services from ingress-nginx's ConfigMaps, their
//! listeners and relays, and the PROXY protocol.
//!
//! The control thread binds each service's sockets (one per shard,
//! SO_REUSEPORT, [`listeners`]) and sends them with the table; each shard
//! accepts on its own and relays each connection to one endpoint of the
//! service's backend ([`tcp`]).

pub mod client_hello;
pub mod listeners;
pub mod passthrough;
pub mod proxy_protocol;
pub mod relay;
pub mod splice;
pub mod tcp;
pub mod udp;

use rauta_shared::config::{ConfigMapEntry, L4Protocol, L4ServiceConfig};
use std::time::Duration;

/// Timeouts of the L4 relays (`--l4-*`).
#[derive(Debug, Clone, Copy)]
pub struct L4Settings {
    /// A TCP flow with no bytes either way for this long is closed.
    pub idle_timeout: Duration,
    /// Flows of a service that left the configuration end after this long.
    pub close_grace: Duration,
    /// A UDP flow with no datagram either way for this long is forgotten.
    pub udp_idle_timeout: Duration,
    /// Most UDP flows per service and shard.
    pub udp_max_flows: usize,
}

/// A service's listening socket: (protocol, port).
pub type ListenKey = (L4Protocol, u16);

/// A compiled L4 service.
#[derive(Debug)]
pub struct L4Service {
    /// TCP or UDP, and the port listened on.
    pub key: ListenKey,
    /// Index of its backend in the table.
    pub backend: usize,
    /// Send a PROXY v1 header to the backend.
    pub proxy_protocol_upstream: bool,
    /// Expect a PROXY header from the client side.
    pub proxy_protocol_downstream: bool,
    /// The ConfigMap entry, for messages.
    pub source: ConfigMapEntry,
    /// `tcp/9000`, the `service` label of its metrics.
    pub label: Box<str>,
    /// Marked for the XDP fast path.
    pub xdp_fast_path: bool,
}

impl L4Service {
    /// Compiles one configured service.
    pub fn compile(config: &L4ServiceConfig) -> L4Service {
        L4Service {
            key: (config.protocol, config.port),
            backend: config.backend,
            proxy_protocol_upstream: config.proxy_protocol_upstream,
            proxy_protocol_downstream: config.proxy_protocol_downstream,
            source: config.source.clone(),
            label: format!("{}/{}", config.protocol.as_str(), config.port).into(),
            xdp_fast_path: config.xdp_fast_path,
        }
    }
}
