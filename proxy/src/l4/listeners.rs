//! The control thread's side of the L4 listeners: for every service of a
//! new table that has no socket yet, one SO_REUSEPORT socket per shard on
//! `--listen`'s address, all bound or none; each socket asks the kernel
//! (SO_INCOMING_CPU) to hand it the connections and datagrams that arrive
//! on its shard's CPU, as the HTTP listeners' eBPF steering does.
//!
//! A port that cannot be bound (taken by another process, or one of
//! rauta's own HTTP or admin ports) is reported and left out; the table
//! and every other service are served as usual.

use super::{L4Service, ListenKey};
use rauta_shared::config::L4Protocol;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, SocketAddr};

/// Backlog of each TCP service listener.
const BACKLOG: i32 = 1024;

/// Which L4 sockets exist, and which could not be made.
#[derive(Debug)]
pub struct L4Listeners {
    ip: IpAddr,
    /// The shards' CPUs, in shard order.
    cpus: Vec<usize>,
    /// TCP ports rauta serves HTTP or admin on: never an L4 service's.
    reserved: Vec<(u16, &'static str)>,
    open: BTreeSet<ListenKey>,
    failed: BTreeMap<ListenKey, String>,
}

/// Sockets for one shard: (service, socket).
pub type ShardSockets = Vec<(ListenKey, Socket)>;

impl L4Listeners {
    /// Listeners on `ip` for shards pinned to `cpus`; `reserved` ports are
    /// refused for TCP services.
    pub fn new(ip: IpAddr, cpus: Vec<usize>, reserved: Vec<(u16, &'static str)>) -> L4Listeners {
        L4Listeners {
            ip,
            cpus,
            reserved,
            open: BTreeSet::new(),
            failed: BTreeMap::new(),
        }
    }

    /// Makes the sockets of `services` that are not open yet; returns them
    /// per shard (to be sent before the table). Services no longer listed
    /// are forgotten here: each shard closes its socket when the table
    /// without them arrives.
    pub fn update(&mut self, services: &[L4Service]) -> Vec<ShardSockets> {
        let wanted: BTreeSet<ListenKey> = services.iter().map(|s| s.key).collect();
        self.open.retain(|k| wanted.contains(k));
        self.failed.retain(|k, _| wanted.contains(k));
        let mut per_shard: Vec<ShardSockets> = self.cpus.iter().map(|_| Vec::new()).collect();
        for service in services {
            if self.open.contains(&service.key) {
                continue;
            }
            match self.bind(service.key) {
                Ok(sockets) => {
                    self.failed.remove(&service.key);
                    self.open.insert(service.key);
                    tracing::info!(service = %service.label, source = %service.source, "L4 service listening");
                    for (shard, socket) in per_shard.iter_mut().zip(sockets) {
                        shard.push((service.key, socket));
                    }
                }
                Err(why) => {
                    if self.failed.get(&service.key) != Some(&why) {
                        tracing::error!(service = %service.label, source = %service.source, error = %why, "L4 service cannot listen; it is left out, everything else is served");
                    }
                    self.failed.insert(service.key, why);
                }
            }
        }
        per_shard
    }

    /// Services that could not listen, and why.
    pub fn failures(&self) -> Vec<(ListenKey, String)> {
        self.failed
            .iter()
            .map(|(k, why)| (*k, why.clone()))
            .collect()
    }

    /// One socket per shard for `key`, or why not.
    fn bind(&self, key: ListenKey) -> Result<Vec<Socket>, String> {
        let (protocol, port) = key;
        if protocol == L4Protocol::Tcp {
            if let Some((_, what)) = self.reserved.iter().find(|(p, _)| *p == port) {
                return Err(format!("port {port} is rauta's own {what} port"));
            }
        }
        let addr = SocketAddr::new(self.ip, port);
        // A port another process holds fails here with EADDRINUSE, unless
        // that process set SO_REUSEPORT as the same user: then the kernel
        // would share connections with it (as with a second rauta).
        let sockets: io::Result<Vec<Socket>> = self
            .cpus
            .iter()
            .map(|&cpu| bind_one(protocol, addr, cpu))
            .collect();
        sockets.map_err(|e| format!("binding {addr} ({}): {e}", protocol.as_str()))
    }
}

/// A bound (and, for TCP, listening) non-blocking SO_REUSEPORT socket that
/// prefers connections handled on `cpu`.
fn bind_one(protocol: L4Protocol, addr: SocketAddr, cpu: usize) -> io::Result<Socket> {
    let (ty, proto) = match protocol {
        L4Protocol::Tcp => (Type::STREAM, Protocol::TCP),
        L4Protocol::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let socket = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    // Best effort: an older kernel without the preference spreads by hash.
    let _ = socket.set_cpu_affinity(cpu);
    socket.bind(&addr.into())?;
    if protocol == L4Protocol::Tcp {
        socket.set_tcp_nodelay(true)?;
        socket.listen(BACKLOG)?;
    }
    Ok(socket)
}
