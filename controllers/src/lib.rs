//! berth-controllers: the scheduler and the controller manager. Each controller
//! is a module built on kube-rs `runtime::Controller` (shared watch → cache →
//! queue → idempotent reconcile) and talks only to the API server. `run`
//! elects a leader through a Lease and runs the selected controllers while it
//! holds it; losing the Lease stops them all at once.

pub mod deployment;
pub mod deployment_logic;
pub mod endpoints;
pub mod endpoints_logic;
pub mod events;
#[cfg(test)]
pub(crate) mod fake_api;
pub mod garbage_collector;
pub mod informers;
pub mod leader_election;
pub mod namespace;
pub mod node_lifecycle;
pub mod pods;
pub mod replicaset;
pub mod scheduler;
pub mod scheduler_logic;
pub mod serviceaccount;

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service, ServiceAccount};

use crate::informers::Informer;
use crate::leader_election::{LeaderElectionConfig, LeaderElector};

/// Every controller `--controllers` can name, in start order.
pub const ALL_CONTROLLERS: &[&str] = &[
    "scheduler",
    "replicaset",
    "deployment",
    "endpoints",
    "garbagecollector",
    "namespace",
    "nodelifecycle",
    "serviceaccount",
];

#[derive(Debug, Clone)]
pub struct Config {
    /// Kubeconfig to reach the API server; None: $KUBECONFIG, ~/.kube/config or in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Which controllers run (names from `ALL_CONTROLLERS`).
    pub controllers: Vec<String>,
    /// Elect a leader through a Lease before acting.
    pub leader_elect: bool,
    /// This manager's identity in the Lease (default: hostname and pid).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    /// Node lifecycle settings (heartbeat grace period).
    pub node_lifecycle: node_lifecycle::NodeLifecycleConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            controllers: ALL_CONTROLLERS.iter().map(|s| s.to_string()).collect(),
            leader_elect: true,
            identity: default_identity(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            node_lifecycle: Default::default(),
        }
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "berth".into());
    format!("{host}_{}", std::process::id())
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("unknown controller {0:?}; known: {known}", known = ALL_CONTROLLERS.join(", "))]
    UnknownController(String),
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error("lost leadership")]
    LostLeadership,
}

/// A client from the configuration.
pub async fn client(config: &Config) -> Result<kube::Client, RunError> {
    let kube_config = match &config.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| RunError::Kubeconfig(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|e| RunError::Kubeconfig(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| RunError::Kubeconfig(e.to_string()))?,
    };
    Ok(kube::Client::try_from(kube_config)?)
}

/// Run until leadership is lost (an error) or the controllers end.
pub async fn run(config: Config) -> Result<(), RunError> {
    for name in &config.controllers {
        if !ALL_CONTROLLERS.contains(&name.as_str()) {
            return Err(RunError::UnknownController(name.clone()));
        }
    }
    let client = client(&config).await?;
    if !config.leader_elect {
        run_controllers(client.clone(), config.controllers.clone(), config.clone()).await;
        return Ok(());
    }
    let elector = LeaderElector::new(
        client.clone(),
        LeaderElectionConfig {
            lease_duration: config.lease_duration,
            renew_deadline: config.renew_deadline,
            retry_period: config.retry_period,
            ..LeaderElectionConfig::new(&config.identity)
        },
    );
    elector.acquire().await;
    // Everything runs inside this one future: when the Lease is lost, dropping
    // it stops every watch and every reconcile at once.
    tokio::select! {
        _ = elector.hold() => Err(RunError::LostLeadership),
        _ = run_controllers(client.clone(), config.controllers.clone(), config.clone()) => {
            elector.release().await;
            Ok(())
        }
    }
}

/// Build the shared informers the selected controllers need and run them all.
pub async fn run_controllers(client: kube::Client, selected: Vec<String>, config: Config) {
    let enabled = |name: &str| selected.iter().any(|s| s == name);
    let mut pods = Informer::<Pod>::new(&client);
    let mut replica_sets = Informer::<ReplicaSet>::new(&client);
    let mut deployments = Informer::<Deployment>::new(&client);
    let mut nodes = Informer::<Node>::new(&client);
    let mut services = Informer::<Service>::new(&client);
    let mut namespaces = Informer::<Namespace>::new(&client);
    let mut service_accounts = Informer::<ServiceAccount>::new(&client);
    let mut leases = Informer::<Lease>::new(&client);
    let mut tasks: Vec<BoxFuture<'static, ()>> = Vec::new();
    if enabled("garbagecollector") {
        tasks.push(Box::pin(garbage_collector::run(client.clone())));
    }
    if enabled("namespace") {
        tasks.push(Box::pin(namespace::run(
            client.clone(),
            (namespaces.store.clone(), namespaces.subscribe()),
        )));
    }
    if enabled("nodelifecycle") {
        tasks.push(Box::pin(node_lifecycle::run(
            client.clone(),
            (nodes.store.clone(), nodes.subscribe()),
            (leases.store.clone(), leases.subscribe()),
            (pods.store.clone(), pods.subscribe()),
            config.node_lifecycle.clone(),
        )));
    }
    if enabled("scheduler") {
        tasks.push(Box::pin(scheduler::run(
            client.clone(),
            (pods.store.clone(), pods.subscribe()),
            (nodes.store.clone(), nodes.subscribe()),
        )));
    }
    if enabled("deployment") {
        tasks.push(Box::pin(deployment::run(
            client.clone(),
            (deployments.store.clone(), deployments.subscribe()),
            (replica_sets.store.clone(), replica_sets.subscribe()),
            (pods.store.clone(), pods.subscribe()),
        )));
    }
    if enabled("endpoints") {
        tasks.push(Box::pin(endpoints::run(
            client.clone(),
            (services.store.clone(), services.subscribe()),
            (pods.store.clone(), pods.subscribe()),
        )));
    }
    if enabled("replicaset") {
        tasks.push(Box::pin(replicaset::run(
            client.clone(),
            (replica_sets.store.clone(), replica_sets.subscribe()),
            (pods.store.clone(), pods.subscribe()),
        )));
    }
    if enabled("serviceaccount") {
        tasks.push(Box::pin(serviceaccount::run(
            client.clone(),
            (namespaces.store.clone(), namespaces.subscribe()),
            service_accounts.subscribe(),
        )));
    }
    // Informers start after every subscription is taken.
    tasks.push(pods.run());
    tasks.push(replica_sets.run());
    tasks.push(deployments.run());
    tasks.push(nodes.run());
    tasks.push(services.run());
    tasks.push(namespaces.run());
    tasks.push(service_accounts.run());
    tasks.push(leases.run());
    futures::future::join_all(tasks).await;
}
