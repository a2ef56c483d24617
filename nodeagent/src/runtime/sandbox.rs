//! A pod sandbox's kernel side: network, ipc and uts namespaces held open
//! by bind mounts of their nsfs files (no process keeps them), the hostname
//! set inside, loopback up, a shared /dev/shm tmpfs, and the hostname,
//! hosts and resolv.conf files its containers mount. Undoing is idempotent
//! so a half-made sandbox is always removable.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// Which namespaces a sandbox makes for itself (false: the host's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceChoice {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
}

/// Files under the sandbox directory.
pub fn ns_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("ns").join(name)
}

/// Creates the namespaces and binds them under `dir/ns/`. Runs on a
/// thread of its own: unshare changes only the calling thread's
/// namespaces, and the thread ends when done, so the agent stays outside.
pub fn create_namespaces(
    dir: &Path,
    choice: NamespaceChoice,
    hostname: &str,
) -> Result<(), String> {
    let dir = dir.to_path_buf();
    let hostname = hostname.to_string();
    std::thread::spawn(move || create_on_this_thread(&dir, choice, &hostname))
        .join()
        .map_err(|_| "namespace thread panicked".to_string())?
}

fn create_on_this_thread(
    dir: &Path,
    choice: NamespaceChoice,
    hostname: &str,
) -> Result<(), String> {
    let mut flags = nix::sched::CloneFlags::empty();
    if choice.net {
        flags |= nix::sched::CloneFlags::CLONE_NEWNET;
    }
    if choice.ipc {
        flags |= nix::sched::CloneFlags::CLONE_NEWIPC;
    }
    if choice.uts {
        flags |= nix::sched::CloneFlags::CLONE_NEWUTS;
    }
    if flags.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir.join("ns")).map_err(|e| format!("creating ns dir: {e}"))?;
    nix::sched::unshare(flags).map_err(|e| format!("unshare: {e}"))?;
    if choice.uts && !hostname.is_empty() {
        nix::unistd::sethostname(hostname).map_err(|e| format!("sethostname {hostname:?}: {e}"))?;
    }
    if choice.net {
        loopback_up().map_err(|e| format!("bringing up lo: {e}"))?;
    }
    for (name, wanted) in [
        ("net", choice.net),
        ("ipc", choice.ipc),
        ("uts", choice.uts),
    ] {
        if !wanted {
            continue;
        }
        let target = ns_path(dir, name);
        std::fs::File::create(&target)
            .map_err(|e| format!("creating {}: {e}", target.display()))?;
        let source = PathBuf::from(format!("/proc/thread-self/ns/{name}"));
        nix::mount::mount(
            Some(&source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("binding {name} namespace: {e}"))?;
    }
    Ok(())
}

/// `ip link set lo up` in the calling thread's network namespace.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a datagram socket and SIOC[GS]IFFLAGS ioctls on a zeroed ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut result = Ok(());
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            result = Err(std::io::Error::last_os_error());
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
                result = Err(std::io::Error::last_os_error());
            }
        }
        libc::close(fd);
        result
    }
}

/// Mounts the sandbox's /dev/shm.
pub fn mount_shm(dir: &Path) -> Result<PathBuf, String> {
    let shm = dir.join("shm");
    std::fs::create_dir_all(&shm).map_err(|e| format!("creating {}: {e}", shm.display()))?;
    nix::mount::mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(|e| format!("mounting shm: {e}"))?;
    Ok(shm)
}

/// Unmounts everything the sandbox mounted under `dir` (namespaces, shm).
/// Missing or already unmounted entries are fine.
pub fn release(dir: &Path) -> Result<(), String> {
    let mut errors = Vec::new();
    for target in [
        ns_path(dir, "net"),
        ns_path(dir, "ipc"),
        ns_path(dir, "uts"),
        dir.join("shm"),
    ] {
        if let Err(e) = unmount_all(&target) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Unmounts every mount stacked on `target` (EINVAL: not a mount point).
pub fn unmount_all(target: &Path) -> Result<(), String> {
    if std::fs::symlink_metadata(target).is_err() {
        return Ok(());
    }
    for _ in 0..16 {
        match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(format!("unmounting {}: {e}", target.display())),
        }
    }
    Ok(())
}

/// The mount points under `prefix`, from /proc/self/mountinfo.
pub fn mounts_under(prefix: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(prefix))
        .collect()
}

/// Starts the pod's infra process (`berth-nodeagent pause`) in a pid
/// namespace of its own and puts it in the pod's cgroup.
pub fn start_infra(binary: &Path, cgroup: &str) -> Result<crate::runtime::InfraProcess, String> {
    let output = std::process::Command::new(binary)
        .arg("pause")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("starting the infra process: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let pid: i32 = text
        .trim()
        .strip_prefix("ok ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("the infra process failed: {}", text.trim()))?;
    let infra = crate::runtime::InfraProcess {
        pid,
        start_time: crate::container::process_start_time(pid).unwrap_or(0),
    };
    let placed = crate::runtime::cgroups::Hierarchy::detect()
        .and_then(|h| crate::runtime::cgroups::Cgroup::new(h, cgroup))
        .and_then(|c| c.create().and_then(|_| c.add_process(pid)));
    if let Err(e) = placed {
        stop_infra(&infra);
        return Err(format!("placing the infra process in {cgroup}: {e}"));
    }
    Ok(infra)
}

/// Kills the infra process (and so everything left in its pid namespace)
/// and waits until it is gone.
pub fn stop_infra(infra: &crate::runtime::InfraProcess) {
    if !infra.alive() {
        return;
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(infra.pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    for _ in 0..500 {
        if !infra.alive() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// /etc/hosts for the pod.
pub fn hosts_file(hostname: &str, ip: Option<&str>) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if let Some(ip) = ip
        && !hostname.is_empty()
    {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    out
}

/// resolv.conf from the sandbox's DNS config; the host's when it has none.
pub fn resolv_conf(dns: Option<&proto::cri::DnsConfig>) -> String {
    match dns {
        Some(d) if !(d.servers.is_empty() && d.searches.is_empty() && d.options.is_empty()) => {
            let mut out = String::new();
            for s in &d.servers {
                out.push_str(&format!("nameserver {s}\n"));
            }
            if !d.searches.is_empty() {
                out.push_str(&format!("search {}\n", d.searches.join(" ")));
            }
            if !d.options.is_empty() {
                out.push_str(&format!("options {}\n", d.options.join(" ")));
            }
            out
        }
        _ => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_follows_the_dns_config() {
        let dns = proto::cri::DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec![
                "default.svc.cluster.local".into(),
                "svc.cluster.local".into(),
            ],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(Some(&dns)),
            "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n"
        );
    }

    #[test]
    fn hosts_file_names_the_pod() {
        let h = hosts_file("web-0", Some("10.244.0.5"));
        assert!(h.contains("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.244.0.5\tweb-0\n"));
        assert!(!hosts_file("web-0", None).contains("web-0"));
    }
}
