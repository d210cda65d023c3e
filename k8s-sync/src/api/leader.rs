//! Leader election on a `coordination.k8s.io/v1` Lease, so that one rauta of
//! the DaemonSet writes Ingress status and Events.
//!
//! The algorithm is client-go's: the leader renews `spec.renewTime` every
//! renew period; another instance takes the Lease over once it has seen the
//! Lease unchanged for `leaseDurationSeconds` *by its own clock* (so clock
//! skew between nodes does not matter). Every write carries the
//! `resourceVersion` read just before, so of two instances racing for an
//! expired Lease only one wins (the other gets 409 Conflict). A leader that
//! could not renew for two thirds of the lease duration stops acting as
//! leader before anyone else may take over.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::Api;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Default Lease name.
pub const DEFAULT_LEASE_NAME: &str = "rauta-leader";
/// Default lease duration (client-go's).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// Default renew period.
pub const DEFAULT_RENEW_PERIOD: Duration = Duration::from_secs(5);

/// Which Lease to compete for, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderOptions {
    /// Namespace of the Lease (the pod's namespace).
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This instance's `holderIdentity`; unique among the competitors.
    pub identity: String,
    /// How long a Lease that is not renewed stays with its holder.
    pub lease_duration: Duration,
    /// How often the leader renews, and how often the others try to take over.
    pub renew_period: Duration,
}

impl LeaderOptions {
    /// The Lease `rauta-leader` in `namespace` with client-go's timing (15 s, renewed every 5 s).
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> LeaderOptions {
        LeaderOptions {
            namespace: namespace.into(),
            name: DEFAULT_LEASE_NAME.to_string(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_period: DEFAULT_RENEW_PERIOD,
        }
    }

    /// How long the leader may fail to renew before it stops acting as leader.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration * 2 / 3
    }
}

/// `$POD_NAME` when set (the DaemonSet passes it through the downward API),
/// else `hostname_<random>`: unique even for two processes on one host.
pub fn default_identity() -> String {
    if let Some(pod) = std::env::var("POD_NAME").ok().filter(|s| !s.is_empty()) {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rauta".to_string());
    let random = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish() as u32
    };
    format!("{host}_{random:08x}")
}

/// The shared view of whether this instance leads.
#[derive(Debug, Clone)]
pub(crate) struct Leadership {
    /// When the Lease was last renewed by us; `None` while not leading.
    renewed: Arc<Mutex<Option<Instant>>>,
    /// Longest time since the last renewal that still counts as leading.
    deadline: Duration,
    /// Ticks on every change of leadership.
    changes: watch::Sender<bool>,
}

impl Leadership {
    /// An instance that always leads (no election: a single replica).
    pub(crate) fn always() -> Leadership {
        let (changes, _) = watch::channel(true);
        Leadership {
            renewed: Arc::new(Mutex::new(None)),
            deadline: Duration::MAX,
            changes,
        }
    }

    /// Not leading yet; the elector will say when.
    fn elected(deadline: Duration) -> Leadership {
        let (changes, _) = watch::channel(false);
        Leadership {
            renewed: Arc::new(Mutex::new(None)),
            deadline,
            changes,
        }
    }

    /// True while this instance may write status and Events.
    pub(crate) fn is_leader(&self) -> bool {
        if self.deadline == Duration::MAX {
            return true;
        }
        let renewed = *self.renewed.lock().unwrap_or_else(PoisonError::into_inner);
        renewed.is_some_and(|at| at.elapsed() < self.deadline)
    }

    /// A receiver that is marked changed whenever leadership changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.changes.subscribe()
    }

    /// Records a successful renewal (`Some(now)`) or the loss of the Lease (`None`).
    fn set(&self, renewed: Option<Instant>) {
        *self.renewed.lock().unwrap_or_else(PoisonError::into_inner) = renewed;
        self.refresh();
    }

    /// Tells subscribers when the leadership differs from the last value sent.
    fn refresh(&self) {
        let now = self.is_leader();
        self.changes.send_if_modified(|last| {
            let changed = *last != now;
            *last = now;
            changed
        });
    }
}

/// What the elector last saw of a Lease held by someone else.
#[derive(Debug)]
struct Observed {
    resource_version: Option<String>,
    at: Instant,
}

/// Competes for the Lease until stopped.
pub(crate) struct Elector {
    api: Api<Lease>,
    opts: LeaderOptions,
    leadership: Leadership,
    observed: Option<Observed>,
}

/// Longest wait for one Lease request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

impl Elector {
    /// An elector for `opts` over `client`, and the leadership it maintains.
    pub(crate) fn new(client: kube::Client, opts: LeaderOptions) -> (Elector, Leadership) {
        let leadership = Leadership::elected(opts.renew_deadline());
        let api = Api::namespaced(client, &opts.namespace);
        let elector = Elector {
            api,
            opts,
            leadership: leadership.clone(),
            observed: None,
        };
        (elector, leadership)
    }

    /// Tries to acquire or renew every renew period until `stop` fires,
    /// then releases the Lease if we hold it.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            self.round().await;
            tokio::select! {
                _ = tokio::time::sleep(self.opts.renew_period) => {}
                _ = stop.changed() => break,
            }
        }
        if self.leadership.is_leader() {
            self.release().await;
        }
        self.leadership.set(None);
    }

    /// One attempt; updates the leadership with the outcome.
    async fn round(&mut self) {
        let attempt = tokio::time::timeout(REQUEST_TIMEOUT, self.try_acquire_or_renew()).await;
        let who = &self.opts.identity;
        let lease = format!("Lease {}/{}", self.opts.namespace, self.opts.name);
        match attempt {
            Ok(Ok(true)) => {
                if !self.leadership.is_leader() {
                    tracing::info!(identity = %who, %lease, "became the leader: this instance writes Ingress status");
                }
                self.leadership.set(Some(Instant::now()));
            }
            Ok(Ok(false)) => {
                if self.leadership.is_leader() {
                    tracing::warn!(identity = %who, %lease, "lost the leadership to another instance");
                }
                self.leadership.set(None);
            }
            Ok(Err(e)) => {
                tracing::warn!(identity = %who, %lease, "leader election: {e}");
                self.step_down_if_late();
            }
            Err(_) => {
                tracing::warn!(identity = %who, %lease, "leader election: the API server did not answer within {REQUEST_TIMEOUT:?}");
                self.step_down_if_late();
            }
        }
    }

    /// After a failed renewal: keep leading only within the renew deadline.
    fn step_down_if_late(&self) {
        let was = *self.leadership.changes.borrow();
        self.leadership.refresh();
        if was && !self.leadership.is_leader() {
            tracing::warn!(identity = %self.opts.identity, "could not renew the Lease in time; no longer acting as leader");
        }
    }

    /// One client-go style attempt: `Ok(true)` when we hold the Lease now.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.opts.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.opts.name.clone()),
                    namespace: Some(self.opts.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                // Someone else created it first.
                Err(kube::Error::Api(s)) if s.is_already_exists() || s.is_conflict() => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
        let ours = holder == Some(self.opts.identity.as_str());
        let version = lease.metadata.resource_version.clone();
        if holder.is_some() && !ours {
            // Held by someone else: free only once it has not changed for a
            // whole lease duration, as measured here.
            let changed = self
                .observed
                .as_ref()
                .is_none_or(|o| o.resource_version != version);
            if changed {
                self.observed = Some(Observed {
                    resource_version: version,
                    at: Instant::now(),
                });
            }
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs)
                .unwrap_or(self.opts.lease_duration);
            let seen = self.observed.as_ref().map_or(Instant::now(), |o| o.at);
            if seen.elapsed() < duration {
                return Ok(false);
            }
            tracing::info!(
                identity = %self.opts.identity,
                previous = holder.unwrap_or(""),
                "the Lease expired; taking it over"
            );
        }
        let acquired = match (&spec.acquire_time, ours) {
            (Some(t), true) => t.0,
            _ => now,
        };
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
        lease.spec = Some(self.spec(acquired, now, transitions));
        // `replace` sends the resourceVersion we read: a concurrent change
        // makes the API server answer 409 and the other writer wins.
        match self
            .api
            .replace(&self.opts.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.observed = None;
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.is_conflict() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Our spec for the Lease.
    fn spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.opts.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.opts.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Gives the Lease up on shutdown so that another instance takes over at
    /// once instead of after a whole lease duration.
    async fn release(&mut self) {
        let release = async {
            let Some(mut lease) = self.api.get_opt(&self.opts.name).await? else {
                return Ok(());
            };
            let mut spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.opts.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            lease.spec = Some(spec);
            self.api
                .replace(&self.opts.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, release).await {
            Ok(Ok(())) => {
                tracing::info!(identity = %self.opts.identity, "released the leader Lease")
            }
            Ok(Err(e)) => {
                tracing::warn!(identity = %self.opts.identity, "could not release the leader Lease: {e}")
            }
            Err(_) => {
                tracing::warn!(identity = %self.opts.identity, "could not release the leader Lease: the API server did not answer")
            }
        }
    }
}
