//! Turns a CRI ContainerConfig, the image's config and the sandbox's
//! namespaces and files into the OCI runtime spec (`config.json`) the
//! container module runs: command/args merged as Kubernetes does, env,
//! user, capabilities, mounts, masked paths, namespaces, cgroup limits.
//! Pure: reads nothing but its arguments (device nodes aside).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceBuilder,
    LinuxDeviceType, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder,
    Spec, SpecBuilder, UserBuilder,
};
use proto::cri;

use super::user::ResolvedUser;
use crate::container::caps;
use crate::image::ImageConfig;

/// Paths containerd masks in every unprivileged container.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths containerd makes read-only in every unprivileged container.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where a container's processes live.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum PidNamespace {
    /// The host's (pid mode NODE).
    Host,
    /// One of its own, the workload as pid 1 (pid mode CONTAINER).
    #[default]
    Own,
    /// An existing one: the pod's infra process's (POD) or another
    /// container's (TARGET).
    Join(PathBuf),
}

/// What the sandbox contributes to each of its containers.
#[derive(Debug, Clone, Default)]
pub struct SandboxContext {
    pub hostname: String,
    /// Namespace files to join; None means the host's.
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
    pub pid: PidNamespace,
    pub hostname_file: PathBuf,
    pub hosts_file: PathBuf,
    pub resolv_file: PathBuf,
    /// The sandbox's shared /dev/shm; None: the container gets its own tmpfs.
    pub shm: Option<PathBuf>,
    pub sysctls: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    pub config: &'a cri::ContainerConfig,
    pub image: &'a ImageConfig,
    pub rootfs: &'a Path,
    pub user: &'a ResolvedUser,
    pub sandbox: &'a SandboxContext,
    pub cgroups_path: String,
    /// The node's default pids limit for containers (None: unlimited).
    pub pids_limit: Option<i64>,
}

/// The process args: `command` replaces the image's entrypoint (and drops
/// its cmd), `args` replaces the image's cmd.
pub fn merge_command(
    config: &cri::ContainerConfig,
    image: &ImageConfig,
) -> Result<Vec<String>, String> {
    let mut out = if config.command.is_empty() {
        image.entrypoint.clone()
    } else {
        config.command.clone()
    };
    if !config.args.is_empty() {
        out.extend(config.args.iter().cloned());
    } else if config.command.is_empty() {
        out.extend(image.cmd.iter().cloned());
    }
    if out.is_empty() {
        return Err("no command specified".into());
    }
    Ok(out)
}

/// The image's env, overridden by the config's, plus PATH and HOME defaults.
pub fn merge_env(
    config: &cri::ContainerConfig,
    image: &ImageConfig,
    hostname: &str,
    home: Option<&str>,
) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    fn set(env: &mut Vec<(String, String)>, k: &str, v: &str) {
        match env.iter_mut().find(|(key, _)| key == k) {
            Some(entry) => entry.1 = v.to_string(),
            None => env.push((k.to_string(), v.to_string())),
        }
    }
    set(&mut env, "PATH", DEFAULT_PATH);
    if !hostname.is_empty() {
        set(&mut env, "HOSTNAME", hostname);
    }
    for e in &image.env {
        let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
        set(&mut env, k, v);
    }
    for kv in &config.envs {
        set(&mut env, &kv.key, &kv.value);
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        set(&mut env, "HOME", home.unwrap_or("/"));
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The default capability set with the config's additions and drops;
/// `ALL` adds or drops every capability.
pub fn capabilities(
    add: &[String],
    drop: &[String],
    privileged: bool,
) -> Result<Vec<String>, String> {
    let mut set: Vec<String> = if privileged {
        caps::all_names().map(str::to_string).collect()
    } else {
        caps::DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let normalize = |name: &str| -> Result<String, String> {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper).to_string();
        if bare != "ALL" && caps::number(&bare).is_none() {
            return Err(format!("unknown capability {name:?}"));
        }
        Ok(bare)
    };
    let add: Vec<String> = add.iter().map(|n| normalize(n)).collect::<Result<_, _>>()?;
    let drop: Vec<String> = drop
        .iter()
        .map(|n| normalize(n))
        .collect::<Result<_, _>>()?;
    // As Docker and containerd: ALL in add starts from every capability, ALL
    // in drop from none; then the named ones are added, then dropped.
    if add.iter().any(|n| n == "ALL") {
        set = caps::all_names().map(str::to_string).collect();
    }
    if drop.iter().any(|n| n == "ALL") {
        set.clear();
    }
    for name in add.iter().filter(|n| *n != "ALL") {
        if !set.contains(name) {
            set.push(name.clone());
        }
    }
    set.retain(|c| !drop.contains(c));
    Ok(set)
}

fn mount(destination: &str, typ: &str, source: &Path, options: &[&str]) -> Result<Mount, String> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(|e| e.to_string())
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub fn build(input: &SpecInput<'_>) -> Result<Spec, String> {
    let config = input.config;
    let security = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.clone())
        .unwrap_or_default();
    let privileged = security.privileged;
    let args = merge_command(config, input.image)?;
    let env = merge_env(
        config,
        input.image,
        &input.sandbox.hostname,
        input.user.home.as_deref(),
    );
    let cwd = if !config.working_dir.is_empty() {
        config.working_dir.clone()
    } else {
        input
            .image
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    };
    if !cwd.starts_with('/') {
        return Err(format!("working directory {cwd:?} is not absolute"));
    }
    let (add, drop) = security
        .capabilities
        .as_ref()
        .map(|c| (c.add_capabilities.clone(), c.drop_capabilities.clone()))
        .unwrap_or_default();
    let cap_names = capabilities(&add, &drop, privileged)?;
    let cap_set: HashSet<Capability> = cap_names
        .iter()
        .filter_map(|n| Capability::from_str(n).ok())
        .collect();
    let ambient: HashSet<Capability> = security
        .capabilities
        .as_ref()
        .map(|c| c.add_ambient_capabilities.clone())
        .unwrap_or_default()
        .iter()
        .map(|n| {
            let upper = n.to_ascii_uppercase();
            Capability::from_str(upper.strip_prefix("CAP_").unwrap_or(&upper))
                .map_err(|_| format!("unknown capability {n:?}"))
        })
        .collect::<Result<_, _>>()?;
    let linux_caps = LinuxCapabilitiesBuilder::default()
        .bounding(cap_set.clone())
        .effective(cap_set.clone())
        .permitted(cap_set)
        .inheritable(HashSet::new())
        .ambient(ambient)
        .build()
        .map_err(err)?;
    let user = UserBuilder::default()
        .uid(input.user.uid)
        .gid(input.user.gid)
        .additional_gids(input.user.additional_gids.clone())
        .build()
        .map_err(err)?;
    let resources = config
        .linux
        .as_ref()
        .and_then(|l| l.resources.clone())
        .unwrap_or_default();
    let mut process = ProcessBuilder::default()
        .terminal(config.tty)
        .user(user)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(linux_caps)
        .no_new_privileges(security.no_new_privs)
        .build()
        .map_err(err)?;
    if resources.oom_score_adj != 0 {
        process.set_oom_score_adj(Some(resources.oom_score_adj as i32));
    }

    let sandbox = input.sandbox;
    let mut mounts = vec![
        mount(
            "/proc",
            "proc",
            Path::new("proc"),
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev",
            "tmpfs",
            Path::new("tmpfs"),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            Path::new("devpts"),
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            Path::new("mqueue"),
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            Path::new("sysfs"),
            &[
                "nosuid",
                "noexec",
                "nodev",
                if privileged { "rw" } else { "ro" },
            ],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            Path::new("cgroup"),
            &[
                "nosuid",
                "noexec",
                "nodev",
                "relatime",
                if privileged { "rw" } else { "ro" },
            ],
        )?,
    ];
    let user_paths: HashSet<&str> = config
        .mounts
        .iter()
        .map(|m| m.container_path.as_str())
        .collect();
    match &sandbox.shm {
        Some(shm) if !user_paths.contains("/dev/shm") => mounts.push(mount(
            "/dev/shm",
            "bind",
            shm,
            &["rbind", "nosuid", "nodev", "noexec"],
        )?),
        _ if !user_paths.contains("/dev/shm") => mounts.push(mount(
            "/dev/shm",
            "tmpfs",
            Path::new("shm"),
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?),
        _ => {}
    }
    let readonly_files = security.readonly_rootfs;
    for (path, file) in [
        ("/etc/hostname", &sandbox.hostname_file),
        ("/etc/hosts", &sandbox.hosts_file),
        ("/etc/resolv.conf", &sandbox.resolv_file),
    ] {
        if !user_paths.contains(path) && file.exists() {
            let ro = if readonly_files { "ro" } else { "rw" };
            mounts.push(mount(path, "bind", file, &["rbind", "rprivate", ro])?);
        }
    }
    for m in &config.mounts {
        if !m.container_path.starts_with('/') {
            return Err(format!("mount path {:?} is not absolute", m.container_path));
        }
        let host = Path::new(&m.host_path);
        if !host.exists() {
            return Err(format!("mount source {:?} does not exist", m.host_path));
        }
        let propagation = match cri::MountPropagation::try_from(m.propagation) {
            Ok(cri::MountPropagation::PropagationHostToContainer) => "rslave",
            Ok(cri::MountPropagation::PropagationBidirectional) => "rshared",
            _ => "rprivate",
        };
        let ro = if m.readonly { "ro" } else { "rw" };
        mounts.push(mount(
            &m.container_path,
            "bind",
            host,
            &["rbind", propagation, ro],
        )?);
    }

    let mut namespaces = vec![
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::Mount)
            .build()
            .map_err(err)?,
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::Cgroup)
            .build()
            .map_err(err)?,
    ];
    match &sandbox.pid {
        PidNamespace::Host => {}
        PidNamespace::Own => namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Pid)
                .build()
                .map_err(err)?,
        ),
        PidNamespace::Join(path) => namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Pid)
                .path(path.clone())
                .build()
                .map_err(err)?,
        ),
    }
    for (typ, path) in [
        (LinuxNamespaceType::Network, &sandbox.net),
        (LinuxNamespaceType::Ipc, &sandbox.ipc),
        (LinuxNamespaceType::Uts, &sandbox.uts),
    ] {
        if let Some(path) = path {
            namespaces.push(
                LinuxNamespaceBuilder::default()
                    .typ(typ)
                    .path(path.clone())
                    .build()
                    .map_err(err)?,
            );
        }
    }

    let mut cpu = LinuxCpuBuilder::default();
    if resources.cpu_shares > 0 {
        cpu = cpu.shares(resources.cpu_shares as u64);
    }
    if resources.cpu_quota > 0 {
        cpu = cpu.quota(resources.cpu_quota);
    }
    if resources.cpu_period > 0 {
        cpu = cpu.period(resources.cpu_period as u64);
    }
    if !resources.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(resources.cpuset_cpus.clone());
    }
    if !resources.cpuset_mems.is_empty() {
        cpu = cpu.mems(resources.cpuset_mems.clone());
    }
    let mut linux_resources = LinuxResourcesBuilder::default().cpu(cpu.build().map_err(err)?);
    if resources.memory_limit_in_bytes > 0 {
        linux_resources = linux_resources.memory(
            LinuxMemoryBuilder::default()
                .limit(resources.memory_limit_in_bytes)
                .build()
                .map_err(err)?,
        );
    }
    if let Some(limit) = pids_limit(&resources, input.pids_limit)? {
        linux_resources = linux_resources.pids(
            LinuxPidsBuilder::default()
                .limit(limit)
                .build()
                .map_err(err)?,
        );
    }
    let mut devices = Vec::new();
    for d in &config.devices {
        devices.push(device(d)?);
    }
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(linux_resources.build().map_err(err)?)
        .cgroups_path(PathBuf::from(&input.cgroups_path))
        .devices(devices)
        .sysctl(sandbox.sysctls.clone());
    if !privileged && let Some(profile) = seccomp_profile(security.seccomp.as_ref())? {
        linux = linux.seccomp(profile);
    }
    if !privileged {
        let masked = if security.masked_paths.is_empty() {
            MASKED_PATHS.iter().map(|s| s.to_string()).collect()
        } else {
            security.masked_paths.clone()
        };
        let readonly = if security.readonly_paths.is_empty() {
            READONLY_PATHS.iter().map(|s| s.to_string()).collect()
        } else {
            security.readonly_paths.clone()
        };
        linux = linux.masked_paths(masked).readonly_paths(readonly);
    }
    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(input.rootfs)
                .readonly(security.readonly_rootfs)
                .build()
                .map_err(err)?,
        )
        .hostname(sandbox.hostname.clone())
        .mounts(mounts)
        .process(process)
        .linux(linux.build().map_err(err)?)
        .annotations(HashMap::new())
        .build()
        .map_err(err)
}

/// The pids limit: `pids.max` of the CRI's unified map when given ("max":
/// none), else the node's default.
pub fn pids_limit(
    resources: &cri::LinuxContainerResources,
    default: Option<i64>,
) -> Result<Option<i64>, String> {
    match resources.unified.get("pids.max").map(|v| v.trim()) {
        Some("max") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| format!("invalid pids.max {v:?}")),
        None => Ok(default.filter(|n| *n > 0)),
    }
}

/// The seccomp section for a CRI security profile: none when unset or
/// Unconfined, the runtime's default, or a node-local JSON profile (OCI
/// `linux.seccomp` form, which Docker's profiles also take).
fn seccomp_profile(
    profile: Option<&cri::SecurityProfile>,
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, String> {
    use cri::security_profile::ProfileType;
    let Some(profile) = profile else {
        return Ok(None);
    };
    let seccomp = match ProfileType::try_from(profile.profile_type) {
        Ok(ProfileType::Unconfined) => return Ok(None),
        Ok(ProfileType::RuntimeDefault) => crate::container::seccomp::runtime_default(),
        Ok(ProfileType::Localhost) => {
            let path = profile.localhost_ref.trim_start_matches("localhost/");
            let text = std::fs::read(path).map_err(|e| format!("seccomp profile {path:?}: {e}"))?;
            serde_json::from_slice(&text).map_err(|e| format!("seccomp profile {path:?}: {e}"))?
        }
        Err(_) => {
            return Err(format!(
                "unknown seccomp profile type {}",
                profile.profile_type
            ));
        }
    };
    // Refused now, as a bad request, rather than when the container starts.
    crate::container::seccomp::compile(&seccomp)?;
    Ok(Some(seccomp))
}

fn device(d: &cri::Device) -> Result<oci_spec::runtime::LinuxDevice, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta =
        std::fs::metadata(&d.host_path).map_err(|e| format!("device {}: {e}", d.host_path))?;
    let typ = if meta.file_type().is_block_device() {
        LinuxDeviceType::B
    } else if meta.file_type().is_char_device() {
        LinuxDeviceType::C
    } else {
        return Err(format!("{} is not a device", d.host_path));
    };
    let rdev = meta.rdev();
    let container_path = if d.container_path.is_empty() {
        &d.host_path
    } else {
        &d.container_path
    };
    LinuxDeviceBuilder::default()
        .path(container_path)
        .typ(typ)
        .major(nix::sys::stat::major(rdev) as i64)
        .minor(nix::sys::stat::minor(rdev) as i64)
        .file_mode(meta.mode() & 0o777)
        .build()
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["default".into()],
            env: vec!["PATH=/bin".into(), "A=image".into()],
            ..Default::default()
        }
    }

    fn config(command: &[&str], args: &[&str]) -> cri::ContainerConfig {
        cri::ContainerConfig {
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn command_and_args_merge_as_kubernetes_does() {
        let i = image();
        assert_eq!(
            merge_command(&config(&[], &[]), &i).unwrap(),
            ["/entry", "default"]
        );
        assert_eq!(
            merge_command(&config(&[], &["x"]), &i).unwrap(),
            ["/entry", "x"]
        );
        assert_eq!(merge_command(&config(&["sh"], &[]), &i).unwrap(), ["sh"]);
        assert_eq!(
            merge_command(&config(&["sh"], &["-c", "y"]), &i).unwrap(),
            ["sh", "-c", "y"]
        );
        assert!(merge_command(&config(&[], &[]), &ImageConfig::default()).is_err());
    }

    #[test]
    fn config_env_overrides_the_image() {
        let mut c = config(&[], &[]);
        c.envs.push(cri::KeyValue {
            key: "A".into(),
            value: "config".into(),
        });
        let env = merge_env(&c, &image(), "web-0", Some("/root"));
        assert!(env.contains(&"PATH=/bin".to_string()));
        assert!(env.contains(&"A=config".to_string()));
        assert!(env.contains(&"HOSTNAME=web-0".to_string()));
        assert!(env.contains(&"HOME=/root".to_string()));
        assert_eq!(env.iter().filter(|e| e.starts_with("A=")).count(), 1);
    }

    #[test]
    fn capabilities_add_and_drop_by_any_spelling() {
        let set = capabilities(&["cap_sys_admin".into()], &["KILL".into()], false).unwrap();
        assert!(set.contains(&"SYS_ADMIN".to_string()));
        assert!(!set.contains(&"KILL".to_string()));
        assert!(
            capabilities(&[], &["ALL".into()], false)
                .unwrap()
                .is_empty()
        );
        assert!(capabilities(&["BOGUS".into()], &[], false).is_err());
        assert_eq!(
            capabilities(&[], &[], true).unwrap().len(),
            caps::all_names().count()
        );
    }

    #[test]
    fn spec_joins_sandbox_namespaces_and_masks_proc() {
        let c = config(&["sh"], &[]);
        let sandbox = SandboxContext {
            hostname: "pod".into(),
            net: Some("/run/x/net".into()),
            ipc: Some("/run/x/ipc".into()),
            uts: Some("/run/x/uts".into()),
            pid: PidNamespace::Own,
            ..Default::default()
        };
        let user = ResolvedUser::default();
        let spec = build(&SpecInput {
            config: &c,
            image: &image(),
            rootfs: Path::new("/r"),
            user: &user,
            sandbox: &sandbox,
            cgroups_path: "/berth/p/c".into(),
            pids_limit: Some(4096),
        })
        .unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let ns = linux.namespaces().as_ref().unwrap();
        assert_eq!(ns.len(), 6);
        assert!(ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network
            && n.path().as_deref() == Some(Path::new("/run/x/net"))));
        assert!(
            linux
                .masked_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/kcore".to_string())
        );
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/berth/p/c"))
        );
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["process"]["args"][0], "sh");
        assert_eq!(json["root"]["path"], "/r");
        assert_eq!(json["linux"]["resources"]["pids"]["limit"], 4096);
        let mut r = cri::LinuxContainerResources::default();
        r.unified.insert("pids.max".into(), "max".into());
        assert_eq!(pids_limit(&r, Some(10)).unwrap(), None);
        r.unified.insert("pids.max".into(), "20".into());
        assert_eq!(pids_limit(&r, None).unwrap(), Some(20));
        r.unified.insert("pids.max".into(), "lots".into());
        assert!(pids_limit(&r, None).is_err());
    }
}
