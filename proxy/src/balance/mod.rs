//! Load balancing over a backend's endpoints: weighted round robin,
//! least request (P2C) and Maglev consistent hashing.
//!
//! A [`Backend`] is immutable and shared by all shards; the mutable part
//! (round-robin cursor, in-flight counts) is a [`BackendState`] per shard.

pub mod least_request;
pub mod maglev;
pub mod outlier;
pub mod round_robin;

use crate::tls::client::ClientTls;
use least_request::Rng;
use maglev::Maglev;
use rauta_shared::config::{BackendConfig, HashKey, LbPolicy};
use std::cell::Cell;
use std::net::SocketAddr;

/// One endpoint of a compiled backend.
#[derive(Debug)]
pub struct Endpoint {
    /// Address to connect to.
    pub addr: SocketAddr,
    /// Relative weight (>= 1).
    pub weight: u32,
    /// False for a serving+terminating fallback endpoint.
    pub ready: bool,
    /// The pod behind it, when known.
    pub target: Option<Box<str>>,
}

/// The compiled balancing policy.
#[derive(Debug)]
pub enum Policy {
    /// Weighted round robin over [`Backend::schedule`].
    RoundRobin,
    /// Power of two choices on per-shard in-flight counts.
    LeastRequest,
    /// Maglev lookup on a hash of the request key.
    Maglev(HashKey, Maglev),
}

/// A backend as the proxy uses it.
#[derive(Debug)]
pub struct Backend {
    /// e.g. `default/echo:http`.
    pub name: Box<str>,
    /// Name of the Service behind it.
    pub service: Box<str>,
    /// Endpoints with positive weight.
    pub endpoints: Box<[Endpoint]>,
    /// The policy.
    pub policy: Policy,
    /// What the endpoints speak.
    pub protocol: rauta_shared::config::UpstreamProtocol,
    /// For a TLS protocol: the client settings, or why they could not be
    /// built (every connect then fails with that reason).
    pub tls: Option<Result<std::sync::Arc<ClientTls>, Box<str>>>,
    schedule: Box<[u32]>,
    weights: Box<[u32]>,
}

/// The TLS client settings of a TLS backend; the name verified defaults to
/// the Service's `name.namespace.svc`.
fn client_tls(config: &BackendConfig) -> Result<std::sync::Arc<ClientTls>, Box<str>> {
    let default_name = format!("{}.{}.svc", config.service, config.namespace);
    let settings = config.tls.clone().unwrap_or_default();
    ClientTls::compile(&settings, &default_name, config.protocol.is_h2())
        .map(std::sync::Arc::new)
        .map_err(|e| {
            tracing::warn!(backend = %config.name, error = %e, "upstream TLS settings unusable; connects to this backend fail");
            e.into_boxed_str()
        })
}

impl Backend {
    /// Compiles a backend; endpoints of weight 0 are left out.
    pub fn compile(config: &BackendConfig) -> Backend {
        let endpoints: Box<[Endpoint]> = config
            .endpoints
            .iter()
            .filter(|e| e.weight > 0)
            .map(|e| Endpoint {
                addr: e.addr,
                weight: e.weight,
                ready: e.ready,
                target: e.target.as_deref().map(Into::into),
            })
            .collect();
        let weights: Box<[u32]> = endpoints.iter().map(|e| e.weight).collect();
        let policy = match &config.policy {
            LbPolicy::RoundRobin => Policy::RoundRobin,
            LbPolicy::LeastRequest => Policy::LeastRequest,
            LbPolicy::Maglev(key) => {
                let names: Vec<String> = endpoints.iter().map(|e| e.addr.to_string()).collect();
                let pairs: Vec<(&str, u32)> = names
                    .iter()
                    .map(String::as_str)
                    .zip(weights.iter().copied())
                    .collect();
                match Maglev::build(&pairs) {
                    Some(table) => Policy::Maglev(key.clone(), table),
                    None => Policy::RoundRobin,
                }
            }
        };
        Backend {
            name: config.name.as_str().into(),
            service: config.service.as_str().into(),
            schedule: round_robin::schedule(&weights),
            weights,
            endpoints,
            policy,
            protocol: config.protocol,
            tls: config.protocol.is_tls().then(|| client_tls(config)),
        }
    }

    /// The policy as the annotation names it.
    pub fn policy_name(&self) -> String {
        match &self.policy {
            Policy::RoundRobin => "round_robin".into(),
            Policy::LeastRequest => "least_request".into(),
            Policy::Maglev(key, _) => format!("maglev({key:?})"),
        }
    }

    /// The key a request must supply for hashing, if the policy hashes.
    pub fn hash_key(&self) -> Option<&HashKey> {
        match &self.policy {
            Policy::Maglev(key, _) => Some(key),
            _ => None,
        }
    }

    /// Picks an endpoint index. `key_hash` is the hashed request key for
    /// Maglev; without one (e.g. the header is missing) round robin is used.
    #[inline]
    pub fn pick(&self, state: &BackendState, key_hash: Option<u64>, rng: &Rng) -> Option<usize> {
        if self.endpoints.is_empty() {
            return None;
        }
        match (&self.policy, key_hash) {
            (Policy::Maglev(_, table), Some(hash)) => Some(table.pick(hash)),
            (Policy::LeastRequest, _) => least_request::pick(&self.weights, &state.inflight, rng),
            _ => {
                let turn = state.cursor.get();
                state.cursor.set(turn.wrapping_add(1));
                Some(self.schedule[turn % self.schedule.len()] as usize)
            }
        }
    }

    /// The endpoint to try after `first` failed `attempt` times: the next
    /// ones in order, so retries never repeat an endpoint before all were tried.
    #[inline]
    pub fn retry(&self, first: usize, attempt: usize) -> usize {
        (first + attempt) % self.endpoints.len()
    }
}

/// One shard's mutable balancing state for one backend.
#[derive(Debug)]
pub struct BackendState {
    cursor: Cell<usize>,
    inflight: Box<[Cell<u32>]>,
    /// Requests in flight to any endpoint (the sum of `inflight`).
    requests: Cell<u32>,
    /// Resends this shard may still make to the backend.
    pub retry_budget: RetryBudget,
}

/// A retry budget (linkerd's and Envoy's idea): every request earns a
/// fifth of a retry, up to a reserve, and a request sent again spends one,
/// so a failing backend sees at most about 20% more requests, not the try
/// count times as many. A connect that failed is retried outside it:
/// nothing reached the backend.
#[derive(Debug)]
pub struct RetryBudget {
    /// In fifths of a resend: a request earns one, a resend costs five.
    fifths: Cell<u32>,
}

/// A fresh budget's reserve: 10 resends.
const RETRY_RESERVE: u32 = 10 * 5;
/// Most a budget saves up: 100 resends.
const RETRY_CAP: u32 = 100 * 5;

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            fifths: Cell::new(RETRY_RESERVE),
        }
    }
}

impl RetryBudget {
    /// A request was sent: it earns a fifth of a resend.
    #[inline]
    pub fn earn(&self) {
        self.fifths.set((self.fifths.get() + 1).min(RETRY_CAP));
    }

    /// Spends one resend; false when the budget is exhausted.
    pub fn spend(&self) -> bool {
        let f = self.fifths.get();
        if f < 5 {
            return false;
        }
        self.fifths.set(f - 5);
        true
    }
}

impl BackendState {
    /// Fresh state; `start` offsets the round-robin cursor so that shards
    /// do not all begin with the same endpoint.
    pub fn new(backend: &Backend, start: usize) -> BackendState {
        BackendState {
            cursor: Cell::new(start),
            inflight: backend.endpoints.iter().map(|_| Cell::new(0)).collect(),
            requests: Cell::new(0),
            retry_budget: RetryBudget::default(),
        }
    }

    /// Counts a request in flight on an endpoint until the guard drops;
    /// `None` when the backend already has `max` requests in flight.
    #[inline]
    pub fn start(&self, endpoint: usize, max: u32) -> Option<InflightGuard<'_>> {
        let requests = self.requests.get();
        if requests >= max {
            return None;
        }
        self.requests.set(requests + 1);
        let cell = &self.inflight[endpoint];
        cell.set(cell.get() + 1);
        Some(InflightGuard(cell, &self.requests))
    }
}

/// Decrements the in-flight counts of an endpoint and its backend when
/// dropped.
#[derive(Debug)]
pub struct InflightGuard<'a>(&'a Cell<u32>, &'a Cell<u32>);

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
        self.1.set(self.1.get().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rauta_shared::config::{EndpointConfig, ServicePort};

    fn backend(policy: LbPolicy, weights: &[u32]) -> Backend {
        Backend::compile(&BackendConfig {
            name: "ns/svc:80".into(),
            namespace: "ns".into(),
            service: "svc".into(),
            port: ServicePort::Number(80),
            endpoints: weights
                .iter()
                .enumerate()
                .map(|(i, w)| EndpointConfig {
                    addr: SocketAddr::from(([10, 0, 0, i as u8 + 1], 80)),
                    weight: *w,
                    ready: true,
                    target: None,
                })
                .collect(),
            policy,
            protocol: Default::default(),
            tls: None,
        })
    }

    #[test]
    fn round_robin_cycles_and_honours_weights() {
        let b = backend(LbPolicy::RoundRobin, &[2, 1, 0]);
        assert_eq!(b.endpoints.len(), 2, "weight 0 left out");
        let state = BackendState::new(&b, 0);
        let rng = Rng::new(1);
        let picks: Vec<usize> = (0..6).filter_map(|_| b.pick(&state, None, &rng)).collect();
        assert_eq!(picks.iter().filter(|p| **p == 0).count(), 4);
        assert_eq!(picks.iter().filter(|p| **p == 1).count(), 2);
    }

    #[test]
    fn maglev_is_sticky_and_falls_back_without_key() {
        let b = backend(LbPolicy::Maglev(HashKey::ClientIp), &[1, 1, 1]);
        let state = BackendState::new(&b, 0);
        let rng = Rng::new(1);
        let h = Maglev::hash_key(b"192.0.2.7");
        let first = b.pick(&state, Some(h), &rng);
        for _ in 0..10 {
            assert_eq!(b.pick(&state, Some(h), &rng), first);
        }
        let spread: std::collections::HashSet<_> =
            (0..3).filter_map(|_| b.pick(&state, None, &rng)).collect();
        assert_eq!(spread.len(), 3);
    }

    #[test]
    fn the_retry_budget_is_a_fifth_of_requests_plus_a_reserve() {
        let b = RetryBudget::default();
        let spent = (0..20).filter(|_| b.spend()).count();
        assert_eq!(spent, 10, "the reserve");
        for _ in 0..50 {
            b.earn();
        }
        let spent = (0..20).filter(|_| b.spend()).count();
        assert_eq!(spent, 10, "50 requests earn 10 resends");
    }

    #[test]
    fn a_backend_takes_at_most_max_requests_at_once() {
        let b = backend(LbPolicy::RoundRobin, &[1, 1]);
        let state = BackendState::new(&b, 0);
        let first = state.start(0, 2).expect("one of two");
        let second = state.start(1, 2).expect("two of two");
        assert!(state.start(0, 2).is_none(), "a third is refused");
        drop(first);
        assert!(state.start(1, 2).is_some(), "room again once one ended");
        drop(second);
    }

    #[test]
    fn empty_backend_picks_nothing() {
        let b = backend(LbPolicy::LeastRequest, &[]);
        assert_eq!(b.pick(&BackendState::new(&b, 0), None, &Rng::new(1)), None);
    }
}
