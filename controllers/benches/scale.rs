//! Controller benchmark: a Deployment of BERTH_BENCH_REPLICAS (default 1000)
//! over BERTH_BENCH_NODES (default 10) simulated nodes, against an in-process
//! berth-apiserver. Prints the time until every pod is bound and until every
//! pod is Running, scheduler throughput in pods/s, and API requests per pod
//! (all clients: controllers and the simulated kubelets, from the server's own
//! request counter). Run: `cargo bench -p berth-controllers --bench scale`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn request_total(url: &str) -> u64 {
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with: cargo bench -p berth-controllers --bench scale");
        return;
    }
    let replicas = env_usize("BERTH_BENCH_REPLICAS", 1000);
    let node_count = env_usize("BERTH_BENCH_NODES", 10);
    let cluster = support::cluster().await;
    let client = cluster.client.clone();
    let mut nodes = Vec::new();
    for i in 0..node_count {
        let name = format!("node-{i}");
        support::node(&client, &name, "64", "256Gi", &[]).await;
        nodes.push(name);
    }
    let _kubelet = support::kubelet(client.clone(), nodes);
    let controllers = ["scheduler", "replicaset", "deployment"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let _manager = tokio::spawn(berth_controllers::run_controllers(
        client.clone(),
        controllers,
        Default::default(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = request_total(&cluster.url).await;
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "bench"}},
                 "template": {"metadata": {"labels": {"app": "bench"}},
                              "spec": {"containers": [{"name": "c", "image": "bench:1",
                                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}
    }))
    .unwrap();
    let started = Instant::now();
    Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut all_bound = None;
    let all_running;
    loop {
        let list = pods
            .list(&ListParams::default().labels("app=bench"))
            .await
            .unwrap()
            .items;
        let bound = list
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .count();
        let running = list
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        if all_bound.is_none() && bound >= replicas {
            all_bound = Some(started.elapsed());
        }
        if running >= replicas {
            all_running = started.elapsed();
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "gave up: {bound} bound, {running} running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = request_total(&cluster.url).await;
    let bound = all_bound.unwrap_or(all_running);
    println!("berth-controllers benchmark: {replicas} replicas over {node_count} simulated nodes");
    println!("all pods bound      {:>9.2} s", bound.as_secs_f64());
    println!("all pods Running    {:>9.2} s", all_running.as_secs_f64());
    println!(
        "scheduler           {:>9.1} pods/s (pods bound / time to all bound)",
        replicas as f64 / bound.as_secs_f64()
    );
    println!(
        "API requests        {:>9.2} per pod ({} in all, every client, this benchmark's own polling included)",
        (after - before) as f64 / replicas as f64,
        after - before
    );
}
