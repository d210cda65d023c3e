//! `limit-rps`, `limit-rpm` and `limit-connections`: per client IP, per
//! Ingress zone, on the node-wide [`limit_cells`](super::limit_cells).
//! nginx's `limit_req burst=rate×multiplier nodelay` is a leaky bucket; the
//! same budget as a GCRA: a fresh client gets 1 + burst requests at once,
//! then one per interval.

use super::access::NetSet;
use super::limit_cells::{self, Cells, InFlight, Rate};
use rauta_shared::policy::RateLimit;

/// The kinds of key a zone has, so its limits keep separate cells.
const KIND_RPS: u64 = 1;
const KIND_RPM: u64 = 2;
const KIND_CONN: u64 = 3;

/// A compiled [`RateLimit`].
#[derive(Debug)]
pub struct Limit {
    cells: &'static Cells,
    zone: u64,
    rps: Option<Rate>,
    rpm: Option<Rate>,
    connections: Option<u32>,
    whitelist: NetSet,
    /// The answer's status.
    pub status: u16,
}

impl Limit {
    /// Compiles the limits (and makes the node's cells on first use).
    pub fn compile(limit: &RateLimit) -> Limit {
        let mult = u64::from(limit.burst_multiplier);
        Limit {
            cells: limit_cells::cells(),
            zone: limit_cells::zone_id(&limit.zone),
            rps: limit
                .rps
                .map(|n| Rate::new(n, 1_000_000, u64::from(n) * mult)),
            rpm: limit
                .rpm
                .map(|n| Rate::new(n, 60_000_000, u64::from(n) * mult)),
            connections: limit.connections,
            whitelist: NetSet::new(&limit.whitelist),
            status: limit.status,
        }
    }

    /// Admits a request from the client with this [`ip_key`](super::access::ip_key):
    /// `Ok` with the in-flight slot it holds (when connections are limited),
    /// `Err(status)` when a limit rejects it. A rate rejected after another
    /// rate admitted still counts against that one, as two nginx zones do.
    pub fn admit(&self, ip: u128) -> Result<Option<InFlight>, u16> {
        if self.whitelist.contains(ip) {
            return Ok(None);
        }
        if self.rps.is_some() || self.rpm.is_some() {
            let now = self.cells.now_us();
            for (kind, rate) in [(KIND_RPS, self.rps), (KIND_RPM, self.rpm)] {
                if let Some(rate) = rate {
                    if !self
                        .cells
                        .take(self.cells.key(self.zone, kind, ip), rate, now)
                    {
                        return Err(self.status);
                    }
                }
            }
        }
        match self.connections {
            None => Ok(None),
            Some(n) => self
                .cells
                .enter(self.cells.key(self.zone, KIND_CONN, ip), n)
                .map(Some)
                .ok_or(self.status),
        }
    }
}
