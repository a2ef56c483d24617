//! A pod sandbox whose setup fails part way leaves nothing behind: the
//! runtime core is driven in-process with a pod network that refuses to
//! connect, after the namespaces, /dev/shm and the infra process exist.

mod support;

use std::path::Path;
use std::sync::Arc;

use berth_nodeagent::runtime::network::PodNetwork;
use berth_nodeagent::runtime::{Runtime, RuntimeConfig, RuntimeError};
use proto::cri;
use support::agent::{alive, mounts_under};

#[derive(Debug, Default)]
struct RefusingNetwork {
    teardowns: std::sync::Mutex<usize>,
}

impl PodNetwork for RefusingNetwork {
    fn setup(
        &self,
        _: &str,
        netns: &Path,
        _: &cri::PodSandboxConfig,
    ) -> Result<Option<String>, String> {
        assert!(netns.exists(), "setup runs once the namespace is held");
        Err("no address left in the pod range".into())
    }

    fn teardown(&self, _: &str, _: &Path) -> Result<(), String> {
        *self.teardowns.lock().unwrap() += 1;
        Ok(())
    }

    fn status(&self) -> (bool, String) {
        (false, "refusing".into())
    }
}

fn config(name: &str, hostname: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: hostname.into(),
        ..Default::default()
    }
}

fn infra_processes(binary: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.starts_with(binary.as_bytes()) && c.ends_with(b"pause\0"))
                .unwrap_or(false)
        })
        .collect()
}

#[tokio::test]
async fn a_failed_sandbox_leaves_no_namespace_mount_cgroup_or_process() {
    let dir = tempfile::Builder::new()
        .prefix("berth-sandbox-")
        .tempdir()
        .unwrap();
    let binary = env!("CARGO_BIN_EXE_berth-nodeagent");
    let cgroup_root = format!("berth-test-failures-{}", std::process::id());
    let mut cri_config = berth_nodeagent::cri::CriConfig::new(
        dir.path().join("lib"),
        dir.path().join("run"),
        dir.path().join("run/cri.sock"),
    );
    cri_config.cgroup_root = cgroup_root.clone();
    let images = berth_nodeagent::cri::image_manager(&cri_config).unwrap();
    let network = Arc::new(RefusingNetwork::default());
    let runtime = Runtime::open(
        RuntimeConfig {
            root: dir.path().join("lib"),
            state: dir.path().join("run"),
            shim_binary: binary.into(),
            cgroup_root: cgroup_root.clone(),
            pids_limit: None,
        },
        images,
        network.clone(),
    )
    .unwrap();
    let before = infra_processes(binary);

    let err = runtime
        .run_pod_sandbox(config("refused", "refused"), String::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Internal(m) if m.contains("no address left")),
        "{err:?}"
    );
    assert_eq!(
        *network.teardowns.lock().unwrap(),
        1,
        "teardown after a failed setup"
    );
    assert!(
        mounts_under(dir.path()).is_empty(),
        "{:?}",
        mounts_under(dir.path())
    );
    let sandboxes: Vec<_> = std::fs::read_dir(dir.path().join("run/sandboxes"))
        .unwrap()
        .collect();
    assert!(sandboxes.is_empty(), "{sandboxes:?}");
    assert_eq!(
        infra_processes(binary),
        before,
        "the infra process was left running"
    );
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let pods: Vec<_> = std::fs::read_dir(hierarchy.path().join(&cgroup_root))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        assert!(pods.is_empty(), "pod cgroups left: {pods:?}");
        let _ = std::fs::remove_dir(hierarchy.path().join(&cgroup_root));
    }
    assert!(runtime.list_pod_sandbox(None).is_empty());

    // A hostname the kernel would refuse is a bad request, made before anything.
    let err = runtime
        .run_pod_sandbox(config("long", &"x".repeat(64)), String::new())
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidArgument(_)), "{err:?}");
}
