//! A real `berth-nodeagent cri` process for integration tests, with CRI
//! clients over its unix socket, and a `Node` that owns the agent's
//! directories and cgroup root and removes every trace on drop (shims,
//! container processes, cgroups, mounts), even when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use proto::cri::image_service_client::ImageServiceClient;
use proto::cri::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint};

/// The directories, cgroup root and agent process of one test node.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub cgroup_root: String,
    binary: PathBuf,
    agent: Option<Child>,
}

impl Node {
    /// A node running the test build of the agent.
    pub fn new() -> Node {
        Node::new_with_binary(env!("CARGO_BIN_EXE_berth-nodeagent"))
    }

    /// A node running the given agent binary.
    pub fn new_with_binary(binary: &str) -> Node {
        let dir = tempfile::Builder::new()
            .prefix("berth-node-")
            .tempdir()
            .expect("temp dir");
        let cgroup_root = format!(
            "berth-test-{}",
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let mut node = Node {
            dir,
            cgroup_root,
            binary: PathBuf::from(binary),
            agent: None,
        };
        node.start_agent();
        node
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("lib")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/cri.sock")
    }

    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Starts `berth-nodeagent cri` and waits until its socket answers.
    pub fn start_agent(&mut self) {
        assert!(self.agent.is_none(), "agent already running");
        let _ = std::fs::remove_file(self.socket());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .unwrap();
        let child = Command::new(&self.binary)
            .arg("cri")
            .arg("--root")
            .arg(self.root())
            .arg("--state")
            .arg(self.state())
            .arg("--socket")
            .arg(self.socket())
            .arg("--registry-config-dir")
            .arg(self.dir.path().join("certs.d"))
            .arg("--cgroup-root")
            .arg(&self.cgroup_root)
            .arg("--log-level")
            .arg(std::env::var("BERTH_AGENT_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start berth-nodeagent");
        self.agent = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                Instant::now() < deadline,
                "agent did not listen: {}",
                self.agent_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9` the agent, leaving its shims and containers alone.
    pub fn kill_agent(&mut self) -> u32 {
        let mut child = self.agent.take().expect("agent running");
        let pid = child.id();
        child.kill().unwrap();
        child.wait().unwrap();
        pid
    }

    async fn channel(&self) -> Channel {
        let path = self.socket();
        Endpoint::try_from("http://[::]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await
            .unwrap()
    }

    pub async fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel().await)
    }

    pub async fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel().await)
    }

    /// Pulls an image through the node's CRI ImageService.
    pub async fn pull(&self, image: &str) {
        self.images()
            .await
            .pull_image(proto::cri::PullImageRequest {
                image: Some(proto::cri::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("pull {image}: {e}"));
    }

    /// Every cgroup directory under this node's cgroup root, in any hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let root = hierarchy.path().join(&self.cgroup_root);
            if root.is_dir() {
                collect_dirs(&root, &mut out);
            }
        }
        out
    }

    /// Mount points under the node's directory.
    pub fn mounts(&self) -> Vec<PathBuf> {
        mounts_under(self.dir.path())
    }

    /// Processes other than the agent whose command line names this node's
    /// directory (shims, exec helpers).
    pub fn helper_processes(&self) -> Vec<i32> {
        let needle = self.dir.path().to_string_lossy().into_owned();
        let me = std::process::id() as i32;
        let agent = self.agent.as_ref().map(|a| a.id() as i32);
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != me && Some(*pid) != agent && alive(*pid))
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                    .unwrap_or(false)
            })
            .collect()
    }

    fn cleanup(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
        for pid in self.helper_processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for _ in 0..100 {
            let mut busy = false;
            for dir in self.cgroup_dirs().iter().rev() {
                for pid in std::fs::read_to_string(dir.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse::<i32>().ok())
                {
                    busy = true;
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = std::fs::remove_dir(dir);
            }
            if !busy && self.cgroup_dirs().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut mounts = self.mounts();
        mounts.sort();
        for m in mounts.iter().rev() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_dirs(&entry.path(), out);
        }
    }
}

pub fn mounts_under(prefix: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(prefix))
        .collect()
}

/// RunPodSandbox with the default runtime handler; returns the sandbox id.
pub async fn run_sandbox(
    client: &mut proto::cri::runtime_service_client::RuntimeServiceClient<Channel>,
    config: &proto::cri::PodSandboxConfig,
) -> String {
    client
        .run_pod_sandbox(proto::cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("run sandbox")
        .into_inner()
        .pod_sandbox_id
}

/// Sandbox settings as kubelet sends them for a pod without
/// shareProcessNamespace: each container in a pid namespace of its own.
pub fn own_pid_namespaces() -> Option<proto::cri::LinuxPodSandboxConfig> {
    Some(proto::cri::LinuxPodSandboxConfig {
        security_context: Some(proto::cri::LinuxSandboxSecurityContext {
            namespace_options: Some(proto::cri::NamespaceOption {
                pid: proto::cri::NamespaceMode::Container as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Polls `check` every 20 ms until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a pid names a live (non-zombie) process.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}
