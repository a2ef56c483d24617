//! berth-apiserver: the Kubernetes REST API over Berth's store. Every other
//! component is a client of it. `run(config)` opens the configured store
//! (embedded redb by default, etcd when `etcd_servers` is set), makes sure the
//! system namespaces exist, starts history compaction and serves HTTP until
//! told to stop.

pub mod auth;
pub mod discovery;
pub mod error;
pub mod openapi;
pub mod printers;
pub mod protobuf;
pub mod registry;
pub mod resources;
pub mod selectors;
pub mod server;
pub mod store;
pub mod strategic_merge;
pub mod validation;
pub mod watch_cache;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::registry::Registry;
use crate::resources::Catalogue;
use crate::server::ApiServer;
use crate::store::Store;

/// Everything `run` needs; the binary fills it from flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the embedded store (and the kubeconfig written for clients) live.
    pub data_dir: PathBuf,
    pub bind_address: IpAddr,
    pub port: u16,
    /// etcd endpoints; empty means the embedded store.
    pub etcd_servers: Vec<String>,
    /// The Service cluster IP range, e.g. 10.96.0.0/12.
    pub service_cluster_ip_range: String,
    /// How often history older than the previous tick is compacted away.
    pub compaction_interval: Duration,
    /// How often a quiet watch that asked for bookmarks gets one.
    pub watch_progress_interval: Duration,
    /// Defaults applied to new objects (pod eviction tolerations).
    pub admission: registry::Admission,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/var/lib/berth/apiserver"),
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 6443,
            etcd_servers: Vec::new(),
            service_cluster_ip_range: "10.96.0.0/12".into(),
            compaction_interval: Duration::from_secs(300),
            watch_progress_interval: Duration::from_secs(30),
            admission: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Api(Box<error::ApiError>),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl From<error::ApiError> for RunError {
    fn from(error: error::ApiError) -> Self {
        RunError::Api(Box::new(error))
    }
}

/// Parse "10.96.0.0/12".
pub fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), RunError> {
    let bad = || {
        RunError::Config(format!(
            "invalid service CIDR {text:?}: expected IPv4 a.b.c.d/n"
        ))
    };
    let (ip, bits) = text.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let bits: u8 = bits.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&bits) {
        return Err(bad());
    }
    let mask = u32::MAX << (32 - bits as u32);
    Ok((Ipv4Addr::from(u32::from(ip) & mask), bits))
}

/// Open the store the configuration asks for.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, RunError> {
    if config.etcd_servers.is_empty() {
        let path = config.data_dir.join("store.redb");
        Ok(Arc::new(store::embedded::EmbeddedStore::open(&path)?))
    } else {
        Ok(Arc::new(
            store::etcd::EtcdStore::connect(&config.etcd_servers).await?,
        ))
    }
}

/// A client kubeconfig for the server at `address` (plain HTTP, no credentials).
pub fn kubeconfig(address: &SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: berth\n  cluster:\n    server: http://{address}\ncontexts:\n- name: berth\n  context:\n    cluster: berth\n    user: berth\n    namespace: default\ncurrent-context: berth\nusers:\n- name: berth\n  user: {{}}\n"
    )
}

/// Build the server over a store (used by `run` and by in-process tests).
pub async fn build(config: &Config, store: Arc<dyn Store>) -> Result<Arc<ApiServer>, RunError> {
    let catalogue = Arc::new(Catalogue::new(resources::builtin()));
    let registry = Arc::new(Registry::new(
        store,
        catalogue,
        parse_cidr(&config.service_cluster_ip_range)?,
        config.watch_progress_interval,
        config.admission,
    ));
    registry.ensure_system_namespaces().await?;
    Ok(Arc::new(ApiServer {
        registry,
        authenticator: Arc::new(auth::AllowAll),
        server_address: format!("{}:{}", config.bind_address, config.port),
        metrics: Default::default(),
        ready: std::sync::atomic::AtomicBool::new(true),
    }))
}

/// Compact history every interval up to the revision seen at the previous tick,
/// so watchers have at least one interval to catch up (as kube-apiserver does).
async fn compact_periodically(store: Arc<dyn Store>, interval: Duration) {
    let mut previous: Option<i64> = None;
    loop {
        tokio::time::sleep(interval).await;
        if let Some(revision) = previous.filter(|r| *r > 0) {
            match store.compact(revision).await {
                Ok(()) => tracing::info!(revision, "compacted store history"),
                Err(store::StoreError::Compacted { .. }) => {}
                Err(error) => tracing::warn!(%error, "compaction failed"),
            }
        }
        previous = store.current_revision().await.ok();
    }
}

/// Serve until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), RunError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| RunError::Io {
        context: format!("creating {}", config.data_dir.display()),
        source,
    })?;
    let store = open_store(&config).await?;
    let server = build(&config, store.clone()).await?;
    tokio::spawn(compact_periodically(store, config.compaction_interval));
    let address = SocketAddr::new(config.bind_address, config.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| RunError::Io {
            context: format!("binding {address}"),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| RunError::Io {
        context: "reading the bound address".into(),
        source,
    })?;
    let kubeconfig_path = config.data_dir.join("kubeconfig");
    std::fs::write(&kubeconfig_path, kubeconfig(&local)).map_err(|source| RunError::Io {
        context: format!("writing {}", kubeconfig_path.display()),
        source,
    })?;
    tracing::info!(%local, backend = server.registry.store.backend(), kubeconfig = %kubeconfig_path.display(), "berth-apiserver serving");
    serve(listener, server, shutdown_signal()).await
}

/// Serve HTTP/1.1 on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: Arc<ApiServer>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let server = server.clone();
        async move { server.handle(request).await }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| RunError::Io {
            context: "serving HTTP".into(),
            source,
        })
}

async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match terminate.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing_masks_host_bits_and_refuses_garbage() {
        assert_eq!(
            parse_cidr("10.96.0.5/12").unwrap(),
            (Ipv4Addr::new(10, 96, 0, 0), 12)
        );
        assert!(parse_cidr("10.96.0.0").is_err());
        assert!(parse_cidr("nonsense/12").is_err());
        assert!(parse_cidr("10.0.0.0/31").is_err());
    }
}
