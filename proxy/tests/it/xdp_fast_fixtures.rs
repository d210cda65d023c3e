//! The XDP L4 fast path (`xdp/src/fast.rs`) on crafted packets through
//! `BPF_PROG_TEST_RUN`: packets built with etherparse, the action, the
//! packet the program left (compared byte for byte, checksums recomputed
//! from scratch), the fast counters and the flow table.
//!
//! `bpf_fib_lookup` needs real interfaces, routes and neighbours, so every
//! test builds a namespace: three veth pairs with addresses, permanent
//! neighbour entries and `net.ipv4.ip_forward=1`, and runs the program
//! from a thread inside it as if the packet arrived on one of them. Needs
//! root (`Need::EbpfPrivilege`, `Need::Netns`).

use crate::xdp_util::ebpf_object;
use aya::maps::{Array, HashMap, PerCpuArray};
use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{
    Icmpv4Type, IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv4Options, NetHeaders,
    PacketBuilder, PacketHeaders, TransportHeader,
};
use rauta_proxy::xdp::Object;
use rauta_shared::ebpf::counter as c;
use rauta_shared::ebpf::fast::{
    self as f, fast_counter as fc, flow_flags, FastBackend, FastConfig, FastService,
    FastServiceKey, FastStats, FlowEntry, FlowKey,
};
use rauta_testkit::netns::Netns;
use rauta_testkit::{require, Need};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;

/// The client-side interface, its MAC and address (the service address).
const CLI_IF: &str = "fcli";
const CLI_MAC: [u8; 6] = [2, 0, 0, 0, 0x0a, 1];
const NODE: [u8; 4] = [10, 91, 0, 1];
/// The backend-side interface, its MAC and address (the SNAT address).
const BE_IF: &str = "fbe";
const BE_MAC: [u8; 6] = [2, 0, 0, 0, 0x0b, 1];
const SNAT: [u8; 4] = [10, 92, 0, 1];
/// An interface with a small MTU.
const SMALL_IF: &str = "fsm";
const SMALL_MAC: [u8; 6] = [2, 0, 0, 0, 0x0c, 1];
const SMALL_SNAT: [u8; 4] = [10, 93, 0, 1];
const SMALL_MTU: usize = 576;

const CLIENT: [u8; 4] = [10, 91, 0, 2];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0x0a, 2];
const CLIENT2: [u8; 4] = [10, 91, 0, 3];
const CLIENT2_MAC: [u8; 6] = [2, 0, 0, 0, 0x0a, 3];
const BACKEND: [u8; 4] = [10, 92, 0, 10];
const BACKEND_MAC: [u8; 6] = [2, 0, 0, 0, 0x0b, 10];
const BACKEND2: [u8; 4] = [10, 92, 0, 11];
const BACKEND2_MAC: [u8; 6] = [2, 0, 0, 0, 0x0b, 11];
/// Routed, but no neighbour entry.
const NO_NEIGH: [u8; 4] = [10, 92, 0, 99];
/// No route at all (the namespace has no default route).
const NO_ROUTE: [u8; 4] = [10, 250, 0, 1];
/// A backend on the client side: replies leave where they came in.
const SAME_SIDE: [u8; 4] = [10, 91, 0, 20];
const SAME_SIDE_MAC: [u8; 6] = [2, 0, 0, 0, 0x0a, 20];
const SMALL_BACKEND: [u8; 4] = [10, 93, 0, 10];
const SMALL_BACKEND_MAC: [u8; 6] = [2, 0, 0, 0, 0x0c, 10];
/// A MAC the program must overwrite.
const ANY_MAC: [u8; 6] = [2, 0, 0, 0, 0xee, 0xee];

/// Fast service ports (host order) and what stands behind them.
const SVC: u16 = 7000; // BACKEND:8080, slot 0, half 0
const SVC_TWO: u16 = 7001; // BACKEND/BACKEND2:8081, slot 1, half 1
const SVC_EMPTY: u16 = 7002; // no backend
const SVC_NO_NEIGH: u16 = 7003; // NO_NEIGH:8080
const SVC_NO_ROUTE: u16 = 7004; // NO_ROUTE:8080
const SVC_SAME_SIDE: u16 = 7005; // SAME_SIDE:9000, SNAT NODE
const SVC_SMALL: u16 = 7006; // SMALL_BACKEND:8080 behind the small MTU
const NOT_FAST: u16 = 8000;
const PORT_LO: u16 = 40000;
const PORT_HI: u16 = 40099;

/// The namespace with its interfaces, addresses, neighbours and forwarding.
fn lab() -> Netns {
    let ns = Netns::new("rxf");
    for (ifname, mac, addr) in [
        (CLI_IF, CLI_MAC, NODE),
        (BE_IF, BE_MAC, SNAT),
        (SMALL_IF, SMALL_MAC, SMALL_SNAT),
    ] {
        let peer = format!("{ifname}p");
        let mac = mac_str(mac);
        ns.exec(&[
            "ip", "link", "add", ifname, "address", &mac, "type", "veth", "peer", "name", &peer,
        ]);
        ns.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", ip_str(addr)),
            "dev",
            ifname,
        ]);
        ns.exec(&["ip", "link", "set", ifname, "up"]);
        ns.exec(&["ip", "link", "set", &peer, "up"]);
    }
    ns.exec(&["ip", "link", "set", SMALL_IF, "mtu", &SMALL_MTU.to_string()]);
    for (addr, mac, ifname) in [
        (CLIENT, CLIENT_MAC, CLI_IF),
        (CLIENT2, CLIENT2_MAC, CLI_IF),
        (SAME_SIDE, SAME_SIDE_MAC, CLI_IF),
        (BACKEND, BACKEND_MAC, BE_IF),
        (BACKEND2, BACKEND2_MAC, BE_IF),
        (SMALL_BACKEND, SMALL_BACKEND_MAC, SMALL_IF),
    ] {
        ns.exec(&[
            "ip",
            "neigh",
            "replace",
            &ip_str(addr),
            "lladdr",
            &mac_str(mac),
            "dev",
            ifname,
            "nud",
            "permanent",
        ]);
    }
    // Without forwarding the lookup answers BPF_FIB_LKUP_RET_FWD_DISABLED.
    ns.exec(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    ns
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ip_str(a: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

fn ifindex(name: &str) -> u32 {
    nix::net::if_::if_nametoindex(name).unwrap_or_else(|e| panic!("ifindex of {name}: {e}"))
}

fn backend(addr: [u8; 4], snat_addr: [u8; 4], port: u16) -> FastBackend {
    FastBackend {
        addr,
        snat_addr,
        port,
        _pad: 0,
    }
}

fn put_config(obj: &mut Object, enabled: bool, lo: u16, hi: u16) {
    let map = obj.map_mut(f::MAP_FAST_CONFIG).expect("FAST_CONFIG");
    let mut config: Array<_, FastConfig> = Array::try_from(map).expect("array");
    let cfg = FastConfig {
        enabled: u32::from(enabled),
        snat_port_lo: lo,
        snat_port_hi: hi,
    };
    config.set(0, cfg, 0).expect("write FAST_CONFIG");
}

/// Writes a service's backends and Maglev table into `half`, then the
/// service entry that makes the half live.
fn put_service(obj: &mut Object, port: u16, slot: u32, half: u32, backends: &[FastBackend]) {
    let n = backends.len() as u32;
    {
        let map = obj.map_mut(f::MAP_FAST_BACKENDS).expect("FAST_BACKENDS");
        let mut array: Array<_, FastBackend> = Array::try_from(map).expect("array");
        for (i, b) in backends.iter().enumerate() {
            array
                .set(f::backend_index(slot, half, i as u32), b, 0)
                .expect("write backend");
        }
    }
    // A fresh table is all zeroes: right for one backend.
    if n > 1 {
        let map = obj.map_mut(f::MAP_FAST_MAGLEV).expect("FAST_MAGLEV");
        let mut table: Array<_, u32> = Array::try_from(map).expect("array");
        for at in 0..f::FAST_MAGLEV_SIZE {
            table
                .set(f::maglev_index(slot, half, at), at % n, 0)
                .expect("write maglev");
        }
    }
    let map = obj.map_mut(f::MAP_FAST_SERVICES).expect("FAST_SERVICES");
    let mut services: HashMap<_, FastServiceKey, FastService> =
        HashMap::try_from(map).expect("hash map");
    let svc = FastService {
        generation: 1,
        slot,
        half,
        backends: n,
        _pad: 0,
    };
    services
        .insert(FastServiceKey { port, _pad: 0 }, svc, 0)
        .expect("write service");
}

/// The object with `xdp_ingress` loaded and every fixture service.
fn fast_object() -> Object {
    let mut obj = Object::open_with(true).expect("open the eBPF object");
    obj.load_xdp().expect("load xdp_ingress (verifier)");
    put_config(&mut obj, true, PORT_LO, PORT_HI);
    put_service(&mut obj, SVC, 0, 0, &[backend(BACKEND, SNAT, 8080)]);
    put_service(
        &mut obj,
        SVC_TWO,
        1,
        1,
        &[backend(BACKEND, SNAT, 8081), backend(BACKEND2, SNAT, 8081)],
    );
    put_service(&mut obj, SVC_EMPTY, 2, 0, &[]);
    put_service(
        &mut obj,
        SVC_NO_NEIGH,
        3,
        0,
        &[backend(NO_NEIGH, SNAT, 8080)],
    );
    put_service(
        &mut obj,
        SVC_NO_ROUTE,
        4,
        0,
        &[backend(NO_ROUTE, SNAT, 8080)],
    );
    put_service(
        &mut obj,
        SVC_SAME_SIDE,
        5,
        0,
        &[backend(SAME_SIDE, NODE, 9000)],
    );
    put_service(
        &mut obj,
        SVC_SMALL,
        6,
        0,
        &[backend(SMALL_BACKEND, SMALL_SNAT, 8080)],
    );
    obj
}

fn flows(obj: &mut Object) -> Vec<(FlowKey, FlowEntry)> {
    let map = obj.map_mut(f::MAP_FAST_FLOWS).expect("FAST_FLOWS");
    let table: HashMap<_, FlowKey, FlowEntry> = HashMap::try_from(map).expect("hash map");
    table.iter().map(|kv| kv.expect("flow entry")).collect()
}

fn flow(obj: &mut Object, key: FlowKey) -> Option<FlowEntry> {
    flows(obj)
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

type FastCounters = [u64; fc::COUNT as usize];

fn fast_counters(obj: &mut Object) -> FastCounters {
    let map = obj.map_mut(f::MAP_FAST_COUNTERS).expect("FAST_COUNTERS");
    let array: PerCpuArray<_, u64> = PerCpuArray::try_from(map).expect("per-cpu array");
    let mut out = [0u64; fc::COUNT as usize];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = array.get(&(i as u32), 0).expect("counter").iter().sum();
    }
    out
}

fn stats(obj: &mut Object, slot: u32) -> FastStats {
    let map = obj.map_mut(f::MAP_FAST_STATS).expect("FAST_STATS");
    let array: PerCpuArray<_, FastStats> = PerCpuArray::try_from(map).expect("per-cpu array");
    array
        .get(&slot, 0)
        .expect("stats")
        .iter()
        .fold(FastStats::default(), |a, s| FastStats {
            packets_in: a.packets_in + s.packets_in,
            bytes_in: a.bytes_in + s.bytes_in,
            packets_out: a.packets_out + s.packets_out,
            bytes_out: a.bytes_out + s.bytes_out,
            flows: a.flows + s.flows,
        })
}

/// Which TCP flags a crafted segment carries.
#[derive(Clone, Copy, Debug)]
enum Flags {
    Syn,
    SynAck,
    Ack,
    FinAck,
    Rst,
}

/// An IPv4 TCP segment on the wire.
#[derive(Clone, Copy)]
struct Seg {
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
}

impl Seg {
    fn key(&self) -> FlowKey {
        FlowKey {
            src_addr: self.src,
            dst_addr: self.dst,
            src_port: self.sport.to_be(),
            dst_port: self.dport.to_be(),
        }
    }
}

fn tcp(seg: Seg, flags: Flags, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(ANY_MAC, ANY_MAC)
        .ipv4(seg.src, seg.dst, 64)
        .tcp(seg.sport, seg.dport, 1000, 65535);
    let b = match flags {
        Flags::Syn => b.syn(),
        Flags::SynAck => b.syn().ack(7),
        Flags::Ack => b.ack(7),
        Flags::FinAck => b.fin().ack(7),
        Flags::Rst => b.rst(),
    };
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("build tcp4");
    out
}

fn client_seg(client: [u8; 4], sport: u16, dport: u16) -> Seg {
    Seg {
        src: client,
        sport,
        dst: NODE,
        dport,
    }
}

/// Runs the program on `packet` arriving on `iface`.
fn run(obj: &mut Object, packet: &[u8], iface: &str) -> (u32, Vec<u8>) {
    obj.test_run_xdp_out(packet, ifindex(iface))
        .unwrap_or_else(|e| panic!("test_run on {iface}: {e}"))
}

/// Checks that `out` is `input` with exactly the MACs, addresses and
/// ports of `want` (and `macs`) written, and that both checksums equal a
/// from-scratch computation.
fn check_rewritten(name: &str, input: &[u8], out: &[u8], want: Seg, macs: ([u8; 6], [u8; 6])) {
    assert_eq!(out.len(), input.len(), "{name}: length");
    let mut expected = input.to_vec();
    expected[0..6].copy_from_slice(&macs.0);
    expected[6..12].copy_from_slice(&macs.1);
    expected[26..30].copy_from_slice(&want.src);
    expected[30..34].copy_from_slice(&want.dst);
    expected[34..36].copy_from_slice(&want.sport.to_be_bytes());
    expected[36..38].copy_from_slice(&want.dport.to_be_bytes());
    // The checksums are checked below, independently.
    expected[24..26].copy_from_slice(&out[24..26]);
    expected[50..52].copy_from_slice(&out[50..52]);
    assert_eq!(out, &expected[..], "{name}: rewritten packet");
    let parsed = PacketHeaders::from_ethernet_slice(out).expect("parse output");
    let Some(NetHeaders::Ipv4(ip, _)) = &parsed.net else {
        panic!("{name}: no IPv4 header in the output");
    };
    let Some(TransportHeader::Tcp(tcp)) = &parsed.transport else {
        panic!("{name}: no TCP header in the output");
    };
    assert_eq!(
        ip.header_checksum,
        ip.calc_header_checksum(),
        "{name}: IPv4 checksum"
    );
    let payload = parsed.payload.slice();
    assert_eq!(
        tcp.checksum,
        tcp.calc_checksum_ipv4(ip, payload).expect("tcp checksum"),
        "{name}: TCP checksum"
    );
    assert_eq!(payload, &input[54..], "{name}: payload");
}

/// The source port a forwarded packet got.
fn sport_of(out: &[u8]) -> u16 {
    u16::from_be_bytes([out[34], out[35]])
}

/// Asserts that exactly `which` fast counters moved, by one each.
fn assert_moved(name: &str, before: &FastCounters, after: &FastCounters, which: &[u32]) {
    let mut want = *before;
    for &i in which {
        want[i as usize] += 1;
    }
    assert_eq!(after, &want, "{name}: fast counters (index = fast_counter)");
}

/// One packet that must pass untouched, with the fast counters it moves.
struct PassCase {
    name: &'static str,
    packet: Vec<u8>,
    iface: &'static str,
    counters: Vec<u32>,
}

fn pass_case(name: &'static str, packet: Vec<u8>, counters: &[u32]) -> PassCase {
    PassCase {
        name,
        packet,
        iface: CLI_IF,
        counters: counters.to_vec(),
    }
}

fn check_pass(obj: &mut Object, case: &PassCase) {
    let before = fast_counters(obj);
    let flows_before = flows(obj).len();
    let filter_before = obj.counters().expect("counters");
    let (action, out) = run(obj, &case.packet, case.iface);
    assert_eq!(action, XDP_PASS, "{}: action", case.name);
    assert_eq!(out, case.packet, "{}: packet changed", case.name);
    assert_moved(case.name, &before, &fast_counters(obj), &case.counters);
    assert_eq!(flows(obj).len(), flows_before, "{}: flow table", case.name);
    let filter_after = obj.counters().expect("counters");
    assert_eq!(
        filter_after[c::ACTION_PASS as usize] - filter_before[c::ACTION_PASS as usize],
        1,
        "{}: ACTION_PASS",
        case.name
    );
}

/// Runs `f` inside a fresh lab namespace.
fn in_lab(f: impl FnOnce() + Send + 'static) {
    let ns = lab();
    ns.enter(f);
}

/// A flow's life: the SYN creates both entries and goes to the backend,
/// data follows it, replies come back as the service, a FIN is flagged and
/// a RST removes both entries.
#[test]
fn xdp_fast_flow_life() {
    require!(Need::EbpfPrivilege, ebpf_object(), Need::Netns);
    in_lab(|| {
        let mut obj = fast_object();
        let client = client_seg(CLIENT, 50000, SVC);
        let redirect_before = obj.counters().expect("counters")[c::ACTION_REDIRECT as usize];

        // SYN: redirected to the backend side, NATed.
        let c0 = fast_counters(&mut obj);
        let syn = tcp(client, Flags::Syn, &[]);
        let (action, out) = run(&mut obj, &syn, CLI_IF);
        assert_eq!(action, XDP_REDIRECT, "syn: action");
        let port = sport_of(&out);
        assert!((PORT_LO..=PORT_HI).contains(&port), "syn: port {port}");
        let to_backend = Seg {
            src: SNAT,
            sport: port,
            dst: BACKEND,
            dport: 8080,
        };
        check_rewritten("syn", &syn, &out, to_backend, (BACKEND_MAC, BE_MAC));
        assert_moved(
            "syn",
            &c0,
            &fast_counters(&mut obj),
            &[fc::NEW_FLOWS, fc::FORWARDED],
        );
        let fwd = flow(&mut obj, client.key()).expect("forward entry");
        assert_eq!(
            (fwd.src_addr, fwd.dst_addr, fwd.src_port, fwd.dst_port),
            (SNAT, BACKEND, port.to_be(), 8080u16.to_be()),
            "forward entry"
        );
        assert_eq!((fwd.reply, fwd.slot, fwd.flags), (0, 0, 0), "forward entry");
        let from_backend = Seg {
            src: BACKEND,
            sport: 8080,
            dst: SNAT,
            dport: port,
        };
        let rev = flow(&mut obj, from_backend.key()).expect("reverse entry");
        assert_eq!(
            (rev.src_addr, rev.dst_addr, rev.src_port, rev.dst_port),
            (NODE, CLIENT, SVC.to_be(), 50000u16.to_be()),
            "reverse entry"
        );
        assert_eq!((rev.reply, rev.slot, rev.flags), (1, 0, 0), "reverse entry");
        assert_eq!(flows(&mut obj).len(), 2, "two entries");

        // A retransmitted SYN and data follow the same flow.
        let c1 = fast_counters(&mut obj);
        let (action, out) = run(&mut obj, &syn, CLI_IF);
        assert_eq!(action, XDP_REDIRECT, "syn again");
        check_rewritten("syn again", &syn, &out, to_backend, (BACKEND_MAC, BE_MAC));
        let data = tcp(client, Flags::Ack, b"GET / HTTP/1.0\r\n\r\n and more bytes");
        let (action, out) = run(&mut obj, &data, CLI_IF);
        assert_eq!(action, XDP_REDIRECT, "data");
        check_rewritten("data", &data, &out, to_backend, (BACKEND_MAC, BE_MAC));
        assert_moved(
            "data",
            &c1,
            &fast_counters(&mut obj),
            &[fc::FORWARDED, fc::FORWARDED],
        );

        // The backend answers: back to the client as the service.
        let c2 = fast_counters(&mut obj);
        let to_client = Seg {
            src: NODE,
            sport: SVC,
            dst: CLIENT,
            dport: 50000,
        };
        let synack = tcp(from_backend, Flags::SynAck, &[]);
        let (action, out) = run(&mut obj, &synack, BE_IF);
        assert_eq!(action, XDP_REDIRECT, "syn-ack");
        check_rewritten("syn-ack", &synack, &out, to_client, (CLIENT_MAC, CLI_MAC));
        let answer = tcp(from_backend, Flags::Ack, &[0x5a; 700]);
        let (action, out) = run(&mut obj, &answer, BE_IF);
        assert_eq!(action, XDP_REDIRECT, "answer");
        check_rewritten("answer", &answer, &out, to_client, (CLIENT_MAC, CLI_MAC));
        assert_moved(
            "replies",
            &c2,
            &fast_counters(&mut obj),
            &[fc::REPLIED, fc::REPLIED],
        );
        let s = stats(&mut obj, 0);
        let ip_len = |p: &[u8]| (p.len() - 14) as u64;
        assert_eq!(
            (s.flows, s.packets_in, s.packets_out),
            (1, 3, 2),
            "service stats"
        );
        assert_eq!(s.bytes_in, 2 * ip_len(&syn) + ip_len(&data), "bytes in");
        assert_eq!(s.bytes_out, ip_len(&synack) + ip_len(&answer), "bytes out");
        assert!(
            flow(&mut obj, client.key()).expect("entry").last_ns > 0,
            "last_ns"
        );

        // FIN from the client: flagged on its direction only.
        let c3 = fast_counters(&mut obj);
        let fin = tcp(client, Flags::FinAck, &[]);
        let (action, out) = run(&mut obj, &fin, CLI_IF);
        assert_eq!(action, XDP_REDIRECT, "fin");
        check_rewritten("fin", &fin, &out, to_backend, (BACKEND_MAC, BE_MAC));
        assert_moved(
            "fin",
            &c3,
            &fast_counters(&mut obj),
            &[fc::FIN, fc::FORWARDED],
        );
        assert_eq!(
            flow(&mut obj, client.key()).expect("entry").flags,
            flow_flags::FIN
        );
        assert_eq!(flow(&mut obj, from_backend.key()).expect("entry").flags, 0);

        // RST from the backend: forwarded, then both entries are gone.
        let c4 = fast_counters(&mut obj);
        let rst = tcp(from_backend, Flags::Rst, &[]);
        let (action, out) = run(&mut obj, &rst, BE_IF);
        assert_eq!(action, XDP_REDIRECT, "rst");
        check_rewritten("rst", &rst, &out, to_client, (CLIENT_MAC, CLI_MAC));
        assert_moved(
            "rst",
            &c4,
            &fast_counters(&mut obj),
            &[fc::RST, fc::REPLIED],
        );
        assert!(flows(&mut obj).is_empty(), "entries left after RST");

        // Later segments of the flow are user space's.
        check_pass(
            &mut obj,
            &pass_case(
                "after rst",
                tcp(client, Flags::Ack, b"late"),
                &[fc::PASS_NO_FLOW],
            ),
        );
        let redirect_after = obj.counters().expect("counters")[c::ACTION_REDIRECT as usize];
        assert_eq!(redirect_after - redirect_before, 7, "ACTION_REDIRECT");
    });
}

/// A backend on the interface the SYN came in on: XDP_TX, both ways.
#[test]
fn xdp_fast_same_interface_is_tx() {
    require!(Need::EbpfPrivilege, ebpf_object(), Need::Netns);
    in_lab(|| {
        let mut obj = fast_object();
        let client = client_seg(CLIENT2, 50001, SVC_SAME_SIDE);
        let syn = tcp(client, Flags::Syn, b"early data");
        let tx_before = obj.counters().expect("counters")[c::ACTION_TX as usize];
        let (action, out) = run(&mut obj, &syn, CLI_IF);
        assert_eq!(action, XDP_TX, "syn: action");
        let port = sport_of(&out);
        let to_backend = Seg {
            src: NODE,
            sport: port,
            dst: SAME_SIDE,
            dport: 9000,
        };
        check_rewritten("syn", &syn, &out, to_backend, (SAME_SIDE_MAC, CLI_MAC));
        let answer = tcp(
            Seg {
                src: SAME_SIDE,
                sport: 9000,
                dst: NODE,
                dport: port,
            },
            Flags::SynAck,
            &[],
        );
        let (action, out) = run(&mut obj, &answer, CLI_IF);
        assert_eq!(action, XDP_TX, "syn-ack: action");
        let to_client = Seg {
            src: NODE,
            sport: SVC_SAME_SIDE,
            dst: CLIENT2,
            dport: 50001,
        };
        check_rewritten("syn-ack", &answer, &out, to_client, (CLIENT2_MAC, CLI_MAC));
        let tx_after = obj.counters().expect("counters")[c::ACTION_TX as usize];
        assert_eq!(tx_after - tx_before, 2, "ACTION_TX");
    });
}

fn ipv4_options_syn(seg: Seg) -> Vec<u8> {
    let mut ip = Ipv4Header::new(0, 64, IpNumber::TCP, seg.src, seg.dst).expect("ipv4");
    ip.options = Ipv4Options::try_from(&[1u8, 1, 1, 0][..]).expect("options");
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ANY_MAC, ANY_MAC)
        .ip(IpHeaders::Ipv4(ip, Ipv4Extensions::default()))
        .tcp(seg.sport, seg.dport, 1, 65535)
        .syn()
        .write(&mut out, &[])
        .expect("build ipv4 options");
    out
}

fn ipv6_syn(dport: u16) -> Vec<u8> {
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    src[15] = 2;
    let mut dst = src;
    dst[15] = 1;
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ANY_MAC, ANY_MAC)
        .ipv6(src, dst, 64)
        .tcp(50000, dport, 1, 65535)
        .syn()
        .write(&mut out, &[])
        .expect("build ipv6");
    out
}

fn icmp4(icmp: Icmpv4Type) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ANY_MAC, ANY_MAC)
        .ipv4(BACKEND, SNAT, 64)
        .icmpv4(icmp)
        .write(&mut out, &[0x45; 28])
        .expect("build icmp");
    out
}

fn udp4(dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ANY_MAC, ANY_MAC)
        .ipv4(CLIENT, NODE, 64)
        .udp(50000, dport)
        .write(&mut out, b"hello")
        .expect("build udp");
    out
}

/// Everything the fast path does not take passes untouched, with its
/// reason counted and no flow entry written.
#[test]
fn xdp_fast_pass_reasons() {
    require!(Need::EbpfPrivilege, ebpf_object(), Need::Netns);
    in_lab(|| {
        let mut obj = fast_object();
        let seg = |dport| client_seg(CLIENT, 50100, dport);
        let cases = vec![
            pass_case(
                "ack without flow",
                tcp(seg(SVC), Flags::Ack, b"x"),
                &[fc::PASS_NO_FLOW],
            ),
            pass_case(
                "syn-ack without flow",
                tcp(seg(SVC), Flags::SynAck, &[]),
                &[fc::PASS_NO_FLOW],
            ),
            pass_case(
                "rst without flow",
                tcp(seg(SVC), Flags::Rst, &[]),
                &[fc::PASS_NO_FLOW],
            ),
            pass_case(
                "syn to another port",
                tcp(seg(NOT_FAST), Flags::Syn, &[]),
                &[],
            ),
            pass_case(
                "ack to another port",
                tcp(seg(NOT_FAST), Flags::Ack, &[]),
                &[],
            ),
            pass_case(
                "no backend",
                tcp(seg(SVC_EMPTY), Flags::Syn, &[]),
                &[fc::PASS_NO_BACKEND],
            ),
            pass_case(
                "no neighbour",
                tcp(seg(SVC_NO_NEIGH), Flags::Syn, &[]),
                &[fc::PASS_NO_ROUTE],
            ),
            pass_case(
                "no route",
                tcp(seg(SVC_NO_ROUTE), Flags::Syn, &[]),
                &[fc::PASS_NO_ROUTE],
            ),
            pass_case(
                "larger than the egress MTU",
                tcp(seg(SVC_SMALL), Flags::Syn, &[0u8; SMALL_MTU]),
                &[fc::PASS_MTU],
            ),
            pass_case(
                "ip options",
                ipv4_options_syn(seg(SVC)),
                &[fc::PASS_IP_OPTIONS],
            ),
            pass_case(
                "ip options to another port",
                ipv4_options_syn(seg(NOT_FAST)),
                &[],
            ),
            pass_case("ipv6", ipv6_syn(SVC), &[fc::PASS_IPV6]),
            pass_case("ipv6 to another port", ipv6_syn(NOT_FAST), &[]),
            pass_case(
                "icmp error",
                icmp4(Icmpv4Type::DestinationUnreachable(
                    DestUnreachableHeader::Port,
                )),
                &[fc::PASS_ICMP],
            ),
            pass_case(
                "icmp echo",
                icmp4(Icmpv4Type::EchoRequest(etherparse::IcmpEchoHeader {
                    id: 1,
                    seq: 1,
                })),
                &[],
            ),
            pass_case("udp to a fast port number", udp4(SVC), &[]),
        ];
        for case in &cases {
            check_pass(&mut obj, case);
        }
        // The small interface forwards what fits.
        let small = tcp(seg(SVC_SMALL), Flags::Syn, &[0u8; 100]);
        let (action, _) = run(&mut obj, &small, CLI_IF);
        assert_eq!(action, XDP_REDIRECT, "fits the MTU");
    });
}

/// The source port range: one port serves one flow per backend, the next
/// SYN finds none; Maglev spreads flows over both backends of a service.
#[test]
fn xdp_fast_ports_and_backends() {
    require!(Need::EbpfPrivilege, ebpf_object(), Need::Netns);
    in_lab(|| {
        let mut obj = fast_object();
        put_config(&mut obj, true, PORT_LO, PORT_LO);
        let (action, out) = run(
            &mut obj,
            &tcp(client_seg(CLIENT, 50200, SVC), Flags::Syn, &[]),
            CLI_IF,
        );
        assert_eq!(action, XDP_REDIRECT, "first flow");
        assert_eq!(sport_of(&out), PORT_LO, "first flow's port");
        check_pass(
            &mut obj,
            &pass_case(
                "second flow, no port left",
                tcp(client_seg(CLIENT, 50201, SVC), Flags::Syn, &[]),
                &[fc::PASS_PORTS_EXHAUSTED],
            ),
        );
        // A range that ends below its start is no range.
        put_config(&mut obj, true, PORT_HI, PORT_LO);
        check_pass(
            &mut obj,
            &pass_case(
                "empty range",
                tcp(client_seg(CLIENT, 50202, SVC), Flags::Syn, &[]),
                &[fc::PASS_PORTS_EXHAUSTED],
            ),
        );

        put_config(&mut obj, true, PORT_LO, PORT_HI);
        let mut seen = std::collections::HashMap::new();
        let mut ports = std::collections::HashSet::new();
        for i in 0..24u16 {
            let client = client_seg(CLIENT, 51000 + i, SVC_TWO);
            let syn = tcp(client, Flags::Syn, &[]);
            let (action, out) = run(&mut obj, &syn, CLI_IF);
            assert_eq!(action, XDP_REDIRECT, "flow {i}");
            let dst = [out[30], out[31], out[32], out[33]];
            let mac = if dst == BACKEND {
                BACKEND_MAC
            } else {
                BACKEND2_MAC
            };
            let port = sport_of(&out);
            let want = Seg {
                src: SNAT,
                sport: port,
                dst,
                dport: 8081,
            };
            check_rewritten(&format!("flow {i}"), &syn, &out, want, (mac, BE_MAC));
            assert!((PORT_LO..=PORT_HI).contains(&port), "flow {i}: port {port}");
            *seen.entry(dst).or_insert(0) += 1;
            // Two flows may share a port only towards different backends.
            assert!(ports.insert((dst, port)), "flow {i}: port {port} reused");
            // The same SYN again keeps its backend and port.
            let (_, again) = run(&mut obj, &syn, CLI_IF);
            assert_eq!(again, out, "flow {i}: retransmitted SYN");
        }
        assert_eq!(seen.len(), 2, "backends used: {seen:?}");
        let s = stats(&mut obj, 1);
        assert_eq!((s.flows, s.packets_in), (24, 48), "service stats");
    });
}

/// Every prefix of fast-path packets passes untouched and writes no
/// entry; only the whole packet is forwarded.
#[test]
fn xdp_fast_truncated_at_every_offset() {
    require!(Need::EbpfPrivilege, ebpf_object(), Need::Netns);
    in_lab(|| {
        let mut obj = fast_object();
        // A flow for the data segment.
        let client = client_seg(CLIENT, 50300, SVC);
        let (action, _) = run(&mut obj, &tcp(client, Flags::Syn, &[]), CLI_IF);
        assert_eq!(action, XDP_REDIRECT, "syn");
        let packets = [
            (
                "syn",
                tcp(client_seg(CLIENT, 50301, SVC), Flags::Syn, b"abc"),
            ),
            ("data", tcp(client, Flags::Ack, b"some payload bytes")),
        ];
        // BPF_PROG_TEST_RUN refuses XDP input shorter than an Ethernet header.
        let mut ran = 0;
        for (name, packet) in &packets {
            for cut in 14..packet.len() {
                let before = fast_counters(&mut obj);
                let flows_before = flows(&mut obj);
                let input = &packet[..cut];
                let (action, out) = run(&mut obj, input, CLI_IF);
                assert_eq!(action, XDP_PASS, "{name} cut at {cut}");
                assert_eq!(out, input, "{name} cut at {cut}: changed");
                assert_eq!(fast_counters(&mut obj), before, "{name} cut at {cut}");
                assert_eq!(flows(&mut obj), flows_before, "{name} cut at {cut}");
                ran += 1;
            }
            let (action, _) = run(&mut obj, packet, CLI_IF);
            assert_eq!(action, XDP_REDIRECT, "{name} whole");
        }
        assert!(ran > 100, "only {ran} cuts ran");
    });
}

/// Switched off, the fast path neither creates nor follows flows.
#[test]
fn xdp_fast_disabled() {
    require!(Need::EbpfPrivilege, ebpf_object(), Need::Netns);
    in_lab(|| {
        let mut obj = fast_object();
        let client = client_seg(CLIENT, 50400, SVC);
        let (action, _) = run(&mut obj, &tcp(client, Flags::Syn, &[]), CLI_IF);
        assert_eq!(action, XDP_REDIRECT, "enabled");
        put_config(&mut obj, false, PORT_LO, PORT_HI);
        for case in [
            pass_case("existing flow", tcp(client, Flags::Ack, b"x"), &[]),
            pass_case(
                "new flow",
                tcp(client_seg(CLIENT, 50401, SVC), Flags::Syn, &[]),
                &[],
            ),
            pass_case("ipv6", ipv6_syn(SVC), &[]),
            pass_case(
                "no backend",
                tcp(client_seg(CLIENT, 50402, SVC_EMPTY), Flags::Syn, &[]),
                &[],
            ),
        ] {
            check_pass(&mut obj, &case);
        }
        // An object nobody configured: FAST_CONFIG is zero, i.e. off.
        let mut fresh = Object::open().expect("open");
        fresh.load_xdp().expect("load");
        check_pass(
            &mut fresh,
            &pass_case("unconfigured", tcp(client, Flags::Syn, &[]), &[]),
        );
    });
}
