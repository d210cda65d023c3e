//! `xdp_ingress` on crafted packets through `BPF_PROG_TEST_RUN`: a table
//! of packets (built with etherparse) with the expected action and the
//! expected change of every counter. Maps are written through the same
//! loader `rauta serve` uses. Needs root (`Need::EbpfPrivilege`).

use crate::xdp_util::ebpf_object;
use etherparse::{
    IpFragOffset, IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv4Options, Ipv6Extensions,
    Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, PacketBuilder, VlanId,
};
use rauta_proxy::xdp::{Cidr, Object};
use rauta_shared::ebpf::{counter as c, XdpConfig};
use rauta_testkit::{require, Need};
use std::time::Instant;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const ADMIN_PORT: u16 = 9901;
const LISTEN_PORT: u16 = 80;
const SYN_RATE: u32 = 1;
const SYN_BURST: u32 = 3;
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const NODE4: [u8; 4] = [192, 0, 2, 1];
const NODE6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

const DENY: [&str; 3] = ["198.51.100.0/24", "203.0.113.7", "2001:db8:bad::/48"];

fn v6(last: u16, net: u16) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[4..6].copy_from_slice(&net.to_be_bytes());
    a[14..].copy_from_slice(&last.to_be_bytes());
    a
}

/// Which TCP flags a crafted segment carries.
#[derive(Clone, Copy)]
enum Flags {
    Syn,
    SynAck,
    Ack,
}

fn tcp4(src: [u8; 4], dport: u16, flags: Flags) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src, NODE4, 64)
        .tcp(40000, dport, 1, 65535);
    let b = match flags {
        Flags::Syn => b.syn(),
        Flags::SynAck => b.syn().ack(7),
        Flags::Ack => b.ack(7),
    };
    let mut out = Vec::new();
    b.write(&mut out, &[]).expect("build tcp4");
    out
}

fn tcp6(src: [u8; 16], dport: u16, flags: Flags) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(src, NODE6, 64)
        .tcp(40000, dport, 1, 65535);
    let b = match flags {
        Flags::Syn => b.syn(),
        Flags::SynAck => b.syn().ack(7),
        Flags::Ack => b.ack(7),
    };
    let mut out = Vec::new();
    b.write(&mut out, &[]).expect("build tcp6");
    out
}

fn vlan_tcp4(src: [u8; 4], dport: u16, double: bool) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(MAC_A, MAC_B);
    let id = |v| VlanId::try_new(v).expect("vlan id");
    let b = if double {
        eth.double_vlan(id(100), id(200))
    } else {
        eth.single_vlan(id(100))
    };
    let mut out = Vec::new();
    b.ipv4(src, NODE4, 64)
        .tcp(40000, dport, 1, 65535)
        .syn()
        .write(&mut out, &[])
        .expect("build vlan");
    out
}

fn vlan_tcp6(src: [u8; 16], dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(VlanId::try_new(7).expect("vlan id"))
        .ipv6(src, NODE6, 64)
        .tcp(40000, dport, 1, 65535)
        .syn()
        .write(&mut out, &[])
        .expect("build vlan6");
    out
}

fn udp4(src: [u8; 4], dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src, NODE4, 64)
        .udp(5353, dport)
        .write(&mut out, b"hello")
        .expect("build udp4");
    out
}

fn udp6(src: [u8; 16], dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(src, NODE6, 64)
        .udp(5353, dport)
        .write(&mut out, b"hello")
        .expect("build udp6");
    out
}

fn icmp4(src: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src, NODE4, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut out, b"ping")
        .expect("build icmp4");
    out
}

fn icmp6(src: [u8; 16]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(src, NODE6, 64)
        .icmpv6_echo_request(1, 1)
        .write(&mut out, b"ping")
        .expect("build icmp6");
    out
}

/// IPv4 with 4 bytes of options (IHL 6) in front of a TCP SYN.
fn tcp4_options(src: [u8; 4], dport: u16) -> Vec<u8> {
    let mut ip = Ipv4Header::new(0, 64, IpNumber::TCP, src, NODE4).expect("ipv4");
    ip.options = Ipv4Options::try_from(&[1u8, 1, 1, 0][..]).expect("options");
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ip(IpHeaders::Ipv4(ip, Ipv4Extensions::default()))
        .tcp(40000, dport, 1, 65535)
        .syn()
        .write(&mut out, &[])
        .expect("build ipv4 options");
    out
}

/// An IPv4 fragment: the first one (more fragments) or a later one.
fn frag4(src: [u8; 4], dport: u16, first: bool) -> Vec<u8> {
    let mut ip = Ipv4Header::new(0, 64, IpNumber::TCP, src, NODE4).expect("ipv4");
    if first {
        ip.more_fragments = true;
    } else {
        ip.fragment_offset = IpFragOffset::try_new(100).expect("offset");
    }
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ip(IpHeaders::Ipv4(ip, Ipv4Extensions::default()))
        .tcp(40000, dport, 1, 65535)
        .syn()
        .write(&mut out, &[0u8; 16])
        .expect("build frag4");
    out
}

fn ipv6_header(src: [u8; 16]) -> Ipv6Header {
    Ipv6Header {
        source: src,
        destination: NODE6,
        hop_limit: 64,
        ..Default::default()
    }
}

/// IPv6 with a fragment header in front of TCP.
fn frag6(src: [u8; 16], dport: u16) -> Vec<u8> {
    let exts = Ipv6Extensions {
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber::TCP,
            IpFragOffset::ZERO,
            true,
            42,
        )),
        ..Default::default()
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ip(IpHeaders::Ipv6(ipv6_header(src), exts))
        .tcp(40000, dport, 1, 65535)
        .syn()
        .write(&mut out, &[])
        .expect("build frag6");
    out
}

/// IPv6 with a hop-by-hop options header in front of TCP.
fn hop_by_hop6(src: [u8; 16], dport: u16) -> Vec<u8> {
    let exts = Ipv6Extensions {
        hop_by_hop_options: Some(
            Ipv6RawExtHeader::new_raw(IpNumber::TCP, &[1, 4, 0, 0, 0, 0]).expect("hbh"),
        ),
        ..Default::default()
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ip(IpHeaders::Ipv6(ipv6_header(src), exts))
        .tcp(40000, dport, 1, 65535)
        .syn()
        .write(&mut out, &[])
        .expect("build hop-by-hop");
    out
}

/// An Ethernet frame of another EtherType (ARP) padded to 60 bytes.
fn arp() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&[0xff; 6]);
    out.extend_from_slice(&MAC_A);
    out.extend_from_slice(&[0x08, 0x06]);
    out.resize(60, 0);
    out
}

/// A packet, the action `xdp_ingress` must take and the counters (besides
/// the action's own) it must move, by how much.
struct Case {
    name: String,
    packet: Vec<u8>,
    action: u32,
    counters: Vec<u32>,
}

fn case(name: impl Into<String>, packet: Vec<u8>, action: u32, counters: &[u32]) -> Case {
    Case {
        name: name.into(),
        packet,
        action,
        counters: counters.to_vec(),
    }
}

/// The object with `xdp_ingress` loaded and the fixtures' configuration.
fn fixture_object() -> Object {
    let mut obj = Object::open().expect("open the eBPF object");
    obj.write_config(XdpConfig::new(
        0,
        SYN_RATE,
        SYN_BURST,
        ADMIN_PORT,
        LISTEN_PORT,
    ))
    .expect("config");
    let deny: Vec<Cidr> = DENY.iter().map(|d| d.parse().expect("cidr")).collect();
    obj.write_deny_list(&deny).expect("deny list");
    obj.load_xdp().expect("load xdp_ingress (verifier)");
    obj
}

/// Runs one case and checks the action and every counter's change.
fn check(obj: &mut Object, case: &Case) {
    let before = obj.counters().expect("counters");
    let (action, _) = obj
        .test_run_xdp(&case.packet, 1)
        .unwrap_or_else(|e| panic!("{}: test_run failed: {e}", case.name));
    let after = obj.counters().expect("counters");
    assert_eq!(action, case.action, "{}: action", case.name);
    let mut expected = [0u64; c::COUNT as usize];
    expected[case.action as usize] += 1;
    for &i in &case.counters {
        expected[i as usize] += 1;
    }
    for i in 0..c::COUNT as usize {
        assert_eq!(
            after[i] - before[i],
            expected[i],
            "{}: counter {i} moved by {} instead of {}",
            case.name,
            after[i] - before[i],
            expected[i]
        );
    }
}

const PASS: u32 = XDP_PASS;
const DROP: u32 = XDP_DROP;

#[test]
fn xdp_fixture_table() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let mut obj = fixture_object();
    let other = [192, 0, 2, 50];
    let other6 = v6(50, 1);
    let denied6 = {
        let mut a = v6(9, 0x0bad);
        a[6] = 0x12; // still inside 2001:db8:bad::/48
        a
    };
    let cases = vec![
        // Plain traffic from allowed sources.
        case(
            "ipv4 tcp syn",
            tcp4(other, 8080, Flags::Syn),
            PASS,
            &[c::SYN_SEEN],
        ),
        case("ipv4 tcp ack", tcp4(other, 8080, Flags::Ack), PASS, &[]),
        case(
            "ipv4 tcp syn-ack is not a syn",
            tcp4(other, 8080, Flags::SynAck),
            PASS,
            &[],
        ),
        case(
            "ipv6 tcp syn",
            tcp6(other6, 8080, Flags::Syn),
            PASS,
            &[c::SYN_SEEN],
        ),
        case("ipv6 tcp ack", tcp6(other6, 8080, Flags::Ack), PASS, &[]),
        case(
            "ipv4 with options",
            tcp4_options(other, 8080),
            PASS,
            &[c::SYN_SEEN],
        ),
        case(
            "vlan ipv4 syn",
            vlan_tcp4(other, 8080, false),
            PASS,
            &[c::SYN_SEEN],
        ),
        case(
            "qinq ipv4 syn",
            vlan_tcp4(other, 8080, true),
            PASS,
            &[c::SYN_SEEN],
        ),
        case(
            "vlan ipv6 syn",
            vlan_tcp6(other6, 8080),
            PASS,
            &[c::SYN_SEEN],
        ),
        // Non-TCP.
        case("ipv4 udp", udp4(other, 53), PASS, &[]),
        case("ipv6 udp", udp6(other6, 53), PASS, &[]),
        case("ipv4 icmp", icmp4(other), PASS, &[]),
        case("ipv6 icmp", icmp6(other6), PASS, &[]),
        case("arp", arp(), PASS, &[c::SKIP_NOT_IP]),
        // Fragments and extension headers pass untouched, whatever the source.
        case(
            "ipv4 first fragment",
            frag4(other, 80, true),
            PASS,
            &[c::SKIP_FRAGMENT],
        ),
        case(
            "ipv4 later fragment",
            frag4(other, 80, false),
            PASS,
            &[c::SKIP_FRAGMENT],
        ),
        case(
            "ipv6 fragment",
            frag6(other6, 80),
            PASS,
            &[c::SKIP_FRAGMENT],
        ),
        case(
            "ipv6 hop-by-hop",
            hop_by_hop6(other6, 80),
            PASS,
            &[c::SKIP_IPV6_EXTENSION],
        ),
        case(
            "denied ipv4 fragment",
            frag4([203, 0, 113, 7], 80, true),
            PASS,
            &[c::SKIP_FRAGMENT],
        ),
        // The deny-list, on every path that reaches it.
        case(
            "denied ipv4 host",
            tcp4([203, 0, 113, 7], 80, Flags::Syn),
            DROP,
            &[c::DROP_DENY_LIST],
        ),
        case(
            "denied ipv4 prefix",
            tcp4([198, 51, 100, 200], 80, Flags::Ack),
            DROP,
            &[c::DROP_DENY_LIST],
        ),
        case(
            "next to denied prefix",
            tcp4([198, 51, 101, 1], 8080, Flags::Ack),
            PASS,
            &[],
        ),
        case(
            "neighbour of denied host",
            tcp4([203, 0, 113, 8], 8080, Flags::Ack),
            PASS,
            &[],
        ),
        case(
            "denied ipv6 prefix",
            tcp6(denied6, 80, Flags::Syn),
            DROP,
            &[c::DROP_DENY_LIST],
        ),
        case(
            "next to denied ipv6 prefix",
            tcp6(v6(9, 0x0bae), 8080, Flags::Ack),
            PASS,
            &[],
        ),
        case(
            "denied vlan",
            vlan_tcp4([198, 51, 100, 1], 80, false),
            DROP,
            &[c::DROP_DENY_LIST],
        ),
        case(
            "denied qinq",
            vlan_tcp4([198, 51, 100, 1], 80, true),
            DROP,
            &[c::DROP_DENY_LIST],
        ),
        case(
            "denied vlan ipv6",
            vlan_tcp6(denied6, 80),
            DROP,
            &[c::DROP_DENY_LIST],
        ),
        case(
            "denied udp",
            udp4([198, 51, 100, 2], 53),
            DROP,
            &[c::DROP_DENY_LIST],
        ),
        case(
            "denied icmp",
            icmp4([198, 51, 100, 2]),
            DROP,
            &[c::DROP_DENY_LIST],
        ),
        case("denied icmpv6", icmp6(denied6), DROP, &[c::DROP_DENY_LIST]),
        case("denied udp6", udp6(denied6, 53), DROP, &[c::DROP_DENY_LIST]),
        // The admin port is never dropped.
        case(
            "denied source to admin port",
            tcp4([203, 0, 113, 7], ADMIN_PORT, Flags::Syn),
            PASS,
            &[c::SKIP_ADMIN_PORT],
        ),
        case(
            "denied ipv6 to admin port",
            tcp6(denied6, ADMIN_PORT, Flags::Ack),
            PASS,
            &[c::SKIP_ADMIN_PORT],
        ),
        case(
            "denied udp to the admin port number",
            udp4([203, 0, 113, 7], ADMIN_PORT),
            DROP,
            &[c::DROP_DENY_LIST],
        ),
    ];
    for case in &cases {
        check(&mut obj, case);
    }
}

/// Every prefix of a packet shorter than its headers is passed as
/// truncated; from the full headers on, the normal verdict applies.
#[test]
fn xdp_truncated_headers_at_every_offset() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let mut obj = fixture_object();
    let src = [192, 0, 2, 60];
    let src6 = v6(60, 1);
    // (name, packet, header length, counters of the whole packet)
    let packets: Vec<(&str, Vec<u8>, usize, Vec<u32>)> = vec![
        (
            "ipv4 tcp syn",
            tcp4(src, 8080, Flags::Syn),
            14 + 20 + 20,
            vec![c::SYN_SEEN],
        ),
        (
            "ipv4 options syn",
            tcp4_options(src, 8080),
            14 + 24 + 20,
            vec![c::SYN_SEEN],
        ),
        (
            "ipv6 tcp syn",
            tcp6(src6, 8080, Flags::Syn),
            14 + 40 + 20,
            vec![c::SYN_SEEN],
        ),
        (
            "vlan ipv4 syn",
            vlan_tcp4(src, 8080, false),
            18 + 20 + 20,
            vec![c::SYN_SEEN],
        ),
        (
            "qinq ipv4 syn",
            vlan_tcp4(src, 8080, true),
            22 + 20 + 20,
            vec![c::SYN_SEEN],
        ),
        (
            "vlan ipv6 syn",
            vlan_tcp6(src6, 8080),
            18 + 40 + 20,
            vec![c::SYN_SEEN],
        ),
        ("ipv4 udp", udp4(src, 53), 14 + 20 + 8, vec![]),
        ("ipv6 udp", udp6(src6, 53), 14 + 40 + 8, vec![]),
        (
            "denied ipv4",
            tcp4([203, 0, 113, 7], 80, Flags::Ack),
            14 + 20 + 20,
            vec![c::DROP_DENY_LIST],
        ),
    ];
    // BPF_PROG_TEST_RUN refuses XDP input shorter than an Ethernet header.
    const MIN: usize = 14;
    let mut ran = 0;
    for (name, packet, headers, full) in &packets {
        assert!(
            packet.len() >= *headers,
            "{name}: built shorter than its headers"
        );
        for cut in MIN..=packet.len() {
            let complete = cut >= *headers;
            let action = match (complete, full.contains(&c::DROP_DENY_LIST)) {
                (true, true) => DROP,
                _ => PASS,
            };
            let counters = if complete {
                full.clone()
            } else {
                vec![c::SKIP_TRUNCATED]
            };
            check(
                &mut obj,
                &case(
                    format!("{name} cut at {cut}"),
                    packet[..cut].to_vec(),
                    action,
                    &counters,
                ),
            );
            ran += 1;
        }
    }
    assert!(ran > 300, "only {ran} cuts ran");
}

/// One source flooding SYNs gets its burst, then drops; as many SYNs from
/// as many sources all pass; other ports and non-SYNs are not limited.
#[test]
fn xdp_syn_flood_one_source_versus_many() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let mut obj = fixture_object();
    const N: usize = 12;
    let started = Instant::now();
    let mut passed = 0u64;
    for i in 0..N {
        let (action, _) = obj
            .test_run_xdp(&tcp4([192, 0, 2, 99], LISTEN_PORT, Flags::Syn), 1)
            .expect("run");
        assert!(action == PASS || action == DROP, "SYN {i}: action {action}");
        passed += u64::from(action == PASS);
    }
    // The bucket holds SYN_BURST and refills SYN_RATE per second: allow the
    // refill of the time the loop really took (no timing assertion).
    let refill = (started.elapsed().as_secs_f64() * f64::from(SYN_RATE)).floor() as u64;
    assert!(
        passed >= u64::from(SYN_BURST) && passed <= u64::from(SYN_BURST) + refill,
        "one source: {passed} of {N} SYNs passed, expected {SYN_BURST} (+{refill} refilled)"
    );
    let n = obj.counters().expect("counters");
    assert_eq!(n[c::DROP_SYN_RATE as usize], N as u64 - passed);
    assert_eq!(n[c::SYN_SEEN as usize], N as u64);
    assert_eq!(n[c::ACTION_DROP as usize], N as u64 - passed);

    // The same source: ACKs and SYNs to another port are not limited.
    check(
        &mut obj,
        &case(
            "flooder ack",
            tcp4([192, 0, 2, 99], LISTEN_PORT, Flags::Ack),
            PASS,
            &[],
        ),
    );
    check(
        &mut obj,
        &case(
            "flooder syn to another port",
            tcp4([192, 0, 2, 99], 8080, Flags::Syn),
            PASS,
            &[c::SYN_SEEN],
        ),
    );

    // Many sources, one SYN each (and a few each, within the burst).
    for i in 0..N as u8 {
        for _ in 0..SYN_BURST {
            check(
                &mut obj,
                &case(
                    format!("source {i}"),
                    tcp4([10, 9, 0, i], LISTEN_PORT, Flags::Syn),
                    PASS,
                    &[c::SYN_SEEN],
                ),
            );
        }
    }

    // IPv6 sources have their own buckets too.
    let flooder6 = v6(99, 2);
    let mut passed6 = 0;
    for _ in 0..N {
        let (action, _) = obj
            .test_run_xdp(&tcp6(flooder6, LISTEN_PORT, Flags::Syn), 1)
            .expect("run");
        passed6 += u64::from(action == PASS);
    }
    assert!(
        passed6 >= u64::from(SYN_BURST) && passed6 < N as u64,
        "ipv6 flooder: {passed6} passed"
    );

    // Turning the limit off (a new configuration generation) lets the
    // flooder through again.
    obj.write_config(XdpConfig::new(0, 0, 0, ADMIN_PORT, LISTEN_PORT))
        .expect("config");
    check(
        &mut obj,
        &case(
            "flooder after limit off",
            tcp4([192, 0, 2, 99], LISTEN_PORT, Flags::Syn),
            PASS,
            &[c::SYN_SEEN],
        ),
    );
}

/// Rewriting the deny-list removes stale prefixes and adds new ones.
#[test]
fn xdp_deny_list_rewrite() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let mut obj = fixture_object();
    let old = tcp4([203, 0, 113, 7], 8080, Flags::Ack);
    let new = tcp4([192, 0, 2, 77], 8080, Flags::Ack);
    check(
        &mut obj,
        &case("old denied", old.clone(), DROP, &[c::DROP_DENY_LIST]),
    );
    check(&mut obj, &case("new allowed", new.clone(), PASS, &[]));
    let list: Vec<Cidr> = vec!["192.0.2.64/26".parse().expect("cidr")];
    obj.write_deny_list(&list).expect("rewrite");
    check(&mut obj, &case("old allowed now", old, PASS, &[]));
    check(
        &mut obj,
        &case("new denied now", new, DROP, &[c::DROP_DENY_LIST]),
    );
    // An empty configuration slot (before any write) means: no admin port,
    // no limit, and an empty list drops nothing.
    let mut fresh = Object::open().expect("open");
    fresh.load_xdp().expect("load");
    check(
        &mut fresh,
        &case(
            "unconfigured",
            tcp4([203, 0, 113, 7], ADMIN_PORT, Flags::Syn),
            PASS,
            &[c::SYN_SEEN],
        ),
    );
}
