//! The four routing kinds, each a kube-runtime reflector: a watcher (list,
//! then watch from the list's resourceVersion; re-list on 410 Gone; resume
//! after a dropped connection) feeding an in-memory store. A re-list swaps
//! the store only once the new list is complete, so the last good state
//! keeps serving through errors and outages.
//!
//! TLS Secrets are watched the same way but kept in a store of their own
//! ([`SecretStore`]) that holds only the Secrets served Ingresses name:
//! private keys of other applications are never kept in memory.

use super::backoff::Exponential;
use crate::gateway_api::{Gateway, GatewayClass, HttpRoute, ReferenceGrant};
use crate::objects::{KubeObject, SourcedObject};
use crate::tls::TLS_SECRET_TYPE;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use rauta_shared::config::SecretRef;
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

/// Readers of the four stores.
#[derive(Clone)]
pub(crate) struct Stores {
    pub(crate) ingresses: Store<Ingress>,
    pub(crate) classes: Store<IngressClass>,
    pub(crate) services: Store<Service>,
    pub(crate) slices: Store<EndpointSlice>,
    pub(crate) secrets: SecretStore,
    /// The L4 services ConfigMaps the flags name (one watch each, by name).
    pub(crate) config_maps: Vec<Store<ConfigMap>>,
    /// The Gateway API kinds, where the cluster has their CRDs.
    pub(crate) gateway: GatewayStores,
}

/// Readers of the Gateway API stores. Each kind may be missing from the
/// cluster (its CRD not installed): its store then stays empty and does
/// not hold up readiness.
#[derive(Clone)]
pub(crate) struct GatewayStores {
    pub(crate) classes: Optional<GatewayClass>,
    pub(crate) gateways: Optional<Gateway>,
    pub(crate) routes: Optional<HttpRoute>,
    pub(crate) grants: Optional<ReferenceGrant>,
    /// Namespace labels, for listeners' `allowedRoutes` selectors.
    pub(crate) namespaces: Store<Namespace>,
}

/// A store of a kind the API server may not serve.
#[derive(Clone)]
pub(crate) struct Optional<K: Resource<DynamicType = ()> + 'static> {
    pub(crate) store: Store<K>,
    /// True while the API server answers 404 for the kind.
    absent: tokio::sync::watch::Receiver<bool>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Optional<K> {
    /// Waits for a complete first list, or for the kind to be known absent.
    async fn wait_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        let mut absent = self.absent.clone();
        tokio::select! {
            ready = self.store.wait_until_ready() => ready,
            // The sender lives in the watch task; if it ends, so did the store.
            _ = absent.wait_for(|a| *a) => Ok(()),
        }
    }

    /// The objects held now (none while the kind is absent).
    pub(crate) fn state(&self) -> Vec<Arc<K>> {
        self.store.state()
    }
}

/// Starts a reflector for a kind that may be missing (a CRD): a 404 on
/// its list is logged once, marks it absent, and is retried with backoff
/// so that CRDs installed later are picked up.
fn reflect_optional<K>(
    tasks: &mut JoinSet<()>,
    api: Api<K>,
    config: watcher::Config,
    backoff: WatchBackoff,
    changed: Arc<Notify>,
) -> Optional<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (absent_tx, absent) = tokio::sync::watch::channel(false);
    let store = spawn_reflector(tasks, api, config, backoff, changed, Some(absent_tx));
    Optional { store, absent }
}

/// Drops what routing never reads: `managedFields` and kubectl's copy of
/// the last applied object, often most of an object's size.
pub(super) fn strip<K: Resource>(object: &mut K) {
    object.managed_fields_mut().clear();
    object.annotations_mut().remove(LAST_APPLIED);
}

/// Starts one reflector task; every change that reaches its store wakes `changed`.
fn reflect<K>(
    tasks: &mut JoinSet<()>,
    api: Api<K>,
    config: watcher::Config,
    backoff: WatchBackoff,
    changed: Arc<Notify>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    spawn_reflector(tasks, api, config, backoff, changed, None)
}

/// The reflector task behind [`reflect`] and [`reflect_optional`]; with
/// `absent`, a 404 on the list marks the kind absent instead of being a
/// failure.
fn spawn_reflector<K>(
    tasks: &mut JoinSet<()>,
    api: Api<K>,
    config: watcher::Config,
    backoff: WatchBackoff,
    changed: Arc<Notify>,
    absent: Option<tokio::sync::watch::Sender<bool>>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let kind = K::kind(&());
    let (reader, writer) = reflector::store();
    let stream = watcher::watcher(api, config)
        .backoff(Exponential::new(backoff.min, backoff.max))
        .modify(strip::<K>);
    let stream = reflector::reflector(writer, stream);
    tasks.spawn(async move {
        stream
            .for_each(|event| {
                match event {
                    // The store changed (a re-list lands whole at InitDone).
                    Ok(Event::Apply(_) | Event::Delete(_) | Event::InitDone) => {
                        if absent.as_ref().is_some_and(|a| a.send_replace(false)) {
                            tracing::info!(%kind, "the API server now serves this kind; watching it");
                        }
                        changed.notify_one()
                    }
                    Ok(Event::Init | Event::InitApply(_)) => {}
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
                    Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                        tracing::info!(%kind, "watch resourceVersion expired (410 Gone); listing again");
                    }
                    Err(e) => tracing::warn!(
                        %kind,
                        "watching the Kubernetes API failed: {e}; retrying with backoff, the last good table keeps serving"
                    ),
                }
                futures::future::ready(())
            })
            .await;
    });
    reader
}

impl Stores {
    /// Starts the four reflectors, the Secret watcher and one watcher per
    /// named ConfigMap on `tasks`.
    pub(crate) fn start(
        client: &Client,
        config_maps: &[&crate::ObjectName],
        backoff: WatchBackoff,
        changed: &Arc<Notify>,
        tasks: &mut JoinSet<()>,
    ) -> Stores {
        let config = watcher::Config::default().timeout(WATCH_TIMEOUT_SECS);
        let config_maps = config_maps
            .iter()
            .map(|name| {
                reflect(
                    tasks,
                    Api::namespaced(client.clone(), &name.namespace),
                    config
                        .clone()
                        .fields(&format!("metadata.name={}", name.name)),
                    backoff,
                    changed.clone(),
                )
            })
            .collect();
        let gateway = GatewayStores {
            classes: reflect_optional(
                tasks,
                Api::all(client.clone()),
                config.clone(),
                backoff,
                changed.clone(),
            ),
            gateways: reflect_optional(
                tasks,
                Api::all(client.clone()),
                config.clone(),
                backoff,
                changed.clone(),
            ),
            routes: reflect_optional(
                tasks,
                Api::all(client.clone()),
                config.clone(),
                backoff,
                changed.clone(),
            ),
            grants: reflect_optional(
                tasks,
                Api::all(client.clone()),
                config.clone(),
                backoff,
                changed.clone(),
            ),
            namespaces: reflect(
                tasks,
                Api::all(client.clone()),
                config.clone(),
                backoff,
                changed.clone(),
            ),
        };
        Stores {
            gateway,
            config_maps,
            ingresses: reflect(
                tasks,
                Api::all(client.clone()),
                config.clone(),
                backoff,
                changed.clone(),
            ),
            classes: reflect(
                tasks,
                Api::all(client.clone()),
                config.clone(),
                backoff,
                changed.clone(),
            ),
            services: reflect(
                tasks,
                Api::all(client.clone()),
                config.clone(),
                backoff,
                changed.clone(),
            ),
            slices: reflect(
                tasks,
                Api::all(client.clone()),
                config.clone().labels(SERVICE_NAME_LABEL),
                backoff,
                changed.clone(),
            ),
            secrets: SecretStore::watch(
                tasks,
                Api::all(client.clone()),
                config.fields(&format!("type={TLS_SECRET_TYPE}")),
                backoff,
                changed.clone(),
            ),
        }
    }

    /// Waits until every store holds a complete first list.
    pub(crate) async fn wait_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.ingresses.wait_until_ready().await?;
        self.classes.wait_until_ready().await?;
        self.services.wait_until_ready().await?;
        self.slices.wait_until_ready().await?;
        self.secrets.wait_until_ready().await;
        for map in &self.config_maps {
            map.wait_until_ready().await?;
        }
        let g = &self.gateway;
        g.classes.wait_ready().await?;
        g.gateways.wait_ready().await?;
        g.routes.wait_ready().await?;
        g.grants.wait_ready().await?;
        g.namespaces.wait_until_ready().await?;
        Ok(())
    }

    /// The objects that translation needs, as the manifests source would
    /// give them (`file: None`). Services and EndpointSlices are only taken
    /// from namespaces that have an Ingress (a backend is always in its
    /// Ingress's namespace) or that an L4 services entry names.
    pub(crate) fn objects(&self, ingresses: &[Arc<Ingress>]) -> Vec<SourcedObject> {
        let mut namespaces: BTreeSet<String> =
            ingresses.iter().filter_map(|i| i.namespace()).collect();
        let routes = self.gateway.routes.state();
        // An HTTPRoute's backends are in its namespace or, granted, another.
        for route in &routes {
            let ns = route.namespace().unwrap_or_default();
            let refs = (route.spec.rules.iter().flatten()).flat_map(|r| &r.backend_refs);
            namespaces.extend(refs.filter_map(|b| b.target.namespace.clone()));
            namespaces.insert(ns);
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
        for grant in g.grants.state() {
            push(KubeObject::ReferenceGrant((*grant).clone()));
        }
        for ns in g.namespaces.state() {
            push(KubeObject::Namespace((*ns).clone()));
        }
        out
    }
}

/// Namespace and name of a Secret.
type SecretKey = (String, String);

fn secret_key(secret: &Secret) -> SecretKey {
    (secret.namespace().unwrap_or_default(), secret.name_any())
}

/// A list in progress: the names seen and the Secrets kept.
type Listing = (BTreeSet<SecretKey>, BTreeMap<SecretKey, Arc<Secret>>);

/// What the Secret store knows.
#[derive(Debug, Default)]
struct SecretState {
    /// The Secrets served Ingresses name; `None` until the first
    /// reconcile says, when everything listed is kept.
    referenced: Option<BTreeSet<SecretKey>>,
    /// Every TLS Secret that exists, by name only.
    existing: BTreeSet<SecretKey>,
    /// The referenced ones, whole.
    held: BTreeMap<SecretKey, Arc<Secret>>,
    /// Being fetched because they became referenced after they were seen.
    fetching: BTreeSet<SecretKey>,
    /// A list in progress: what it brought so far.
    listing: Option<Listing>,
}

impl SecretState {
    fn wanted(&self, key: &SecretKey) -> bool {
        self.referenced.as_ref().is_none_or(|r| r.contains(key))
    }
}

/// The TLS Secrets served Ingresses name (a watcher with field selector
/// `type=kubernetes.io/tls`); every other Secret is dropped as it arrives.
#[derive(Clone, Default)]
pub(crate) struct SecretStore {
    state: Arc<Mutex<SecretState>>,
    ready: Arc<tokio::sync::watch::Sender<bool>>,
}

impl SecretStore {
    fn lock(&self) -> MutexGuard<'_, SecretState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the watcher task; every change to a held Secret wakes `changed`.
    fn watch(
        tasks: &mut JoinSet<()>,
        api: Api<Secret>,
        config: watcher::Config,
        backoff: WatchBackoff,
        changed: Arc<Notify>,
    ) -> SecretStore {
        let store = SecretStore::default();
        let writer = store.clone();
        let stream = watcher::watcher(api, config)
            .backoff(Exponential::new(backoff.min, backoff.max))
            .modify(strip::<Secret>);
        tasks.spawn(async move {
            stream
                .for_each(|event| {
                    match event {
                        Ok(event) => {
                            if writer.apply(event) {
                                changed.notify_one();
                            }
                        }
                        Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                            tracing::info!(kind = "Secret", "watch resourceVersion expired (410 Gone); listing again");
                        }
                        Err(e) => tracing::warn!(
                            kind = "Secret",
                            "watching the Kubernetes API failed: {e}; retrying with backoff, the last good table keeps serving"
                        ),
                    }
                    futures::future::ready(())
                })
                .await;
        });
        store
    }

    /// Applies one watch event; true when a held or wanted Secret changed.
    fn apply(&self, event: Event<Secret>) -> bool {
        let mut st = self.lock();
        match event {
            Event::Init => {
                st.listing = Some((BTreeSet::new(), BTreeMap::new()));
                false
            }
            Event::InitApply(secret) => {
                let key = secret_key(&secret);
                let wanted = st.wanted(&key);
                if let Some((existing, held)) = st.listing.as_mut() {
                    existing.insert(key.clone());
                    if wanted {
                        held.insert(key, Arc::new(secret));
                    }
                }
                false
            }
            Event::InitDone => {
                if let Some((existing, held)) = st.listing.take() {
                    st.existing = existing;
                    st.held = held;
                }
                drop(st);
                self.ready.send_replace(true);
                true
            }
            Event::Apply(secret) => {
                let key = secret_key(&secret);
                st.existing.insert(key.clone());
                if st.wanted(&key) {
                    st.held.insert(key, Arc::new(secret));
                    true
                } else {
                    false
                }
            }
            Event::Delete(secret) => {
                let key = secret_key(&secret);
                st.existing.remove(&key);
                st.held.remove(&key).is_some()
            }
        }
    }

    /// Waits for the first complete list.
    async fn wait_until_ready(&self) {
        let mut ready = self.ready.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _ = ready.wait_for(|r| *r).await;
    }

    /// The Secrets held now.
    fn held(&self) -> Vec<Arc<Secret>> {
        self.lock().held.values().cloned().collect()
    }

    /// Keeps only the Secrets in `referenced`; returns those that exist
    /// but are not held (seen while nobody named them), to be fetched.
    pub(crate) fn set_referenced(&self, referenced: &[SecretRef]) -> Vec<SecretRef> {
        let mut st = self.lock();
        let keys: BTreeSet<SecretKey> = referenced
            .iter()
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect();
        st.held.retain(|k, _| keys.contains(k));
        let missing: Vec<SecretKey> = keys
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

    /// Stores a fetched Secret if it is still named; `true` when held.
    pub(crate) fn fetched(&self, key: &SecretRef, secret: Option<Secret>) -> bool {
        let mut st = self.lock();
        let key = (key.namespace.clone(), key.name.clone());
        st.fetching.remove(&key);
        let Some(secret) = secret.filter(|s| s.type_.as_deref() == Some(TLS_SECRET_TYPE)) else {
            return false;
        };
        if !st.wanted(&key) {
            return false;
        }
        st.held.insert(key, Arc::new(secret));
        true
    }
}
