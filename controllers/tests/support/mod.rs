//! Integration helpers: an in-process berth-apiserver on a loopback port over
//! a temporary embedded store, kube clients to it, Node objects, and a
//! simulated kubelet that does for bound pods what a real one would (Running
//! and Ready status, confirming graceful deletions, renewing its node Lease).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeSpec, NodeStatus, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

pub struct Cluster {
    pub client: Client,
    pub url: String,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn berth_apiserver::store::Store> = Arc::new(
        berth_apiserver::store::embedded::EmbeddedStore::open(&dir.path().join("s.redb")).unwrap(),
    );
    let config = berth_apiserver::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let server = berth_apiserver::build(&config, store).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = berth_apiserver::serve(listener, server, std::future::pending()).await;
    });
    let url = format!("http://{address}");
    let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    Cluster {
        client,
        url,
        _dir: dir,
        server,
    }
}

/// Create a Ready node with the given allocatable cpu and memory.
pub async fn node(client: &Client, name: &str, cpu: &str, memory: &str, labels: &[(&str, &str)]) {
    let resources: BTreeMap<String, Quantity> = [
        ("cpu".to_string(), Quantity(cpu.into())),
        ("memory".to_string(), Quantity(memory.into())),
        ("pods".to_string(), Quantity("110".into())),
    ]
    .into();
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .chain([("kubernetes.io/hostname".to_string(), name.to_string())])
                    .collect(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                last_heartbeat_time: Some(Time(jiff::Timestamp::now())),
                last_transition_time: Some(Time(jiff::Timestamp::now())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    };
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
}

/// A simulated kubelet for `nodes`: bound pods become Running and Ready with a
/// pod IP, graceful deletions are confirmed, and each node's Lease is renewed.
/// Dropping the handle stops it (the nodes then look dead).
pub fn kubelet(client: Client, nodes: Vec<String>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let leases = {
            let client = client.clone();
            let nodes = nodes.clone();
            async move {
                let api: Api<Lease> = Api::namespaced(client, "kube-node-lease");
                loop {
                    for node in &nodes {
                        let lease = Lease {
                            metadata: ObjectMeta {
                                name: Some(node.clone()),
                                ..Default::default()
                            },
                            spec: Some(LeaseSpec {
                                holder_identity: Some(node.clone()),
                                lease_duration_seconds: Some(40),
                                renew_time: Some(MicroTime(jiff::Timestamp::now())),
                                ..Default::default()
                            }),
                        };
                        let _ = api
                            .patch(
                                node,
                                &PatchParams::apply("kubelet").force(),
                                &Patch::Apply(&lease),
                            )
                            .await;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        let pods = {
            let client = client.clone();
            async move {
                let all: Api<Pod> = Api::all(client.clone());
                let mut stream = watcher(all, watcher::Config::default())
                    .applied_objects()
                    .boxed();
                let mut next_ip = 2u32;
                while let Some(Ok(pod)) = stream.next().await {
                    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
                        continue;
                    };
                    if !nodes.contains(&node) {
                        continue;
                    }
                    let api: Api<Pod> =
                        Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
                    if pod.metadata.deletion_timestamp.is_some() {
                        let _ = api
                            .delete(&pod.name_any(), &DeleteParams::default().grace_period(0))
                            .await;
                        continue;
                    }
                    let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
                    if phase.as_deref() == Some("Running") {
                        continue;
                    }
                    let ip = format!("10.244.{}.{}", next_ip / 250, next_ip % 250 + 2);
                    next_ip += 1;
                    let now = Time(jiff::Timestamp::now());
                    let containers: Vec<_> = pod
                        .spec
                        .as_ref()
                        .map(|s| s.containers.iter().map(|c| json!({
                            "name": c.name, "image": c.image, "imageID": "", "ready": true, "started": true,
                            "restartCount": 0, "state": {"running": {"startedAt": now}}
                        })).collect())
                        .unwrap_or_default();
                    let status = json!({"status": {
                        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.0.2.1", "startTime": now,
                        "conditions": [
                            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                            {"type": "Ready", "status": "True", "lastTransitionTime": now}
                        ],
                        "containerStatuses": containers,
                    }});
                    let _ = api
                        .patch_status(
                            &pod.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(status),
                        )
                        .await;
                }
            }
        };
        tokio::join!(leases, pods);
    })
}

/// Poll `check` until it returns Some or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pods in `namespace` matching `labels` (label selector text).
pub async fn pods(client: &Client, namespace: &str, labels: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&kube::api::ListParams::default().labels(labels))
        .await
        .unwrap()
        .items
}
