//! The container runtime benchmark (root): `cargo bench -p berth-nodeagent
//! --bench runtime`. Prints, from one run on one machine:
//! 1. create+start+delete of a container over N runs (BERTH_BENCH_RUNS,
//!    default 100) with Berth's own runtime (`berth-nodeagent oci run`),
//!    runc and crun, on the same bundle (busybox-static rootfs, `true`,
//!    pid/mount/ipc/uts/net namespaces, a memory-limited cgroup);
//! 2. sandbox+container start through CRI (RunPodSandbox, CreateContainer,
//!    StartContainer) p50/p99 over the same number of pods;
//! 3. pull+unpack of a large image (BERTH_BENCH_IMAGE_MB, default 256 MiB in
//!    four incompressible gzip layers) from a local registry.
//!
//! crun refuses hybrid cgroup machines whose cgroup2 mount has a controller
//! (this one has hugetlb there), so the benchmark runs in a private mount
//! namespace without /sys/fs/cgroup/unified: all three runtimes then see
//! the same pure cgroup v1 tree.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proto::cri;
use support::agent::Node;
use support::registry::{Registry, TestImage};

const AGENT: &str = env!("CARGO_BIN_EXE_berth-nodeagent");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Summary {
    name: String,
    runs: usize,
    failures: usize,
    times: Vec<Duration>,
}

impl Summary {
    fn print(&mut self) {
        self.times.sort();
        if self.times.is_empty() {
            println!("{:<34} all {} runs failed", self.name, self.runs);
            return;
        }
        let total: Duration = self.times.iter().sum();
        println!(
            "{:<34} runs {:>4}  failed {:>3}  mean {:>10}  p50 {:>10}  p99 {:>10}",
            self.name,
            self.runs,
            self.failures,
            ms(total / self.times.len() as u32),
            ms(percentile(&self.times, 0.50)),
            ms(percentile(&self.times, 0.99)),
        );
    }
}

/// A private mount namespace without the cgroup2 mount (see the module doc).
fn isolate_mounts() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare mount namespace");
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
    let _ = nix::mount::umount2("/sys/fs/cgroup/unified", nix::mount::MntFlags::MNT_DETACH);
}

fn write_bundle(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static");
    for applet in ["sh", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    dir.to_path_buf()
}

fn config_json(cgroup: &str) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "hostname": "bench",
        "process": {
            "args": ["/bin/true"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "noNewPrivileges": true,
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            }
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}],
            "cgroupsPath": cgroup,
            "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 64}},
            "maskedPaths": ["/proc/timer_list", "/proc/acpi"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// Runs the container N times with one runtime; the timed span is the whole
/// runtime command: create, start, wait for exit, delete.
fn run_runtime(
    name: &str,
    bundle: &Path,
    runs: usize,
    command: impl Fn(&str) -> Command,
) -> Summary {
    let mut summary = Summary {
        name: name.into(),
        runs,
        failures: 0,
        times: Vec::new(),
    };
    let mut first_error = None;
    let short = name.split_whitespace().next().unwrap_or("runtime");
    for i in 0..runs {
        let id = format!("bench-{short}-{i}");
        let cgroup = format!("/berth-bench/{id}");
        std::fs::write(bundle.join("config.json"), config_json(&cgroup).to_string()).unwrap();
        let mut cmd = command(&id);
        cmd.current_dir(bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let output = cmd.output();
        let elapsed = started.elapsed();
        match output {
            Ok(o) if o.status.success() => summary.times.push(elapsed),
            Ok(o) => {
                summary.failures += 1;
                first_error.get_or_insert_with(|| String::from_utf8_lossy(&o.stderr).into_owned());
            }
            Err(e) => {
                summary.failures += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    if let Some(e) = first_error {
        eprintln!("{name}: first failure: {}", e.trim());
    }
    summary
}

fn sandbox_config(i: usize, node: &Node) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: format!("bench-{i}"),
            uid: format!("uid-{i}"),
            namespace: "bench".into(),
            attempt: 0,
        }),
        hostname: format!("bench-{i}"),
        log_directory: node.dir.path().join("logs").display().to_string(),
        linux: support::agent::own_pid_namespaces(),
        ..Default::default()
    }
}

async fn cri_benchmarks(runs: usize, image_mb: usize) {
    let registry = Registry::start(None);
    registry.push("bench/busybox", "latest", &TestImage::busybox());
    registry.push("bench/large", "latest", &TestImage::large(image_mb));
    let image = registry.reference("bench/busybox", "latest");
    let node = Node::new_with_binary(AGENT);
    node.pull(&image).await;
    let started = Instant::now();
    node.pull(&registry.reference("bench/large", "latest"))
        .await;
    let elapsed = started.elapsed();
    println!(
        "pull+unpack of a {image_mb} MiB image (4 gzip layers, local registry): {} ({:.1} MiB/s)",
        ms(elapsed),
        image_mb as f64 / elapsed.as_secs_f64()
    );

    let mut client = node.runtime().await;
    let mut sandbox_times = Vec::new();
    let mut pod_times = Vec::new();
    let mut teardown_times = Vec::new();
    for i in 0..runs {
        let config = sandbox_config(i, &node);
        let started = Instant::now();
        let sandbox = support::agent::run_sandbox(&mut client, &config).await;
        sandbox_times.push(started.elapsed());
        let container = client
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
                config: Some(cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata {
                        name: "main".into(),
                        attempt: 0,
                    }),
                    image: Some(cri::ImageSpec {
                        image: image.clone(),
                        ..Default::default()
                    }),
                    command: vec!["sleep".into(), "1000".into()],
                    log_path: format!("{i}.log"),
                    ..Default::default()
                }),
                sandbox_config: Some(config),
            })
            .await
            .expect("create container")
            .into_inner()
            .container_id;
        client
            .start_container(cri::StartContainerRequest {
                container_id: container,
            })
            .await
            .expect("start container");
        pod_times.push(started.elapsed());
        let started = Instant::now();
        client
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: sandbox.clone(),
            })
            .await
            .expect("stop sandbox");
        client
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: sandbox,
            })
            .await
            .expect("remove sandbox");
        teardown_times.push(started.elapsed());
    }
    for (name, times) in [
        ("CRI RunPodSandbox", sandbox_times),
        ("CRI sandbox+container start", pod_times),
        ("CRI stop+remove sandbox", teardown_times),
    ] {
        Summary {
            name: name.into(),
            runs,
            failures: 0,
            times,
        }
        .print();
    }
}

fn which(binary: &str) -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| Path::new(d).join(binary).exists())
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("the runtime benchmark needs root");
        std::process::exit(1);
    }
    let runs = env_usize("BERTH_BENCH_RUNS", 100);
    let image_mb = env_usize("BERTH_BENCH_IMAGE_MB", 256);
    isolate_mounts();
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-")
        .tempdir()
        .unwrap();
    let bundle = write_bundle(dir.path());
    println!(
        "container create+start+delete, `true` in pid/mount/ipc/uts/net namespaces with a memory cgroup, {runs} runs each:"
    );
    let mut results = vec![run_runtime(
        "berth (berth-nodeagent oci run)",
        &bundle,
        runs,
        |_| {
            let mut c = Command::new(AGENT);
            c.args(["oci", "run", "--bundle", "."]);
            c
        },
    )];
    for (name, binary) in [("runc run", "runc"), ("crun run", "crun")] {
        if which(binary) {
            results.push(run_runtime(name, &bundle, runs, |id| {
                let mut c = Command::new(binary);
                c.args(["run", "--bundle", ".", id]);
                c
            }));
        } else {
            println!("{name}: {binary} is not installed (scripts/setup.sh installs it)");
        }
    }
    for r in &mut results {
        r.print();
    }
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(hierarchy.path().join("berth-bench"));
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(cri_benchmarks(runs, image_mb));
}
