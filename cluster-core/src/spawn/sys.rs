//! The one place that runs code between fork and exec.
//!
//! Everything here runs in the forked child before `exec`, where only async-signal-safe
//! calls are allowed: no allocation, no locks.
#![allow(unsafe_code)]

use std::io;

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

/// Sends `signal` to process group `pgid`.
pub(crate) fn signal_group(pgid: u32, signal: Signal) -> io::Result<()> {
    let pid = i32::try_from(pgid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "invalid process group id"))?;
    rustix::process::kill_process_group(pid, signal).map_err(io::Error::from)
}
