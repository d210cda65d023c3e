//! The `rauta_kubernetes_*` families: what the Kubernetes API source
//! (`--kubernetes`) does: watch errors and re-lists per resource, objects
//! per kind, the last reconcile, leader or follower and since when, status
//! writes and Events. A manifests source exports none of them.
//!
//! The control thread keeps the counters (atomics, never touched on the
//! request path); `rauta serve` registers a probe reading them once, at
//! start ([`set_probe`]), and every scrape calls it. A probe rather than
//! the control-plane crate's types, so the data plane does not depend on
//! them. The label sets are fixed (resources, kinds, results), so the
//! number of series is bounded whatever the cluster holds.

use super::text::Out;
use std::sync::OnceLock;

/// One resource the API source watches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KubeResource {
    /// The plural, e.g. `ingresses` (the `resource` label).
    pub resource: &'static str,
    /// The kind, e.g. `Ingress` (the `kind` label).
    pub kind: &'static str,
    /// Every error its watchers reported.
    pub watch_errors: u64,
    /// Lists after the first (after 410 Gone, or after a failed list).
    pub watch_restarts: u64,
    /// Objects in its stores at the last reconcile (Secrets: those held).
    pub objects: u64,
}

/// Status writes of one kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KubeStatusWrites {
    /// `Ingress`, `GatewayClass`, `Gateway` or `HTTPRoute`.
    pub kind: &'static str,
    /// Writes the API server accepted.
    pub ok: u64,
    /// Writes that failed or timed out.
    pub failed: u64,
}

/// The API source's figures at one moment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct KubeFigures {
    /// Every resource watched, in a fixed order.
    pub resources: Vec<KubeResource>,
    /// When the last reconcile published or confirmed a configuration
    /// (seconds since the epoch; 0 before the first).
    pub last_sync_unix: f64,
    /// Whether this instance leads (writes status and Events).
    pub leader: bool,
    /// Since when it has been leader or follower (seconds since the epoch).
    pub leader_since_unix: f64,
    /// Every kind whose status is written, in a fixed order.
    pub status_writes: Vec<KubeStatusWrites>,
    /// Events created.
    pub events_ok: u64,
    /// Events that could not be created.
    pub events_failed: u64,
}

/// Reads the API source's figures.
type Probe = Box<dyn Fn() -> KubeFigures + Send + Sync>;

/// The probe of the running API source; unset with a manifests source.
static PROBE: OnceLock<Probe> = OnceLock::new();

/// Registers the probe of the API source (once per process: `rauta serve`
/// runs one source); false when one was registered before.
pub fn set_probe(read: impl Fn() -> KubeFigures + Send + Sync + 'static) -> bool {
    PROBE.set(Box::new(read)).is_ok()
}

/// The API source's figures now; `None` without an API source. Also for
/// the status page.
pub fn figures() -> Option<KubeFigures> {
    PROBE.get().map(|read| read())
}

/// Writes the families when an API source runs.
pub(super) fn render(out: &mut Out<'_>) {
    if let Some(figures) = figures() {
        render_figures(out, &figures);
    }
}

/// Writes the families of `f`.
fn render_figures(out: &mut Out<'_>, f: &KubeFigures) {
    out.by_label(
        "rauta_kubernetes_watch_errors_total",
        "counter",
        "Errors reported by the Kubernetes API watchers, by resource: failed lists and watches, 410 Gone (each is retried with backoff; the last good table keeps serving).",
        "resource",
        f.resources.iter().map(|r| (r.resource, r.watch_errors)),
    );
    out.by_label(
        "rauta_kubernetes_watch_restarts_total",
        "counter",
        "Lists of a resource after its first one: after 410 Gone, or after a failed list.",
        "resource",
        f.resources.iter().map(|r| (r.resource, r.watch_restarts)),
    );
    out.by_label(
        "rauta_kubernetes_objects",
        "gauge",
        "Objects held of each kind at the last reconcile (Secrets: only those served Ingresses and Gateways name).",
        "kind",
        f.resources.iter().map(|r| (r.kind, r.objects)),
    );
    out.single(
        "rauta_kubernetes_last_sync_timestamp_seconds",
        "gauge",
        "When the last reconcile published or confirmed a configuration (Unix time; 0 before the first).",
        f.last_sync_unix,
    );
    out.single(
        "rauta_kubernetes_leader",
        "gauge",
        "1 while this instance holds the leader Lease (writes status and Events), 0 as a follower.",
        u8::from(f.leader),
    );
    out.single(
        "rauta_kubernetes_leader_since_timestamp_seconds",
        "gauge",
        "When this instance became leader or follower, whichever it is now (Unix time).",
        f.leader_since_unix,
    );
    let name = "rauta_kubernetes_status_writes_total";
    out.family(
        name,
        "counter",
        "Status writes by the leader, by kind and result (ok, or failed: an error or no answer in time; failed writes are retried).",
    );
    for w in &f.status_writes {
        for (result, n) in [("ok", w.ok), ("failed", w.failed)] {
            out.sample(name, &format!("kind=\"{}\",result=\"{result}\"", w.kind), n);
        }
    }
    out.by_label(
        "rauta_kubernetes_events_total",
        "counter",
        "Kubernetes Events on Ingresses with problems, by result (ok, or failed: retried).",
        "result",
        [("ok", f.events_ok), ("failed", f.events_failed)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_type_and_fixed_labels() {
        let figures = KubeFigures {
            resources: vec![KubeResource {
                resource: "ingresses",
                kind: "Ingress",
                watch_errors: 2,
                watch_restarts: 1,
                objects: 7,
            }],
            last_sync_unix: 1_700_000_000.5,
            leader: true,
            leader_since_unix: 1_700_000_000.0,
            status_writes: vec![KubeStatusWrites {
                kind: "HTTPRoute",
                ok: 3,
                failed: 1,
            }],
            events_ok: 4,
            events_failed: 0,
        };
        let mut body = String::new();
        render_figures(&mut Out(&mut body), &figures);
        for line in [
            "# TYPE rauta_kubernetes_watch_errors_total counter",
            "rauta_kubernetes_watch_errors_total{resource=\"ingresses\"} 2",
            "rauta_kubernetes_watch_restarts_total{resource=\"ingresses\"} 1",
            "# TYPE rauta_kubernetes_objects gauge",
            "rauta_kubernetes_objects{kind=\"Ingress\"} 7",
            "rauta_kubernetes_last_sync_timestamp_seconds 1700000000.5",
            "rauta_kubernetes_leader 1",
            "rauta_kubernetes_leader_since_timestamp_seconds 1700000000",
            "rauta_kubernetes_status_writes_total{kind=\"HTTPRoute\",result=\"ok\"} 3",
            "rauta_kubernetes_status_writes_total{kind=\"HTTPRoute\",result=\"failed\"} 1",
            "rauta_kubernetes_events_total{result=\"ok\"} 4",
            "rauta_kubernetes_events_total{result=\"failed\"} 0",
        ] {
            assert!(body.lines().any(|l| l == line), "{line:?} missing:\n{body}");
        }
        let helps = body.lines().filter(|l| l.starts_with("# HELP")).count();
        let types = body.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!((helps, types), (8, 8), "{body}");
    }
}
