//! The TCP and UDP services' families, summed over shards, one sample per
//! service (`service="tcp/9000"`).

use super::text::Out;
use crate::metrics::l4::L4Counters;
use crate::metrics::registry::Registry;
use std::collections::BTreeMap;

/// (name, kind, help, value) of one family.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&L4Counters) -> u64,
);

const FAMILIES: [Family; 12] = [
    ("rauta_l4_connections_total", "counter", "Connections (TCP) or client flows (UDP) accepted, by L4 service.", |c| c.connections),
    ("rauta_l4_active_connections", "gauge", "Connections or flows open now, by L4 service.", |c| c.active),
    ("rauta_l4_received_bytes_total", "counter", "Bytes from clients relayed to the backend, by L4 service (spliced flows included when closed).", |c| c.bytes_in),
    ("rauta_l4_sent_bytes_total", "counter", "Bytes from the backend relayed to clients, by L4 service (spliced flows included when closed).", |c| c.bytes_out),
    ("rauta_l4_user_space_bytes_total", "counter", "Bytes of L4 flows that rauta read and wrote itself, by L4 service (the rest of the relayed bytes the kernel spliced).", |c| c.copied),
    ("rauta_l4_connect_failures_total", "counter", "Connects to an endpoint that failed (each attempt), by L4 service.", |c| c.connect_failures),
    ("rauta_l4_unserved_total", "counter", "Connections or flows closed unserved (no endpoint, or every connect failed), by L4 service.", |c| c.unserved),
    ("rauta_l4_proxy_header_errors_total", "counter", "Connections closed for a missing, malformed or late PROXY protocol header, by L4 service.", |c| c.proxy_header_errors),
    ("rauta_l4_spliced_connections_total", "counter", "TCP connections whose bytes the kernel relayed (SOCKHASH splice), by L4 service.", |c| c.spliced),
    ("rauta_l4_idle_closed_total", "counter", "Connections or flows closed after idling past their timeout, by L4 service.", |c| c.idle_timeouts),
    ("rauta_l4_removed_closed_total", "counter", "Connections closed because their service left the configuration (TCP after the grace period) or the shard drained (UDP flows), by L4 service.", |c| c.closed_by_removal),
    ("rauta_l4_dropped_datagrams_total", "counter", "UDP datagrams dropped (flow table full, socket buffer full), by L4 service.", |c| c.dropped),
];

/// Writes the kernel splice's counters (`rauta_l4_splice_*`).
pub(super) fn render_splice(out: &mut Out<'_>, c: &crate::l4::splice::SpliceCounters) {
    use rauta_shared::ebpf::splice_counter as k;
    let at = |i: u32| c.get(i as usize).copied().unwrap_or(0);
    out.single(
        "rauta_l4_splice_bytes_total",
        "counter",
        "Bytes the kernel moved between spliced L4 sockets (the sk_skb verdict's redirects), all services.",
        at(k::REDIRECTED_BYTES),
    );
    out.by_label(
        "rauta_l4_splice_skbs_total",
        "counter",
        "Socket buffers the splice verdict saw, by what it did: redirected to the peer socket, passed to the socket itself (no peer entry, or the peer gone), or dropped (an empty one: a lone FIN, already seen by the socket).",
        "result",
        [
            ("redirected", at(k::REDIRECTED)),
            ("passed_no_peer", at(k::PASS_NO_PEER)),
            ("passed_peer_gone", at(k::PASS_PEER_GONE)),
            ("dropped_empty", at(k::DROP_EMPTY)),
        ],
    );
}

/// Writes the L4 families (nothing when no shard has an L4 service).
pub(super) fn render(out: &mut Out<'_>, registry: &Registry) {
    let mut hellos: BTreeMap<&str, u64> = BTreeMap::new();
    for shard in registry.shards.values() {
        for (result, n) in &shard.hellos {
            *hellos.entry(result).or_default() += n;
        }
    }
    if !hellos.is_empty() {
        out.by_label(
            "rauta_tls_client_hellos_total",
            "counter",
            "ClientHellos read on TLS listeners while ssl-passthrough hosts exist, by result: passthrough (relayed unterminated), terminated (another host), no_sni (terminated with the default certificate), timeout, closed, or why the hello was refused (answered with an alert).",
            "result",
            hellos,
        );
    }
    let mut sums: BTreeMap<&str, L4Counters> = BTreeMap::new();
    for shard in registry.shards.values() {
        for (service, c) in &shard.l4 {
            let s = sums.entry(service).or_default();
            s.connections += c.connections;
            s.active += c.active;
            s.bytes_in += c.bytes_in;
            s.bytes_out += c.bytes_out;
            s.copied += c.copied;
            s.connect_failures += c.connect_failures;
            s.unserved += c.unserved;
            s.proxy_header_errors += c.proxy_header_errors;
            s.spliced += c.spliced;
            s.idle_timeouts += c.idle_timeouts;
            s.closed_by_removal += c.closed_by_removal;
            s.dropped += c.dropped;
            s.duration_us += c.duration_us;
        }
    }
    if sums.is_empty() {
        return;
    }
    for (name, kind, help, value) in FAMILIES {
        out.by_label(
            name,
            kind,
            help,
            "service",
            sums.iter().map(|(s, c)| (s, value(c))),
        );
    }
    out.by_label(
        "rauta_l4_connection_seconds_total",
        "counter",
        "Time closed connections and flows were open, by L4 service (divide by the closed count for a mean).",
        "service",
        sums.iter().map(|(s, c)| (s, c.duration_us as f64 / 1e6)),
    );
}
