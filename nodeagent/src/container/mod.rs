//! Berth's own OCI runtime: creates a container from an OCI bundle
//! (`config.json` + rootfs) with clone, namespaces, cgroups and pivot_root,
//! starts it through an exec fifo as runc does, and runs the per-container
//! shim that holds its stdio and records its exit. Knows nothing of CRI,
//! images or pods: the runtime service writes the bundle.

pub mod caps;
pub mod console;
pub mod exec;
pub mod fs;
pub mod init;
pub mod log;
pub mod pause;
pub mod seccomp;
pub mod shim;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::runtime::cgroups::{self, Cgroup, CgroupError, Hierarchy};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("invalid spec: {0}")]
    Spec(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let context = context.into();
    move |source| ContainerError::Io { context, source }
}

/// The three standard descriptors of a container process.
#[derive(Debug)]
pub struct Stdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// With a terminal: the socket over which the container process sends
    /// the terminal it opens inside (stdin/stdout/stderr are then replaced).
    pub console: Option<OwnedFd>,
}

/// A container whose process waits for `start`.
#[derive(Debug)]
pub struct Created {
    pub pid: i32,
    pub cgroup: Option<Cgroup>,
    /// Things the machine did not allow, which the container runs without.
    pub warnings: Vec<String>,
}

pub fn load_spec(bundle: &Path) -> Result<Spec, ContainerError> {
    Spec::load(bundle.join("config.json")).map_err(|e| ContainerError::Spec(e.to_string()))
}

/// The rootfs directory named by the spec, relative to the bundle.
pub fn rootfs_path(bundle: &Path, spec: &Spec) -> PathBuf {
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    bundle.join(root)
}

/// The cgroup a spec names (`linux.cgroupsPath`), if any.
pub fn cgroup_of(spec: &Spec) -> Result<Option<Cgroup>, ContainerError> {
    let Some(path) = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()) else {
        return Ok(None);
    };
    let hierarchy = Hierarchy::detect()?;
    Ok(Some(Cgroup::new(hierarchy, &path.to_string_lossy())?))
}

/// The cgroup limits of a spec.
pub fn resources_of(spec: &Spec) -> cgroups::Resources {
    let mut out = cgroups::Resources::default();
    let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
        return out;
    };
    if let Some(cpu) = r.cpu() {
        out.cpu_shares = cpu.shares();
        out.cpu_quota = cpu.quota();
        out.cpu_period = cpu.period();
        out.cpuset_cpus = cpu.cpus().clone();
        out.cpuset_mems = cpu.mems().clone();
    }
    if let Some(memory) = r.memory() {
        out.memory_limit = memory.limit();
    }
    if let Some(pids) = r.pids() {
        out.pids_limit = Some(pids.limit());
    }
    out
}

fn clone_flags(spec: &Spec) -> Result<libc::c_ulong, ContainerError> {
    let mut flags = libc::CLONE_NEWNS as libc::c_ulong;
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        match (ns.typ(), ns.path()) {
            (LinuxNamespaceType::User, _) => {
                return Err(ContainerError::Spec(
                    "user namespaces are not supported".into(),
                ));
            }
            // Joined by the creating process itself before the clone (a pid
            // namespace applies to children), see `join_pid_namespace`.
            (LinuxNamespaceType::Pid, Some(_)) => {}
            // The cgroup namespace is made by the child once it is in its
            // cgroup, so that the cgroup is the namespace's root.
            (LinuxNamespaceType::Cgroup, None) => {}
            (typ, None) => flags |= typ as libc::c_ulong,
            (_, Some(_)) => {}
        }
    }
    Ok(flags)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ContainerError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ContainerError::Setup(format!("pipe: {e}")))
}

/// Creates the container: cgroup with limits, then the init process in its
/// namespaces, set up and waiting on `exec_fifo` (or exec'ing at once when
/// there is none). On failure nothing is left: the child is killed and the
/// cgroup removed. Call only from a single-threaded process (it forks).
pub fn create(
    bundle: &Path,
    spec: &Spec,
    stdio: &Stdio,
    exec_fifo: Option<&Path>,
) -> Result<Created, ContainerError> {
    let flags = clone_flags(spec)?;
    let rootfs = rootfs_path(bundle, spec)
        .canonicalize()
        .map_err(io("resolving the rootfs"))?;
    if let Some(fifo) = exec_fifo
        && !fifo.exists()
    {
        nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| ContainerError::Setup(format!("mkfifo {}: {e}", fifo.display())))?;
    }
    let cgroup = cgroup_of(spec)?;
    if let Some(cgroup) = &cgroup {
        let prepared = cgroup
            .create()
            .and_then(|_| cgroup.apply(&resources_of(spec)))
            .and_then(|_| cgroup.apply_default_device_rules());
        if let Err(e) = prepared {
            let _ = cgroup.kill_all_and_remove(Duration::from_secs(5));
            return Err(e.into());
        }
    }
    let cleanup = |pid: Option<i32>| {
        if let Some(pid) = pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if let Some(cgroup) = &cgroup {
            let _ = cgroup.kill_all_and_remove(Duration::from_secs(5));
        }
    };
    if let Err(e) = join_pid_namespace(spec) {
        cleanup(None);
        return Err(e);
    }
    let (to_child_read, to_child_write) = pipe()?;
    let (from_child_read, from_child_write) = pipe()?;
    // SAFETY: a raw clone with a NULL stack behaves as fork; the caller is
    // single-threaded, so the child may run ordinary code until exec.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        let err = std::io::Error::last_os_error();
        cleanup(None);
        return Err(ContainerError::Setup(format!("clone: {err}")));
    }
    if pid == 0 {
        drop(to_child_write);
        drop(from_child_read);
        let ctx = init::InitContext {
            spec,
            rootfs,
            stdio: [
                stdio.stdin.as_raw_fd(),
                stdio.stdout.as_raw_fd(),
                stdio.stderr.as_raw_fd(),
            ],
            console_socket: stdio.console.as_ref().map(|c| c.as_raw_fd()),
            sync_in: into_raw(to_child_read),
            sync_out: into_raw(from_child_write),
            exec_fifo: exec_fifo.map(Path::to_path_buf),
        };
        init::run(ctx);
    }
    let pid = pid as i32;
    drop(to_child_read);
    drop(from_child_write);
    if let Some(cgroup) = &cgroup
        && let Err(e) = cgroup.add_process(pid)
    {
        cleanup(Some(pid));
        return Err(e.into());
    }
    let mut go = std::fs::File::from(to_child_write);
    if let Err(e) = go.write_all(&[1]) {
        cleanup(Some(pid));
        return Err(io("signalling the container process")(e));
    }
    drop(go);
    let mut warnings = Vec::new();
    let reader = BufReader::new(std::fs::File::from(from_child_read));
    for line in reader.lines() {
        let line = line.unwrap_or_default();
        if let Some(w) = line.strip_prefix("warn: ") {
            warnings.push(w.to_string());
        } else if line == "ready" {
            return Ok(Created {
                pid,
                cgroup,
                warnings,
            });
        } else if let Some(e) = line.strip_prefix("error: ") {
            cleanup(Some(pid));
            return Err(ContainerError::Setup(e.to_string()));
        }
    }
    cleanup(Some(pid));
    Err(ContainerError::Setup(
        "the container process exited during setup".into(),
    ))
}

/// Makes the caller's next children start in the pid namespace the spec
/// names by path, if any.
fn join_pid_namespace(spec: &Spec) -> Result<(), ContainerError> {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .find(|ns| ns.typ() == LinuxNamespaceType::Pid)
        .and_then(|ns| ns.path().clone());
    let Some(path) = path else { return Ok(()) };
    let file = std::fs::File::open(&path).map_err(io(format!("opening {}", path.display())))?;
    // SAFETY: setns on an open namespace descriptor; it changes only the
    // namespace of this process's future children.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
        return Err(ContainerError::Setup(format!(
            "joining pid namespace {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

fn into_raw(fd: OwnedFd) -> RawFd {
    std::os::fd::IntoRawFd::into_raw_fd(fd)
}

/// Lets a created container exec its process: opens the exec fifo and
/// reads the byte the waiting init writes. Fails if the process is gone.
pub fn start(exec_fifo: &Path, pid: i32, timeout: Duration) -> Result<(), ContainerError> {
    let fd = nix::fcntl::open(
        exec_fifo,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| ContainerError::Setup(format!("opening {}: {e}", exec_fifo.display())))?;
    let deadline = Instant::now() + timeout;
    let mut file = std::fs::File::from(fd);
    loop {
        let mut byte = [0u8; 1];
        match std::io::Read::read(&mut file, &mut byte) {
            Ok(1) => break,
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
                return Err(io("reading the exec fifo")(e));
            }
            _ => {}
        }
        if !process_alive(pid) || Instant::now() > deadline {
            return Err(ContainerError::Setup(
                "the container process is not waiting to start".into(),
            ));
        }
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&file),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(20u16));
    }
    let _ = std::fs::remove_file(exec_fifo);
    Ok(())
}

/// Whether `pid` exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// The start time of `pid` in clock ticks since boot (field 22 of its
/// stat), which tells a process from a later one with the same pid.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// /dev/null for a descriptor nobody uses.
pub fn dev_null() -> Result<OwnedFd, ContainerError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(io("opening /dev/null"))?;
    Ok(OwnedFd::from(f))
}

/// Duplicates a descriptor (for handing the same pipe to stdout and stderr).
pub fn duplicate(fd: &OwnedFd) -> Result<OwnedFd, ContainerError> {
    fd.try_clone().map_err(io("dup"))
}

/// Runs a bundle in the foreground as `runc run` does: create, start, wait,
/// remove the cgroup; returns the exit code (128+signal when killed).
pub fn run_foreground(bundle: &Path) -> Result<i32, ContainerError> {
    let spec = load_spec(bundle)?;
    let stdio = Stdio {
        stdin: std::io::stdin().as_fd_owned()?,
        stdout: std::io::stdout().as_fd_owned()?,
        stderr: std::io::stderr().as_fd_owned()?,
        console: None,
    };
    let created = create(bundle, &spec, &stdio, None)?;
    drop(stdio);
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(created.pid), None)
        .map_err(|e| ContainerError::Setup(format!("waitpid: {e}")))?;
    if let Some(cgroup) = &created.cgroup {
        cgroup.kill_all_and_remove(Duration::from_secs(10))?;
    }
    Ok(exit_code(status))
}

trait AsFdOwned {
    fn as_fd_owned(&self) -> Result<OwnedFd, ContainerError>;
}

impl<T: std::os::fd::AsFd> AsFdOwned for T {
    fn as_fd_owned(&self) -> Result<OwnedFd, ContainerError> {
        self.as_fd().try_clone_to_owned().map_err(io("dup stdio"))
    }
}

/// The shell convention for a wait status: the exit code, or 128+signal.
pub fn exit_code(status: nix::sys::wait::WaitStatus) -> i32 {
    match status {
        nix::sys::wait::WaitStatus::Exited(_, code) => code,
        nix::sys::wait::WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        _ => 255,
    }
}

/// Opens a raw descriptor number as a File (for descriptors a parent passed).
pub fn file_from_raw(fd: RawFd) -> std::fs::File {
    // SAFETY: the caller hands over ownership of a valid descriptor.
    unsafe { std::fs::File::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_tell_processes_apart() {
        let me = std::process::id() as i32;
        assert!(process_alive(me));
        assert!(process_start_time(me).is_some());
        assert!(!process_alive(i32::MAX - 1));
    }

    #[test]
    fn user_namespaces_are_refused() {
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap();
        let mut ns = oci_spec::runtime::LinuxNamespace::default();
        ns.set_typ(LinuxNamespaceType::User);
        linux.set_namespaces(Some(vec![ns]));
        spec.set_linux(Some(linux));
        assert!(matches!(clone_flags(&spec), Err(ContainerError::Spec(_))));
    }
}
