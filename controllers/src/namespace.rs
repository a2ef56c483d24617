//! The namespace controller: when a namespace is being deleted, deletes every
//! namespaced object in it (every resource discovery lists as deletable), waits
//! until none is left (pods may take their grace period), then removes the
//! `kubernetes` finalizer through `namespaces/{name}/finalize`, which lets the
//! API server remove the namespace. The API server already refuses new
//! objects in a terminating namespace. It touches no other namespace.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::Scope;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};

use crate::garbage_collector::deletable_resources;

pub const FINALIZER: &str = "kubernetes";

pub struct Context {
    pub client: Client,
}

pub async fn run(
    client: Client,
    namespaces: (
        Store<Namespace>,
        impl futures::Stream<Item = Arc<Namespace>> + Send + 'static,
    ),
) {
    let context = Arc::new(Context { client });
    Controller::for_shared_stream(namespaces.1, namespaces.0)
        .run(
            reconcile,
            |_, error: &kube::Error, _| {
                tracing::warn!(%error, "namespace sync failed");
                Action::requeue(Duration::from_secs(2))
            },
            context,
        )
        .for_each(|_| async {})
        .await;
}

pub async fn reconcile(
    namespace: Arc<Namespace>,
    ctx: Arc<Context>,
) -> Result<Action, kube::Error> {
    if namespace.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let name = namespace.name_any();
    let holds_finalizer = namespace
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    if !holds_finalizer {
        return Ok(Action::await_change());
    }
    let mut remaining = 0;
    for (resource, capabilities) in deletable_resources(&ctx.client).await? {
        if !matches!(capabilities.scope, Scope::Namespaced) {
            continue;
        }
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &name, &resource);
        let objects = api.list(&ListParams::default()).await?;
        for object in objects.items {
            remaining += 1;
            if object.metadata.deletion_timestamp.is_some() {
                continue;
            }
            match api
                .delete(&object.name_any(), &DeleteParams::background())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
                Err(error) => return Err(error),
            }
        }
    }
    if remaining > 0 {
        tracing::debug!(namespace = %name, remaining, "namespace still has content");
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let mut finalized = (*namespace).clone();
    if let Some(spec) = finalized.spec.as_mut() {
        spec.finalizers = Some(
            spec.finalizers
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != FINALIZER)
                .collect(),
        );
    }
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    match api
        .replace_subresource("finalize", &name, &PostParams::default(), &finalized)
        .await
    {
        Ok(_) => tracing::info!(namespace = %name, "namespace emptied and finalized"),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
        Err(error) => return Err(error),
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_api;
    use http::Method;
    use serde_json::json;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn terminating() -> Namespace {
        serde_json::from_value(json!({
            "metadata": {"name": "doomed", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Terminating"}
        }))
        .unwrap()
    }

    /// Discovery that lists only configmaps; the namespace holds one until it is deleted.
    fn cluster(
        deleted: Arc<AtomicBool>,
    ) -> impl Fn(&Method, &str, &serde_json::Value) -> (u16, serde_json::Value) {
        move |method, path, body| {
            let path_only = path.split('?').next().unwrap_or("");
            match (method.clone(), path_only) {
                (Method::GET, "/api") => (
                    200,
                    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
                ),
                (Method::GET, "/apis") => (
                    200,
                    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
                ),
                (Method::GET, "/api/v1") => (
                    200,
                    json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                        {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap", "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]}
                    ]}),
                ),
                (Method::GET, "/api/v1/namespaces/doomed/configmaps") => {
                    let items = if deleted.load(Ordering::SeqCst) {
                        json!([])
                    } else {
                        json!([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "left", "namespace": "doomed"}}])
                    };
                    (
                        200,
                        json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": items}),
                    )
                }
                (Method::DELETE, "/api/v1/namespaces/doomed/configmaps/left") => {
                    deleted.store(true, Ordering::SeqCst);
                    (
                        200,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                    )
                }
                _ => fake_api::echo(method, path, body),
            }
        }
    }

    #[tokio::test]
    async fn a_terminating_namespace_is_emptied_then_finalized() {
        let deleted = Arc::new(AtomicBool::new(false));
        let (client, log) = fake_api::client(cluster(deleted.clone()));
        let ctx = Arc::new(Context { client });
        let first = reconcile(Arc::new(terminating()), ctx.clone())
            .await
            .unwrap();
        assert_eq!(
            first,
            Action::requeue(Duration::from_secs(1)),
            "content was left: look again"
        );
        assert!(deleted.load(Ordering::SeqCst));
        assert!(fake_api::requests(&log, Method::PUT, "/finalize").is_empty());
        reconcile(Arc::new(terminating()), ctx).await.unwrap();
        let finalize = fake_api::requests(&log, Method::PUT, "/namespaces/doomed/finalize");
        assert_eq!(finalize.len(), 1);
        assert_eq!(finalize[0].body["spec"]["finalizers"], json!([]));
    }
}
