//! The scheduler: binds each pending pod that asks for the default scheduler
//! to a node chosen by `scheduler_logic`, through the `pods/binding`
//! subresource. Pods it bound but the cache does not show bound yet are
//! "assumed" on their node so back-to-back decisions see each other. A pod
//! that fits nowhere gets a FailedScheduling event and a PodScheduled=False
//! condition, and is retried when nodes change or after a delay. It never
//! changes a pod beyond its binding and that condition.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use crate::events::{EventType, Recorder};
use crate::scheduler_logic;

pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
const RETRY_UNSCHEDULABLE: Duration = Duration::from_secs(15);

pub struct Context {
    pub client: Client,
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub recorder: Recorder,
    /// pod uid -> node it was bound to, until the cache shows the binding.
    pub assumed: Mutex<HashMap<String, String>>,
    /// One scheduling decision at a time (reconciles run concurrently): each
    /// decision must see the one before it as assumed.
    pub cycle: tokio::sync::Mutex<()>,
    /// When the deletion watch last saw a bound pod leave. The pod cache may
    /// not show it yet when the pending pods are retried, so they are retried
    /// again shortly for a while after.
    pub released_at: Arc<Mutex<Option<std::time::Instant>>>,
}

/// How long after a bound pod left pending pods keep being retried soon.
const RELEASE_WINDOW: Duration = Duration::from_secs(10);

fn waiting_for_us(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    spec.is_some_and(|s| s.node_name.as_deref().is_none_or(str::is_empty))
        && spec
            .and_then(|s| s.scheduler_name.as_deref())
            .is_none_or(|name| name == DEFAULT_SCHEDULER)
        && pod.metadata.deletion_timestamp.is_none()
        && !matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
}

/// Whether a pod change may have made room: a bound pod finishing or going away.
fn frees_resources(pod: &Pod) -> bool {
    let bound = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_ref())
        .is_some();
    let leaving = pod.metadata.deletion_timestamp.is_some()
        || matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
    bound && leaving
}

/// A pod that frees resources (deletions included, which shared informer
/// subscriptions do not pass on: hence a watch of its own) sends every pending
/// pod back for another try.
pub async fn run(
    client: Client,
    pods: (
        Store<Pod>,
        impl futures::Stream<Item = Arc<Pod>> + Send + 'static,
    ),
    nodes: (
        Store<Node>,
        impl futures::Stream<Item = Arc<Node>> + Send + 'static,
    ),
) {
    let client_for_watch = client.clone();
    let released_at: Arc<Mutex<Option<std::time::Instant>>> = Arc::default();
    let released_for_watch = released_at.clone();
    let context = Arc::new(Context {
        released_at,
        recorder: Recorder::new(client.clone(), "default-scheduler"),
        client,
        pods: pods.0.clone(),
        nodes: nodes.0,
        assumed: Mutex::new(HashMap::new()),
        cycle: tokio::sync::Mutex::new(()),
    });
    let pod_store = pods.0.clone();
    let pending = move |store: &Store<Pod>| {
        store
            .state()
            .into_iter()
            .filter(|p| waiting_for_us(p))
            .map(|p| ObjectRef::from(p.as_ref()))
            .collect::<Vec<_>>()
    };
    let for_pods = (pod_store.clone(), pending);
    Controller::for_shared_stream(pods.1, pods.0)
        .watches(
            Api::<Pod>::all(client_for_watch),
            kube::runtime::watcher::Config::default(),
            move |pod: Pod| {
                if frees_resources(&pod) {
                    if let Ok(mut at) = released_for_watch.lock() {
                        *at = Some(std::time::Instant::now());
                    }
                    (for_pods.1)(&for_pods.0)
                } else {
                    Vec::new()
                }
            },
        )
        // A node appearing or changing may make room: look at every pending pod.
        .watches_shared_stream(nodes.1, move |_node: Arc<Node>| pending(&pod_store))
        .run(reconcile, error_policy, context)
        .for_each(|_| async {})
        .await;
}

fn error_policy(_: Arc<Pod>, error: &kube::Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "scheduling failed");
    Action::requeue(Duration::from_secs(2))
}

/// The cluster's pods as the scheduler must count them: cached state plus the
/// bindings it made that the cache has not caught up with.
fn pods_with_assumptions(ctx: &Context) -> Vec<Pod> {
    let mut assumed = match ctx.assumed.lock() {
        Ok(assumed) => assumed,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut pods = Vec::new();
    let mut still_assumed = HashMap::new();
    for pod in ctx.pods.state() {
        let mut pod = Arc::unwrap_or_clone(pod);
        let uid = pod.uid().unwrap_or_default();
        let bound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some();
        if let Some(node) = assumed.get(&uid)
            && !bound
        {
            if let Some(spec) = pod.spec.as_mut() {
                spec.node_name = Some(node.clone());
            }
            still_assumed.insert(uid, node.clone());
        }
        pods.push(pod);
    }
    *assumed = still_assumed;
    pods
}

pub async fn reconcile(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    if !waiting_for_us(&pod) {
        return Ok(Action::await_change());
    }
    let uid = pod.uid().unwrap_or_default();
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    // Decide and assume under the cycle lock; bind outside it.
    let decision = {
        let _cycle = ctx.cycle.lock().await;
        if ctx
            .assumed
            .lock()
            .map(|a| a.contains_key(&uid))
            .unwrap_or(false)
        {
            return Ok(Action::await_change());
        }
        let nodes: Vec<Node> = ctx
            .nodes
            .state()
            .into_iter()
            .map(Arc::unwrap_or_clone)
            .collect();
        let pods = pods_with_assumptions(&ctx);
        let decision = scheduler_logic::schedule(&pod, &nodes, &pods);
        if let (Ok(node), Ok(mut assumed)) = (&decision, ctx.assumed.lock()) {
            assumed.insert(uid.clone(), node.clone());
        }
        decision
    };
    let forget = || {
        if let Ok(mut assumed) = ctx.assumed.lock() {
            assumed.remove(&uid);
        }
    };
    match decision {
        Ok(node) => {
            let binding = serde_json::json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": namespace, "uid": uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            match api
                .create_subresource::<serde_json::Value, serde_json::Value>(
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                )
                .await
            {
                Ok(_) => {
                    ctx.recorder
                        .publish(
                            pod.as_ref(),
                            EventType::Normal,
                            "Scheduled",
                            &format!("Successfully assigned {namespace}/{name} to {node}"),
                        )
                        .await;
                    Ok(Action::await_change())
                }
                // Already bound (by us, through a stale cache) or gone.
                Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => {
                    forget();
                    Ok(Action::await_change())
                }
                Err(error) => {
                    forget();
                    Err(error)
                }
            }
        }
        Err(fit) => {
            let message = fit.to_string();
            ctx.recorder
                .publish(
                    pod.as_ref(),
                    EventType::Warning,
                    "FailedScheduling",
                    &message,
                )
                .await;
            let already = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter().any(|c| {
                        c.type_ == "PodScheduled"
                            && c.status == "False"
                            && c.message.as_deref() == Some(message.as_str())
                    })
                });
            if !already {
                let patch = serde_json::json!({"status": {"conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": message, "lastProbeTime": null,
                    "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
                }]}});
                match api
                    .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                    .await
                {
                    Ok(_) | Err(kube::Error::Api(_)) => {}
                    Err(error) => return Err(error),
                }
            }
            // Room is about to free up while a bound pod terminates (it still
            // holds its resources until it is gone): look again soon.
            let recently_released = ctx
                .released_at
                .lock()
                .ok()
                .and_then(|at| *at)
                .is_some_and(|at| at.elapsed() < RELEASE_WINDOW);
            let leaving = recently_released || ctx.pods.state().iter().any(|p| frees_resources(p));
            Ok(Action::requeue(if leaving {
                Duration::from_secs(1)
            } else {
                RETRY_UNSCHEDULABLE
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_api;
    use http::Method;

    fn node(name: &str, cpu: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap()
    }

    fn pending(cpu: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "pod-uid"},
            "spec": {"schedulerName": "default-scheduler",
                     "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu}}}]},
            "status": {"phase": "Pending"}
        }))
        .unwrap()
    }

    fn context(
        nodes: Vec<Node>,
        pods: Vec<Pod>,
    ) -> (Arc<Context>, Arc<std::sync::Mutex<Vec<fake_api::Recorded>>>) {
        let (client, log) = fake_api::client(fake_api::echo);
        let ctx = Context {
            recorder: Recorder::new(client.clone(), "test"),
            client,
            pods: fake_api::store(pods),
            nodes: fake_api::store(nodes),
            assumed: Mutex::new(HashMap::new()),
            cycle: tokio::sync::Mutex::new(()),
            released_at: Arc::default(),
        };
        (Arc::new(ctx), log)
    }

    #[tokio::test]
    async fn a_fitting_pod_is_bound_and_assumed() {
        let (ctx, log) = context(
            vec![node("small", "1"), node("big", "8")],
            vec![pending("2")],
        );
        reconcile(Arc::new(pending("2")), ctx.clone())
            .await
            .unwrap();
        let bindings = fake_api::requests(&log, Method::POST, "/pods/p/binding");
        assert_eq!(bindings.len(), 1);
        assert_eq!(bindings[0].body["target"]["name"], "big");
        assert_eq!(
            ctx.assumed
                .lock()
                .unwrap()
                .get("pod-uid")
                .map(String::as_str),
            Some("big")
        );
        let events = fake_api::requests(&log, Method::POST, "/events");
        assert_eq!(events[0].body["reason"], "Scheduled");
    }

    #[tokio::test]
    async fn a_pod_that_fits_nowhere_gets_failed_scheduling_and_a_condition() {
        let (ctx, log) = context(vec![node("a", "1"), node("b", "1")], vec![pending("4")]);
        reconcile(Arc::new(pending("4")), ctx).await.unwrap();
        assert!(fake_api::requests(&log, Method::POST, "/binding").is_empty());
        let events = fake_api::requests(&log, Method::POST, "/events");
        assert_eq!(events[0].body["reason"], "FailedScheduling");
        assert_eq!(
            events[0].body["message"],
            "0/2 nodes are available: 2 Insufficient cpu."
        );
        let status = fake_api::requests(&log, Method::PATCH, "/pods/p/status");
        assert_eq!(
            status[0].body["status"]["conditions"][0]["reason"],
            "Unschedulable"
        );
    }
}
