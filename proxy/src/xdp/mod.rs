//! The user side of rauta's eBPF programs (aya): loads the object built
//! from `xdp/`, registers each shard's listener in the slot of its CPU and
//! attaches `select_by_cpu` to the reuseport group, attaches `xdp_ingress`
//! to the interfaces named by `--xdp-iface`, and is the only writer of
//! every map. Counters go to `/metrics`.
//!
//! Whatever the kernel or the privileges do not allow is switched off with
//! one log line saying what and why (`--xdp auto`), or stops the start
//! (`--xdp required`). Nothing is pinned: when the process ends, the XDP
//! links close and the programs are unloaded.

pub mod cidr;
pub(crate) mod degrade;
mod ebpf_log;
pub mod fast;
pub mod handover;
pub mod object;
mod worker;

pub use cidr::Cidr;
pub use object::{CounterReader, Counters, Object, OpenError, SteeringProgram};

use rauta_shared::ebpf::{self as abi, XdpConfig};
use std::error::Error;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

/// What `--xdp` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum XdpPolicy {
    /// Never load eBPF programs.
    Off,
    /// Use each program where the kernel and privileges allow; log what is off.
    #[default]
    Auto,
    /// Fail at start unless every program loads and attaches.
    Required,
}

/// What `--xdp-steer` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum XdpSteer {
    /// Packets stay on the CPU that received them.
    #[default]
    Off,
    /// `xdp_ingress` redirects each flow to its shard's CPU through a CPUMAP.
    Cpumap,
}

/// Frames each shard CPU's CPUMAP queue holds before the kernel drops.
pub const STEER_QUEUE_SIZE: u32 = 2048;

/// The eBPF settings of `rauta serve`.
#[derive(Clone, Debug, Default)]
pub struct XdpOptions {
    /// `--xdp`.
    pub policy: XdpPolicy,
    /// Interfaces for `xdp_ingress` (none: steering only).
    pub ifaces: Vec<String>,
    /// Denied source prefixes.
    pub deny: Vec<Cidr>,
    /// SYNs per second per source (0: no limit).
    pub syn_rate: u32,
    /// SYN burst per source.
    pub syn_burst: u32,
    /// The admin port, never dropped.
    pub admin_port: u16,
    /// The client port, whose SYNs are rate-limited.
    pub listen_port: u16,
    /// `--xdp-fast-path`.
    pub fast_path: Option<fast::FastOptions>,
    /// `--xdp-steer`.
    pub steer: XdpSteer,
    /// Destination ports whose flows are steered (the client and TLS ports).
    pub steer_ports: Vec<u16>,
}

impl XdpOptions {
    /// The program configuration these options describe.
    pub fn config(&self) -> XdpConfig {
        XdpConfig::new(
            0,
            self.syn_rate,
            self.syn_burst,
            self.admin_port,
            self.listen_port,
        )
    }
}

/// Whether one program is attached to one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Program name (`select_by_cpu`, `select_legacy`, `xdp_ingress`).
    pub program: &'static str,
    /// Interface, or `reuseport` for the listener group.
    pub target: String,
    /// Attached now.
    pub attached: bool,
}

/// What `/metrics` shows about eBPF.
#[derive(Clone, Debug, Default)]
pub struct XdpFigures {
    /// The summed counters, when the object is loaded.
    pub counters: Option<Counters>,
    /// Every attachment tried.
    pub attachments: Vec<Attachment>,
    /// The fast path, when it runs.
    pub fast: Option<fast::FastFigures>,
    /// Shard CPUs flows are steered over (0: steering failed or stopped);
    /// `None` when `--xdp-steer` is off.
    pub steering: Option<usize>,
}

/// The eBPF state the admin thread reads.
#[derive(Debug, Default)]
pub struct XdpStats {
    counters: Option<Arc<CounterReader>>,
    attachments: Mutex<Vec<Attachment>>,
    /// `xdp_ingress`'s bpf_links by interface, held until [`Xdp::stop`]
    /// or handed over to the next rauta process.
    links: Mutex<Vec<(String, std::os::fd::OwnedFd)>>,
    /// The fast path's counters, once it runs.
    fast: Mutex<Option<Arc<fast::FastReader>>>,
    steering: Mutex<Option<usize>>,
}

impl XdpStats {
    /// Counters and attachments now.
    pub fn figures(&self) -> XdpFigures {
        XdpFigures {
            counters: self.counters.as_ref().and_then(|c| c.read().ok()),
            attachments: self
                .attachments
                .lock()
                .map(|a| a.clone())
                .unwrap_or_default(),
            fast: self
                .fast
                .lock()
                .ok()
                .and_then(|f| f.clone())
                .and_then(|f| f.figures().ok()),
            steering: self.steering.lock().map(|s| *s).unwrap_or_default(),
        }
    }

    fn record_steering(&self, cpus: usize) {
        if let Ok(mut s) = self.steering.lock() {
            *s = Some(cpus);
        }
    }

    fn record(&self, program: &'static str, target: &str, attached: bool) {
        if let Ok(mut a) = self.attachments.lock() {
            a.push(Attachment {
                program,
                target: target.to_string(),
                attached,
            });
        }
    }

    fn set_attached(&self, program: &'static str, target: &str, attached: bool) {
        if let Ok(mut a) = self.attachments.lock() {
            for att in a
                .iter_mut()
                .filter(|a| a.program == program && a.target == target)
            {
                att.attached = attached;
            }
        }
    }

    fn hold(&self, iface: &str, link: std::os::fd::OwnedFd) {
        if let Ok(mut l) = self.links.lock() {
            l.push((iface.to_string(), link));
        }
    }

    fn detach_all(&self) {
        if let Ok(mut l) = self.links.lock() {
            l.clear();
        }
        if let Ok(mut a) = self.attachments.lock() {
            for att in a.iter_mut() {
                att.attached = false;
            }
        }
        if let Ok(mut s) = self.steering.lock() {
            if s.is_some() {
                *s = Some(0);
            }
        }
    }
}

impl handover::Links for XdpStats {
    fn lend(&self, iface: &str) -> Option<std::os::fd::OwnedFd> {
        let links = self.links.lock().ok()?;
        let (_, link) = links.iter().find(|(i, _)| i == iface)?;
        link.try_clone().ok()
    }

    fn handed(&self, iface: &str) {
        if let Ok(mut links) = self.links.lock() {
            links.retain(|(i, _)| i != iface);
        }
        // From now on the interface runs the other process's program.
        self.set_attached(abi::PROG_XDP_INGRESS, iface, false);
    }

    fn holds_any(&self) -> bool {
        self.links.lock().is_ok_and(|l| !l.is_empty())
    }
}

/// The eBPF programs of a running `rauta serve`; [`Xdp::stop`] detaches.
#[derive(Debug)]
pub struct Xdp {
    object: Option<Object>,
    stats: Arc<XdpStats>,
    waiters: Vec<handover::Waiter>,
    fast: Option<fast::FastPath>,
    server: Option<handover::Server>,
}

/// A failed step: in `auto` one warning line, in `required` the start fails.
fn degrade(policy: XdpPolicy, what: &str, err: &(dyn Error + 'static)) -> anyhow::Result<()> {
    let why = degrade::why(err);
    if policy == XdpPolicy::Required {
        anyhow::bail!("--xdp required, but {what} cannot run: {why}");
    }
    tracing::warn!("eBPF off for {what}: {why}; serving without it (--xdp off silences this)");
    Ok(())
}

impl Xdp {
    /// Nothing loaded.
    pub fn off() -> Xdp {
        Xdp {
            object: None,
            stats: Arc::new(XdpStats::default()),
            waiters: Vec::new(),
            fast: None,
            server: None,
        }
    }

    /// Loads and attaches what `opts` asks for. `listeners[i]` is the
    /// listener of the shard pinned to `cpus[i]`; call this before the
    /// listeners go to their shards. Errors only under `--xdp required`.
    pub fn start(
        opts: &XdpOptions,
        cpus: &[usize],
        listeners: &[socket2::Socket],
    ) -> anyhow::Result<Xdp> {
        if opts.policy == XdpPolicy::Off {
            if !opts.ifaces.is_empty() || !opts.deny.is_empty() {
                tracing::warn!("eBPF: --xdp off: --xdp-iface and --xdp-deny are ignored");
            }
            if opts.steer != XdpSteer::Off {
                tracing::warn!("eBPF: --xdp off: --xdp-steer is ignored");
            }
            tracing::info!("eBPF off (--xdp off): no connection steering, no XDP filter");
            return Ok(Xdp::off());
        }
        if !opts.deny.is_empty() && opts.ifaces.is_empty() {
            tracing::warn!("eBPF: --xdp-deny has no effect without --xdp-iface");
        }
        let mut object = match Object::open_with(opts.fast_path.is_some()) {
            Ok(object) => object,
            Err(e) => {
                degrade(opts.policy, "connection steering and the XDP filter", &e)?;
                return Ok(Xdp::off());
            }
        };
        let stats = Arc::new(XdpStats {
            counters: Some(object.counter_reader()),
            ..XdpStats::default()
        });
        steer(&mut object, &stats, opts.policy, cpus, listeners)?;
        let mut waiters = Vec::new();
        if !opts.ifaces.is_empty() {
            filter(&mut object, &stats, opts, &mut waiters)?;
        }
        if opts.steer == XdpSteer::Cpumap {
            steer_flows(&mut object, &stats, opts, cpus, !waiters.is_empty())?;
        }
        let fast = match &opts.fast_path {
            Some(fast_opts) => {
                let waiting = !waiters.is_empty();
                fast_path(&mut object, &stats, opts.policy, fast_opts, waiting)?
            }
            None => None,
        };
        // The next rauta process on these interfaces takes the links over.
        let server = match opts.ifaces.is_empty() {
            true => None,
            false => {
                let links: Arc<dyn handover::Links> = stats.clone();
                handover::Server::start(links)
                    .map_err(|e| tracing::warn!(error = %e, "eBPF: no XDP handover server"))
                    .ok()
            }
        };
        Ok(Xdp {
            object: Some(object),
            stats,
            waiters,
            fast,
            server,
        })
    }

    /// The fast path's table writer, for the control thread (once).
    pub fn take_fast_path(&mut self) -> Option<fast::FastPath> {
        self.fast.take()
    }

    /// What the admin thread reads.
    pub fn stats(&self) -> Arc<XdpStats> {
        self.stats.clone()
    }

    /// Detaches every XDP link and unloads the programs (the reuseport
    /// program goes with the last listener of its group).
    pub fn stop(mut self) {
        self.server = None;
        self.waiters.clear();
        if let Some(object) = self.object.take() {
            drop(object);
            self.stats.detach_all();
            tracing::info!("eBPF programs detached and unloaded");
        }
    }
}

/// `select_by_cpu`: each listener in the slot of its shard's CPU.
fn steer(
    object: &mut Object,
    stats: &XdpStats,
    policy: XdpPolicy,
    cpus: &[usize],
    listeners: &[socket2::Socket],
) -> anyhow::Result<()> {
    let what = "connection steering (select_by_cpu)";
    let mut seen = std::collections::HashSet::new();
    if let Some(cpu) = cpus.iter().find(|c| !seen.insert(**c)) {
        // Two listeners cannot share a slot, and a slot with one of them
        // would starve the other: leave the choice to the kernel's hash.
        tracing::warn!("eBPF off for {what}: several shards share CPU {cpu}; the kernel's hash spreads connections");
        return Ok(());
    }
    let Some(first) = listeners.first() else {
        return Ok(());
    };
    let program = match object.load_steering() {
        Ok(p) => p,
        Err(e) => {
            stats.record(abi::PROG_SELECT_BY_CPU, "reuseport", false);
            return degrade(policy, what, &e);
        }
    };
    for (cpu, listener) in cpus.iter().zip(listeners) {
        if let Err(e) = object.register_listener(*cpu as u32, listener) {
            stats.record(program.name(), "reuseport", false);
            return degrade(policy, what, &e);
        }
    }
    if let Err(e) = object.attach_steering(program, first) {
        stats.record(program.name(), "reuseport", false);
        return degrade(policy, what, &e);
    }
    stats.record(program.name(), "reuseport", true);
    tracing::info!(
        program = program.name(),
        cpus = ?cpus,
        "eBPF: connection steering on: a new connection goes to the shard of the CPU that processed its SYN"
    );
    Ok(())
}

/// The fast path's tables, when the filter runs on some interface (the
/// fast path lives in `xdp_ingress`).
fn fast_path(
    object: &mut Object,
    stats: &XdpStats,
    policy: XdpPolicy,
    opts: &fast::FastOptions,
    waiting: bool,
) -> anyhow::Result<Option<fast::FastPath>> {
    let what = "the XDP fast path (--xdp-fast-path)";
    let attached = stats
        .attachments
        .lock()
        .map(|a| {
            a.iter()
                .any(|a| a.program == abi::PROG_XDP_INGRESS && a.attached)
        })
        .unwrap_or(false);
    if !attached && !waiting {
        let why = std::io::Error::other("xdp_ingress runs on no interface (--xdp-iface)");
        degrade(policy, what, &why)?;
        return Ok(None);
    }
    match fast::FastPath::take(object, opts.clone()) {
        Ok(fast) => {
            if let Ok(mut f) = stats.fast.lock() {
                *f = Some(fast.reader());
            }
            tracing::info!(
                snat_ports = ?opts.snat_ports,
                "eBPF: XDP fast path on for the TCP services marked rauta.io/xdp-fast-path"
            );
            Ok(Some(fast))
        }
        Err(e) => {
            degrade(policy, what, &e)?;
            Ok(None)
        }
    }
}

/// Attaches `xdp_ingress` to `iface` from a [`handover::Waiter`] as soon
/// as whoever holds it lets go.
fn wait_for(
    object: &mut Object,
    stats: &Arc<XdpStats>,
    iface: &str,
    why: &(dyn Error + 'static),
) -> anyhow::Result<handover::Waiter> {
    let ifindex = nix::net::if_::if_nametoindex(iface)?;
    let prog = object
        .xdp_fd()
        .map_err(|e| anyhow::anyhow!("xdp_ingress: {e}"))?;
    tracing::warn!(
        iface = %iface,
        "eBPF: the XDP filter waits for {iface}: {}; it attaches the moment the holder lets go (tried every 10 ms), and until then {iface} is filtered by that program or not at all",
        degrade::why(why)
    );
    let (stats, name) = (stats.clone(), iface.to_string());
    let held = stats.clone();
    let waiter = handover::Waiter::start(iface.to_string(), ifindex, prog, move |link, waited| {
        held.hold(&name, link);
        stats.set_attached(abi::PROG_XDP_INGRESS, &name, true);
        tracing::info!(
            iface = %name,
            waited_ms = waited.as_millis() as u64,
            "eBPF: XDP filter attached after the previous holder let go"
        );
    })?;
    Ok(waiter)
}

/// How `xdp_ingress` came to run on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attached {
    /// A new link: the interface had no XDP program.
    New,
    /// Another rauta process handed its link over; it now runs our program
    /// instead of program `replaced`.
    TookOver { replaced: Option<u32> },
}

/// Attaches `xdp_ingress` to `iface` by a bpf_link whose descriptor this
/// process keeps (to hand it over in turn), or takes the link over from the
/// rauta process holding the interface ([`handover`]).
fn attach(
    object: &mut Object,
    stats: &XdpStats,
    iface: &str,
) -> Result<Attached, Box<dyn Error + Send + Sync>> {
    let ifindex = nix::net::if_::if_nametoindex(iface).map_err(|_| {
        aya::programs::ProgramError::UnknownInterface {
            name: iface.to_string(),
        }
    })?;
    let prog = object.xdp_fd()?;
    match handover::link_create(ifindex, prog.as_fd()) {
        Ok(link) => {
            stats.hold(iface, link);
            return Ok(Attached::New);
        }
        // No XDP links (kernels before 5.9): aya attaches by netlink, and
        // this process cannot hand the interface over.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            object.attach_xdp(iface)?;
            return Ok(Attached::New);
        }
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
        Err(e) => {
            return Err(Box::new(aya::programs::ProgramError::SyscallError(
                aya::sys::SyscallError {
                    call: "bpf_link_create",
                    io_error: e,
                },
            )))
        }
    }
    let holder = match handover::holder(ifindex) {
        Ok(handover::Holder::Program(id)) => Some(id),
        _ => None,
    };
    match handover::request(iface, |link| handover::take_link(link, prog.as_fd())) {
        Ok(Some(link)) => {
            stats.hold(iface, link);
            Ok(Attached::TookOver { replaced: holder })
        }
        Ok(None) => Err(Box::new(handover::identify(holder))),
        Err(e) => {
            tracing::warn!(iface, error = %e, "eBPF: asking the XDP filter's holder to hand it over failed");
            Err(Box::new(handover::identify(holder)))
        }
    }
}

/// `xdp_ingress` on every interface of `--xdp-iface`.
fn filter(
    object: &mut Object,
    stats: &Arc<XdpStats>,
    opts: &XdpOptions,
    waiters: &mut Vec<handover::Waiter>,
) -> anyhow::Result<()> {
    let what = "the XDP filter (xdp_ingress)";
    let prepared = object
        .write_config(opts.config())
        .and_then(|_| object.write_deny_list(&opts.deny));
    if let Err(e) = prepared {
        for iface in &opts.ifaces {
            stats.record(abi::PROG_XDP_INGRESS, iface, false);
        }
        return degrade(opts.policy, what, &e);
    }
    if let Err(e) = object.load_xdp() {
        for iface in &opts.ifaces {
            stats.record(abi::PROG_XDP_INGRESS, iface, false);
        }
        return degrade(opts.policy, what, &e);
    }
    for iface in &opts.ifaces {
        match attach(object, stats, iface) {
            Ok(how) => {
                stats.record(abi::PROG_XDP_INGRESS, iface, true);
                tracing::info!(
                    iface = %iface,
                    deny = opts.deny.len(),
                    syn_rate = opts.syn_rate,
                    syn_burst = opts.syn_burst,
                    "eBPF: XDP filter attached"
                );
                if let Attached::TookOver { replaced } = how {
                    let replaced =
                        replaced.map_or("its program".into(), |id| format!("its program {id}"));
                    tracing::info!(
                        iface = %iface,
                        "eBPF: took the XDP filter over from another rauta process in one step ({replaced} replaced in the same link; the interface was never without a filter)"
                    );
                }
            }
            Err(e) => {
                stats.record(abi::PROG_XDP_INGRESS, iface, false);
                let waitable = e
                    .downcast_ref::<handover::TakeoverError>()
                    .is_some_and(handover::TakeoverError::worth_waiting);
                if waitable {
                    // Even under `required`: in a rolling update the old pod
                    // only stops once this one is ready.
                    waiters.push(wait_for(object, stats, iface, &*e)?);
                } else {
                    degrade(opts.policy, &format!("{what} on {iface}"), &*e)?;
                }
            }
        }
    }
    Ok(())
}

/// `--xdp-steer cpumap`: `xdp_ingress` redirects each flow to the CPU of
/// the shard its 4-tuple hashes to. Needs the filter on an interface (or
/// `waiting` to take one over) and `select_by_cpu` (which then picks that
/// CPU's listener for the SYN).
fn steer_flows(
    object: &mut Object,
    stats: &XdpStats,
    opts: &XdpOptions,
    cpus: &[usize],
    waiting: bool,
) -> anyhow::Result<()> {
    let what = "flow steering (--xdp-steer cpumap)";
    stats.record_steering(0);
    let figures = stats.figures();
    let attached = |program: &str| {
        figures
            .attachments
            .iter()
            .any(|a| a.attached && a.program == program)
    };
    let missing = if opts.ifaces.is_empty() {
        Some("it needs --xdp-iface")
    } else if !attached(abi::PROG_XDP_INGRESS) && !waiting {
        Some("the XDP filter is attached nowhere")
    } else if !attached(abi::PROG_SELECT_BY_CPU) && !attached(abi::PROG_SELECT_LEGACY) {
        Some("connection steering (select_by_cpu) is off, so the CPU would not pick the shard")
    } else {
        None
    };
    if let Some(why) = missing {
        if opts.policy == XdpPolicy::Required {
            anyhow::bail!("--xdp required, but {what} cannot run: {why}");
        }
        tracing::warn!("eBPF off for {what}: {why}; serving without it");
        return Ok(());
    }
    let table: Vec<u32> = cpus.iter().map(|c| *c as u32).collect();
    let cfg = opts.config().with_steering(0, &opts.steer_ports);
    if let Err(e) = object.write_steering(cfg, &table, STEER_QUEUE_SIZE) {
        // The configuration may not have flipped: write it again without
        // steering, so no half-written table is live.
        let _ = object.write_config(opts.config());
        return degrade(opts.policy, what, &e);
    }
    stats.record_steering(table.len());
    tracing::info!(
        cpus = ?cpus,
        ports = ?opts.steer_ports,
        queue = STEER_QUEUE_SIZE,
        "eBPF: flow steering on: xdp_ingress redirects each flow (4-tuple hash) to its shard's CPU (CPUMAP)"
    );
    Ok(())
}
