//! A process started inside a running container (`berth-nodeagent nsexec`):
//! joins the container's cgroup and its ipc, uts, net, pid and mount
//! namespaces, forks so the child is inside the pid namespace, and execs
//! the command with the container's user, capabilities, environment and
//! working directory. Stdio is inherited from whoever started the helper.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::wait::waitpid;
use nix::unistd::ForkResult;

/// Namespaces joined, in order; mount last since it changes the root.
const NAMESPACES: &[(&str, libc::c_int)] = &[
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
];

/// Runs `args` in the container whose init is `pid`; returns the exit code
/// (126: could not set up, 127: not found, 128+n: killed by signal n).
/// With `console` (a unix socket descriptor), the command gets a terminal
/// opened inside the container, whose master is sent over it.
pub fn run(bundle: &Path, pid: i32, args: &[String], console: Option<i32>) -> i32 {
    match enter(bundle, pid, args, console) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            failure_code(&e)
        }
    }
}

fn enter(bundle: &Path, pid: i32, args: &[String], console: Option<i32>) -> Result<i32, String> {
    let spec = super::load_spec(bundle).map_err(|e| e.to_string())?;
    let mut process = spec.process().clone().ok_or("spec has no process")?;
    if args.is_empty() {
        return Err("no command given".into());
    }
    process.set_args(Some(args.to_vec()));
    if let Ok(Some(cgroup)) = super::cgroup_of(&spec) {
        cgroup
            .add_process(std::process::id() as i32)
            .map_err(|e| format!("joining the container's cgroup: {e}"))?;
    }
    let mut files = Vec::new();
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{pid}/ns/{name}");
        let own = format!("/proc/self/ns/{name}");
        if std::fs::read_link(&path).ok() == std::fs::read_link(&own).ok() {
            continue;
        }
        let file = std::fs::File::open(&path).map_err(|e| format!("opening {path}: {e}"))?;
        files.push((file, *flag, path));
    }
    for (file, flag, path) in &files {
        // SAFETY: setns on an open namespace descriptor, single-threaded.
        if unsafe { libc::setns(file.as_raw_fd(), *flag) } != 0 {
            return Err(format!(
                "joining {path}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    drop(files);
    // SAFETY: the helper is single-threaded.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let error = exec_child(&spec, &process, console);
            eprintln!("{error}");
            let code = failure_code(&error);
            // SAFETY: leaving the child without unwinding into the parent's code.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(status) => return Ok(super::exit_code(status)),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("waitpid: {e}")),
            }
        },
    }
}

/// The shell's codes: 127 when the command does not exist, 126 otherwise.
fn failure_code(message: &str) -> i32 {
    if message.contains("not found") || message.contains("no such file") {
        127
    } else {
        126
    }
}

fn exec_child(
    spec: &oci_spec::runtime::Spec,
    process: &oci_spec::runtime::Process,
    console: Option<i32>,
) -> String {
    // SAFETY: prctl/setsid with plain arguments in the new child.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        libc::setsid();
    }
    if let Some(socket) = console
        && let Err(e) = super::console::attach_new_terminal(socket)
    {
        return e;
    }
    let env = process.env().clone().unwrap_or_default();
    let args = process.args().clone().unwrap_or_default();
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let cwd = process.cwd();
    let executable = match super::init::find_executable(&args[0], path_var, cwd) {
        Ok(e) => e,
        Err(e) => return e,
    };
    if let Err(e) = super::init::seccomp_program(spec)
        .and_then(|p| p.map(|p| super::seccomp::install(&p)).transpose())
    {
        return e;
    }
    if let Err(e) = super::init::become_user(process) {
        return e;
    }
    if let Err(e) = nix::unistd::chdir(cwd) {
        return format!("chdir {}: {e}", cwd.display());
    }
    let argv: Vec<CString> = args
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let envp: Vec<CString> = env
        .iter()
        .filter_map(|e| CString::new(e.as_bytes()).ok())
        .collect();
    let Ok(exe) = CString::new(executable.as_os_str().as_bytes()) else {
        return "bad executable path".into();
    };
    match nix::unistd::execve(&exe, &argv, &envp) {
        Err(e) => format!("exec {}: {e}", executable.display()),
        Ok(never) => match never {},
    }
}
