//! The eBPF families: each attachment, and the XDP filter's and the
//! reuseport program's counters when the object is loaded.

use super::text::{escape, Out};
use crate::xdp::fast::FastFigures;
use crate::xdp::XdpFigures;
use rauta_shared::ebpf::counter as c;
use rauta_shared::ebpf::fast::fast_counter as f;

/// A counter family: (name, help, label, [(label value, counter index)]).
/// With an empty label the family is the one unlabelled sample of its
/// only counter.
type Counters = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, u32)],
);

/// The counter families, in page order.
const COUNTERS: [Counters; 7] = [
    (
        "rauta_xdp_packets_total",
        "Packets seen by the XDP filter, by action.",
        "action",
        &[
            ("aborted", c::ACTION_ABORTED),
            ("drop", c::ACTION_DROP),
            ("pass", c::ACTION_PASS),
            ("tx", c::ACTION_TX),
            ("redirect", c::ACTION_REDIRECT),
        ],
    ),
    (
        "rauta_xdp_drops_total",
        "Packets dropped by the XDP filter, by reason.",
        "reason",
        &[
            ("deny_list", c::DROP_DENY_LIST),
            ("syn_rate", c::DROP_SYN_RATE),
        ],
    ),
    (
        "rauta_xdp_syns_total",
        "TCP SYNs (without ACK) seen by the XDP filter.",
        "",
        &[("", c::SYN_SEEN)],
    ),
    (
        "rauta_xdp_uninspected_total",
        "Packets the XDP filter passed without a verdict, by reason.",
        "reason",
        &[
            ("not_ip", c::SKIP_NOT_IP),
            ("truncated", c::SKIP_TRUNCATED),
            ("fragment", c::SKIP_FRAGMENT),
            ("ipv6_extension_header", c::SKIP_IPV6_EXTENSION),
            ("admin_port", c::SKIP_ADMIN_PORT),
        ],
    ),
    (
        "rauta_reuseport_selections_total",
        "New connections placed by select_by_cpu: hit = the listener of the CPU that took the SYN, fallback = the kernel's hash (no listener on that CPU).",
        "result",
        &[
            ("hit", c::REUSEPORT_HIT),
            ("fallback", c::REUSEPORT_FALLBACK),
        ],
    ),
    (
        "rauta_reuseport_migrations_total",
        "Requests select_by_cpu moved off a closing listener.",
        "",
        &[("", c::REUSEPORT_MIGRATE)],
    ),
    (
        "rauta_xdp_steering_total",
        "Packets the XDP filter passed while flow steering is on, by result: redirect = sent to the CPU of the flow's shard, local = already there, other_port / not_tcp_udp = not steered, no_cpumap_entry = that CPU has no CPUMAP entry (processed here).",
        "result",
        &[
            ("redirect", c::STEER_REDIRECT),
            ("local", c::STEER_LOCAL),
            ("other_port", c::STEER_SKIP_PORT),
            ("not_tcp_udp", c::STEER_SKIP_PROTO),
            ("no_cpumap_entry", c::STEER_NO_CPU),
        ],
    ),
];

/// Writes the eBPF families; nothing when no program was ever tried.
pub(super) fn render(out: &mut Out<'_>, figures: &XdpFigures) {
    if figures.attachments.is_empty() && figures.counters.is_none() {
        return;
    }
    out.family(
        "rauta_ebpf_attached",
        "gauge",
        "1 while an eBPF program is attached (target: an interface, or reuseport for the listeners).",
    );
    for a in &figures.attachments {
        out.sample(
            "rauta_ebpf_attached",
            &format!(
                "program=\"{}\",target=\"{}\"",
                escape(a.program),
                escape(&a.target)
            ),
            u8::from(a.attached),
        );
    }
    if let Some(fast) = &figures.fast {
        render_fast(out, fast);
    }
    if let Some(cpus) = figures.steering {
        out.single(
            "rauta_xdp_steering_cpus",
            "gauge",
            "Shard CPUs XDP flow steering (--xdp-steer cpumap) spreads flows over; 0: asked for but off.",
            cpus,
        );
    }
    let Some(n) = &figures.counters else {
        return;
    };
    let get = |i: u32| n[i as usize];
    for (name, help, label, counters) in COUNTERS {
        if label.is_empty() {
            out.single(name, "counter", help, get(counters[0].1));
        } else {
            let samples = counters.iter().map(|(value, i)| (value, get(*i)));
            out.by_label(name, "counter", help, label, samples);
        }
    }
}

/// Why the fast path passed a packet to the kernel's stack.
const FAST_FALLBACKS: [(&str, u32); 10] = [
    ("no_flow", f::PASS_NO_FLOW),
    ("ip_options", f::PASS_IP_OPTIONS),
    ("fragment", f::PASS_FRAGMENT),
    ("ipv6", f::PASS_IPV6),
    ("no_backend", f::PASS_NO_BACKEND),
    ("no_route", f::PASS_NO_ROUTE),
    ("mtu", f::PASS_MTU),
    ("ports_exhausted", f::PASS_PORTS_EXHAUSTED),
    ("table_full", f::PASS_TABLE_FULL),
    ("icmp", f::PASS_ICMP),
];

/// The XDP fast path's families.
fn render_fast(out: &mut Out<'_>, fast: &FastFigures) {
    let get = |i: u32| fast.counters.get(i as usize).copied().unwrap_or(0);
    out.by_label(
        "rauta_xdp_fast_fallbacks_total",
        "counter",
        "Packets of (or to) XDP fast-path services the fast path passed to the kernel's stack, and so to the user-space L4 path, by reason.",
        "reason",
        FAST_FALLBACKS.iter().map(|(r, i)| (r, get(*i))),
    );
    out.by_label(
        "rauta_xdp_fast_flow_events_total",
        "counter",
        "XDP fast-path flow events: new (a SYN got a backend and a source port), fin, rst.",
        "event",
        [
            ("new", get(f::NEW_FLOWS)),
            ("fin", get(f::FIN)),
            ("rst", get(f::RST)),
        ],
    );
    out.single(
        "rauta_xdp_fast_flow_entries",
        "gauge",
        "Entries in the XDP fast path's flow table at the last sweep (two per flow).",
        fast.entries,
    );
    out.by_label(
        "rauta_xdp_fast_swept_total",
        "counter",
        "Flow-table entries removed by the sweeper: idle (--l4-idle-timeout), closed (FIN both ways), service_gone.",
        "cause",
        [
            ("idle", fast.swept.0),
            ("closed", fast.swept.1),
            ("service_gone", fast.swept.2),
        ],
    );
    let families = [
        (
            "rauta_xdp_fast_packets_total",
            "Packets the XDP fast path rewrote and sent on, per service and direction.",
        ),
        (
            "rauta_xdp_fast_bytes_total",
            "IP bytes the XDP fast path rewrote and sent on, per service and direction.",
        ),
    ];
    for (k, (name, help)) in families.iter().enumerate() {
        out.family(name, "counter", help);
        for (service, s) in &fast.services {
            let (to_backend, to_client) = match k {
                0 => (s.packets_in, s.packets_out),
                _ => (s.bytes_in, s.bytes_out),
            };
            for (direction, v) in [("to_backend", to_backend), ("to_client", to_client)] {
                out.sample(
                    name,
                    &format!("service=\"{}\",direction=\"{direction}\"", escape(service)),
                    v,
                );
            }
        }
    }
    out.family(
        "rauta_xdp_fast_flows_total",
        "counter",
        "Flows the XDP fast path created, per service.",
    );
    for (service, s) in &fast.services {
        out.sample(
            "rauta_xdp_fast_flows_total",
            &format!("service=\"{}\"", escape(service)),
            s.flows,
        );
    }
}
