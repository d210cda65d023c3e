//! rauta's eBPF programs, built for `bpfel-unknown-none` by `proxy/build.rs`
//! and loaded by `proxy/src/xdp/`:
//!
//! - `select_by_cpu` (`SK_REUSEPORT`, migrate attach type) and its twin
//!   `select_legacy` (plain attach type, for kernels before 5.14): a new
//!   connection goes to the listener in the slot of the CPU that processed
//!   its SYN; an empty slot leaves the choice to the kernel's hash.
//! - `xdp_ingress` (XDP): bounds-checked Ethernet/VLAN/IPv4/IPv6/TCP/UDP
//!   parsing, per-CPU counters, an LPM deny-list of source prefixes and a
//!   per-source SYN token bucket. Whatever it does not understand passes.
//!   With flow steering on, a passed TCP/UDP packet to a steered port is
//!   redirected (CPUMAP) to the CPU of the shard its 4-tuple hashes to, so
//!   `select_by_cpu` then picks that shard's listener for its SYN.
//! - `splice_verdict` (`sk_skb` stream verdict on `SPLICE_SOCKETS`): every
//!   skb a spliced socket receives goes out on its peer's egress
//!   (`SPLICE_PEERS` says which peer; `SPLICE_TARGETS` holds the peers), and
//!   the bytes are counted per socket. What cannot be redirected is passed
//!   to the socket itself; only empty skbs (a lone FIN) are dropped.
//!
//! The user side is the only writer of the maps' configuration; the
//! programs write only counters and SYN buckets. Map and counter names come
//! from `rauta_shared::ebpf`.
//!
//! On the host this is an empty binary around the same code, so that the
//! stable `cargo clippy --workspace` checks it.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

mod fast;
mod wire;

use aya_ebpf::bindings::sk_action::{SK_DROP, SK_PASS};
use aya_ebpf::bindings::xdp_action::{XDP_DROP, XDP_PASS};
use aya_ebpf::bindings::BPF_F_NO_PREALLOC;
use aya_ebpf::helpers::{bpf_get_smp_processor_id, bpf_get_socket_cookie, bpf_ktime_get_ns};
use aya_ebpf::macros::{map, sk_reuseport, stream_verdict, xdp};
use aya_ebpf::maps::lpm_trie::Key;
use aya_ebpf::maps::{
    Array, CpuMap, HashMap, LpmTrie, LruHashMap, PerCpuArray, ReusePortSockArray, SockHash,
};
use aya_ebpf::programs::{SkBuffContext, SkReuseportContext, XdpContext};
use aya_ebpf::EbpfContext;
use aya_log_ebpf::debug;
use rauta_shared::ebpf::{
    counter, splice_counter, v4_mapped, DenyAddr, DenyEntry, SplicePeer, SynBucket, SynKey,
    XdpConfig, CONFIG_SLOTS, DENY_MAX, SHARD_SOCKETS_DEFAULT, SPLICE_SOCKETS_MAX,
    STEER_CPUMAP_DEFAULT, STEER_SHARDS_MAX, SYN_BUCKETS_MAX, SYN_TOKEN,
};
use wire::{
    EthHdr, Ipv4Hdr, Ipv6Hdr, TcpHdr, UdpHdr, VlanTag, ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q,
    ETH_P_IPV4, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_SYN,
};

/// Listener of each CPU's shard, by CPU number (`MAP_SHARD_SOCKETS`).
#[map]
static SHARD_SOCKETS: ReusePortSockArray =
    ReusePortSockArray::with_max_entries(SHARD_SOCKETS_DEFAULT, 0);

/// Per-CPU counters (`MAP_COUNTERS`), indexed by `counter::*`.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Two configuration slots (`MAP_CONFIG`).
#[map]
static XDP_CONFIG: Array<XdpConfig> = Array::with_max_entries(CONFIG_SLOTS, 0);

/// Which configuration slot is live (`MAP_CONFIG_ACTIVE`).
#[map]
static XDP_CFG_ACTIVE: Array<u32> = Array::with_max_entries(1, 0);

/// Denied source prefixes (`MAP_DENY`), IPv4 mapped into IPv6.
#[map]
static DENY_LIST: LpmTrie<DenyAddr, DenyEntry> = LpmTrie::with_max_entries(DENY_MAX, 0);

/// SYN token bucket per source (`MAP_SYN_BUCKETS`).
#[map]
static SYN_BUCKETS: LruHashMap<SynKey, SynBucket> =
    LruHashMap::with_max_entries(SYN_BUCKETS_MAX, 0);

/// Spliced sockets by cookie (`MAP_SPLICE_SOCKETS`); `splice_verdict` is
/// attached here.
#[map]
static SPLICE_SOCKETS: SockHash<u64> = SockHash::with_max_entries(SPLICE_SOCKETS_MAX, 0);

/// Redirect targets by cookie (`MAP_SPLICE_TARGETS`), no program attached.
#[map]
static SPLICE_TARGETS: SockHash<u64> = SockHash::with_max_entries(SPLICE_SOCKETS_MAX, 0);

/// Each spliced socket's peer and byte counters (`MAP_SPLICE_PEERS`).
/// Not preallocated: a proxy without L4 services pays for no entries.
#[map]
static SPLICE_PEERS: HashMap<u64, SplicePeer> =
    HashMap::with_max_entries(SPLICE_SOCKETS_MAX, BPF_F_NO_PREALLOC);

/// Per-CPU counters of `splice_verdict` (`MAP_SPLICE_COUNTERS`).
#[map]
static SPLICE_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(splice_counter::COUNT, 0);

/// Shard CPUs for flow steering (`MAP_STEER_CPUMAP`); the loader sizes it
/// to the possible CPUs and creates entries for the shard CPUs only.
#[map]
static STEER_CPUMAP: CpuMap = CpuMap::with_max_entries(STEER_CPUMAP_DEFAULT, 0);

/// The CPU of each shard, one half per configuration slot (`MAP_STEER_CPUS`).
#[map]
static STEER_CPUS: Array<u32> = Array::with_max_entries(CONFIG_SLOTS * STEER_SHARDS_MAX, 0);

/// Adds one to counter `index` of this CPU.
#[inline(always)]
fn count(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: the pointer is this CPU's slot of a per-CPU array and
        // stays valid for the program run; XDP and SK_REUSEPORT programs run
        // with preemption off, so nothing else writes it meanwhile.
        unsafe { *slot += 1 };
    }
}

// ---------------------------------------------------------------- reuseport

/// Selects the listener of the CPU that processed the SYN (migrate attach
/// type: also runs when a closing listener's requests move elsewhere).
#[sk_reuseport(migrate)]
pub fn select_by_cpu(ctx: SkReuseportContext) -> u32 {
    if ctx.migrating_sk().is_some() {
        count(counter::REUSEPORT_MIGRATE);
    }
    select(&ctx)
}

/// [`select_by_cpu`] for kernels without the migrate attach type.
#[sk_reuseport]
pub fn select_legacy(ctx: SkReuseportContext) -> u32 {
    select(&ctx)
}

#[inline(always)]
fn select(ctx: &SkReuseportContext) -> u32 {
    // SAFETY: a helper without arguments or preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    match SHARD_SOCKETS.select_reuseport(ctx, cpu) {
        Ok(()) => count(counter::REUSEPORT_HIT),
        Err(_) => {
            // No listener for this CPU (or it is closing): SK_PASS without a
            // selection makes the kernel pick one by hash.
            count(counter::REUSEPORT_FALLBACK);
            debug!(ctx, "reuseport: no listener for CPU {}", cpu);
        }
    }
    SK_PASS
}

// ---------------------------------------------------------------- splice

/// Adds `n` to splice counter `index` of this CPU.
#[inline(always)]
fn splice_count(index: u32, n: u64) {
    if let Some(slot) = SPLICE_COUNTERS.get_ptr_mut(index) {
        // SAFETY: this CPU's slot of a per-CPU array, valid for the program
        // run; the verdict runs with migration off (bpf_prog_run_pin_on_cpu)
        // and, per CPU, one program at a time.
        unsafe { *slot += n };
    }
}

/// Sends each skb a spliced socket receives out on its peer's egress.
/// No peer entry, or a peer no longer in `SPLICE_TARGETS`: SK_PASS, so the
/// bytes reach the socket's own receive queue for user space (counted).
/// An empty skb (a FIN on its own) is dropped: redirected, the kernel's
/// sender would count its zero bytes as a broken pipe on the peer.
#[stream_verdict]
pub fn splice_verdict(ctx: SkBuffContext) -> u32 {
    let len = u64::from(ctx.len());
    if len == 0 {
        splice_count(splice_counter::DROP_EMPTY, 1);
        return SK_DROP;
    }
    // SAFETY: the context of an sk_skb program is the skb the helper takes;
    // the kernel has set skb->sk to the receiving socket.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let Some(entry) = SPLICE_PEERS.get_ptr_mut(cookie) else {
        splice_count(splice_counter::PASS_NO_PEER, 1);
        splice_count(splice_counter::PASSED_BYTES, len);
        return SK_PASS;
    };
    // SAFETY: a pointer from a successful lookup, valid for this run (RCU).
    let mut peer = unsafe { (*entry).peer };
    // SK_PASS from the helper means the redirect is set; anything else
    // means the peer is not in the map.
    if SPLICE_TARGETS.redirect_skb(&ctx, &mut peer, 0) != i64::from(SK_PASS) {
        splice_count(splice_counter::PASS_PEER_GONE, 1);
        splice_count(splice_counter::PASSED_BYTES, len);
        return SK_PASS;
    }
    // SAFETY: the same live entry. Plain adds suffice: the verdict of one
    // socket runs under that socket's lock (softirq, or the process context
    // that owns it), so its entry has one writer at a time; user space
    // writes the entry only before the socket enters SPLICE_SOCKETS.
    unsafe {
        (*entry).bytes += len;
        (*entry).skbs += 1;
    }
    splice_count(splice_counter::REDIRECTED, 1);
    splice_count(splice_counter::REDIRECTED_BYTES, len);
    SK_PASS
}

// ---------------------------------------------------------------- XDP

/// The transport part of a packet, as far as the filter cares.
enum L4 {
    Tcp { sport: u16, dport: u16, syn: bool },
    Udp { sport: u16, dport: u16 },
    Other,
}

/// What the filter understood of a packet.
struct Packet {
    src: DenyAddr,
    /// The destination address folded to 32 bits (all steering needs).
    dst: u32,
    l4: L4,
}

/// Copies the `T` at `offset` out of the packet, or says it is truncated.
#[inline(always)]
fn load<T>(ctx: &XdpContext, offset: usize) -> Result<T, u32> {
    let at = ctx.data() + offset;
    if at + core::mem::size_of::<T>() > ctx.data_end() {
        return Err(counter::SKIP_TRUNCATED);
    }
    // SAFETY: [at, at + size_of::<T>()) lies inside the packet (checked
    // against data_end just above); every `T` used here is a `#[repr(C)]`
    // struct of bytes (alignment 1), valid for any bit pattern.
    Ok(unsafe { core::ptr::read(at as *const T) })
}

/// Parses up to the transport header. `Err` carries the counter saying
/// why the packet is passed without inspection.
#[inline(always)]
fn parse(ctx: &XdpContext) -> Result<Packet, u32> {
    let eth: EthHdr = load(ctx, 0)?;
    let mut proto = u16::from_be_bytes(eth.proto);
    let mut offset = ETH_HLEN;
    // At most two VLAN tags (QinQ); a third is not understood.
    if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
        let tag: VlanTag = load(ctx, offset)?;
        proto = u16::from_be_bytes(tag.proto);
        offset += 4;
        if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
            let tag: VlanTag = load(ctx, offset)?;
            proto = u16::from_be_bytes(tag.proto);
            offset += 4;
        }
    }
    let (src, dst, l4_proto, l4_offset) = match proto {
        ETH_P_IPV4 => {
            let ip: Ipv4Hdr = load(ctx, offset)?;
            let ihl = (ip.version_ihl & 0x0f) as usize;
            if ip.version_ihl >> 4 != 4 || ihl < 5 {
                return Err(counter::SKIP_TRUNCATED);
            }
            // More-fragments flag or a fragment offset: not the whole datagram.
            if u16::from_be_bytes(ip.frag) & 0x3fff != 0 {
                return Err(counter::SKIP_FRAGMENT);
            }
            (
                v4_mapped(ip.src),
                u32::from_ne_bytes(ip.dst),
                ip.proto,
                offset + ihl * 4,
            )
        }
        ETH_P_IPV6 => {
            let ip: Ipv6Hdr = load(ctx, offset)?;
            if ip.version >> 4 != 6 {
                return Err(counter::SKIP_TRUNCATED);
            }
            match ip.next {
                44 => return Err(counter::SKIP_FRAGMENT),
                // Hop-by-hop, routing, destination options, AH, mobility,
                // HIP, shim6, experimental.
                0 | 43 | 60 | 51 | 135 | 139 | 140 | 253 | 254 => {
                    return Err(counter::SKIP_IPV6_EXTENSION)
                }
                _ => {}
            }
            (ip.src, fold(&ip.dst), ip.next, offset + 40)
        }
        _ => return Err(counter::SKIP_NOT_IP),
    };
    let l4 = match l4_proto {
        IPPROTO_TCP => {
            let tcp: TcpHdr = load(ctx, l4_offset)?;
            if tcp.data_off >> 4 < 5 {
                return Err(counter::SKIP_TRUNCATED);
            }
            L4::Tcp {
                sport: u16::from_be_bytes(tcp.sport),
                dport: u16::from_be_bytes(tcp.dport),
                syn: tcp.flags & (TCP_SYN | TCP_ACK) == TCP_SYN,
            }
        }
        IPPROTO_UDP => {
            let udp: UdpHdr = load(ctx, l4_offset)?;
            L4::Udp {
                sport: u16::from_be_bytes(udp.sport),
                dport: u16::from_be_bytes(udp.dport),
            }
        }
        _ => L4::Other,
    };
    Ok(Packet { src, dst, l4 })
}

/// The live configuration slot and its settings (zeroed, i.e. no admin
/// port, no SYN limit and no steering, until the loader has written one).
/// A reference into the map, not a copy: the stack has no room for one.
#[inline(always)]
fn config() -> Option<(u32, &'static XdpConfig)> {
    let slot = XDP_CFG_ACTIVE.get(0).copied().unwrap_or(0) & 1;
    XDP_CONFIG.get(slot).map(|cfg| (slot, cfg))
}

/// Takes one token from `src`'s SYN bucket; false when it is empty.
#[inline(always)]
fn take_syn_token(src: &DenyAddr, cfg: &XdpConfig) -> bool {
    // SAFETY: a helper without arguments or preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let key = SynKey { addr: *src };
    match SYN_BUCKETS.get_ptr_mut(key) {
        Some(bucket) => {
            // SAFETY: the pointer comes from a successful lookup and stays
            // valid for this program run (RCU). Another CPU may update the
            // same bucket concurrently; that only makes the limit approximate.
            let bucket = unsafe { &mut *bucket };
            let elapsed = now.saturating_sub(bucket.last_ns);
            // elapsed * rate < capacity whenever elapsed < refill_ns, so
            // neither the product nor the sum can overflow.
            let tokens = if elapsed >= cfg.syn_refill_ns {
                cfg.syn_capacity
            } else {
                let refilled = bucket.tokens + elapsed * cfg.syn_rate;
                if refilled > cfg.syn_capacity {
                    cfg.syn_capacity
                } else {
                    refilled
                }
            };
            bucket.last_ns = now;
            if tokens >= SYN_TOKEN {
                bucket.tokens = tokens - SYN_TOKEN;
                true
            } else {
                bucket.tokens = tokens;
                false
            }
        }
        None => {
            let bucket = SynBucket {
                tokens: cfg.syn_capacity.saturating_sub(SYN_TOKEN),
                last_ns: now,
            };
            // A full LRU map evicts its least recently used bucket.
            let _ = SYN_BUCKETS.insert(key, bucket, 0);
            true
        }
    }
}

/// The verdict on one packet (counted by the caller).
#[inline(always)]
fn verdict(ctx: &XdpContext) -> u32 {
    let packet = match parse(ctx) {
        Ok(packet) => packet,
        Err(reason) => {
            count(reason);
            return XDP_PASS;
        }
    };
    // A two-slot array always has slot 0 and 1; without it, no verdict.
    let Some((slot, cfg)) = config() else {
        return XDP_PASS;
    };
    if let L4::Tcp { dport, .. } = packet.l4 {
        // The admin port is never dropped, whatever the source.
        if cfg.admin_port != 0 && dport == cfg.admin_port {
            count(counter::SKIP_ADMIN_PORT);
            return XDP_PASS;
        }
    }
    if DENY_LIST.get(Key::new(128, packet.src)).is_some() {
        count(counter::DROP_DENY_LIST);
        debug!(ctx, "xdp: deny-list drop from {:i}", packet.src);
        return XDP_DROP;
    }
    if let L4::Tcp {
        dport, syn: true, ..
    } = packet.l4
    {
        count(counter::SYN_SEEN);
        if cfg.syn_rate != 0
            && (cfg.syn_port == 0 || dport == cfg.syn_port)
            && !take_syn_token(&packet.src, cfg)
        {
            count(counter::DROP_SYN_RATE);
            debug!(ctx, "xdp: SYN over the rate from {:i}", packet.src);
            return XDP_DROP;
        }
    }
    // Decided before the fast path runs, so that the packet is not live
    // across it (the two together are near the 512-byte BPF stack).
    let target = steer_target(&packet, slot, cfg);
    // What the fast path leaves to the stack may still be steered.
    match fast::run(ctx) {
        XDP_PASS => steer(target),
        action => action,
    }
}

/// The first four bytes of `a` from `at` as a number (byte order does not
/// matter: it only feeds the hash).
#[inline(always)]
fn word(a: &DenyAddr, at: usize) -> u32 {
    u32::from_ne_bytes([a[at], a[at + 1], a[at + 2], a[at + 3]])
}

/// An IPv6 address folded to 32 bits (xor of its words).
#[inline(always)]
fn fold(a: &DenyAddr) -> u32 {
    word(a, 0) ^ word(a, 4) ^ word(a, 8) ^ word(a, 12)
}

/// A hash of the flow's 4-tuple: the same for every packet of a flow, and
/// well mixed in its high bits (murmur3's finaliser), which pick the shard.
#[inline(always)]
fn flow_hash(packet: &Packet, sport: u16, dport: u16) -> u32 {
    let mut h: u32 = 0x9747_b28c ^ ((u32::from(sport) << 16) | u32::from(dport));
    for at in [0, 4, 8, 12] {
        h = (h ^ word(&packet.src, at))
            .wrapping_mul(0xcc9e_2d51)
            .rotate_left(15);
    }
    h = (h ^ packet.dst).wrapping_mul(0x1b87_3593).rotate_left(13);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// [`steer_target`]: steering is off.
const STEER_OFF: u32 = u32::MAX;
const _: () = assert!(STEER_OFF & STEER_SKIP != 0);
/// [`steer_target`]: not steered; the low bits are the counter saying why.
const STEER_SKIP: u32 = 0x8000_0000;

/// Where flow steering sends a packet: its shard's CPU, [`STEER_OFF`], or
/// [`STEER_SKIP`] with the reason's counter.
#[inline(always)]
fn steer_target(packet: &Packet, slot: u32, cfg: &XdpConfig) -> u32 {
    if cfg.steer_shards == 0 {
        return STEER_OFF;
    }
    let (sport, dport) = match packet.l4 {
        L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => (sport, dport),
        L4::Other => return STEER_SKIP | counter::STEER_SKIP_PROTO,
    };
    if !cfg.steer_ports.iter().any(|p| *p != 0 && *p == dport) {
        return STEER_SKIP | counter::STEER_SKIP_PORT;
    }
    let shards = if cfg.steer_shards > STEER_SHARDS_MAX {
        STEER_SHARDS_MAX
    } else {
        cfg.steer_shards
    };
    // Multiply-shift instead of a modulo: no division in the program, and
    // the result is < shards.
    let shard = ((u64::from(flow_hash(packet, sport, dport)) * u64::from(shards)) >> 32) as u32;
    match STEER_CPUS.get(slot * STEER_SHARDS_MAX + shard).copied() {
        // A CPU number never reaches the flag bit (nor the sentinels).
        Some(cpu) if cpu < STEER_SKIP => cpu,
        _ => STEER_SKIP | counter::STEER_NO_CPU,
    }
}

/// Flow steering of a packet the filter passes, to `target` from
/// [`steer_target`]: XDP_REDIRECT to the CPUMAP entry of its shard's CPU,
/// or XDP_PASS (here) with the reason counted.
#[inline(always)]
fn steer(target: u32) -> u32 {
    if target == STEER_OFF {
        return XDP_PASS;
    }
    if target & STEER_SKIP != 0 {
        count(target & !STEER_SKIP);
        return XDP_PASS;
    }
    let cpu = target;
    // SAFETY: a helper without arguments or preconditions.
    if cpu == unsafe { bpf_get_smp_processor_id() } {
        count(counter::STEER_LOCAL);
        return XDP_PASS;
    }
    // The low bits of the flags are the action when the CPU has no entry.
    match STEER_CPUMAP.redirect(cpu, u64::from(XDP_PASS)) {
        Ok(action) => {
            count(counter::STEER_REDIRECT);
            action
        }
        Err(_) => {
            count(counter::STEER_NO_CPU);
            XDP_PASS
        }
    }
}

/// The XDP ingress filter: counts every packet by action.
#[xdp]
pub fn xdp_ingress(ctx: XdpContext) -> u32 {
    let action = verdict(&ctx);
    count(action);
    action
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in a verified program: the verifier rejects any path that
    // could get here (it is an endless loop).
    loop {}
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
