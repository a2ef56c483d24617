//! Node lifecycle: watches each node's heartbeat (its Lease in
//! `kube-node-lease`, or its Ready condition's heartbeat) and, when it is older
//! than the grace period, marks the node Ready=Unknown and taints it
//! `node.kubernetes.io/unreachable` (NoSchedule and NoExecute); a node whose
//! kubelet reports NotReady gets the `not-ready` taints. The taints go away
//! when the node is healthy again. Pods on a node with NoExecute taints they do
//! not tolerate are deleted, at once or when their `tolerationSeconds` run out,
//! so their controllers replace them elsewhere. It changes no other field.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::events::{EventType, Recorder};

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

#[derive(Debug, Clone)]
pub struct NodeLifecycleConfig {
    /// How long a node may go without a heartbeat before it is Unknown (40 s).
    pub grace_period: Duration,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(40),
        }
    }
}

pub struct Context {
    pub client: Client,
    pub leases: Store<Lease>,
    pub pods: Store<Pod>,
    pub config: NodeLifecycleConfig,
    pub recorder: Recorder,
}

pub async fn run(
    client: Client,
    nodes: (
        Store<Node>,
        impl futures::Stream<Item = Arc<Node>> + Send + 'static,
    ),
    leases: (
        Store<Lease>,
        impl futures::Stream<Item = Arc<Lease>> + Send + 'static,
    ),
    pods: (
        Store<Pod>,
        impl futures::Stream<Item = Arc<Pod>> + Send + 'static,
    ),
    config: NodeLifecycleConfig,
) {
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "node-controller"),
        client,
        leases: leases.0,
        pods: pods.0,
        config,
    });
    Controller::for_shared_stream(nodes.1, nodes.0)
        .watches_shared_stream(leases.1, |lease: Arc<Lease>| {
            (lease.namespace().as_deref() == Some(LEASE_NAMESPACE))
                .then(|| ObjectRef::<Node>::new(&lease.name_any()))
        })
        .watches_shared_stream(pods.1, |pod: Arc<Pod>| {
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .map(|n| ObjectRef::<Node>::new(&n))
        })
        .run(
            reconcile,
            |_, error: &kube::Error, _| {
                tracing::warn!(%error, "node lifecycle sync failed");
                Action::requeue(Duration::from_secs(2))
            },
            context,
        )
        .for_each(|_| async {})
        .await;
}

fn ready_condition(node: &Node) -> Option<&k8s_openapi::api::core::v1::NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The newest sign of life: the Lease's renewTime or the Ready heartbeat.
fn last_heartbeat(node: &Node, lease: Option<&Lease>) -> Option<jiff::Timestamp> {
    let from_lease = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    let from_condition =
        ready_condition(node).and_then(|c| c.last_heartbeat_time.as_ref().map(|t| t.0));
    from_lease.max(from_condition)
}

/// Whether `toleration` tolerates `taint` (Kubernetes' ToleratesTaint).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration
        .effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => key.is_empty() || key == taint.key,
        _ => {
            key == taint.key
                && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
    }
}

/// When a pod on a node with these NoExecute taints must go: None if it
/// tolerates them all for ever, else the deadline (now or later).
pub fn eviction_deadline(
    pod: &Pod,
    taints: &[Taint],
    now: jiff::Timestamp,
) -> Option<jiff::Timestamp> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut deadline: Option<jiff::Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(now);
        }
        // Tolerated for ever unless every matching toleration is limited; then the shortest.
        if matching.iter().all(|t| t.toleration_seconds.is_some()) {
            let seconds = matching
                .iter()
                .filter_map(|t| t.toleration_seconds)
                .min()
                .unwrap_or(0)
                .max(0);
            let added = taint.time_added.as_ref().map_or(now, |t| t.0);
            let due = added + jiff::SignedDuration::from_secs(seconds);
            deadline = Some(deadline.map_or(due, |d| d.min(due)));
        }
    }
    deadline
}

pub async fn reconcile(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    let name = node.name_any();
    let now = jiff::Timestamp::now();
    let lease = ctx
        .leases
        .get(&ObjectRef::new(&name).within(LEASE_NAMESPACE));
    let heartbeat = last_heartbeat(&node, lease.as_deref());
    let grace = ctx.config.grace_period;
    let silent_for = heartbeat
        .map(|h| now.duration_since(h))
        .unwrap_or(jiff::SignedDuration::MAX);
    let stale =
        silent_for >= jiff::SignedDuration::try_from(grace).unwrap_or(jiff::SignedDuration::MAX);
    let api: Api<Node> = Api::all(ctx.client.clone());
    let ready_status = ready_condition(&node).map(|c| c.status.clone());

    if stale && ready_status.as_deref() != Some("Unknown") {
        let patch = json!({"status": {"conditions": [{
            "type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.",
            "lastTransitionTime": Time(now),
            "lastHeartbeatTime": heartbeat.map(Time),
        }]}});
        api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await?;
        ctx.recorder
            .publish(
                node.as_ref(),
                EventType::Normal,
                "NodeNotReady",
                &format!("Node {name} status is now: NodeNotReady"),
            )
            .await;
    }

    // The taints this controller owns, keeping timeAdded of those already there.
    let condition_taint = if stale {
        Some(UNREACHABLE)
    } else if ready_status.as_deref() == Some("False") {
        Some(NOT_READY)
    } else {
        None
    };
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let mut desired: Vec<Taint> = current
        .iter()
        .filter(|t| t.key != UNREACHABLE && t.key != NOT_READY)
        .cloned()
        .collect();
    if let Some(key) = condition_taint {
        for effect in ["NoSchedule", "NoExecute"] {
            let existing = current
                .iter()
                .find(|t| t.key == key && t.effect == effect)
                .cloned();
            desired.push(existing.unwrap_or(Taint {
                key: key.to_string(),
                effect: effect.to_string(),
                value: None,
                time_added: Some(Time(now)),
            }));
        }
    }
    if desired != current {
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": desired}})),
        )
        .await?;
    }

    // Evict pods that do not tolerate the node's NoExecute taints (any owner's).
    let mut next_deadline: Option<jiff::Timestamp> = None;
    if desired.iter().any(|t| t.effect == "NoExecute") {
        for pod in ctx.pods.state() {
            let on_node =
                pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str());
            if !on_node || pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            match eviction_deadline(&pod, &desired, now) {
                Some(due) if due <= now => {
                    let pods: Api<Pod> =
                        Api::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
                    match pods.delete(&pod.name_any(), &DeleteParams::default()).await {
                        Ok(_) => {
                            ctx.recorder
                                .publish(
                                    pod.as_ref(),
                                    EventType::Normal,
                                    "TaintManagerEviction",
                                    &format!(
                                        "Marking for deletion Pod {}/{}",
                                        pod.namespace().unwrap_or_default(),
                                        pod.name_any()
                                    ),
                                )
                                .await;
                        }
                        Err(kube::Error::Api(status)) if status.code == 404 => {}
                        Err(error) => return Err(error),
                    }
                }
                Some(due) => next_deadline = Some(next_deadline.map_or(due, |d| d.min(due))),
                None => {}
            }
        }
    }

    // Look again when the next pod is due, or when the heartbeat would go stale.
    let mut wait = Duration::from_secs(300);
    if let Some(due) = next_deadline {
        wait = wait.min(Duration::try_from(due.duration_since(now)).unwrap_or_default());
    }
    if !stale {
        let left = grace.saturating_sub(Duration::try_from(silent_for).unwrap_or_default());
        wait = wait.min(left);
    }
    Ok(Action::requeue(wait + Duration::from_millis(100)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str, added: i64) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            value: None,
            time_added: Some(Time(jiff::Timestamp::from_second(added).unwrap())),
        }
    }

    fn pod(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                tolerations: Some(tolerations),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn toleration(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    #[test]
    fn untolerated_noexecute_taint_evicts_at_once() {
        let now = jiff::Timestamp::from_second(1000).unwrap();
        assert_eq!(
            eviction_deadline(&pod(vec![]), &[taint(UNREACHABLE, "NoExecute", 900)], now),
            Some(now)
        );
    }

    #[test]
    fn toleration_seconds_count_from_when_the_taint_was_added() {
        let now = jiff::Timestamp::from_second(1000).unwrap();
        let due = eviction_deadline(
            &pod(vec![toleration(UNREACHABLE, Some(300))]),
            &[taint(UNREACHABLE, "NoExecute", 900)],
            now,
        );
        assert_eq!(due, Some(jiff::Timestamp::from_second(1200).unwrap()));
    }

    #[test]
    fn unlimited_toleration_and_noschedule_taints_never_evict() {
        let now = jiff::Timestamp::from_second(1000).unwrap();
        assert_eq!(
            eviction_deadline(
                &pod(vec![toleration(UNREACHABLE, None)]),
                &[taint(UNREACHABLE, "NoExecute", 900)],
                now
            ),
            None
        );
        assert_eq!(
            eviction_deadline(&pod(vec![]), &[taint(UNREACHABLE, "NoSchedule", 900)], now),
            None
        );
    }

    #[test]
    fn empty_key_exists_tolerates_every_taint() {
        let all = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert!(tolerates(&all, &taint("anything", "NoExecute", 0)));
        let equal = Toleration {
            key: Some("k".into()),
            value: Some("v".into()),
            ..Default::default()
        };
        let mut t = taint("k", "NoSchedule", 0);
        assert!(!tolerates(&equal, &t));
        t.value = Some("v".into());
        assert!(tolerates(&equal, &t));
    }
}

#[cfg(test)]
mod reconcile_tests {
    use super::*;
    use crate::fake_api;
    use http::Method;

    fn node(heartbeat_seconds_ago: i64) -> Node {
        let beat = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(heartbeat_seconds_ago);
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "uid": "node-uid"},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": Time(beat)}]}
        }))
        .unwrap()
    }

    fn pod_on_n1(tolerate: bool) -> Pod {
        let tolerations = if tolerate {
            serde_json::json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}])
        } else {
            serde_json::json!([])
        };
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": if tolerate { "stays" } else { "goes" }, "namespace": "default"},
            "spec": {"nodeName": "n1", "tolerations": tolerations, "containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap()
    }

    fn context(pods: Vec<Pod>) -> (Arc<Context>, Arc<std::sync::Mutex<Vec<fake_api::Recorded>>>) {
        let (client, log) = fake_api::client(fake_api::echo);
        let ctx = Context {
            recorder: Recorder::new(client.clone(), "test"),
            client,
            leases: fake_api::store(vec![]),
            pods: fake_api::store(pods),
            config: NodeLifecycleConfig {
                grace_period: Duration::from_secs(40),
            },
        };
        (Arc::new(ctx), log)
    }

    #[tokio::test]
    async fn a_silent_node_becomes_unknown_tainted_and_loses_intolerant_pods() {
        let (ctx, log) = context(vec![pod_on_n1(false), pod_on_n1(true)]);
        reconcile(Arc::new(node(60)), ctx).await.unwrap();
        let status = fake_api::requests(&log, Method::PATCH, "/nodes/n1/status");
        assert_eq!(
            status[0].body["status"]["conditions"][0]["status"],
            "Unknown"
        );
        let taints = fake_api::requests(&log, Method::PATCH, "/nodes/n1?");
        let keys: Vec<(&str, &str)> = taints[0].body["spec"]["taints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["key"].as_str().unwrap(), t["effect"].as_str().unwrap()))
            .collect();
        assert_eq!(
            keys,
            [(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]
        );
        let deletes: Vec<String> = fake_api::requests(&log, Method::DELETE, "/pods/")
            .iter()
            .map(|r| r.path.clone())
            .collect();
        assert_eq!(deletes.len(), 1);
        assert!(deletes[0].contains("/pods/goes"), "{deletes:?}");
    }

    #[tokio::test]
    async fn a_healthy_node_is_left_alone() {
        let (ctx, log) = context(vec![pod_on_n1(false)]);
        let action = reconcile(Arc::new(node(5)), ctx).await.unwrap();
        assert!(log.lock().unwrap().is_empty());
        assert_ne!(
            action,
            Action::await_change(),
            "it looks again before the heartbeat goes stale"
        );
    }
}
