//! The guardian: a tiny helper process that kills every worker process group if the primary
//! dies, however it dies.
//!
//! The parent-death signal set on each worker reaches only the worker process itself. A
//! worker started as `npm start` or `sh -c ...` has children of its own, which would outlive
//! a primary killed with SIGKILL. The guardian closes that gap: the primary tells it, over a
//! pipe, the process group of every worker it starts (`+PGID`) and of every worker that has
//! exited (`-PGID`). When the pipe reaches end-of-file — the primary has exited or died —
//! the guardian sends SIGKILL to every group still listed and exits. It runs in its own
//! process group, so a Ctrl-C in the terminal does not reach it before it is needed.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use rustix::process::Signal;

use super::sys;

/// The primary's side of the guardian: a pipe to the guardian process.
///
/// Deliberately not `Clone`: share it in an `Arc`; the pipe must close exactly once, when the
/// primary exits or calls [`finish`](Self::finish).
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use cluster_core::{Guardian, ProcessSpawner, run_guardian};
///
/// # fn example() -> std::io::Result<()> {
/// if std::env::args().nth(1).as_deref() == Some("__guardian") {
///     return run_guardian(); // this copy of the binary is the guardian
/// }
/// let guardian = Arc::new(Guardian::start(&std::env::current_exe()?, &["__guardian"])?);
/// println!("guardian pid {}", guardian.pid());
/// let spawner = ProcessSpawner::new("node", ["build"]).guardian(Arc::clone(&guardian));
/// // ... run the cluster with `spawner` ...
/// # drop(spawner);
/// guardian.finish()?; // every worker has exited: nothing left to guard
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Guardian {
    pipe: Mutex<Option<ChildStdin>>,
    child: Mutex<Child>,
    pid: u32,
}

impl Guardian {
    /// Starts `program` with `args` as the guardian. That program must call
    /// [`run_guardian`] (the `cluster` binary does so for its hidden `__guardian`
    /// subcommand).
    ///
    /// # Errors
    ///
    /// The OS error when the process cannot be started.
    pub fn start(program: &Path, args: &[&str]) -> io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()?;
        let pipe = child.stdin.take().ok_or_else(|| io::Error::other("guardian has no stdin"))?;
        let pid = child.id();
        Ok(Self { pipe: Mutex::new(Some(pipe)), child: Mutex::new(child), pid })
    }

    /// The guardian's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Ends the guardian after a clean stop: closes the pipe (it kills any group still listed,
    /// normally none, and exits) and waits for it, so that it is not left as a zombie for init
    /// to reap. Blocks for as long as the guardian takes to exit (a few milliseconds).
    ///
    /// # Errors
    ///
    /// The OS error if waiting fails.
    pub fn finish(&self) -> io::Result<std::process::ExitStatus> {
        drop(self.pipe.lock().unwrap_or_else(|p| p.into_inner()).take());
        self.child.lock().unwrap_or_else(|p| p.into_inner()).wait()
    }

    /// Asks the guardian to kill process group `pgid` if the primary dies.
    pub(crate) fn watch(&self, pgid: u32) {
        self.send('+', pgid);
    }

    /// Tells the guardian that process group `pgid` is gone.
    pub(crate) fn unwatch(&self, pgid: u32) {
        self.send('-', pgid);
    }

    fn send(&self, op: char, pgid: u32) {
        let line = format!("{op}{pgid}\n");
        let mut pipe = self.pipe.lock().unwrap_or_else(|p| p.into_inner());
        let Some(pipe) = pipe.as_mut() else { return };
        if let Err(e) = pipe.write_all(line.as_bytes()) {
            tracing::warn!(
                "guardian unreachable ({e}); workers rely on the parent-death signal alone"
            );
        }
    }
}

/// The guardian process's main loop: reads `+PGID`/`-PGID` lines from stdin until it
/// closes, then sends SIGKILL to every group still listed.
///
/// SIGINT, SIGTERM and SIGHUP are ignored by the guardian's own process group placement
/// (terminal signals do not reach it); only the end of its input ends it.
///
/// # Errors
///
/// The OS error if stdin cannot be read.
///
/// # Examples
///
/// ```no_run
/// fn main() -> std::io::Result<()> {
///     if std::env::args().nth(1).as_deref() == Some("__guardian") {
///         return cluster_core::run_guardian();
///     }
///     // ... the primary: `Guardian::start(&current_exe, &["__guardian"])` ...
///     Ok(())
/// }
/// ```
pub fn run_guardian() -> io::Result<()> {
    let mut groups = BTreeSet::new();
    let stdin = io::stdin();
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(_) => break,
        };
        let (op, pgid) = line.split_at(line.len().min(1));
        let Ok(pgid) = pgid.parse::<u32>() else { continue };
        match op {
            "+" => {
                groups.insert(pgid);
            }
            "-" => {
                groups.remove(&pgid);
            }
            _ => {}
        }
    }
    for pgid in groups {
        let _ = sys::signal_group(pgid, Signal::KILL);
    }
    Ok(())
}
