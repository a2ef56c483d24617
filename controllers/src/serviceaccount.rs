//! The ServiceAccount controller: every namespace that is not terminating has a
//! `default` ServiceAccount (recreated if deleted). It creates nothing else.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

pub struct Context {
    pub client: Client,
}

pub async fn run(
    client: Client,
    namespaces: (
        Store<Namespace>,
        impl futures::Stream<Item = Arc<Namespace>> + Send + 'static,
    ),
    service_accounts: impl futures::Stream<Item = Arc<ServiceAccount>> + Send + 'static,
) {
    let context = Arc::new(Context { client });
    Controller::for_shared_stream(namespaces.1, namespaces.0)
        .watches_shared_stream(service_accounts, |sa: Arc<ServiceAccount>| {
            sa.namespace().map(|ns| ObjectRef::<Namespace>::new(&ns))
        })
        .run(
            reconcile,
            |_, error: &kube::Error, _| {
                tracing::warn!(%error, "serviceaccount sync failed");
                Action::requeue(Duration::from_secs(5))
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
    if namespace.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = namespace.name_any();
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    if api.get_opt("default").await?.is_none() {
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some("default".into()),
                namespace: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => tracing::info!(namespace = %name, "created default service account"),
            // Created concurrently, or the namespace started terminating.
            Err(kube::Error::Api(status)) if status.code == 409 || status.code == 403 => {}
            Err(error) => return Err(error),
        }
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_api;
    use http::Method;

    fn namespace(deleting: bool) -> Namespace {
        let mut ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "team"}})).unwrap();
        if deleting {
            ns.metadata.deletion_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
            );
        }
        ns
    }

    #[tokio::test]
    async fn a_namespace_without_a_default_service_account_gets_one() {
        let (client, log) = fake_api::client(fake_api::echo);
        reconcile(Arc::new(namespace(false)), Arc::new(Context { client }))
            .await
            .unwrap();
        let creates = fake_api::requests(&log, Method::POST, "/namespaces/team/serviceaccounts");
        assert_eq!(creates.len(), 1);
        assert_eq!(creates[0].body["metadata"]["name"], "default");
    }

    #[tokio::test]
    async fn a_terminating_namespace_gets_nothing() {
        let (client, log) = fake_api::client(fake_api::echo);
        reconcile(Arc::new(namespace(true)), Arc::new(Context { client }))
            .await
            .unwrap();
        assert!(log.lock().unwrap().is_empty());
    }
}
