//! `berth-controllers`: parses flags and calls `berth_controllers::run`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The Berth scheduler and controller manager.
#[derive(Parser, Debug)]
#[command(name = "berth-controllers", version)]
struct Flags {
    /// Kubeconfig for the API server (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Comma-separated controllers to run (default: all).
    #[arg(long, value_delimiter = ',')]
    controllers: Vec<String>,
    /// Elect a leader through a Lease in kube-system before acting.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Identity in the leader Lease (default: hostname_pid).
    #[arg(long)]
    leader_elect_identity: Option<String>,
    /// Seconds a Lease holder may go without renewing before others take over.
    #[arg(long, default_value_t = 15)]
    leader_elect_lease_duration: u64,
    /// Seconds the leader keeps trying to renew before it gives up leadership.
    #[arg(long, default_value_t = 10)]
    leader_elect_renew_deadline: u64,
    /// Seconds between leader election attempts and renewals.
    #[arg(long, default_value_t = 2)]
    leader_elect_retry_period: u64,
    /// Seconds a node may go without a heartbeat before it is marked Unknown and tainted unreachable.
    #[arg(long, default_value_t = 40)]
    node_monitor_grace_period: u64,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    log_level: String,
}

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&flags.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let mut config = berth_controllers::Config {
        kubeconfig: flags.kubeconfig,
        leader_elect: flags.leader_elect,
        lease_duration: Duration::from_secs(flags.leader_elect_lease_duration),
        renew_deadline: Duration::from_secs(flags.leader_elect_renew_deadline),
        retry_period: Duration::from_secs(flags.leader_elect_retry_period),
        node_lifecycle: berth_controllers::node_lifecycle::NodeLifecycleConfig {
            grace_period: Duration::from_secs(flags.node_monitor_grace_period),
        },
        ..Default::default()
    };
    if !flags.controllers.is_empty() {
        config.controllers = flags.controllers;
    }
    if let Some(identity) = flags.leader_elect_identity {
        config.identity = identity;
    }
    if let Err(error) = berth_controllers::run(config).await {
        eprintln!("berth-controllers: {error}");
        std::process::exit(1);
    }
}
