//! The XDP L4 fast path: `xdp_ingress` NATs the packets of TCP services
//! marked for it straight to a backend and back, so established flows
//! never reach user space. User space stays the authority: it writes the
//! service, backend and Maglev tables (inactive half first, then the
//! service entry that flips to it), and the kernel only indexes them and
//! keeps its per-flow decisions in [`MAP_FAST_FLOWS`].
//!
//! IPv4 TCP without IP options or fragments only; everything else, and
//! everything the fast path cannot finish (no backend, no route or
//! neighbour, ports exhausted, table full), passes to the kernel's stack
//! untouched, where the user-space L4 path serves it, with a counter per
//! reason in [`fast_counter`].
//!
//! Byte order: addresses and ports inside [`FlowKey`] and [`FlowEntry`]
//! are as on the wire (network order), so the program copies them without
//! swapping; configuration ports ([`FastServiceKey`], [`FastBackend`],
//! [`FastConfig`]) are in host order.

/// `HashMap<FastServiceKey, FastService>`: the TCP ports on the fast path.
pub const MAP_FAST_SERVICES: &str = "FAST_SERVICES";
/// `Array<FastBackend>`: index [`backend_index`].
pub const MAP_FAST_BACKENDS: &str = "FAST_BACKENDS";
/// `Array<u32>`: Maglev lookup tables, index [`maglev_index`], value a
/// backend number `< FastService::backends`.
pub const MAP_FAST_MAGLEV: &str = "FAST_MAGLEV";
/// `LruHashMap<FlowKey, FlowEntry>`: both directions of every fast flow,
/// keyed by the packet as it arrives.
pub const MAP_FAST_FLOWS: &str = "FAST_FLOWS";
/// `PerCpuArray<u64>`: indexed by [`fast_counter`].
pub const MAP_FAST_COUNTERS: &str = "FAST_COUNTERS";
/// `PerCpuArray<FastStats>`: indexed by [`FastService::slot`].
pub const MAP_FAST_STATS: &str = "FAST_STATS";
/// `Array<FastConfig>`, one entry.
pub const MAP_FAST_CONFIG: &str = "FAST_CONFIG";

/// Most services on the fast path at once.
pub const FAST_SERVICES_MAX: u32 = 16;
/// Most backends of one service (per table half).
pub const FAST_BACKENDS_MAX: u32 = 64;
/// Slots of one Maglev table: the user-space balancer's table size.
pub const FAST_MAGLEV_SIZE: u32 = crate::MAGLEV_TABLE_SIZE as u32;
/// Entries of [`MAP_FAST_FLOWS`] (two per flow); the least recently used
/// are evicted when it is full.
pub const FAST_FLOWS_MAX: u32 = 262_144;
/// Ports tried for a new flow's source port before giving up
/// ([`fast_counter::PASS_PORTS_EXHAUSTED`]).
pub const SNAT_PROBES: u32 = 8;

/// Index into [`MAP_FAST_BACKENDS`] of backend `i` of a service's table half.
pub const fn backend_index(slot: u32, half: u32, i: u32) -> u32 {
    (slot * 2 + half) * FAST_BACKENDS_MAX + i
}

/// Index into [`MAP_FAST_MAGLEV`] of entry `at` (`hash % FAST_MAGLEV_SIZE`)
/// of a service's table half.
pub const fn maglev_index(slot: u32, half: u32, at: u32) -> u32 {
    (slot * 2 + half) * FAST_MAGLEV_SIZE + at
}

/// Indices into [`MAP_FAST_COUNTERS`].
pub mod fast_counter {
    /// Packets client -> backend rewritten and sent on.
    pub const FORWARDED: u32 = 0;
    /// Packets backend -> client rewritten and sent on.
    pub const REPLIED: u32 = 1;
    /// Flows created (a SYN to a fast service got a backend and a port).
    pub const NEW_FLOWS: u32 = 2;
    /// A FIN seen on a fast flow.
    pub const FIN: u32 = 3;
    /// A RST seen on a fast flow (both its entries are then removed).
    pub const RST: u32 = 4;
    /// Passed: a packet to a fast service port without a flow that is not
    /// a SYN (a flow that started in user space, or an evicted one).
    pub const PASS_NO_FLOW: u32 = 5;
    /// Passed: IPv4 with options.
    pub const PASS_IP_OPTIONS: u32 = 6;
    /// Passed: an IP fragment.
    pub const PASS_FRAGMENT: u32 = 7;
    /// Passed: IPv6 to a fast service port (the fast path is IPv4 only).
    pub const PASS_IPV6: u32 = 8;
    /// Passed: the service has no backend in its table.
    pub const PASS_NO_BACKEND: u32 = 9;
    /// Passed: `bpf_fib_lookup` found no route or no neighbour entry for
    /// the next hop (the kernel's stack resolves it meanwhile).
    pub const PASS_NO_ROUTE: u32 = 10;
    /// Passed: the packet is larger than the egress MTU.
    pub const PASS_MTU: u32 = 11;
    /// Passed: no free source port after [`super::SNAT_PROBES`] tries.
    pub const PASS_PORTS_EXHAUSTED: u32 = 12;
    /// Passed: the flow table refused the new entries.
    pub const PASS_TABLE_FULL: u32 = 13;
    /// Passed: an ICMP error (its flow, if any, is left to the stack).
    pub const PASS_ICMP: u32 = 14;
    /// Number of counters.
    pub const COUNT: u32 = 15;
}

/// Key of [`MAP_FAST_SERVICES`]: the destination port of a TCP service
/// (host order), on any local address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FastServiceKey {
    /// TCP port, host order.
    pub port: u16,
    /// Explicit padding; always zero.
    pub _pad: u16,
}

/// Value of [`MAP_FAST_SERVICES`]: which tables the service uses now.
/// Written whole by user space after the half it names is complete.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastService {
    /// Bumped by user space on every write.
    pub generation: u64,
    /// The service's slot in the per-service arrays (`< FAST_SERVICES_MAX`).
    pub slot: u32,
    /// The live table half (0 or 1).
    pub half: u32,
    /// Backends in the live half; 0: every new flow passes to user space.
    pub backends: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
}

/// An entry of [`MAP_FAST_BACKENDS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastBackend {
    /// The endpoint's IPv4 address.
    pub addr: [u8; 4],
    /// The node's address towards it (the source of the NATed packets, so
    /// that replies come back through this node).
    pub snat_addr: [u8; 4],
    /// The endpoint's port, host order.
    pub port: u16,
    /// Explicit padding; always zero.
    pub _pad: u16,
}

/// The one entry of [`MAP_FAST_CONFIG`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastConfig {
    /// Nonzero when any service is on the fast path: otherwise the program
    /// skips every fast-path lookup.
    pub enabled: u32,
    /// First source port of the range rauta owns for NAT (host order).
    pub snat_port_lo: u16,
    /// Last source port of that range, inclusive (host order).
    pub snat_port_hi: u16,
}

/// A packet as it arrives, as a key of [`MAP_FAST_FLOWS`] (network order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// IPv4 source.
    pub src_addr: [u8; 4],
    /// IPv4 destination.
    pub dst_addr: [u8; 4],
    /// TCP source port, network order.
    pub src_port: u16,
    /// TCP destination port, network order.
    pub dst_port: u16,
}

/// What to write into a packet of a flow direction (network order), and
/// the flow's state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowEntry {
    /// New IPv4 source.
    pub src_addr: [u8; 4],
    /// New IPv4 destination.
    pub dst_addr: [u8; 4],
    /// New TCP source port, network order.
    pub src_port: u16,
    /// New TCP destination port, network order.
    pub dst_port: u16,
    /// The service's slot (for [`MAP_FAST_STATS`]).
    pub slot: u32,
    /// `bpf_ktime_get_ns` of the last packet in this direction.
    pub last_ns: u64,
    /// [`flow_flags`] of this direction.
    pub flags: u32,
    /// 0: client -> backend; 1: backend -> client.
    pub reply: u32,
}

/// Bits of [`FlowEntry::flags`].
pub mod flow_flags {
    /// A FIN went this way.
    pub const FIN: u32 = 1;
}

/// Per-CPU traffic of one fast service ([`MAP_FAST_STATS`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastStats {
    /// Packets client -> backend.
    pub packets_in: u64,
    /// Their bytes (IP length).
    pub bytes_in: u64,
    /// Packets backend -> client.
    pub packets_out: u64,
    /// Their bytes (IP length).
    pub bytes_out: u64,
    /// Flows created.
    pub flows: u64,
}

#[cfg(feature = "user")]
mod pod {
    // `aya::Pod` promises that any bit pattern is a valid value and that the
    // type has no uninitialised (padding) bytes.

    // SAFETY: `#[repr(C)]`, a u16 and its explicit padding.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::FastServiceKey {}
    // SAFETY: `#[repr(C)]`, integers only, padding is the explicit `_pad`.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::FastService {}
    // SAFETY: `#[repr(C)]`, byte arrays and integers, explicit `_pad`.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::FastBackend {}
    // SAFETY: `#[repr(C)]`, a u32 and two u16s: no padding.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::FastConfig {}
    // SAFETY: `#[repr(C)]`, two byte arrays and two u16s: no padding.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::FlowKey {}
    // SAFETY: `#[repr(C)]`, 16 bytes of arrays and integers, then a u64
    // at offset 16 and two u32s: no padding.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::FlowEntry {}
    // SAFETY: `#[repr(C)]`, five u64s.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::FastStats {}
}

// Layouts are part of the ABI.
const _: () = assert!(core::mem::size_of::<FastServiceKey>() == 4);
const _: () = assert!(core::mem::size_of::<FastService>() == 24);
const _: () = assert!(core::mem::size_of::<FastBackend>() == 12);
const _: () = assert!(core::mem::size_of::<FastConfig>() == 8);
const _: () = assert!(core::mem::size_of::<FlowKey>() == 12);
const _: () = assert!(core::mem::size_of::<FlowEntry>() == 32);
const _: () = assert!(core::mem::size_of::<FastStats>() == 40);
