//! The kernel side of the XDP L4 fast path (the contract, maps and byte
//! orders are in `rauta_shared::ebpf::fast`).
//!
//! [`run`] sees every packet the filter in `verdict()` passed. For untagged
//! IPv4 TCP without options it looks the packet up in `FAST_FLOWS`: a hit is
//! NATed with the entry, a SYN to a `FAST_SERVICES` port creates both
//! directions' entries (backend by Maglev, source port from the configured
//! range), and the rewritten packet goes out through `bpf_fib_lookup` as
//! `XDP_TX` or `XDP_REDIRECT`. Everything else, and everything the fast path
//! cannot finish, is passed untouched: the route is looked up before any
//! table or packet byte changes, so a pass leaves both as they were.
//!
//! TTL is left alone: the fast path stands in for the user-space proxy,
//! which would send the bytes with a fresh TTL anyway.

use core::num::NonZeroU32;

use crate::wire::{
    EthHdr, Ipv4Hdr, TcpHdr, ETH_HLEN, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_TCP,
    IPV6_HLEN, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN,
};
use aya_ebpf::bindings::xdp_action::{XDP_PASS, XDP_TX};
use aya_ebpf::bindings::{
    bpf_fib_lookup as FibParams, BPF_ANY, BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_SUCCESS,
    BPF_NOEXIST,
};
use aya_ebpf::helpers::{bpf_fib_lookup, bpf_ktime_get_ns, bpf_redirect};
use aya_ebpf::macros::map;
use aya_ebpf::maps::{Array, HashMap, LruHashMap, PerCpuArray};
use aya_ebpf::programs::XdpContext;
use aya_ebpf::EbpfContext;
use rauta_shared::ebpf::fast::{
    backend_index, fast_counter, flow_flags, maglev_index, FastBackend, FastConfig, FastService,
    FastServiceKey, FastStats, FlowEntry, FlowKey, FAST_BACKENDS_MAX, FAST_FLOWS_MAX,
    FAST_MAGLEV_SIZE, FAST_SERVICES_MAX, SNAT_PROBES,
};

/// TCP ports on the fast path (`MAP_FAST_SERVICES`).
#[map]
static FAST_SERVICES: HashMap<FastServiceKey, FastService> =
    HashMap::with_max_entries(FAST_SERVICES_MAX, 0);

/// Backends of every service and table half (`MAP_FAST_BACKENDS`).
#[map]
static FAST_BACKENDS: Array<FastBackend> =
    Array::with_max_entries(FAST_SERVICES_MAX * 2 * FAST_BACKENDS_MAX, 0);

/// Maglev tables of every service and table half (`MAP_FAST_MAGLEV`).
#[map]
static FAST_MAGLEV: Array<u32> =
    Array::with_max_entries(FAST_SERVICES_MAX * 2 * FAST_MAGLEV_SIZE, 0);

/// Both directions of every fast flow (`MAP_FAST_FLOWS`).
#[map]
static FAST_FLOWS: LruHashMap<FlowKey, FlowEntry> = LruHashMap::with_max_entries(FAST_FLOWS_MAX, 0);

/// Per-CPU counters (`MAP_FAST_COUNTERS`), indexed by `fast_counter::*`.
#[map]
static FAST_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(fast_counter::COUNT, 0);

/// Per-CPU traffic by service slot (`MAP_FAST_STATS`).
#[map]
static FAST_STATS: PerCpuArray<FastStats> = PerCpuArray::with_max_entries(FAST_SERVICES_MAX, 0);

/// The fast path's switch and source-port range (`MAP_FAST_CONFIG`).
#[map]
static FAST_CONFIG: Array<FastConfig> = Array::with_max_entries(1, 0);

const AF_INET: u8 = 2;
const EEXIST: i32 = 17;

/// The headers of a packet the fast path handles, as laid out in it
/// (alignment 1, so fields are read and written bytewise).
#[repr(C)]
struct Frame {
    eth: EthHdr,
    ip: Ipv4Hdr,
    tcp: TcpHdr,
}

/// Why a packet is passed: the counter to bump, if any.
type Pass = Option<u32>;

/// Adds one to fast counter `index` of this CPU.
#[inline(always)]
fn count(index: u32) {
    if let Some(slot) = FAST_COUNTERS.get_ptr_mut(index) {
        // SAFETY: this CPU's slot of a per-CPU array, valid for the program
        // run; XDP runs with preemption off, so nothing else writes it.
        unsafe { *slot += 1 };
    }
}

/// The fast path's verdict on a packet the filter passed.
#[inline(always)]
pub fn run(ctx: &XdpContext) -> u32 {
    let cfg = match FAST_CONFIG.get(0) {
        Some(cfg) if cfg.enabled != 0 => *cfg,
        _ => return XDP_PASS,
    };
    match fast(ctx, &cfg) {
        Ok(action) => action,
        Err(reason) => {
            if let Some(reason) = reason {
                count(reason);
            }
            XDP_PASS
        }
    }
}

/// The service on TCP port `port` (host order), if it is on the fast path.
#[inline(always)]
fn service(port: u16) -> Option<FastService> {
    let key = FastServiceKey { port, _pad: 0 };
    // SAFETY: a lookup in a preallocated hash map; the value is copied at
    // once (user space replaces entries whole, a torn read only yields a
    // mix of two valid generations for this one packet).
    unsafe { FAST_SERVICES.get(key) }.copied()
}

#[inline(always)]
fn fast(ctx: &XdpContext, cfg: &FastConfig) -> Result<u32, Pass> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + ETH_HLEN > end {
        return Err(None);
    }
    // SAFETY: the Ethernet header lies inside the packet (checked above);
    // `EthHdr` is bytes only.
    let proto = u16::from_be_bytes(unsafe { (*(start as *const EthHdr)).proto });
    if proto == ETH_P_IPV6 {
        return Err(ipv6(start, end));
    }
    if proto != ETH_P_IPV4 || start + ETH_HLEN + core::mem::size_of::<Ipv4Hdr>() > end {
        return Err(None);
    }
    // SAFETY: the IPv4 header lies inside the packet (checked above).
    let (version_ihl, l4, frag) = unsafe {
        let ip = (start + ETH_HLEN) as *const Ipv4Hdr;
        ((*ip).version_ihl, (*ip).proto, (*ip).frag)
    };
    // The filter's parse already passed fragments, bad versions and IHL < 5.
    if version_ihl >> 4 != 4 || u16::from_be_bytes(frag) & 0x3fff != 0 {
        return Err(None);
    }
    let l4_offset = ETH_HLEN + (version_ihl & 0x0f) as usize * 4;
    if l4 == IPPROTO_ICMP {
        return Err(icmp(start + l4_offset, end));
    }
    if l4 != IPPROTO_TCP {
        return Err(None);
    }
    if version_ihl & 0x0f != 5 {
        return Err(options(start + l4_offset, end));
    }
    if start + core::mem::size_of::<Frame>() > end {
        return Err(None);
    }
    let frame = start as *mut Frame;
    // SAFETY: the whole `Frame` lies inside the packet (checked above).
    let (tot_len, tos, data_off, flags, key) = unsafe {
        let f = &*frame;
        let key = FlowKey {
            src_addr: f.ip.src,
            dst_addr: f.ip.dst,
            src_port: u16::from_ne_bytes(f.tcp.sport),
            dst_port: u16::from_ne_bytes(f.tcp.dport),
        };
        (
            u16::from_be_bytes(f.ip.tot_len),
            f.ip.tos,
            f.tcp.data_off,
            f.tcp.flags,
            key,
        )
    };
    // A packet shorter than its IP length (or a bogus length) is the
    // stack's to drop; forwarding it would send bytes that are not there.
    if data_off >> 4 < 5
        || (tot_len as usize) < core::mem::size_of::<Ipv4Hdr>() + core::mem::size_of::<TcpHdr>()
        || start + ETH_HLEN + tot_len as usize > end
    {
        return Err(None);
    }
    let packet = Packet {
        frame,
        key,
        tot_len,
        tos,
        flags,
    };
    match FAST_FLOWS.get_ptr_mut(key) {
        Some(entry) => established(ctx, &packet, entry),
        None => new_flow(ctx, &packet, cfg),
    }
}

/// What the fast path read of a packet it may forward.
struct Packet {
    frame: *mut Frame,
    key: FlowKey,
    /// IP total length, host order.
    tot_len: u16,
    tos: u8,
    /// TCP flags.
    flags: u8,
}

/// IPv6 TCP to a fast service port is counted (the fast path is IPv4 only).
#[inline(always)]
fn ipv6(start: usize, end: usize) -> Pass {
    let tcp = start + ETH_HLEN + IPV6_HLEN;
    if tcp + 4 > end {
        return None;
    }
    // SAFETY: the next-header byte (offset 6 of the IPv6 header) and the
    // TCP ports lie inside the packet (checked above).
    let (next, dport) = unsafe {
        (
            *((start + ETH_HLEN + 6) as *const u8),
            *((tcp + 2) as *const [u8; 2]),
        )
    };
    if next != IPPROTO_TCP {
        return None;
    }
    service(u16::from_be_bytes(dport)).map(|_| fast_counter::PASS_IPV6)
}

/// IPv4 TCP with options to a fast service port is counted.
#[inline(always)]
fn options(tcp: usize, end: usize) -> Pass {
    if tcp + 4 > end {
        return None;
    }
    // SAFETY: the TCP ports lie inside the packet (checked above).
    let dport = unsafe { *((tcp + 2) as *const [u8; 2]) };
    service(u16::from_be_bytes(dport)).map(|_| fast_counter::PASS_IP_OPTIONS)
}

/// ICMP errors (destination unreachable, time exceeded, parameter
/// problem) are counted: they may concern a fast flow, whose state the
/// stack never saw. Echo and the rest pass uncounted.
#[inline(always)]
fn icmp(at: usize, end: usize) -> Pass {
    // Type, code and checksum: every ICMP message has them. (A one-byte
    // check would compile to `at >= end`, which the verifier does not
    // take as a bound.)
    if at + 4 > end {
        return None;
    }
    // SAFETY: the ICMP type byte lies inside the packet (checked above).
    match unsafe { *(at as *const u8) } {
        3 | 11 | 12 => Some(fast_counter::PASS_ICMP),
        _ => None,
    }
}

/// A packet of a known flow: rewritten with its entry and sent on.
#[inline(always)]
fn established(ctx: &XdpContext, packet: &Packet, entry: *mut FlowEntry) -> Result<u32, Pass> {
    // SAFETY: a pointer from a successful lookup, valid for this run (RCU).
    let e = unsafe { *entry };
    let fib = route(ctx, &e, packet)?;
    rewrite(packet.frame, &e, &fib);
    let now = now();
    // SAFETY: the same live entry. Another CPU may update it at once (two
    // packets of one direction); last_ns and the FIN bit tolerate that.
    unsafe {
        (*entry).last_ns = now;
        if packet.flags & TCP_FIN != 0 {
            (*entry).flags |= flow_flags::FIN;
        }
    }
    if packet.flags & TCP_FIN != 0 {
        count(fast_counter::FIN);
    }
    account(&e, packet.tot_len);
    if packet.flags & TCP_RST != 0 {
        count(fast_counter::RST);
        // The other direction is keyed by this packet's new tuple, reversed.
        let reverse = FlowKey {
            src_addr: e.dst_addr,
            dst_addr: e.src_addr,
            src_port: e.dst_port,
            dst_port: e.src_port,
        };
        let _ = FAST_FLOWS.remove(packet.key);
        let _ = FAST_FLOWS.remove(reverse);
    }
    Ok(send(ctx, &fib))
}

/// A packet without a flow: a SYN to a fast service gets a backend, a
/// source port and both flow entries; anything else passes.
#[inline(always)]
fn new_flow(ctx: &XdpContext, packet: &Packet, cfg: &FastConfig) -> Result<u32, Pass> {
    let key = &packet.key;
    let svc = service(u16::from_be(key.dst_port)).ok_or(None)?;
    if packet.flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN) != TCP_SYN {
        return Err(Some(fast_counter::PASS_NO_FLOW));
    }
    let no_backend = Some(fast_counter::PASS_NO_BACKEND);
    if svc.backends == 0 || svc.slot >= FAST_SERVICES_MAX {
        return Err(no_backend);
    }
    let half = svc.half & 1;
    let hash = flow_hash(key);
    let b = *FAST_MAGLEV
        .get(maglev_index(svc.slot, half, hash % FAST_MAGLEV_SIZE))
        .ok_or(no_backend)?;
    if b >= svc.backends || b >= FAST_BACKENDS_MAX {
        return Err(no_backend);
    }
    let backend = *FAST_BACKENDS
        .get(backend_index(svc.slot, half, b))
        .ok_or(no_backend)?;
    let (lo, hi) = (u32::from(cfg.snat_port_lo), u32::from(cfg.snat_port_hi));
    if lo == 0 || hi < lo {
        return Err(Some(fast_counter::PASS_PORTS_EXHAUSTED));
    }
    // NonZero: `%` then has no division-by-zero panic path, which the
    // verifier would refuse (a subprogram ending in a call).
    let range = NonZeroU32::new(hi - lo + 1).ok_or(Some(fast_counter::PASS_PORTS_EXHAUSTED))?;
    // Another slice of the hash than Maglev's, so that the port does not
    // follow the backend.
    let first = hash.rotate_left(16) % range;
    let now = now();
    let mut forward = FlowEntry {
        src_addr: backend.snat_addr,
        dst_addr: backend.addr,
        src_port: ((lo + first) as u16).to_be(),
        dst_port: backend.port.to_be(),
        slot: svc.slot,
        last_ns: now,
        flags: 0,
        reply: 0,
    };
    // Before any table changes: a pass must leave them as they were.
    let fib = route(ctx, &forward, packet)?;
    let reply = FlowEntry {
        src_addr: key.dst_addr,
        dst_addr: key.src_addr,
        src_port: key.dst_port,
        dst_port: key.src_port,
        slot: svc.slot,
        last_ns: now,
        flags: 0,
        reply: 1,
    };
    let mut reverse = FlowKey {
        src_addr: backend.addr,
        dst_addr: backend.snat_addr,
        src_port: forward.dst_port,
        dst_port: 0,
    };
    let mut found = false;
    for i in 0..SNAT_PROBES {
        let port = ((lo + (first + i) % range) as u16).to_be();
        reverse.dst_port = port;
        match FAST_FLOWS.insert(reverse, reply, u64::from(BPF_NOEXIST)) {
            Ok(()) => {
                forward.src_port = port;
                found = true;
                break;
            }
            // The port is taken towards this backend: try the next.
            Err(e) if e == -EEXIST => {}
            Err(_) => return Err(Some(fast_counter::PASS_TABLE_FULL)),
        }
    }
    if !found {
        return Err(Some(fast_counter::PASS_PORTS_EXHAUSTED));
    }
    // BPF_ANY: a SYN racing on another CPU may have created the entry
    // meanwhile; the last one wins, and the loser's reply entry ages out.
    if FAST_FLOWS.insert(key, forward, u64::from(BPF_ANY)).is_err() {
        let _ = FAST_FLOWS.remove(reverse);
        return Err(Some(fast_counter::PASS_TABLE_FULL));
    }
    count(fast_counter::NEW_FLOWS);
    if let Some(stats) = FAST_STATS.get_ptr_mut(svc.slot) {
        // SAFETY: this CPU's slot of a per-CPU array (see `count`).
        unsafe { (*stats).flows += 1 };
    }
    rewrite(packet.frame, &forward, &fib);
    account(&forward, packet.tot_len);
    Ok(send(ctx, &fib))
}

/// `bpf_ktime_get_ns`.
#[inline(always)]
fn now() -> u64 {
    // SAFETY: a helper without arguments or preconditions.
    unsafe { bpf_ktime_get_ns() }
}

/// A cheap mix of the 4-tuple (murmur3's round and finaliser); the
/// kernel's choice need not match user space's: its flows live here.
#[inline(always)]
fn flow_hash(key: &FlowKey) -> u32 {
    let words = [
        u32::from_ne_bytes(key.src_addr),
        u32::from_ne_bytes(key.dst_addr),
        (u32::from(key.src_port) << 16) | u32::from(key.dst_port),
    ];
    let mut h: u32 = 0x9e37_79b9;
    for w in words {
        let k = w
            .wrapping_mul(0xcc9e_2d51)
            .rotate_left(15)
            .wrapping_mul(0x1b87_3593);
        h = (h ^ k)
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The next hop of the packet once rewritten with `e`, or why it passes.
/// Also `BPF_FIB_LKUP_RET_FWD_DISABLED` (net.ipv4.ip_forward off) is a
/// missing route.
#[inline(always)]
fn route(ctx: &XdpContext, e: &FlowEntry, packet: &Packet) -> Result<FibParams, Pass> {
    // SAFETY: `bpf_fib_lookup` is integers, arrays of them and unions of
    // those: all zeroes is a valid value (and what the helper expects in
    // the fields not set here).
    let mut p: FibParams = unsafe { core::mem::zeroed() };
    p.family = AF_INET;
    p.l4_protocol = IPPROTO_TCP;
    p.sport = e.src_port;
    p.dport = e.dst_port;
    // Host order: the kernel compares it with the MTU.
    p.__bindgen_anon_1.tot_len = packet.tot_len;
    p.ifindex = ctx.ingress_ifindex() as u32;
    p.__bindgen_anon_2.tos = packet.tos;
    p.__bindgen_anon_3.ipv4_src = u32::from_ne_bytes(e.src_addr);
    p.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes(e.dst_addr);
    // SAFETY: the context is the program's own; `p` is a live, writable
    // `bpf_fib_lookup` of the size passed.
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.as_ptr(),
            &mut p,
            core::mem::size_of::<FibParams>() as i32,
            0,
        )
    };
    if rc == i64::from(BPF_FIB_LKUP_RET_SUCCESS) {
        Ok(p)
    } else if rc == i64::from(BPF_FIB_LKUP_RET_FRAG_NEEDED) {
        Err(Some(fast_counter::PASS_MTU))
    } else {
        Err(Some(fast_counter::PASS_NO_ROUTE))
    }
}

/// One's-complement sum (not yet folded) of the 16-bit words of `b`.
#[inline(always)]
fn words(b: [u8; 4]) -> u32 {
    u32::from(u16::from_be_bytes([b[0], b[1]])) + u32::from(u16::from_be_bytes([b[2], b[3]]))
}

/// `old` checksum updated by `diff` (RFC 1624, eqn. 3: ~(~HC + ~m + m')).
#[inline(always)]
fn csum_update(old: [u8; 2], diff: u32) -> [u8; 2] {
    let mut sum = u32::from(!u16::from_be_bytes(old)) + diff;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    (!(sum as u16)).to_be_bytes()
}

/// Writes `e`'s addresses and ports and the next hop's MACs into the
/// packet, with both checksums updated incrementally.
#[inline(always)]
fn rewrite(frame: *mut Frame, e: &FlowEntry, fib: &FibParams) {
    // SAFETY: `frame` was bounds-checked whole by `fast` and the packet has
    // not changed size since.
    let f = unsafe { &mut *frame };
    let (sport, dport) = (e.src_port.to_ne_bytes(), e.dst_port.to_ne_bytes());
    // ~m as 0xffff - m, summed per word: the removed words' complement.
    let addrs =
        4 * 0xffff - words(f.ip.src) - words(f.ip.dst) + words(e.src_addr) + words(e.dst_addr);
    let ports = 2 * 0xffff
        - u32::from(u16::from_be_bytes(f.tcp.sport))
        - u32::from(u16::from_be_bytes(f.tcp.dport))
        + u32::from(u16::from_be_bytes(sport))
        + u32::from(u16::from_be_bytes(dport));
    f.ip.check = csum_update(f.ip.check, addrs);
    // The TCP checksum covers the addresses through the pseudo-header.
    f.tcp.check = csum_update(f.tcp.check, addrs + ports);
    f.ip.src = e.src_addr;
    f.ip.dst = e.dst_addr;
    f.tcp.sport = sport;
    f.tcp.dport = dport;
    f.eth.dst = fib.dmac;
    f.eth.src = fib.smac;
}

/// Counts a rewritten packet by direction and service.
#[inline(always)]
fn account(e: &FlowEntry, tot_len: u16) {
    let reply = e.reply != 0;
    count(if reply {
        fast_counter::REPLIED
    } else {
        fast_counter::FORWARDED
    });
    if let Some(stats) = FAST_STATS.get_ptr_mut(e.slot) {
        // SAFETY: this CPU's slot of a per-CPU array (see `count`).
        let s = unsafe { &mut *stats };
        if reply {
            s.packets_out += 1;
            s.bytes_out += u64::from(tot_len);
        } else {
            s.packets_in += 1;
            s.bytes_in += u64::from(tot_len);
        }
    }
}

/// Sends the rewritten packet to the next hop: back out of the ingress
/// interface, or redirected to the egress one.
#[inline(always)]
fn send(ctx: &XdpContext, fib: &FibParams) -> u32 {
    if fib.ifindex == ctx.ingress_ifindex() as u32 {
        return XDP_TX;
    }
    // SAFETY: a helper taking plain integers; it only records the target.
    unsafe { bpf_redirect(fib.ifindex, 0) as u32 }
}
