//! The Deployment controller: for each Deployment, asks `deployment_logic`
//! for a plan from the cached ReplicaSets and pods, then carries it out through
//! the API (create, scale, annotate and delete ReplicaSets; the Deployment's
//! revision annotation and status), recording ScalingReplicaSet events as
//! Kubernetes does. The rollout decisions themselves live in the logic module.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::deployment_logic::{self, Action as Step, REVISION_ANNOTATION};
use crate::events::{EventType, Recorder};

pub struct Context {
    pub client: Client,
    pub replica_sets: Store<ReplicaSet>,
    pub pods: Store<Pod>,
    pub recorder: Recorder,
}

pub async fn run(
    client: Client,
    deployments: (
        Store<Deployment>,
        impl futures::Stream<Item = Arc<Deployment>> + Send + 'static,
    ),
    replica_sets: (
        Store<ReplicaSet>,
        impl futures::Stream<Item = Arc<ReplicaSet>> + Send + 'static,
    ),
    pods: (
        Store<Pod>,
        impl futures::Stream<Item = Arc<Pod>> + Send + 'static,
    ),
) {
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "deployment-controller"),
        client,
        replica_sets: replica_sets.0.clone(),
        pods: pods.0,
    });
    let rs_store = replica_sets.0;
    Controller::for_shared_stream(deployments.1, deployments.0)
        .owns_shared_stream(replica_sets.1)
        // Recreate waits for old pods to go: a pod change wakes its Deployment
        // through the pod's ReplicaSet.
        .watches_shared_stream(pods.1, move |pod: Arc<Pod>| {
            let namespace = pod.namespace().unwrap_or_default();
            pod.owner_references()
                .iter()
                .filter(|o| o.kind == "ReplicaSet" && o.controller == Some(true))
                .filter_map(|o| rs_store.get(&ObjectRef::new(&o.name).within(&namespace)))
                .flat_map(|rs| {
                    rs.owner_references()
                        .iter()
                        .filter(|o| o.kind == "Deployment" && o.controller == Some(true))
                        .map(|o| ObjectRef::new(&o.name).within(&namespace))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        .run(reconcile, error_policy, context)
        .for_each(|_| async {})
        .await;
}

fn error_policy(_: Arc<Deployment>, error: &kube::Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "deployment sync failed");
    Action::requeue(Duration::from_secs(2))
}

fn replicas_of(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

/// A merge patch that makes `current` annotations equal `desired` (null removes).
fn annotations_patch(
    current: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> Value {
    let mut patch = serde_json::Map::new();
    for key in current.keys().filter(|k| !desired.contains_key(*k)) {
        patch.insert(key.clone(), Value::Null);
    }
    for (key, value) in desired {
        if current.get(key) != Some(value) {
            patch.insert(key.clone(), json!(value));
        }
    }
    Value::Object(patch)
}

/// A merge patch that turns `current` into `desired` at the top level: keys
/// that disappear are set to null (a plain merge patch would keep them).
fn replacing_patch(current: &Value, mut desired: Value) -> Value {
    if let (Some(current), Some(map)) = (current.as_object(), desired.as_object_mut()) {
        for key in current.keys() {
            map.entry(key.clone()).or_insert(Value::Null);
        }
    }
    desired
}

pub async fn reconcile(
    deployment: Arc<Deployment>,
    ctx: Arc<Context>,
) -> Result<Action, kube::Error> {
    let namespace = deployment.namespace().unwrap_or_default();
    let uid = deployment.uid().unwrap_or_default();
    let replica_sets: Vec<ReplicaSet> = ctx
        .replica_sets
        .state()
        .into_iter()
        .filter(|rs| rs.namespace().as_deref() == Some(namespace.as_str()))
        .map(Arc::unwrap_or_clone)
        .collect();
    let owned: Vec<String> = replica_sets
        .iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| o.uid == uid && o.controller == Some(true))
        })
        .filter_map(|rs| rs.uid())
        .collect();
    let pods: Vec<Pod> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|p| p.owner_references().iter().any(|o| owned.contains(&o.uid)))
        .map(Arc::unwrap_or_clone)
        .collect();
    let plan = deployment_logic::plan(&deployment, &replica_sets, &pods, jiff::Timestamp::now());
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);

    for step in &plan.actions {
        match step {
            Step::CreateReplicaSet(rs) => match rs_api.create(&PostParams::default(), rs).await {
                Ok(created) => {
                    ctx.recorder
                        .publish(
                            deployment.as_ref(),
                            EventType::Normal,
                            "ScalingReplicaSet",
                            &format!(
                                "Scaled up replica set {} from 0 to {}",
                                created.name_any(),
                                replicas_of(&created)
                            ),
                        )
                        .await;
                }
                // A name collision: the next plan sees it and bumps collisionCount.
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    return Ok(Action::requeue(Duration::from_millis(200)));
                }
                Err(error) => return Err(error),
            },
            Step::UpdateReplicaSet {
                name,
                replicas,
                annotations,
            } => {
                let current = replica_sets.iter().find(|rs| &rs.name_any() == name);
                let old_replicas = current.map_or(0, replicas_of);
                let current_annotations = current
                    .map(|rs| rs.annotations().clone())
                    .unwrap_or_default();
                let patch = json!({
                    "metadata": {"annotations": annotations_patch(&current_annotations, annotations)},
                    "spec": {"replicas": replicas},
                });
                match rs_api
                    .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => continue,
                    Err(error) => return Err(error),
                }
                if old_replicas != *replicas {
                    let direction = if *replicas > old_replicas {
                        "up"
                    } else {
                        "down"
                    };
                    ctx.recorder
                        .publish(
                            deployment.as_ref(),
                            EventType::Normal,
                            "ScalingReplicaSet",
                            &format!("Scaled {direction} replica set {name} from {old_replicas} to {replicas}"),
                        )
                        .await;
                }
            }
            Step::DeleteReplicaSet { name } => {
                match rs_api.delete(name, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(error) => return Err(error),
                }
            }
        }
    }

    if let Some(revision) = &plan.deployment_revision
        && deployment.annotations().get(REVISION_ANNOTATION) != Some(revision)
    {
        let patch = json!({"metadata": {"annotations": {REVISION_ANNOTATION: revision}}});
        api.patch(
            &deployment.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await?;
    }
    if deployment.status.as_ref() != Some(&plan.status) {
        let current = serde_json::to_value(&deployment.status).unwrap_or_default();
        let status = replacing_patch(
            &current,
            serde_json::to_value(&plan.status).unwrap_or_default(),
        );
        api.patch_status(
            &deployment.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
    }
    Ok(match plan.requeue_after {
        Some(after) => Action::requeue(after.max(Duration::from_millis(100))),
        None => Action::requeue(Duration::from_secs(300)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_api;
    use http::Method;

    fn deployment() -> Deployment {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 1},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_new_deployment_gets_its_first_replica_set_revision_and_status() {
        let (client, log) = fake_api::client(fake_api::echo);
        let ctx = Arc::new(Context {
            recorder: Recorder::new(client.clone(), "test"),
            client,
            replica_sets: fake_api::store(vec![]),
            pods: fake_api::store(vec![]),
        });
        reconcile(Arc::new(deployment()), ctx).await.unwrap();
        let creates = fake_api::requests(&log, Method::POST, "/namespaces/default/replicasets");
        assert_eq!(creates.len(), 1);
        let rs = &creates[0].body;
        assert_eq!(rs["spec"]["replicas"], 3);
        assert_eq!(rs["metadata"]["ownerReferences"][0]["uid"], "d-uid");
        assert_eq!(rs["metadata"]["annotations"][REVISION_ANNOTATION], "1");
        assert!(rs["spec"]["selector"]["matchLabels"]["pod-template-hash"].is_string());
        let events = fake_api::requests(&log, Method::POST, "/events");
        assert_eq!(events[0].body["reason"], "ScalingReplicaSet");
        let annotate = fake_api::requests(&log, Method::PATCH, "/deployments/web?");
        assert_eq!(
            annotate[0].body["metadata"]["annotations"][REVISION_ANNOTATION],
            "1"
        );
        let status = fake_api::requests(&log, Method::PATCH, "/deployments/web/status");
        assert_eq!(status[0].body["status"]["observedGeneration"], 1);
    }

    #[test]
    fn annotations_patch_sets_changes_and_removes_dropped_keys() {
        let current: BTreeMap<String, String> =
            [("a".into(), "1".into()), ("gone".into(), "x".into())].into();
        let desired: BTreeMap<String, String> =
            [("a".into(), "2".into()), ("new".into(), "y".into())].into();
        assert_eq!(
            annotations_patch(&current, &desired),
            json!({"a": "2", "gone": null, "new": "y"})
        );
        assert_eq!(
            replacing_patch(&json!({"x": 1, "y": 2}), json!({"x": 3})),
            json!({"x": 3, "y": null})
        );
    }
}
