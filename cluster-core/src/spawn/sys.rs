//! The one place that runs code between fork and exec.
//!
//! Everything here runs in the forked child before `exec`, where only async-signal-safe
//! calls are allowed: no allocation, no locks.
#![allow(unsafe_code)]

use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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

/// Sends `signal` to process group `pgid`.
pub(crate) fn signal_group(pgid: u32, signal: Signal) -> io::Result<()> {
    let pid = i32::try_from(pgid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "invalid process group id"))?;
    rustix::process::kill_process_group(pid, signal).map_err(io::Error::from)
}
