//! The one place that runs code between fork and exec.
//!
//! Everything here runs in the forked child before `exec`, where only async-signal-safe
//! calls are allowed: no allocation, no locks.
#![allow(unsafe_code)]

mod listen_pid;

use std::ffi::CString;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::resource::{Resource, setrlimit};
use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
use rustix::io::{FdFlags, dup2, fcntl_setfd};
use rustix::process::{Pid, Signal, getppid, set_parent_process_death_signal};

/// Arranges for the child to receive SIGKILL when the primary dies, however it dies.
///
/// Linux ties the parent-death signal to the *thread* that forked, so callers spawn from a
/// long-lived runtime thread (see [`Spawner`](super::Spawner)).
pub(crate) fn kill_when_parent_dies(cmd: &mut tokio::process::Command) {
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the child between fork and exec. It only calls prctl and
    // getppid through rustix (raw syscalls, async-signal-safe), and allocates nothing: the
    // error it may return is built from an errno value.
    unsafe {
        cmd.pre_exec(move || {
            set_parent_process_death_signal(Some(Signal::KILL))?;
            // The primary may have died between fork and prctl: then the signal will never
            // come, so refuse to start.
            if getppid() != Some(parent) {
                return Err(io::Error::from_raw_os_error(rustix::io::Errno::SRCH.raw_os_error()));
            }
            Ok(())
        });
    }
}

/// Makes `fd` the child's descriptor number `target`, open across exec, so that the program
/// finds it there (the Node IPC channel at fd 3). The primary's copy stays in `cmd` and is
/// closed when `cmd` is dropped after spawning.
///
/// `fd` must be close-on-exec and above the standard streams, which the child sets up before
/// this runs.
pub(crate) fn pass_as_fd(cmd: &mut tokio::process::Command, fd: OwnedFd, target: RawFd) {
    // SAFETY: the closure runs in the child between fork and exec and only makes two raw
    // syscalls through rustix (fcntl or dup2, async-signal-safe), allocating nothing. The
    // `OwnedFd` for `target` is never dropped (`ManuallyDrop`), so nothing closes it; it only
    // names the slot that dup2 atomically replaces, whether or not it was open, as rustix's
    // own `stdio::dup2_stdin` does for fd 0.
    unsafe {
        cmd.pre_exec(move || {
            if fd.as_raw_fd() == target {
                // dup2 onto itself would leave close-on-exec set.
                fcntl_setfd(&fd, FdFlags::empty())?;
            } else {
                let mut slot = ManuallyDrop::new(OwnedFd::from_raw_fd(target));
                dup2(&fd, &mut slot)?;
            }
            Ok(())
        });
    }
}

/// Passes the front socket `listener` (shared-socket mode) as the child's fd 3 and has the
/// child exec its program with `LISTEN_PID` set to its own pid; `LISTEN_FDS` and
/// `LISTEN_FDNAMES` are the caller's to set. Must be called after every other change to `cmd`
/// (its environment included) and after every other `pre_exec` closure was registered: the
/// closure registered here runs last and does not return when the exec succeeds.
///
/// # Errors
///
/// The OS error when the listener cannot be duplicated; `InvalidInput` for a NUL byte in the
/// command or its environment.
pub(crate) fn exec_with_listener(
    cmd: &mut tokio::process::Command,
    listener: BorrowedFd<'_>,
) -> io::Result<()> {
    // Above any descriptor another closure moves (the IPC channel goes to fd 4), so that
    // neither move overwrites the other's source.
    let copy = rustix::io::fcntl_dupfd_cloexec(listener, 10)?;
    pass_as_fd(cmd, copy, LISTEN_FDS_START);
    let mut plan = listen_pid::ExecWithPid::new(cmd.as_std())?;
    // SAFETY: the closure runs in the child between fork and exec, last of the closures. It
    // writes digits into a buffer allocated before the fork and calls execve(2), both
    // async-signal-safe; it allocates nothing (the error is built from an errno value).
    unsafe {
        cmd.pre_exec(move || Err(plan.exec()));
    }
    Ok(())
}

/// The first descriptor of the socket-activation protocol (`SD_LISTEN_FDS_START`).
pub(crate) const LISTEN_FDS_START: RawFd = 3;

/// Takes ownership of fd 3, once per process: `None` on any later call, or when fd 3 is not
/// open. The caller has checked that the socket-activation protocol gave it to us.
pub(crate) fn take_listen_fd() -> Option<OwnedFd> {
    static TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return None;
    }
    // SAFETY: fd 3 is only borrowed here, to check that it is open.
    let open = rustix::io::fcntl_getfd(unsafe { BorrowedFd::borrow_raw(LISTEN_FDS_START) });
    if open.is_err() {
        return None;
    }
    // SAFETY: by the protocol (checked by the caller: `LISTEN_PID` is our pid), fd 3 was
    // opened for this process and nothing else in it owns it; `TAKEN` makes this the only
    // owner ever created.
    Some(unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) })
}

/// Takes ownership of descriptor `raw`, inherited from the process that started this one and
/// named by it (a hot upgrade's `CLUSTER_UPGRADE_FDS`), and makes it close-on-exec so that no
/// worker inherits it. `None` when it is not open. The caller takes each number once.
pub(crate) fn take_inherited_fd(raw: RawFd) -> Option<OwnedFd> {
    // SAFETY: only borrowed to check that it is open.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    rustix::io::fcntl_getfd(borrowed).ok()?;
    fcntl_setfd(borrowed, FdFlags::CLOEXEC).ok()?;
    // SAFETY: the process that started us passed this descriptor for us to own (it names it
    // in the environment checked by the caller, with `LISTEN_PID` naming this process), and
    // nothing else in this process has taken it.
    Some(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Sends `signal` to process group `pgid`.
pub(crate) fn signal_group(pgid: u32, signal: Signal) -> io::Result<()> {
    let pid = i32::try_from(pgid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "invalid process group id"))?;
    rustix::process::kill_process_group(pid, signal).map_err(io::Error::from)
}

/// What [`confine`] does in the child, everything resolved and allocated before the fork.
#[derive(Debug, Default)]
pub(crate) struct Confinement {
    /// `cgroup.procs` of the worker's own cgroup: the child writes `0` (itself) to it.
    pub(crate) cgroup_procs: Option<CString>,
    /// Resource limits, each set as both soft and hard limit.
    pub(crate) rlimits: Vec<(Resource, u64)>,
    /// The CPUs the child may run on.
    pub(crate) cpus: Option<CpuSet>,
    /// The account to switch to.
    pub(crate) identity: Option<Identity>,
}

/// The ids a worker runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// Supplementary groups (the primary group among them), as `initgroups` would set them:
    /// looked up before the fork, since `initgroups` itself reads the group database.
    pub(crate) groups: Vec<Gid>,
    /// The primary group.
    pub(crate) gid: Gid,
    /// The user; `None` keeps the primary's (only `group` was set).
    pub(crate) uid: Option<Uid>,
}

/// Confines the child before it runs the program: joins its cgroup, sets its resource limits
/// and CPU affinity (all while it still has the primary's privileges), then drops to its
/// account: `setgroups`, `setgid`, `setuid`, in that order (after `setuid` the other two
/// would be refused). Last, it checks that the account can still search its working
/// directory, so that a directory only root can enter fails the spawn with `EACCES` instead
/// of a program that cannot read its own files.
///
/// Must be registered before [`kill_when_parent_dies`]: the kernel clears the parent-death
/// signal when the credentials change.
pub(crate) fn confine(cmd: &mut tokio::process::Command, confinement: Confinement) {
    // SAFETY: the closure runs in the child between fork and exec. It only reads data that
    // was allocated before the fork and makes raw system calls: open/write/close through
    // rustix (the `OwnedFd` closes on drop, no allocation), and setrlimit,
    // sched_setaffinity, setgroups, setgid and setuid through nix, each a direct libc call
    // (the child has a single thread, so glibc's all-threads setxid broadcast has no other
    // thread to signal). Errors are errno values, turned into `io::Error` without allocating.
    unsafe {
        cmd.pre_exec(move || {
            let c = &confinement;
            if let Some(procs) = &c.cgroup_procs {
                let file = rustix::fs::open(
                    procs.as_c_str(),
                    rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )?;
                rustix::io::write(&file, b"0")?;
            }
            for &(resource, limit) in &c.rlimits {
                setrlimit(resource, limit, limit)?;
            }
            if let Some(cpus) = &c.cpus {
                sched_setaffinity(nix::unistd::Pid::from_raw(0), cpus)?;
            }
            if let Some(id) = &c.identity {
                setgroups(&id.groups)?;
                setgid(id.gid)?;
                if let Some(uid) = id.uid {
                    setuid(uid)?;
                }
                rustix::fs::access(c".", rustix::fs::Access::EXEC_OK)?;
            }
            Ok(())
        });
    }
}
