//! Cgroup directories of containers, on cgroup v1 and cgroup v2.
//!
//! This module owns the mechanics of one container's (or pod's) cgroup:
//! creating its directories (v1: one per controller, v2: one directory with
//! the needed controllers enabled in the ancestors), writing resource limits,
//! the default v1 device allowlist, moving processes in, listing them,
//! reading statistics (CPU, memory, pids and the OOM-kill count), and finally
//! killing every member process and removing the directories.
//!
//! It must not make policy: the caller decides where a cgroup lives (the path
//! relative to the hierarchy root) and which limits it gets. Nothing here
//! picks default limits, walks or removes other cgroups, or touches cgroups
//! other than the one it was given (apart from enabling controllers in the
//! ancestors on v2 and copying cpuset values into new ancestors on v1, which
//! the kernel requires).
//!
//! Every file access goes through the `root` of the [`Hierarchy`], so tests
//! can build a fake hierarchy out of plain directories and files. Writes never
//! create files (as on cgroupfs, where the kernel provides them), with one
//! exception: the cpuset values copied into new v1 directories, which the
//! kernel creates empty and a fake does not create at all.
//!
//! Removal uses `rmdir`, which on cgroupfs succeeds on a directory holding
//! only control files. A fake hierarchy holds real files, so when `rmdir`
//! fails with `ENOTEMPTY` on a directory that is *not* on a cgroup filesystem
//! (checked with `statfs`), the plain files in that directory (never
//! subdirectories) are removed and `rmdir` is retried. On cgroupfs nothing is
//! ever unlinked.
//!
//! All code is synchronous: it runs in the single-threaded shim and, from
//! async code, inside `spawn_blocking`.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::sys::statfs::{self, CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC};
use nix::unistd::Pid;
use tracing::{debug, warn};

/// Where the cgroup hierarchy is mounted on a normal host.
const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// cgroup v1 controllers a container cgroup is created in.
const V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "memory", "pids", "freezer", "devices", "cpuset",
];

/// cgroup v2 controllers enabled (when available) in the ancestors.
const V2_CONTROLLERS: &[&str] = &["cpu", "cpuset", "memory", "pids"];

/// CFS period used on v2 when a quota is given without a period.
const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// How often `kill_all_and_remove` polls.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How long to wait for a v1 freezer to report FROZEN before killing anyway.
const FREEZE_WAIT: Duration = Duration::from_millis(100);

/// The device rules runc allows by default (after denying everything).
const DEFAULT_DEVICE_ALLOW: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// Everything that can go wrong managing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The cgroup path given to [`Cgroup::new`] is unusable.
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// A resource value cannot be expressed in the cgroup files.
    #[error("invalid resource {field}: {reason}")]
    InvalidResource { field: &'static str, reason: String },
    /// A pid that must never be written or signalled (zero or negative).
    #[error("invalid pid {0}")]
    InvalidPid(i32),
    /// No cgroup hierarchy could be found at the given root.
    #[error("no usable cgroup hierarchy at {root}: {reason}")]
    NoHierarchy { root: PathBuf, reason: String },
    /// A file system operation on a cgroup file or directory failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A cgroup file held something that is not what the kernel writes.
    #[error("cannot parse {path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },
    /// Processes were still in the cgroup when the timeout expired.
    #[error("cgroup {path}: processes {pids:?} still present after {timeout:?}")]
    ProcessesRemain {
        path: String,
        pids: Vec<i32>,
        timeout: Duration,
    },
}

fn io_error(op: &'static str, path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Resource limits; `None` leaves the current value untouched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// v1 `cpu.shares`; on v2 converted to `cpu.weight`. 0 means unset (as in runc).
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds; <= 0 means unlimited.
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds (v2 default when only a quota is given: 100000).
    pub cpu_period: Option<u64>,
    /// Memory limit in bytes; -1 means unlimited, 0 means unset.
    pub memory_limit: Option<i64>,
    /// Maximum number of pids; <= 0 means unlimited.
    pub pids_limit: Option<i64>,
    /// `cpuset.cpus`, e.g. "0-3"; skipped when the cpuset controller is absent.
    pub cpuset_cpus: Option<String>,
    /// `cpuset.mems`, e.g. "0"; skipped when the cpuset controller is absent.
    pub cpuset_mems: Option<String>,
}

/// Usage figures of a cgroup; a figure whose file is missing is 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupStats {
    pub cpu_usage_nanos: u64,
    pub memory_usage_bytes: u64,
    pub memory_working_set_bytes: u64,
    pub memory_rss_bytes: u64,
    pub oom_kills: u64,
    pub pids_current: u64,
}

/// The cgroup hierarchy of the host and where it is mounted.
#[derive(Debug, Clone, PartialEq)]
pub enum Hierarchy {
    /// One directory per controller under `root` (e.g. `root/memory`).
    V1 { root: PathBuf },
    /// The unified hierarchy mounted at `root`.
    V2 { root: PathBuf },
}

impl Hierarchy {
    /// /sys/fs/cgroup: V2 when it is a cgroup2 mount (statfs f_type ==
    /// CGROUP2_SUPER_MAGIC 0x63677270), else V1 (hybrid machines with a
    /// controller-less unified mount are V1). An error when /sys/fs/cgroup
    /// cannot be examined, or when it is not cgroup2 and holds none of the v1
    /// controller directories.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        Self::detect_at(Path::new(DEFAULT_ROOT))
    }

    fn detect_at(root: &Path) -> Result<Hierarchy, CgroupError> {
        let fs = statfs::statfs(root).map_err(|e| CgroupError::NoHierarchy {
            root: root.to_path_buf(),
            reason: format!("statfs: {e}"),
        })?;
        if fs.filesystem_type() == CGROUP2_SUPER_MAGIC {
            return Ok(Hierarchy::V2 {
                root: root.to_path_buf(),
            });
        }
        if V1_CONTROLLERS.iter().any(|c| root.join(c).is_dir()) {
            Ok(Hierarchy::V1 {
                root: root.to_path_buf(),
            })
        } else {
            Err(CgroupError::NoHierarchy {
                root: root.to_path_buf(),
                reason: "neither a cgroup2 mount nor holding cgroup v1 controller directories"
                    .to_string(),
            })
        }
    }

    /// True for the unified (v2) hierarchy.
    pub fn is_v2(&self) -> bool {
        matches!(self, Hierarchy::V2 { .. })
    }

    /// The directory the hierarchy is mounted at.
    pub fn root(&self) -> &Path {
        match self {
            Hierarchy::V1 { root } | Hierarchy::V2 { root } => root,
        }
    }
}

/// One cgroup (a container's or a pod's), identified by its path relative to
/// the hierarchy root. Creating the value touches nothing on disk.
#[derive(Debug, Clone)]
pub struct Cgroup {
    hierarchy: Hierarchy,
    /// Normalized, with a leading '/', e.g. "/berth/pod1/ctr1".
    path: String,
}

impl Cgroup {
    /// `path` is relative to the hierarchy root, like "/berth/pod1/ctr1" or
    /// "berth/x"; refuse "..", empty components (and ".") are ignored; error
    /// on an empty path (the root itself is never managed).
    pub fn new(hierarchy: Hierarchy, path: &str) -> Result<Cgroup, CgroupError> {
        let invalid = |reason| CgroupError::InvalidPath {
            path: path.to_string(),
            reason,
        };
        if path.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        let mut normalized = String::new();
        for component in path.split('/') {
            match component {
                "" | "." => continue,
                ".." => return Err(invalid("\"..\" components are not allowed")),
                c => {
                    normalized.push('/');
                    normalized.push_str(c);
                }
            }
        }
        if normalized.is_empty() {
            return Err(invalid("empty path"));
        }
        Ok(Cgroup {
            hierarchy,
            path: normalized,
        })
    }

    /// The normalized path, with a leading '/'.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn relative(&self) -> &str {
        self.path.trim_start_matches('/')
    }

    fn components(&self) -> impl Iterator<Item = &str> {
        self.relative().split('/')
    }

    /// The directory of this cgroup in controller `controller` (v1), whether
    /// or not the controller or the directory exist.
    fn v1_dir(&self, controller: &str) -> PathBuf {
        self.hierarchy.root().join(controller).join(self.relative())
    }

    /// The v2 directory of this cgroup.
    fn v2_dir(&self) -> PathBuf {
        self.hierarchy.root().join(self.relative())
    }

    /// The file `file` of this cgroup, in `controller`'s directory on v1 and
    /// in the one directory on v2.
    fn file(&self, controller: &str, file: &str) -> PathBuf {
        match &self.hierarchy {
            Hierarchy::V1 { .. } => self.v1_dir(controller).join(file),
            Hierarchy::V2 { .. } => self.v2_dir().join(file),
        }
    }

    fn v1_controller_present(&self, controller: &str) -> bool {
        self.hierarchy.root().join(controller).is_dir()
    }

    /// (controller, directory) pairs of this cgroup. V1: one per controller
    /// whose directory exists under the root; controllers mounted together
    /// (e.g. `cpu` a symlink to `cpu,cpuacct` next to `cpuacct`) appear once.
    /// V2: the one directory, with an empty controller name.
    fn controller_dirs(&self) -> Vec<(&'static str, PathBuf)> {
        match &self.hierarchy {
            Hierarchy::V2 { .. } => vec![("", self.v2_dir())],
            Hierarchy::V1 { root } => {
                let mut seen = BTreeSet::new();
                let mut dirs = Vec::new();
                for &controller in V1_CONTROLLERS {
                    let controller_root = root.join(controller);
                    if !controller_root.is_dir() {
                        continue;
                    }
                    let canonical =
                        fs::canonicalize(&controller_root).unwrap_or(controller_root.clone());
                    if seen.insert(canonical) {
                        dirs.push((controller, self.v1_dir(controller)));
                    }
                }
                dirs
            }
        }
    }

    /// mkdir -p in every controller used. V1 controllers: cpu, cpuacct,
    /// memory, pids, freezer, devices, cpuset (a controller whose directory
    /// does not exist under the root is skipped). For cpuset on v1, every
    /// directory on the way whose cpuset.cpus / cpuset.mems is empty gets the
    /// value of the nearest ancestor with a non-empty one (otherwise adding a
    /// task fails with ENOSPC). V2: create the directory and, for every
    /// ancestor from the root down to the parent, enable in
    /// cgroup.subtree_control those of cpu, cpuset, memory, pids listed in
    /// its cgroup.controllers (errors there are only traced).
    pub fn create(&self) -> Result<(), CgroupError> {
        match &self.hierarchy {
            Hierarchy::V1 { root } => {
                for (controller, dir) in self.controller_dirs() {
                    fs::create_dir_all(&dir).map_err(|e| io_error("create directory", &dir, e))?;
                    if controller == "cpuset" {
                        self.init_cpuset(&root.join(controller))?;
                    }
                }
                Ok(())
            }
            Hierarchy::V2 { root } => {
                let dir = self.v2_dir();
                fs::create_dir_all(&dir).map_err(|e| io_error("create directory", &dir, e))?;
                let mut ancestor = root.clone();
                let components: Vec<&str> = self.components().collect();
                for component in &components {
                    enable_v2_controllers(&ancestor);
                    ancestor.push(component);
                }
                Ok(())
            }
        }
    }

    /// Fills empty cpuset.cpus / cpuset.mems from the root of the cpuset
    /// controller down to this cgroup.
    fn init_cpuset(&self, cpuset_root: &Path) -> Result<(), CgroupError> {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mut inherited = read_trimmed(&cpuset_root.join(file))?.unwrap_or_default();
            let mut dir = cpuset_root.to_path_buf();
            for component in self.components() {
                dir.push(component);
                let path = dir.join(file);
                let current = read_trimmed(&path)?.unwrap_or_default();
                if !current.is_empty() {
                    inherited = current;
                } else if !inherited.is_empty() {
                    debug!(path = %path.display(), value = %inherited, "copying cpuset value from parent");
                    write_file_creating(&path, &inherited)?;
                }
            }
        }
        Ok(())
    }

    /// Writes limits; only fields that are `Some` are written.
    ///
    /// V1: cpu.shares, cpu.cfs_period_us (before the quota), cpu.cfs_quota_us
    /// (-1 for a quota <= 0), memory.limit_in_bytes (the value when > 0, -1
    /// for -1, nothing for 0), pids.max ("max" for <= 0), cpuset.cpus /
    /// cpuset.mems. V2: cpu.weight converted from the shares as runc does,
    /// cpu.max "QUOTA PERIOD" ("max PERIOD" when the quota is <= 0 or unset,
    /// period default 100000), memory.max ("max" for -1), pids.max, cpuset.cpus
    /// / cpuset.mems. Shares of 0 mean unset, as in runc. A missing controller
    /// file is an error naming the file, except for cpuset, which is skipped
    /// when the controller (v1) or the file (v2) is absent.
    pub fn apply(&self, resources: &Resources) -> Result<(), CgroupError> {
        let memory = match resources.memory_limit {
            None | Some(0) => None,
            Some(-1) => Some(if self.hierarchy.is_v2() {
                "max".to_string()
            } else {
                "-1".to_string()
            }),
            Some(n) if n > 0 => Some(n.to_string()),
            Some(n) => {
                return Err(CgroupError::InvalidResource {
                    field: "memory_limit",
                    reason: format!("{n} is neither positive, 0 (unset) nor -1 (unlimited)"),
                });
            }
        };
        let pids = resources.pids_limit.map(|n| {
            if n <= 0 {
                "max".to_string()
            } else {
                n.to_string()
            }
        });
        let shares = resources.cpu_shares.filter(|&s| s != 0);

        match &self.hierarchy {
            Hierarchy::V1 { .. } => {
                if let Some(shares) = shares {
                    write_file(&self.file("cpu", "cpu.shares"), &shares.to_string())?;
                }
                if let Some(period) = resources.cpu_period {
                    write_file(&self.file("cpu", "cpu.cfs_period_us"), &period.to_string())?;
                }
                if let Some(quota) = resources.cpu_quota {
                    let quota = if quota <= 0 { -1 } else { quota };
                    write_file(&self.file("cpu", "cpu.cfs_quota_us"), &quota.to_string())?;
                }
                if let Some(memory) = &memory {
                    write_file(&self.file("memory", "memory.limit_in_bytes"), memory)?;
                }
                if let Some(pids) = &pids {
                    write_file(&self.file("pids", "pids.max"), pids)?;
                }
                if self.v1_controller_present("cpuset") {
                    self.write_cpuset(resources)?;
                }
            }
            Hierarchy::V2 { .. } => {
                if let Some(shares) = shares {
                    let weight = cpu_shares_to_weight(shares);
                    write_file(&self.file("cpu", "cpu.weight"), &weight.to_string())?;
                }
                if resources.cpu_quota.is_some() || resources.cpu_period.is_some() {
                    let max = cpu_max(resources.cpu_quota, resources.cpu_period);
                    write_file(&self.file("cpu", "cpu.max"), &max)?;
                }
                if let Some(memory) = &memory {
                    write_file(&self.file("memory", "memory.max"), memory)?;
                }
                if let Some(pids) = &pids {
                    write_file(&self.file("pids", "pids.max"), pids)?;
                }
                self.write_cpuset(resources)?;
            }
        }
        Ok(())
    }

    /// cpuset.cpus then cpuset.mems, each only when its file exists (the
    /// caller checked the v1 controller).
    fn write_cpuset(&self, resources: &Resources) -> Result<(), CgroupError> {
        for (file, value) in [
            ("cpuset.cpus", &resources.cpuset_cpus),
            ("cpuset.mems", &resources.cpuset_mems),
        ] {
            let Some(value) = value else { continue };
            let path = self.file("cpuset", file);
            if self.hierarchy.is_v2() && !path.exists() {
                debug!(path = %path.display(), "cpuset controller not available, skipping");
                continue;
            }
            write_file(&path, value)?;
        }
        Ok(())
    }

    /// V1 only (no-op on V2): the default device allowlist runc uses: "a" to
    /// devices.deny, then each default rule to devices.allow. Skipped
    /// silently when the devices controller directory is absent.
    pub fn apply_default_device_rules(&self) -> Result<(), CgroupError> {
        if self.hierarchy.is_v2() || !self.v1_controller_present("devices") {
            return Ok(());
        }
        write_file(&self.file("devices", "devices.deny"), "a")?;
        let allow = self.file("devices", "devices.allow");
        for rule in DEFAULT_DEVICE_ALLOW {
            write_file(&allow, rule)?;
        }
        Ok(())
    }

    /// Writes `pid` to cgroup.procs in every controller directory of this
    /// cgroup (V1) / the directory (V2).
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        if pid <= 0 {
            return Err(CgroupError::InvalidPid(pid));
        }
        for (_, dir) in self.controller_dirs() {
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Union of the pids in cgroup.procs of every controller directory
    /// (sorted, deduplicated); empty if the cgroup does not exist.
    pub fn processes(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = BTreeSet::new();
        for (_, dir) in self.controller_dirs() {
            let path = dir.join("cgroup.procs");
            let Some(content) = read_optional(&path)? else {
                continue;
            };
            for line in content.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let pid = line.parse::<i32>().map_err(|_| CgroupError::Parse {
                    path: path.clone(),
                    content: line.to_string(),
                })?;
                pids.insert(pid);
            }
        }
        Ok(pids.into_iter().collect())
    }

    /// V1: cpuacct.usage; memory.usage_in_bytes; working set = usage -
    /// total_inactive_file of memory.stat (saturating); rss = total_rss;
    /// oom_kills from "oom_kill N" in memory.oom_control; pids.current.
    /// V2: usage_usec of cpu.stat * 1000; memory.current; working set =
    /// current - inactive_file; rss = anon; oom_kills from "oom_kill" in
    /// memory.events; pids.current. Missing files or keys give 0s.
    pub fn stats(&self) -> Result<CgroupStats, CgroupError> {
        let stats = match &self.hierarchy {
            Hierarchy::V1 { .. } => {
                let usage = read_u64(&self.file("memory", "memory.usage_in_bytes"))?;
                let memory_stat = read_flat_keyed(&self.file("memory", "memory.stat"))?;
                let get = |key: &str| memory_stat.get(key).copied().unwrap_or(0);
                CgroupStats {
                    cpu_usage_nanos: read_u64(&self.file("cpuacct", "cpuacct.usage"))?,
                    memory_usage_bytes: usage,
                    memory_working_set_bytes: usage.saturating_sub(get("total_inactive_file")),
                    memory_rss_bytes: get("total_rss"),
                    oom_kills: read_key(&self.file("memory", "memory.oom_control"), "oom_kill")?,
                    pids_current: read_u64(&self.file("pids", "pids.current"))?,
                }
            }
            Hierarchy::V2 { .. } => {
                let current = read_u64(&self.file("memory", "memory.current"))?;
                let memory_stat = read_flat_keyed(&self.file("memory", "memory.stat"))?;
                let get = |key: &str| memory_stat.get(key).copied().unwrap_or(0);
                let usage_usec = read_key(&self.file("cpu", "cpu.stat"), "usage_usec")?;
                CgroupStats {
                    cpu_usage_nanos: usage_usec.saturating_mul(1000),
                    memory_usage_bytes: current,
                    memory_working_set_bytes: current.saturating_sub(get("inactive_file")),
                    memory_rss_bytes: get("anon"),
                    oom_kills: read_key(&self.file("memory", "memory.events"), "oom_kill")?,
                    pids_current: read_u64(&self.file("pids", "pids.current"))?,
                }
            }
        };
        Ok(stats)
    }

    /// True when any controller directory of this cgroup exists.
    pub fn exists(&self) -> bool {
        self.controller_dirs().iter().any(|(_, dir)| dir.is_dir())
    }

    /// Every directory this cgroup has (existing or not): on V1 one per
    /// controller present under the root, on V2 the one directory.
    pub fn directories(&self) -> Vec<PathBuf> {
        self.controller_dirs()
            .into_iter()
            .map(|(_, dir)| dir)
            .collect()
    }

    /// SIGKILLs every process, repeatedly (a process may fork while we kill):
    /// on V1 the cgroup is frozen through freezer.state before the signals
    /// and thawed after them when the freezer directory exists; on V2 "1" is
    /// written to cgroup.kill when that file exists (the listed pids are
    /// signalled as well). Polls cgroup.procs every 10ms until it is empty or
    /// `timeout` has passed (then [`CgroupError::ProcessesRemain`]), then
    /// rmdirs the leaf directory in every controller (ENOENT is fine, EBUSY
    /// is retried within the timeout). Never signals pid <= 0 or this process.
    /// Idempotent: a removed cgroup gives Ok.
    pub fn kill_all_and_remove(&self, timeout: Duration) -> Result<(), CgroupError> {
        let deadline = Instant::now() + timeout;
        loop {
            let pids = self.processes()?;
            if pids.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(CgroupError::ProcessesRemain {
                    path: self.path.clone(),
                    pids,
                    timeout,
                });
            }
            self.kill_round(&pids, deadline)?;
            sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now())));
        }
        for dir in self.directories() {
            remove_cgroup_dir(&dir, deadline)?;
        }
        Ok(())
    }

    /// One round of killing: freeze (v1) or cgroup.kill (v2), SIGKILL, thaw.
    fn kill_round(&self, pids: &[i32], deadline: Instant) -> Result<(), CgroupError> {
        match &self.hierarchy {
            Hierarchy::V1 { .. } => {
                let state = self.file("freezer", "freezer.state");
                if !state.exists() {
                    pids.iter().for_each(|&pid| kill_pid(pid));
                    return Ok(());
                }
                if let Err(e) = write_file(&state, "FROZEN") {
                    warn!(error = %e, "cannot freeze cgroup before killing");
                } else {
                    wait_frozen(&state, deadline);
                }
                // The member list can only shrink while frozen: read it again so
                // children forked before the freeze are signalled too.
                let pids = self.processes().unwrap_or_else(|_| pids.to_vec());
                pids.iter().for_each(|&pid| kill_pid(pid));
                if let Err(e) = write_file(&state, "THAWED") {
                    warn!(error = %e, "cannot thaw cgroup after killing");
                }
            }
            Hierarchy::V2 { .. } => {
                let kill = self.v2_dir().join("cgroup.kill");
                if kill.exists()
                    && let Err(e) = write_file(&kill, "1")
                {
                    warn!(error = %e, "cannot write cgroup.kill");
                }
                pids.iter().for_each(|&pid| kill_pid(pid));
            }
        }
        Ok(())
    }
}

/// runc's conversion of v1 cpu shares (2..=262144) to v2 cpu.weight (1..=10000).
fn cpu_shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// The cpu.max line: "QUOTA PERIOD", "max PERIOD" for an unset or <= 0 quota.
fn cpu_max(quota: Option<i64>, period: Option<u64>) -> String {
    let period = period.unwrap_or(DEFAULT_CPU_PERIOD);
    match quota {
        Some(q) if q > 0 => format!("{q} {period}"),
        _ => format!("max {period}"),
    }
}

/// Enables the wanted v2 controllers available in `dir`; failures are traced.
fn enable_v2_controllers(dir: &Path) {
    let controllers_path = dir.join("cgroup.controllers");
    let available = match fs::read_to_string(&controllers_path) {
        Ok(content) => content,
        Err(e) => {
            debug!(path = %controllers_path.display(), error = %e, "cannot read cgroup.controllers");
            return;
        }
    };
    let available: Vec<&str> = available.split_whitespace().collect();
    let wanted: Vec<String> = V2_CONTROLLERS
        .iter()
        .filter(|c| available.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let subtree = dir.join("cgroup.subtree_control");
    if let Err(e) = write_file(&subtree, &wanted.join(" ")) {
        debug!(error = %e, "enabling controllers together failed, trying one by one");
        for entry in &wanted {
            if let Err(e) = write_file(&subtree, entry) {
                debug!(error = %e, entry = %entry, "cannot enable controller");
            }
        }
    }
}

/// SIGKILLs `pid`, never pid <= 0 (process groups, everything) nor ourselves.
fn kill_pid(pid: i32) {
    if pid <= 0 {
        warn!(pid, "refusing to signal a non-positive pid");
        return;
    }
    if u32::try_from(pid).ok() == Some(std::process::id()) {
        warn!(pid, "refusing to kill our own process");
        return;
    }
    match signal::kill(Pid::from_raw(pid), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => warn!(pid, error = %e, "cannot kill process"),
    }
}

/// Waits (bounded) until freezer.state reads FROZEN.
fn wait_frozen(state: &Path, deadline: Instant) {
    let until = deadline.min(Instant::now() + FREEZE_WAIT);
    loop {
        match read_trimmed(state) {
            Ok(Some(s)) if s == "FROZEN" => return,
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "cannot read freezer state");
                return;
            }
        }
        if Instant::now() >= until {
            debug!(path = %state.display(), "cgroup not frozen yet, killing anyway");
            return;
        }
        sleep(Duration::from_millis(1));
    }
}

/// rmdir with the retries described in the module documentation.
fn remove_cgroup_dir(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    let mut cleared = false;
    loop {
        let err = match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => e,
        };
        if err.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline {
            debug!(path = %dir.display(), "cgroup busy, retrying rmdir");
            sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now())));
            continue;
        }
        if err.raw_os_error() == Some(libc::ENOTEMPTY) && !cleared && !on_cgroup_fs(dir) {
            // A fake hierarchy: the "control files" are real files.
            remove_plain_files(dir)?;
            cleared = true;
            continue;
        }
        return Err(io_error("remove directory", dir, err));
    }
}

/// True when `dir` is on cgroupfs (v1 or v2); also when that cannot be told,
/// so that nothing is ever unlinked on a real hierarchy.
fn on_cgroup_fs(dir: &Path) -> bool {
    match statfs::statfs(dir) {
        Ok(fs) => {
            let kind = fs.filesystem_type();
            kind == CGROUP_SUPER_MAGIC || kind == CGROUP2_SUPER_MAGIC
        }
        Err(_) => true,
    }
}

/// Unlinks the regular files directly in `dir` (never subdirectories).
fn remove_plain_files(dir: &Path) -> Result<(), CgroupError> {
    let entries = fs::read_dir(dir).map_err(|e| io_error("read directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error("read directory", dir, e))?;
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if is_file {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| io_error("remove file", &path, e))?;
        }
    }
    Ok(())
}

/// Writes a cgroup file that must already exist (cgroupfs semantics).
fn write_file(path: &Path, content: &str) -> Result<(), CgroupError> {
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_error("write", path, e))?;
    file.write_all(content.as_bytes())
        .map_err(|e| io_error("write", path, e))
}

/// Like [`write_file`] but creates the file when missing (only for the
/// cpuset values copied into new v1 directories; see the module docs).
fn write_file_creating(path: &Path, content: &str) -> Result<(), CgroupError> {
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(true)
        .open(path)
        .map_err(|e| io_error("write", path, e))?;
    file.write_all(content.as_bytes())
        .map_err(|e| io_error("write", path, e))
}

/// The content of a file, `None` when it (or its cgroup) does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(content) => Ok(Some(content)),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV) => {
            Ok(None)
        }
        Err(e) => Err(io_error("read", path, e)),
    }
}

fn read_trimmed(path: &Path) -> Result<Option<String>, CgroupError> {
    Ok(read_optional(path)?.map(|s| s.trim().to_string()))
}

/// A file holding one number; 0 when missing or empty.
fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    match read_trimmed(path)? {
        None => Ok(0),
        Some(s) if s.is_empty() => Ok(0),
        Some(s) => s.parse().map_err(|_| CgroupError::Parse {
            path: path.to_path_buf(),
            content: s,
        }),
    }
}

/// A flat keyed file ("key value" lines) as a map; empty when missing.
fn read_flat_keyed(path: &Path) -> Result<HashMap<String, u64>, CgroupError> {
    let Some(content) = read_optional(path)? else {
        return Ok(HashMap::new());
    };
    parse_flat_keyed(&content).map_err(|line| CgroupError::Parse {
        path: path.to_path_buf(),
        content: line,
    })
}

/// One key of a flat keyed file; 0 when the file or the key is missing.
fn read_key(path: &Path, key: &str) -> Result<u64, CgroupError> {
    Ok(read_flat_keyed(path)?.get(key).copied().unwrap_or(0))
}

/// Parses "key value" lines; the offending line is the error.
fn parse_flat_keyed(content: &str) -> Result<HashMap<String, u64>, String> {
    let mut map = HashMap::new();
    for line in content.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(line.to_string());
        };
        let value = value.parse::<u64>().map_err(|_| line.to_string())?;
        map.insert(key.to_string(), value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, Command};
    use tempfile::TempDir;

    fn write(path: &Path, content: &str) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, content).unwrap();
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    /// A fake v1 root with the given controller directories; the cpuset root
    /// has cpus "0-3" and mems "0".
    fn fake_v1_with(controllers: &[&str]) -> (TempDir, Hierarchy) {
        let dir = tempfile::tempdir().unwrap();
        for c in controllers {
            fs::create_dir(dir.path().join(c)).unwrap();
        }
        if controllers.contains(&"cpuset") {
            write(&dir.path().join("cpuset/cpuset.cpus"), "0-3\n");
            write(&dir.path().join("cpuset/cpuset.mems"), "0\n");
        }
        let root = dir.path().to_path_buf();
        (dir, Hierarchy::V1 { root })
    }

    fn fake_v1() -> (TempDir, Hierarchy) {
        fake_v1_with(V1_CONTROLLERS)
    }

    fn fake_v2() -> (TempDir, Hierarchy) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        (dir, Hierarchy::V2 { root })
    }

    #[test]
    fn path_is_normalized() {
        let (_d, h) = fake_v1();
        for (input, want) in [
            ("/berth/pod1/ctr1", "/berth/pod1/ctr1"),
            ("berth/x", "/berth/x"),
            ("//berth//x/", "/berth/x"),
            ("./berth/./x", "/berth/x"),
            ("a", "/a"),
        ] {
            assert_eq!(Cgroup::new(h.clone(), input).unwrap().path(), want);
        }
    }

    #[test]
    fn path_validation_rejects_bad_paths() {
        let (_d, h) = fake_v1();
        for input in [
            "", "/", "///", ".", "..", "/a/../b", "a/..", "../etc", "a\0b",
        ] {
            let err = Cgroup::new(h.clone(), input).unwrap_err();
            assert!(
                matches!(err, CgroupError::InvalidPath { .. }),
                "{input:?}: {err}"
            );
        }
        // ".." inside a name is just a name.
        assert_eq!(Cgroup::new(h, "a..b").unwrap().path(), "/a..b");
    }

    #[test]
    fn detect_at_fake_root() {
        let (dir, h) = fake_v1_with(&["memory"]);
        assert_eq!(Hierarchy::detect_at(dir.path()).unwrap(), h);
        assert!(!h.is_v2());
        assert_eq!(h.root(), dir.path());
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            Hierarchy::detect_at(empty.path()),
            Err(CgroupError::NoHierarchy { .. })
        ));
        assert!(Hierarchy::detect_at(&empty.path().join("missing")).is_err());
        assert!(
            Hierarchy::V2 {
                root: PathBuf::from("/x")
            }
            .is_v2()
        );
    }

    #[test]
    fn create_v1_makes_controller_dirs_and_copies_cpuset() {
        let (dir, h) = fake_v1();
        let root = dir.path();
        // An existing parent with its own cpus but no mems.
        write(&root.join("cpuset/berth/cpuset.cpus"), "1\n");
        let cg = Cgroup::new(h, "/berth/pod1/ctr1").unwrap();
        assert!(!cg.exists());
        cg.create().unwrap();
        assert!(cg.exists());
        for c in V1_CONTROLLERS {
            assert!(root.join(c).join("berth/pod1/ctr1").is_dir(), "{c}");
        }
        assert_eq!(cg.directories().len(), V1_CONTROLLERS.len());
        assert_eq!(read(&root.join("cpuset/berth/cpuset.cpus")), "1\n");
        assert_eq!(read(&root.join("cpuset/berth/cpuset.mems")), "0");
        assert_eq!(read(&root.join("cpuset/berth/pod1/cpuset.cpus")), "1");
        assert_eq!(read(&root.join("cpuset/berth/pod1/ctr1/cpuset.cpus")), "1");
        assert_eq!(read(&root.join("cpuset/berth/pod1/ctr1/cpuset.mems")), "0");
        // Only cpuset dirs get files.
        assert_eq!(
            fs::read_dir(root.join("memory/berth/pod1/ctr1"))
                .unwrap()
                .count(),
            0
        );
        // Idempotent.
        cg.create().unwrap();
    }

    #[test]
    fn create_v1_skips_missing_controllers() {
        let (dir, h) = fake_v1_with(&["cpuacct", "memory", "pids"]);
        let cg = Cgroup::new(h, "berth/x").unwrap();
        cg.create().unwrap();
        assert!(!dir.path().join("cpu").exists());
        assert!(!dir.path().join("cpuset").exists());
        assert!(dir.path().join("memory/berth/x").is_dir());
        assert_eq!(
            cg.directories(),
            vec![
                dir.path().join("cpuacct/berth/x"),
                dir.path().join("memory/berth/x"),
                dir.path().join("pids/berth/x"),
            ]
        );
    }

    #[test]
    fn v1_comounted_controllers_appear_once() {
        let (dir, h) = fake_v1_with(&["cpu,cpuacct", "memory"]);
        std::os::unix::fs::symlink("cpu,cpuacct", dir.path().join("cpu")).unwrap();
        std::os::unix::fs::symlink("cpu,cpuacct", dir.path().join("cpuacct")).unwrap();
        let cg = Cgroup::new(h, "c").unwrap();
        assert_eq!(
            cg.directories(),
            vec![dir.path().join("cpu/c"), dir.path().join("memory/c")]
        );
        cg.create().unwrap();
        write(&dir.path().join("cpu,cpuacct/c/cpuacct.usage"), "77\n");
        assert_eq!(cg.stats().unwrap().cpu_usage_nanos, 77);
        cg.kill_all_and_remove(Duration::from_secs(1)).unwrap();
        assert!(!dir.path().join("cpu,cpuacct/c").exists());
    }

    /// Creates the control files the kernel would provide in the leaf dirs.
    fn touch_v1_files(root: &Path, rel: &str) {
        for file in [
            "cpu/cpu.shares",
            "cpu/cpu.cfs_period_us",
            "cpu/cpu.cfs_quota_us",
            "memory/memory.limit_in_bytes",
            "pids/pids.max",
            "devices/devices.allow",
            "devices/devices.deny",
        ] {
            let (controller, name) = file.split_once('/').unwrap();
            write(&root.join(controller).join(rel).join(name), "");
        }
    }

    #[test]
    fn apply_v1_writes_values() {
        let (dir, h) = fake_v1();
        let root = dir.path();
        let cg = Cgroup::new(h, "/berth/c").unwrap();
        cg.create().unwrap();
        touch_v1_files(root, "berth/c");
        cg.apply(&Resources {
            cpu_shares: Some(512),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            memory_limit: Some(64 << 20),
            pids_limit: Some(50),
            cpuset_cpus: Some("2-3".into()),
            cpuset_mems: Some("0".into()),
        })
        .unwrap();
        let leaf = |c: &str, f: &str| read(&root.join(c).join("berth/c").join(f));
        assert_eq!(leaf("cpu", "cpu.shares"), "512");
        assert_eq!(leaf("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(leaf("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(leaf("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(leaf("pids", "pids.max"), "50");
        assert_eq!(leaf("cpuset", "cpuset.cpus"), "2-3");
        assert_eq!(leaf("cpuset", "cpuset.mems"), "0");

        // Unlimited values.
        cg.apply(&Resources {
            cpu_quota: Some(-1),
            memory_limit: Some(-1),
            pids_limit: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(leaf("cpu", "cpu.cfs_quota_us"), "-1");
        assert_eq!(leaf("memory", "memory.limit_in_bytes"), "-1");
        assert_eq!(leaf("pids", "pids.max"), "max");
        // Untouched fields keep their values.
        assert_eq!(leaf("cpu", "cpu.shares"), "512");
        assert_eq!(leaf("cpuset", "cpuset.cpus"), "2-3");

        // 0 means unset for memory and shares.
        write(&root.join("memory/berth/c/memory.limit_in_bytes"), "123");
        cg.apply(&Resources {
            memory_limit: Some(0),
            cpu_shares: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(leaf("memory", "memory.limit_in_bytes"), "123");
        assert_eq!(leaf("cpu", "cpu.shares"), "512");

        let err = cg
            .apply(&Resources {
                memory_limit: Some(-2),
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, CgroupError::InvalidResource { .. }), "{err}");
    }

    #[test]
    fn apply_v1_missing_file_names_it_and_cpuset_is_skipped() {
        let (_dir, h) = fake_v1_with(&["cpu", "memory"]);
        let cg = Cgroup::new(h, "x").unwrap();
        cg.create().unwrap();
        let err = cg
            .apply(&Resources {
                memory_limit: Some(1 << 20),
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, CgroupError::Io { .. }));
        assert!(err.to_string().contains("memory.limit_in_bytes"), "{err}");
        // No cpuset controller: skipped.
        cg.apply(&Resources {
            cpuset_cpus: Some("0".into()),
            cpuset_mems: Some("0".into()),
            ..Default::default()
        })
        .unwrap();
        // No pids controller: an error naming the file.
        let err = cg
            .apply(&Resources {
                pids_limit: Some(5),
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("pids.max"), "{err}");
    }

    #[test]
    fn v2_weight_conversion() {
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(1), 1);
        assert_eq!(cpu_shares_to_weight(1 << 30), 10_000);
    }

    #[test]
    fn v2_cpu_max_formatting() {
        assert_eq!(cpu_max(Some(50_000), None), "50000 100000");
        assert_eq!(cpu_max(Some(20_000), Some(50_000)), "20000 50000");
        assert_eq!(cpu_max(Some(-1), Some(20_000)), "max 20000");
        assert_eq!(cpu_max(Some(0), None), "max 100000");
        assert_eq!(cpu_max(None, Some(30_000)), "max 30000");
    }

    #[test]
    fn apply_v2_writes_values() {
        let (dir, h) = fake_v2();
        let leaf = dir.path().join("berth/c");
        for f in [
            "cpu.weight",
            "cpu.max",
            "memory.max",
            "pids.max",
            "cpuset.cpus",
            "cpuset.mems",
        ] {
            write(&leaf.join(f), "");
        }
        let cg = Cgroup::new(h, "berth/c").unwrap();
        cg.apply(&Resources {
            cpu_shares: Some(1024),
            cpu_quota: Some(50_000),
            cpu_period: None,
            memory_limit: Some(64 << 20),
            pids_limit: Some(50),
            cpuset_cpus: Some("1".into()),
            cpuset_mems: Some("0".into()),
        })
        .unwrap();
        assert_eq!(read(&leaf.join("cpu.weight")), "39");
        assert_eq!(read(&leaf.join("cpu.max")), "50000 100000");
        assert_eq!(read(&leaf.join("memory.max")), "67108864");
        assert_eq!(read(&leaf.join("pids.max")), "50");
        assert_eq!(read(&leaf.join("cpuset.cpus")), "1");
        assert_eq!(read(&leaf.join("cpuset.mems")), "0");
        cg.apply(&Resources {
            cpu_quota: Some(-1),
            cpu_period: Some(20_000),
            memory_limit: Some(-1),
            pids_limit: Some(-1),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(read(&leaf.join("cpu.max")), "max 20000");
        assert_eq!(read(&leaf.join("memory.max")), "max");
        assert_eq!(read(&leaf.join("pids.max")), "max");
        assert_eq!(read(&leaf.join("cpu.weight")), "39");
    }

    #[test]
    fn apply_v2_controllerless_errors_name_file_and_skip_cpuset() {
        let (_dir, h) = fake_v2();
        let cg = Cgroup::new(h, "c").unwrap();
        cg.create().unwrap();
        cg.apply(&Resources {
            cpuset_cpus: Some("0".into()),
            cpuset_mems: Some("0".into()),
            ..Default::default()
        })
        .unwrap();
        let err = cg
            .apply(&Resources {
                cpu_quota: Some(1000),
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("cpu.max"), "{err}");
        let err = cg
            .apply(&Resources {
                memory_limit: Some(1000),
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("memory.max"), "{err}");
        // Nothing to write is fine.
        cg.apply(&Resources::default()).unwrap();
        // The default rules are v1 only.
        cg.apply_default_device_rules().unwrap();
    }

    #[test]
    fn create_v2_enables_available_controllers_in_ancestors() {
        let (dir, h) = fake_v2();
        let root = dir.path();
        write(
            &root.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma\n",
        );
        write(&root.join("cgroup.subtree_control"), "");
        write(&root.join("berth/cgroup.controllers"), "cpu memory\n");
        write(&root.join("berth/cgroup.subtree_control"), "");
        // berth/pod has no files (write errors are ignored); the leaf is not touched.
        let cg = Cgroup::new(h, "/berth/pod/ctr").unwrap();
        cg.create().unwrap();
        assert!(root.join("berth/pod/ctr").is_dir());
        assert_eq!(
            read(&root.join("cgroup.subtree_control")),
            "+cpu +cpuset +memory +pids"
        );
        assert_eq!(
            read(&root.join("berth/cgroup.subtree_control")),
            "+cpu +memory"
        );
        assert!(!root.join("berth/pod/cgroup.subtree_control").exists());
        assert!(!root.join("berth/pod/ctr/cgroup.subtree_control").exists());
        assert_eq!(cg.directories(), vec![root.join("berth/pod/ctr")]);
        assert!(cg.exists());
    }

    #[test]
    fn device_rules_v1() {
        let (dir, h) = fake_v1();
        let cg = Cgroup::new(h, "d").unwrap();
        cg.create().unwrap();
        touch_v1_files(dir.path(), "d");
        cg.apply_default_device_rules().unwrap();
        assert_eq!(read(&dir.path().join("devices/d/devices.deny")), "a");
        // Each rule is a separate write; the fake keeps the last one.
        assert_eq!(
            read(&dir.path().join("devices/d/devices.allow")),
            "c 10:200 rwm"
        );
        assert_eq!(DEFAULT_DEVICE_ALLOW.len(), 12);

        // Without a devices controller: silently nothing.
        let (_dir2, h2) = fake_v1_with(&["memory"]);
        let cg2 = Cgroup::new(h2, "d").unwrap();
        cg2.create().unwrap();
        cg2.apply_default_device_rules().unwrap();
    }

    #[test]
    fn stats_v1_from_sample_files() {
        let (dir, h) = fake_v1();
        let root = dir.path();
        let cg = Cgroup::new(h, "s").unwrap();
        cg.create().unwrap();
        write(&root.join("cpuacct/s/cpuacct.usage"), "123456789\n");
        write(&root.join("memory/s/memory.usage_in_bytes"), "10000000\n");
        write(
            &root.join("memory/s/memory.stat"),
            "cache 4000000\nrss 5000000\ninactive_file 100\n\
             total_cache 4000000\ntotal_rss 5500000\ntotal_inactive_file 3000000\n\
             total_active_file 1000000\n",
        );
        write(
            &root.join("memory/s/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        );
        write(&root.join("pids/s/pids.current"), "7\n");
        assert_eq!(
            cg.stats().unwrap(),
            CgroupStats {
                cpu_usage_nanos: 123_456_789,
                memory_usage_bytes: 10_000_000,
                memory_working_set_bytes: 7_000_000,
                memory_rss_bytes: 5_500_000,
                oom_kills: 3,
                pids_current: 7,
            }
        );
        // Working set saturates.
        write(&root.join("memory/s/memory.usage_in_bytes"), "1000\n");
        assert_eq!(cg.stats().unwrap().memory_working_set_bytes, 0);
    }

    #[test]
    fn stats_v2_from_sample_files() {
        let (dir, h) = fake_v2();
        let leaf = dir.path().join("s");
        write(
            &leaf.join("cpu.stat"),
            "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 0\n",
        );
        write(&leaf.join("memory.current"), "8192000\n");
        write(
            &leaf.join("memory.stat"),
            "anon 4096000\nfile 2048000\nkernel 100\nactive_file 48000\ninactive_file 2000000\n",
        );
        write(
            &leaf.join("memory.events"),
            "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n",
        );
        write(&leaf.join("pids.current"), "3\n");
        let cg = Cgroup::new(h, "s").unwrap();
        assert_eq!(
            cg.stats().unwrap(),
            CgroupStats {
                cpu_usage_nanos: 2_500_000,
                memory_usage_bytes: 8_192_000,
                memory_working_set_bytes: 6_192_000,
                memory_rss_bytes: 4_096_000,
                oom_kills: 1,
                pids_current: 3,
            }
        );
    }

    #[test]
    fn stats_missing_files_are_zero() {
        let (_d1, h1) = fake_v1();
        let cg = Cgroup::new(h1, "nothing/here").unwrap();
        assert_eq!(cg.stats().unwrap(), CgroupStats::default());
        cg.create().unwrap();
        assert_eq!(cg.stats().unwrap(), CgroupStats::default());
        let (_d2, h2) = fake_v2();
        let cg = Cgroup::new(h2, "nothing").unwrap();
        assert_eq!(cg.stats().unwrap(), CgroupStats::default());
    }

    #[test]
    fn stats_garbage_is_a_parse_error() {
        let (dir, h) = fake_v1();
        let cg = Cgroup::new(h, "g").unwrap();
        cg.create().unwrap();
        write(&dir.path().join("pids/g/pids.current"), "lots\n");
        let err = cg.stats().unwrap_err();
        assert!(matches!(err, CgroupError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("pids.current"), "{err}");
    }

    #[test]
    fn oom_kill_parsing() {
        let (dir, h) = fake_v1();
        let path = dir.path().join("memory.oom_control");
        write(&path, "oom_kill_disable 1\nunder_oom 0\noom_kill 42\n");
        assert_eq!(read_key(&path, "oom_kill").unwrap(), 42);
        // Kernels before 4.13 have no oom_kill line.
        write(&path, "oom_kill_disable 0\nunder_oom 1\n");
        assert_eq!(read_key(&path, "oom_kill").unwrap(), 0);
        assert_eq!(
            read_key(&dir.path().join("missing"), "oom_kill").unwrap(),
            0
        );
        write(&path, "oom_kill\n");
        assert!(read_key(&path, "oom_kill").is_err());

        let cg = Cgroup::new(h, "o").unwrap();
        cg.create().unwrap();
        write(
            &dir.path().join("memory/o/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
        );
        assert_eq!(cg.stats().unwrap().oom_kills, 5);

        let (dir2, h2) = fake_v2();
        write(
            &dir2.path().join("o/memory.events"),
            "low 0\nhigh 0\nmax 0\noom 4\noom_kill 2\noom_group_kill 1\n",
        );
        assert_eq!(Cgroup::new(h2, "o").unwrap().stats().unwrap().oom_kills, 2);
    }

    #[test]
    fn processes_union() {
        let (dir, h) = fake_v1();
        let root = dir.path();
        let cg = Cgroup::new(h, "p").unwrap();
        assert!(cg.processes().unwrap().is_empty());
        cg.create().unwrap();
        assert!(cg.processes().unwrap().is_empty());
        write(&root.join("cpu/p/cgroup.procs"), "5\n3\n");
        write(&root.join("memory/p/cgroup.procs"), "3\n7\n\n");
        write(&root.join("freezer/p/cgroup.procs"), "");
        assert_eq!(cg.processes().unwrap(), vec![3, 5, 7]);
        write(&root.join("pids/p/cgroup.procs"), "x\n");
        assert!(matches!(
            cg.processes().unwrap_err(),
            CgroupError::Parse { .. }
        ));

        let (dir2, h2) = fake_v2();
        write(&dir2.path().join("p/cgroup.procs"), "9\n2\n9\n");
        assert_eq!(
            Cgroup::new(h2, "p").unwrap().processes().unwrap(),
            vec![2, 9]
        );
    }

    #[test]
    fn add_process_writes_every_controller() {
        let (dir, h) = fake_v1();
        let cg = Cgroup::new(h, "a/b").unwrap();
        cg.create().unwrap();
        // Without cgroup.procs (the kernel always has it) the write fails.
        let err = cg.add_process(42).unwrap_err();
        assert!(err.to_string().contains("cgroup.procs"), "{err}");
        for d in cg.directories() {
            write(&d.join("cgroup.procs"), "");
        }
        cg.add_process(42).unwrap();
        for c in V1_CONTROLLERS {
            assert_eq!(read(&dir.path().join(c).join("a/b/cgroup.procs")), "42");
        }
        assert_eq!(cg.processes().unwrap(), vec![42]);
        assert!(matches!(cg.add_process(0), Err(CgroupError::InvalidPid(0))));
        assert!(matches!(
            cg.add_process(-1),
            Err(CgroupError::InvalidPid(-1))
        ));
    }

    #[test]
    fn kill_all_and_remove_empty_v1_is_idempotent() {
        let (dir, h) = fake_v1();
        let cg = Cgroup::new(h, "/berth/pod/ctr").unwrap();
        cg.create().unwrap();
        touch_v1_files(dir.path(), "berth/pod/ctr");
        let dirs = cg.directories();
        assert_eq!(dirs.len(), V1_CONTROLLERS.len());
        cg.kill_all_and_remove(Duration::from_secs(1)).unwrap();
        for d in &dirs {
            assert!(!d.exists(), "{}", d.display());
            // Parents are the caller's business.
            assert!(d.parent().unwrap().is_dir());
        }
        assert!(!cg.exists());
        cg.kill_all_and_remove(Duration::from_secs(1)).unwrap();
        // Even with a zero timeout.
        cg.kill_all_and_remove(Duration::ZERO).unwrap();
        // Never created at all.
        Cgroup::new(cg.hierarchy.clone(), "never")
            .unwrap()
            .kill_all_and_remove(Duration::ZERO)
            .unwrap();
    }

    #[test]
    fn kill_all_and_remove_empty_v2_is_idempotent() {
        let (dir, h) = fake_v2();
        let cg = Cgroup::new(h, "berth/c").unwrap();
        cg.create().unwrap();
        write(&dir.path().join("berth/c/memory.max"), "max\n");
        write(&dir.path().join("berth/c/cgroup.procs"), "");
        cg.kill_all_and_remove(Duration::from_secs(1)).unwrap();
        assert!(!dir.path().join("berth/c").exists());
        assert!(dir.path().join("berth").is_dir());
        cg.kill_all_and_remove(Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn remove_does_not_recurse_into_child_cgroups() {
        let (dir, h) = fake_v2();
        let parent = Cgroup::new(h.clone(), "a").unwrap();
        Cgroup::new(h, "a/b").unwrap().create().unwrap();
        write(&dir.path().join("a/memory.max"), "max\n");
        let err = parent
            .kill_all_and_remove(Duration::from_millis(50))
            .unwrap_err();
        assert!(matches!(err, CgroupError::Io { .. }), "{err}");
        assert!(dir.path().join("a/b").is_dir());
    }

    /// Kills the child if a test fails before reaping it.
    struct ChildGuard(Option<Child>);

    impl Drop for ChildGuard {
        fn drop(&mut self) {
            if let Some(child) = self.0.as_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    #[test]
    fn kill_all_signals_listed_processes_and_times_out_when_they_stay_listed() {
        let (dir, h) = fake_v1();
        let cg = Cgroup::new(h, "k").unwrap();
        cg.create().unwrap();
        let mut guard = ChildGuard(Some(Command::new("sleep").arg("100").spawn().unwrap()));
        let pid = i32::try_from(guard.0.as_ref().unwrap().id()).unwrap();
        let own = i32::try_from(std::process::id()).unwrap();
        // The fake lists the child (and, to check we never kill ourselves, us)
        // and never forgets them.
        write(
            &dir.path().join("memory/k/cgroup.procs"),
            &format!("{pid}\n{own}\n"),
        );
        write(&dir.path().join("freezer/k/freezer.state"), "THAWED\n");
        let err = cg
            .kill_all_and_remove(Duration::from_millis(100))
            .unwrap_err();
        match err {
            CgroupError::ProcessesRemain { pids, .. } => {
                let mut want = vec![pid, own];
                want.sort();
                assert_eq!(pids, want)
            }
            other => panic!("unexpected {other}"),
        }
        let status = guard.0.take().unwrap().wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(read(&dir.path().join("freezer/k/freezer.state")), "THAWED");
        assert!(cg.exists());
    }

    /// Removes the real cgroup (killing what is in it) if the test fails.
    struct CgroupGuard(Option<Cgroup>);

    impl Drop for CgroupGuard {
        fn drop(&mut self) {
            if let Some(cg) = self.0.take() {
                let _ = cg.kill_all_and_remove(Duration::from_secs(5));
            }
        }
    }

    #[test]
    fn real_cgroup_lifecycle_as_root() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping real cgroup test: not root");
            return;
        }
        let hierarchy = match Hierarchy::detect() {
            Ok(h) => h,
            Err(e) => {
                eprintln!("skipping real cgroup test: {e}");
                return;
            }
        };
        let name = format!("berth-cgtest-{}", std::process::id());
        let cg = Cgroup::new(hierarchy.clone(), &name).unwrap();
        cg.create().unwrap();
        let guard = CgroupGuard(Some(cg.clone()));
        cg.apply(&Resources {
            memory_limit: Some(64 << 20),
            pids_limit: Some(50),
            cpu_shares: Some(512),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            ..Default::default()
        })
        .unwrap();
        cg.apply_default_device_rules().unwrap();

        let mut child = ChildGuard(Some(Command::new("sleep").arg("100").spawn().unwrap()));
        let pid = i32::try_from(child.0.as_ref().unwrap().id()).unwrap();
        cg.add_process(pid).unwrap();
        assert!(cg.processes().unwrap().contains(&pid));

        let memory_file = match &hierarchy {
            Hierarchy::V1 { root } => root
                .join("memory")
                .join(&name)
                .join("memory.limit_in_bytes"),
            Hierarchy::V2 { root } => root.join(&name).join("memory.max"),
        };
        assert_eq!(read(&memory_file).trim(), "67108864");
        let stats = cg.stats().unwrap();
        assert!(stats.pids_current >= 1, "{stats:?}");

        let dirs = cg.directories();
        assert!(!dirs.is_empty());
        cg.kill_all_and_remove(Duration::from_secs(5)).unwrap();
        for d in &dirs {
            assert!(!d.exists(), "{} still exists", d.display());
        }
        assert!(!cg.exists());
        let status = child.0.take().unwrap().wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        cg.kill_all_and_remove(Duration::from_secs(1)).unwrap();
        drop(guard);
    }
}
