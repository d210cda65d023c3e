//! The API-server source: follows Ingress, IngressClass, Service and
//! EndpointSlice with kube-rs reflectors (and the TLS Secrets the served
//! Ingresses name), translates them with the same
//! [`translate`] as the manifests source, and publishes every new
//! configuration. As with the manifests source, an invalid Ingress never
//! holds the others back: it is left out of the table, logged, and
//! reported as a Kubernetes Event on it, while the rest is published.
//!
//! The leader among the instances (a `coordination.k8s.io/v1` Lease, see
//! [`leader`]) also writes `status.loadBalancer.ingress` of the Ingresses
//! it serves and sends the Events; the others only route.
//!
//! Everything runs on one thread (`rauta-kube`) with a tokio current-thread
//! runtime: the reflectors, the debounced reconcile loop, the leader
//! elector and the status writer, which runs apart from the reconcile loop
//! so that a slow API server never delays a route table.
//!
//! With [`ApiOptions::namespaces`] (`--watch-namespace`), the namespaced
//! kinds are watched in those namespaces only; the cluster-scoped ones
//! (IngressClass, GatewayClass, Namespace) as always. What the thread
//! does is counted in [`ApiStats`] (watch errors and re-lists, objects,
//! the last reconcile, the role, status writes, Events) for `/metrics`.

mod backoff;
pub mod client;
mod events;
mod gateway_status;
pub mod leader;
pub mod snapshot;
pub mod status;
mod watch;

pub use client::ClientSource;
pub use events::{REASON_INVALID, REASON_WARNING};
pub use leader::LeaderOptions;
pub use status::PublishTarget;
pub use watch::WatchBackoff;

use crate::problem::{Problem, Severity};
use crate::stats::{ApiStats, SourceStats};
use crate::translate::{referenced_secrets, served_ingresses, translate};
use crate::ClassSelector;
use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};
use kube::runtime::reflector::ObjectRef;
use leader::{Elector, Leadership};
use rauta_shared::config::{IngressRef, RouteConfig, SecretRef};
use status::{Addr, ClassTracker};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use tokio::sync::{watch as channel, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use watch::Stores;

/// Default debounce of the API source.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(50);
/// Longest wait for one status or Event write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Delay before failed status or Event writes are tried again.
const DEFAULT_WRITE_RETRY: Duration = Duration::from_secs(5);

/// What the API source needs to know.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Where the API server is.
    pub client: ClientSource,
    /// Our IngressClass.
    pub selector: ClassSelector,
    /// Quiet time after a change before the table is rebuilt; a steady
    /// stream of changes still rebuilds every ten debounces.
    pub debounce: Duration,
    /// What to write into the status of served Ingresses.
    pub publish: PublishTarget,
    /// The Lease to compete for; `None`: this instance always writes
    /// status and Events (a single replica).
    pub leader: Option<LeaderOptions>,
    /// Retry delays of failing watches.
    pub backoff: WatchBackoff,
    /// Delay before failed status or Event writes are tried again.
    pub write_retry: Duration,
    /// The namespaces whose namespaced objects are watched
    /// (`--watch-namespace`); empty: every namespace.
    pub namespaces: Vec<String>,
}

impl ApiOptions {
    /// Defaults: 50 ms debounce, no status, no leader election, client-go's backoff.
    pub fn new(client: ClientSource, selector: ClassSelector) -> ApiOptions {
        ApiOptions {
            client,
            selector,
            debounce: DEFAULT_DEBOUNCE,
            publish: PublishTarget::None,
            leader: None,
            backoff: WatchBackoff::default(),
            write_retry: DEFAULT_WRITE_RETRY,
            namespaces: Vec::new(),
        }
    }

    /// Checks the namespace list: valid names, and every object a flag
    /// names (the TCP/UDP services ConfigMaps, the publish Service) in
    /// one of them, since nothing outside them is read.
    pub fn validate(&self) -> Result<(), String> {
        check_namespaces(&self.namespaces, &self.selector)?;
        if let (PublishTarget::Service { namespace, name }, false) =
            (&self.publish, self.namespaces.is_empty())
        {
            if !self.namespaces.contains(namespace) {
                return Err(format!(
                    "the publish Service {namespace}/{name} is outside the watched namespaces; add --watch-namespace {namespace}"
                ));
            }
        }
        Ok(())
    }
}

/// Checks a `--watch-namespace` list (empty: every namespace) against the
/// objects the selector names: each namespace a valid name, and the TCP
/// and UDP services ConfigMaps inside the list.
pub fn check_namespaces(namespaces: &[String], selector: &ClassSelector) -> Result<(), String> {
    for ns in namespaces {
        let valid = !ns.is_empty()
            && ns.len() <= 63
            && ns
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !ns.starts_with('-')
            && !ns.ends_with('-');
        if !valid {
            return Err(format!(
                "--watch-namespace {ns:?} is not a namespace name (lower-case letters, digits and '-', at most 63)"
            ));
        }
    }
    if namespaces.is_empty() {
        return Ok(());
    }
    let maps = [
        ("--tcp-services-configmap", &selector.tcp_services),
        ("--udp-services-configmap", &selector.udp_services),
    ];
    for (flag, map) in maps {
        if let Some(map) = map.as_ref().filter(|m| !namespaces.contains(&m.namespace)) {
            return Err(format!(
                "{flag} {map} is outside the watched namespaces; add --watch-namespace {}",
                map.namespace
            ));
        }
    }
    Ok(())
}

/// A running API source (thread `rauta-kube`).
///
/// [`ApiSource::stop`] ends the thread (releasing the leader Lease) and
/// waits for it; dropping the source ends the thread without waiting.
#[derive(Debug)]
pub struct ApiSource {
    stop: channel::Sender<bool>,
    thread: JoinHandle<()>,
    leadership: Leadership,
    stats: Arc<SourceStats>,
    api_stats: Arc<ApiStats>,
}

impl ApiSource {
    /// Connects (kubeconfig or in-cluster) and starts the `rauta-kube` thread.
    ///
    /// Fails when the client configuration cannot be loaded or the options
    /// are invalid ([`ApiOptions::validate`]); an API server that cannot be
    /// reached yet is retried with backoff. The first
    /// configuration is published once all four kinds are listed; after
    /// that, `publish` gets every configuration that differs from the last,
    /// `debounce` after the last change of a burst.
    pub fn spawn(
        opts: ApiOptions,
        publish: impl FnMut(RouteConfig) + Send + 'static,
    ) -> io::Result<ApiSource> {
        opts.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let (stop, stop_rx) = channel::channel(false);
        let (started_tx, started_rx) = mpsc::channel::<Result<Leadership, String>>();
        let stats = Arc::new(SourceStats::default());
        let thread_stats = stats.clone();
        let api_stats = Arc::new(ApiStats::default());
        let thread_api_stats = api_stats.clone();
        let thread = thread::Builder::new()
            .name("rauta-kube".to_string())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = started_tx.send(Err(format!("tokio runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let client = match client::connect(&opts.client).await {
                        Ok(client) => client,
                        Err(e) => {
                            let _ = started_tx.send(Err(e));
                            return;
                        }
                    };
                    let (elector, leadership) = match opts.leader.clone() {
                        Some(lease) => {
                            let (elector, leadership) = Elector::new(client.clone(), lease);
                            (Some(elector), leadership)
                        }
                        None => (None, Leadership::always()),
                    };
                    if started_tx.send(Ok(leadership.clone())).is_err() {
                        return;
                    }
                    let ctx = Context {
                        client,
                        opts,
                        stats: thread_stats,
                        api_stats: thread_api_stats,
                    };
                    run(ctx, publish, stop_rx, elector, leadership).await;
                });
            })?;
        match started_rx.recv() {
            Ok(Ok(leadership)) => Ok(ApiSource {
                stop,
                thread,
                leadership,
                stats,
                api_stats,
            }),
            Ok(Err(message)) => {
                let _ = thread.join();
                Err(io::Error::other(message))
            }
            Err(mpsc::RecvError) => {
                let _ = thread.join();
                Err(io::Error::other(
                    "the rauta-kube thread ended while starting",
                ))
            }
        }
    }

    /// True while this instance holds the leader Lease (always true without
    /// leader election).
    pub fn is_leader(&self) -> bool {
        self.leadership.is_leader()
    }

    /// Reconcile counters (errors and warnings of the last one), for metrics.
    pub fn stats(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    /// The API source's own counters (watches, objects, the last sync,
    /// leadership, status writes, Events), for metrics.
    pub fn api_stats(&self) -> Arc<ApiStats> {
        self.api_stats.clone()
    }

    /// Stops the thread (releasing the Lease if held) and waits for it.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        if self.thread.join().is_err() {
            tracing::error!("the rauta-kube thread panicked");
        }
    }
}

/// What the status writer acts on: the state of one reconcile.
#[derive(Debug, Default)]
struct WriterInput {
    ingresses: Vec<Arc<Ingress>>,
    served: BTreeSet<IngressRef>,
    left: BTreeMap<IngressRef, Vec<Addr>>,
    desired: Option<Vec<IngressLoadBalancerIngress>>,
    problems: BTreeMap<IngressRef, Vec<Problem>>,
    /// The Gateway API status writes, planned.
    gateway: Vec<gateway_status::Change>,
}

/// What the control loop works with.
struct Context {
    client: kube::Client,
    opts: ApiOptions,
    stats: Arc<SourceStats>,
    api_stats: Arc<ApiStats>,
}

/// The control loop: first complete lists, then a debounced reconcile per
/// burst of changes, until told to stop.
async fn run(
    ctx: Context,
    mut publish: impl FnMut(RouteConfig),
    mut stop: channel::Receiver<bool>,
    elector: Option<Elector>,
    leadership: Leadership,
) {
    let Context {
        client,
        opts,
        stats,
        api_stats,
    } = ctx;
    let mut tasks = JoinSet::new();
    let changed = Arc::new(Notify::new());
    let sel = &opts.selector;
    let config_maps: Vec<_> = [&sel.tcp_services, &sel.udp_services]
        .into_iter()
        .flatten()
        .collect();
    if !opts.namespaces.is_empty() {
        tracing::info!(
            namespaces = ?opts.namespaces,
            "watching the namespaced kinds (Ingresses, Services, EndpointSlices, Secrets, ConfigMaps, Gateways, HTTPRoutes, ReferenceGrants) in these namespaces only"
        );
    }
    let stores = Stores::start(
        &client,
        &config_maps,
        &opts.namespaces,
        opts.backoff,
        &changed,
        &api_stats,
        &mut tasks,
    );
    tasks.spawn(track_leadership(leadership.clone(), api_stats.clone()));
    // The elector stops last, so that no status is written after the Lease is released.
    let (elector_stop, elector_stopped) = channel::channel(false);
    let elector = elector.map(|e| tokio::spawn(e.run(elector_stopped)));
    let (input_tx, input_rx) = channel::channel(Arc::new(WriterInput::default()));
    let reporter = events::Reporter {
        controller: opts.selector.controller.clone(),
        instance: opts
            .leader
            .as_ref()
            .map(|l| l.identity.clone())
            .unwrap_or_else(leader::default_identity),
    };
    tasks.spawn(writer(
        client.clone(),
        input_rx,
        leadership,
        reporter,
        opts.write_retry,
        api_stats.clone(),
    ));

    let ready = tokio::select! {
        r = stores.wait_ready() => r.is_ok(),
        _ = stop.changed() => false,
    };
    if ready {
        tracing::info!(
            "Kubernetes API: Ingresses, IngressClasses, Services, EndpointSlices and TLS Secrets listed"
        );
        let mut reconciler = Reconciler::default();
        let fetch = reconciler.reconcile(
            &stores,
            &opts,
            (&stats, &api_stats),
            &mut publish,
            &input_tx,
        );
        fetch_secrets(&mut tasks, &client, &stores, fetch, &changed, opts.backoff);
        let max_wait = opts.debounce * 10;
        let mut first: Option<Instant> = None;
        let mut deadline: Option<Instant> = None;
        loop {
            let sleep = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now));
            tokio::select! {
                _ = stop.changed() => break,
                _ = changed.notified() => {
                    let now = Instant::now();
                    let start = *first.get_or_insert(now);
                    deadline = Some((now + opts.debounce).min(start + max_wait));
                }
                _ = sleep, if deadline.is_some() => {
                    first = None;
                    deadline = None;
                    let fetch = reconciler.reconcile(&stores, &opts, (&stats, &api_stats), &mut publish, &input_tx);
                    fetch_secrets(&mut tasks, &client, &stores, fetch, &changed, opts.backoff);
                }
            }
        }
    }
    drop(input_tx);
    tasks.shutdown().await;
    let _ = elector_stop.send(true);
    if let Some(elector) = elector {
        // Let it release the Lease.
        let _ = elector.await;
    }
    tracing::debug!("Kubernetes API source stopped");
}

/// Keeps the role in `stats` up to date: now, and at every change.
async fn track_leadership(leadership: Leadership, stats: Arc<ApiStats>) {
    let mut changes = leadership.subscribe();
    loop {
        stats.set_leader(leadership.is_leader());
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Fetches Secrets and CA ConfigMaps that became referenced after the
/// watch had dropped them; each one held wakes `changed`, so the next
/// reconcile uses it.
fn fetch_secrets(
    tasks: &mut JoinSet<()>,
    client: &kube::Client,
    stores: &Stores,
    (secrets, maps): (Vec<SecretRef>, Vec<SecretRef>),
    changed: &Arc<Notify>,
    backoff: WatchBackoff,
) {
    fetch_into(tasks, client, &stores.secrets, secrets, changed, backoff);
    fetch_into(tasks, client, &stores.ca_maps, maps, changed, backoff);
}

fn fetch_into<K: watch::Referenced>(
    tasks: &mut JoinSet<()>,
    client: &kube::Client,
    store: &watch::RefStore<K>,
    names: Vec<SecretRef>,
    changed: &Arc<Notify>,
    backoff: WatchBackoff,
) {
    for name in names {
        let api: kube::Api<K> = kube::Api::namespaced(client.clone(), &name.namespace);
        let (store, changed) = (store.clone(), changed.clone());
        let kind = K::kind(&()).into_owned();
        tasks.spawn(async move {
            let mut delay = backoff.min;
            loop {
                match api.get_opt(&name.name).await {
                    Ok(found) => {
                        if store.fetched(&name, found) {
                            changed.notify_one();
                        }
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(object = %name, %kind, "fetching a referenced object failed: {e}; retrying in {delay:?}");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(backoff.max);
                    }
                }
            }
        });
    }
}

/// State kept from one reconcile to the next.
#[derive(Default)]
struct Reconciler {
    last: Option<RouteConfig>,
    logged: HashSet<String>,
    tracker: ClassTracker,
    service_warned: bool,
}

impl Reconciler {
    /// Translates the stores, publishes a changed configuration, and hands
    /// the state to the status writer. Returns the Secrets to fetch: named
    /// now, seen by the watch before, not held.
    fn reconcile(
        &mut self,
        stores: &Stores,
        opts: &ApiOptions,
        (stats, api_stats): (&SourceStats, &ApiStats),
        publish: &mut impl FnMut(RouteConfig),
        writer: &channel::Sender<Arc<WriterInput>>,
    ) -> (Vec<SecretRef>, Vec<SecretRef>) {
        let ingresses = stores.ingresses.state();
        let mut objects = stores.objects(&ingresses);
        // Drop the Secrets no served Ingress names, before they are used.
        let referenced = referenced_secrets(&objects, &opts.selector);
        let fetch = stores.secrets.set_referenced(&referenced);
        let ca_maps = crate::translate::referenced_ca_maps(&objects);
        let fetch_maps = stores.ca_maps.set_referenced(&ca_maps);
        objects.retain(|o| match &o.object {
            crate::objects::KubeObject::Secret(s) => referenced.iter().any(|r| {
                Some(r.namespace.as_str()) == s.metadata.namespace.as_deref()
                    && Some(r.name.as_str()) == s.metadata.name.as_deref()
            }),
            _ => true,
        });
        let translation = translate(&objects, &opts.selector);
        // Invalid Ingresses are left out, the rest is used; objects from the
        // API server always parse, so the set is never rejected whole.
        stats.record(&translation);
        self.log_problems(&translation.problems);
        if self.last.as_ref() != Some(&translation.config) {
            tracing::info!(
                rules = translation.config.rules.len(),
                backends = translation.config.backends.len(),
                skipped = translation.problems.iter().filter(|p| p.is_error()).count(),
                "publishing a new route configuration from the Kubernetes API"
            );
            self.last = Some(translation.config.clone());
            publish(translation.config);
        } else {
            tracing::debug!("Kubernetes objects changed, route configuration unchanged");
        }
        api_stats.synced();
        stores.count_objects(api_stats);

        let served: BTreeSet<IngressRef> = served_ingresses(&objects, &opts.selector)
            .into_iter()
            .collect();
        let refs: Vec<&Ingress> = ingresses.iter().map(|i| i.as_ref()).collect();
        self.tracker.update(&refs, &served);
        let service = match &opts.publish {
            PublishTarget::Service { namespace, name } => {
                stores.services.get(&ObjectRef::new(name).within(namespace))
            }
            _ => None,
        };
        let desired = status::desired(&opts.publish, service.as_deref());
        match (&opts.publish, &desired) {
            (PublishTarget::Service { namespace, name }, None) if !self.service_warned => {
                tracing::warn!("publish Service {namespace}/{name} is missing or has no address; Ingress status is not written until it has one");
                self.service_warned = true;
            }
            (_, Some(_)) => self.service_warned = false,
            _ => {}
        }
        let problems = events::by_ingress(&translation.problems, &refs);
        drop(refs);
        let gateway = gateway_status::plan(
            &translation.gateway_status,
            &stores.gateway.route_status(),
            &opts.selector.gateway_controller,
            desired.as_deref(),
        );
        writer.send_replace(Arc::new(WriterInput {
            ingresses,
            served,
            left: self.tracker.left().clone(),
            desired,
            problems,
            gateway,
        }));
        (fetch, fetch_maps)
    }

    /// Logs each problem once, when it first appears.
    fn log_problems(&mut self, problems: &[Problem]) {
        let now: HashSet<String> = problems.iter().map(Problem::to_string).collect();
        for p in problems {
            let line = p.to_string();
            if self.logged.contains(&line) {
                continue;
            }
            match p.severity {
                Severity::Fatal | Severity::Error => {
                    tracing::error!("{line} (this Ingress is left out of the route table; the others are served)")
                }
                Severity::Warning => tracing::warn!("{line}"),
            }
        }
        // Forget what went away, so that it is logged again if it comes back.
        self.logged = now;
    }
}

/// Writes Ingress status and Events while this instance leads; retries
/// failed writes after `retry`.
async fn writer(
    client: kube::Client,
    mut input: channel::Receiver<Arc<WriterInput>>,
    leadership: Leadership,
    reporter: events::Reporter,
    retry: Duration,
    stats: Arc<ApiStats>,
) {
    let mut leader_changes = leadership.subscribe();
    let mut event_log = events::EventLog::default();
    // What we wrote, by the resourceVersion it was written over: until the
    // watch brings the new version, the same write is not repeated.
    let mut written: BTreeMap<IngressRef, (Option<String>, Option<Vec<Addr>>)> = BTreeMap::new();
    // The Gateway API status last written per object (without times).
    let mut gateway_written: BTreeMap<gateway_status::Target, serde_json::Value> = BTreeMap::new();
    let mut retry_at: Option<Instant> = None;
    loop {
        let sleep = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now));
        tokio::select! {
            r = input.changed() => if r.is_err() { return },
            r = leader_changes.changed() => if r.is_err() { return },
            _ = sleep, if retry_at.is_some() => {}
        }
        retry_at = None;
        if !leadership.is_leader() {
            written.clear();
            gateway_written.clear();
            continue;
        }
        let state = input.borrow_and_update().clone();
        let refs: Vec<&Ingress> = state.ingresses.iter().map(|i| i.as_ref()).collect();
        let mut ok = true;
        let plan = status::plan(&refs, &state.served, &state.left, state.desired.as_deref());
        for change in plan {
            let want = change.entries.as_deref().map(status::addrs);
            let done = (change.resource_version.clone(), want);
            if written.get(&change.ingress) == Some(&done) {
                continue;
            }
            if !leadership.is_leader() {
                break;
            }
            let target = &change.ingress;
            match tokio::time::timeout(WRITE_TIMEOUT, status::apply(&client, &change)).await {
                Ok(Ok(())) => {
                    match &change.entries {
                        Some(entries) => {
                            tracing::info!(ingress = %target, address = ?status::addrs(entries), "Ingress status set")
                        }
                        None => {
                            tracing::info!(ingress = %target, "Ingress status cleared (no longer of our class)")
                        }
                    }
                    written.insert(target.clone(), done);
                    stats.status_write("Ingress", true);
                }
                // Deleted meanwhile: nothing to do (and not counted).
                Ok(Err(kube::Error::Api(s))) if s.is_not_found() => {}
                Ok(Err(e)) => {
                    tracing::warn!(ingress = %target, "writing Ingress status failed: {e}; retrying in {retry:?}");
                    stats.status_write("Ingress", false);
                    ok = false;
                }
                Err(_) => {
                    tracing::warn!(ingress = %target, "writing Ingress status: the API server did not answer within {WRITE_TIMEOUT:?}; retrying in {retry:?}");
                    stats.status_write("Ingress", false);
                    ok = false;
                }
            }
        }
        let present: BTreeSet<IngressRef> = refs.iter().map(|i| status::ingress_ref(i)).collect();
        written.retain(|k, _| present.contains(k));

        for change in &state.gateway {
            if gateway_written.get(&change.target) == Some(&change.status) {
                continue;
            }
            if !leadership.is_leader() {
                break;
            }
            let target = &change.target;
            match tokio::time::timeout(WRITE_TIMEOUT, gateway_status::apply(&client, change)).await
            {
                Ok(Ok(())) => {
                    tracing::info!(object = %target, "Gateway API status written");
                    gateway_written.insert(target.clone(), change.status.clone());
                    stats.status_write(target.kind, true);
                }
                Ok(Err(kube::Error::Api(s))) if s.is_not_found() => {}
                Ok(Err(e)) => {
                    tracing::warn!(object = %target, "writing Gateway API status failed: {e}; retrying in {retry:?}");
                    stats.status_write(target.kind, false);
                    ok = false;
                }
                Err(_) => {
                    tracing::warn!(object = %target, "writing Gateway API status: the API server did not answer within {WRITE_TIMEOUT:?}; retrying in {retry:?}");
                    stats.status_write(target.kind, false);
                    ok = false;
                }
            }
        }
        let planned: BTreeSet<&gateway_status::Target> =
            state.gateway.iter().map(|c| &c.target).collect();
        gateway_written.retain(|k, _| planned.contains(k));

        for (ing, problem) in event_log.pending(&state.problems, &refs) {
            if !leadership.is_leader() {
                break;
            }
            let send = events::send(&client, &reporter, ing, problem);
            match tokio::time::timeout(WRITE_TIMEOUT, send).await {
                Ok(Ok(())) => {
                    event_log.mark_sent(ing, problem);
                    stats.event(true);
                }
                Ok(Err(e)) => {
                    tracing::warn!(ingress = %status::ingress_ref(ing), "sending an Event failed: {e}; retrying in {retry:?}");
                    stats.event(false);
                    ok = false;
                }
                Err(_) => {
                    tracing::warn!(ingress = %status::ingress_ref(ing), "sending an Event: the API server did not answer within {WRITE_TIMEOUT:?}");
                    stats.event(false);
                    ok = false;
                }
            }
        }
        if !ok {
            retry_at = Some(Instant::now() + retry);
        }
    }
}
