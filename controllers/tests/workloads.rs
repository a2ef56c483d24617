//! Scheduler, ReplicaSet, Deployment and Endpoints controllers together
//! against a real berth-apiserver, with two simulated nodes whose kubelet
//! marks bound pods Running and Ready; `kubectl rollout` is the real kubectl.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use support::eventually;

const WAIT: Duration = Duration::from_secs(60);

fn deployment(name: &str, replicas: i32, image: &str, extra_spec: serde_json::Value) -> Deployment {
    let mut value = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image,
                                        "ports": [{"name": "http", "containerPort": 8080}],
                                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}
    });
    if let Some(extra) = extra_spec.as_object() {
        for (k, v) in extra {
            value["spec"][k] = v.clone();
        }
    }
    serde_json::from_value(value).unwrap()
}

struct Env {
    cluster: support::Cluster,
    client: Client,
    _manager: tokio::task::JoinHandle<()>,
    _kubelet: tokio::task::JoinHandle<()>,
    kubeconfig: tempfile::NamedTempFile,
}

async fn env() -> Env {
    let cluster = support::cluster().await;
    let client = cluster.client.clone();
    support::node(&client, "node-a", "4", "8Gi", &[("zone", "a")]).await;
    support::node(&client, "node-b", "4", "8Gi", &[("zone", "b")]).await;
    let kubelet = support::kubelet(client.clone(), vec!["node-a".into(), "node-b".into()]);
    let controllers: Vec<String> = ["scheduler", "replicaset", "deployment", "endpoints"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let manager = tokio::spawn(berth_controllers::run_controllers(
        client.clone(),
        controllers,
        Default::default(),
    ));
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        kubeconfig.path(),
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: default\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n", cluster.url),
    )
    .unwrap();
    Env {
        cluster,
        client,
        _manager: manager,
        _kubelet: kubelet,
        kubeconfig,
    }
}

impl Env {
    fn kubectl(&self, args: &[&str]) -> String {
        let home = tempfile::tempdir().unwrap();
        let output = std::process::Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.kubeconfig.path())
            .env("HOME", home.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

fn ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn image(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

async fn wait_rolled_out(client: &Client, name: &str, replicas: usize, want_image: &str) {
    let client = client.clone();
    let want_image = want_image.to_string();
    eventually(
        WAIT,
        &format!("{name}: {replicas} ready pods of {want_image}"),
        || {
            let (client, want_image) = (client.clone(), want_image.clone());
            let name = name.to_string();
            async move {
                let pods = support::pods(&client, "default", &format!("app={name}")).await;
                let live: Vec<&Pod> = pods
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .collect();
                let d = Api::<Deployment>::namespaced(client.clone(), "default")
                    .get(&name)
                    .await
                    .ok()?;
                let status = d.status.clone().unwrap_or_default();
                let done = live.len() == replicas
                    && live.iter().all(|p| ready(p) && image(p) == want_image)
                    && status.updated_replicas.unwrap_or(0) as usize == replicas
                    && status.available_replicas.unwrap_or(0) as usize == replicas
                    && status.observed_generation == d.metadata.generation;
                done.then_some(())
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_runs_spreads_rolls_without_dropping_below_replicas_and_undoes() {
    let env = env().await;
    let client = env.client.clone();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let strategy = serde_json::json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}});
    api.create(
        &PostParams::default(),
        &deployment("web", 5, "web:1", strategy),
    )
    .await
    .unwrap();
    wait_rolled_out(&client, "web", 5, "web:1").await;
    let status = env.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    assert!(status.contains("successfully rolled out"), "{status}");

    // Spread over both nodes.
    let pods = support::pods(&client, "default", "app=web").await;
    let on_a = pods
        .iter()
        .filter(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("node-a"))
        .count();
    assert!((2..=3).contains(&on_a), "{on_a} of 5 on node-a");

    // Endpoints follow the ready pods, resolving the named target port.
    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    eventually(WAIT, "endpoints with 5 addresses on 8080", || {
        let client = client.clone();
        async move {
            let ep = Api::<Endpoints>::namespaced(client, "default")
                .get_opt("web")
                .await
                .ok()??;
            let subset = ep.subsets?.first()?.clone();
            (subset.addresses?.len() == 5 && subset.ports?[0].port == 8080).then_some(())
        }
    })
    .await;

    // Rolling update with maxUnavailable=0: ready pods never drop below 5.
    let watching = Arc::new(AtomicBool::new(true));
    let lowest = Arc::new(AtomicUsize::new(usize::MAX));
    let monitor = {
        let (client, watching, lowest) = (client.clone(), watching.clone(), lowest.clone());
        tokio::spawn(async move {
            while watching.load(Ordering::SeqCst) {
                let pods = support::pods(&client, "default", "app=web").await;
                lowest.fetch_min(pods.iter().filter(|p| ready(p)).count(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    env.kubectl(&["set", "image", "deployment/web", "app=web:2"]);
    wait_rolled_out(&client, "web", 5, "web:2").await;
    watching.store(false, Ordering::SeqCst);
    monitor.await.unwrap();
    assert!(
        lowest.load(Ordering::SeqCst) >= 5,
        "ready pods dropped to {}",
        lowest.load(Ordering::SeqCst)
    );
    let d = api.get("web").await.unwrap();
    assert_eq!(d.annotations()["deployment.kubernetes.io/revision"], "2");

    // kubectl rollout undo goes back to web:1 as revision 3.
    env.kubectl(&["rollout", "undo", "deployment/web"]);
    wait_rolled_out(&client, "web", 5, "web:1").await;
    let d = api.get("web").await.unwrap();
    assert_eq!(d.annotations()["deployment.kubernetes.io/revision"], "3");
    let history = env.kubectl(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('2') && history.contains('3'), "{history}");

    // Scale 5 -> 0 -> 3.
    env.kubectl(&["scale", "deployment/web", "--replicas=0"]);
    eventually(WAIT, "no pods", || {
        let client = client.clone();
        async move {
            support::pods(&client, "default", "app=web")
                .await
                .is_empty()
                .then_some(())
        }
    })
    .await;
    env.kubectl(&["scale", "deployment/web", "--replicas=3"]);
    wait_rolled_out(&client, "web", 3, "web:1").await;
    drop(env.cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_respects_resources_taints_and_selectors() {
    let env = env().await;
    let client = env.client.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = |name: &str, spec: serde_json::Value| -> Pod {
        let mut spec = spec;
        spec["containers"] = serde_json::json!([{"name": "c", "image": "i", "resources": spec.get("requests").map(|r| serde_json::json!({"requests": r})).unwrap_or(serde_json::json!({}))}]);
        if let Some(map) = spec.as_object_mut() {
            map.remove("requests");
        }
        serde_json::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})).unwrap()
    };
    // Too big for either node.
    pods.create(
        &PostParams::default(),
        &pod("huge", serde_json::json!({"requests": {"cpu": "16"}})),
    )
    .await
    .unwrap();
    // Only fits where the selector says.
    pods.create(
        &PostParams::default(),
        &pod("zone-b", serde_json::json!({"nodeSelector": {"zone": "b"}})),
    )
    .await
    .unwrap();
    // Taint node-a; an intolerant pod must go to node-b, a tolerant one may go anywhere.
    Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .patch("node-a", &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}})))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    pods.create(&PostParams::default(), &pod("plain", serde_json::json!({})))
        .await
        .unwrap();

    let node_of = |name: &'static str| {
        let pods = pods.clone();
        async move { pods.get(name).await.ok()?.spec?.node_name }
    };
    assert_eq!(
        eventually(WAIT, "zone-b bound", || node_of("zone-b")).await,
        "node-b"
    );
    assert_eq!(
        eventually(WAIT, "plain bound", || node_of("plain")).await,
        "node-b"
    );
    let message = eventually(WAIT, "FailedScheduling event for huge", || {
        let client = client.clone();
        async move {
            let events = Api::<Event>::namespaced(client, "default")
                .list(&ListParams::default().fields("involvedObject.name=huge"))
                .await
                .ok()?;
            events
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("FailedScheduling"))?
                .message
        }
    })
    .await;
    assert!(message.starts_with("0/2 nodes are available:"), "{message}");
    assert!(message.contains("Insufficient cpu"), "{message}");
    let huge = pods.get("huge").await.unwrap();
    assert!(huge.spec.unwrap().node_name.is_none());
    let condition = huge
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_deref()),
        ("False", Some("Unschedulable"))
    );
    // kubectl describe shows the reason as against Kubernetes.
    let described = env.kubectl(&["describe", "pod", "huge"]);
    assert!(
        described.contains("FailedScheduling") && described.contains("Insufficient cpu"),
        "{described}"
    );
    let _ = pods.get("huge").await.map(|p| p.name_any());
}

/// Freeing room on a node retries pending pods at once, not on the periodic
/// 15 s retry: the deadline below is shorter than that period on purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_pod_is_scheduled_when_a_bound_pod_frees_room() {
    let env = env().await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let pod = |name: &str, cpu: &str| -> Pod {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .unwrap()
    };
    for name in ["big-1", "big-2"] {
        pods.create(&PostParams::default(), &pod(name, "3500m"))
            .await
            .unwrap();
    }
    let mut nodes = Vec::new();
    for name in ["big-1", "big-2"] {
        let pods = pods.clone();
        nodes.push(
            eventually(WAIT, "big pods bound", || {
                let pods = pods.clone();
                async move { pods.get(name).await.ok()?.spec?.node_name }
            })
            .await,
        );
    }
    // Created together, the two still may not share a 4-cpu node.
    assert_ne!(nodes[0], nodes[1], "overcommitted: {nodes:?}");
    pods.create(&PostParams::default(), &pod("waiting", "1"))
        .await
        .unwrap();
    eventually(WAIT, "waiting is unschedulable", || {
        let pods = pods.clone();
        async move {
            let status = pods.get("waiting").await.ok()?.status?;
            status
                .conditions?
                .iter()
                .any(|c| c.type_ == "PodScheduled" && c.status == "False")
                .then_some(())
        }
    })
    .await;
    pods.delete("big-1", &kube::api::DeleteParams::default())
        .await
        .unwrap();

    eventually(
        Duration::from_secs(10),
        "waiting bound soon after big-1 went",
        || {
            let pods = pods.clone();
            async move { pods.get("waiting").await.ok()?.spec?.node_name }
        },
    )
    .await;
}
