//! One read-only look at the API server, for `rauta check --kubernetes`:
//! list Ingresses, IngressClasses, Services, EndpointSlices, Namespaces
//! and the Gateway API kinds (where served) once, then get the TLS Secrets
//! that served Ingresses and our Gateways name. Only GETs: no watch, no
//! status, no Events, no Lease. With `--watch-namespace`, namespaced kinds
//! are listed in those namespaces only, as `serve` would watch them.

use super::client::{self, ClientSource};
use super::watch::strip;
use crate::gateway_api::{
    BackendTlsPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, ReferenceGrant, TlsRoute,
};
use crate::objects::{KubeObject, SourcedObject};
use crate::translate::referenced_secrets;
use crate::ClassSelector;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::NamespaceResourceScope;
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Objects per list request; larger clusters are read in pages.
const PAGE: u32 = 500;
/// The label every EndpointSlice managed for a Service carries.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The objects translation needs, as the API server has them now;
/// namespaced kinds only in `namespaces` (empty: every namespace).
///
/// Fails with a message naming the source or the kind when the client
/// cannot be configured, a namespace or a flag's object is outside them
/// ([`super::check_namespaces`]), or a request fails.
pub fn snapshot(
    source: &ClientSource,
    sel: &ClassSelector,
    namespaces: &[String],
) -> Result<Vec<SourcedObject>, String> {
    super::check_namespaces(namespaces, sel)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async {
        let client = client::connect(source).await?;
        read(&client, sel, namespaces).await
    })
}

async fn read(
    client: &Client,
    sel: &ClassSelector,
    namespaces: &[String],
) -> Result<Vec<SourcedObject>, String> {
    let every = ListParams::default();
    let mut objects = Vec::new();
    let mut push = |object: KubeObject| objects.push(SourcedObject { file: None, object });
    for ing in list_each::<Ingress>(&apis(client, namespaces), &every).await? {
        push(KubeObject::Ingress(ing));
    }
    for class in list::<IngressClass>(&all_of(client), &every).await? {
        push(KubeObject::IngressClass(class));
    }
    for svc in list_each::<Service>(&apis(client, namespaces), &every).await? {
        push(KubeObject::Service(svc));
    }
    let slices = ListParams::default().labels(SERVICE_NAME_LABEL);
    for slice in list_each::<EndpointSlice>(&apis(client, namespaces), &slices).await? {
        push(KubeObject::EndpointSlice(slice));
    }
    for ns in list::<Namespace>(&all_of(client), &every).await? {
        push(KubeObject::Namespace(ns));
    }
    // The Gateway API kinds exist only where their CRDs are installed.
    for class in list_optional::<GatewayClass>(&[all_of(client)], &every).await? {
        push(KubeObject::GatewayClass(class));
    }
    for gateway in list_optional::<Gateway>(&apis(client, namespaces), &every).await? {
        push(KubeObject::Gateway(gateway));
    }
    for route in list_optional::<HttpRoute>(&apis(client, namespaces), &every).await? {
        push(KubeObject::HttpRoute(route));
    }
    for route in list_optional::<GrpcRoute>(&apis(client, namespaces), &every).await? {
        push(KubeObject::GrpcRoute(route));
    }
    for route in list_optional::<TlsRoute>(&apis(client, namespaces), &every).await? {
        push(KubeObject::TlsRoute(route));
    }
    for policy in list_optional::<BackendTlsPolicy>(&apis(client, namespaces), &every).await? {
        push(KubeObject::BackendTlsPolicy(policy));
    }
    for grant in list_optional::<ReferenceGrant>(&apis(client, namespaces), &every).await? {
        push(KubeObject::ReferenceGrant(grant));
    }
    // Only the Secrets our Ingresses name: other private keys are never
    // read, nor any outside the watched namespaces.
    let in_scope = |ns: &String| namespaces.is_empty() || namespaces.contains(ns);
    let secrets = referenced_secrets(&objects, sel).into_iter();
    for secret in secrets.filter(|s| in_scope(&s.namespace)) {
        let api: Api<Secret> = Api::namespaced(client.clone(), &secret.namespace);
        let found = api
            .get_opt(&secret.name)
            .await
            .map_err(|e| format!("getting Secret {secret}: {e}"))?;
        if let Some(mut s) = found {
            strip(&mut s);
            objects.push(SourcedObject {
                file: None,
                object: KubeObject::Secret(s),
            });
        }
    }
    // The CA bundles of BackendTLSPolicies.
    for name in crate::translate::referenced_ca_maps(&objects) {
        if !in_scope(&name.namespace) {
            continue;
        }
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &name.namespace);
        let found = api
            .get_opt(&name.name)
            .await
            .map_err(|e| format!("getting ConfigMap {name}: {e}"))?;
        if let Some(mut map) = found {
            strip(&mut map);
            objects.push(SourcedObject {
                file: None,
                object: KubeObject::ConfigMap(map),
            });
        }
    }
    for name in [&sel.tcp_services, &sel.udp_services].into_iter().flatten() {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &name.namespace);
        let found = api
            .get_opt(&name.name)
            .await
            .map_err(|e| format!("getting ConfigMap {name}: {e}"))?;
        if let Some(mut map) = found {
            strip(&mut map);
            objects.push(SourcedObject {
                file: None,
                object: KubeObject::ConfigMap(map),
            });
        }
    }
    Ok(objects)
}

/// The API of a cluster-scoped kind.
fn all_of<K: Resource<DynamicType = ()>>(client: &Client) -> Api<K> {
    Api::all(client.clone())
}

/// The APIs of a namespaced kind: cluster-wide, or one per namespace.
fn apis<K>(client: &Client, namespaces: &[String]) -> Vec<Api<K>>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    if namespaces.is_empty() {
        return vec![Api::all(client.clone())];
    }
    namespaces
        .iter()
        .map(|ns| Api::namespaced(client.clone(), ns))
        .collect()
}

/// Like [`list_each`], but a kind the API server does not serve (404: its
/// CRD is not installed) has no objects.
async fn list_optional<K>(apis: &[Api<K>], params: &ListParams) -> Result<Vec<K>, String>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let Some(first) = apis.first() else {
        return Ok(Vec::new());
    };
    match first.list(&params.clone().limit(1)).await {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Vec::new()),
        _ => list_each(apis, params).await,
    }
}

/// Every object of kind `K` that each of `apis` sees.
async fn list_each<K>(apis: &[Api<K>], params: &ListParams) -> Result<Vec<K>, String>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut out = Vec::new();
    for api in apis {
        out.extend(list(api, params).await?);
    }
    Ok(out)
}

/// Every object of kind `K` that `api` sees (cluster-wide or in its
/// namespace), page by page.
async fn list<K>(api: &Api<K>, params: &ListParams) -> Result<Vec<K>, String>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut out = Vec::new();
    let mut params = params.clone().limit(PAGE);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| format!("listing {}: {e}", K::plural(&())))?;
        out.extend(page.items.into_iter().map(|mut o| {
            strip(&mut o);
            o
        }));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}
