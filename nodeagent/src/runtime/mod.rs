//! The runtime core behind CRI's RuntimeService: pod sandboxes and their
//! containers, kept as records on disk under the state directory so a
//! restarted agent finds every one again, while each container lives on
//! under its shim. Takes and returns plain values (CRI message types as
//! data); gRPC, codes and streaming belong to `cri`.

pub mod cgroups;
mod containers;
pub mod network;
pub mod sandbox;
mod sandboxes;
pub mod spec;
pub mod user;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use prost::Message;
use proto::cri;
use serde::{Deserialize, Serialize};

use crate::image::ImageManager;
use network::PodNetwork;

pub use containers::{ExecOutput, ExecTarget};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Internal(String),
}

fn internal(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> RuntimeError {
    move |e| RuntimeError::Internal(format!("{context}: {e}"))
}

/// Where the runtime keeps things and what it runs.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Persistent: writable container layers under `containers/`.
    pub root: PathBuf,
    /// Dies with the machine: sandbox and container records, namespace
    /// files, bundles.
    pub state: PathBuf,
    /// The binary re-executed as `shim` and `nsexec`.
    pub shim_binary: PathBuf,
    /// Parent cgroup for sandboxes that name none.
    pub cgroup_root: String,
    /// Default pids limit of each container (None: unlimited).
    pub pids_limit: Option<i64>,
}

/// A sandbox as stored in `state/sandboxes/<id>/sandbox.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub created_at: i64,
    pub ready: bool,
    pub ip: Option<String>,
    pub own_net: bool,
    pub own_ipc: bool,
    pub own_uts: bool,
    pub own_pid: bool,
    /// The infra process holding the pod's shared pid namespace (pid mode POD).
    #[serde(default)]
    pub infra: Option<InfraProcess>,
    pub runtime_handler: String,
    /// The PodSandboxConfig, protobuf-encoded, base64.
    pub config: String,
}

/// A process the runtime started, told apart from a later one with its pid.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct InfraProcess {
    pub pid: i32,
    pub start_time: u64,
}

impl InfraProcess {
    pub fn alive(&self) -> bool {
        crate::container::process_start_time(self.pid) == Some(self.start_time)
            && crate::container::process_alive(self.pid)
    }
}

/// A container as stored in `state/containers/<id>/container.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub sandbox_id: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    /// The image's id (config digest).
    pub image_id: String,
    /// The image as the config named it.
    pub image_name: String,
    pub log_path: String,
    pub stop_signal: Option<String>,
    pub cgroups_path: String,
    /// The ContainerConfig, protobuf-encoded, base64.
    pub config: String,
}

#[derive(Debug, Clone)]
struct SandboxEntry {
    record: SandboxRecord,
    config: cri::PodSandboxConfig,
}

#[derive(Debug, Clone)]
struct ContainerEntry {
    record: ContainerRecord,
    config: cri::ContainerConfig,
}

fn encode<M: Message>(m: &M) -> String {
    base64::engine::general_purpose::STANDARD.encode(m.encode_to_vec())
}

fn decode<M: Message + Default>(s: &str) -> Result<M, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| e.to_string())?;
    M::decode(bytes.as_slice()).map_err(|e| e.to_string())
}

/// A fresh 64-hex-digit id.
fn new_id() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    hex::encode(bytes)
}

fn now_nanos() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

/// Async locks keyed by object id: operations on one sandbox or container
/// run one at a time, different objects in parallel.
#[derive(Debug, Default)]
struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.locks.lock().expect("lock map");
            map.entry(key.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    fn forget(&self, key: &str) {
        self.locks.lock().expect("lock map").remove(key);
    }
}

/// The runtime: sandboxes, containers and the services they use.
pub struct Runtime {
    config: RuntimeConfig,
    images: Arc<ImageManager>,
    network: Arc<dyn PodNetwork>,
    sandboxes: Mutex<HashMap<String, SandboxEntry>>,
    containers: Mutex<HashMap<String, ContainerEntry>>,
    locks: KeyedLocks,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Opens the runtime, finding every sandbox and container a previous
    /// agent left, and clearing half-made ones.
    pub fn open(
        config: RuntimeConfig,
        images: Arc<ImageManager>,
        network: Arc<dyn PodNetwork>,
    ) -> Result<Arc<Self>, RuntimeError> {
        for dir in [
            config.state.join("sandboxes"),
            config.state.join("containers"),
            config.state.join("attach"),
            config.root.join("containers"),
        ] {
            std::fs::create_dir_all(&dir)
                .map_err(internal(format!("creating {}", dir.display())))?;
        }
        let runtime = Runtime {
            config,
            images,
            network,
            sandboxes: Mutex::default(),
            containers: Mutex::default(),
            locks: KeyedLocks::default(),
        };
        runtime.recover();
        Ok(Arc::new(runtime))
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The pod network's readiness, for the CRI Status call.
    pub fn network_status(&self) -> (bool, String) {
        self.network.status()
    }

    fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.config.state.join("sandboxes").join(id)
    }

    fn bundle_dir(&self, id: &str) -> PathBuf {
        self.config.state.join("containers").join(id)
    }

    /// Short, so it fits a unix socket path.
    fn attach_socket(&self, id: &str) -> PathBuf {
        self.config
            .state
            .join("attach")
            .join(format!("{}.sock", &id[..id.len().min(16)]))
    }

    fn layer_dir(&self, id: &str) -> PathBuf {
        self.config.root.join("containers").join(id)
    }

    fn recover(&self) {
        let mut sandboxes = self.sandboxes.lock().expect("sandboxes");
        for (id, dir) in subdirs(&self.config.state.join("sandboxes")) {
            match read_record::<SandboxRecord>(&dir.join("sandbox.json")).and_then(|record| {
                let config = decode(&record.config)?;
                Ok(SandboxEntry { record, config })
            }) {
                Ok(entry) => {
                    sandboxes.insert(id, entry);
                }
                Err(e) => {
                    tracing::warn!(sandbox = %id, error = %e, "removing a sandbox left half-made");
                    let _ = sandbox::release(&dir);
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        let mut containers = self.containers.lock().expect("containers");
        for (id, dir) in subdirs(&self.config.state.join("containers")) {
            match read_record::<ContainerRecord>(&dir.join("container.json")).and_then(|record| {
                let config = decode(&record.config)?;
                Ok(ContainerEntry { record, config })
            }) {
                Ok(entry) => {
                    containers.insert(id, entry);
                }
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "removing a container left half-made");
                    self.discard_container_files(&id);
                }
            }
        }
        // Writable layers without a record (e.g. after a reboot cleared the state dir).
        for (id, _) in subdirs(&self.config.root.join("containers")) {
            if !containers.contains_key(&id) {
                tracing::warn!(container = %id, "removing an orphaned writable layer");
                self.discard_container_files(&id);
            }
        }
        tracing::info!(
            sandboxes = sandboxes.len(),
            containers = containers.len(),
            "runtime state recovered"
        );
    }

    /// Unmounts and deletes a container's rootfs, layer and bundle.
    fn discard_container_files(&self, id: &str) {
        let layer = self.layer_dir(id);
        let _ = sandbox::unmount_all(&layer.join("rootfs"));
        let _ = std::fs::remove_dir_all(&layer);
        let _ = std::fs::remove_dir_all(self.bundle_dir(id));
    }

    fn sandbox(&self, id: &str) -> Result<SandboxEntry, RuntimeError> {
        find_by_id(
            &self.sandboxes.lock().expect("sandboxes"),
            id,
            "pod sandbox",
        )
    }

    fn container(&self, id: &str) -> Result<ContainerEntry, RuntimeError> {
        find_by_id(
            &self.containers.lock().expect("containers"),
            id,
            "container",
        )
    }
}

/// A lookup where a missing object is an answer, not an error (stop and
/// remove are idempotent in CRI).
fn present<T>(found: Result<T, RuntimeError>) -> Result<Option<T>, RuntimeError> {
    match found {
        Ok(t) => Ok(Some(t)),
        Err(RuntimeError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An object by its id or, as CRI clients may use, a unique prefix of it.
fn find_by_id<T: Clone>(map: &HashMap<String, T>, id: &str, kind: &str) -> Result<T, RuntimeError> {
    if let Some(e) = map.get(id) {
        return Ok(e.clone());
    }
    let matches: Vec<&T> = map
        .iter()
        .filter(|(key, _)| !id.is_empty() && key.starts_with(id))
        .map(|(_, e)| e)
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(RuntimeError::NotFound(format!("{kind} {id:?} not found"))),
        _ => Err(RuntimeError::InvalidArgument(format!(
            "{kind} id prefix {id:?} is ambiguous"
        ))),
    }
}

/// Kills what is left in a cgroup and removes it (in every hierarchy).
fn remove_cgroup(path: &str) -> Result<(), String> {
    let hierarchy = cgroups::Hierarchy::detect().map_err(|e| e.to_string())?;
    cgroups::Cgroup::new(hierarchy, path)
        .and_then(|c| c.kill_all_and_remove(std::time::Duration::from_secs(10)))
        .map_err(|e| format!("removing cgroup {path}: {e}"))
}

/// Removes a directory tree; one that is already gone is fine.
fn remove_dir_if_present(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("removing {}: {e}", dir.display()))
        }
        _ => Ok(()),
    }
}

fn subdirs(dir: &Path) -> Vec<(String, PathBuf)> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.path())))
                .collect()
        })
        .unwrap_or_default()
}

fn read_record<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes a record atomically (temp file, fsync, rename).
fn write_record<T: Serialize>(path: &Path, value: &T) -> Result<(), RuntimeError> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let bytes =
        serde_json::to_vec_pretty(value).map_err(|e| RuntimeError::Internal(e.to_string()))?;
    let mut f =
        std::fs::File::create(&tmp).map_err(internal(format!("writing {}", tmp.display())))?;
    f.write_all(&bytes)
        .and_then(|_| f.sync_all())
        .map_err(internal(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(internal(format!("renaming {}", tmp.display())))
}

/// Labels match when every selector pair is present.
fn labels_match(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_their_cri_config() {
        let config = cri::PodSandboxConfig {
            hostname: "web".into(),
            metadata: Some(cri::PodSandboxMetadata {
                name: "web".into(),
                uid: "u1".into(),
                namespace: "default".into(),
                attempt: 2,
            }),
            ..Default::default()
        };
        let back: cri::PodSandboxConfig = decode(&encode(&config)).unwrap();
        assert_eq!(back, config);
        assert_eq!(new_id().len(), 64);
        assert_ne!(new_id(), new_id());
    }

    #[test]
    fn label_selectors_need_every_pair() {
        let labels: HashMap<String, String> =
            [("a".to_string(), "1".to_string()), ("b".into(), "2".into())].into();
        assert!(labels_match(&labels, &HashMap::new()));
        assert!(labels_match(
            &labels,
            &[("a".to_string(), "1".to_string())].into()
        ));
        assert!(!labels_match(
            &labels,
            &[("a".to_string(), "2".to_string())].into()
        ));
    }
}
