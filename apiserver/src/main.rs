//! `berth-apiserver`: parses flags (kube-apiserver's names where one exists) and
//! calls `berth_apiserver::run`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The Berth API server: the Kubernetes REST API over an embedded store or etcd.
#[derive(Parser, Debug)]
#[command(name = "berth-apiserver", version)]
struct Flags {
    /// Directory for the embedded store and the generated client kubeconfig.
    #[arg(long, default_value = "/var/lib/berth/apiserver")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: IpAddr,
    /// Port to listen on (plain HTTP; 0 picks a free port).
    #[arg(long, alias = "secure-port", default_value_t = 6443)]
    port: u16,
    /// Comma-separated etcd endpoints (http://127.0.0.1:2379). Empty: the embedded store.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// The range Service cluster IPs are allocated from.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: String,
    /// Seconds between compactions of store history.
    #[arg(long, default_value_t = 300)]
    etcd_compaction_interval: u64,
    /// tolerationSeconds of the not-ready:NoExecute toleration added to pods without one.
    #[arg(long, default_value_t = 300)]
    default_not_ready_toleration_seconds: i64,
    /// tolerationSeconds of the unreachable:NoExecute toleration added to pods without one.
    #[arg(long, default_value_t = 300)]
    default_unreachable_toleration_seconds: i64,
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
    let config = berth_apiserver::Config {
        data_dir: flags.data_dir,
        bind_address: flags.bind_address,
        port: flags.port,
        etcd_servers: flags.etcd_servers,
        service_cluster_ip_range: flags.service_cluster_ip_range,
        compaction_interval: Duration::from_secs(flags.etcd_compaction_interval.max(1)),
        admission: berth_apiserver::registry::Admission {
            not_ready_toleration_seconds: flags.default_not_ready_toleration_seconds,
            unreachable_toleration_seconds: flags.default_unreachable_toleration_seconds,
        },
        ..Default::default()
    };
    if let Err(error) = berth_apiserver::run(config).await {
        eprintln!("berth-apiserver: {error}");
        std::process::exit(1);
    }
}
