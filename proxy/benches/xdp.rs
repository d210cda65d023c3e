//! ns per packet of `xdp_ingress`, measured by the kernel itself:
//! `BPF_PROG_TEST_RUN` runs the program `REPEAT` times on one packet and
//! reports the mean time per run (no syscall in the figure). The median of
//! `ROUNDS` such runs is printed for each kind of packet.
//!
//! `cargo bench -p rauta-proxy --bench xdp` (needs root: CAP_BPF).

use etherparse::{PacketBuilder, VlanId};
use rauta_proxy::xdp::{Cidr, Object};
use rauta_shared::ebpf::XdpConfig;
use std::time::Duration;

const REPEAT: u32 = 1_000_000;
const ROUNDS: usize = 7;
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const NODE4: [u8; 4] = [192, 0, 2, 1];
const NODE6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

fn build(b: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    b(&mut out);
    out
}

fn packets() -> Vec<(&'static str, Vec<u8>)> {
    let eth = || PacketBuilder::ethernet2(MAC_A, MAC_B);
    let src6 = [0x20, 0x01, 0x0d, 0xb8, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&MAC_A);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.resize(60, 0);
    let ok = |r: Result<(), etherparse::err::packet::BuildWriteError>| r.expect("build");
    vec![
        (
            "ipv4 tcp ack (pass)",
            build(|o| {
                ok(eth()
                    .ipv4([192, 0, 2, 9], NODE4, 64)
                    .tcp(40000, 80, 1, 1000)
                    .ack(1)
                    .write(o, &[0; 64]))
            }),
        ),
        (
            "ipv6 tcp ack (pass)",
            build(|o| {
                ok(eth()
                    .ipv6(src6, NODE6, 64)
                    .tcp(40000, 80, 1, 1000)
                    .ack(1)
                    .write(o, &[0; 64]))
            }),
        ),
        (
            "vlan ipv4 tcp ack (pass)",
            build(|o| {
                ok(eth()
                    .single_vlan(VlanId::try_new(5).expect("vlan"))
                    .ipv4([192, 0, 2, 9], NODE4, 64)
                    .tcp(40000, 80, 1, 1000)
                    .ack(1)
                    .write(o, &[0; 64]))
            }),
        ),
        (
            "ipv4 udp (pass)",
            build(|o| {
                ok(eth()
                    .ipv4([192, 0, 2, 9], NODE4, 64)
                    .udp(5000, 53)
                    .write(o, &[0; 64]))
            }),
        ),
        (
            "ipv4 syn, port without limit (pass)",
            build(|o| {
                ok(eth()
                    .ipv4([192, 0, 2, 9], NODE4, 64)
                    .tcp(40000, 8080, 1, 1000)
                    .syn()
                    .write(o, &[]))
            }),
        ),
        (
            "ipv4 syn over the limit (drop)",
            build(|o| {
                ok(eth()
                    .ipv4([192, 0, 2, 9], NODE4, 64)
                    .tcp(40000, 80, 1, 1000)
                    .syn()
                    .write(o, &[]))
            }),
        ),
        (
            "ipv4 deny-listed (drop)",
            build(|o| {
                ok(eth()
                    .ipv4([198, 51, 100, 7], NODE4, 64)
                    .tcp(40000, 80, 1, 1000)
                    .ack(1)
                    .write(o, &[0; 64]))
            }),
        ),
        ("arp (not ip, pass)", arp),
    ]
}

fn measure(obj: &mut Object, packet: &[u8]) -> Duration {
    let mut runs: Vec<Duration> = (0..ROUNDS)
        .map(|_| obj.test_run_xdp(packet, REPEAT).expect("test_run").1)
        .collect();
    runs.sort();
    runs[ROUNDS / 2]
}

fn table(obj: &mut Object, title: &str) {
    println!("\n{title}");
    println!("{:<40} {:>10}", "packet", "ns/packet");
    for (name, packet) in packets() {
        let d = measure(obj, &packet);
        println!("{name:<40} {:>10}", d.as_nanos());
    }
}

fn main() {
    let mut obj = match Object::open() {
        Ok(o) => o,
        Err(e) => {
            println!("xdp bench skipped: cannot load the eBPF object here ({e}); it needs root");
            return;
        }
    };
    obj.write_config(XdpConfig::new(0, 1, 1, 9901, 80))
        .expect("config");
    let deny: Vec<Cidr> = vec!["198.51.100.0/24".parse().expect("cidr")];
    obj.write_deny_list(&deny).expect("deny");
    obj.load_xdp().expect("load xdp_ingress");
    println!(
        "xdp_ingress through BPF_PROG_TEST_RUN: median of {ROUNDS} runs of {REPEAT} repetitions each"
    );
    table(&mut obj, "deny-list of 1 prefix, SYN limit 1/s on port 80");

    // A large deny-list: the LPM trie lookup is on every inspected packet.
    let many: Vec<Cidr> = (0..10_000u32)
        .map(|i| {
            let [_, a, b, c] = i.to_be_bytes();
            Cidr::new(std::net::IpAddr::from([100, a, b, c]), 32).expect("cidr")
        })
        .chain(deny)
        .collect();
    obj.write_deny_list(&many).expect("deny");
    table(&mut obj, "deny-list of 10001 prefixes");
}
