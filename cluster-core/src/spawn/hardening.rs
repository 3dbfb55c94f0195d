//! [`WorkerHardening`]: the hardening settings made ready for spawning.
//!
//! Everything that reads a database, a file or allocates is done here, in the primary:
//! once when the hardening is prepared (the supplementary groups, the CPUs the primary may
//! use, the cgroup parent) and before each fork (the worker's CPU and its cgroup). The
//! child then only makes system calls (`sys::confine`).

use std::ffi::CString;
use std::fmt;
use std::io;

use nix::sched::{CpuSet, sched_getaffinity};
use nix::sys::resource::{Resource, getrlimit};
use nix::unistd::{Gid, Pid, Uid, getgrouplist};

use super::WorkerSpec;
use super::cgroup::{self, CgroupParent, WorkerCgroup};
use super::sys::{self, Confinement, Identity};
use crate::config::{HardeningSpec, LimitValue, WorkerUser};

/// How workers are confined, ready to apply to each spawn: see
/// [`HardeningSpec`] for the settings.
///
/// Prepare it once with [`prepare`](Self::prepare) (at start, and again for a reloaded
/// configuration), log its [`notices`](Self::notices), and hand it to a spawner with
/// [`Spawner::with_hardening`](super::Spawner::with_hardening) or
/// [`ProcessSpawner::hardening`](super::ProcessSpawner::hardening). Share it in an `Arc`.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::{ProcessSpawner, WorkerHardening};
///
/// let spec = ClusterSpec::default(); // with `hardening` set by the embedder or the file
/// let hardening = WorkerHardening::prepare(&spec.hardening)?;
/// for notice in hardening.notices() {
///     eprintln!("{notice}");
/// }
/// if let Some(cpu) = hardening.cpu_for_slot(0) {
///     println!("worker slot 0 runs on CPU {cpu}");
/// }
/// assert_eq!(hardening.spec(), &spec.hardening);
/// let spawner = ProcessSpawner::new("./server", ["--port-from-env"]).hardening(Arc::new(hardening));
/// # Ok::<(), cluster_core::HardeningError>(())
/// ```
pub struct WorkerHardening {
    spec: HardeningSpec,
    identity: Option<Identity>,
    /// `HOME`, `USER` and `LOGNAME` of the account the workers run as.
    account_env: AccountEnv,
    /// The CPUs the primary may run on, in order.
    cpus: Vec<usize>,
    cgroup: Option<CgroupParent>,
    notices: Vec<String>,
}

/// The hardening settings cannot be applied.
///
/// # Examples
///
/// ```
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::{Cluster, ClusterError, HardeningError};
///
/// # async fn example(spec: ClusterSpec) {
/// match Cluster::builder(spec).build().await {
///     Err(ClusterError::Hardening(HardeningError::NotRoot { key, .. })) => {
///         eprintln!("`{key}` needs the primary to run as root")
///     }
///     Err(other) => eprintln!("{other}"),
///     Ok(cluster) => drop(cluster),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HardeningError {
    /// `user` or `group` names another account, and the primary is not root.
    #[error(
        "`{key}` is set to {wanted}, but the primary runs as uid {uid}, not as root: only root \
         can run workers as another account"
    )]
    NotRoot {
        /// `user` or `group`.
        key: &'static str,
        /// The account asked for.
        wanted: String,
        /// The primary's effective user id.
        uid: u32,
    },
    /// A limit above the primary's own hard limit, which only root can raise.
    #[error(
        "`{key}` is set to {wanted}, above the primary's hard limit {hard}: only root can raise \
         it"
    )]
    AboveHardLimit {
        /// `limits.nofile` or `limits.core`.
        key: &'static str,
        /// The value asked for.
        wanted: LimitValue,
        /// The primary's hard limit.
        hard: LimitValue,
    },
    /// The supplementary groups of `user` could not be read.
    #[error("cannot read the groups of user {user} from the group database: {source}")]
    Groups {
        /// The user.
        user: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The CPUs the primary may run on could not be read (for `cpuAffinity`).
    #[error("cpuAffinity: cannot read the primary's CPU affinity: {source}")]
    Affinity {
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl WorkerHardening {
    /// Resolves what `spec` needs before any worker is forked: the user's supplementary
    /// groups, the CPUs the primary may use, and the cgroup the worker groups go in (where
    /// that is impossible, a notice says why and workers run without `memory.max`).
    ///
    /// # Errors
    ///
    /// [`HardeningError::NotRoot`] when `user` or `group` is another account and the
    /// primary is not root; [`HardeningError::AboveHardLimit`] when a limit is above the
    /// primary's own hard limit and the primary is not root; [`HardeningError::Groups`] or [`HardeningError::Affinity`] when
    /// the OS cannot tell.
    pub fn prepare(spec: &HardeningSpec) -> Result<Self, HardeningError> {
        let (identity, account_env) = identity(spec)?;
        let nofile = spec.nofile.map(LimitValue::Max);
        within_hard_limit("limits.nofile", Resource::RLIMIT_NOFILE, nofile)?;
        within_hard_limit("limits.core", Resource::RLIMIT_CORE, spec.core)?;
        let cpus = if spec.cpu_affinity {
            let set = sched_getaffinity(Pid::from_raw(0))
                .map_err(|e| HardeningError::Affinity { source: e.into() })?;
            (0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false)).collect()
        } else {
            Vec::new()
        };
        let mut notices = Vec::new();
        let cgroup = match spec.memory_max {
            None => None,
            Some(_) => match cgroup::detect() {
                Ok(parent) => Some(parent),
                Err(reason) => {
                    notices.push(format!(
                        "limits.memoryMax is not applied: {reason}; workers run without a \
                         cgroup memory limit (maxMemoryUsage and health.hardMemoryLimit \
                         still apply)"
                    ));
                    None
                }
            },
        };
        Ok(Self { spec: spec.clone(), identity, account_env, cpus, cgroup, notices })
    }

    /// What could not be applied here and is skipped (one line each, for the log at start).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The settings this was prepared from.
    pub fn spec(&self) -> &HardeningSpec {
        &self.spec
    }

    /// The CPU worker slot `slot` is pinned to, when `cpuAffinity` is on.
    pub fn cpu_for_slot(&self, slot: usize) -> Option<usize> {
        (!self.cpus.is_empty()).then(|| self.cpus[slot % self.cpus.len()])
    }

    /// Sets up `cmd` to confine the worker of `spec`: the account's environment, and the
    /// steps the child takes before exec. Returns the worker's cgroup, if it has one, which
    /// the caller removes once the worker has exited.
    pub(crate) fn apply(
        &self,
        cmd: &mut tokio::process::Command,
        spec: &WorkerSpec,
    ) -> Option<WorkerCgroup> {
        cmd.envs(self.account_env.iter().map(|(k, v)| (*k, v.as_str())));
        let mut confinement =
            Confinement { identity: self.identity.clone(), ..Confinement::default() };
        if let Some(n) = self.spec.nofile {
            confinement.rlimits.push((Resource::RLIMIT_NOFILE, n));
        }
        if let Some(core) = self.spec.core {
            confinement.rlimits.push((Resource::RLIMIT_CORE, core.as_rlim()));
        }
        if let Some(cpu) = self.cpu_for_slot(spec.slot) {
            let mut set = CpuSet::new();
            if set.set(cpu).is_ok() {
                confinement.cpus = Some(set);
            }
        }
        let group = match (&self.cgroup, self.spec.memory_max) {
            (Some(parent), Some(bytes)) => match parent.create(&format!("w{}", spec.id), bytes) {
                Ok(group) => Some(group),
                Err(e) => {
                    tracing::warn!(
                        "worker slot {}: cannot create its cgroup in {} ({e}); it runs \
                         without limits.memoryMax",
                        spec.slot,
                        parent.dir().display()
                    );
                    None
                }
            },
            _ => None,
        };
        confinement.cgroup_procs = group.as_ref().map(WorkerCgroup::procs);
        sys::confine(cmd, confinement);
        group
    }

    /// The account the workers run as, for messages: `nobody (65534)`.
    pub(crate) fn account(&self) -> Option<String> {
        let user = self.spec.user.as_ref().map(ToString::to_string);
        user.or_else(|| self.spec.group.as_ref().map(|g| format!("group {g}")))
    }
}

impl fmt::Debug for WorkerHardening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHardening")
            .field("spec", &self.spec)
            .field("identity", &self.identity)
            .field("cpus", &self.cpus)
            .field("cgroup", &self.cgroup)
            .field("notices", &self.notices)
            .finish()
    }
}

/// Only root may raise a hard limit: a primary that is not root cannot give its workers more
/// than its own, and says so at start rather than failing every spawn.
fn within_hard_limit(
    key: &'static str,
    resource: Resource,
    wanted: Option<LimitValue>,
) -> Result<(), HardeningError> {
    let Some(wanted) = wanted else { return Ok(()) };
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let Ok((_, hard)) = getrlimit(resource) else { return Ok(()) };
    let infinity = nix::sys::resource::RLIM_INFINITY;
    if hard != infinity && (wanted.as_rlim() == infinity || wanted.as_rlim() > hard) {
        return Err(HardeningError::AboveHardLimit { key, wanted, hard: LimitValue::Max(hard) });
    }
    Ok(())
}

/// `HOME`, `USER` and `LOGNAME` of an account.
type AccountEnv = Vec<(&'static str, String)>;

/// The ids (with the supplementary groups, as `initgroups` would set them) and the
/// environment of the account `spec` names; `None` when it names none or the primary's own.
fn identity(spec: &HardeningSpec) -> Result<(Option<Identity>, AccountEnv), HardeningError> {
    if spec.user.is_none() && spec.group.is_none() {
        return Ok((None, Vec::new()));
    }
    let euid = nix::unistd::geteuid();
    let egid = nix::unistd::getegid();
    let gid = spec.group.as_ref().map(|g| g.gid).or(spec.user.as_ref().map(|u| u.gid));
    let same = spec.user.as_ref().is_none_or(|u| u.uid == euid.as_raw())
        && gid.is_none_or(|g| g == egid.as_raw());
    if !euid.is_root() {
        if same {
            // Nothing to change, and nothing an unprivileged primary could change.
            return Ok((None, Vec::new()));
        }
        let (key, wanted) = match (&spec.user, &spec.group) {
            (Some(u), _) if u.uid != euid.as_raw() => ("user", u.to_string()),
            (_, Some(g)) => ("group", g.to_string()),
            (Some(u), None) => ("user", u.to_string()),
            (None, None) => unreachable!("checked above"),
        };
        return Err(HardeningError::NotRoot { key, wanted, uid: euid.as_raw() });
    }
    let gid = Gid::from_raw(gid.unwrap_or(egid.as_raw()));
    let Some(user) = &spec.user else {
        return Ok((Some(Identity { groups: vec![gid], gid, uid: None }), Vec::new()));
    };
    let groups = supplementary_groups(user, gid)?;
    let mut env = Vec::new();
    if let Ok(Some(entry)) = nix::unistd::User::from_uid(Uid::from_raw(user.uid)) {
        env.push(("HOME", entry.dir.display().to_string()));
        env.push(("USER", entry.name.clone()));
        env.push(("LOGNAME", entry.name));
    }
    Ok((Some(Identity { groups, gid, uid: Some(Uid::from_raw(user.uid)) }), env))
}

/// The groups `user` belongs to in the group database, with `gid` first.
fn supplementary_groups(user: &WorkerUser, gid: Gid) -> Result<Vec<Gid>, HardeningError> {
    let Some(name) = &user.name else { return Ok(vec![gid]) };
    let failed = |source: io::Error| HardeningError::Groups { user: name.clone(), source };
    let cname = CString::new(name.as_str())
        .map_err(|_| failed(io::Error::from(io::ErrorKind::InvalidInput)))?;
    let mut groups = getgrouplist(&cname, gid).map_err(|e| failed(e.into()))?;
    groups.retain(|&g| g != gid);
    groups.insert(0, gid);
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::WorkerGroup;
    use crate::spawn::{ProcessSpawner, Spawner};

    fn nobody() -> HardeningSpec {
        HardeningSpec {
            user: Some(WorkerUser { name: Some("nobody".into()), uid: 65534, gid: 65534 }),
            group: Some(WorkerGroup { name: Some("nogroup".into()), gid: 65534 }),
            nofile: Some(512),
            core: Some(LimitValue::Max(0)),
            ..HardeningSpec::default()
        }
    }

    #[test]
    fn slots_take_the_allowed_cpus_round_robin() {
        let spec = HardeningSpec { cpu_affinity: true, ..HardeningSpec::default() };
        let h = WorkerHardening::prepare(&spec).expect("prepare");
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(h.cpus.len(), n, "every CPU this process may use");
        for slot in 0..2 * n {
            assert_eq!(h.cpu_for_slot(slot), Some(h.cpus[slot % n]));
        }
        let off = WorkerHardening::prepare(&HardeningSpec::default()).expect("prepare");
        assert_eq!(off.cpu_for_slot(0), None);
        assert!(off.notices().is_empty());
    }

    /// The worker reports, over its IPC channel, what it got: the parent-death signal must
    /// survive the change of account (the kernel clears it on a credential change, so it is
    /// set after the change), and the ids and limits must be the configured ones.
    #[tokio::test]
    async fn the_account_changes_before_the_parent_death_signal_is_set() {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root to run a worker as nobody");
            return;
        }
        if std::process::Command::new("python3").arg("-V").output().is_err() {
            assert!(std::env::var_os("CI").is_none(), "python3 is missing in CI");
            println!("skipped: no python3 to read the parent-death signal");
            return;
        }
        let script = r#"
import ctypes, os, resource
sig = ctypes.c_int()
ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG
nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
os.write(3, f"{sig.value} {os.getuid()} {os.getgid()} {os.getgroups()} {nofile}".encode())
"#;
        let hardening = Arc::new(WorkerHardening::prepare(&nobody()).expect("prepare"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let spawner = ProcessSpawner::new("python3", ["-c", script])
            .current_dir(dir.path())
            .hardening(hardening);
        let spec = WorkerSpec {
            id: 1,
            slot: 0,
            generation: 1,
            endpoint: crate::endpoint::Endpoint::Tcp(([127, 0, 0, 1], 4000).into()),
            notify_socket: None,
            watchdog: None,
            node_ipc: Some(true),
            listener: None,
        };
        let mut process = spawner.spawn(&spec).expect("spawn python3");
        let mut channel = process.take_ipc_channel().expect("channel");
        channel.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut out = String::new();
        channel.read_to_string(&mut out).unwrap();
        assert_eq!(process.wait().await.unwrap().code, Some(0));
        assert_eq!(out, "9 65534 65534 [65534] (512, 512)");
    }
}
