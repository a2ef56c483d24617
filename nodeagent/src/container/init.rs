//! What runs inside a new container process between clone and exec: join
//! the namespaces the spec names, build the mount table on the rootfs, pivot
//! into it, mask /proc paths, drop to the spec's user and capabilities, wait
//! for start, exec. Runs in a freshly cloned child of a single-threaded
//! process, so it may allocate; it must never return to the caller's code.
//! Errors and warnings go to the parent over the sync pipe, one line each.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::caps;
use super::fs::secure_join;

/// The descriptors and paths the child gets from its parent.
#[derive(Debug)]
pub struct InitContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    /// stdin, stdout, stderr of the container process.
    pub stdio: [RawFd; 3],
    /// Open a terminal inside the container and send it over this socket.
    pub console_socket: Option<RawFd>,
    /// Read end: one byte from the parent once the child is in its cgroup.
    pub sync_in: RawFd,
    /// Write end: `warn: ...`, then `ready` or `error: ...`.
    pub sync_out: RawFd,
    /// Opened for writing once setup is done; the open blocks until `start`.
    pub exec_fifo: Option<PathBuf>,
}

/// Sets the container up and execs its process. Never returns.
pub fn run(ctx: InitContext<'_>) -> ! {
    // SAFETY: the descriptor belongs to this child from here on.
    let mut sync = unsafe { std::fs::File::from_raw_fd(ctx.sync_out) };
    let error = match setup(&ctx, &mut sync) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = writeln!(sync, "error: {}", error.replace('\n', " "));
    // SAFETY: terminating the child without running the parent's atexit handlers.
    unsafe { libc::_exit(1) }
}

fn os_err(context: impl std::fmt::Display) -> impl FnOnce(nix::Error) -> String {
    move |e| format!("{context}: {e}")
}

fn io_err(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> String {
    move |e| format!("{context}: {e}")
}

fn setup(
    ctx: &InitContext<'_>,
    sync: &mut std::fs::File,
) -> Result<std::convert::Infallible, String> {
    let spec = ctx.spec;
    let process = spec.process().as_ref().ok_or("spec has no process")?;
    // SAFETY: plain syscalls on descriptors this child owns.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        libc::setsid();
        for (target, fd) in ctx.stdio.iter().enumerate() {
            if *fd != target as RawFd && libc::dup2(*fd, target as RawFd) < 0 {
                return Err(format!("dup2 stdio: {}", std::io::Error::last_os_error()));
            }
        }
    }
    // Wait until the parent has put this process in its cgroup.
    let mut go = [0u8; 1];
    // SAFETY: the read end belongs to this child.
    let mut sync_in = unsafe { std::fs::File::from_raw_fd(ctx.sync_in) };
    match sync_in.read(&mut go) {
        Ok(1) => {}
        _ => return Err("parent went away before start".into()),
    }
    drop(sync_in);

    let linux = spec.linux().as_ref();
    let namespaces = linux
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in &namespaces {
        // A pid namespace was joined by the parent before the clone.
        if ns.typ() == LinuxNamespaceType::Pid {
            continue;
        }
        if let Some(path) = ns.path() {
            let file = std::fs::File::open(path).map_err(io_err(format!(
                "opening {} namespace {}",
                ns.typ(),
                path.display()
            )))?;
            // SAFETY: setns on an open namespace descriptor.
            if unsafe { libc::setns(file.as_raw_fd(), ns.typ() as libc::c_int) } != 0 {
                return Err(format!(
                    "joining {} namespace {}: {}",
                    ns.typ(),
                    path.display(),
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    let new_uts = namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::Uts && ns.path().is_none());
    if namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::Cgroup && ns.path().is_none())
    {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(os_err("unsharing the cgroup namespace"))?;
    }

    // The mount table.
    mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
    .map_err(os_err("making / private"))?;
    let rootfs = &ctx.rootfs;
    mount(
        Some(rootfs),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(os_err(format!("bind mounting rootfs {}", rootfs.display())))?;
    let mut dev_is_tmpfs = false;
    for m in spec.mounts().iter().flatten() {
        mount_one(rootfs, m)?;
        if m.destination() == Path::new("/dev") {
            dev_is_tmpfs = true;
        }
    }
    if dev_is_tmpfs {
        create_devices(rootfs, linux.and_then(|l| l.devices().as_ref()))?;
    }
    if let Some(sysctls) = linux.and_then(|l| l.sysctl().as_ref()) {
        for (key, value) in sysctls {
            let path = Path::new("/proc/sys").join(key.replace('.', "/"));
            std::fs::write(&path, value).map_err(io_err(format!("sysctl {key}")))?;
        }
    }
    let fifo = match &ctx.exec_fifo {
        Some(path) => Some(
            nix::fcntl::open(
                path,
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(os_err(format!("opening {}", path.display())))?,
        ),
        None => None,
    };

    // Into the rootfs.
    nix::unistd::chdir(rootfs.as_path()).map_err(os_err("chdir rootfs"))?;
    nix::unistd::pivot_root(".", ".").map_err(os_err("pivot_root"))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(os_err("detaching the old root"))?;
    nix::unistd::chdir("/").map_err(os_err("chdir /"))?;

    for path in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask_path(Path::new(path))?;
    }
    for path in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly_path(Path::new(path))?;
    }
    if let Some(socket) = ctx.console_socket {
        super::console::attach_new_terminal(socket)?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None,
        )
        .map_err(os_err("remounting / read-only"))?;
    }
    if new_uts && let Some(hostname) = spec.hostname() {
        nix::unistd::sethostname(hostname).map_err(os_err("sethostname"))?;
    }
    if let Some(adj) = process.oom_score_adj()
        && let Err(e) = std::fs::write("/proc/self/oom_score_adj", adj.to_string())
    {
        // Lowering it needs CAP_SYS_RESOURCE, which some hosts' root lacks:
        // the container runs with the inherited value instead.
        let _ = writeln!(
            sync,
            "warn: cannot set oom_score_adj to {adj} ({e}); keeping the inherited value"
        );
    }
    for rlimit in process.rlimits().iter().flatten() {
        let resource = rlimit_resource(&rlimit.typ().to_string())?;
        let limit = libc::rlimit {
            rlim_cur: rlimit.soft(),
            rlim_max: rlimit.hard(),
        };
        // SAFETY: setrlimit with a valid struct.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(format!(
                "setrlimit {}: {}",
                rlimit.typ(),
                std::io::Error::last_os_error()
            ));
        }
    }
    let cwd = process.cwd();
    std::fs::create_dir_all(cwd)
        .map_err(io_err(format!("creating working dir {}", cwd.display())))?;
    let env = process.env().clone().unwrap_or_default();
    let args = process.args().clone().unwrap_or_default();
    let program = args.first().ok_or("the process has no args")?;
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let executable = find_executable(program, path_var, cwd)?;

    // Installed while the process still has CAP_SYS_ADMIN; the profile
    // leaves the calls that follow (setuid, capset, prctl, execve) alone.
    if let Some(program) = seccomp_program(spec)? {
        super::seccomp::install(&program)?;
    }
    become_user(process)?;
    nix::unistd::chdir(cwd).map_err(os_err(format!("chdir {}", cwd.display())))?;

    let argv: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| format!("argument {a:?} holds a NUL")))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env
        .iter()
        .map(|e| CString::new(e.as_bytes()).map_err(|_| format!("env {e:?} holds a NUL")))
        .collect::<Result<_, _>>()?;
    let exe = CString::new(executable.as_os_str().as_bytes()).map_err(|_| "bad path")?;

    writeln!(sync, "ready").map_err(io_err("reporting ready"))?;
    if let Some(fifo) = fifo {
        let reopen = format!("/proc/self/fd/{}", fifo.as_raw_fd());
        let mut start = std::fs::OpenOptions::new()
            .write(true)
            .open(&reopen)
            .map_err(io_err("opening the exec fifo"))?;
        start
            .write_all(&[0])
            .map_err(io_err("writing the exec fifo"))?;
        drop(start);
        drop(fifo);
    }
    let err = nix::unistd::execve(&exe, &argv, &envp).unwrap_err();
    Err(format!("exec {}: {err}", executable.display()))
}

/// The compiled seccomp filter of a spec, if it has one.
pub fn seccomp_program(spec: &Spec) -> Result<Option<Vec<libc::sock_filter>>, String> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(super::seccomp::compile)
        .transpose()
}

/// Applies groups, gid, uid and capabilities, keeping the capabilities
/// across the uid change, then no_new_privs.
pub fn become_user(process: &oci_spec::runtime::Process) -> Result<(), String> {
    let user = process.user();
    let sets = match process.capabilities() {
        Some(c) => caps::CapabilitySets::from_spec(c)?,
        None => caps::CapabilitySets::default(),
    };
    caps::drop_bounding(&sets, caps::last_cap())
        .map_err(io_err("dropping bounding capabilities"))?;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let groups: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&groups).map_err(os_err("setgroups"))?;
    nix::unistd::setgid(nix::unistd::Gid::from_raw(user.gid())).map_err(os_err("setgid"))?;
    nix::unistd::setuid(nix::unistd::Uid::from_raw(user.uid())).map_err(os_err("setuid"))?;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if let Some(umask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    }
    caps::apply(&sets).map_err(io_err("setting capabilities"))?;
    if process.no_new_privileges().unwrap_or(false) {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// The executable `program` names: itself when it holds a `/`, else the first
/// match in the container's PATH.
pub fn find_executable(program: &str, path_var: &str, cwd: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let path = cwd.join(program);
        return if is_exec(&path) {
            Ok(PathBuf::from(program))
        } else {
            Err(format!("exec: {program:?}: no such file or directory"))
        };
    }
    path_var
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|p| is_exec(p))
        .ok_or_else(|| format!("exec: {program:?}: executable file not found in $PATH"))
}

fn rlimit_resource(name: &str) -> Result<libc::__rlimit_resource_t, String> {
    Ok(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        other => return Err(format!("unknown rlimit {other}")),
    })
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    nix::mount::mount(source, target, fstype, flags, data)
}

/// Mount options split into flags, propagation flags and fs data.
#[derive(Debug, PartialEq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub propagation: MsFlags,
    pub data: Vec<String>,
}

pub fn parse_mount_options(options: &[String]) -> MountOptions {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: Vec::new(),
    };
    for option in options {
        let (set, clear) = match option.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {
                let mut p = match option.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    _ => MsFlags::MS_SLAVE,
                };
                if option.starts_with('r') {
                    p |= MsFlags::MS_REC;
                }
                out.propagation = p;
                continue;
            }
            _ => {
                out.data.push(option.clone());
                continue;
            }
        };
        out.flags.insert(set);
        out.flags.remove(clear);
    }
    out
}

fn mount_one(rootfs: &Path, m: &oci_spec::runtime::Mount) -> Result<(), String> {
    let destination = secure_join(rootfs, m.destination())
        .map_err(io_err(format!("resolving {}", m.destination().display())))?;
    let options = parse_mount_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    if typ == "cgroup" {
        return mount_cgroups(&destination, &options);
    }
    let is_bind = typ == "bind" || options.flags.contains(MsFlags::MS_BIND);
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let context = |what: &str| {
        format!(
            "{what} {} on {}",
            source.display(),
            m.destination().display()
        )
    };
    if is_bind {
        let meta = std::fs::metadata(&source).map_err(io_err(context("bind source")))?;
        if meta.is_dir() {
            std::fs::create_dir_all(&destination).map_err(io_err(context("creating")))?;
        } else {
            if let Some(parent) = destination.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(context("creating")))?;
            }
            if !destination.exists() {
                std::fs::File::create(&destination).map_err(io_err(context("creating")))?;
            }
        }
        let base = MsFlags::MS_BIND | (options.flags & MsFlags::MS_REC);
        mount(Some(&source), &destination, None, base, None)
            .map_err(os_err(context("mounting")))?;
        let extra = options.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
        if !extra.is_empty() {
            mount(
                None,
                &destination,
                None,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | extra,
                None,
            )
            .map_err(os_err(context("remounting")))?;
        }
    } else {
        std::fs::create_dir_all(&destination).map_err(io_err(context("creating")))?;
        let data = options.data.join(",");
        let data = (!data.is_empty()).then_some(data.as_str());
        mount(Some(&source), &destination, Some(typ), options.flags, data)
            .map_err(os_err(context(&format!("mounting {typ}"))))?;
    }
    if !options.propagation.is_empty() {
        mount(None, &destination, None, options.propagation, None)
            .map_err(os_err(context("setting propagation of")))?;
    }
    Ok(())
}

/// The container's view of its cgroups at `destination` (/sys/fs/cgroup):
/// cgroup2 on a unified host; on a v1 host a tmpfs holding one mount per
/// hierarchy the process is in. Inside a cgroup namespace each shows the
/// container's own cgroup as its root, so runtimes that size themselves
/// from cgroup files (JVMs, Go's GOMAXPROCS helpers) see their limits.
fn mount_cgroups(destination: &Path, options: &MountOptions) -> Result<(), String> {
    std::fs::create_dir_all(destination).map_err(io_err("creating /sys/fs/cgroup"))?;
    let flags = options.flags & !MsFlags::MS_RDONLY;
    let readonly = options.flags & MsFlags::MS_RDONLY;
    let unified = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    if unified {
        return mount(
            Some(Path::new("cgroup2")),
            destination,
            Some("cgroup2"),
            flags | readonly,
            None,
        )
        .map_err(os_err("mounting cgroup2"));
    }
    mount(
        Some(Path::new("tmpfs")),
        destination,
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(os_err("mounting the cgroup tmpfs"))?;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(io_err("reading /proc/self/cgroup"))?;
    for line in own.lines() {
        let controllers = line.split(':').nth(1).unwrap_or_default();
        if controllers.is_empty() {
            continue;
        }
        let name = controllers.strip_prefix("name=").unwrap_or(controllers);
        let data = if controllers.starts_with("name=") {
            format!("none,{controllers}")
        } else {
            controllers.to_string()
        };
        let target = destination.join(name);
        std::fs::create_dir_all(&target).map_err(io_err(format!("creating cgroup dir {name}")))?;
        mount(
            Some(Path::new("cgroup")),
            &target,
            Some("cgroup"),
            flags | readonly,
            Some(&data),
        )
        .map_err(os_err(format!("mounting cgroup {controllers}")))?;
        // cpu,cpuacct is also reachable as cpu and cpuacct.
        if controllers.contains(',') && !controllers.starts_with("name=") {
            for single in controllers.split(',') {
                let _ = std::os::unix::fs::symlink(name, destination.join(single));
            }
        }
    }
    if !readonly.is_empty() {
        mount(
            None,
            destination,
            None,
            MsFlags::MS_REMOUNT | readonly | flags,
            Some("mode=755"),
        )
        .map_err(os_err("making the cgroup tmpfs read-only"))?;
    }
    Ok(())
}

/// The device nodes every container has, as runc creates them.
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn create_devices(
    rootfs: &Path,
    extra: Option<&Vec<oci_spec::runtime::LinuxDevice>>,
) -> Result<(), String> {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod, umask};
    let dev = rootfs.join("dev");
    let old = umask(Mode::empty());
    let mut result = Ok(());
    let mut nodes: Vec<(PathBuf, SFlag, u64, u64, u32)> = DEFAULT_DEVICES
        .iter()
        .map(|(name, major, minor)| (dev.join(name), SFlag::S_IFCHR, *major, *minor, 0o666))
        .collect();
    for d in extra.into_iter().flatten() {
        let kind = match d.typ() {
            oci_spec::runtime::LinuxDeviceType::B => SFlag::S_IFBLK,
            oci_spec::runtime::LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let path = secure_join(rootfs, d.path()).map_err(io_err("resolving device path"))?;
        nodes.push((
            path,
            kind,
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666),
        ));
    }
    for (path, kind, major, minor, mode) in nodes {
        let _ = std::fs::remove_file(&path);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Err(e) = mknod(
            &path,
            kind,
            Mode::from_bits_truncate(mode),
            makedev(major, minor),
        ) {
            result = Err(format!("mknod {}: {e}", path.display()));
            break;
        }
    }
    umask(old);
    result?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
        ("ptmx", "pts/ptmx"),
    ] {
        let path = dev.join(link);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(target, &path)
            .map_err(io_err(format!("symlink /dev/{link}")))?;
    }
    Ok(())
}

fn mask_path(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Err(_) => Ok(()),
        Ok(meta) if meta.is_dir() => mount(
            Some(Path::new("tmpfs")),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None,
        )
        .map_err(os_err(format!("masking {}", path.display()))),
        Ok(_) => mount(
            Some(Path::new("/dev/null")),
            path,
            None,
            MsFlags::MS_BIND,
            None,
        )
        .map_err(os_err(format!("masking {}", path.display()))),
    }
}

fn readonly_path(path: &Path) -> Result<(), String> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    mount(
        Some(path),
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(os_err(format!("binding {}", path.display())))?;
    mount(
        None,
        path,
        None,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY,
        None,
    )
    .map_err(os_err(format!("making {} read-only", path.display())))
}

/// Closes every descriptor above stderr except `keep` (used by helpers that
/// exec into a container so no agent descriptor leaks into it).
pub fn close_other_fds(keep: &[RawFd]) {
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        let fds: Vec<RawFd> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .filter(|fd| *fd > 2 && !keep.contains(fd))
            .collect();
        for fd in fds {
            // SAFETY: marking close-on-exec; the descriptor may already be gone.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

/// Wraps a raw descriptor the caller hands over.
pub fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller transfers ownership of a valid descriptor.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_split_into_flags_propagation_and_data() {
        let o = parse_mount_options(&[
            "nosuid".into(),
            "rbind".into(),
            "ro".into(),
            "rslave".into(),
            "mode=755".into(),
            "size=65536k".into(),
        ]);
        assert!(o.flags.contains(
            MsFlags::MS_NOSUID | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        ));
        assert_eq!(o.propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        let o = parse_mount_options(&["ro".into(), "rw".into()]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn executables_are_found_in_the_container_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let sh = bin.join("sh");
        std::fs::write(&sh, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sh, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("/nonexistent:{}", bin.display());
        assert_eq!(find_executable("sh", &path, Path::new("/")).unwrap(), sh);
        let err = find_executable("nope", &path, Path::new("/")).unwrap_err();
        assert!(err.contains("executable file not found in $PATH"), "{err}");
        assert!(find_executable("./missing", &path, dir.path()).is_err());
    }
}
