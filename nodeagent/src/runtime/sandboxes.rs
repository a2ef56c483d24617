//! RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus and
//! ListPodSandbox over the runtime core.

use std::collections::HashMap;

use proto::cri;

use super::sandbox::{self, NamespaceChoice};
use super::{
    Runtime, RuntimeError, SandboxEntry, SandboxRecord, encode, labels_match, new_id, now_nanos,
    write_record,
};

fn namespace_mode(config: &cri::PodSandboxConfig) -> cri::NamespaceOption {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default()
}

fn is_node(mode: i32) -> bool {
    mode == cri::NamespaceMode::Node as i32
}

impl Runtime {
    pub async fn run_pod_sandbox(
        &self,
        config: cri::PodSandboxConfig,
        runtime_handler: String,
    ) -> Result<String, RuntimeError> {
        let metadata = config.metadata.clone().ok_or_else(|| {
            RuntimeError::InvalidArgument("sandbox config has no metadata".into())
        })?;
        if metadata.name.is_empty() || metadata.namespace.is_empty() || metadata.uid.is_empty() {
            return Err(RuntimeError::InvalidArgument(
                "sandbox metadata needs a name, namespace and uid".into(),
            ));
        }
        // sethostname takes at most 64 bytes; Kubernetes names are DNS labels.
        if config.hostname.len() > 63 || config.hostname.contains(['/', '\0', ' ']) {
            return Err(RuntimeError::InvalidArgument(format!(
                "invalid hostname {:?}: at most 63 characters, no '/', space or NUL",
                config.hostname
            )));
        }
        if !runtime_handler.is_empty() && runtime_handler != "berth" {
            return Err(RuntimeError::InvalidArgument(format!(
                "unknown runtime handler {runtime_handler:?}"
            )));
        }
        let name_lock = self
            .locks
            .lock(&format!(
                "sandbox-name/{}/{}/{}/{}",
                metadata.name, metadata.namespace, metadata.uid, metadata.attempt
            ))
            .await;
        if let Some(existing) = self
            .sandboxes
            .lock()
            .expect("sandboxes")
            .values()
            .find(|e| e.config.metadata.as_ref() == Some(&metadata))
        {
            return Err(RuntimeError::AlreadyExists(format!(
                "pod sandbox {}_{}_{}_{} is reserved for {}",
                metadata.name,
                metadata.namespace,
                metadata.uid,
                metadata.attempt,
                existing.record.id
            )));
        }
        let modes = namespace_mode(&config);
        let id = new_id();
        let dir = self.sandbox_dir(&id);
        let choice = NamespaceChoice {
            net: !is_node(modes.network),
            ipc: !is_node(modes.ipc),
            uts: !is_node(modes.network),
        };
        let mut record = SandboxRecord {
            id: id.clone(),
            created_at: now_nanos(),
            ready: true,
            ip: None,
            own_net: choice.net,
            own_ipc: choice.ipc,
            own_uts: choice.uts,
            own_pid: !is_node(modes.pid),
            infra: None,
            runtime_handler,
            config: encode(&config),
        };
        let network = self.network.clone();
        // The CRI default, and `shareProcessNamespace`: one pid namespace for
        // the pod, held by an infra process in the pod's cgroup.
        let shared_pid = modes.pid == cri::NamespaceMode::Pod as i32;
        let infra_binary = self.config.shim_binary.clone();
        let (cgroup_parent, own_cgroup) = self.pod_cgroup(&id, &config);
        let infra_slot: std::sync::Arc<std::sync::Mutex<Option<super::InfraProcess>>> =
            Default::default();
        let setup = {
            let dir = dir.clone();
            let config = config.clone();
            let id = id.clone();
            let infra_slot = infra_slot.clone();
            let cgroup_parent = cgroup_parent.clone();
            tokio::task::spawn_blocking(move || -> Result<Option<String>, String> {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                if shared_pid {
                    let infra = sandbox::start_infra(&infra_binary, &cgroup_parent)?;
                    *infra_slot.lock().expect("infra") = Some(infra);
                }
                sandbox::create_namespaces(&dir, choice, &config.hostname)?;
                let ip = if choice.net {
                    network.setup(&id, &sandbox::ns_path(&dir, "net"), &config)?
                } else {
                    None
                };
                if choice.ipc {
                    sandbox::mount_shm(&dir)?;
                }
                let hostname = if config.hostname.is_empty() {
                    nix::unistd::gethostname()
                        .map(|h| h.to_string_lossy().into_owned())
                        .unwrap_or_default()
                } else {
                    config.hostname.clone()
                };
                let write = |name: &str, text: &str| {
                    std::fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
                };
                write("hostname", &format!("{hostname}\n"))?;
                write("hosts", &sandbox::hosts_file(&hostname, ip.as_deref()))?;
                write(
                    "resolv.conf",
                    &sandbox::resolv_conf(config.dns_config.as_ref()),
                )?;
                Ok(ip)
            })
        };
        let result = match setup.await {
            Ok(Ok(ip)) => {
                record.ip = ip;
                record.infra = *infra_slot.lock().expect("infra");
                write_record(&dir.join("sandbox.json"), &record)
            }
            Ok(Err(e)) => Err(RuntimeError::Internal(format!("creating pod sandbox: {e}"))),
            Err(e) => Err(RuntimeError::Internal(format!("creating pod sandbox: {e}"))),
        };
        if let Err(e) = result {
            let network = self.network.clone();
            let cleanup_dir = dir.clone();
            let cleanup_id = id.clone();
            let infra = *infra_slot.lock().expect("infra");
            let own_cgroup = own_cgroup.then_some(cgroup_parent);
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(infra) = infra {
                    sandbox::stop_infra(&infra);
                }
                if let Some(cgroup) = own_cgroup {
                    let _ = super::remove_cgroup(&cgroup);
                }
                if choice.net {
                    let _ = network.teardown(&cleanup_id, &sandbox::ns_path(&cleanup_dir, "net"));
                }
                let _ = sandbox::release(&cleanup_dir);
                let _ = std::fs::remove_dir_all(&cleanup_dir);
            })
            .await;
            return Err(e);
        }
        tracing::info!(sandbox = %id, pod = %format!("{}/{}", metadata.namespace, metadata.name), "pod sandbox ready");
        self.sandboxes
            .lock()
            .expect("sandboxes")
            .insert(id.clone(), SandboxEntry { record, config });
        drop(name_lock);
        Ok(id)
    }

    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        // Stopping what is gone is done.
        let Some(entry) = super::present(self.sandbox(id))? else {
            return Ok(());
        };
        let id = entry.record.id.clone();
        for container in self.container_ids_of(&id) {
            self.stop_container(&container, 0).await?;
        }
        let _guard = self.locks.lock(&id).await;
        let dir = self.sandbox_dir(&id);
        let network = self.network.clone();
        let own_net = entry.record.own_net;
        let sandbox_id = id.clone();
        let infra = entry.record.infra;
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            if let Some(infra) = infra {
                sandbox::stop_infra(&infra);
            }
            if own_net {
                network.teardown(&sandbox_id, &sandbox::ns_path(&dir, "net"))?;
            }
            sandbox::release(&dir)
        })
        .await
        .map_err(|e| RuntimeError::Internal(e.to_string()))?
        .map_err(|e| RuntimeError::Internal(format!("stopping pod sandbox: {e}")))?;
        let mut record = entry.record.clone();
        if record.ready {
            record.ready = false;
            write_record(&self.sandbox_dir(&id).join("sandbox.json"), &record)?;
            if let Some(e) = self.sandboxes.lock().expect("sandboxes").get_mut(&id) {
                e.record.ready = false;
            }
        }
        Ok(())
    }

    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let Some(entry) = super::present(self.sandbox(id))? else {
            return Ok(());
        };
        let id = entry.record.id.clone();
        for container in self.container_ids_of(&id) {
            self.remove_container(&container).await?;
        }
        self.stop_pod_sandbox(&id).await?;
        let _guard = self.locks.lock(&id).await;
        let dir = self.sandbox_dir(&id);
        let (cgroup, owned) = self.pod_cgroup(&id, &entry.config);
        let own_cgroup = owned.then_some(cgroup);
        tokio::task::spawn_blocking(move || {
            if let Some(path) = own_cgroup {
                super::remove_cgroup(&path)?;
            }
            sandbox::release(&dir)?;
            super::remove_dir_if_present(&dir)
        })
        .await
        .map_err(|e| RuntimeError::Internal(e.to_string()))?
        .map_err(RuntimeError::Internal)?;
        self.sandboxes.lock().expect("sandboxes").remove(&id);
        self.locks.forget(&id);
        tracing::info!(sandbox = %id, "pod sandbox removed");
        Ok(())
    }

    /// A sandbox's usage: its running containers' stats and their sums.
    pub fn pod_sandbox_stats(&self, id: &str) -> Result<cri::PodSandboxStats, RuntimeError> {
        let entry = self.sandbox(id)?;
        Ok(self.stats_of_sandbox(&entry))
    }

    pub fn list_pod_sandbox_stats(
        &self,
        filter: Option<&cri::PodSandboxStatsFilter>,
    ) -> Vec<cri::PodSandboxStats> {
        let entries: Vec<SandboxEntry> = self
            .sandboxes
            .lock()
            .expect("sandboxes")
            .values()
            .filter(|e| e.record.ready)
            .filter(|e| {
                filter.is_none_or(|f| {
                    e.record.id.starts_with(&f.id)
                        && labels_match(&e.config.labels, &f.label_selector)
                })
            })
            .cloned()
            .collect();
        entries.iter().map(|e| self.stats_of_sandbox(e)).collect()
    }

    fn stats_of_sandbox(&self, entry: &SandboxEntry) -> cri::PodSandboxStats {
        let containers = self.list_container_stats(Some(&cri::ContainerStatsFilter {
            pod_sandbox_id: entry.record.id.clone(),
            ..Default::default()
        }));
        let now = super::now_nanos();
        let sum = |f: &dyn Fn(&cri::ContainerStats) -> Option<u64>| -> Option<cri::UInt64Value> {
            Some(cri::UInt64Value {
                value: containers.iter().filter_map(f).sum(),
            })
        };
        cri::PodSandboxStats {
            attributes: Some(cri::PodSandboxAttributes {
                id: entry.record.id.clone(),
                metadata: entry.config.metadata.clone(),
                labels: entry.config.labels.clone(),
                annotations: entry.config.annotations.clone(),
            }),
            linux: Some(cri::LinuxPodSandboxStats {
                cpu: Some(cri::CpuUsage {
                    timestamp: now,
                    usage_core_nano_seconds: sum(&|c| {
                        Some(c.cpu.as_ref()?.usage_core_nano_seconds.as_ref()?.value)
                    }),
                    usage_nano_cores: None,
                }),
                memory: Some(cri::MemoryUsage {
                    timestamp: now,
                    working_set_bytes: sum(&|c| {
                        Some(c.memory.as_ref()?.working_set_bytes.as_ref()?.value)
                    }),
                    usage_bytes: sum(&|c| Some(c.memory.as_ref()?.usage_bytes.as_ref()?.value)),
                    rss_bytes: sum(&|c| Some(c.memory.as_ref()?.rss_bytes.as_ref()?.value)),
                    ..Default::default()
                }),
                network: None,
                process: None,
                containers,
            }),
            windows: None,
        }
    }

    /// The network namespace file of a ready sandbox (None: the host's).
    pub fn sandbox_netns(&self, id: &str) -> Result<Option<std::path::PathBuf>, RuntimeError> {
        let entry = self.sandbox(id)?;
        if !entry.record.ready {
            return Err(RuntimeError::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                entry.record.id
            )));
        }
        Ok(entry
            .record
            .own_net
            .then(|| sandbox::ns_path(&self.sandbox_dir(&entry.record.id), "net")))
    }

    fn container_ids_of(&self, sandbox_id: &str) -> Vec<String> {
        self.containers
            .lock()
            .expect("containers")
            .values()
            .filter(|c| c.record.sandbox_id == sandbox_id)
            .map(|c| c.record.id.clone())
            .collect()
    }

    fn sandbox_state(entry: &SandboxEntry) -> i32 {
        if entry.record.ready {
            cri::PodSandboxState::SandboxReady as i32
        } else {
            cri::PodSandboxState::SandboxNotready as i32
        }
    }

    pub fn pod_sandbox_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<(cri::PodSandboxStatus, HashMap<String, String>), RuntimeError> {
        let entry = self.sandbox(id)?;
        let record = &entry.record;
        let options = namespace_mode(&entry.config);
        let status = cri::PodSandboxStatus {
            id: record.id.clone(),
            metadata: entry.config.metadata.clone(),
            state: Self::sandbox_state(&entry),
            created_at: record.created_at,
            network: Some(cri::PodSandboxNetworkStatus {
                ip: record.ip.clone().unwrap_or_default(),
                additional_ips: Vec::new(),
            }),
            linux: Some(cri::LinuxPodSandboxStatus {
                namespaces: Some(cri::Namespace {
                    options: Some(options),
                }),
            }),
            labels: entry.config.labels.clone(),
            annotations: entry.config.annotations.clone(),
            runtime_handler: record.runtime_handler.clone(),
        };
        let mut info = HashMap::new();
        if verbose {
            let dir = self.sandbox_dir(&record.id);
            let netns = record
                .own_net
                .then(|| sandbox::ns_path(&dir, "net").display().to_string());
            info.insert(
                "info".to_string(),
                serde_json::json!({
                    "netNamespacePath": netns,
                    "portMappings": entry.config.port_mappings.iter().map(|p| serde_json::json!({
                        "protocol": cri::Protocol::try_from(p.protocol).map(|p| p.as_str_name()).unwrap_or("TCP"),
                        "containerPort": p.container_port,
                        "hostPort": p.host_port,
                        "hostIp": p.host_ip,
                    })).collect::<Vec<_>>(),
                    "cgroupParent": entry.config.linux.as_ref().map(|l| l.cgroup_parent.clone()),
                    "infraPid": record.infra.map(|i| i.pid),
                })
                .to_string(),
            );
        }
        Ok((status, info))
    }

    pub fn list_pod_sandbox(&self, filter: Option<&cri::PodSandboxFilter>) -> Vec<cri::PodSandbox> {
        let sandboxes = self.sandboxes.lock().expect("sandboxes");
        let mut out: Vec<cri::PodSandbox> = sandboxes
            .values()
            .filter(|e| match filter {
                None => true,
                Some(f) => {
                    (f.id.is_empty() || e.record.id.starts_with(&f.id))
                        && f.state
                            .as_ref()
                            .is_none_or(|s| s.state == Self::sandbox_state(e))
                        && labels_match(&e.config.labels, &f.label_selector)
                }
            })
            .map(|e| cri::PodSandbox {
                id: e.record.id.clone(),
                metadata: e.config.metadata.clone(),
                state: Self::sandbox_state(e),
                created_at: e.record.created_at,
                labels: e.config.labels.clone(),
                annotations: e.config.annotations.clone(),
                runtime_handler: e.record.runtime_handler.clone(),
            })
            .collect();
        out.sort_by_key(|s| s.created_at);
        out
    }

    /// The namespaces and files a sandbox gives its containers.
    pub(super) fn sandbox_context(&self, entry: &SandboxEntry) -> super::spec::SandboxContext {
        let dir = self.sandbox_dir(&entry.record.id);
        let r = &entry.record;
        super::spec::SandboxContext {
            hostname: std::fs::read_to_string(dir.join("hostname"))
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            net: r.own_net.then(|| sandbox::ns_path(&dir, "net")),
            ipc: r.own_ipc.then(|| sandbox::ns_path(&dir, "ipc")),
            uts: r.own_uts.then(|| sandbox::ns_path(&dir, "uts")),
            pid: if r.own_pid {
                super::spec::PidNamespace::Own
            } else {
                super::spec::PidNamespace::Host
            },
            hostname_file: dir.join("hostname"),
            hosts_file: dir.join("hosts"),
            resolv_file: dir.join("resolv.conf"),
            shm: r.own_ipc.then(|| dir.join("shm")),
            sysctls: entry
                .config
                .linux
                .as_ref()
                .map(|l| l.sysctls.clone().into_iter().collect())
                .unwrap_or_default(),
        }
    }

    /// The pod's cgroup, and whether the runtime chose it (and so removes
    /// it with the pod); a parent the CRI client named is the client's.
    pub(super) fn pod_cgroup(&self, id: &str, config: &cri::PodSandboxConfig) -> (String, bool) {
        match config.linux.as_ref().map(|l| l.cgroup_parent.as_str()) {
            Some(parent) if !parent.is_empty() => (parent.to_string(), false),
            _ => (
                format!("/{}/{id}", self.config.cgroup_root.trim_matches('/')),
                true,
            ),
        }
    }
}
