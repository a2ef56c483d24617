//! Linux capabilities by name and number, and the calls that set a
//! process's capability sets. Owns nothing else: which capabilities a
//! container gets is decided by the spec's author.

use std::collections::HashSet;

/// Capability names as the kernel headers list them, index = number.
const NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capabilities a container gets unless its config adds or drops some:
/// the set containerd and CRI-O give Kubernetes pods.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability name this runtime knows.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().copied()
}

/// The number of a capability named `CHOWN` or `CAP_CHOWN` (any case).
pub fn number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

/// A set of capabilities as the kernel's 64-bit mask.
pub fn mask<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<u64, String> {
    let mut mask = 0u64;
    for name in names {
        let n = number(name).ok_or_else(|| format!("unknown capability {name:?}"))?;
        mask |= 1 << n;
    }
    Ok(mask)
}

/// The capability sets of a process, as masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapabilitySets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapabilitySets {
    pub fn from_spec(caps: &oci_spec::runtime::LinuxCapabilities) -> Result<Self, String> {
        fn set(caps: &Option<HashSet<oci_spec::runtime::Capability>>) -> Result<u64, String> {
            let names: Vec<String> = caps.iter().flatten().map(|c| c.to_string()).collect();
            mask(names.iter().map(String::as_str))
        }
        Ok(CapabilitySets {
            bounding: set(caps.bounding())?,
            effective: set(caps.effective())?,
            permitted: set(caps.permitted())?,
            inheritable: set(caps.inheritable())?,
            ambient: set(caps.ambient())?,
        })
    }
}

/// The highest capability number the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Drops from the bounding set every capability not in `sets.bounding`.
/// Must run before the user changes (it needs CAP_SETPCAP).
pub fn drop_bounding(sets: &CapabilitySets, last_cap: u32) -> Result<(), std::io::Error> {
    for cap in 0..=last_cap.min(63) {
        if sets.bounding & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments only.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if rc != 0 {
                let err = std::io::Error::last_os_error();
                // EINVAL: a capability the kernel does not have.
                if err.raw_os_error() != Some(libc::EINVAL) {
                    return Err(err);
                }
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapUserHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Sets effective, permitted and inheritable, then raises the ambient set.
pub fn apply(sets: &CapabilitySets) -> Result<(), std::io::Error> {
    let mut header = CapUserHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapUserData {
            effective: sets.effective as u32,
            permitted: sets.permitted as u32,
            inheritable: sets.inheritable as u32,
        },
        CapUserData {
            effective: (sets.effective >> 32) as u32,
            permitted: (sets.permitted >> 32) as u32,
            inheritable: (sets.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and data are valid for the duration of the call and laid
    // out as the kernel's __user_cap_header_struct / __user_cap_data_struct[2].
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapUserHeader,
            data.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    for cap in 0..64u32 {
        if sets.ambient & (1 << cap) != 0 {
            // SAFETY: prctl with integer arguments only.
            let rc = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    cap as libc::c_ulong,
                    0,
                    0,
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_kernel_headers() {
        assert_eq!(number("CHOWN"), Some(0));
        assert_eq!(number("cap_sys_admin"), Some(21));
        assert_eq!(number("CAP_AUDIT_WRITE"), Some(29));
        assert_eq!(number("CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("NOPE"), None);
    }

    #[test]
    fn default_set_is_known_and_excludes_sys_admin() {
        let m = mask(DEFAULT_CAPABILITIES.iter().copied()).unwrap();
        assert_eq!(m.count_ones() as usize, DEFAULT_CAPABILITIES.len());
        assert_eq!(m & (1 << 21), 0);
        assert!(mask(["BOGUS"]).is_err());
    }

    #[test]
    fn every_oci_spec_capability_has_a_number() {
        use std::str::FromStr;
        for name in all_names() {
            let cap = oci_spec::runtime::Capability::from_str(name).unwrap();
            assert_eq!(number(&cap.to_string()), number(name));
        }
    }
}
