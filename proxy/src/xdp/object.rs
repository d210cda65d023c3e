//! The eBPF object in the kernel: its maps (rauta is the only writer) and
//! its programs. Used by the loader in `rauta serve`, and directly by the
//! packet-fixture tests and the benchmark.

use super::cidr::Cidr;
use super::ebpf_log::{self, LogPump};
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::xdp::XdpMapError;
use aya::maps::{Array, CpuMap, MapData, MapError, PerCpuArray, ReusePortSockArray};
use aya::programs::{
    ProgramError, SkReuseport, TestRun, TestRunOptions, Xdp, XdpMode as AttachMode,
};
use aya::{Ebpf, EbpfError, EbpfLoader};
use rauta_shared::ebpf::{self as abi, counter, fast, DenyAddr, DenyEntry, XdpConfig};
use std::collections::HashSet;
use std::error::Error;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

/// The object built from `xdp/` by `proxy/build.rs` (empty when the build
/// ran with `AYA_BUILD_SKIP=1`).
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/rauta-xdp"));

/// Why the object could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The binary carries no eBPF object.
    #[error("this rauta binary was built without its eBPF programs (AYA_BUILD_SKIP)")]
    NotBuilt,
    /// The kernel refused the object (maps, BTF, ...).
    #[error(transparent)]
    Ebpf(#[from] EbpfError),
}

/// Which `SK_REUSEPORT` program is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SteeringProgram {
    /// `select_by_cpu`, attach type `BPF_SK_REUSEPORT_SELECT_OR_MIGRATE`.
    Migrate,
    /// `select_legacy`, attach type `BPF_SK_REUSEPORT_SELECT` (older kernels).
    Legacy,
}

impl SteeringProgram {
    /// The program's name in the object.
    pub fn name(self) -> &'static str {
        match self {
            SteeringProgram::Migrate => abi::PROG_SELECT_BY_CPU,
            SteeringProgram::Legacy => abi::PROG_SELECT_LEGACY,
        }
    }
}

/// The summed per-CPU counters (indexed by `rauta_shared::ebpf::counter`).
pub type Counters = [u64; counter::COUNT as usize];

/// Read access to the counters map, shared with the admin thread.
pub struct CounterReader {
    map: PerCpuArray<MapData, u64>,
}

impl std::fmt::Debug for CounterReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CounterReader").finish_non_exhaustive()
    }
}

impl CounterReader {
    /// Every counter, summed over CPUs.
    pub fn read(&self) -> Result<Counters, MapError> {
        let mut out = [0u64; counter::COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            let values = self.map.get(&(i as u32), 0)?;
            *slot = values.iter().copied().fold(0u64, u64::wrapping_add);
        }
        Ok(out)
    }
}

/// The loaded object. Dropping it detaches its XDP links and unloads the
/// programs; nothing is pinned, so nothing outlives the process.
pub struct Object {
    ebpf: Ebpf,
    counters: Arc<CounterReader>,
    generation: u64,
    active_slot: u32,
    _log: Option<LogPump>,
    /// CPUs with an entry in the steering CPUMAP (each has a kernel thread).
    cpumap_cpus: Vec<u32>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("generation", &self.generation)
            .field("active_slot", &self.active_slot)
            .finish_non_exhaustive()
    }
}

impl Object {
    /// Creates the maps (the socket array sized for this machine's CPUs)
    /// and prepares the programs, without loading any of them yet; the
    /// fast path's tables stay minimal.
    pub fn open() -> Result<Object, OpenError> {
        Object::open_with(false)
    }

    /// [`Object::open`], with the XDP fast path's tables at full size
    /// when `fast_path` (about 9 MB of Maglev tables and a flow table of
    /// `FAST_FLOWS_MAX` entries).
    pub fn open_with(fast_path: bool) -> Result<Object, OpenError> {
        if OBJECT.is_empty() {
            return Err(OpenError::NotBuilt);
        }
        raise_memlock_limit();
        let cpus = aya::util::nr_cpus().map_or(abi::SHARD_SOCKETS_DEFAULT, |n| n.max(1) as u32);
        let level = ebpf_log::kernel_level();
        let mut loader = EbpfLoader::new();
        loader
            .map_max_entries(abi::MAP_SHARD_SOCKETS, cpus)
            .map_max_entries(abi::MAP_STEER_CPUMAP, cpus)
            // The splice maps belong to `l4::splice`, which loads its own
            // instance of the object; here they stay minimal.
            .map_max_entries(abi::MAP_SPLICE_SOCKETS, 1)
            .map_max_entries(abi::MAP_SPLICE_TARGETS, 1)
            .map_max_entries(abi::MAP_SPLICE_PEERS, 1)
            .override_global("AYA_LOG_LEVEL", &level, false);
        if !fast_path {
            // A lookup past the end fails, and the program passes.
            for map in [
                fast::MAP_FAST_BACKENDS,
                fast::MAP_FAST_MAGLEV,
                fast::MAP_FAST_FLOWS,
            ] {
                loader.map_max_entries(map, 1);
            }
        }
        let mut ebpf = loader.load(OBJECT)?;
        let counters = ebpf
            .take_map(abi::MAP_COUNTERS)
            .ok_or(MapError::InvalidName {
                name: abi::MAP_COUNTERS.into(),
            })
            .and_then(PerCpuArray::try_from)
            .map_err(EbpfError::MapError)?;
        let log = LogPump::start(&mut ebpf);
        Ok(Object {
            ebpf,
            counters: Arc::new(CounterReader { map: counters }),
            generation: 0,
            active_slot: 0,
            _log: log,
            cpumap_cpus: Vec::new(),
        })
    }

    /// Takes map `name` out of the object, e.g. to hand it to another
    /// thread (the programs keep using it).
    pub fn take_map(&mut self, name: &str) -> Result<aya::maps::Map, MapError> {
        self.ebpf.take_map(name).ok_or(MapError::InvalidName {
            name: name.to_string(),
        })
    }

    /// The counters, for the admin thread.
    pub fn counter_reader(&self) -> Arc<CounterReader> {
        self.counters.clone()
    }

    /// Every counter, summed over CPUs.
    pub fn counters(&self) -> Result<Counters, MapError> {
        self.counters.read()
    }

    // ------------------------------------------------------- steering

    /// Loads the `SK_REUSEPORT` program: the migrate flavour, or the plain
    /// one where the kernel lacks the migrate attach type (before 5.14).
    pub fn load_steering(&mut self) -> Result<SteeringProgram, ProgramError> {
        match self.load_reuseport(SteeringProgram::Migrate) {
            Ok(()) => Ok(SteeringProgram::Migrate),
            Err(e) => {
                tracing::debug!(target: "rauta::ebpf", error = %super::degrade::chain(&e), "select_by_cpu (migrate) refused; trying the plain attach type");
                self.load_reuseport(SteeringProgram::Legacy)?;
                Ok(SteeringProgram::Legacy)
            }
        }
    }

    fn load_reuseport(&mut self, which: SteeringProgram) -> Result<(), ProgramError> {
        let prog: &mut SkReuseport = self
            .ebpf
            .program_mut(which.name())
            .ok_or(ProgramError::InvalidName {
                name: which.name().into(),
            })?
            .try_into()?;
        prog.load()
    }

    /// Puts `listener` (a listening `SO_REUSEPORT` socket) in the slot of `cpu`.
    pub fn register_listener(&mut self, cpu: u32, listener: &impl AsRawFd) -> Result<(), MapError> {
        let map = named_map(&mut self.ebpf, abi::MAP_SHARD_SOCKETS)?;
        let mut sockets = ReusePortSockArray::try_from(map)?;
        sockets.set(cpu, listener, 0)
    }

    /// Attaches the loaded steering program to the reuseport group of `socket`.
    pub fn attach_steering(
        &mut self,
        which: SteeringProgram,
        socket: impl AsFd,
    ) -> Result<(), ProgramError> {
        let prog: &mut SkReuseport = self
            .ebpf
            .program_mut(which.name())
            .ok_or(ProgramError::InvalidName {
                name: which.name().into(),
            })?
            .try_into()?;
        prog.attach(socket)
    }

    // ------------------------------------------------------- XDP

    fn xdp(&mut self) -> Result<&mut Xdp, ProgramError> {
        self.ebpf
            .program_mut(abi::PROG_XDP_INGRESS)
            .ok_or(ProgramError::InvalidName {
                name: abi::PROG_XDP_INGRESS.into(),
            })?
            .try_into()
    }

    /// A descriptor of the loaded `xdp_ingress`, which keeps it loaded.
    pub fn xdp_fd(&mut self) -> Result<OwnedFd, Box<dyn Error + Send + Sync>> {
        Ok(self.xdp()?.fd()?.as_fd().try_clone_to_owned()?)
    }

    /// Loads `xdp_ingress` into the kernel (not attached anywhere yet).
    pub fn load_xdp(&mut self) -> Result<(), ProgramError> {
        self.xdp()?.load()
    }

    /// Attaches `xdp_ingress` to `iface` with aya (a bpf_link, or netlink
    /// on kernels before 5.9); never replacing another program. The link
    /// lives as long as this object. `rauta serve` attaches through
    /// [`super::handover`] instead, which keeps the link's descriptor.
    pub fn attach_xdp(&mut self, iface: &str) -> Result<(), ProgramError> {
        self.xdp()?.attach(iface, AttachMode::default()).map(drop)
    }

    /// Runs `xdp_ingress` on `packet` through `BPF_PROG_TEST_RUN`, `repeat`
    /// times in the kernel; the action and the kernel's mean time per run.
    pub fn test_run_xdp(
        &mut self,
        packet: &[u8],
        repeat: u32,
    ) -> Result<(u32, Duration), ProgramError> {
        let opts = TestRunOptions {
            data_in: Some(packet),
            repeat: repeat.max(1),
            ..TestRunOptions::new()
        };
        let result = self.xdp()?.test_run(opts)?;
        Ok((result.return_value, result.duration))
    }

    /// Runs `xdp_ingress` once on `packet` as if it arrived on interface
    /// `ingress_ifindex` (0: none) of the calling thread's network
    /// namespace; the action and the packet as the program left it.
    pub fn test_run_xdp_out(
        &mut self,
        packet: &[u8],
        ingress_ifindex: u32,
    ) -> Result<(u32, Vec<u8>), ProgramError> {
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex. The kernel wants data 0 and
        // data_end the input's length.
        let md = [0, packet.len() as u32, 0, ingress_ifindex, 0, 0];
        let ctx: Vec<u8> = md.iter().flat_map(|w: &u32| w.to_ne_bytes()).collect();
        // Room for a program that grows the packet.
        let mut out = vec![0u8; packet.len() + 256];
        let opts = TestRunOptions {
            data_in: Some(packet),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx),
            ..TestRunOptions::new()
        };
        let result = self.xdp()?.test_run(opts)?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out))
    }

    // ------------------------------------------------------- flow steering

    /// Steers flows over `cpus` (shard `i` on `cpus[i]`) with `cfg`'s other
    /// settings: CPUMAP entries (`queue_size` frames each) for new CPUs
    /// first, then the CPU table in the inactive half and the flip of the
    /// configuration, then the entries of CPUs no longer in the set go.
    /// A flow whose shard moves keeps working (its socket is found from any
    /// CPU); only its packets are processed elsewhere from then on.
    pub fn write_steering(
        &mut self,
        cfg: XdpConfig,
        cpus: &[u32],
        queue_size: u32,
    ) -> Result<u64, XdpMapError> {
        let cpus = &cpus[..cpus.len().min(abi::STEER_SHARDS_MAX as usize)];
        {
            let map = named_map(&mut self.ebpf, abi::MAP_STEER_CPUMAP)?;
            let mut cpumap = CpuMap::try_from(map)?;
            for cpu in cpus {
                if !self.cpumap_cpus.contains(cpu) {
                    cpumap.set(*cpu, queue_size, None, 0)?;
                    self.cpumap_cpus.push(*cpu);
                }
            }
        }
        {
            let base = (1 - self.active_slot) * abi::STEER_SHARDS_MAX;
            let map = named_map(&mut self.ebpf, abi::MAP_STEER_CPUS)?;
            let mut table: Array<_, u32> = Array::try_from(map)?;
            for (i, cpu) in cpus.iter().enumerate() {
                table.set(base + i as u32, *cpu, 0)?;
            }
        }
        let generation =
            self.write_config(cfg.with_steering(cpus.len() as u32, &cfg.steer_ports))?;
        let stale: Vec<u32> = self
            .cpumap_cpus
            .iter()
            .copied()
            .filter(|c| !cpus.contains(c))
            .collect();
        if !stale.is_empty() {
            let map = named_map(&mut self.ebpf, abi::MAP_STEER_CPUMAP)?;
            let mut cpumap = CpuMap::try_from(map)?;
            for cpu in stale {
                // Queue size 0 is the kernel's way to delete a CPUMAP entry
                // (aya has no remove for it); frames in flight still drain.
                cpumap.set(cpu, 0, None, 0)?;
                self.cpumap_cpus.retain(|c| *c != cpu);
            }
        }
        Ok(generation)
    }

    // ------------------------------------------------------- maps

    /// The object's map `name` (`rauta_shared::ebpf::MAP_*`), for typed
    /// access through aya (`HashMap::try_from` and friends).
    pub fn map_mut(&mut self, name: &str) -> Option<&mut aya::maps::Map> {
        self.ebpf.map_mut(name)
    }

    /// Writes `cfg` (stamped with the next generation) into the inactive
    /// configuration slot, then makes that slot the live one.
    pub fn write_config(&mut self, mut cfg: XdpConfig) -> Result<u64, MapError> {
        self.generation += 1;
        cfg.generation = self.generation;
        cfg._pad = 0;
        let inactive = 1 - self.active_slot;
        {
            let map = named_map(&mut self.ebpf, abi::MAP_CONFIG)?;
            let mut slots: Array<_, XdpConfig> = Array::try_from(map)?;
            slots.set(inactive, cfg, 0)?;
        }
        let map = named_map(&mut self.ebpf, abi::MAP_CONFIG_ACTIVE)?;
        let mut active: Array<_, u32> = Array::try_from(map)?;
        active.set(0, inactive, 0)?;
        self.active_slot = inactive;
        Ok(self.generation)
    }

    /// Makes the deny-list exactly `prefixes`: new entries are written
    /// first (each whole, with the new generation), then stale ones removed.
    pub fn write_deny_list(&mut self, prefixes: &[Cidr]) -> Result<(), MapError> {
        self.generation += 1;
        let generation = self.generation;
        let map = named_map(&mut self.ebpf, abi::MAP_DENY)?;
        let mut trie: LpmTrie<_, DenyAddr, DenyEntry> = LpmTrie::try_from(map)?;
        let mut wanted = HashSet::new();
        for prefix in prefixes {
            let (len, addr) = super::cidr::trie_key(prefix);
            trie.insert(&Key::new(len, addr), DenyEntry { generation }, 0)?;
            wanted.insert((len, addr));
        }
        let stale: Vec<Key<DenyAddr>> = trie
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !wanted.contains(&(k.prefix_len(), k.data())))
            .collect();
        for key in stale {
            trie.remove(&key)?;
        }
        Ok(())
    }
}

/// Map `name` of `ebpf`, or the error that names it (a function, not a
/// method, so that other fields of the object stay borrowable).
fn named_map<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut aya::maps::Map, MapError> {
    ebpf.map_mut(name).ok_or(MapError::InvalidName {
        name: name.to_string(),
    })
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; lift it (best
/// effort: newer kernels account to the cgroup instead).
pub(crate) fn raise_memlock_limit() {
    use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};
    if let Err(e) = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY) {
        tracing::debug!(target: "rauta::ebpf", error = %e, "cannot lift RLIMIT_MEMLOCK");
    }
}
