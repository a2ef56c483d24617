//! The CRI RuntimeService of a real `berth-nodeagent cri` process, driven by
//! a CRI gRPC client over its unix socket as kubelet would: sandboxes with
//! their own namespaces, containers in overlayfs, cgroups, logs, exec, OOM,
//! graceful stop, agent restarts and clean removal. Runs as root; images
//! come from a local registry the tests fill themselves.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proto::cri::{
    self, ContainerConfig, ContainerMetadata, CreateContainerRequest, ExecSyncRequest, ImageSpec,
    KeyValue, LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    ListContainersRequest, PodSandboxConfig, PodSandboxMetadata, RemoveContainerRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopContainerRequest,
    StopPodSandboxRequest, runtime_service_client::RuntimeServiceClient,
};
use support::agent::{Node, alive, eventually, run_sandbox};
use support::registry::{Registry, TestImage};
use tonic::transport::Channel;

type Client = RuntimeServiceClient<Channel>;

fn sandbox_config(name: &str, node: &Node) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: node
            .dir
            .path()
            .join("logs")
            .join(name)
            .display()
            .to_string(),
        dns_config: Some(cri::DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["default.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        labels: HashMap::from([("app".to_string(), name.to_string())]),
        linux: support::agent::own_pid_namespaces(),
        ..Default::default()
    }
}

fn container_config(name: &str, image: &str, command: &[&str]) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/0.log"),
        envs: vec![KeyValue {
            key: "GREETING".into(),
            value: "hello".into(),
        }],
        ..Default::default()
    }
}

/// A local registry holding busybox, and a node (agent running) that has
/// pulled it; the registry must live as long as the test.
async fn busybox_node() -> (Registry, Node, Client, String) {
    let registry = Registry::start(None);
    registry.push("berth/busybox", "latest", &TestImage::busybox());
    let image = registry.reference("berth/busybox", "latest");
    let node = Node::new();
    node.pull(&image).await;
    let client = node.runtime().await;
    (registry, node, client, image)
}

struct Pod {
    sandbox_id: String,
    config: PodSandboxConfig,
}

async fn run_pod(client: &mut Client, node: &Node, name: &str) -> Pod {
    let config = sandbox_config(name, node);
    let sandbox_id = run_sandbox(client, &config).await;
    Pod { sandbox_id, config }
}

async fn create(
    client: &mut Client,
    pod: &Pod,
    config: ContainerConfig,
) -> Result<String, tonic::Status> {
    client
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.sandbox_id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        })
        .await
        .map(|r| r.into_inner().container_id)
}

async fn start(client: &mut Client, id: &str) {
    client
        .start_container(StartContainerRequest {
            container_id: id.into(),
        })
        .await
        .expect("start");
}

async fn run(client: &mut Client, pod: &Pod, config: ContainerConfig) -> String {
    let id = create(client, pod, config).await.expect("create");
    start(client, &id).await;
    id
}

async fn status(client: &mut Client, id: &str) -> (cri::ContainerStatus, serde_json::Value) {
    let r = client
        .container_status(cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        })
        .await
        .expect("status")
        .into_inner();
    let info = serde_json::from_str(&r.info["info"]).unwrap();
    (r.status.unwrap(), info)
}

async fn exec(client: &mut Client, id: &str, cmd: &[&str]) -> cri::ExecSyncResponse {
    client
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 10,
        })
        .await
        .expect("exec")
        .into_inner()
}

async fn wait_exited(client: &mut Client, id: &str, timeout: Duration) -> cri::ContainerStatus {
    let deadline = Instant::now() + timeout;
    loop {
        let (s, _) = status(client, id).await;
        if s.state == cri::ContainerState::ContainerExited as i32 {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} did not exit: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log_path(node: &Node, pod: &str, container: &str) -> PathBuf {
    node.dir
        .path()
        .join("logs")
        .join(pod)
        .join(container)
        .join("0.log")
}

/// Waits until a container's log holds `text`.
async fn wait_for_log(node: &Node, pod: &str, container: &str, text: &str) {
    assert!(
        eventually(Duration::from_secs(10), || read_log(node, pod, container)
            .contains(text))
        .await,
        "{pod}/{container} never logged {text:?}: {}",
        read_log(node, pod, container)
    );
}

fn read_log(node: &Node, pod: &str, container: &str) -> String {
    std::fs::read_to_string(log_path(node, pod, container)).unwrap_or_default()
}

async fn remove_pod(client: &mut Client, pod: &Pod) {
    client
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.sandbox_id.clone(),
        })
        .await
        .expect("stop sandbox");
    client
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.sandbox_id.clone(),
        })
        .await
        .expect("remove sandbox");
}

/// The state left once everything is removed: no mounts under the node's
/// directories, no cgroups but the (empty) root, no shim or container.
async fn assert_nothing_left(node: &Node, pids: &[i32]) {
    // A shim exits just after it records the exit.
    eventually(Duration::from_secs(5), || {
        node.helper_processes().is_empty()
    })
    .await;
    let mounts = node.mounts();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let cgroups: Vec<PathBuf> = node
        .cgroup_dirs()
        .into_iter()
        .filter(|d| d.file_name().unwrap().to_string_lossy() != node.cgroup_root)
        .collect();
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    for pid in pids {
        assert!(!alive(*pid), "process {pid} still runs");
    }
    let shims: Vec<String> = node
        .helper_processes()
        .iter()
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            format!(
                "{pid}: {} [{stat}]",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            )
        })
        .collect();
    assert!(shims.is_empty(), "shims left: {shims:?}");
    for dir in [
        "run/containers",
        "run/sandboxes",
        "run/attach",
        "lib/containers",
    ] {
        let left: Vec<_> = std::fs::read_dir(node.dir.path().join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "{dir} left: {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_logs_execs_stops_and_is_removed_without_leftovers() {
    let (_registry, node, mut client, image) = busybox_node().await;
    let version = client
        .version(cri::VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.runtime_name, "berth");
    let conditions = client
        .status(cri::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        conditions
            .status
            .unwrap()
            .conditions
            .iter()
            .all(|c| c.status)
    );

    let pod = run_pod(&mut client, &node, "web").await;
    let id = create(
        &mut client,
        &pod,
        container_config(
            "main",
            &image,
            &["sh", "-c", "echo hello; echo oops >&2; sleep 1000"],
        ),
    )
    .await
    .unwrap();
    let (s, _) = status(&mut client, &id).await;
    assert_eq!(s.state, cri::ContainerState::ContainerCreated as i32);
    start(&mut client, &id).await;
    let (s, info) = status(&mut client, &id).await;
    assert_eq!(s.state, cri::ContainerState::ContainerRunning as i32);
    assert!(s.started_at > 0 && s.image_ref.starts_with("sha256:"));
    let pid = info["pid"].as_i64().unwrap() as i32;
    assert!(alive(pid));

    wait_for_log(&node, "web", "main", " stdout F hello\n").await;
    assert!(read_log(&node, "web", "main").contains(" stderr F oops\n"));

    // The sandbox's uts namespace, files and the container's own pid namespace.
    let out = exec(&mut client, &id, &["cat", "/etc/hostname"]).await;
    assert_eq!(
        (String::from_utf8_lossy(&out.stdout).as_ref(), out.exit_code),
        ("web\n", 0)
    );
    let out = exec(&mut client, &id, &["hostname"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "web\n");
    let out = exec(&mut client, &id, &["cat", "/etc/resolv.conf"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("nameserver 10.96.0.10"));
    // busybox sh execs its last command: the workload is pid 1 of its own pid namespace.
    let out = exec(
        &mut client,
        &id,
        &[
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '; echo $GREETING",
        ],
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "sleep 1000 hello\n");
    let out = exec(&mut client, &id, &["sh", "-c", "echo err >&2; exit 3"]).await;
    assert_eq!(
        (out.exit_code, String::from_utf8_lossy(&out.stderr).as_ref()),
        (3, "err\n")
    );
    // The default capability set (docker's), masked and read-only /proc.
    let out = exec(&mut client, &id, &["grep", "CapEff", "/proc/self/status"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "CapEff:\t00000000a80425fb\n"
    );
    let out = exec(
        &mut client,
        &id,
        &[
            "sh",
            "-c",
            "wc -c < /proc/timer_list; echo 1 > /proc/sys/kernel/domainname",
        ],
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
    assert_ne!(out.exit_code, 0, "/proc/sys must be read-only");
    // Only loopback in the pod's network namespace, and it is up.
    let out = exec(
        &mut client,
        &id,
        &[
            "sh",
            "-c",
            "ls /sys/class/net; cat /sys/class/net/lo/operstate",
        ],
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "lo\nunknown\n");
    let missing = client
        .exec_sync(ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["/no/such".into()],
            timeout: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        missing.exit_code,
        127,
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let timed_out = client
        .exec_sync(ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["sleep".into(), "30".into()],
            timeout: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(timed_out.code(), tonic::Code::DeadlineExceeded);

    // Stats from the container's cgroup.
    let stats = client
        .container_stats(cri::ContainerStatsRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    assert!(stats.memory.unwrap().usage_bytes.unwrap().value > 0);
    assert!(stats.cpu.unwrap().usage_core_nano_seconds.unwrap().value > 0);
    let pod_stats = client
        .pod_sandbox_stats(cri::PodSandboxStatsRequest {
            pod_sandbox_id: pod.sandbox_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap()
        .linux
        .unwrap();
    assert_eq!(pod_stats.containers.len(), 1);
    assert!(pod_stats.memory.unwrap().usage_bytes.unwrap().value > 0);

    // Log rotation: move the file away, reopen, new output lands in a new file.
    let log = log_path(&node, "web", "main");
    std::fs::rename(&log, log.with_extension("log.1")).unwrap();
    client
        .reopen_container_log(cri::ReopenContainerLogRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
    assert!(log.exists());

    // sh as pid 1 has no TERM handler: stop waits out the grace period, then kills.
    let started = Instant::now();
    client
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 2,
        })
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    let s = wait_exited(&mut client, &id, Duration::from_secs(5)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"));
    assert!(s.finished_at >= s.started_at);
    assert!(!alive(pid));

    client
        .remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
    let err = client
        .container_status(cri::ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    remove_pod(&mut client, &pod).await;
    assert_nothing_left(&node, &[pid]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_is_oom_killed_and_a_term_handler_stops_early() {
    let (_registry, node, mut client, image) = busybox_node().await;
    let pod = run_pod(&mut client, &node, "limits").await;

    let mut hog = container_config(
        "hog",
        &image,
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"],
    );
    hog.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            memory_limit_in_bytes: 32 * 1024 * 1024,
            ..Default::default()
        }),
        ..Default::default()
    });
    let hog = run(&mut client, &pod, hog).await;
    let s = wait_exited(&mut client, &hog, Duration::from_secs(30)).await;
    assert_eq!(
        (s.reason.as_str(), s.exit_code),
        ("OOMKilled", 137),
        "{s:?}"
    );

    // A process that handles TERM ends as soon as it is asked.
    let polite = run(
        &mut client,
        &pod,
        container_config(
            "polite",
            &image,
            &[
                "sh",
                "-c",
                "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done",
            ],
        ),
    )
    .await;
    wait_for_log(&node, "limits", "polite", "ready").await;
    let started = Instant::now();
    client
        .stop_container(StopContainerRequest {
            container_id: polite.clone(),
            timeout: 30,
        })
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let s = wait_exited(&mut client, &polite, Duration::from_secs(5)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"));
    assert!(read_log(&node, "limits", "polite").contains(" stdout F bye\n"));

    // Removing the sandbox removes its containers.
    remove_pod(&mut client, &pod).await;
    let left = client
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(left.is_empty());
    assert_nothing_left(&node, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_outlive_a_killed_agent_and_a_new_agent_finds_them() {
    let (_registry, mut node, mut client, image) = busybox_node().await;
    let pod = run_pod(&mut client, &node, "survivor").await;
    let id = run(
        &mut client,
        &pod,
        container_config(
            "main",
            &image,
            &["sh", "-c", "while true; do echo tick; sleep 0.2; done"],
        ),
    )
    .await;
    let (_, info) = status(&mut client, &id).await;
    let pid = info["pid"].as_i64().unwrap() as i32;
    drop(client);

    node.kill_agent();
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(pid), "the container died with the agent");
    let ticks = read_log(&node, "survivor", "main").matches("tick").count();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        read_log(&node, "survivor", "main").matches("tick").count() > ticks,
        "the shim stopped logging without the agent"
    );

    node.start_agent();
    let mut client = node.runtime().await;
    let sandboxes = client
        .list_pod_sandbox(cri::ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(sandboxes.len(), 1);
    assert_eq!(sandboxes[0].id, pod.sandbox_id);
    let listed = client
        .list_containers(ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                state: Some(cri::ContainerStateValue {
                    state: cri::ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    let out = exec(&mut client, &id, &["cat", "/etc/hostname"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "survivor\n");

    // The new agent stops it (grace 0) and the shim records the exit.
    client
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
    let s = wait_exited(&mut client, &id, Duration::from_secs(5)).await;
    assert_eq!(s.exit_code, 137);
    remove_pod(&mut client, &pod).await;
    assert_nothing_left(&node, &[pid]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_security_context_and_bad_requests() {
    let registry = Registry::start(None);
    registry.push("berth/busybox", "latest", &TestImage::busybox());
    registry.push("berth/nonroot", "latest", &TestImage::non_root());
    let image = registry.reference("berth/busybox", "latest");
    let nonroot = registry.reference("berth/nonroot", "latest");
    let node = Node::new();
    node.pull(&image).await;
    node.pull(&nonroot).await;
    let mut client = node.runtime().await;
    let pod = run_pod(&mut client, &node, "secure").await;

    // The image's USER, resolved through its /etc/passwd and /etc/group.
    let mut config = container_config("nonroot", &nonroot, &[]);
    config.command.clear();
    let id = run(&mut client, &pod, config).await;
    let s = wait_exited(&mut client, &id, Duration::from_secs(10)).await;
    assert_eq!(s.exit_code, 0);
    let log = read_log(&node, "secure", "nonroot");
    assert!(
        log.contains(" stdout F 1000\n") && log.contains(" stdout F 1000 2000\n"),
        "{log}"
    );

    // runAsUser, read-only rootfs, dropped capabilities, no_new_privs.
    let mut config = container_config(
        "locked",
        &image,
        &[
            "sh",
            "-c",
            "id -u; touch /x || echo readonly; grep -E 'CapEff|NoNewPrivs' /proc/self/status; sleep 1000",
        ],
    );
    config.linux = Some(LinuxContainerConfig {
        // Lowering oom_score_adj needs CAP_SYS_RESOURCE, which this
        // machine's root lacks: the container runs anyway, with a warning.
        resources: Some(LinuxContainerResources {
            oom_score_adj: -997,
            ..Default::default()
        }),
        security_context: Some(LinuxContainerSecurityContext {
            run_as_user: Some(cri::Int64Value { value: 0 }),
            readonly_rootfs: true,
            no_new_privs: true,
            capabilities: Some(cri::Capability {
                drop_capabilities: vec!["ALL".into()],
                add_capabilities: vec!["NET_BIND_SERVICE".into()],
                ..Default::default()
            }),
            ..Default::default()
        }),
    });
    let locked = run(&mut client, &pod, config).await;
    wait_for_log(&node, "secure", "locked", "NoNewPrivs").await;
    let log = read_log(&node, "secure", "locked");
    assert!(log.contains(" stdout F 0\n"), "{log}");
    assert!(log.contains(" stdout F readonly\n"), "{log}");
    assert!(log.contains("CapEff:\t0000000000000400"), "{log}");
    assert!(log.contains("NoNewPrivs:\t1"), "{log}");
    let oom_score_adj = std::fs::read_to_string(format!(
        "/proc/{}/oom_score_adj",
        status(&mut client, &locked).await.1["pid"]
            .as_i64()
            .unwrap()
    ))
    .unwrap();
    if oom_score_adj.trim() != "-997" {
        assert!(
            node.agent_log()
                .contains("cannot set oom_score_adj to -997"),
            "{}",
            node.agent_log()
        );
    }

    // An image a container runs on cannot be removed.
    let err = node
        .images()
        .await
        .remove_image(cri::RemoveImageRequest {
            image: Some(ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");

    // Bad requests get CRI error codes and leave nothing behind.
    let err = create(
        &mut client,
        &pod,
        container_config("bad", &image, &["/no/such/binary"]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let err = create(
        &mut client,
        &pod,
        container_config("nopull", "berth/never-pulled:1", &["sh"]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = create(
        &mut client,
        &pod,
        container_config("locked", &image, &["sh"]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    let missing = Pod {
        sandbox_id: "0000".into(),
        config: pod.config.clone(),
    };
    let err = create(
        &mut client,
        &missing,
        container_config("x", &image, &["sh"]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = client
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    let err = client
        .start_container(StartContainerRequest {
            container_id: locked.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let containers = client
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(containers.len(), 2, "failed creates must not be listed");
    let on_disk = std::fs::read_dir(node.state().join("containers"))
        .unwrap()
        .count();
    assert_eq!(on_disk, 2, "failed creates must leave no bundle");

    remove_pod(&mut client, &pod).await;
    assert_nothing_left(&node, &[]).await;
}

fn cgroup_file(info: &serde_json::Value, controller: &str, file: &str) -> String {
    let path = info["cgroupsPath"]
        .as_str()
        .unwrap()
        .trim_start_matches('/');
    std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/{path}/{file}"))
        .unwrap_or_else(|e| panic!("{controller}/{path}/{file}: {e}"))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_bind_mounts_and_resource_updates() {
    let (_registry, node, mut client, image) = busybox_node().await;
    let pod = run_pod(&mut client, &node, "limited").await;
    let host = node.dir.path().join("hostdata");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("data.txt"), "from host\n").unwrap();

    let mut config = container_config(
        "main",
        &image,
        &[
            "sh",
            "-c",
            "cat /data/data.txt; touch /data/x || echo ro; sleep 1000",
        ],
    );
    config.mounts.push(cri::Mount {
        container_path: "/data".into(),
        host_path: host.display().to_string(),
        readonly: true,
        ..Default::default()
    });
    config.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            cpu_shares: 512,
            cpu_quota: 50_000,
            cpu_period: 100_000,
            memory_limit_in_bytes: 64 * 1024 * 1024,
            unified: HashMap::from([("pids.max".to_string(), "16".to_string())]),
            ..Default::default()
        }),
        ..Default::default()
    });
    let id = run(&mut client, &pod, config).await;
    wait_for_log(&node, "limited", "main", " stdout F ro\n").await;
    assert!(read_log(&node, "limited", "main").contains(" stdout F from host\n"));
    assert!(!host.join("x").exists());

    let (_, info) = status(&mut client, &id).await;
    if Path::new("/sys/fs/cgroup/cpu/cpu.shares").exists() {
        assert_eq!(cgroup_file(&info, "cpu", "cpu.shares"), "512");
        assert_eq!(cgroup_file(&info, "cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(
            cgroup_file(&info, "memory", "memory.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(cgroup_file(&info, "pids", "pids.max"), "16");
    }
    // The container sees its own cgroup as the root of /sys/fs/cgroup.
    let out = exec(
        &mut client,
        &id,
        &["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; grep -c ':/$' /proc/self/cgroup; touch /sys/fs/cgroup/x || echo ro"],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("67108864\n"), "{text} {out:?}");
    assert!(text.ends_with("ro\n"), "{text}");
    // The pids limit holds: 30 background sleeps cannot all fork.
    let out = exec(
        &mut client,
        &id,
        &["sh", "-c", "for i in $(seq 30); do sleep 1 & done; wait"],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fork"),
        "{out:?}"
    );

    client
        .update_container_resources(cri::UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(LinuxContainerResources {
                cpu_quota: 20_000,
                cpu_period: 100_000,
                memory_limit_in_bytes: 128 * 1024 * 1024,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    if Path::new("/sys/fs/cgroup/cpu/cpu.shares").exists() {
        assert_eq!(cgroup_file(&info, "cpu", "cpu.cfs_quota_us"), "20000");
        assert_eq!(
            cgroup_file(&info, "memory", "memory.limit_in_bytes"),
            "134217728"
        );
    }
    let (s, _) = status(&mut client, &id).await;
    let resources = s.resources.unwrap().linux.unwrap();
    assert_eq!(resources.memory_limit_in_bytes, 128 * 1024 * 1024);

    // A mount whose source is missing is refused before anything is made.
    let mut bad = container_config("bad", &image, &["sh"]);
    bad.mounts.push(cri::Mount {
        container_path: "/data".into(),
        host_path: "/no/such/dir".into(),
        ..Default::default()
    });
    let err = create(&mut client, &pod, bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

    remove_pod(&mut client, &pod).await;
    assert_nothing_left(&node, &[]).await;
}

fn with_pid_mode(
    mut config: ContainerConfig,
    mode: cri::NamespaceMode,
    target: &str,
) -> ContainerConfig {
    let linux = config.linux.get_or_insert_with(Default::default);
    let security = linux.security_context.get_or_insert_with(Default::default);
    security.namespace_options = Some(cri::NamespaceOption {
        pid: mode as i32,
        target_id: target.into(),
        ..Default::default()
    });
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_and_target_pid_namespaces() {
    let (_registry, node, mut client, image) = busybox_node().await;

    // pid mode POD (the CRI default, shareProcessNamespace): one pid
    // namespace for the pod, held by an infra process.
    let mut config = sandbox_config("shared", &node);
    config.linux = None;
    let sandbox_id = run_sandbox(&mut client, &config).await;
    let shared = Pod { sandbox_id, config };
    let info = client
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: shared.sandbox_id.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner()
        .info;
    let info: serde_json::Value = serde_json::from_str(&info["info"]).unwrap();
    let infra = info["infraPid"].as_i64().unwrap() as i32;
    assert!(alive(infra));
    run(
        &mut client,
        &shared,
        container_config("a", &image, &["sleep", "1001"]),
    )
    .await;
    let b = run(
        &mut client,
        &shared,
        container_config("b", &image, &["sleep", "1002"]),
    )
    .await;
    let out = exec(
        &mut client,
        &b,
        &[
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '; echo; ps -o args | grep -c '^sleep 100[12]'",
        ],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pause"), "pid 1 is the infra process: {text}");
    assert!(
        text.ends_with("\n2\n"),
        "both containers' processes are visible: {text}"
    );

    // pid mode TARGET: a debug container joins another container's namespace.
    let own = run_pod(&mut client, &node, "own").await;
    let x = run(
        &mut client,
        &own,
        container_config("x", &image, &["sleep", "1003"]),
    )
    .await;
    let debug = run(
        &mut client,
        &own,
        with_pid_mode(
            container_config("debug", &image, &["sleep", "1004"]),
            cri::NamespaceMode::Target,
            &x,
        ),
    )
    .await;
    let out = exec(
        &mut client,
        &debug,
        &["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"],
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "sleep 1003 ");
    let err = create(
        &mut client,
        &own,
        with_pid_mode(
            container_config("lost", &image, &["sh"]),
            cri::NamespaceMode::Target,
            "nope",
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    remove_pod(&mut client, &shared).await;
    assert!(!alive(infra), "the infra process outlived its pod");
    remove_pod(&mut client, &own).await;
    assert_nothing_left(&node, &[infra]).await;
}

fn with_seccomp(
    mut config: ContainerConfig,
    profile_type: i32,
    localhost_ref: &str,
) -> ContainerConfig {
    let linux = config.linux.get_or_insert_with(Default::default);
    let security = linux.security_context.get_or_insert_with(Default::default);
    security.capabilities = Some(cri::Capability {
        add_capabilities: vec!["SYS_ADMIN".into()],
        ..Default::default()
    });
    security.seccomp = Some(cri::SecurityProfile {
        profile_type,
        localhost_ref: localhost_ref.into(),
    });
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seccomp_runtime_default_refuses_what_capabilities_allow() {
    use cri::security_profile::ProfileType;
    let (_registry, node, mut client, image) = busybox_node().await;
    let pod = run_pod(&mut client, &node, "seccomp").await;
    let script = "grep Seccomp: /proc/self/status; mkdir -p /m; mount -t tmpfs none /m && echo mounted || echo refused; sleep 1000";

    // CAP_SYS_ADMIN allows mount; unconfined, it works.
    let open = container_config("open", &image, &["sh", "-c", script]);
    run(
        &mut client,
        &pod,
        with_seccomp(open, ProfileType::Unconfined as i32, ""),
    )
    .await;
    wait_for_log(&node, "seccomp", "open", " stdout F mounted\n").await;
    assert!(read_log(&node, "seccomp", "open").contains("Seccomp:\t0"));

    // RuntimeDefault refuses mount whatever the capabilities, in the
    // container and in processes exec'd into it.
    let filtered = container_config("filtered", &image, &["sh", "-c", script]);
    let id = run(
        &mut client,
        &pod,
        with_seccomp(filtered, ProfileType::RuntimeDefault as i32, ""),
    )
    .await;
    wait_for_log(&node, "seccomp", "filtered", " stdout F refused\n").await;
    assert!(read_log(&node, "seccomp", "filtered").contains("Seccomp:\t2"));
    let out = exec(&mut client, &id, &["grep", "Seccomp:", "/proc/self/status"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Seccomp:\t2\n");

    // A node-local profile the runtime cannot compile is a bad request.
    let profile = node.dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["frobnicate"],"action":"SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap();
    let bad = container_config("bad", &image, &["sh"]);
    let err = create(
        &mut client,
        &pod,
        with_seccomp(
            bad,
            ProfileType::Localhost as i32,
            &profile.display().to_string(),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

    remove_pod(&mut client, &pod).await;
    assert_nothing_left(&node, &[]).await;
}
