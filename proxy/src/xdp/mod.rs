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
pub mod object;

pub use cidr::Cidr;
pub use object::{CounterReader, Counters, Object, OpenError, SteeringProgram};

use rauta_shared::ebpf::{self as abi, XdpConfig};
use std::error::Error;
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
}

/// The eBPF state the admin thread reads.
#[derive(Debug, Default)]
pub struct XdpStats {
    counters: Option<Arc<CounterReader>>,
    attachments: Mutex<Vec<Attachment>>,
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

    fn detach_all(&self) {
        if let Ok(mut a) = self.attachments.lock() {
            for att in a.iter_mut() {
                att.attached = false;
            }
        }
    }
}

/// The eBPF programs of a running `rauta serve`; [`Xdp::stop`] detaches.
#[derive(Debug)]
pub struct Xdp {
    object: Option<Object>,
    stats: Arc<XdpStats>,
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
            tracing::info!("eBPF off (--xdp off): no connection steering, no XDP filter");
            return Ok(Xdp::off());
        }
        if !opts.deny.is_empty() && opts.ifaces.is_empty() {
            tracing::warn!("eBPF: --xdp-deny has no effect without --xdp-iface");
        }
        let mut object = match Object::open() {
            Ok(object) => object,
            Err(e) => {
                degrade(opts.policy, "connection steering and the XDP filter", &e)?;
                return Ok(Xdp::off());
            }
        };
        let stats = Arc::new(XdpStats {
            counters: Some(object.counter_reader()),
            attachments: Mutex::new(Vec::new()),
        });
        steer(&mut object, &stats, opts.policy, cpus, listeners)?;
        if !opts.ifaces.is_empty() {
            filter(&mut object, &stats, opts)?;
        }
        Ok(Xdp {
            object: Some(object),
            stats,
        })
    }

    /// What the admin thread reads.
    pub fn stats(&self) -> Arc<XdpStats> {
        self.stats.clone()
    }

    /// Detaches every XDP link and unloads the programs (the reuseport
    /// program goes with the last listener of its group).
    pub fn stop(mut self) {
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

/// `xdp_ingress` on every interface of `--xdp-iface`.
fn filter(object: &mut Object, stats: &XdpStats, opts: &XdpOptions) -> anyhow::Result<()> {
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
        match object.attach_xdp(iface) {
            Ok(()) => {
                stats.record(abi::PROG_XDP_INGRESS, iface, true);
                tracing::info!(
                    iface = %iface,
                    deny = opts.deny.len(),
                    syn_rate = opts.syn_rate,
                    syn_burst = opts.syn_burst,
                    "eBPF: XDP filter attached"
                );
            }
            Err(e) => {
                stats.record(abi::PROG_XDP_INGRESS, iface, false);
                degrade(opts.policy, &format!("{what} on {iface}"), &e)?;
            }
        }
    }
    Ok(())
}
