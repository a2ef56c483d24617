//! The Endpoints and EndpointSlice controller: for each Service with a
//! selector, keeps its Endpoints object and its EndpointSlices equal to what
//! `endpoints_logic` computes from the pods, writing only when something
//! differs and deleting slices it no longer needs. Both are owned by the
//! Service, so the garbage collector removes them with it. Selector-less
//! Services' Endpoints belong to their users and are left alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use crate::endpoints_logic::{self, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, MANAGED_BY};

pub struct Context {
    pub client: Client,
    pub pods: Store<Pod>,
}

pub async fn run(
    client: Client,
    services: (
        Store<Service>,
        impl futures::Stream<Item = Arc<Service>> + Send + 'static,
    ),
    pods: (
        Store<Pod>,
        impl futures::Stream<Item = Arc<Pod>> + Send + 'static,
    ),
) {
    let context = Arc::new(Context {
        client,
        pods: pods.0,
    });
    let service_store = services.0.clone();
    Controller::for_shared_stream(services.1, services.0)
        // A pod change concerns every Service in its namespace that selects it
        // now; one that selected it before is covered by the pod's old labels
        // being gone from the next computation (resync) and by the delete path.
        .watches_shared_stream(pods.1, move |pod: Arc<Pod>| {
            let namespace = pod.namespace().unwrap_or_default();
            service_store
                .state()
                .into_iter()
                .filter(|s| s.namespace().as_deref() == Some(namespace.as_str()))
                .filter(|s| {
                    let selector = s.spec.as_ref().and_then(|spec| spec.selector.clone());
                    selector.is_some_and(|sel| {
                        !sel.is_empty() && Selector::from_iter(sel).matches(pod.labels())
                    })
                })
                .map(|s| ObjectRef::from(s.as_ref()))
                .collect::<Vec<_>>()
        })
        .run(
            reconcile,
            |_, error: &kube::Error, _| {
                tracing::warn!(%error, "endpoints sync failed");
                Action::requeue(Duration::from_secs(2))
            },
            context,
        )
        .for_each(|_| async {})
        .await;
}

fn owner(service: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: service.name_any(),
        uid: service.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

pub async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    if service.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = service.namespace().unwrap_or_default();
    let pods: Vec<Pod> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
        .map(Arc::unwrap_or_clone)
        .collect();
    let Some(mut desired) = endpoints_logic::endpoints_for(&service, &pods) else {
        return Ok(Action::await_change());
    };
    desired.metadata.owner_references = Some(vec![owner(&service)]);
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &namespace);
    match api.get_opt(&service.name_any()).await? {
        None => match api.create(&PostParams::default(), &desired).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {
                return Ok(Action::requeue(Duration::from_millis(100)));
            }
            Err(error) => return Err(error),
        },
        Some(current) => {
            if current.subsets != desired.subsets
                || current.metadata.labels != desired.metadata.labels
                || current.metadata.owner_references != desired.metadata.owner_references
            {
                desired.metadata.resource_version = current.metadata.resource_version.clone();
                api.replace(&service.name_any(), &PostParams::default(), &desired)
                    .await?;
            }
        }
    }
    sync_slices(&ctx, &service, &pods).await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

async fn sync_slices(ctx: &Context, service: &Service, pods: &[Pod]) -> Result<(), kube::Error> {
    let namespace = service.namespace().unwrap_or_default();
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &namespace);
    let selector = format!(
        "{LABEL_SERVICE_NAME}={},{LABEL_MANAGED_BY}={MANAGED_BY}",
        service.name_any()
    );
    let existing: BTreeMap<String, EndpointSlice> = api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .map(|s| (s.name_any(), s))
        .collect();
    let desired = endpoints_logic::endpoint_slices_for(service, pods);
    let wanted: Vec<String> = desired.iter().map(|s| s.name_any()).collect();
    for mut slice in desired {
        let name = slice.name_any();
        match existing.get(&name) {
            None => match api.create(&PostParams::default(), &slice).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(error) => return Err(error),
            },
            Some(current) => {
                if current.endpoints != slice.endpoints
                    || current.ports != slice.ports
                    || current.metadata.labels != slice.metadata.labels
                {
                    slice.metadata.resource_version = current.metadata.resource_version.clone();
                    api.replace(&name, &PostParams::default(), &slice).await?;
                }
            }
        }
    }
    for name in existing.keys().filter(|n| !wanted.contains(n)) {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_api;
    use http::Method;

    #[tokio::test]
    async fn a_service_gets_endpoints_owned_by_it_from_its_ready_pods() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                     "type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"]}
        }))
        .unwrap();
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "default", "uid": "p1", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "podIP": "10.244.0.5", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let (client, log) = fake_api::client(|method, path, body| {
            if *method == Method::GET && path.contains("endpointslices") {
                return (
                    200,
                    serde_json::json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList", "metadata": {}, "items": []}),
                );
            }
            fake_api::echo(method, path, body)
        });
        let ctx = Arc::new(Context {
            client,
            pods: fake_api::store(vec![pod]),
        });
        reconcile(Arc::new(service), ctx).await.unwrap();
        let endpoints: Vec<_> =
            fake_api::requests(&log, Method::POST, "/namespaces/default/endpoints")
                .into_iter()
                .filter(|r| r.path.split('?').next().unwrap().ends_with("/endpoints"))
                .collect();
        assert_eq!(endpoints.len(), 1);
        let body = &endpoints[0].body;
        assert_eq!(body["subsets"][0]["addresses"][0]["ip"], "10.244.0.5");
        assert_eq!(body["subsets"][0]["ports"][0]["port"], 8080);
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "svc-uid");
        let slices = fake_api::requests(&log, Method::POST, "/endpointslices");
        assert_eq!(slices.len(), 1);
        assert_eq!(slices[0].body["endpoints"][0]["addresses"][0], "10.244.0.5");
    }
}
