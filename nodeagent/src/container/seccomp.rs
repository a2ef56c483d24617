//! Seccomp filters from the OCI spec's `linux.seccomp`: a classic BPF
//! program, checked against x86_64, that maps named system calls to an
//! action and everything else to the default action. Rules with argument
//! conditions are refused rather than silently widened. Also the runtime's
//! RuntimeDefault profile: every call allowed but those Docker's default
//! profile keeps from unprivileged containers.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

/// System calls the RuntimeDefault profile refuses with EPERM: kernel
/// modules and keyrings, mounts and namespaces, clocks, swap, reboot,
/// other processes' memory, BPF, perf and userfaultfd, handle-based opens.
pub const RUNTIME_DEFAULT_DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
];

/// The x86_64 number of a system call this module can name.
pub fn syscall_number(name: &str) -> Option<i64> {
    Some(match name {
        "acct" => libc::SYS_acct,
        "add_key" => libc::SYS_add_key,
        "bpf" => libc::SYS_bpf,
        "clock_adjtime" => libc::SYS_clock_adjtime,
        "clock_settime" => libc::SYS_clock_settime,
        "create_module" => 174, // removed from the kernel; number kept reserved
        "delete_module" => libc::SYS_delete_module,
        "finit_module" => libc::SYS_finit_module,
        "fsconfig" => libc::SYS_fsconfig,
        "fsmount" => libc::SYS_fsmount,
        "fsopen" => libc::SYS_fsopen,
        "fspick" => libc::SYS_fspick,
        "get_kernel_syms" => 177,
        "get_mempolicy" => libc::SYS_get_mempolicy,
        "init_module" => libc::SYS_init_module,
        "ioperm" => libc::SYS_ioperm,
        "iopl" => libc::SYS_iopl,
        "kcmp" => libc::SYS_kcmp,
        "kexec_file_load" => libc::SYS_kexec_file_load,
        "kexec_load" => libc::SYS_kexec_load,
        "keyctl" => libc::SYS_keyctl,
        "lookup_dcookie" => libc::SYS_lookup_dcookie,
        "mbind" => libc::SYS_mbind,
        "mount" => libc::SYS_mount,
        "move_mount" => libc::SYS_move_mount,
        "move_pages" => libc::SYS_move_pages,
        "name_to_handle_at" => libc::SYS_name_to_handle_at,
        "nfsservctl" => libc::SYS_nfsservctl,
        "open_by_handle_at" => libc::SYS_open_by_handle_at,
        "open_tree" => libc::SYS_open_tree,
        "perf_event_open" => libc::SYS_perf_event_open,
        "pivot_root" => libc::SYS_pivot_root,
        "process_vm_readv" => libc::SYS_process_vm_readv,
        "process_vm_writev" => libc::SYS_process_vm_writev,
        "query_module" => 178,
        "quotactl" => libc::SYS_quotactl,
        "reboot" => libc::SYS_reboot,
        "request_key" => libc::SYS_request_key,
        "set_mempolicy" => libc::SYS_set_mempolicy,
        "setns" => libc::SYS_setns,
        "settimeofday" => libc::SYS_settimeofday,
        "swapoff" => libc::SYS_swapoff,
        "swapon" => libc::SYS_swapon,
        "sysfs" => libc::SYS_sysfs,
        "_sysctl" => libc::SYS__sysctl,
        "umount2" => libc::SYS_umount2,
        "unshare" => libc::SYS_unshare,
        "uselib" => libc::SYS_uselib,
        "userfaultfd" => libc::SYS_userfaultfd,
        "ustat" => libc::SYS_ustat,
        "ptrace" => libc::SYS_ptrace,
        "personality" => libc::SYS_personality,
        "chroot" => libc::SYS_chroot,
        "clone3" => libc::SYS_clone3,
        "syslog" => libc::SYS_syslog,
        "vhangup" => libc::SYS_vhangup,
        "mknod" => libc::SYS_mknod,
        "mknodat" => libc::SYS_mknodat,
        "socket" => libc::SYS_socket,
        "chmod" => libc::SYS_chmod,
        "fchmodat" => libc::SYS_fchmodat,
        "sethostname" => libc::SYS_sethostname,
        "setdomainname" => libc::SYS_setdomainname,
        _ => return None,
    })
}

fn action_value(action: LinuxSeccompAction, errno: Option<u32>) -> u32 {
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => {
            RET_ERRNO | (errno.unwrap_or(libc::EPERM as u32) & 0xffff)
        }
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | (errno.unwrap_or(0) & 0xffff),
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        // Notify needs a listener this runtime does not run: allow would be
        // wrong, so it refuses with EPERM.
        LinuxSeccompAction::ScmpActNotify => RET_ERRNO | libc::EPERM as u32,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
    }
}

fn statement(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Compiles a spec's seccomp section into a BPF program.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Vec<libc::sock_filter>, String> {
    let ld_abs = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let jset = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let default = action_value(seccomp.default_action(), seccomp.default_errno_ret());
    // seccomp_data: nr at offset 0, arch at 4.
    let mut program = vec![
        statement(ld_abs, 4),
        jump(jeq, AUDIT_ARCH_X86_64, 1, 0),
        statement(ret, RET_KILL_PROCESS),
        statement(ld_abs, 0),
        // The x32 ABI would reach the same calls under other numbers.
        jump(jset, X32_SYSCALL_BIT, 0, 1),
        statement(ret, RET_ERRNO | libc::EPERM as u32),
    ];
    for rule in seccomp.syscalls().iter().flatten() {
        if rule.args().as_ref().is_some_and(|a| !a.is_empty()) {
            return Err(format!(
                "seccomp rules with argument conditions are not supported ({:?})",
                rule.names()
            ));
        }
        let action = action_value(rule.action(), rule.errno_ret());
        for name in rule.names() {
            let nr = syscall_number(name)
                .ok_or_else(|| format!("unknown system call {name:?} in the seccomp profile"))?;
            program.push(jump(jeq, nr as u32, 0, 1));
            program.push(statement(ret, action));
        }
    }
    program.push(statement(ret, default));
    if program.len() > 4096 {
        return Err("the seccomp profile is too long".into());
    }
    Ok(program)
}

/// The RuntimeDefault profile as an OCI seccomp section.
pub fn runtime_default() -> LinuxSeccomp {
    let rule = oci_spec::runtime::LinuxSyscallBuilder::default()
        .names(
            RUNTIME_DEFAULT_DENIED
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::EPERM as u32)
        .build()
        .expect("valid rule");
    oci_spec::runtime::LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![oci_spec::runtime::Arch::ScmpArchX86_64])
        .syscalls(vec![rule])
        .build()
        .expect("valid profile")
}

/// Installs a program on the calling thread (before exec). Needs
/// no_new_privs or CAP_SYS_ADMIN.
pub fn install(program: &[libc::sock_filter]) -> Result<(), String> {
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `program`, alive for the call.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(format!(
            "installing the seccomp filter: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_denied_call_has_a_number() {
        for name in RUNTIME_DEFAULT_DENIED {
            assert!(syscall_number(name).is_some(), "{name}");
        }
        let program = compile(&runtime_default()).unwrap();
        assert_eq!(program.len(), 6 + 2 * RUNTIME_DEFAULT_DENIED.len() + 1);
        assert_eq!(program.last().unwrap().k, RET_ALLOW);
    }

    #[test]
    fn argument_conditions_and_unknown_calls_are_refused() {
        let json = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["frobnicate"], "action": "SCMP_ACT_ALLOW"}]
        });
        let profile: LinuxSeccomp = serde_json::from_value(json).unwrap();
        assert!(compile(&profile).unwrap_err().contains("frobnicate"));
        let json = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
        });
        let profile: LinuxSeccomp = serde_json::from_value(json).unwrap();
        assert!(compile(&profile).unwrap_err().contains("argument"));
    }

    #[test]
    fn a_filtered_child_gets_eperm() {
        // In a forked child, so the test process stays unfiltered.
        // SAFETY: the child only makes syscalls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let program = compile(&runtime_default()).unwrap();
                // SAFETY: prctl with integer arguments.
                unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                let code = if install(&program).is_err() {
                    2
                } else {
                    // SAFETY: a raw syscall the filter refuses.
                    let rc = unsafe { libc::syscall(libc::SYS_unshare, 0) };
                    let errno = std::io::Error::last_os_error().raw_os_error();
                    if rc == -1 && errno == Some(libc::EPERM) {
                        0
                    } else {
                        3
                    }
                };
                // SAFETY: leaving the forked child.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
