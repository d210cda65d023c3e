//! Both ends of the channel from the control thread to the shards: compile
//! a configuration into an immutable table, number it, and send it to
//! every shard; track which generation each shard has live (for /readyz);
//! and the shard's receiving loop.

use crate::metrics::snapshot::ShardSnapshot;
use crate::router::{CompileError, RouteTable};
use crate::rt;
use crate::shard::Shard;
use crate::tls::{TlsSettings, TlsTable};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use rauta_shared::config::RouteConfig;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use std::time::{Duration, SystemTime};

/// A message to a shard.
#[derive(Debug)]
pub enum ShardMsg {
    /// Swap to this table and its certificates (generation numbers only grow).
    Table(Arc<RouteTable>, Option<Arc<TlsTable>>, u64),
    /// Stop accepting, finish in-flight requests, exit.
    Drain,
    /// Send statistics (deltas since the previous request) to the admin thread.
    Snapshot(Sender<ShardSnapshot>),
    /// Another shard ejected this endpoint until then (outlier ejection).
    Ejected(std::net::SocketAddr, Instant),
    /// Serve these L4 service sockets (sent before the table that has
    /// their services).
    Listen(crate::l4::listeners::ShardSockets),
}

/// The latest published table, for the admin thread (never read by shards).
#[derive(Debug, Clone)]
pub struct Published {
    /// Its generation: numbers only grow, one per published table.
    pub generation: u64,
    /// The compiled routes, shared read-only with every shard.
    pub table: Arc<RouteTable>,
    /// Its certificates (when TLS is served).
    pub tls: Option<Arc<TlsTable>>,
    /// When it was published.
    pub at: SystemTime,
    /// Hash of the configuration it was compiled from: equal on every
    /// node serving the same objects (ingress-nginx's `config_hash`).
    pub config_hash: u64,
    /// L4 services that could not listen, and why.
    pub l4_failures: Vec<(crate::l4::ListenKey, String)>,
    /// TCP ports whose new flows the XDP fast path carries.
    pub fast_ports: Vec<u16>,
}

/// What the admin thread can see of the control plane.
#[derive(Debug, Default)]
pub struct ControlStatus {
    latest: Mutex<Option<Published>>,
    compile_failures: AtomicU64,
    /// The latest configuration the proxy could not compile: when, and why.
    last_compile_failure: Mutex<Option<(SystemTime, String)>>,
}

impl ControlStatus {
    /// The latest published table.
    pub fn latest(&self) -> Option<Published> {
        self.latest.lock().ok().and_then(|p| p.clone())
    }

    /// Configurations the proxy could not compile.
    pub fn compile_failures(&self) -> u64 {
        self.compile_failures.load(Ordering::Relaxed)
    }

    /// When the latest configuration the proxy could not compile came,
    /// and why it failed.
    pub fn last_compile_failure(&self) -> Option<(SystemTime, String)> {
        self.last_compile_failure
            .lock()
            .ok()
            .and_then(|f| f.clone())
    }
}

/// Which table generation each shard serves (0: none yet).
#[derive(Debug)]
pub struct Readiness {
    live: Box<[AtomicU64]>,
}

impl Readiness {
    /// Tracking for `shards` shards.
    pub fn new(shards: usize) -> Readiness {
        Readiness {
            live: (0..shards).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Called by a shard once a generation is live on it.
    pub fn set(&self, shard: usize, generation: u64) {
        self.live[shard].store(generation, Ordering::Release);
    }

    /// The generation live on every shard (the oldest among them), or None
    /// until every shard has a table.
    pub fn ready_generation(&self) -> Option<u64> {
        let min = self.live.iter().map(|g| g.load(Ordering::Acquire)).min()?;
        (min > 0).then_some(min)
    }
}

/// One shard's channel as other threads hold it: a message is sent, then
/// the shard's doorbell rung, so an idle shard sleeps until there is one.
#[derive(Debug, Clone)]
struct ShardLink {
    tx: Sender<ShardMsg>,
    bell: rt::Bell,
}

impl ShardLink {
    /// Sends `msg`; false when the shard has exited.
    fn send(&self, msg: ShardMsg) -> bool {
        let sent = self.tx.send(msg).is_ok();
        if sent {
            self.bell.ring();
        }
        sent
    }
}

/// One shard's channel as the shard holds it.
#[derive(Debug)]
pub struct ShardInbox {
    rx: Receiver<ShardMsg>,
    doorbell: rt::DoorbellFd,
    /// Its way to the other shards.
    pub gossip: Gossip,
}

/// A shard's way to tell the other shards what it learned about an
/// endpoint (a message and a doorbell ring each, only when it happens).
#[derive(Debug, Clone, Default)]
pub struct Gossip {
    peers: Vec<ShardLink>,
}

impl Gossip {
    /// Tells the other shards that `addr` is ejected until `until`.
    pub fn ejected(&self, addr: std::net::SocketAddr, until: Instant) {
        for peer in &self.peers {
            peer.send(ShardMsg::Ejected(addr, until));
        }
    }
}

/// The control thread's end of the shard channels.
#[derive(Debug)]
pub struct Broadcaster {
    senders: Vec<ShardLink>,
    generation: u64,
    status: Arc<ControlStatus>,
    tls: Option<TlsSettings>,
    l4: Option<crate::l4::listeners::L4Listeners>,
    fast: Option<crate::xdp::fast::FastPath>,
    /// Said once that marked services run without the fast path.
    fast_path_warned: bool,
}

impl Broadcaster {
    /// One channel per shard; the receivers go to the shards. With `tls`,
    /// every table also gets its certificates compiled.
    pub fn new(
        shards: usize,
        tls: Option<TlsSettings>,
    ) -> std::io::Result<(Broadcaster, Vec<ShardInbox>)> {
        let mut senders = Vec::with_capacity(shards);
        let mut inboxes = Vec::with_capacity(shards);
        let mut ends = Vec::with_capacity(shards);
        for _ in 0..shards {
            let (tx, rx) = crossbeam_channel::unbounded();
            let (bell, doorbell) = rt::doorbell()?;
            senders.push(ShardLink { tx, bell });
            ends.push((rx, doorbell));
        }
        for (me, (rx, doorbell)) in ends.into_iter().enumerate() {
            let peers = (senders.iter().enumerate())
                .filter(|(id, _)| *id != me)
                .map(|(_, link)| link.clone())
                .collect();
            inboxes.push(ShardInbox {
                rx,
                doorbell,
                gossip: Gossip { peers },
            });
        }
        let status = Arc::new(ControlStatus::default());
        Ok((
            Broadcaster {
                senders,
                generation: 0,
                status,
                tls,
                l4: None,
                fast: None,
                fast_path_warned: false,
            },
            inboxes,
        ))
    }

    /// Compiles `config` (routes and certificates) and sends it to every
    /// shard; returns its generation.
    pub fn publish(&mut self, config: &RouteConfig) -> Result<u64, CompileError> {
        let compiled = RouteTable::compile(config).and_then(|table| {
            let tls = match &mut self.tls {
                Some(settings) => Some(Arc::new(
                    settings.compile(&config.tls).map_err(CompileError::Tls)?,
                )),
                None => None,
            };
            Ok((Arc::new(table), tls))
        });
        let (table, tls) = match compiled {
            Ok(compiled) => compiled,
            Err(e) => {
                self.status.compile_failures.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = self.status.last_compile_failure.lock() {
                    *last = Some((SystemTime::now(), e.to_string()));
                }
                return Err(e);
            }
        };
        self.generation += 1;
        if let Some(l4) = &mut self.l4 {
            let per_shard = l4.update(table.l4_services());
            for (s, sockets) in self.senders.iter().zip(per_shard) {
                if !sockets.is_empty() {
                    s.send(ShardMsg::Listen(sockets));
                }
            }
        }
        // The kernel's fast-path tables before the shards see the table.
        match &mut self.fast {
            Some(fast) => fast.update(config),
            None if !self.fast_path_warned && config.l4.iter().any(|s| s.xdp_fast_path) => {
                self.fast_path_warned = true;
                tracing::warn!("TCP services are marked rauta.io/xdp-fast-path, but the XDP fast path is off (it needs --xdp-fast-path and the XDP filter on --xdp-iface); they are relayed in user space");
            }
            None => {}
        }
        // The admin views get the table before any shard can report it
        // live: `/readyz` answers 200 only once every shard has it, and by
        // then `/routes` and `/status.json` already show it.
        let published = Published {
            generation: self.generation,
            table: table.clone(),
            tls: tls.clone(),
            at: SystemTime::now(),
            config_hash: config_hash(config),
            l4_failures: self.l4.as_ref().map(|l| l.failures()).unwrap_or_default(),
            fast_ports: self.fast.as_ref().map(|f| f.ports()).unwrap_or_default(),
        };
        match self.status.latest.lock() {
            Ok(mut latest) => *latest = Some(published),
            Err(poisoned) => *poisoned.into_inner() = Some(published),
        }
        for s in &self.senders {
            // A shard that has exited no longer needs tables.
            s.send(ShardMsg::Table(table.clone(), tls.clone(), self.generation));
        }
        Ok(self.generation)
    }

    /// Serves the L4 services of every table from now on.
    pub fn serve_l4(&mut self, listeners: crate::l4::listeners::L4Listeners) {
        self.l4 = Some(listeners);
    }

    /// Writes the XDP fast path's tables for every table from now on.
    pub fn serve_fast_path(&mut self, fast: crate::xdp::fast::FastPath) {
        self.fast = Some(fast);
    }

    /// What the admin thread reads.
    pub fn status(&self) -> Arc<ControlStatus> {
        self.status.clone()
    }

    /// A handle that asks shards for statistics.
    pub fn snapshotter(&self) -> Snapshotter {
        Snapshotter {
            senders: self.senders.clone(),
        }
    }

    /// A handle that can start the drain from another thread.
    pub fn drainer(&self) -> Drainer {
        Drainer {
            senders: self.senders.clone(),
        }
    }
}

/// Tells every shard to drain.
#[derive(Debug, Clone)]
pub struct Drainer {
    senders: Vec<ShardLink>,
}

impl Drainer {
    /// Sends the drain message to every shard.
    pub fn drain(&self) {
        for s in &self.senders {
            s.send(ShardMsg::Drain);
        }
    }
}

/// Asks every shard for a statistics snapshot.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    senders: Vec<ShardLink>,
}

impl Snapshotter {
    /// Snapshots of every shard that answers within `timeout`.
    pub fn collect(&self, timeout: Duration) -> Vec<ShardSnapshot> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let asked = self
            .senders
            .iter()
            .filter(|s| s.send(ShardMsg::Snapshot(tx.clone())))
            .count();
        drop(tx);
        let deadline = std::time::Instant::now() + timeout;
        let mut snapshots = Vec::with_capacity(asked);
        while snapshots.len() < asked {
            match rx.recv_deadline(deadline) {
                Ok(s) => snapshots.push(s),
                Err(_) => break,
            }
        }
        snapshots
    }
}

/// How often an idle shard runs its chores (pool eviction) when nothing
/// rings it: messages ring its doorbell, so this is not how fast a table
/// swap arrives.
const CHORES: Duration = Duration::from_secs(1);
/// How soon buffered access-log lines are flushed.
const LOG_FLUSH: Duration = Duration::from_millis(10);

/// The shard's end of the channel: swaps tables, answers snapshots, starts
/// the drain, and runs the shard's periodic chores ([`Shard::tick`]). It
/// sleeps on the shard's doorbell, so an idle shard wakes about once a
/// second (for the chores), not every few milliseconds.
pub async fn receive(shard: Rc<Shard>, inbox: ShardInbox, readiness: Arc<Readiness>) {
    let doorbell = match inbox.doorbell.register() {
        Ok(doorbell) => Some(doorbell),
        Err(e) => {
            // Without it the shard still learns of messages at each chore.
            tracing::error!(shard = shard.id, error = %e, "shard doorbell unavailable; control messages wait for the periodic check");
            None
        }
    };
    let control = inbox.rx;
    let mut last_eviction = Instant::now();
    loop {
        loop {
            match control.try_recv() {
                Ok(ShardMsg::Table(routes, tls, generation)) => {
                    shard.swap(routes, tls, generation);
                    readiness.set(shard.id, generation);
                    tracing::debug!(shard = shard.id, generation, "route table swapped");
                }
                Ok(ShardMsg::Ejected(addr, until)) => shard.adopt_ejection(addr, until),
                Ok(ShardMsg::Listen(sockets)) => {
                    for (key, socket) in sockets {
                        crate::l4::tcp::Ports::listen(&shard, key, socket);
                    }
                }
                Ok(ShardMsg::Snapshot(reply)) => {
                    // The admin thread may have given up waiting; nothing to do then.
                    let _ = reply.send(shard.snapshot());
                }
                // Keep answering snapshots and flushing logs while draining.
                Ok(ShardMsg::Drain) | Err(TryRecvError::Disconnected)
                    if !shard.drain.is_draining() =>
                {
                    shard.drain.start();
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) | Ok(ShardMsg::Drain) => {
                    break
                }
            }
        }
        shard.tick(&mut last_eviction);
        let wait = if shard.has_buffered_log() || doorbell.is_none() {
            LOG_FLUSH
        } else {
            CHORES
        };
        match &doorbell {
            Some(doorbell) => {
                let rung = async {
                    if let Err(e) = doorbell.rung().await {
                        tracing::debug!(shard = shard.id, error = %e, "doorbell read failed");
                        rt::sleep(LOG_FLUSH).await;
                    }
                };
                futures_lite::future::or(rung, rt::sleep(wait)).await;
            }
            None => rt::sleep(wait).await,
        }
    }
}

/// A hash of `config` that fits a float exactly (53 bits), as Prometheus
/// stores it.
fn config_hash(config: &RouteConfig) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    // The model has no maps, so its JSON is the same for the same objects.
    h.write(&serde_json::to_vec(config).unwrap_or_default());
    h.finish() >> 11
}
