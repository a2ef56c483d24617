//! The ReplicaSet controller: keeps `spec.replicas` active pods for each
//! ReplicaSet (creating from its template with a controller ownerReference,
//! deleting the surplus in Kubernetes' preference order), adopts matching
//! orphans and releases pods that stopped matching, and writes the status
//! (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
//! observedGeneration). Expectations keep it from acting twice on one intent
//! while the pod cache lags behind its own writes. It never touches pods it
//! does not own or could not own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use crate::events::{EventType, Recorder};
use crate::pods;

/// How long an unmet expectation holds the controller back before it looks
/// afresh (Kubernetes uses 5 minutes).
const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(300);
/// Most pods created or deleted in one sync; the rest follow on the next.
const BURST: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("invalid selector on {0}: {1}")]
    Selector(String, String),
}

/// Writes this controller made that its caches have not shown yet.
#[derive(Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

struct Pending {
    created: HashSet<String>,
    deleted: HashSet<String>,
    since: Instant,
}

impl Expectations {
    fn expect(&self, key: &str, created: Vec<String>, deleted: Vec<String>) {
        if let Ok(mut pending) = self.pending.lock() {
            let entry = pending.entry(key.to_string()).or_insert_with(|| Pending {
                created: HashSet::new(),
                deleted: HashSet::new(),
                since: Instant::now(),
            });
            entry.created.extend(created);
            entry.deleted.extend(deleted);
            entry.since = Instant::now();
        }
    }

    /// Whether the cache now shows every pod created and none deleted; clears
    /// what it has seen.
    fn satisfied(&self, key: &str, pod_cache: &Store<Pod>, namespace: &str) -> bool {
        let Ok(mut pending) = self.pending.lock() else {
            return true;
        };
        let Some(entry) = pending.get_mut(key) else {
            return true;
        };
        let in_cache = |name: &String| {
            pod_cache
                .get(&ObjectRef::new(name).within(namespace))
                .map(|p| p.metadata.deletion_timestamp.is_none())
        };
        entry.created.retain(|name| in_cache(name).is_none());
        entry.deleted.retain(|name| in_cache(name) == Some(true));
        let done = (entry.created.is_empty() && entry.deleted.is_empty())
            || entry.since.elapsed() > EXPECTATION_TIMEOUT;
        if done {
            pending.remove(key);
        }
        done
    }
}

pub struct Context {
    pub client: Client,
    pub pods: Store<Pod>,
    pub recorder: Recorder,
    pub expectations: Expectations,
}

/// Run the controller until the stream ends.
pub async fn run(
    client: Client,
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
        recorder: Recorder::new(client.clone(), "replicaset-controller"),
        client,
        pods: pods.0,
        expectations: Expectations::default(),
    });
    Controller::for_shared_stream(replica_sets.1, replica_sets.0)
        .owns_shared_stream(pods.1)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "replicaset reconcile");
            }
        })
        .await;
}

fn error_policy(_: Arc<ReplicaSet>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "replicaset sync failed");
    Action::requeue(Duration::from_secs(2))
}

fn key(rs: &ReplicaSet) -> String {
    format!("{}/{}", rs.namespace().unwrap_or_default(), rs.name_any())
}

pub fn owner_reference(rs: &ReplicaSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: rs.name_any(),
        uid: rs.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// One sync of one ReplicaSet, from the caches.
pub async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = rs.namespace().unwrap_or_default();
    let uid = rs.uid().unwrap_or_default();
    let spec = rs.spec.clone();
    let selector: Selector = spec
        .selector
        .clone()
        .try_into()
        .map_err(|e: kube::core::ParseExpressionError| Error::Selector(key(&rs), e.to_string()))?;
    let rs_key = key(&rs);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);

    let candidates: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
        .collect();
    let mut owned = Vec::new();
    for pod in candidates {
        let labels = pod.labels().clone();
        let controller = pod
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true));
        let matches = !selector.selects_all() && selector.matches(&labels);
        match controller {
            Some(owner) if owner.uid == uid => {
                if matches {
                    owned.push(pod);
                } else if rs.metadata.deletion_timestamp.is_none() {
                    release(&pods_api, &pod, &uid).await?;
                }
            }
            None if matches
                && pod.metadata.deletion_timestamp.is_none()
                && rs.metadata.deletion_timestamp.is_none() =>
            {
                adopt(&pods_api, &pod, &rs).await?;
                owned.push(pod);
            }
            _ => {}
        }
    }
    let active: Vec<&Arc<Pod>> = owned.iter().filter(|p| pods::is_active(p)).collect();

    if rs.metadata.deletion_timestamp.is_none()
        && ctx.expectations.satisfied(&rs_key, &ctx.pods, &namespace)
    {
        let desired = spec.replicas.unwrap_or(1).max(0) as usize;
        if active.len() < desired {
            let wanted = (desired - active.len()).min(BURST);
            let created = create_pods(&ctx, &rs, &pods_api, wanted).await;
            let names: Vec<String> = created
                .iter()
                .filter_map(|r| r.as_ref().ok().cloned())
                .collect();
            ctx.expectations.expect(&rs_key, names, vec![]);
            if let Some(Err(error)) = created.into_iter().find(|r| r.is_err()) {
                ctx.recorder
                    .publish(
                        rs.as_ref(),
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {error}"),
                    )
                    .await;
                return Err(error.into());
            }
        } else if active.len() > desired {
            let surplus = (active.len() - desired).min(BURST);
            let mut ranked: Vec<&Arc<Pod>> = active.clone();
            ranked.sort_by(|a, b| pods::deletion_order(a, b));
            let victims: Vec<&Arc<Pod>> = ranked.into_iter().take(surplus).collect();
            let names: Vec<String> = victims.iter().map(|p| p.name_any()).collect();
            ctx.expectations.expect(&rs_key, vec![], names.clone());
            for pod in victims {
                match pods_api
                    .delete(&pod.name_any(), &DeleteParams::default())
                    .await
                {
                    Ok(_) => {
                        ctx.recorder
                            .publish(
                                rs.as_ref(),
                                EventType::Normal,
                                "SuccessfulDelete",
                                &format!("Deleted pod: {}", pod.name_any()),
                            )
                            .await;
                    }
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }

    let now = jiff::Timestamp::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0).max(0) as i64;
    let template_labels: BTreeMap<String, String> = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let ready = active.iter().filter(|p| pods::is_ready(p)).count() as i32;
    let available = active
        .iter()
        .filter(|p| pods::is_available(p, min_ready, now))
        .count() as i32;
    let fully_labeled = active
        .iter()
        .filter(|p| {
            template_labels
                .iter()
                .all(|(k, v)| p.labels().get(k) == Some(v))
        })
        .count() as i32;
    let status = ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: Some(fully_labeled),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        observed_generation: rs.metadata.generation,
        conditions: rs.status.as_ref().and_then(|s| s.conditions.clone()),
        terminating_replicas: None,
    };
    if rs.status.as_ref() != Some(&status) {
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
        api.patch_status(
            &rs.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": status})),
        )
        .await?;
    }
    // Pods that are ready but not yet available become available by time alone.
    if min_ready > 0 && ready > available {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Create `count` pods from the template in slow-start batches (1, 2, 4, ...)
/// so a broken template fails fast instead of `count` times.
async fn create_pods(
    ctx: &Context,
    rs: &ReplicaSet,
    api: &Api<Pod>,
    count: usize,
) -> Vec<Result<String, kube::Error>> {
    let mut results = Vec::new();
    let mut batch = 1;
    while results.len() < count {
        let size = batch.min(count - results.len());
        let creations = (0..size).map(|_| {
            let pod = pod_from_template(rs);
            async move {
                api.create(&PostParams::default(), &pod)
                    .await
                    .map(|p| p.name_any())
            }
        });
        let outcomes = futures::future::join_all(creations).await;
        let failed = outcomes.iter().any(|r| r.is_err());
        for name in outcomes.iter().flatten() {
            ctx.recorder
                .publish(
                    rs,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {name}"),
                )
                .await;
        }
        results.extend(outcomes);
        if failed {
            break;
        }
        batch *= 2;
    }
    results
}

/// A new pod from the ReplicaSet's template.
pub fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs.spec.template.clone().unwrap_or_default();
    let template_meta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", rs.name_any())),
            namespace: rs.namespace(),
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![owner_reference(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

async fn adopt(api: &Api<Pod>, pod: &Pod, rs: &ReplicaSet) -> Result<(), kube::Error> {
    let mut owners = pod.owner_references().to_vec();
    owners.push(owner_reference(rs));
    let patch = serde_json::json!({"metadata": {"ownerReferences": owners, "uid": pod.uid()}});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
}

async fn release(api: &Api<Pod>, pod: &Pod, owner_uid: &str) -> Result<(), kube::Error> {
    let owners: Vec<&OwnerReference> = pod
        .owner_references()
        .iter()
        .filter(|o| o.uid != owner_uid)
        .collect();
    let patch = serde_json::json!({"metadata": {"ownerReferences": owners, "uid": pod.uid()}});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_api;
    use http::Method;

    fn rs(replicas: i32) -> ReplicaSet {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "rs-uid", "generation": 2},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
        }))
        .unwrap()
    }

    fn pod(name: &str, node: Option<&str>, ready: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "web"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-uid", "controller": true}]},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": if node.is_some() { "Running" } else { "Pending" },
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    fn context(pods: Vec<Pod>) -> (Arc<Context>, Arc<std::sync::Mutex<Vec<fake_api::Recorded>>>) {
        let (client, log) = fake_api::client(fake_api::echo);
        let ctx = Context {
            recorder: Recorder::new(client.clone(), "test"),
            client,
            pods: fake_api::store(pods),
            expectations: Expectations::default(),
        };
        (Arc::new(ctx), log)
    }

    #[tokio::test]
    async fn missing_replicas_are_created_from_the_template_with_a_controller_owner() {
        let (ctx, log) = context(vec![pod("web-1", Some("n1"), true)]);
        reconcile(Arc::new(rs(3)), ctx.clone()).await.unwrap();
        let creates = fake_api::requests(&log, Method::POST, "/namespaces/default/pods");
        assert_eq!(creates.len(), 2);
        for create in &creates {
            assert_eq!(create.body["metadata"]["generateName"], "web-");
            assert_eq!(create.body["metadata"]["labels"]["app"], "web");
            assert_eq!(
                create.body["metadata"]["ownerReferences"][0]["uid"],
                "rs-uid"
            );
            assert_eq!(
                create.body["metadata"]["ownerReferences"][0]["controller"],
                true
            );
        }
        let status = fake_api::requests(&log, Method::PATCH, "/replicasets/web/status");
        assert_eq!(status[0].body["status"]["replicas"], 1);
        assert_eq!(status[0].body["status"]["readyReplicas"], 1);
        assert_eq!(status[0].body["status"]["observedGeneration"], 2);
    }

    #[tokio::test]
    async fn expectations_stop_a_second_sync_from_creating_again_before_the_cache_catches_up() {
        let (ctx, log) = context(vec![]);
        reconcile(Arc::new(rs(2)), ctx.clone()).await.unwrap();
        reconcile(Arc::new(rs(2)), ctx.clone()).await.unwrap();
        assert_eq!(
            fake_api::requests(&log, Method::POST, "/namespaces/default/pods").len(),
            2
        );
    }

    #[tokio::test]
    async fn surplus_pods_are_deleted_unscheduled_and_not_ready_first() {
        let pods = vec![
            pod("ready", Some("n1"), true),
            pod("pending", None, false),
            pod("not-ready", Some("n1"), false),
        ];
        let (ctx, log) = context(pods);
        reconcile(Arc::new(rs(1)), ctx).await.unwrap();
        let deleted: Vec<String> = fake_api::requests(&log, Method::DELETE, "/pods/")
            .iter()
            .map(|r| {
                r.path
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .split('?')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(deleted, ["pending", "not-ready"]);
    }

    #[tokio::test]
    async fn matching_orphans_are_adopted_instead_of_creating_more() {
        let mut orphan = pod("orphan", Some("n1"), true);
        orphan.metadata.owner_references = None;
        let (ctx, log) = context(vec![orphan]);
        reconcile(Arc::new(rs(1)), ctx).await.unwrap();
        let adopt = fake_api::requests(&log, Method::PATCH, "/pods/orphan");
        assert_eq!(
            adopt[0].body["metadata"]["ownerReferences"][0]["uid"],
            "rs-uid"
        );
        assert!(fake_api::requests(&log, Method::POST, "/namespaces/default/pods").is_empty());
    }
}
