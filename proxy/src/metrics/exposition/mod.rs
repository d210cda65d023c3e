//! Prometheus text exposition (format 0.0.4) of the registry and the
//! process-level figures. Names follow ingress-nginx's where a counterpart
//! exists, with the `rauta_` prefix (see the README for the mapping).
//!
//! One file per group of families, written in page order: `routes`,
//! `shards`, `process`, `kubernetes` (the API source's, when it runs),
//! then `tls` and `ebpf`, which the admin thread appends; `text` is the
//! writer they share.

mod ebpf;
mod ingress_nginx;
pub mod kubernetes;
mod l4;
mod process;
mod routes;
mod shards;
mod text;
mod tls;

pub use ingress_nginx::{Controller, Inputs as CompatInputs, Reloads};
pub use kubernetes::{KubeFigures, KubeResource, KubeStatusWrites};
pub use process::ProcessInfo;

use super::registry::Registry;
use crate::router::RouteTable;
use text::Out;

/// Renders the route, shard and process families, and the API source's
/// when one runs, as Prometheus text.
pub fn render(registry: &Registry, table: Option<&RouteTable>, process: &ProcessInfo) -> String {
    let mut body = String::with_capacity(64 * 1024);
    let mut out = Out(&mut body);
    routes::render(&mut out, registry, table);
    shards::render(&mut out, registry);
    l4::render(&mut out, registry);
    process::render(&mut out, process);
    kubernetes::render(&mut out);
    body
}

/// Appends the TLS families: handshakes by result (all shards), and each
/// host's certificate expiry (ingress-nginx's
/// `nginx_ingress_controller_ssl_expire_time_seconds`).
pub fn render_tls(body: &mut String, registry: &Registry, tls: &crate::tls::TlsTable) {
    tls::render(&mut Out(body), registry, tls);
}

/// Appends the eBPF families: attachments always, counters when the
/// object is loaded.
pub fn render_xdp(body: &mut String, figures: &crate::xdp::XdpFigures) {
    ebpf::render(&mut Out(body), figures);
}

/// Appends the kernel splice's counters.
pub fn render_splice(body: &mut String, counters: &crate::l4::splice::SpliceCounters) {
    l4::render_splice(&mut Out(body), counters);
}

/// Appends the `nginx_ingress_controller_*` families of
/// `--metrics-compat ingress-nginx`.
pub fn render_ingress_nginx(body: &mut String, registry: &Registry, inputs: &CompatInputs<'_>) {
    ingress_nginx::render(&mut Out(body), registry, inputs);
}
