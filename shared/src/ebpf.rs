//! The contract between the eBPF programs (`xdp/`) and their loader
//! (`proxy/src/xdp/`): program and map names, map sizes, counter indices and
//! the `#[repr(C)]` keys and values both sides read and write.
//!
//! Every type here has a fixed layout with no implicit padding (padding is
//! an explicit field that writers set to zero), so the bytes the loader
//! writes are exactly the bytes the kernel program reads. With the `user`
//! feature the types implement `aya::Pod`.

pub mod fast;

/// The `SK_REUSEPORT` program with the migrate attach type (Linux 5.14+).
pub const PROG_SELECT_BY_CPU: &str = "select_by_cpu";
/// The same selection without the migrate attach type, for older kernels.
pub const PROG_SELECT_LEGACY: &str = "select_legacy";
/// The XDP ingress program.
pub const PROG_XDP_INGRESS: &str = "xdp_ingress";
/// The `sk_skb` stream-verdict program of the L4 splice, attached to
/// [`MAP_SPLICE_SOCKETS`].
pub const PROG_SPLICE_VERDICT: &str = "splice_verdict";

/// `REUSEPORT_SOCKARRAY`: slot = CPU number, value = that CPU's shard listener.
pub const MAP_SHARD_SOCKETS: &str = "SHARD_SOCKETS";
/// Per-CPU `u64` counters, indexed by [`counter`].
pub const MAP_COUNTERS: &str = "COUNTERS";
/// Two [`XdpConfig`] slots; [`MAP_CONFIG_ACTIVE`] says which one is live.
pub const MAP_CONFIG: &str = "XDP_CONFIG";
/// One `u32`: the index of the live slot of [`MAP_CONFIG`].
pub const MAP_CONFIG_ACTIVE: &str = "XDP_CFG_ACTIVE";
/// LPM trie of denied source prefixes ([`DenyAddr`] -> [`DenyEntry`]).
pub const MAP_DENY: &str = "DENY_LIST";
/// LRU hash of per-source SYN token buckets ([`SynKey`] -> [`SynBucket`]).
pub const MAP_SYN_BUCKETS: &str = "SYN_BUCKETS";
/// `SOCKHASH` of spliced sockets (socket cookie `u64` -> socket): the
/// stream verdict runs on every skb a socket in it receives.
pub const MAP_SPLICE_SOCKETS: &str = "SPLICE_SOCKETS";
/// `SOCKHASH` the verdict redirects into (socket cookie `u64` -> socket),
/// without a program of its own: a socket enters it before any socket is
/// redirected to it, so a redirect never finds its peer missing during a join.
pub const MAP_SPLICE_TARGETS: &str = "SPLICE_TARGETS";
/// Hash of spliced sockets' peers and byte counters (socket cookie `u64`
/// -> [`SplicePeer`]).
pub const MAP_SPLICE_PEERS: &str = "SPLICE_PEERS";
/// Per-CPU `u64` counters of the splice verdict, indexed by [`splice_counter`].
pub const MAP_SPLICE_COUNTERS: &str = "SPLICE_COUNTERS";
/// `CPUMAP` (key = CPU number, value = queue size): `xdp_ingress` redirects
/// steered flows here; the loader creates entries for the shard CPUs only.
pub const MAP_STEER_CPUMAP: &str = "STEER_CPUMAP";
/// `u32` CPU numbers, two halves of [`STEER_SHARDS_MAX`]: the half of
/// configuration slot `s` starts at `s * STEER_SHARDS_MAX`, entry `i` is the
/// CPU of shard `i`, and [`XdpConfig::steer_shards`] says how many are valid.
pub const MAP_STEER_CPUS: &str = "STEER_CPUS";

/// Slots of [`MAP_SHARD_SOCKETS`] compiled into the object; the loader
/// resizes it to the number of possible CPUs before loading.
pub const SHARD_SOCKETS_DEFAULT: u32 = 256;
/// Most prefixes on the deny-list.
pub const DENY_MAX: u32 = 16_384;
/// Most sources tracked by the SYN limiter (least recently used are evicted).
pub const SYN_BUCKETS_MAX: u32 = 65_536;
/// Slots of [`MAP_CONFIG`] (the live one and the one being written).
pub const CONFIG_SLOTS: u32 = 2;
/// Most sockets in each splice map (two per spliced connection).
pub const SPLICE_SOCKETS_MAX: u32 = 65_536;
/// Most shards flow steering spreads over (entries per half of [`MAP_STEER_CPUS`]).
pub const STEER_SHARDS_MAX: u32 = 256;
/// Most destination ports flow steering applies to ([`XdpConfig::steer_ports`]).
pub const STEER_PORTS: usize = 6;
/// Slots of [`MAP_STEER_CPUMAP`] compiled into the object; the loader
/// resizes it to the number of possible CPUs (the kernel refuses more).
pub const STEER_CPUMAP_DEFAULT: u32 = 1;

/// One SYN token, in the bucket's fixed-point unit (tokens are counted in
/// billionths so that refilling needs no division: `elapsed_ns * rate`).
pub const SYN_TOKEN: u64 = 1_000_000_000;

/// Indices into [`MAP_COUNTERS`]. The first five are XDP actions
/// (`XDP_ABORTED`..`XDP_REDIRECT`), so `action as u32` indexes its counter.
pub mod counter {
    /// Packets that ended with `XDP_ABORTED`.
    pub const ACTION_ABORTED: u32 = 0;
    /// Packets dropped (`XDP_DROP`).
    pub const ACTION_DROP: u32 = 1;
    /// Packets passed to the stack (`XDP_PASS`).
    pub const ACTION_PASS: u32 = 2;
    /// Packets sent back out (`XDP_TX`).
    pub const ACTION_TX: u32 = 3;
    /// Packets redirected (`XDP_REDIRECT`).
    pub const ACTION_REDIRECT: u32 = 4;
    /// Dropped because the source is on the deny-list.
    pub const DROP_DENY_LIST: u32 = 5;
    /// SYNs dropped because their source's token bucket was empty.
    pub const DROP_SYN_RATE: u32 = 6;
    /// TCP SYNs (without ACK) seen.
    pub const SYN_SEEN: u32 = 7;
    /// Passed without inspection: not IPv4/IPv6.
    pub const SKIP_NOT_IP: u32 = 8;
    /// Passed without inspection: a header ended before the packet did.
    pub const SKIP_TRUNCATED: u32 = 9;
    /// Passed without inspection: an IP fragment.
    pub const SKIP_FRAGMENT: u32 = 10;
    /// Passed without inspection: an IPv6 extension header.
    pub const SKIP_IPV6_EXTENSION: u32 = 11;
    /// Passed without a verdict: TCP to the admin port (never dropped).
    pub const SKIP_ADMIN_PORT: u32 = 12;
    /// `select_by_cpu` picked the listener of the current CPU.
    pub const REUSEPORT_HIT: u32 = 13;
    /// `select_by_cpu` found no listener for the current CPU; the kernel's
    /// hash picked one.
    pub const REUSEPORT_FALLBACK: u32 = 14;
    /// `select_by_cpu` ran for a request migrating off a closing listener.
    pub const REUSEPORT_MIGRATE: u32 = 15;
    /// Flow steering: redirected to the CPUMAP entry of its flow's shard CPU.
    pub const STEER_REDIRECT: u32 = 16;
    /// Flow steering: already on its flow's shard CPU, passed without a hop.
    pub const STEER_LOCAL: u32 = 17;
    /// Not steered: TCP or UDP to a port that is not steered.
    pub const STEER_SKIP_PORT: u32 = 18;
    /// Not steered: neither TCP nor UDP.
    pub const STEER_SKIP_PROTO: u32 = 19;
    /// Not steered: the CPUMAP has no entry for the flow's CPU (passed here).
    pub const STEER_NO_CPU: u32 = 20;
    /// Number of counters.
    pub const COUNT: u32 = 21;
}

/// Indices into [`MAP_SPLICE_COUNTERS`]. The verdict never drops a byte:
/// what it cannot redirect it passes to the receiving socket itself (TCP
/// has already acknowledged those bytes, so a drop would corrupt the
/// stream), and user space reads it there like any received data. It drops
/// only empty skbs (a FIN arriving on its own): the kernel treats sending
/// zero bytes on the peer as a broken pipe (`EPIPE` on the peer socket),
/// and the FIN has already set the receiving socket's EOF for user space.
pub mod splice_counter {
    /// skbs redirected to the peer socket's egress.
    pub const REDIRECTED: u32 = 0;
    /// Bytes in those skbs.
    pub const REDIRECTED_BYTES: u32 = 1;
    /// skbs passed because their socket has no [`super::SplicePeer`] entry.
    pub const PASS_NO_PEER: u32 = 2;
    /// skbs passed because the peer socket is not (or no longer) in
    /// [`super::MAP_SPLICE_TARGETS`] (closed, or removed by user space).
    pub const PASS_PEER_GONE: u32 = 3;
    /// Bytes in the passed skbs.
    pub const PASSED_BYTES: u32 = 4;
    /// Empty skbs (a lone FIN) dropped.
    pub const DROP_EMPTY: u32 = 5;
    /// Number of counters.
    pub const COUNT: u32 = 6;
}

/// Value of [`MAP_SPLICE_PEERS`]: where a spliced socket's bytes go, and how
/// many went. Written whole by user space at join (counters zero); the
/// verdict only adds to the counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplicePeer {
    /// Socket cookie (`SO_COOKIE`) of the socket this one's bytes go out on.
    pub peer: u64,
    /// Bytes redirected from this socket to the peer.
    pub bytes: u64,
    /// skbs redirected from this socket to the peer.
    pub skbs: u64,
}

/// Settings of `xdp_ingress`, written by the loader only (inactive slot
/// first, then the flip of [`MAP_CONFIG_ACTIVE`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpConfig {
    /// Bumped by the loader on every write.
    pub generation: u64,
    /// SYNs per second refilled into each source's bucket; 0: no limit.
    pub syn_rate: u64,
    /// Bucket size, in [`SYN_TOKEN`] units (`burst * SYN_TOKEN`).
    pub syn_capacity: u64,
    /// Time an empty bucket takes to fill (`syn_capacity / syn_rate` ns);
    /// precomputed so that the program never divides.
    pub syn_refill_ns: u64,
    /// TCP destination port never dropped (host order); 0: none.
    pub admin_port: u16,
    /// TCP destination port whose SYNs are rate-limited (host order); 0: every port.
    pub syn_port: u16,
    /// Explicit padding; always zero.
    pub _pad: u32,
    /// Valid entries in this slot's half of [`MAP_STEER_CPUS`]; 0: no flow steering.
    pub steer_shards: u32,
    /// TCP and UDP destination ports whose flows are steered (host order); 0: unused.
    pub steer_ports: [u16; STEER_PORTS],
}

impl XdpConfig {
    /// A configuration with the SYN bucket derived from `rate` per second and
    /// `burst` SYNs (`rate` 0 turns the limit off).
    pub const fn new(
        generation: u64,
        rate: u32,
        burst: u32,
        admin_port: u16,
        syn_port: u16,
    ) -> Self {
        let burst = if burst == 0 { 1 } else { burst as u64 };
        let capacity = burst * SYN_TOKEN;
        XdpConfig {
            generation,
            syn_rate: rate as u64,
            syn_capacity: capacity,
            syn_refill_ns: if rate == 0 { 0 } else { capacity / rate as u64 },
            admin_port,
            syn_port,
            _pad: 0,
            steer_shards: 0,
            steer_ports: [0; STEER_PORTS],
        }
    }

    /// This configuration with flow steering over `shards` table entries
    /// for the first [`STEER_PORTS`] of `ports` (`shards` 0: steering off).
    pub fn with_steering(mut self, shards: u32, ports: &[u16]) -> Self {
        self.steer_shards = shards.min(STEER_SHARDS_MAX);
        self.steer_ports = [0; STEER_PORTS];
        for (slot, port) in self.steer_ports.iter_mut().zip(ports) {
            *slot = *port;
        }
        self
    }
}

/// An address as the deny-list and the SYN limiter store it: IPv6, or
/// IPv4 mapped into IPv6 (`::ffff:a.b.c.d`).
pub type DenyAddr = [u8; 16];

/// The data of an LPM trie key (the trie key is `prefix_len: u32` then this).
/// An IPv4 prefix of length `n` is stored as its mapped address with `96 + n`.
pub const fn v4_mapped(v4: [u8; 4]) -> DenyAddr {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, v4[0], v4[1], v4[2], v4[3],
    ]
}

/// Value of a deny-list entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DenyEntry {
    /// Generation of the configuration that added the entry (stale entries
    /// are removed after the new ones are in).
    pub generation: u64,
}

/// Key of the SYN limiter: the source address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SynKey {
    /// Source address ([`DenyAddr`] form).
    pub addr: DenyAddr,
}

/// A source's SYN token bucket.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynBucket {
    /// Tokens left, in [`SYN_TOKEN`] units.
    pub tokens: u64,
    /// `bpf_ktime_get_ns` of the last refill.
    pub last_ns: u64,
}

#[cfg(feature = "user")]
mod pod {
    // `aya::Pod` promises that any bit pattern is a valid value and that the
    // type has no uninitialised (padding) bytes.

    // SAFETY: `#[repr(C)]`, only integers, padding is the explicit `_pad`.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::XdpConfig {}
    // SAFETY: `#[repr(C)]`, a single `u64`.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::DenyEntry {}
    // SAFETY: `#[repr(C)]`, a single byte array.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::SynKey {}
    // SAFETY: `#[repr(C)]`, two `u64`s.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::SynBucket {}
    // SAFETY: `#[repr(C)]`, three `u64`s.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::SplicePeer {}
}

// Layouts are part of the ABI: a change here must be a deliberate one.
const _: () = assert!(core::mem::size_of::<XdpConfig>() == 56);
const _: () = assert!(core::mem::size_of::<DenyEntry>() == 8);
const _: () = assert!(core::mem::size_of::<SynKey>() == 16);
const _: () = assert!(core::mem::size_of::<SynBucket>() == 16);
const _: () = assert!(core::mem::size_of::<SplicePeer>() == 24);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_bucket_config_needs_no_division_in_the_kernel() {
        let c = XdpConfig::new(1, 10, 5, 9901, 80);
        assert_eq!(c.syn_capacity, 5 * SYN_TOKEN);
        assert_eq!(c.syn_refill_ns, 500_000_000);
        let off = XdpConfig::new(1, 0, 0, 0, 0);
        assert_eq!((off.syn_rate, off.syn_refill_ns), (0, 0));
        assert_eq!(off.syn_capacity, SYN_TOKEN);
    }

    #[test]
    fn steering_keeps_the_filter_settings_and_caps_its_tables() {
        let c = XdpConfig::new(1, 10, 5, 9901, 80).with_steering(2, &[80, 443]);
        assert_eq!((c.steer_shards, c.steer_ports), (2, [80, 443, 0, 0, 0, 0]));
        assert_eq!(c.syn_port, 80);
        let many = XdpConfig::default().with_steering(10_000, &[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(many.steer_shards, STEER_SHARDS_MAX);
        assert_eq!(many.steer_ports, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn v4_addresses_are_mapped() {
        assert_eq!(v4_mapped([10, 1, 2, 3])[10..], [0xff, 0xff, 10, 1, 2, 3]);
    }
}
