//! The CRI (runtime.v1) gRPC server on a unix socket. Today it serves the
//! ImageService; the RuntimeService (sandboxes and containers) is the next
//! part of the CRI runtime issue and will be served from the same socket.

pub mod image_service;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_stream::wrappers::UnixListenerStream;

use crate::image::ImageManager;
use crate::image::hosts::RegistryConfig;

#[derive(Debug, Clone)]
pub struct CriConfig {
    /// Persistent state: content store, layers, image records.
    pub root: PathBuf,
    /// State that dies with the machine: sockets.
    pub state: PathBuf,
    pub socket: PathBuf,
    /// containerd-style `<host>/hosts.toml` directory for registry settings.
    pub registry_config_dir: Option<PathBuf>,
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
    let listener = bind(&config.socket)?;
    tracing::info!(socket = %config.socket.display(), root = %config.root.display(), "CRI server listening");
    let image_service = image_service::ImageService { images };
    tonic::transport::Server::builder()
        .add_service(proto::cri::image_service_server::ImageServiceServer::new(
            image_service,
        ))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await
        .map_err(|e| CriError::Setup(format!("CRI server: {e}")))?;
    let _ = std::fs::remove_file(&config.socket);
    Ok(())
}
