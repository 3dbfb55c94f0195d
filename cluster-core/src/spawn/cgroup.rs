//! A cgroup v2 child group per worker, for `limits.memoryMax`.
//!
//! The worker groups are created beside the primary's own group, under the group the
//! primary was started in (its parent in the unified hierarchy, read from
//! `/proc/self/cgroup`). cgroup v2 lets a group hand the memory controller to its children
//! only while it holds no process itself ("no internal processes"), so when the primary is
//! the only process of its group it first moves itself into a leaf of its own,
//! `cluster-primary-<pid>`, as systemd does with a delegated group. Each worker joins its
//! group between fork and exec (it writes itself to `cgroup.procs`), so its own children are
//! born inside it and counted; the group is removed once the worker has exited. Its
//! `memory.oom.group` is set, so that the kernel's out-of-memory killer, when the worker goes
//! over its limit, ends the whole worker, which the supervisor then replaces.
//!
//! Where any of this is impossible (cgroup v1 or a hybrid tree, no memory controller, a
//! read-only `/sys/fs/cgroup`, other processes sharing the primary's group), [`detect`]
//! says why and the workers run without the limit.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the unified hierarchy is mounted.
const ROOT: &str = "/sys/fs/cgroup";

/// `statfs` type of a cgroup v2 file system (`CGROUP2_SUPER_MAGIC` in `linux/magic.h`).
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// The group the workers' groups are created in.
#[derive(Debug)]
pub(crate) struct CgroupParent {
    dir: PathBuf,
    /// `cluster-<primary pid>-`: two primaries sharing a parent never collide.
    prefix: String,
}

/// One worker's group.
#[derive(Debug)]
pub(crate) struct WorkerCgroup {
    dir: PathBuf,
}

/// Finds or prepares the parent of the worker groups; `Err` says, for people, why the
/// memory limit cannot be applied here.
pub(crate) fn detect() -> Result<CgroupParent, String> {
    let root = Path::new(ROOT);
    let fs_type = rustix::fs::statfs(root).map(|s| s.f_type as u64);
    if fs_type.ok() != Some(CGROUP2_SUPER_MAGIC) {
        return Err(format!("{ROOT} is not a cgroup v2 (unified) hierarchy: cgroup v1 or hybrid"));
    }
    let own = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let relative = own
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or("the primary is in no cgroup v2 group (/proc/self/cgroup)")?;
    let mut dir = root.join(relative.trim_start_matches('/'));
    if dir.file_name() == Some(leaf_name().as_ref()) {
        // Moved there by an earlier `detect` (a reload): the workers' parent is its parent.
        dir.pop();
    }
    let controllers = read(&dir.join("cgroup.controllers"))?;
    if !controllers.split_whitespace().any(|c| c == "memory") {
        return Err(format!("the memory controller is not available in {}", dir.display()));
    }
    enable_memory(&dir)?;
    let parent = CgroupParent { dir, prefix: format!("cluster-{}-", std::process::id()) };
    // One real group, created and removed, proves the rest works before any worker needs it.
    let probe = parent
        .create("probe", u64::MAX)
        .map_err(|e| format!("cannot create a cgroup in {}: {e}", parent.dir.display()))?;
    probe.remove_now().map_err(|e| format!("cannot remove {}: {e}", probe.dir.display()))?;
    Ok(parent)
}

/// Gives the memory controller to the children of `dir`, moving the primary into a leaf
/// group of its own first if it is the only process in `dir`.
fn enable_memory(dir: &Path) -> Result<(), String> {
    let control = dir.join("cgroup.subtree_control");
    if read(&control)?.split_whitespace().any(|c| c == "memory") {
        return Ok(());
    }
    match fs::write(&control, "+memory") {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() != Some(rustix::io::Errno::BUSY.raw_os_error()) => {
            return Err(format!("cannot enable the memory controller in {}: {e}", dir.display()));
        }
        Err(_) => {}
    }
    // EBUSY: processes live in `dir`. Only the primary's own may be moved.
    let me = std::process::id().to_string();
    let procs = read(&dir.join("cgroup.procs"))?;
    if procs.lines().any(|pid| pid.trim() != me) {
        return Err(format!(
            "other processes share the primary's cgroup {} (cgroup v2 gives the memory \
             controller only to a group with no processes of its own)",
            dir.display()
        ));
    }
    let leaf = dir.join(leaf_name());
    let moved = fs::create_dir(&leaf).and_then(|()| fs::write(leaf.join("cgroup.procs"), &me));
    moved.map_err(|e| format!("cannot move the primary into {}: {e}", leaf.display()))?;
    fs::write(&control, "+memory")
        .map_err(|e| format!("cannot enable the memory controller in {}: {e}", dir.display()))
}

/// The leaf group the primary moves itself into.
fn leaf_name() -> String {
    format!("cluster-primary-{}", std::process::id())
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

impl CgroupParent {
    /// Creates the group `name` with `memory.max` set to `bytes`.
    pub(crate) fn create(&self, name: &str, bytes: u64) -> io::Result<WorkerCgroup> {
        let dir = self.dir.join(format!("{}{name}", self.prefix));
        fs::create_dir(&dir)?;
        let group = WorkerCgroup { dir };
        let max = if bytes == u64::MAX { "max".to_owned() } else { bytes.to_string() };
        if let Err(e) = fs::write(group.dir.join("memory.max"), max) {
            let _ = group.remove_now();
            return Err(e);
        }
        // An out-of-memory kill takes the whole worker (its children too), not one process
        // chosen inside it, so that the supervisor sees the worker exit and replaces it.
        // Best effort: the file exists since Linux 4.19.
        let _ = fs::write(group.dir.join("memory.oom.group"), "1");
        Ok(group)
    }

    /// The directory the worker groups are created in.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl WorkerCgroup {
    /// The path of its `cgroup.procs`, as the child writes to it between fork and exec.
    pub(crate) fn procs(&self) -> CString {
        let path = self.dir.join("cgroup.procs");
        // A path built from /proc/self/cgroup and our own names has no NUL byte.
        CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
    }

    /// Removes the group now (it must be empty).
    pub(crate) fn remove_now(&self) -> io::Result<()> {
        fs::remove_dir(&self.dir)
    }

    /// Removes the group once the last process in it has gone: the worker has exited, but a
    /// child it left behind (killed with its process group) may take a moment to die. What
    /// is still there after a second is killed through `cgroup.kill` (Linux 5.14).
    pub(crate) fn remove_when_empty(self) {
        // Usually empty already (the worker's group was killed): then nothing waits on a task
        // that a primary about to exit might never run.
        if self.remove_now().is_ok() {
            return;
        }
        tokio::spawn(async move {
            for attempt in 0..50 {
                match self.remove_now() {
                    Ok(()) => return,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                    Err(_) if attempt == 20 => {
                        let _ = fs::write(self.dir.join("cgroup.kill"), "1");
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tracing::warn!("cannot remove the worker cgroup {}", self.dir.display());
        });
    }
}
