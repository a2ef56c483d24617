//! The CRI (runtime.v1) gRPC server on a unix socket: the ImageService and
//! the RuntimeService on one socket, as kubelet and crictl expect.

pub mod image_service;
pub mod runtime_service;
pub mod streaming;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_stream::wrappers::UnixListenerStream;

use crate::image::ImageManager;
use crate::image::hosts::RegistryConfig;
use crate::runtime::network::LoopbackOnly;
use crate::runtime::{Runtime, RuntimeConfig};

#[derive(Debug, Clone)]
pub struct CriConfig {
    /// Persistent state: content store, layers, image records.
    pub root: PathBuf,
    /// State that dies with the machine: sockets.
    pub state: PathBuf,
    pub socket: PathBuf,
    /// containerd-style `<host>/hosts.toml` directory for registry settings.
    pub registry_config_dir: Option<PathBuf>,
    /// The binary run as each container's shim; this executable by default.
    pub shim_binary: Option<PathBuf>,
    /// Parent cgroup of sandboxes that name none.
    pub cgroup_root: String,
    /// Where the exec/attach/port-forward streaming server listens.
    pub streaming_address: std::net::SocketAddr,
    /// Default pids limit of each container (None: unlimited).
    pub pids_limit: Option<i64>,
}

impl CriConfig {
    /// Defaults for everything but the three paths.
    pub fn new(root: PathBuf, state: PathBuf, socket: PathBuf) -> Self {
        CriConfig {
            root,
            state,
            socket,
            registry_config_dir: None,
            shim_binary: None,
            cgroup_root: "berth".into(),
            streaming_address: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            pids_limit: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

/// The image manager for a runtime root.
pub fn image_manager(config: &CriConfig) -> Result<Arc<ImageManager>, CriError> {
    let registries = match &config.registry_config_dir {
        Some(dir) if dir.exists() => {
            RegistryConfig::load(dir).map_err(|e| CriError::Setup(e.to_string()))?
        }
        _ => RegistryConfig::default(),
    };
    ImageManager::open(&config.root.join("images"), registries)
        .map_err(|e| CriError::Setup(e.to_string()))
}

/// The runtime for a configuration, with its state recovered from disk.
pub fn runtime(config: &CriConfig, images: Arc<ImageManager>) -> Result<Arc<Runtime>, CriError> {
    let shim_binary = match &config.shim_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe().map_err(|source| CriError::Io {
            context: "finding the agent binary for shims".into(),
            source,
        })?,
    };
    let runtime_config = RuntimeConfig {
        root: config.root.clone(),
        state: config.state.clone(),
        shim_binary,
        cgroup_root: config.cgroup_root.clone(),
        pids_limit: config.pids_limit,
    };
    Runtime::open(runtime_config, images, Arc::new(LoopbackOnly))
        .map_err(|e| CriError::Setup(e.to_string()))
}

fn bind(socket: &Path) -> Result<tokio::net::UnixListener, CriError> {
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent).map_err(|source| CriError::Io {
            context: format!("creating {}", parent.display()),
            source,
        })?;
    }
    // A socket left by a previous run is stale once nobody listens on it.
    if socket.exists() && std::os::unix::net::UnixStream::connect(socket).is_err() {
        let _ = std::fs::remove_file(socket);
    }
    tokio::net::UnixListener::bind(socket).map_err(|source| CriError::Io {
        context: format!("binding {}", socket.display()),
        source,
    })
}

/// Serve CRI on the configured socket until `shutdown` completes.
pub async fn serve(
    config: CriConfig,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), CriError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let images = image_manager(&config)?;
    let runtime = runtime(&config, images.clone())?;
    let listener = bind(&config.socket)?;
    tracing::info!(socket = %config.socket.display(), root = %config.root.display(), "CRI server listening");
    let image_service = image_service::ImageService {
        images,
        runtime: Some(runtime.clone()),
    };
    let streaming = streaming::StreamingServer::start(config.streaming_address, runtime.clone())
        .await
        .map_err(|source| CriError::Io {
            context: format!(
                "binding the streaming server on {}",
                config.streaming_address
            ),
            source,
        })?;
    let runtime_service = runtime_service::RuntimeService { runtime, streaming };
    tonic::transport::Server::builder()
        .add_service(proto::cri::image_service_server::ImageServiceServer::new(
            image_service,
        ))
        .add_service(proto::cri::runtime_service_server::RuntimeServiceServer::new(runtime_service))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await
        .map_err(|e| CriError::Setup(format!("CRI server: {e}")))?;
    let _ = std::fs::remove_file(&config.socket);
    Ok(())
}
