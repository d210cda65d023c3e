//! From the control thread to the shards: compile a configuration into an
//! immutable table, number it, and send it to every shard; track which
//! generation each shard has live (for /readyz).

use crate::router::{CompileError, RouteTable};
use crossbeam_channel::{Receiver, Sender};
use rauta_shared::config::RouteConfig;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A message to a shard.
#[derive(Debug)]
pub enum ShardMsg {
    /// Swap to this table (generation numbers only grow).
    Table(Arc<RouteTable>, u64),
    /// Stop accepting, finish in-flight requests, exit.
    Drain,
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

/// The control thread's end of the shard channels.
#[derive(Debug)]
pub struct Broadcaster {
    senders: Vec<Sender<ShardMsg>>,
    generation: u64,
}

impl Broadcaster {
    /// One channel per shard; the receivers go to the shards.
    pub fn new(shards: usize) -> (Broadcaster, Vec<Receiver<ShardMsg>>) {
        let (senders, receivers) = (0..shards).map(|_| crossbeam_channel::unbounded()).unzip();
        (
            Broadcaster {
                senders,
                generation: 0,
            },
            receivers,
        )
    }

    /// Compiles `config` and sends it to every shard; returns its generation.
    pub fn publish(&mut self, config: &RouteConfig) -> Result<u64, CompileError> {
        let table = Arc::new(RouteTable::compile(config)?);
        self.generation += 1;
        for s in &self.senders {
            // A shard that has exited no longer needs tables.
            let _ = s.send(ShardMsg::Table(table.clone(), self.generation));
        }
        Ok(self.generation)
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
    senders: Vec<Sender<ShardMsg>>,
}

impl Drainer {
    /// Sends the drain message to every shard.
    pub fn drain(&self) {
        for s in &self.senders {
            let _ = s.send(ShardMsg::Drain);
        }
    }
}
