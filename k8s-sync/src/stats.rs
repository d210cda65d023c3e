//! Outcome counters of a configuration source, read by the admin thread
//! for `/metrics`. Updated once per load, never on the request path.

use crate::problem::Severity;
use crate::translate::Translation;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters of configuration loads.
#[derive(Debug, Default)]
pub struct SourceStats {
    loads: AtomicU64,
    rejected: AtomicU64,
    last_rejected: AtomicBool,
    fatal: AtomicU64,
    errors: AtomicU64,
    warnings: AtomicU64,
}

/// A copy of [`SourceStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounts {
    /// Loads attempted.
    pub loads: u64,
    /// Loads rejected as a whole.
    pub rejected: u64,
    /// Whether the last load was rejected.
    pub last_rejected: bool,
    /// Fatal problems (the set rejected) in the last load.
    pub fatal: u64,
    /// Error problems (an object left out) in the last load.
    pub errors: u64,
    /// Warning problems in the last load.
    pub warnings: u64,
}

impl SourceStats {
    /// Records one load; it counts as rejected when the set was unusable
    /// ([`Translation::is_rejected`]).
    pub fn record(&self, translation: &Translation) {
        let count = |s: Severity| {
            translation
                .problems
                .iter()
                .filter(|p| p.severity == s)
                .count() as u64
        };
        let (fatal, errors, warnings) = (
            count(Severity::Fatal),
            count(Severity::Error),
            count(Severity::Warning),
        );
        self.loads.fetch_add(1, Ordering::Relaxed);
        if translation.is_rejected() {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        self.last_rejected
            .store(translation.is_rejected(), Ordering::Relaxed);
        self.fatal.store(fatal, Ordering::Relaxed);
        self.errors.store(errors, Ordering::Relaxed);
        self.warnings.store(warnings, Ordering::Relaxed);
    }

    /// The current counts.
    pub fn counts(&self) -> SourceCounts {
        SourceCounts {
            loads: self.loads.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            last_rejected: self.last_rejected.load(Ordering::Relaxed),
            fatal: self.fatal.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            warnings: self.warnings.load(Ordering::Relaxed),
        }
    }
}

/// The resources the API source reads: the plural (the `resource` label
/// of the watch counters) and the kind (the `kind` label of the object
/// counts). A fixed set, so the series are bounded.
pub const RESOURCES: [(&str, &str); 14] = [
    ("ingresses", "Ingress"),
    ("ingressclasses", "IngressClass"),
    ("services", "Service"),
    ("endpointslices", "EndpointSlice"),
    ("secrets", "Secret"),
    ("configmaps", "ConfigMap"),
    ("namespaces", "Namespace"),
    ("gatewayclasses", "GatewayClass"),
    ("gateways", "Gateway"),
    ("httproutes", "HTTPRoute"),
    ("grpcroutes", "GRPCRoute"),
    ("tlsroutes", "TLSRoute"),
    ("backendtlspolicies", "BackendTLSPolicy"),
    ("referencegrants", "ReferenceGrant"),
];

/// The kinds whose status the leader writes.
pub const STATUS_KINDS: [&str; 7] = [
    "Ingress",
    "GatewayClass",
    "Gateway",
    "HTTPRoute",
    "GRPCRoute",
    "TLSRoute",
    "BackendTLSPolicy",
];

/// Counters of one resource's watchers (all namespaces together).
#[derive(Debug, Default)]
struct ResourceCounters {
    errors: AtomicU64,
    restarts: AtomicU64,
    objects: AtomicU64,
}

/// Counters of the Kubernetes API source, updated by its thread (the
/// watchers, the reconcile loop, the status writer) and read by the admin
/// thread for `/metrics`; never touched on the request path.
#[derive(Debug, Default)]
pub struct ApiStats {
    /// In the order of [`RESOURCES`].
    resources: [ResourceCounters; RESOURCES.len()],
    /// Unix time of the last reconcile, as `f64` bits (0: none yet).
    last_sync: AtomicU64,
    leader: AtomicBool,
    /// Unix time of the last change of role, as `f64` bits (0: not known yet).
    leader_since: AtomicU64,
    /// In the order of [`STATUS_KINDS`].
    status_ok: [AtomicU64; STATUS_KINDS.len()],
    status_failed: [AtomicU64; STATUS_KINDS.len()],
    events_ok: AtomicU64,
    events_failed: AtomicU64,
}

/// One resource in [`ApiCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceCounts {
    /// The plural, e.g. `ingresses`.
    pub resource: &'static str,
    /// The kind, e.g. `Ingress`.
    pub kind: &'static str,
    /// Every error its watchers reported (failed lists and watches, 410 Gone).
    pub watch_errors: u64,
    /// Lists after the first: after 410 Gone, or after a failed list.
    pub watch_restarts: u64,
    /// Objects in its stores at the last reconcile (Secrets: those held).
    pub objects: u64,
}

/// Status writes of one kind in [`ApiCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusWriteCounts {
    /// One of [`STATUS_KINDS`].
    pub kind: &'static str,
    /// Writes the API server accepted.
    pub ok: u64,
    /// Writes that failed or timed out (each is retried).
    pub failed: u64,
}

/// A copy of [`ApiStats`] at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCounts {
    /// Every resource of [`RESOURCES`], in that order.
    pub resources: Vec<ResourceCounts>,
    /// Unix time of the last reconcile that published or confirmed a
    /// configuration; 0 before the first.
    pub last_sync_unix: f64,
    /// Whether this instance leads (writes status and Events).
    pub leader: bool,
    /// Unix time since which it has been leader or follower.
    pub leader_since_unix: f64,
    /// Every kind of [`STATUS_KINDS`], in that order.
    pub status_writes: Vec<StatusWriteCounts>,
    /// Events created.
    pub events_ok: u64,
    /// Events that could not be created (each is retried).
    pub events_failed: u64,
}

impl ApiCounts {
    /// The counts of `resource` (a plural of [`RESOURCES`]).
    pub fn resource(&self, resource: &str) -> Option<&ResourceCounts> {
        self.resources.iter().find(|r| r.resource == resource)
    }

    /// The status writes of `kind` (one of [`STATUS_KINDS`]).
    pub fn status_writes(&self, kind: &str) -> Option<&StatusWriteCounts> {
        self.status_writes.iter().find(|s| s.kind == kind)
    }
}

/// Now, in seconds since the epoch.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl ApiStats {
    fn resource(&self, resource: &str) -> Option<&ResourceCounters> {
        let i = RESOURCES.iter().position(|(r, _)| *r == resource)?;
        Some(&self.resources[i])
    }

    /// A watcher of `resource` (plural) reported an error.
    pub(crate) fn watch_error(&self, resource: &str) {
        if let Some(r) = self.resource(resource) {
            r.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A watcher of `resource` (plural) lists again.
    pub(crate) fn watch_restart(&self, resource: &str) {
        if let Some(r) = self.resource(resource) {
            r.restarts.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The objects of `kind` held at this reconcile.
    pub(crate) fn set_objects(&self, kind: &str, n: usize) {
        if let Some(i) = RESOURCES.iter().position(|(_, k)| *k == kind) {
            self.resources[i].objects.store(n as u64, Ordering::Relaxed);
        }
    }

    /// A reconcile published or confirmed a configuration now.
    pub(crate) fn synced(&self) {
        self.last_sync
            .store(unix_now().to_bits(), Ordering::Relaxed);
    }

    /// Records the role now; the time when it differs from the last one
    /// recorded (or for the first record).
    pub(crate) fn set_leader(&self, leader: bool) {
        let was = self.leader.swap(leader, Ordering::Relaxed);
        if was != leader || self.leader_since.load(Ordering::Relaxed) == 0 {
            self.leader_since
                .store(unix_now().to_bits(), Ordering::Relaxed);
        }
    }

    /// One status write of `kind` (one of [`STATUS_KINDS`]) ended.
    pub(crate) fn status_write(&self, kind: &str, ok: bool) {
        if let Some(i) = STATUS_KINDS.iter().position(|k| *k == kind) {
            let counter = if ok {
                &self.status_ok[i]
            } else {
                &self.status_failed[i]
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One Event was created (`ok`) or could not be.
    pub(crate) fn event(&self, ok: bool) {
        let counter = if ok {
            &self.events_ok
        } else {
            &self.events_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The current counts.
    pub fn counts(&self) -> ApiCounts {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ApiCounts {
            resources: RESOURCES
                .iter()
                .zip(&self.resources)
                .map(|((resource, kind), c)| ResourceCounts {
                    resource,
                    kind,
                    watch_errors: load(&c.errors),
                    watch_restarts: load(&c.restarts),
                    objects: load(&c.objects),
                })
                .collect(),
            last_sync_unix: f64::from_bits(load(&self.last_sync)),
            leader: self.leader.load(Ordering::Relaxed),
            leader_since_unix: f64::from_bits(load(&self.leader_since)),
            status_writes: STATUS_KINDS
                .iter()
                .enumerate()
                .map(|(i, kind)| StatusWriteCounts {
                    kind,
                    ok: load(&self.status_ok[i]),
                    failed: load(&self.status_failed[i]),
                })
                .collect(),
            events_ok: load(&self.events_ok),
            events_failed: load(&self.events_failed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_counters_move_by_label_and_ignore_unknown_ones() {
        let stats = ApiStats::default();
        let c = stats.counts();
        assert_eq!(c.resources.len(), RESOURCES.len());
        assert_eq!(c.last_sync_unix, 0.0);
        assert!(!c.leader);
        stats.watch_error("ingresses");
        stats.watch_error("ingresses");
        stats.watch_restart("secrets");
        stats.watch_error("widgets");
        stats.set_objects("HTTPRoute", 3);
        stats.status_write("Gateway", true);
        stats.status_write("Ingress", false);
        stats.status_write("Widget", false);
        stats.event(true);
        stats.set_leader(false);
        stats.synced();
        let c = stats.counts();
        let ing = c.resource("ingresses").expect("ingresses");
        assert_eq!((ing.watch_errors, ing.watch_restarts), (2, 0));
        assert_eq!(c.resource("secrets").map(|s| s.watch_restarts), Some(1));
        assert_eq!(c.resource("httproutes").map(|s| s.objects), Some(3));
        assert_eq!(
            c.status_writes("Gateway").map(|s| (s.ok, s.failed)),
            Some((1, 0))
        );
        assert_eq!(
            c.status_writes("Ingress").map(|s| (s.ok, s.failed)),
            Some((0, 1))
        );
        assert_eq!((c.events_ok, c.events_failed), (1, 0));
        assert!(c.last_sync_unix > 1.0e9);
        // A follower since the first record; the time moves only with the role.
        let since = c.leader_since_unix;
        assert!(since > 1.0e9);
        stats.set_leader(false);
        assert_eq!(stats.counts().leader_since_unix, since);
        stats.set_leader(true);
        let c = stats.counts();
        assert!(c.leader && c.leader_since_unix >= since);
    }
}
