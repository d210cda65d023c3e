//! Counters of the TCP and UDP services, per shard and service, kept since
//! start (summed over shards when scraped). Touched once per connection or
//! transfer, never per byte.

use rustc_hash::FxHashMap;
use std::cell::RefCell;

/// One service's counters on one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct L4Counters {
    /// Connections (TCP) or flows (UDP) accepted.
    pub connections: u64,
    /// Of those, open now.
    pub active: u64,
    /// Bytes from clients to the backend.
    pub bytes_in: u64,
    /// Bytes from the backend to clients.
    pub bytes_out: u64,
    /// Connects to an endpoint that failed (each attempt).
    pub connect_failures: u64,
    /// Bytes user space read and wrote (the rest the kernel spliced).
    pub copied: u64,
    /// Connections closed unserved: no endpoint, or every connect failed.
    pub unserved: u64,
    /// Connections closed for a missing or malformed PROXY header.
    pub proxy_header_errors: u64,
    /// Connections whose bytes were joined in the kernel.
    pub spliced: u64,
    /// Flows closed for idling past `--l4-idle-timeout`.
    pub idle_timeouts: u64,
    /// Flows closed because their service left the configuration.
    pub closed_by_removal: u64,
    /// UDP datagrams dropped (flow table full, send failed).
    pub dropped: u64,
    /// Time connections were open, in microseconds (closed ones).
    pub duration_us: u64,
}

/// This shard's L4 counters by service label (`tcp/9000`), and the TLS
/// listeners' ClientHello verdicts while passthrough hosts exist.
#[derive(Debug, Default)]
pub struct L4Stats {
    services: RefCell<FxHashMap<Box<str>, L4Counters>>,
    hellos: RefCell<FxHashMap<&'static str, u64>>,
}

impl L4Stats {
    /// Updates the counters of `service`.
    pub fn with(&self, service: &str, update: impl FnOnce(&mut L4Counters)) {
        let mut services = self.services.borrow_mut();
        match services.get_mut(service) {
            Some(c) => update(c),
            None => {
                let mut c = L4Counters::default();
                update(&mut c);
                services.insert(service.into(), c);
            }
        }
    }

    /// Counts a ClientHello read for passthrough, by result.
    pub fn hello(&self, result: &'static str) {
        *self.hellos.borrow_mut().entry(result).or_default() += 1;
    }

    /// The ClientHello verdicts so far, sorted by result.
    pub fn hello_totals(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<_> = self.hellos.borrow().iter().map(|(k, v)| (*k, *v)).collect();
        out.sort();
        out
    }

    /// Every service's counters, sorted by label.
    pub fn totals(&self) -> Vec<(Box<str>, L4Counters)> {
        let mut out: Vec<_> = (self.services.borrow().iter())
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
