//! The eBPF families: each attachment, and the XDP filter's and the
//! reuseport program's counters when the object is loaded.

use super::text::{escape, Out};
use crate::xdp::XdpFigures;
use rauta_shared::ebpf::counter as c;

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
const COUNTERS: [Counters; 6] = [
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
