//! The ReplicaSet controller against a real berth-apiserver.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};

fn replica_set(name: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_set_creates_owned_pods_scales_down_and_reports_status() {
    let cluster = support::cluster().await;
    let client = cluster.client.clone();
    let manager = tokio::spawn(berth_controllers::run_controllers(
        client.clone(),
        vec!["replicaset".to_string()],
        Default::default(),
    ));
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs = api
        .create(&PostParams::default(), &replica_set("web", 3))
        .await
        .unwrap();
    let pods = support::eventually(Duration::from_secs(20), "3 pods", || {
        let client = client.clone();
        async move {
            let pods = support::pods(&client, "default", "app=web").await;
            (pods.len() == 3).then_some(pods)
        }
    })
    .await;
    for pod in &pods {
        let owner = &pod.owner_references()[0];
        assert_eq!(owner.uid, rs.uid().unwrap());
        assert_eq!(owner.controller, Some(true));
        assert!(pod.name_any().starts_with("web-"));
    }
    // No double creation while caches catch up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(support::pods(&client, "default", "app=web").await.len(), 3);

    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    support::eventually(Duration::from_secs(20), "scaled to 1", || {
        let (client, api) = (client.clone(), api.clone());
        async move {
            let pods = support::pods(&client, "default", "app=web").await;
            let rs = api.get("web").await.unwrap();
            let status = rs.status.unwrap_or_default();
            (pods.len() == 1 && status.replicas == 1 && status.observed_generation == Some(2))
                .then_some(())
        }
    })
    .await;
    manager.abort();
}
