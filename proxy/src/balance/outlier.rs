//! Passive health (outlier ejection, as Envoy's): an endpoint that fails
//! several requests in a row is left out of this shard's picks for a
//! while, longer each time it is ejected again; when the time is up, real
//! traffic probes it, and one more failure ejects it again. Never more
//! than a share of a backend's endpoints is out: when they all fail, rauta
//! keeps trying them rather than answering 503 for a slow backend.
//!
//! Each shard decides from what its own requests saw, then tells the other
//! shards (a message per ejection, nothing per request), which leave the
//! endpoint out too: a shard that sees few of the failures (few
//! connections, or a pod that hangs rather than refuses, with minutes of
//! timeouts before five in a row) does not keep sending there. State is
//! kept by address, so a table swap (an EndpointSlice change) keeps it. A
//! shard with nothing failing pays one comparison per request.

use super::Backend;
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Longest ejection, however often an endpoint was ejected.
const MAX_EJECTION: Duration = Duration::from_secs(300);

/// When endpoints are ejected (`--outlier-*` flags).
#[derive(Debug, Clone, Copy)]
pub struct OutlierPolicy {
    /// Failures in a row that eject an endpoint; 0 turns ejection off.
    pub consecutive: u32,
    /// The first ejection's length; the n-th lasts n times as long.
    pub base: Duration,
    /// Most of a backend's endpoints (percent) that may be out at once;
    /// one may always be, in a backend of two or more.
    pub max_percent: u8,
}

/// One endpoint that failed lately.
#[derive(Debug)]
struct Health {
    /// Failures since its last success.
    failures: u32,
    /// Times it was ejected since its last success.
    ejections: u32,
    /// Out of the picks until then.
    until: Option<Instant>,
}

/// A shard's view of its endpoints' health.
#[derive(Debug)]
pub struct Outliers {
    policy: OutlierPolicy,
    failing: RefCell<FxHashMap<SocketAddr, Health>>,
    /// Endpoints tracked (`failing.len()`): zero is the common case, and
    /// the only thing a request then looks at.
    tracked: Cell<usize>,
    /// Endpoints ejected now.
    ejected: Cell<usize>,
    ejections_total: Cell<u64>,
    /// Where the search for a replacement of an ejected pick starts, so
    /// its traffic spreads over the others rather than going to the next.
    turn: Cell<usize>,
}

/// An ejection this shard decided: the endpoint and the end of its time out.
pub type Ejection = (SocketAddr, Instant);

impl Outliers {
    /// Health tracking under `policy`.
    pub fn new(policy: OutlierPolicy) -> Outliers {
        Outliers {
            policy,
            failing: RefCell::default(),
            tracked: Cell::new(0),
            ejected: Cell::new(0),
            ejections_total: Cell::new(0),
            turn: Cell::new(0),
        }
    }

    /// `picked`, or the next endpoint of `backend` (in order) that is not
    /// ejected; `picked` when all are.
    #[inline]
    pub fn steer(&self, backend: &Backend, picked: usize) -> usize {
        if self.ejected.get() == 0 {
            return picked;
        }
        self.steer_slow(backend, picked)
    }

    fn steer_slow(&self, backend: &Backend, picked: usize) -> usize {
        let now = Instant::now();
        let n = backend.endpoints.len();
        if !self.is_ejected(backend.endpoints[picked].addr, now) {
            return picked;
        }
        let turn = self.turn.get();
        self.turn.set(turn.wrapping_add(1));
        // The others in turn: picked + 1 .. picked + n - 1, rotating.
        let first = 1 + turn % (n - 1).max(1);
        (0..n)
            .map(|i| (picked + first + i) % n)
            .find(|&i| !self.is_ejected(backend.endpoints[i].addr, now))
            .unwrap_or(picked)
    }

    /// Whether `addr` is out of the picks now (its time up: back in, on
    /// probation).
    fn is_ejected(&self, addr: SocketAddr, now: Instant) -> bool {
        let mut failing = self.failing.borrow_mut();
        let Some(h) = failing.get_mut(&addr) else {
            return false;
        };
        match h.until {
            Some(until) if now < until => true,
            Some(_) => {
                h.until = None;
                // One more failure ejects it again.
                h.failures = self.policy.consecutive.saturating_sub(1);
                self.ejected.set(self.ejected.get().saturating_sub(1));
                false
            }
            None => false,
        }
    }

    /// An endpoint answered; a gateway failure (502, 503, 504) from it is a
    /// failure, like a failed connect, a reset or a timeout (Envoy's
    /// consecutive gateway failures). An application's 500 is not: one
    /// broken route must not take a healthy pod out of every route.
    #[inline]
    pub fn answered(&self, backend: &Backend, endpoint: usize, status: u16) -> Option<Ejection> {
        if (502..=504).contains(&status) {
            return self.failed(backend, endpoint);
        }
        if self.tracked.get() > 0 {
            self.recovered(backend.endpoints[endpoint].addr);
        }
        None
    }

    fn recovered(&self, addr: SocketAddr) {
        let mut failing = self.failing.borrow_mut();
        if let Some(h) = failing.remove(&addr) {
            if h.until.is_some() {
                self.ejected.set(self.ejected.get().saturating_sub(1));
            }
            self.tracked.set(failing.len());
        }
    }

    /// A request to `endpoint` failed; it is ejected once it failed
    /// `consecutive` times in a row, if the backend's share allows. Returns
    /// the ejection, for the other shards.
    pub fn failed(&self, backend: &Backend, endpoint: usize) -> Option<Ejection> {
        if self.policy.consecutive == 0 {
            return None;
        }
        let addr = backend.endpoints[endpoint].addr;
        let now = Instant::now();
        // Ends an ejection whose time is up (the endpoint is on probation).
        self.is_ejected(addr, now);
        let eject = {
            let mut failing = self.failing.borrow_mut();
            let h = failing.entry(addr).or_insert(Health {
                failures: 0,
                ejections: 0,
                until: None,
            });
            h.failures += 1;
            let eject = h.until.is_none() && h.failures >= self.policy.consecutive;
            self.tracked.set(failing.len());
            eject
        };
        if !eject || !self.may_eject(backend, now) {
            return None;
        }
        let mut failing = self.failing.borrow_mut();
        let h = failing.get_mut(&addr)?;
        h.ejections += 1;
        h.failures = 0;
        let time = self
            .policy
            .base
            .saturating_mul(h.ejections)
            .min(MAX_EJECTION);
        let until = now + time;
        h.until = Some(until);
        self.ejected.set(self.ejected.get() + 1);
        self.ejections_total.set(self.ejections_total.get() + 1);
        tracing::info!(endpoint = %addr, backend = %backend.name, ejections = h.ejections, seconds = time.as_secs(), "endpoint ejected after failures in a row");
        Some((addr, until))
    }

    /// Another shard ejected `addr` until `until`: it is left out here
    /// too, as far as the share of each backend it serves (`backends`)
    /// allows. Not counted as this shard's ejection.
    pub fn adopt<'b>(
        &self,
        backends: impl IntoIterator<Item = &'b Backend> + Clone,
        addr: SocketAddr,
        until: Instant,
    ) {
        if self.policy.consecutive == 0 {
            return;
        }
        let now = Instant::now();
        if until <= now || self.is_ejected(addr, now) {
            return;
        }
        if !backends.into_iter().all(|b| self.may_eject(b, now)) {
            return;
        }
        let mut failing = self.failing.borrow_mut();
        let h = failing.entry(addr).or_insert(Health {
            failures: 0,
            ejections: 0,
            until: None,
        });
        h.failures = 0;
        h.ejections = h.ejections.max(1);
        h.until = Some(until);
        self.tracked.set(failing.len());
        self.ejected.set(self.ejected.get() + 1);
        tracing::debug!(endpoint = %addr, "endpoint ejected by another shard");
    }

    /// Whether one more of `backend`'s endpoints may be ejected.
    fn may_eject(&self, backend: &Backend, now: Instant) -> bool {
        let n = backend.endpoints.len();
        if n < 2 {
            return false;
        }
        let out = backend
            .endpoints
            .iter()
            .filter(|e| self.is_ejected(e.addr, now))
            .count();
        let allowed = (n * usize::from(self.policy.max_percent) / 100).max(1);
        out < allowed
    }

    /// Ejections so far.
    pub fn ejections_total(&self) -> u64 {
        self.ejections_total.get()
    }

    /// The endpoints out of the picks now.
    pub fn ejected_now(&self) -> Vec<SocketAddr> {
        let now = Instant::now();
        self.failing
            .borrow()
            .iter()
            .filter(|(_, h)| h.until.is_some_and(|u| now < u))
            .map(|(a, _)| *a)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rauta_shared::config::{BackendConfig, EndpointConfig, LbPolicy, ServicePort};

    fn backend(n: u8) -> Backend {
        Backend::compile(&BackendConfig {
            name: "ns/web:http".into(),
            namespace: "ns".into(),
            service: "web".into(),
            port: ServicePort::Number(80),
            endpoints: (1..=n)
                .map(|i| EndpointConfig {
                    addr: SocketAddr::from(([10, 0, 0, i], 80)),
                    weight: 1,
                    ready: true,
                    target: None,
                })
                .collect(),
            policy: LbPolicy::RoundRobin,
            protocol: Default::default(),
            tls: None,
        })
    }

    fn policy(max_percent: u8) -> OutlierPolicy {
        OutlierPolicy {
            consecutive: 3,
            base: Duration::from_millis(50),
            max_percent,
        }
    }

    #[test]
    fn failures_in_a_row_eject_and_a_success_forgives() {
        let b = backend(3);
        let o = Outliers::new(policy(50));
        o.failed(&b, 0);
        o.failed(&b, 0);
        o.answered(&b, 0, 200);
        o.failed(&b, 0);
        o.failed(&b, 0);
        assert_eq!(o.steer(&b, 0), 0, "a success reset the count");
        o.answered(&b, 0, 500);
        o.failed(&b, 0);
        o.failed(&b, 0);
        assert_eq!(
            o.steer(&b, 0),
            0,
            "an application's 500 is an answer: the count started again"
        );
        o.answered(&b, 0, 503);
        assert_ne!(o.steer(&b, 0), 0, "third failure in a row: steered past it");
        assert_eq!(o.steer(&b, 2), 2);
        assert_eq!(o.ejections_total(), 1);
        // Back after its time, on probation: one failure ejects it again,
        // for twice as long.
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(o.steer(&b, 0), 0);
        o.failed(&b, 0);
        assert_ne!(o.steer(&b, 0), 0);
        std::thread::sleep(Duration::from_millis(60));
        assert_ne!(o.steer(&b, 0), 0, "second ejection lasts 100 ms");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(o.steer(&b, 0), 0);
        o.answered(&b, 0, 204);
        assert!(o.ejected_now().is_empty());
        assert_eq!(o.tracked.get(), 0, "forgiven entirely");
    }

    #[test]
    fn an_ejected_picks_traffic_spreads_over_the_others() {
        let b = backend(3);
        let o = Outliers::new(policy(50));
        for _ in 0..3 {
            o.failed(&b, 0);
        }
        let mut to = [0; 3];
        for _ in 0..100 {
            to[o.steer(&b, 0)] += 1;
        }
        assert_eq!(to, [0, 50, 50]);
    }

    #[test]
    fn another_shards_ejection_is_adopted_within_the_share() {
        let b = backend(3);
        let o = Outliers::new(policy(50));
        let until = Instant::now() + Duration::from_secs(5);
        o.adopt([&b], b.endpoints[1].addr, until);
        assert_ne!(o.steer(&b, 1), 1, "left out here too");
        assert_eq!(o.ejections_total(), 0, "not this shard's own ejection");
        // 50% of 3 is one: a second one is not taken.
        o.adopt([&b], b.endpoints[2].addr, until);
        assert_eq!(o.steer(&b, 2), 2);
        // Nor one whose time is over.
        let o = Outliers::new(policy(50));
        o.adopt([&b], b.endpoints[0].addr, Instant::now());
        assert!(o.ejected_now().is_empty());
    }

    #[test]
    fn never_more_than_the_share_and_never_a_lone_endpoint() {
        let b = backend(3);
        let o = Outliers::new(policy(50));
        for e in 0..3 {
            for _ in 0..3 {
                o.failed(&b, e);
            }
        }
        assert_eq!(o.ejected_now().len(), 1, "50% of 3: one");
        let lone = backend(1);
        let o = Outliers::new(policy(100));
        for _ in 0..10 {
            o.failed(&lone, 0);
        }
        assert_eq!(o.steer(&lone, 0), 0);
        assert!(o.ejected_now().is_empty());
        let off = Outliers::new(OutlierPolicy {
            consecutive: 0,
            ..policy(50)
        });
        for _ in 0..10 {
            off.failed(&b, 0);
        }
        assert!(off.ejected_now().is_empty());
    }
}
