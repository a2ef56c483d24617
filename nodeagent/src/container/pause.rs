//! The infra process of a pod whose containers share one pid namespace
//! (pid mode POD, the CRI default; `shareProcessNamespace` in a PodSpec).
//! `berth-nodeagent pause` makes a new pid namespace, forks its pid 1 (which
//! reaps orphans and otherwise sleeps), prints `ok <pid>` and exits. The
//! containers join that namespace; the pod's other namespaces are held by
//! bind mounts and need no process.

use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::ForkResult;

extern "C" fn on_signal(_: libc::c_int) {}

/// Runs the `pause` command; returns its exit code.
pub fn run() -> i32 {
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID) {
        println!("error: unshare pid namespace: {e}");
        return 1;
    }
    // SAFETY: the command is single-threaded.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            println!("error: fork: {e}");
            1
        }
        Ok(ForkResult::Parent { child }) => {
            println!("ok {child}");
            0
        }
        Ok(ForkResult::Child) => {
            // SAFETY: plain syscalls; the handler does nothing, so that
            // pause() returns when a child (or a reparented orphan) ends.
            unsafe {
                libc::setsid();
                if let Ok(null) = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")
                {
                    use std::os::fd::AsRawFd;
                    for fd in 0..3 {
                        libc::dup2(null.as_raw_fd(), fd);
                    }
                }
                libc::signal(libc::SIGCHLD, on_signal as *const () as libc::sighandler_t);
            }
            loop {
                while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    if status == nix::sys::wait::WaitStatus::StillAlive {
                        break;
                    }
                }
                // SAFETY: pause has no arguments.
                unsafe { libc::pause() };
            }
        }
    }
}
