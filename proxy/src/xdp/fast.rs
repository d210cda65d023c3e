//! The user side of the XDP L4 fast path (`--xdp-fast-path`): writes the
//! tables `xdp_ingress` indexes for the TCP services marked
//! `rauta.io/xdp-fast-path`, sweeps ended and idle flows out of the flow
//! table, and reads the counters for `/metrics`.
//!
//! User space stays the authority. Every route-table generation, on the
//! control thread and before the shards see that generation, each fast
//! service gets its backends and Maglev table written into the inactive
//! half of its slot, then one service-entry update flips it. Flows already
//! in the kernel's flow table keep their backend (a removed endpoint's
//! flows run on until they end or idle out: its pod is terminating). A
//! service taken off the fast path stops getting new fast flows at once;
//! its existing ones end with the service, after `--l4-close-grace`.

use super::object::Object;
use super::worker::Worker;
use crate::balance::maglev::Maglev;
use aya::maps::{Array, HashMap, MapData, MapError, PerCpuArray};
use rauta_shared::config::{L4Protocol, RouteConfig};
use rauta_shared::ebpf::fast::{
    self as abi, backend_index, fast_counter, maglev_index, FastBackend, FastConfig, FastService,
    FastServiceKey, FastStats, FlowEntry, FlowKey,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `--xdp-fast-path` settings.
#[derive(Clone, Debug)]
pub struct FastOptions {
    /// Source ports rauta owns for NAT (inclusive), outside the kernel's
    /// ephemeral range so that no local connection ever collides.
    pub snat_ports: (u16, u16),
    /// A flow with no packet for this long leaves the table.
    pub idle_timeout: Duration,
    /// A removed service's flows end after this long.
    pub close_grace: Duration,
}

/// A flow whose both directions sent a FIN leaves the table this long
/// after its last packet (the closing handshake's last ACKs).
const FIN_LINGER: Duration = Duration::from_secs(10);
/// How often the sweeper walks the flow table.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// A service slot's state, shared with the sweeper and the metrics.
#[derive(Debug, Default)]
struct Slots {
    /// Label of the service in each slot (`tcp/9000`), while live.
    names: Vec<Option<String>>,
    /// Slots whose service went away, and when.
    retired: Vec<(u32, Instant)>,
}

/// What the fast path shares between the control thread, the sweeper and
/// the admin thread.
#[derive(Debug, Default)]
pub struct FastShared {
    slots: Mutex<Slots>,
    /// Entries in the flow table at the last sweep (two per flow).
    entries: AtomicU64,
    /// Entries the sweeper removed, by cause.
    swept_idle: AtomicU64,
    swept_closed: AtomicU64,
    swept_retired: AtomicU64,
}

/// A live service on the fast path.
#[derive(Debug)]
struct Live {
    slot: u32,
    half: u32,
    /// The backends last written, to skip unchanged rewrites.
    backends: Vec<FastBackend>,
}

/// The writer of the fast path's tables, owned by the control thread.
pub struct FastPath {
    services: HashMap<MapData, FastServiceKey, FastService>,
    backends: Array<MapData, FastBackend>,
    maglev: Array<MapData, u32>,
    config: Array<MapData, FastConfig>,
    live: BTreeMap<u16, Live>,
    /// What each slot's two Maglev halves hold, as last written (empty:
    /// unknown, written whole).
    halves: Vec<[Vec<u32>; 2]>,
    generation: u64,
    opts: FastOptions,
    shared: Arc<FastShared>,
    reader: Arc<FastReader>,
    _sweeper: Worker,
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath")
            .field("live", &self.live)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

fn take<T: TryFrom<aya::maps::Map, Error = MapError>>(
    object: &mut Object,
    name: &str,
) -> Result<T, MapError> {
    T::try_from(object.take_map(name)?)
}

impl FastPath {
    /// Takes the fast path's maps out of `object` (opened with the fast
    /// path on) and starts the sweeper.
    pub fn take(object: &mut Object, opts: FastOptions) -> Result<FastPath, MapError> {
        let services = take(object, abi::MAP_FAST_SERVICES)?;
        let backends = take(object, abi::MAP_FAST_BACKENDS)?;
        let maglev = take(object, abi::MAP_FAST_MAGLEV)?;
        let mut config: Array<MapData, FastConfig> = take(object, abi::MAP_FAST_CONFIG)?;
        let flows = take(object, abi::MAP_FAST_FLOWS)?;
        let reader = Arc::new(FastReader {
            counters: take(object, abi::MAP_FAST_COUNTERS)?,
            stats: take(object, abi::MAP_FAST_STATS)?,
            shared: Arc::new(FastShared::default()),
        });
        let shared = reader.shared.clone();
        if let Ok(mut slots) = shared.slots.lock() {
            slots.names = vec![None; abi::FAST_SERVICES_MAX as usize];
        }
        config.set(0, fast_config(false, &opts), 0)?;
        let sweeper = sweeper(flows, shared.clone(), opts.clone()).map_err(|e| {
            MapError::SyscallError(aya::sys::SyscallError {
                call: "spawn the flow sweeper",
                io_error: e,
            })
        })?;
        Ok(FastPath {
            services,
            backends,
            maglev,
            config,
            live: BTreeMap::new(),
            halves: (0..abi::FAST_SERVICES_MAX)
                .map(|_| Default::default())
                .collect(),
            generation: 0,
            opts,
            shared,
            reader,
            _sweeper: sweeper,
        })
    }

    /// Counters and per-service traffic, for the admin thread.
    pub fn reader(&self) -> Arc<FastReader> {
        self.reader.clone()
    }

    /// Makes the kernel's tables match the fast services of `config`.
    pub fn update(&mut self, config: &RouteConfig) {
        let wanted: BTreeMap<u16, usize> = config
            .l4
            .iter()
            .filter(|s| s.xdp_fast_path && s.protocol == L4Protocol::Tcp)
            .map(|s| (s.port, s.backend))
            .collect();
        let gone: Vec<u16> = self
            .live
            .keys()
            .filter(|p| !wanted.contains_key(p))
            .copied()
            .collect();
        for port in gone {
            self.retire(port);
        }
        for (port, backend) in wanted {
            let Some(backend) = config.backends.get(backend) else {
                continue;
            };
            let targets = fast_backends(port, &backend.endpoints);
            if let Err(e) = self.write_service(port, targets) {
                tracing::warn!(port, error = %e, "XDP fast path: cannot write the service's tables; its new flows go through user space");
            }
        }
        let enabled = !self.live.is_empty();
        if let Err(e) = self.config.set(0, fast_config(enabled, &self.opts), 0) {
            tracing::warn!(error = %e, "XDP fast path: cannot write its configuration");
        }
    }

    /// Ports on the fast path now.
    pub fn ports(&self) -> Vec<u16> {
        self.live.keys().copied().collect()
    }

    fn write_service(&mut self, port: u16, targets: Vec<Target>) -> Result<(), MapError> {
        let backends: Vec<FastBackend> = targets.iter().map(|t| t.backend).collect();
        let (slot, half) = match self.live.get(&port) {
            Some(live) if live.backends == backends => return Ok(()),
            Some(live) => (live.slot, 1 - live.half),
            None => match self.free_slot() {
                Some(slot) => (slot, 0),
                None => {
                    tracing::warn!(
                        port,
                        max = abi::FAST_SERVICES_MAX,
                        "XDP fast path: every service slot is taken; this service stays in user space"
                    );
                    return Ok(());
                }
            },
        };
        // The inactive half first: the kernel reads the live one meanwhile.
        for (i, b) in backends.iter().enumerate() {
            self.backends
                .set(backend_index(slot, half, i as u32), *b, 0)?;
        }
        let weights: Vec<(String, u32)> = targets
            .iter()
            .map(|t| (t.addr.to_string(), t.weight))
            .collect();
        let names: Vec<(&str, u32)> = weights.iter().map(|(n, w)| (n.as_str(), *w)).collect();
        let started = Instant::now();
        let mut written = 0usize;
        if let Some(table) = Maglev::build(&names) {
            // Only the entries that differ from what this half holds: an
            // endpoint change moves about 1/N of them, and each is a
            // system call on the control thread (all 65,537: ~0.4 s).
            let known = &mut self.halves[slot as usize][half as usize];
            let before = std::mem::take(known);
            for (at, b) in table.slots().iter().enumerate() {
                if before.get(at) != Some(b) {
                    self.maglev
                        .set(maglev_index(slot, half, at as u32), *b, 0)?;
                    written += 1;
                }
            }
            // Set only once every write went through; after an error the
            // half counts as unknown and is written whole next time.
            *known = table.slots().to_vec();
        }
        self.generation += 1;
        let entry = FastService {
            generation: self.generation,
            slot,
            half,
            backends: backends.len() as u32,
            _pad: 0,
        };
        self.services
            .insert(FastServiceKey { port, _pad: 0 }, entry, 0)?;
        if let Ok(mut slots) = self.shared.slots.lock() {
            if let Some(name) = slots.names.get_mut(slot as usize) {
                *name = Some(format!("tcp/{port}"));
            }
        }
        tracing::info!(
            port,
            slot,
            backends = backends.len(),
            maglev_entries_written = written,
            took_ms = started.elapsed().as_millis() as u64,
            "XDP fast path: service tables written"
        );
        self.live.insert(
            port,
            Live {
                slot,
                half,
                backends,
            },
        );
        Ok(())
    }

    /// Takes `port` off the fast path: no new fast flows from now; the
    /// sweeper ends its flows after the close grace.
    fn retire(&mut self, port: u16) {
        let Some(live) = self.live.remove(&port) else {
            return;
        };
        if let Err(e) = self.services.remove(&FastServiceKey { port, _pad: 0 }) {
            tracing::warn!(port, error = %e, "XDP fast path: cannot remove the service");
        }
        if let Ok(mut slots) = self.shared.slots.lock() {
            slots.retired.push((live.slot, Instant::now()));
        }
        tracing::info!(port, "XDP fast path: service off the fast path");
    }

    /// A slot neither live nor still holding a retired service's flows.
    fn free_slot(&self) -> Option<u32> {
        let slots = self.shared.slots.lock().ok()?;
        let grace = self.opts.close_grace + SWEEP_EVERY * 2;
        (0..abi::FAST_SERVICES_MAX).find(|s| {
            !self.live.values().any(|l| l.slot == *s)
                && !slots
                    .retired
                    .iter()
                    .any(|(r, at)| r == s && at.elapsed() < grace)
        })
    }
}

fn fast_config(enabled: bool, opts: &FastOptions) -> FastConfig {
    FastConfig {
        enabled: u32::from(enabled),
        snat_port_lo: opts.snat_ports.0,
        snat_port_hi: opts.snat_ports.1,
    }
}

/// One endpoint as the fast path writes it.
struct Target {
    addr: SocketAddr,
    weight: u32,
    backend: FastBackend,
}

/// The ready IPv4 endpoints of a service, each with the node's source
/// address towards it (what the routing table would pick for a connection).
fn fast_backends(port: u16, endpoints: &[rauta_shared::config::EndpointConfig]) -> Vec<Target> {
    let mut out = Vec::new();
    for e in endpoints.iter().filter(|e| e.ready) {
        let SocketAddr::V4(v4) = e.addr else {
            tracing::warn!(port, endpoint = %e.addr, "XDP fast path: IPv6 endpoint left to user space");
            continue;
        };
        if out.len() == abi::FAST_BACKENDS_MAX as usize {
            tracing::warn!(port, max = abi::FAST_BACKENDS_MAX, "XDP fast path: more endpoints than a service's table holds; the rest get no new fast flows");
            break;
        }
        let snat = match source_towards(e.addr) {
            Ok(IpAddr::V4(ip)) => ip,
            Ok(IpAddr::V6(_)) | Err(_) => {
                tracing::warn!(port, endpoint = %e.addr, "XDP fast path: no IPv4 route to the endpoint; left out");
                continue;
            }
        };
        out.push(Target {
            addr: e.addr,
            weight: e.weight.max(1),
            backend: FastBackend {
                addr: v4.ip().octets(),
                snat_addr: snat.octets(),
                port: v4.port(),
                _pad: 0,
            },
        });
    }
    out
}

/// The local address the kernel would send from to reach `to`.
fn source_towards(to: SocketAddr) -> std::io::Result<IpAddr> {
    let socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))?;
    socket.connect(to)?;
    Ok(socket.local_addr()?.ip())
}

/// The fast path's counters, for `/metrics`.
pub struct FastReader {
    counters: PerCpuArray<MapData, u64>,
    stats: PerCpuArray<MapData, FastStats>,
    shared: Arc<FastShared>,
}

impl std::fmt::Debug for FastReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastReader").finish_non_exhaustive()
    }
}

/// The fast path's figures at one moment.
#[derive(Clone, Debug, Default)]
pub struct FastFigures {
    /// `fast_counter::*`, summed over CPUs.
    pub counters: Vec<u64>,
    /// Per live service: its label and traffic summed over CPUs.
    pub services: Vec<(String, FastStats)>,
    /// Flow-table entries at the last sweep (two per flow).
    pub entries: u64,
    /// Entries swept: (idle, closed, service gone).
    pub swept: (u64, u64, u64),
}

impl FastReader {
    /// Everything, summed over CPUs.
    pub fn figures(&self) -> Result<FastFigures, MapError> {
        let mut counters = Vec::with_capacity(fast_counter::COUNT as usize);
        for i in 0..fast_counter::COUNT {
            let v = self.counters.get(&i, 0)?;
            counters.push(v.iter().copied().fold(0u64, u64::wrapping_add));
        }
        let names = self
            .shared
            .slots
            .lock()
            .map(|s| s.names.clone())
            .unwrap_or_default();
        let mut services = Vec::new();
        for (slot, name) in names.iter().enumerate() {
            let Some(name) = name else { continue };
            let per_cpu = self.stats.get(&(slot as u32), 0)?;
            let mut sum = FastStats::default();
            for s in per_cpu.iter() {
                sum.packets_in += s.packets_in;
                sum.bytes_in += s.bytes_in;
                sum.packets_out += s.packets_out;
                sum.bytes_out += s.bytes_out;
                sum.flows += s.flows;
            }
            services.push((name.clone(), sum));
        }
        let sh = &self.shared;
        Ok(FastFigures {
            counters,
            services,
            entries: sh.entries.load(Ordering::Relaxed),
            swept: (
                sh.swept_idle.load(Ordering::Relaxed),
                sh.swept_closed.load(Ordering::Relaxed),
                sh.swept_retired.load(Ordering::Relaxed),
            ),
        })
    }
}

/// The thread that removes ended, idle and orphaned flows.
fn sweeper(
    mut flows: HashMap<MapData, FlowKey, FlowEntry>,
    shared: Arc<FastShared>,
    opts: FastOptions,
) -> std::io::Result<Worker> {
    Worker::spawn("xdp-fast-sweep".into(), move |stop| {
        let mut next = Instant::now() + SWEEP_EVERY;
        while !stop.load(Ordering::Relaxed) {
            // Short sleeps, so that stopping is quick.
            std::thread::sleep(Duration::from_millis(100));
            if Instant::now() >= next {
                sweep(&mut flows, &shared, &opts);
                next = Instant::now() + SWEEP_EVERY;
            }
        }
    })
}

/// The key of the other direction of the flow `entry` belongs to.
fn partner(entry: &FlowEntry) -> FlowKey {
    FlowKey {
        src_addr: entry.dst_addr,
        dst_addr: entry.src_addr,
        src_port: entry.dst_port,
        dst_port: entry.src_port,
    }
}

/// `bpf_ktime_get_ns`'s clock.
fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| (t.tv_sec() as u64).saturating_mul(1_000_000_000) + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// One walk over the flow table.
fn sweep(
    flows: &mut HashMap<MapData, FlowKey, FlowEntry>,
    shared: &FastShared,
    opts: &FastOptions,
) {
    let now = monotonic_ns();
    let expired: Vec<u32> = shared
        .slots
        .lock()
        .map(|s| {
            s.retired
                .iter()
                .filter(|(_, at)| at.elapsed() >= opts.close_grace)
                .map(|(slot, _)| *slot)
                .collect()
        })
        .unwrap_or_default();
    let entries: Vec<(FlowKey, FlowEntry)> = flows.iter().filter_map(Result::ok).collect();
    let idle = opts.idle_timeout.as_nanos() as u64;
    let linger = FIN_LINGER.as_nanos() as u64;
    let by_key: std::collections::HashMap<FlowKey, FlowEntry> = entries.iter().copied().collect();
    let mut remove = Vec::new();
    for (key, entry) in &entries {
        let other = by_key.get(&partner(entry));
        let last = other.map_or(entry.last_ns, |o| o.last_ns.max(entry.last_ns));
        let quiet = now.saturating_sub(last);
        let closed = entry.flags & abi::flow_flags::FIN != 0
            && other.is_some_and(|o| o.flags & abi::flow_flags::FIN != 0);
        let cause = if expired.contains(&entry.slot) {
            Some(&shared.swept_retired)
        } else if closed && quiet >= linger {
            Some(&shared.swept_closed)
        } else if quiet >= idle {
            Some(&shared.swept_idle)
        } else {
            None
        };
        if let Some(counter) = cause {
            remove.push(*key);
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
    for key in &remove {
        // Gone already (LRU eviction, or the kernel on a RST): fine.
        let _ = flows.remove(key);
    }
    shared
        .entries
        .store((entries.len() - remove.len()) as u64, Ordering::Relaxed);
    if let Ok(mut s) = shared.slots.lock() {
        let Slots { names, retired } = &mut *s;
        retired.retain(|(slot, at)| {
            let keep = at.elapsed() < opts.close_grace + SWEEP_EVERY * 2;
            if !keep {
                if let Some(n) = names.get_mut(*slot as usize) {
                    *n = None;
                }
            }
            keep
        });
    }
}
