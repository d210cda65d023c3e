//! The four watched kinds, each a kube-runtime reflector: a watcher (list,
//! then watch from the list's resourceVersion; re-list on 410 Gone; resume
//! after a dropped connection) feeding an in-memory store. A re-list swaps
//! the store only once the new list is complete, so the last good state
//! keeps serving through errors and outages.

use super::backoff::Exponential;
use crate::objects::{KubeObject, SourcedObject};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
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
}

/// Drops what routing never reads: `managedFields` and kubectl's copy of
/// the last applied object, often most of an object's size.
fn strip<K: Resource>(object: &mut K) {
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
                        changed.notify_one()
                    }
                    Ok(Event::Init | Event::InitApply(_)) => {}
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
    /// Starts the four reflectors on `tasks`.
    pub(crate) fn start(
        client: &Client,
        backoff: WatchBackoff,
        changed: &Arc<Notify>,
        tasks: &mut JoinSet<()>,
    ) -> Stores {
        let config = watcher::Config::default().timeout(WATCH_TIMEOUT_SECS);
        Stores {
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
                config.labels(SERVICE_NAME_LABEL),
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
        self.slices.wait_until_ready().await
    }

    /// The objects that translation needs, as the manifests source would
    /// give them (`file: None`). Services and EndpointSlices are only taken
    /// from namespaces that have an Ingress: a backend is always in its
    /// Ingress's namespace.
    pub(crate) fn objects(&self, ingresses: &[Arc<Ingress>]) -> Vec<SourcedObject> {
        let namespaces: BTreeSet<String> = ingresses.iter().filter_map(|i| i.namespace()).collect();
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
        out
    }
}
