//! Garbage collection (background, foreground, orphan), namespace deletion,
//! node lifecycle (lease expiry → taint → eviction → replacement) and leader
//! election, against a real berth-apiserver with simulated kubelets.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use support::eventually;

const WAIT: Duration = Duration::from_secs(60);

fn deployment(name: &str, replicas: i32, template_spec: serde_json::Value) -> Deployment {
    let mut spec = serde_json::json!({"containers": [{"name": "app", "image": "app:1"}]});
    if let Some(extra) = template_spec.as_object() {
        for (k, v) in extra {
            spec[k] = v.clone();
        }
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}
    }))
    .unwrap()
}

async fn start(
    controllers: &[&str],
    config: berth_controllers::Config,
) -> (support::Cluster, Client, Vec<tokio::task::JoinHandle<()>>) {
    let cluster = support::cluster().await;
    let client = cluster.client.clone();
    support::node(&client, "node-a", "4", "8Gi", &[]).await;
    support::node(&client, "node-b", "4", "8Gi", &[]).await;
    let kubelet_a = support::kubelet(client.clone(), vec!["node-a".into()]);
    let kubelet_b = support::kubelet(client.clone(), vec!["node-b".into()]);
    let names = controllers.iter().map(|s| s.to_string()).collect();
    let manager = tokio::spawn(berth_controllers::run_controllers(
        client.clone(),
        names,
        config,
    ));
    (cluster, client, vec![kubelet_a, kubelet_b, manager])
}

const WORKLOADS: &[&str] = &[
    "scheduler",
    "replicaset",
    "deployment",
    "garbagecollector",
    "namespace",
];

async fn running_pods(client: &Client, namespace: &str, app: &str, count: usize) {
    let (client, namespace, app) = (client.clone(), namespace.to_string(), app.to_string());
    eventually(WAIT, &format!("{count} running pods of {app}"), || {
        let (client, namespace, app) = (client.clone(), namespace.clone(), app.clone());
        async move {
            let pods = support::pods(&client, &namespace, &format!("app={app}")).await;
            let running = pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            (running == count).then_some(())
        }
    })
    .await;
}

async fn gone<K>(api: Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = name.to_string();
    eventually(WAIT, &format!("{name} gone"), || {
        let (api, name) = (api.clone(), name.clone());
        async move { api.get_opt(&name).await.ok()?.is_none().then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_deployment_cascades_in_background_and_foreground() {
    let (_cluster, client, _tasks) = start(WORKLOADS, Default::default()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &deployment("bg", 3, serde_json::json!({})),
        )
        .await
        .unwrap();
    deployments
        .create(
            &PostParams::default(),
            &deployment("fg", 2, serde_json::json!({})),
        )
        .await
        .unwrap();
    running_pods(&client, "default", "bg", 3).await;
    running_pods(&client, "default", "fg", 2).await;

    deployments
        .delete("bg", &DeleteParams::background())
        .await
        .unwrap();
    eventually(WAIT, "bg replica sets and pods collected", || {
        let client = client.clone();
        async move {
            let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default")
                .list(&ListParams::default().labels("app=bg"))
                .await
                .ok()?;
            let pods = support::pods(&client, "default", "app=bg").await;
            (rs.items.is_empty() && pods.is_empty()).then_some(())
        }
    })
    .await;

    // Foreground: the Deployment stays (deleting) until its dependents are gone.
    deployments
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    let pending = deployments.get("fg").await.unwrap();
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(
        pending
            .finalizers()
            .contains(&"foregroundDeletion".to_string())
    );
    gone(deployments.clone(), "fg").await;
    assert!(
        support::pods(&client, "default", "app=fg").await.is_empty(),
        "dependents went first"
    );
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels("app=fg"))
        .await
        .unwrap();
    assert!(rs.items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_delete_keeps_dependents_without_owner_references() {
    let (_cluster, client, _tasks) = start(WORKLOADS, Default::default()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &deployment("orphan", 2, serde_json::json!({})),
        )
        .await
        .unwrap();
    running_pods(&client, "default", "orphan", 2).await;
    deployments
        .delete("orphan", &DeleteParams::orphan())
        .await
        .unwrap();
    gone(deployments.clone(), "orphan").await;
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels("app=orphan"))
        .await
        .unwrap();
    assert_eq!(rs.items.len(), 1, "the ReplicaSet is orphaned, not deleted");
    assert!(rs.items[0].owner_references().is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    running_pods(&client, "default", "orphan", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_removes_everything_inside_then_the_namespace() {
    let (_cluster, client, _tasks) = start(WORKLOADS, Default::default()).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "doomed"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "doomed")
        .create(
            &PostParams::default(),
            &deployment("web", 2, serde_json::json!({})),
        )
        .await
        .unwrap();
    let cm: ConfigMap = serde_json::from_value(
        serde_json::json!({"metadata": {"name": "settings"}, "data": {"a": "b"}}),
    )
    .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "doomed")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    running_pods(&client, "doomed", "web", 2).await;

    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = namespaces.get("doomed").await.unwrap();
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    gone(namespaces.clone(), "doomed").await;
    let left = Api::<Pod>::namespaced(client.clone(), "doomed")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(left.items.is_empty());
    assert!(
        Api::<ConfigMap>::namespaced(client.clone(), "doomed")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_lease_stops_is_tainted_and_its_pods_move() {
    let config = berth_controllers::Config {
        node_lifecycle: berth_controllers::node_lifecycle::NodeLifecycleConfig {
            grace_period: Duration::from_secs(3),
        },
        ..Default::default()
    };
    let controllers = ["scheduler", "replicaset", "deployment", "nodelifecycle"];
    let (_cluster, client, tasks) = start(&controllers, config).await;
    // Tolerate an unreachable node for 1 s instead of the default 300 s.
    let tolerations = serde_json::json!({"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]});
    Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &deployment("web", 4, tolerations))
        .await
        .unwrap();
    running_pods(&client, "default", "web", 4).await;
    let on_a = |pods: &[Pod]| {
        pods.iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-a")
            })
            .count()
    };
    assert!(
        on_a(&support::pods(&client, "default", "app=web").await) > 0,
        "spread puts some pods on node-a"
    );

    tasks[0].abort(); // node-a's kubelet stops: no more lease renewals.
    let nodes: Api<Node> = Api::all(client.clone());
    eventually(WAIT, "node-a Unknown and tainted unreachable", || {
        let nodes = nodes.clone();
        async move {
            let node = nodes.get("node-a").await.ok()?;
            let unknown = node
                .status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "Unknown");
            let taints = node.spec?.taints.unwrap_or_default();
            let tainted = ["NoSchedule", "NoExecute"].iter().all(|e| {
                taints
                    .iter()
                    .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == *e)
            });
            (unknown && tainted).then_some(())
        }
    })
    .await;
    eventually(WAIT, "4 running pods, all on node-b", || {
        let client = client.clone();
        async move {
            let pods = support::pods(&client, "default", "app=web").await;
            let live: Vec<&Pod> = pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let all_b = live
                .iter()
                .all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-b"));
            let running = live
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            (live.len() == 4 && all_b && running == 4).then_some(())
        }
    })
    .await;
    assert_eq!(on_a(&support::pods(&client, "default", "app=web").await), 0);
    // The healthy node was never touched.
    let b = nodes.get("node-b").await.unwrap();
    assert!(b.spec.unwrap().taints.unwrap_or_default().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controller_managers_never_act_at_once() {
    let cluster = support::cluster().await;
    let client = cluster.client.clone();
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        kubeconfig.path(),
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n", cluster.url),
    )
    .unwrap();
    let manager = |identity: &str| berth_controllers::Config {
        kubeconfig: Some(kubeconfig.path().to_path_buf()),
        controllers: vec!["replicaset".into()],
        identity: identity.into(),
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(250),
        ..Default::default()
    };
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-system");
    let holder = || {
        let leases = leases.clone();
        async move {
            leases
                .get("berth-controller-manager")
                .await
                .ok()?
                .spec?
                .holder_identity
        }
    };
    let a = tokio::spawn(berth_controllers::run(manager("manager-a")));
    assert_eq!(
        eventually(WAIT, "manager-a leads", &holder).await,
        "manager-a"
    );
    let b = tokio::spawn(berth_controllers::run(manager("manager-b")));

    let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    }))
    .unwrap();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    replica_sets
        .create(&PostParams::default(), &rs)
        .await
        .unwrap();
    eventually(WAIT, "3 pods", || {
        let client = client.clone();
        async move { (support::pods(&client, "default", "app=web").await.len() == 3).then_some(()) }
    })
    .await;
    // Both managers stay up for a while: still exactly one holder, still 3 pods.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(holder().await.as_deref(), Some("manager-a"));
        assert_eq!(support::pods(&client, "default", "app=web").await.len(), 3);
    }
    assert!(!b.is_finished());

    a.abort(); // manager-a dies without releasing the lease.
    assert_eq!(
        eventually(WAIT, "manager-b takes over", || async {
            holder().await.filter(|h| h == "manager-b")
        })
        .await,
        "manager-b"
    );
    replica_sets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    eventually(WAIT, "manager-b scales to 5", || {
        let client = client.clone();
        async move { (support::pods(&client, "default", "app=web").await.len() == 5).then_some(()) }
    })
    .await;
    let names: Vec<String> = support::pods(&client, "default", "app=web")
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
    b.abort();
}
