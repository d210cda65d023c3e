//! One read-only look at the API server, for `rauta check --kubernetes`:
//! list Ingresses, IngressClasses, Services, EndpointSlices, Namespaces
//! and the Gateway API kinds (where served) once, then get the TLS Secrets
//! that served Ingresses and our Gateways name. Only GETs: no watch, no
//! status, no Events, no Lease.

use super::client::{self, ClientSource};
use super::watch::strip;
use crate::gateway_api::{Gateway, GatewayClass, HttpRoute, ReferenceGrant};
use crate::objects::{KubeObject, SourcedObject};
use crate::translate::referenced_secrets;
use crate::ClassSelector;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Objects per list request; larger clusters are read in pages.
const PAGE: u32 = 500;
/// The label every EndpointSlice managed for a Service carries.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The objects translation needs, as the API server has them now.
///
/// Fails with a message naming the source or the kind when the client
/// cannot be configured or a request fails.
pub fn snapshot(source: &ClientSource, sel: &ClassSelector) -> Result<Vec<SourcedObject>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async {
        let client = client::connect(source).await?;
        read(&client, sel).await
    })
}

async fn read(client: &Client, sel: &ClassSelector) -> Result<Vec<SourcedObject>, String> {
    let every = ListParams::default();
    let mut objects = Vec::new();
    let mut push = |object: KubeObject| objects.push(SourcedObject { file: None, object });
    for ing in list::<Ingress>(client, &every).await? {
        push(KubeObject::Ingress(ing));
    }
    for class in list::<IngressClass>(client, &every).await? {
        push(KubeObject::IngressClass(class));
    }
    for svc in list::<Service>(client, &every).await? {
        push(KubeObject::Service(svc));
    }
    let slices = ListParams::default().labels(SERVICE_NAME_LABEL);
    for slice in list::<EndpointSlice>(client, &slices).await? {
        push(KubeObject::EndpointSlice(slice));
    }
    for ns in list::<Namespace>(client, &every).await? {
        push(KubeObject::Namespace(ns));
    }
    // The Gateway API kinds exist only where their CRDs are installed.
    for class in list_optional::<GatewayClass>(client, &every).await? {
        push(KubeObject::GatewayClass(class));
    }
    for gateway in list_optional::<Gateway>(client, &every).await? {
        push(KubeObject::Gateway(gateway));
    }
    for route in list_optional::<HttpRoute>(client, &every).await? {
        push(KubeObject::HttpRoute(route));
    }
    for grant in list_optional::<ReferenceGrant>(client, &every).await? {
        push(KubeObject::ReferenceGrant(grant));
    }
    // Only the Secrets our Ingresses name: other private keys are never read.
    for secret in referenced_secrets(&objects, sel) {
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

/// Like [`list`], but a kind the API server does not serve (404: its CRD
/// is not installed) has no objects.
async fn list_optional<K>(client: &Client, params: &ListParams) -> Result<Vec<K>, String>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api: Api<K> = Api::all(client.clone());
    match api.list(&params.clone().limit(1)).await {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Vec::new()),
        _ => list(client, params).await,
    }
}

/// Every object of kind `K` cluster-wide, page by page.
async fn list<K>(client: &Client, params: &ListParams) -> Result<Vec<K>, String>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api: Api<K> = Api::all(client.clone());
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
