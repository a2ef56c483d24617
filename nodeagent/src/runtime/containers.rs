//! CreateContainer, StartContainer, StopContainer, RemoveContainer,
//! ContainerStatus, ListContainers, UpdateContainerResources,
//! ReopenContainerLog, ExecSync and the stats calls over the runtime core.
//! A container's live state comes from its shim's files (init.json,
//! exit.json), never from memory, so it survives agent restarts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use proto::cri;
use tokio::io::AsyncBufReadExt;

use super::cgroups::{Cgroup, Hierarchy};
use super::spec::{PidNamespace, SpecInput, build};
use super::user::{UserRequest, resolve};
use super::{
    ContainerEntry, ContainerRecord, Runtime, RuntimeError, encode, internal, labels_match, new_id,
    now_nanos, write_record,
};
use crate::container::shim::{EXIT_FILE, ExitRecord, FIFO_FILE, INIT_FILE, InitRecord, read_json};
use crate::container::{self, process_alive, process_start_time};

/// A process to start inside a running container.
#[derive(Debug, Clone)]
pub struct ExecTarget {
    pub program: PathBuf,
    pub bundle: PathBuf,
    pub pid: i32,
    pub command: Vec<String>,
}

impl ExecTarget {
    /// The helper's command line; `console_fd` asks for a terminal made
    /// inside the container, sent over that (inherited) socket.
    pub fn command(&self, console_fd: Option<i32>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .arg("nsexec")
            .arg("--bundle")
            .arg(&self.bundle)
            .arg("--pid")
            .arg(self.pid.to_string());
        if let Some(fd) = console_fd {
            command.arg("--console-fd").arg(fd.to_string());
        }
        command.arg("--").args(&self.command);
        command
    }
}

/// What ExecSync returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// A container's state as its files tell it.
#[derive(Debug, Clone, PartialEq)]
enum Observed {
    /// Created, waiting for start.
    Created(InitRecord),
    Running(InitRecord),
    Exited(ExitRecord),
    /// No exit record and no process: the shim died with it.
    Lost,
}

/// ExecSync keeps at most this much of each output stream (as containerd
/// does); the rest is read and dropped so the command never blocks on it.
const MAX_EXEC_OUTPUT: usize = 16 * 1024 * 1024;

/// Reads a stream to its end, keeping the first `limit` bytes.
async fn read_capped(mut reader: impl tokio::io::AsyncRead + Unpin, limit: usize) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut kept = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(n) = reader.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let room = limit.saturating_sub(kept.len()).min(n);
        kept.extend_from_slice(&buffer[..room]);
    }
    kept
}

/// Lowerdir paths are joined with ':' and overlay options must fit a page.
const MAX_OVERLAY_OPTIONS: usize = 4000;

fn stop_signal(name: Option<&str>) -> nix::sys::signal::Signal {
    use std::str::FromStr;
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return nix::sys::signal::Signal::SIGTERM;
    };
    if let Ok(n) = name.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).unwrap_or(nix::sys::signal::Signal::SIGTERM);
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&full).unwrap_or(nix::sys::signal::Signal::SIGTERM)
}

impl Runtime {
    fn observe(&self, record: &ContainerRecord) -> Observed {
        let dir = self.bundle_dir(&record.id);
        if let Some(exit) = read_json::<ExitRecord>(&dir, EXIT_FILE) {
            return Observed::Exited(exit);
        }
        match read_json::<InitRecord>(&dir, INIT_FILE) {
            Some(init)
                if process_alive(init.pid)
                    && process_start_time(init.pid) == Some(init.start_time) =>
            {
                // Start consumes the exec fifo, so a container started just
                // before an agent crash (record not yet written) is running.
                if record.started_at.is_some() || !dir.join(FIFO_FILE).exists() {
                    Observed::Running(init)
                } else {
                    Observed::Created(init)
                }
            }
            Some(init) if process_alive(init.shim_pid) => {
                // The init is gone and its shim is writing exit.json.
                std::thread::sleep(Duration::from_millis(20));
                read_json::<ExitRecord>(&dir, EXIT_FILE)
                    .map(Observed::Exited)
                    .unwrap_or(Observed::Lost)
            }
            _ => Observed::Lost,
        }
    }

    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
    ) -> Result<String, RuntimeError> {
        let metadata = config
            .metadata
            .clone()
            .filter(|m| !m.name.is_empty())
            .ok_or_else(|| {
                RuntimeError::InvalidArgument("container config needs metadata with a name".into())
            })?;
        let image_name = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                RuntimeError::InvalidArgument("container config names no image".into())
            })?;
        let sandbox = self.sandbox(sandbox_id)?;
        if !sandbox.record.ready {
            return Err(RuntimeError::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                sandbox.record.id
            )));
        }
        let _name_lock = self
            .locks
            .lock(&format!(
                "container-name/{}/{}/{}",
                sandbox.record.id, metadata.name, metadata.attempt
            ))
            .await;
        if let Some(existing) = self
            .containers
            .lock()
            .expect("containers")
            .values()
            .find(|c| {
                c.record.sandbox_id == sandbox.record.id
                    && c.config.metadata.as_ref() == Some(&metadata)
            })
        {
            return Err(RuntimeError::AlreadyExists(format!(
                "container name {}_{} in pod sandbox {} is reserved for {}",
                metadata.name, metadata.attempt, sandbox.record.id, existing.record.id
            )));
        }
        let image = self.images.find(&image_name).ok_or_else(|| {
            RuntimeError::NotFound(format!("image {image_name:?} not found; pull it first"))
        })?;
        let layers = self
            .images
            .layer_dirs(&image)
            .map_err(|e| RuntimeError::Internal(format!("image layers: {e}")))?;
        let id = new_id();
        let log_path = match (
            sandbox.config.log_directory.as_str(),
            config.log_path.as_str(),
        ) {
            (dir, path) if !dir.is_empty() && !path.is_empty() => {
                let p = Path::new(dir).join(path);
                if !p.starts_with(dir) || path.contains("..") {
                    return Err(RuntimeError::InvalidArgument(format!(
                        "log path {path:?} escapes the log directory"
                    )));
                }
                p.display().to_string()
            }
            _ => String::new(),
        };
        let record = ContainerRecord {
            id: id.clone(),
            sandbox_id: sandbox.record.id.clone(),
            created_at: now_nanos(),
            started_at: None,
            image_id: image.id.clone(),
            image_name: image_name.clone(),
            log_path: log_path.clone(),
            stop_signal: image.config.stop_signal.clone(),
            cgroups_path: format!(
                "{}/{}",
                self.pod_cgroup(&sandbox.record.id, &sandbox.config)
                    .0
                    .trim_end_matches('/'),
                id
            ),
            config: encode(&config),
        };
        let mut context = self.sandbox_context(&sandbox);
        context.pid = self.pid_namespace_for(&sandbox, &config)?;
        let layer_dir = self.layer_dir(&id);
        let bundle = self.bundle_dir(&id);
        let prepared = {
            let (layer_dir, bundle, config, record) = (
                layer_dir.clone(),
                bundle.clone(),
                config.clone(),
                record.clone(),
            );
            let image_config = image.config.clone();
            let pids_limit = self.config.pids_limit;
            tokio::task::spawn_blocking(move || -> Result<(), RuntimeError> {
                let rootfs = mount_rootfs(&layer_dir, &layers)?;
                let security = config
                    .linux
                    .as_ref()
                    .and_then(|l| l.security_context.clone())
                    .unwrap_or_default();
                let request = UserRequest {
                    run_as_user: security.run_as_user.map(|v| v.value),
                    run_as_username: Some(security.run_as_username.clone()),
                    run_as_group: security.run_as_group.map(|v| v.value),
                    supplemental_groups: security.supplemental_groups.clone(),
                };
                let user = resolve(&rootfs, image_config.user.as_deref(), &request)
                    .map_err(RuntimeError::InvalidArgument)?;
                let spec = build(&SpecInput {
                    config: &config,
                    image: &image_config,
                    rootfs: &rootfs,
                    user: &user,
                    sandbox: &context,
                    cgroups_path: record.cgroups_path.clone(),
                    pids_limit,
                })
                .map_err(RuntimeError::InvalidArgument)?;
                std::fs::create_dir_all(&bundle).map_err(internal("creating the bundle"))?;
                spec.save(bundle.join("config.json"))
                    .map_err(|e| RuntimeError::Internal(format!("writing config.json: {e}")))?;
                Ok(())
            })
            .await
            .map_err(|e| RuntimeError::Internal(e.to_string()))?
        };
        let result = match prepared {
            Ok(()) => {
                self.spawn_shim(&bundle, &self.attach_socket(&id), &log_path, config.stdin)
                    .await
            }
            Err(e) => Err(e),
        };
        let result = result.and_then(|warnings| {
            for w in warnings {
                tracing::warn!(container = %id, "{w}");
            }
            write_record(&bundle.join("container.json"), &record)
        });
        if let Err(e) = result {
            let cgroup = record.cgroups_path.clone();
            let _ = std::fs::remove_file(self.attach_socket(&id));
            let (bundle, layer_dir) = (bundle.clone(), layer_dir.clone());
            let _ = tokio::task::spawn_blocking(move || {
                let _ = super::remove_cgroup(&cgroup);
                let _ = super::sandbox::unmount_all(&layer_dir.join("rootfs"));
                let _ = std::fs::remove_dir_all(&layer_dir);
                let _ = std::fs::remove_dir_all(&bundle);
            })
            .await;
            return Err(e);
        }
        tracing::info!(container = %id, sandbox = %record.sandbox_id, name = %metadata.name, "container created");
        self.containers
            .lock()
            .expect("containers")
            .insert(id.clone(), ContainerEntry { record, config });
        Ok(id)
    }

    /// The pid namespace the container's own pid mode asks for: the pod's
    /// (POD, the CRI default), its own (CONTAINER), the host's (NODE), or
    /// another running container's (TARGET, as for debug containers).
    fn pid_namespace_for(
        &self,
        sandbox: &super::SandboxEntry,
        config: &cri::ContainerConfig,
    ) -> Result<PidNamespace, RuntimeError> {
        let options = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone())
            .unwrap_or_default();
        let ns = |pid: i32| PidNamespace::Join(PathBuf::from(format!("/proc/{pid}/ns/pid")));
        Ok(match cri::NamespaceMode::try_from(options.pid) {
            Ok(cri::NamespaceMode::Node) => PidNamespace::Host,
            Ok(cri::NamespaceMode::Container) => PidNamespace::Own,
            Ok(cri::NamespaceMode::Target) => {
                let target = self.container(&options.target_id)?;
                if target.record.sandbox_id != sandbox.record.id {
                    return Err(RuntimeError::InvalidArgument(format!(
                        "target container {} is in another pod",
                        options.target_id
                    )));
                }
                ns(self.running_init(&target)?.pid)
            }
            _ => match sandbox.record.infra {
                Some(infra) if infra.alive() => ns(infra.pid),
                _ if sandbox.record.own_pid => PidNamespace::Own,
                _ => PidNamespace::Host,
            },
        })
    }

    /// Starts `berth-nodeagent shim` for a bundle and waits for its report.
    async fn spawn_shim(
        &self,
        bundle: &Path,
        attach_socket: &Path,
        log_path: &str,
        stdin: bool,
    ) -> Result<Vec<String>, RuntimeError> {
        let shim_log = std::fs::File::create(bundle.join("shim.log"))
            .map_err(internal("creating shim.log"))?;
        let mut command = tokio::process::Command::new(&self.config.shim_binary);
        command
            .arg("shim")
            .arg("--bundle")
            .arg(bundle)
            .arg("--state-dir")
            .arg(bundle)
            .arg("--attach-socket")
            .arg(attach_socket)
            .arg("--log")
            .arg(if log_path.is_empty() {
                "/dev/null"
            } else {
                log_path
            })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(shim_log))
            .kill_on_drop(false);
        if stdin {
            command.arg("--stdin");
        }
        let mut child = command.spawn().map_err(internal(format!(
            "starting shim {}",
            self.config.shim_binary.display()
        )))?;
        let stdout = child.stdout.take().expect("piped");
        // The shim is reaped whenever it ends; a later agent never sees it.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut warnings = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(w) = line.strip_prefix("warn: ") {
                warnings.push(w.to_string());
            } else if line.starts_with("ok ") {
                return Ok(warnings);
            } else if let Some(e) = line.strip_prefix("error: ") {
                return Err(classify_create_error(e));
            }
        }
        let log = std::fs::read_to_string(bundle.join("shim.log")).unwrap_or_default();
        Err(RuntimeError::Internal(format!(
            "the shim exited without a report: {}",
            log.trim()
        )))
    }

    pub async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let entry = self.container(id)?;
        let id = entry.record.id.clone();
        let _guard = self.locks.lock(&id).await;
        let entry = self.container(&id)?;
        let init = match self.observe(&entry.record) {
            Observed::Created(init) => init,
            Observed::Running(_) => {
                return Err(RuntimeError::FailedPrecondition(format!(
                    "container {id} is already running"
                )));
            }
            _ => {
                return Err(RuntimeError::FailedPrecondition(format!(
                    "container {id} is not in the created state"
                )));
            }
        };
        let fifo = self.bundle_dir(&id).join(FIFO_FILE);
        let pid = init.pid;
        tokio::task::spawn_blocking(move || container::start(&fifo, pid, Duration::from_secs(10)))
            .await
            .map_err(|e| RuntimeError::Internal(e.to_string()))?
            .map_err(|e| RuntimeError::Internal(format!("starting container {id}: {e}")))?;
        let mut record = entry.record.clone();
        record.started_at = Some(now_nanos());
        write_record(&self.bundle_dir(&id).join("container.json"), &record)?;
        if let Some(e) = self.containers.lock().expect("containers").get_mut(&id) {
            e.record.started_at = record.started_at;
        }
        tracing::info!(container = %id, pid, "container started");
        Ok(())
    }

    /// Sends the stop signal, waits up to `timeout` seconds, then SIGKILL.
    pub async fn stop_container(&self, id: &str, timeout: i64) -> Result<(), RuntimeError> {
        let Some(entry) = super::present(self.container(id))? else {
            return Ok(());
        };
        let id = entry.record.id.clone();
        let _guard = self.locks.lock(&id).await;
        let init = match self.observe(&entry.record) {
            Observed::Running(init) => init,
            // A created container never ran its process: kill it outright.
            Observed::Created(init) => {
                signal(&init, nix::sys::signal::Signal::SIGKILL);
                self.wait_exit(&entry.record, Duration::from_secs(10)).await;
                return Ok(());
            }
            Observed::Exited(_) | Observed::Lost => return Ok(()),
        };
        if timeout > 0 {
            let sig = stop_signal(entry.record.stop_signal.as_deref());
            tracing::info!(container = %id, signal = %sig, timeout, "stopping container");
            signal(&init, sig);
            if self
                .wait_exit(&entry.record, Duration::from_secs(timeout as u64))
                .await
            {
                return Ok(());
            }
        }
        signal(&init, nix::sys::signal::Signal::SIGKILL);
        if self.wait_exit(&entry.record, Duration::from_secs(30)).await {
            Ok(())
        } else {
            Err(RuntimeError::Internal(format!(
                "container {id} did not exit after SIGKILL"
            )))
        }
    }

    /// Waits until the container is no longer running; false on timeout.
    async fn wait_exit(&self, record: &ContainerRecord, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.observe(record) {
                Observed::Exited(_) | Observed::Lost => return true,
                _ if Instant::now() >= deadline => return false,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let Some(entry) = super::present(self.container(id))? else {
            return Ok(());
        };
        let id = entry.record.id.clone();
        self.stop_container(&id, 0).await?;
        let _guard = self.locks.lock(&id).await;
        let cgroups_path = entry.record.cgroups_path.clone();
        let layer_dir = self.layer_dir(&id);
        let bundle = self.bundle_dir(&id);
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            super::remove_cgroup(&cgroups_path)?;
            super::sandbox::unmount_all(&layer_dir.join("rootfs"))?;
            super::remove_dir_if_present(&layer_dir)?;
            super::remove_dir_if_present(&bundle)
        })
        .await
        .map_err(|e| RuntimeError::Internal(e.to_string()))?
        .map_err(RuntimeError::Internal)?;
        let _ = std::fs::remove_file(self.attach_socket(&id));
        self.containers.lock().expect("containers").remove(&id);
        self.locks.forget(&id);
        tracing::info!(container = %id, "container removed");
        Ok(())
    }

    fn state_of(observed: &Observed) -> cri::ContainerState {
        match observed {
            Observed::Created(_) => cri::ContainerState::ContainerCreated,
            Observed::Running(_) => cri::ContainerState::ContainerRunning,
            Observed::Exited(_) | Observed::Lost => cri::ContainerState::ContainerExited,
        }
    }

    pub fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<(cri::ContainerStatus, HashMap<String, String>), RuntimeError> {
        let entry = self.container(id)?;
        let record = &entry.record;
        let observed = self.observe(record);
        let (finished_at, exit_code, reason, message) = match &observed {
            Observed::Exited(exit) => {
                let reason = if exit.oom_killed {
                    "OOMKilled"
                } else if exit.exit_code == 0 {
                    "Completed"
                } else {
                    "Error"
                };
                (
                    exit.finished_at,
                    exit.exit_code,
                    reason.to_string(),
                    String::new(),
                )
            }
            Observed::Lost => (
                record.started_at.unwrap_or(record.created_at),
                255,
                "Unknown".to_string(),
                "the container's shim ended without recording an exit status".to_string(),
            ),
            _ => (0, 0, String::new(), String::new()),
        };
        let config = &entry.config;
        let status = cri::ContainerStatus {
            id: record.id.clone(),
            metadata: config.metadata.clone(),
            state: Self::state_of(&observed) as i32,
            created_at: record.created_at,
            started_at: record.started_at.unwrap_or(0),
            finished_at,
            exit_code,
            image: config.image.clone(),
            image_ref: record.image_id.clone(),
            image_id: record.image_id.clone(),
            reason,
            message,
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
            mounts: config.mounts.clone(),
            log_path: record.log_path.clone(),
            resources: config
                .linux
                .as_ref()
                .and_then(|l| l.resources.clone())
                .map(|linux| cri::ContainerResources {
                    linux: Some(linux),
                    ..Default::default()
                }),
            user: None,
        };
        let mut info = HashMap::new();
        if verbose {
            let pid = match &observed {
                Observed::Created(i) | Observed::Running(i) => Some(i.pid),
                _ => None,
            };
            info.insert(
                "info".to_string(),
                serde_json::json!({
                    "sandboxID": record.sandbox_id,
                    "pid": pid,
                    "cgroupsPath": record.cgroups_path,
                    "bundle": self.bundle_dir(&record.id),
                    "rootfs": self.layer_dir(&record.id).join("rootfs"),
                })
                .to_string(),
            );
        }
        Ok((status, info))
    }

    /// Containers matching an id prefix, a sandbox id prefix and labels
    /// (the fields ContainerFilter and ContainerStatsFilter share).
    fn matching(
        &self,
        filter: Option<(&String, &String, &HashMap<String, String>)>,
    ) -> Vec<ContainerEntry> {
        self.containers
            .lock()
            .expect("containers")
            .values()
            .filter(|e| match filter {
                None => true,
                Some((id, sandbox, labels)) => {
                    e.record.id.starts_with(id.as_str())
                        && e.record.sandbox_id.starts_with(sandbox.as_str())
                        && labels_match(&e.config.labels, labels)
                }
            })
            .cloned()
            .collect()
    }

    pub fn list_containers(&self, filter: Option<&cri::ContainerFilter>) -> Vec<cri::Container> {
        let entries = self.matching(filter.map(|f| (&f.id, &f.pod_sandbox_id, &f.label_selector)));
        let mut out: Vec<cri::Container> = entries
            .iter()
            .map(|e| (e, Self::state_of(&self.observe(&e.record)) as i32))
            .filter(|(_, state)| {
                filter
                    .and_then(|f| f.state.as_ref())
                    .is_none_or(|s| s.state == *state)
            })
            .map(|(e, state)| cri::Container {
                id: e.record.id.clone(),
                pod_sandbox_id: e.record.sandbox_id.clone(),
                metadata: e.config.metadata.clone(),
                image: e.config.image.clone(),
                image_ref: e.record.image_id.clone(),
                image_id: e.record.image_id.clone(),
                state,
                created_at: e.record.created_at,
                labels: e.config.labels.clone(),
                annotations: e.config.annotations.clone(),
            })
            .collect();
        out.sort_by_key(|c| c.created_at);
        out
    }

    fn running_init(&self, entry: &ContainerEntry) -> Result<InitRecord, RuntimeError> {
        match self.observe(&entry.record) {
            Observed::Running(init) => Ok(init),
            _ => Err(RuntimeError::FailedPrecondition(format!(
                "container {} is not running",
                entry.record.id
            ))),
        }
    }

    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: i64,
    ) -> Result<ExecOutput, RuntimeError> {
        if cmd.is_empty() {
            return Err(RuntimeError::InvalidArgument("exec needs a command".into()));
        }
        let mut command = self.exec_target(id, &cmd)?.command(None);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(internal("starting exec helper"))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let output = async move {
            let (stdout, stderr, status) = tokio::join!(
                read_capped(stdout, MAX_EXEC_OUTPUT),
                read_capped(stderr, MAX_EXEC_OUTPUT),
                child.wait()
            );
            status.map(|status| (stdout, stderr, status))
        };
        let (stdout, stderr, status) = if timeout > 0 {
            tokio::time::timeout(Duration::from_secs(timeout as u64), output)
                .await
                .map_err(|_| {
                    RuntimeError::DeadlineExceeded(format!(
                        "command {cmd:?} timed out after {timeout}s"
                    ))
                })?
        } else {
            output.await
        }
        .map_err(internal("running exec helper"))?;
        Ok(ExecOutput {
            stdout,
            stderr,
            exit_code: status.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                128 + status.signal().unwrap_or(0)
            }),
        })
    }

    /// The helper that runs `cmd` inside a running container; the caller
    /// wires its stdio (and, for a terminal, its console socket).
    pub fn exec_target(&self, id: &str, cmd: &[String]) -> Result<ExecTarget, RuntimeError> {
        if cmd.is_empty() {
            return Err(RuntimeError::InvalidArgument("exec needs a command".into()));
        }
        let entry = self.container(id)?;
        let init = self.running_init(&entry)?;
        Ok(ExecTarget {
            program: self.config.shim_binary.clone(),
            bundle: self.bundle_dir(&entry.record.id),
            pid: init.pid,
            command: cmd.to_vec(),
        })
    }

    /// Ids of the containers (in any state) whose rootfs is on an image.
    pub fn containers_using_image(&self, image_id: &str) -> Vec<String> {
        self.containers
            .lock()
            .expect("containers")
            .values()
            .filter(|c| c.record.image_id == image_id)
            .map(|c| c.record.id.clone())
            .collect()
    }

    /// The shim's attach socket of a running container, whether it has a
    /// terminal, and whether its stdin is open.
    pub fn attach_target(&self, id: &str) -> Result<(PathBuf, bool, bool), RuntimeError> {
        let entry = self.container(id)?;
        self.running_init(&entry)?;
        Ok((
            self.attach_socket(&entry.record.id),
            entry.config.tty,
            entry.config.stdin,
        ))
    }

    pub async fn update_container_resources(
        &self,
        id: &str,
        resources: cri::LinuxContainerResources,
    ) -> Result<(), RuntimeError> {
        let entry = self.container(id)?;
        let id = entry.record.id.clone();
        let _guard = self.locks.lock(&id).await;
        if matches!(
            self.observe(&entry.record),
            Observed::Exited(_) | Observed::Lost
        ) {
            return Err(RuntimeError::FailedPrecondition(format!(
                "container {id} is not running"
            )));
        }
        let limits = super::cgroups::Resources {
            cpu_shares: (resources.cpu_shares > 0).then_some(resources.cpu_shares as u64),
            cpu_quota: (resources.cpu_quota != 0).then_some(resources.cpu_quota),
            cpu_period: (resources.cpu_period > 0).then_some(resources.cpu_period as u64),
            memory_limit: (resources.memory_limit_in_bytes > 0)
                .then_some(resources.memory_limit_in_bytes),
            pids_limit: super::spec::pids_limit(&resources, None)
                .map_err(RuntimeError::InvalidArgument)?,
            cpuset_cpus: Some(resources.cpuset_cpus.clone()).filter(|s| !s.is_empty()),
            cpuset_mems: Some(resources.cpuset_mems.clone()).filter(|s| !s.is_empty()),
        };
        let cgroups_path = entry.record.cgroups_path.clone();
        tokio::task::spawn_blocking(move || {
            let hierarchy = Hierarchy::detect().map_err(|e| e.to_string())?;
            Cgroup::new(hierarchy, &cgroups_path)
                .and_then(|c| c.apply(&limits))
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| RuntimeError::Internal(e.to_string()))?
        .map_err(|e| RuntimeError::InvalidArgument(format!("updating resources: {e}")))?;
        let mut config = entry.config.clone();
        config.linux.get_or_insert_with(Default::default).resources = Some(resources);
        let mut record = entry.record.clone();
        record.config = encode(&config);
        write_record(&self.bundle_dir(&id).join("container.json"), &record)?;
        if let Some(e) = self.containers.lock().expect("containers").get_mut(&id) {
            e.record = record;
            e.config = config;
        }
        Ok(())
    }

    pub async fn reopen_container_log(&self, id: &str) -> Result<(), RuntimeError> {
        let entry = self.container(id)?;
        let init = self.running_init(&entry)?;
        if entry.record.log_path.is_empty() {
            return Ok(());
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(init.shim_pid),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .map_err(|e| RuntimeError::Internal(format!("signalling the shim: {e}")))?;
        let path = PathBuf::from(&entry.record.log_path);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !path.exists() {
            if Instant::now() > deadline {
                return Err(RuntimeError::Internal(
                    "the shim did not reopen the log".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    pub fn container_stats(&self, id: &str) -> Result<cri::ContainerStats, RuntimeError> {
        let entry = self.container(id)?;
        Ok(self.stats_of(&entry))
    }

    pub fn list_container_stats(
        &self,
        filter: Option<&cri::ContainerStatsFilter>,
    ) -> Vec<cri::ContainerStats> {
        self.matching(filter.map(|f| (&f.id, &f.pod_sandbox_id, &f.label_selector)))
            .iter()
            .filter(|e| matches!(self.observe(&e.record), Observed::Running(_)))
            .map(|e| self.stats_of(e))
            .collect()
    }

    fn stats_of(&self, entry: &ContainerEntry) -> cri::ContainerStats {
        let now = now_nanos();
        let stats = Hierarchy::detect()
            .ok()
            .and_then(|h| Cgroup::new(h, &entry.record.cgroups_path).ok())
            .and_then(|c| c.stats().ok())
            .unwrap_or_default();
        let upper = self.layer_dir(&entry.record.id).join("upper");
        let (bytes, inodes) = disk_usage(&upper);
        let value = |v: u64| Some(cri::UInt64Value { value: v });
        cri::ContainerStats {
            attributes: Some(cri::ContainerAttributes {
                id: entry.record.id.clone(),
                metadata: entry.config.metadata.clone(),
                labels: entry.config.labels.clone(),
                annotations: entry.config.annotations.clone(),
            }),
            cpu: Some(cri::CpuUsage {
                timestamp: now,
                usage_core_nano_seconds: value(stats.cpu_usage_nanos),
                usage_nano_cores: None,
            }),
            memory: Some(cri::MemoryUsage {
                timestamp: now,
                working_set_bytes: value(stats.memory_working_set_bytes),
                usage_bytes: value(stats.memory_usage_bytes),
                rss_bytes: value(stats.memory_rss_bytes),
                ..Default::default()
            }),
            writable_layer: Some(cri::FilesystemUsage {
                timestamp: now,
                fs_id: Some(cri::FilesystemIdentifier {
                    mountpoint: self.config.root.join("containers").display().to_string(),
                }),
                used_bytes: value(bytes),
                inodes_used: value(inodes),
            }),
            swap: None,
        }
    }
}

fn signal(init: &InitRecord, sig: nix::sys::signal::Signal) {
    // Only the process the shim started: a reused pid is someone else's.
    if process_start_time(init.pid) == Some(init.start_time) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(init.pid), sig);
    }
}

fn classify_create_error(message: &str) -> RuntimeError {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        RuntimeError::InvalidArgument(format!("creating container: {message}"))
    } else {
        RuntimeError::Internal(format!("creating container: {message}"))
    }
}

/// Mounts the overlay rootfs: the image's layers under a fresh upper.
fn mount_rootfs(layer_dir: &Path, layers: &[PathBuf]) -> Result<PathBuf, RuntimeError> {
    let upper = layer_dir.join("upper");
    let work = layer_dir.join("work");
    let rootfs = layer_dir.join("rootfs");
    for d in [&upper, &work, &rootfs] {
        std::fs::create_dir_all(d).map_err(internal(format!("creating {}", d.display())))?;
    }
    let mut lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    if lower.is_empty() {
        let empty = layer_dir.join("empty");
        std::fs::create_dir_all(&empty).map_err(internal("creating an empty lower dir"))?;
        lower.push(empty.display().to_string());
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    if options.len() > MAX_OVERLAY_OPTIONS {
        return Err(RuntimeError::InvalidArgument(format!(
            "the image has too many layers ({}) for one overlay mount",
            layers.len()
        )));
    }
    nix::mount::mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| RuntimeError::Internal(format!("mounting the overlay rootfs: {e}")))?;
    Ok(rootfs)
}

/// Bytes and inodes under `dir`, not following links.
fn disk_usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut bytes = 0;
    let mut inodes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            inodes += 1;
            bytes += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    (bytes, inodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signals_parse_by_name_or_number() {
        use nix::sys::signal::Signal;
        assert_eq!(stop_signal(None), Signal::SIGTERM);
        assert_eq!(stop_signal(Some("SIGQUIT")), Signal::SIGQUIT);
        assert_eq!(stop_signal(Some("int")), Signal::SIGINT);
        assert_eq!(stop_signal(Some("9")), Signal::SIGKILL);
        assert_eq!(stop_signal(Some("bogus")), Signal::SIGTERM);
    }

    #[tokio::test]
    async fn exec_output_is_capped_but_read_to_the_end() {
        let data = vec![7u8; 300_000];
        let kept = read_capped(data.as_slice(), 100_000).await;
        assert_eq!(kept.len(), 100_000);
        assert_eq!(read_capped(&b"short"[..], 100).await, b"short");
    }

    #[test]
    fn disk_usage_counts_files_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f"), vec![1u8; 10_000]).unwrap();
        let (bytes, inodes) = disk_usage(dir.path());
        assert_eq!(inodes, 2);
        assert!(bytes >= 10_000);
    }
}
