//! The four routing kinds, each a kube-runtime reflector: a watcher (list,
//! then watch from the list's resourceVersion; re-list on 410 Gone; resume
//! after a dropped connection) feeding an in-memory store. A re-list swaps
//! the store only once the new list is complete, so the last good state
//! keeps serving through errors and outages.
//!
//! TLS Secrets and the CA ConfigMaps of BackendTLSPolicies are watched the
//! same way but kept in stores of their own ([`RefStore`]) that hold only
//! the objects routing names: private keys of other applications, and the
//! cluster's other ConfigMaps, are never kept in memory.
//!
//! Namespaced kinds are watched cluster-wide, or, with `--watch-namespace`,
//! in each of the namespaces given (one reflector per kind and namespace,
//! read together as one store: [`Scoped`]); cluster-scoped kinds always
//! cluster-wide. Every watcher counts its errors and re-lists in
//! [`ApiStats`].

use super::backoff::Exponential;
use crate::gateway_api::{
    BackendTlsPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, ReferenceGrant, TlsRoute,
};
use crate::objects::{KubeObject, SourcedObject};
use crate::stats::ApiStats;
use crate::tls::TLS_SECRET_TYPE;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::NamespaceResourceScope;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use rauta_shared::config::{RouteKind, SecretRef};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// The label every EndpointSlice managed for a Service carries; slices
/// without it cannot belong to a Service an Ingress names.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Annotation `kubectl apply` stores a whole copy of the object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Server-side timeout of one watch request. The client gives up on a
/// silent connection 5 s after it, so a connection lost without a reset is
/// noticed within about a minute.
const WATCH_TIMEOUT_SECS: u32 = 60;

/// Retry delays of a failing watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchBackoff {
    /// First delay after an error.
    pub min: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for WatchBackoff {
    /// client-go's reflector: 800 ms doubling up to 30 s.
    fn default() -> Self {
        WatchBackoff {
            min: Duration::from_millis(800),
            max: Duration::from_secs(30),
        }
    }
}

/// Where one watcher of a namespaced kind looks: `None` is every namespace.
type Scope = Option<String>;

/// The scopes of namespaced kinds: every namespace (no `--watch-namespace`),
/// or each one given.
fn scopes(namespaces: &[String]) -> Vec<Scope> {
    if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    }
}

/// The API of a namespaced kind in one scope.
fn scoped_api<K>(client: &Client, scope: &Scope) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    match scope {
        None => Api::all(client.clone()),
        Some(ns) => Api::namespaced(client.clone(), ns),
    }
}

/// Readers of the four stores.
#[derive(Clone)]
pub(crate) struct Stores {
    pub(crate) ingresses: Scoped<Ingress>,
    pub(crate) classes: Store<IngressClass>,
    pub(crate) services: Scoped<Service>,
    pub(crate) slices: Scoped<EndpointSlice>,
    pub(crate) secrets: RefStore,
    /// The L4 services ConfigMaps the flags name (one watch each, by name).
    pub(crate) config_maps: Vec<Store<ConfigMap>>,
    /// The CA bundles BackendTLSPolicies name, and only those.
    pub(crate) ca_maps: RefStore<ConfigMap>,
    /// The Gateway API kinds, where the cluster has their CRDs.
    pub(crate) gateway: GatewayStores,
}

impl GatewayStores {
    /// The routes' status as the API server holds it, for the status
    /// writer to keep other controllers' entries.
    pub(crate) fn route_status(&self) -> super::gateway_status::CurrentStatus {
        let mut out = super::gateway_status::CurrentStatus::new();
        let mut put = |kind,
                       meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
                       status: &Option<serde_json::Value>| {
            if let (Some(ns), Some(name), Some(s)) = (&meta.namespace, &meta.name, status) {
                out.insert((kind, ns.clone(), name.clone()), s.clone());
            }
        };
        for r in self.routes.state() {
            put(RouteKind::HttpRoute, &r.metadata, &r.status);
        }
        for r in self.grpc_routes.state() {
            put(RouteKind::GrpcRoute, &r.metadata, &r.status);
        }
        for r in self.tls_routes.state() {
            put(RouteKind::TlsRoute, &r.metadata, &r.status);
        }
        for p in self.backend_tls.state() {
            put(RouteKind::BackendTlsPolicy, &p.metadata, &p.status);
        }
        out
    }
}

/// Readers of the Gateway API stores. Each kind may be missing from the
/// cluster (its CRD not installed): its store then stays empty and does
/// not hold up readiness.
#[derive(Clone)]
pub(crate) struct GatewayStores {
    pub(crate) classes: Optional<GatewayClass>,
    pub(crate) gateways: Optional<Gateway>,
    pub(crate) routes: Optional<HttpRoute>,
    pub(crate) grpc_routes: Optional<GrpcRoute>,
    pub(crate) tls_routes: Optional<TlsRoute>,
    pub(crate) backend_tls: Optional<BackendTlsPolicy>,
    pub(crate) grants: Optional<ReferenceGrant>,
    /// Namespace labels, for listeners' `allowedRoutes` selectors.
    pub(crate) namespaces: Store<Namespace>,
}

/// The stores of one kind's reflectors (one per watched namespace, or a
/// single cluster-wide one), read as one.
#[derive(Clone)]
pub(crate) struct Scoped<K: Resource<DynamicType = ()> + 'static> {
    parts: Vec<Store<K>>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Scoped<K> {
    /// Every object held.
    pub(crate) fn state(&self) -> Vec<Arc<K>> {
        self.parts.iter().flat_map(Store::state).collect()
    }

    /// The objects held that satisfy `keep`.
    pub(crate) fn state_filter(&self, keep: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        let keep = &keep;
        self.parts
            .iter()
            .flat_map(|s| s.state_filter(keep))
            .collect()
    }

    /// One object, if held.
    pub(crate) fn get(&self, key: &ObjectRef<K>) -> Option<Arc<K>> {
        self.parts.iter().find_map(|s| s.get(key))
    }

    /// How many objects are held.
    pub(crate) fn len(&self) -> usize {
        self.parts.iter().map(Store::len).sum()
    }

    /// Waits until every reflector has a complete first list.
    async fn wait_until_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        for part in &self.parts {
            part.wait_until_ready().await?;
        }
        Ok(())
    }
}

/// The stores of a kind the API server may not serve.
#[derive(Clone)]
pub(crate) struct Optional<K: Resource<DynamicType = ()> + 'static> {
    /// Each store with its flag, true while the API server answers 404
    /// for the kind there.
    parts: Vec<(Store<K>, tokio::sync::watch::Receiver<bool>)>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Optional<K> {
    /// Waits for a complete first list, or for the kind to be known absent,
    /// of every reflector.
    async fn wait_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        for (store, absent) in &self.parts {
            let mut absent = absent.clone();
            tokio::select! {
                ready = store.wait_until_ready() => ready?,
                // The sender lives in the watch task; if it ends, so did the store.
                _ = absent.wait_for(|a| *a) => {}
            }
        }
        Ok(())
    }

    /// The objects held now (none while the kind is absent).
    pub(crate) fn state(&self) -> Vec<Arc<K>> {
        self.parts.iter().flat_map(|(s, _)| s.state()).collect()
    }

    /// How many objects are held.
    fn len(&self) -> usize {
        self.parts.iter().map(|(s, _)| s.len()).sum()
    }
}

/// Drops what routing never reads: `managedFields` and kubectl's copy of
/// the last applied object, often most of an object's size.
pub(super) fn strip<K: Resource>(object: &mut K) {
    object.managed_fields_mut().clear();
    object.annotations_mut().remove(LAST_APPLIED);
}

/// A namespaced kind a reflector can watch.
pub(crate) trait Namespaced:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Namespaced for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// What starting reflectors needs.
struct Spawner<'a> {
    client: &'a Client,
    tasks: &'a mut JoinSet<()>,
    config: watcher::Config,
    backoff: WatchBackoff,
    changed: &'a Arc<Notify>,
    stats: &'a Arc<ApiStats>,
    namespaces: &'a [String],
}

impl Spawner<'_> {
    /// One reflector of a cluster-scoped kind.
    fn cluster<K>(&mut self) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let api = Api::all(self.client.clone());
        self.reflector(api, self.config.clone(), None)
    }

    /// A cluster-scoped kind that may be missing (a CRD): a 404 on its
    /// list is logged once, marks it absent, and is retried with backoff
    /// so that CRDs installed later are picked up.
    fn optional_cluster<K>(&mut self) -> Optional<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let (absent_tx, absent) = tokio::sync::watch::channel(false);
        let api = Api::all(self.client.clone());
        let store = self.reflector(api, self.config.clone(), Some(absent_tx));
        Optional {
            parts: vec![(store, absent)],
        }
    }

    /// Reflectors of a namespaced kind, one per scope, with `config`.
    fn scoped<K>(&mut self, config: &watcher::Config) -> Scoped<K>
    where
        K: Namespaced,
    {
        let parts = scopes(self.namespaces)
            .iter()
            .map(|scope| self.reflector(scoped_api(self.client, scope), config.clone(), None))
            .collect();
        Scoped { parts }
    }

    /// A namespaced kind that may be missing (a CRD), one reflector per scope.
    fn optional_scoped<K>(&mut self) -> Optional<K>
    where
        K: Namespaced,
    {
        let parts = scopes(self.namespaces)
            .iter()
            .map(|scope| {
                let (absent_tx, absent) = tokio::sync::watch::channel(false);
                let api = scoped_api(self.client, scope);
                let store = self.reflector(api, self.config.clone(), Some(absent_tx));
                (store, absent)
            })
            .collect();
        Optional { parts }
    }

    /// The reflector task: every change that reaches its store wakes
    /// `changed`; with `absent`, a 404 on the list marks the kind absent
    /// instead of being a failure.
    fn reflector<K>(
        &mut self,
        api: Api<K>,
        config: watcher::Config,
        absent: Option<tokio::sync::watch::Sender<bool>>,
    ) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let kind = K::kind(&());
        let resource = K::plural(&()).into_owned();
        let (changed, stats) = (self.changed.clone(), self.stats.clone());
        let (reader, writer) = reflector::store();
        let stream = watcher::watcher(api, config)
            .backoff(Exponential::new(self.backoff.min, self.backoff.max))
            .modify(strip::<K>);
        let stream = reflector::reflector(writer, stream);
        // Whether a list was started before: every later one is a restart.
        let mut listed = false;
        self.tasks.spawn(async move {
            stream
                .for_each(|event| {
                    match event {
                        // A list starts: the first, or again after 410 Gone or a failed
                        // list (not counted while the kind is known absent).
                        Ok(Event::Init) => {
                            let is_absent = absent.as_ref().is_some_and(|a| *a.borrow());
                            if listed && !is_absent {
                                stats.watch_restart(&resource);
                            }
                            listed = true;
                        }
                        // The store changed (a re-list lands whole at InitDone).
                        Ok(Event::Apply(_) | Event::Delete(_) | Event::InitDone) => {
                            if absent.as_ref().is_some_and(|a| a.send_replace(false)) {
                                tracing::info!(%kind, "the API server now serves this kind; watching it");
                            }
                            changed.notify_one()
                        }
                        Ok(Event::InitApply(_)) => {}
                        Err(watcher::Error::InitialListFailed(kube::Error::Api(status)))
                            if status.code == 404 && absent.is_some() =>
                        {
                            if absent.as_ref().is_some_and(|a| !a.send_replace(true)) {
                                tracing::info!(
                                    %kind,
                                    "the API server does not serve this kind (its CRD is not installed); Gateway API objects of this kind are not served until it is"
                                );
                                changed.notify_one();
                            }
                        }
                        Err(e) => watch_failed(&stats, &kind, &resource, &e),
                    }
                    futures::future::ready(())
                })
                .await;
        });
        reader
    }
}

/// Counts and logs one watcher error.
fn watch_failed(stats: &ApiStats, kind: &str, resource: &str, error: &watcher::Error) {
    stats.watch_error(resource);
    match error {
        watcher::Error::WatchError(status) if status.code == 410 => {
            tracing::info!(%kind, "watch resourceVersion expired (410 Gone); listing again");
        }
        e => tracing::warn!(
            %kind,
            "watching the Kubernetes API failed: {e}; retrying with backoff, the last good table keeps serving"
        ),
    }
}

impl Stores {
    /// Starts the reflectors, the Secret watchers and one watcher per
    /// named ConfigMap on `tasks`; namespaced kinds in `namespaces` only
    /// (empty: every namespace).
    pub(crate) fn start(
        client: &Client,
        config_maps: &[&crate::ObjectName],
        namespaces: &[String],
        backoff: WatchBackoff,
        changed: &Arc<Notify>,
        stats: &Arc<ApiStats>,
        tasks: &mut JoinSet<()>,
    ) -> Stores {
        let config = watcher::Config::default().timeout(WATCH_TIMEOUT_SECS);
        let mut spawn = Spawner {
            client,
            tasks,
            config: config.clone(),
            backoff,
            changed,
            stats,
            namespaces,
        };
        let config_maps = config_maps
            .iter()
            .map(|name| {
                let api = Api::namespaced(client.clone(), &name.namespace);
                let by_name = config
                    .clone()
                    .fields(&format!("metadata.name={}", name.name));
                spawn.reflector(api, by_name, None)
            })
            .collect();
        let gateway = GatewayStores {
            classes: spawn.optional_cluster(),
            gateways: spawn.optional_scoped(),
            routes: spawn.optional_scoped(),
            grpc_routes: spawn.optional_scoped(),
            tls_routes: spawn.optional_scoped(),
            backend_tls: spawn.optional_scoped(),
            grants: spawn.optional_scoped(),
            namespaces: spawn.cluster(),
        };
        let secrets = RefStore::watch(
            &mut spawn,
            config.clone().fields(&format!("type={TLS_SECRET_TYPE}")),
        );
        let ca_maps = RefStore::watch(&mut spawn, config.clone());
        Stores {
            ca_maps,
            gateway,
            config_maps,
            ingresses: spawn.scoped(&config),
            classes: spawn.cluster(),
            services: spawn.scoped(&config),
            slices: spawn.scoped(&config.clone().labels(SERVICE_NAME_LABEL)),
            secrets,
        }
    }

    /// Waits until every store holds a complete first list.
    pub(crate) async fn wait_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.ingresses.wait_until_ready().await?;
        self.classes.wait_until_ready().await?;
        self.services.wait_until_ready().await?;
        self.slices.wait_until_ready().await?;
        self.secrets.wait_until_ready().await;
        self.ca_maps.wait_until_ready().await;
        for map in &self.config_maps {
            map.wait_until_ready().await?;
        }
        let g = &self.gateway;
        g.classes.wait_ready().await?;
        g.gateways.wait_ready().await?;
        g.routes.wait_ready().await?;
        g.grpc_routes.wait_ready().await?;
        g.tls_routes.wait_ready().await?;
        g.backend_tls.wait_ready().await?;
        g.grants.wait_ready().await?;
        g.namespaces.wait_until_ready().await?;
        Ok(())
    }

    /// Records how many objects each store holds (Secrets: those kept).
    pub(crate) fn count_objects(&self, stats: &ApiStats) {
        let g = &self.gateway;
        for (kind, n) in [
            ("Ingress", self.ingresses.len()),
            ("IngressClass", self.classes.len()),
            ("Service", self.services.len()),
            ("EndpointSlice", self.slices.len()),
            ("Secret", self.secrets.held_count()),
            (
                "ConfigMap",
                self.config_maps.iter().map(Store::len).sum::<usize>() + self.ca_maps.held_count(),
            ),
            ("Namespace", g.namespaces.len()),
            ("GatewayClass", g.classes.len()),
            ("Gateway", g.gateways.len()),
            ("HTTPRoute", g.routes.len()),
            ("GRPCRoute", g.grpc_routes.len()),
            ("TLSRoute", g.tls_routes.len()),
            ("BackendTLSPolicy", g.backend_tls.len()),
            ("ReferenceGrant", g.grants.len()),
        ] {
            stats.set_objects(kind, n);
        }
    }

    /// The objects that translation needs, as the manifests source would
    /// give them (`file: None`). Services and EndpointSlices are only taken
    /// from namespaces that have an Ingress (a backend is always in its
    /// Ingress's namespace) or that an L4 services entry names.
    pub(crate) fn objects(&self, ingresses: &[Arc<Ingress>]) -> Vec<SourcedObject> {
        let mut namespaces: BTreeSet<String> =
            ingresses.iter().filter_map(|i| i.namespace()).collect();
        let routes = self.gateway.routes.state();
        let grpc_routes = self.gateway.grpc_routes.state();
        let tls_routes = self.gateway.tls_routes.state();
        // A route's backends are in its namespace or, granted, another.
        for route in &routes {
            let ns = route.namespace().unwrap_or_default();
            let refs = (route.spec.rules.iter().flatten()).flat_map(|r| &r.backend_refs);
            namespaces.extend(refs.filter_map(|b| b.target.namespace.clone()));
            namespaces.insert(ns);
        }
        for route in &grpc_routes {
            let refs = route.spec.rules.iter().flat_map(|r| &r.backend_refs);
            namespaces.extend(refs.filter_map(|b| b.target.namespace.clone()));
            namespaces.insert(route.namespace().unwrap_or_default());
        }
        for route in &tls_routes {
            let refs = route.spec.rules.iter().flat_map(|r| &r.backend_refs);
            namespaces.extend(refs.filter_map(|b| b.target.namespace.clone()));
            namespaces.insert(route.namespace().unwrap_or_default());
        }
        let maps: Vec<Arc<ConfigMap>> = self.config_maps.iter().flat_map(Store::state).collect();
        for map in &maps {
            let values = map.data.iter().flat_map(|d| d.values());
            namespaces.extend(values.filter_map(|v| Some(v.split_once('/')?.0.trim().to_string())));
        }
        let in_use = |ns: Option<String>| ns.is_some_and(|ns| namespaces.contains(&ns));
        let mut out = Vec::new();
        let mut push = |object: KubeObject| out.push(SourcedObject { file: None, object });
        for ing in ingresses {
            push(KubeObject::Ingress((**ing).clone()));
        }
        for class in self.classes.state() {
            push(KubeObject::IngressClass((*class).clone()));
        }
        for svc in self.services.state_filter(|s| in_use(s.namespace())) {
            push(KubeObject::Service((*svc).clone()));
        }
        for slice in self.slices.state_filter(|s| in_use(s.namespace())) {
            push(KubeObject::EndpointSlice((*slice).clone()));
        }
        for secret in self.secrets.held() {
            push(KubeObject::Secret((*secret).clone()));
        }
        // CA bundles first: an L4 map of the same name, listed after,
        // is the one the index keeps (it is the same object).
        for map in self.ca_maps.held() {
            push(KubeObject::ConfigMap((*map).clone()));
        }
        for map in maps {
            push(KubeObject::ConfigMap((*map).clone()));
        }
        let g = &self.gateway;
        for class in g.classes.state() {
            push(KubeObject::GatewayClass((*class).clone()));
        }
        for gateway in g.gateways.state() {
            push(KubeObject::Gateway((*gateway).clone()));
        }
        for route in routes {
            push(KubeObject::HttpRoute((*route).clone()));
        }
        for route in grpc_routes {
            push(KubeObject::GrpcRoute((*route).clone()));
        }
        for route in tls_routes {
            push(KubeObject::TlsRoute((*route).clone()));
        }
        for policy in g.backend_tls.state() {
            push(KubeObject::BackendTlsPolicy((*policy).clone()));
        }
        for grant in g.grants.state() {
            push(KubeObject::ReferenceGrant((*grant).clone()));
        }
        for ns in g.namespaces.state() {
            push(KubeObject::Namespace((*ns).clone()));
        }
        out
    }
}

/// Namespace and name of an object.
type ObjectKey = (String, String);

fn object_key<K: Resource>(object: &K) -> ObjectKey {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// An object kind kept only where routing names it: TLS Secrets (private
/// keys of other applications are never kept in memory) and the CA
/// ConfigMaps of BackendTLSPolicies.
pub(crate) trait Referenced: Namespaced {
    /// Whether an object of this name may be used at all.
    fn usable(&self) -> bool;
    /// Until the first reconcile says what is named, everything listed
    /// is kept (else nothing: what is named is then fetched).
    const KEEP_ALL_AT_FIRST: bool;
}

impl Referenced for Secret {
    const KEEP_ALL_AT_FIRST: bool = true;

    fn usable(&self) -> bool {
        self.type_.as_deref() == Some(TLS_SECRET_TYPE)
    }
}

impl Referenced for ConfigMap {
    // Every ConfigMap of the cluster would be held for a moment.
    const KEEP_ALL_AT_FIRST: bool = false;

    fn usable(&self) -> bool {
        true
    }
}

/// A list in progress: the names seen and the objects kept.
type Listing<K> = (BTreeSet<ObjectKey>, BTreeMap<ObjectKey, Arc<K>>);

/// What a referenced-objects store knows.
#[derive(Debug)]
struct RefState<K> {
    /// The objects routing names; `None` until the first
    /// reconcile says, when everything listed is kept.
    referenced: Option<BTreeSet<ObjectKey>>,
    /// Every object of the watch that exists, by name only.
    existing: BTreeSet<ObjectKey>,
    /// The referenced ones, whole.
    held: BTreeMap<ObjectKey, Arc<K>>,
    /// Being fetched because they became referenced after they were seen.
    fetching: BTreeSet<ObjectKey>,
    /// The lists in progress, by the scope of their watcher: what each
    /// brought so far.
    listing: BTreeMap<Scope, Listing<K>>,
    /// The scopes with a complete first list.
    listed: BTreeSet<Scope>,
    /// How many scopes there are (one watcher each).
    scopes: usize,
}

impl<K> Default for RefState<K> {
    fn default() -> Self {
        RefState {
            referenced: None,
            existing: BTreeSet::new(),
            held: BTreeMap::new(),
            fetching: BTreeSet::new(),
            listing: BTreeMap::new(),
            listed: BTreeSet::new(),
            scopes: 0,
        }
    }
}

impl<K> RefState<K> {
    fn wanted(&self, key: &ObjectKey) -> bool {
        self.referenced.as_ref().is_none_or(|r| r.contains(key))
    }
}

/// The objects of kind `K` that routing names (a watcher per scope; for
/// Secrets with field selector `type=kubernetes.io/tls`); every other one
/// is dropped as it arrives, only its name kept.
pub(crate) struct RefStore<K = Secret> {
    state: Arc<Mutex<RefState<K>>>,
    ready: Arc<tokio::sync::watch::Sender<bool>>,
}

impl<K> Clone for RefStore<K> {
    fn clone(&self) -> Self {
        RefStore {
            state: self.state.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<K> Default for RefStore<K> {
    fn default() -> Self {
        RefStore {
            state: Default::default(),
            ready: Default::default(),
        }
    }
}

impl<K: Referenced> RefStore<K> {
    fn lock(&self) -> MutexGuard<'_, RefState<K>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts one watcher task per scope; every change to a held Secret
    /// wakes `changed`.
    fn watch(spawn: &mut Spawner<'_>, config: watcher::Config) -> RefStore<K> {
        let scopes = scopes(spawn.namespaces);
        let store = RefStore::default();
        store.lock().scopes = scopes.len();
        if !K::KEEP_ALL_AT_FIRST {
            store.lock().referenced = Some(BTreeSet::new());
        }
        for scope in scopes {
            let writer = store.clone();
            let (changed, stats) = (spawn.changed.clone(), spawn.stats.clone());
            let api: Api<K> = scoped_api(spawn.client, &scope);
            let stream = watcher::watcher(api, config.clone())
                .backoff(Exponential::new(spawn.backoff.min, spawn.backoff.max))
                .modify(strip::<K>);
            let (kind, resource) = (K::kind(&()).into_owned(), K::plural(&()).into_owned());
            let mut listed = false;
            spawn.tasks.spawn(async move {
                stream
                    .for_each(|event| {
                        match event {
                            Ok(event) => {
                                if matches!(event, Event::Init) {
                                    if listed {
                                        stats.watch_restart(&resource);
                                    }
                                    listed = true;
                                }
                                if writer.apply(event, &scope) {
                                    changed.notify_one();
                                }
                            }
                            Err(e) => watch_failed(&stats, &kind, &resource, &e),
                        }
                        futures::future::ready(())
                    })
                    .await;
            });
        }
        store
    }

    /// Applies one watch event of the watcher of `scope`; true when a held
    /// or wanted object changed.
    fn apply(&self, event: Event<K>, scope: &Scope) -> bool {
        let mut st = self.lock();
        match event {
            Event::Init => {
                st.listing
                    .insert(scope.clone(), (BTreeSet::new(), BTreeMap::new()));
                false
            }
            Event::InitApply(secret) => {
                let key = object_key(&secret);
                let wanted = st.wanted(&key);
                if let Some((existing, held)) = st.listing.get_mut(scope) {
                    existing.insert(key.clone());
                    if wanted {
                        held.insert(key, Arc::new(secret));
                    }
                }
                false
            }
            Event::InitDone => {
                // The list replaces what this scope had, and only that.
                if let Some((existing, held)) = st.listing.remove(scope) {
                    let outside = |k: &ObjectKey| scope.as_ref().is_some_and(|ns| &k.0 != ns);
                    st.existing.retain(outside);
                    st.existing.extend(existing);
                    st.held.retain(|k, _| outside(k));
                    st.held.extend(held);
                }
                st.listed.insert(scope.clone());
                let ready = st.listed.len() >= st.scopes;
                drop(st);
                if ready {
                    self.ready.send_replace(true);
                }
                true
            }
            Event::Apply(secret) => {
                let key = object_key(&secret);
                st.existing.insert(key.clone());
                if st.wanted(&key) {
                    st.held.insert(key, Arc::new(secret));
                    true
                } else {
                    false
                }
            }
            Event::Delete(secret) => {
                let key = object_key(&secret);
                st.existing.remove(&key);
                st.held.remove(&key).is_some()
            }
        }
    }

    /// Waits for the first complete list of every scope.
    async fn wait_until_ready(&self) {
        let mut ready = self.ready.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _ = ready.wait_for(|r| *r).await;
    }

    /// The Secrets held now.
    fn held(&self) -> Vec<Arc<K>> {
        self.lock().held.values().cloned().collect()
    }

    /// How many Secrets are held now.
    fn held_count(&self) -> usize {
        self.lock().held.len()
    }

    /// Keeps only the Secrets in `referenced`; returns those that exist
    /// but are not held (seen while nobody named them), to be fetched.
    pub(crate) fn set_referenced(&self, referenced: &[SecretRef]) -> Vec<SecretRef> {
        let mut st = self.lock();
        let keys: BTreeSet<ObjectKey> = referenced
            .iter()
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect();
        st.held.retain(|k, _| keys.contains(k));
        let missing: Vec<ObjectKey> = keys
            .iter()
            .filter(|k| st.existing.contains(*k) && !st.held.contains_key(*k))
            .filter(|k| !st.fetching.contains(*k))
            .cloned()
            .collect();
        st.fetching.extend(missing.iter().cloned());
        st.referenced = Some(keys);
        missing
            .into_iter()
            .map(|(namespace, name)| SecretRef { namespace, name })
            .collect()
    }

    /// Stores a fetched object if it is still named and usable; `true` when held.
    pub(crate) fn fetched(&self, key: &SecretRef, secret: Option<K>) -> bool {
        let mut st = self.lock();
        let key = (key.namespace.clone(), key.name.clone());
        st.fetching.remove(&key);
        let Some(secret) = secret.filter(K::usable) else {
            return false;
        };
        if !st.wanted(&key) {
            return false;
        }
        st.held.insert(key, Arc::new(secret));
        true
    }
}
