//! The old primary's side: starting the successor with the front socket, waiting for its
//! word, and stopping it when it fails.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::time::Instant;

use super::{FDS_ENV, SuccessorCommand, UpgradeError, UpgradeOptions, Upgraded};

/// What the running cluster keeps to start a successor.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) command: SuccessorCommand,
    /// A duplicate of the front socket, closed when the cluster stops (so that the port is
    /// not held by a handle that outlives it).
    pub(crate) front: Mutex<Option<OwnedFd>>,
    /// Set once a new primary serves, before this cluster starts shutting down.
    pub(crate) handed_over: std::sync::atomic::AtomicBool,
}

impl Plan {
    /// Closes this copy of the front socket: the cluster has stopped.
    pub(crate) fn close(&self) {
        self.front.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }
}

/// Set by the supervisor when it shuts down for a handover: how long the proxy lets its
/// keep-alive clients go by themselves (each gets `Connection: close` on its next response)
/// before it closes the idle rest. Zero: an ordinary shutdown.
#[derive(Debug, Clone, Default)]
pub(crate) struct HandoverDrain(Arc<AtomicU64>);

impl HandoverDrain {
    /// Asks for the handover drain, `window` long.
    pub(crate) fn set(&self, window: Duration) {
        let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        self.0.store(ms, Ordering::Release);
    }

    /// The window, when the shutdown is a handover.
    pub(crate) fn window(&self) -> Option<Duration> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }
}

/// How long a successor that failed or timed out gets to stop by itself after SIGTERM before
/// it is killed.
const SUCCESSOR_STOP_GRACE: Duration = Duration::from_secs(20);

/// Starts the successor and waits until it is ready (`Ok`), or has failed or timed out (then
/// it is stopped, in the background).
pub(crate) async fn run(
    plan: &Plan,
    options: &UpgradeOptions,
    default_timeout: Duration,
) -> Result<Upgraded, UpgradeError> {
    let started = Instant::now();
    let program = options.binary.clone().unwrap_or_else(|| plan.command.program.clone());
    let spawn_error = |e: io::Error| UpgradeError::Spawn {
        binary: program.clone(),
        message: match e.kind() {
            io::ErrorKind::NotFound => "no such file (or not found in PATH)".into(),
            _ => e.to_string(),
        },
    };
    let (mut child, ready) = spawn(plan, &program).map_err(spawn_error)?;
    let pid = child.id().unwrap_or(0);
    let timeout = options.timeout.unwrap_or(default_timeout);
    tracing::info!(
        target: "cluster::upgrade",
        "new primary started (pid {pid}, {}); waiting up to {} s for its workers",
        program.display(),
        timeout.as_secs()
    );
    let mut ready = BufReader::new(ready);
    let mut line = String::new();
    let waited = tokio::time::timeout(timeout, wait_ready(&mut ready, &mut line, &mut child)).await;
    // Out of time: what it wrote until now still counts, and from now on it can write nothing
    // (its write fails with EPIPE, and it does not take over): both sides decide alike.
    let waited = match waited {
        Err(elapsed) => match last_word(&mut ready, &mut line).await {
            true => Ok(Ok(())),
            false => Err(elapsed),
        },
        Ok(outcome) => Ok(outcome),
    };
    match waited {
        Ok(Ok(())) => Ok(Upgraded {
            old_pid: std::process::id(),
            new_pid: pid,
            binary: program,
            took: started.elapsed(),
        }),
        Ok(Err(reason)) => {
            stop(child);
            Err(UpgradeError::Failed { pid, reason })
        }
        Err(_) => {
            stop(child);
            Err(UpgradeError::TimedOut { pid, timeout })
        }
    }
}

/// Starts `program` as the successor: fd 3 the front socket (with `LISTEN_*`), fd 4 the
/// readiness socket, the passed descriptors after it, named in `CLUSTER_UPGRADE_FDS`.
fn spawn(plan: &Plan, program: &Path) -> io::Result<(Child, tokio::net::UnixStream)> {
    let front = plan.front.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let front = front.as_ref().ok_or_else(|| io::Error::other("the front socket is closed"))?;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&plan.command.args).current_dir(&plan.command.cwd);
    cmd.envs(crate::spawn::LISTEN_ENV);
    let mut names = Vec::new();
    let passed = std::iter::once(("ready", theirs.as_fd()))
        .chain(plan.command.pass.iter().map(|(name, fd)| (name.as_str(), fd.as_fd())));
    for (target, (name, fd)) in (crate::spawn::LISTEN_FDS_START + 1..).zip(passed) {
        // Above the targets, so that no move overwrites another's source.
        let copy = rustix::io::fcntl_dupfd_cloexec(fd, 10)?;
        crate::spawn::pass_as_fd(&mut cmd, copy, target);
        names.push(format!("{name}:{target}"));
    }
    cmd.env(FDS_ENV, names.join(","));
    // Last: it snapshots the environment and execs with `LISTEN_PID` set.
    crate::spawn::exec_with_listener(&mut cmd, front.as_fd())?;
    let child = cmd.spawn()?;
    // The copies passed to the child are closed with `cmd`, ours of its end here.
    drop(cmd);
    drop(theirs);
    ours.set_nonblocking(true)?;
    Ok((child, tokio::net::UnixStream::from_std(ours)?))
}

/// After the timeout: shuts the readiness socket for reading, then reads what the successor
/// wrote before that; whether it is `READY=1`.
async fn last_word(ready: &mut BufReader<tokio::net::UnixStream>, line: &mut String) -> bool {
    let _ = socket2::SockRef::from(ready.get_ref()).shutdown(std::net::Shutdown::Read);
    // Buffered bytes are still read; then end of stream, at once.
    let _ = tokio::time::timeout(Duration::from_secs(1), ready.read_line(line)).await;
    line.trim() == "READY=1"
}

/// Reads the successor's word into `line`: `READY=1`, `ERROR=<reason>`, or nothing before it
/// exits.
async fn wait_ready(
    ready: &mut BufReader<tokio::net::UnixStream>,
    line: &mut String,
    child: &mut Child,
) -> Result<(), String> {
    let read = ready.read_line(line).await;
    let line = line.trim();
    if line == "READY=1" {
        return Ok(());
    }
    if let Some(reason) = line.strip_prefix("ERROR=") {
        return Err(reason.to_owned());
    }
    if let Err(e) = read {
        return Err(format!("cannot read its report: {e}"));
    }
    // No word: it exited (or closed the socket). Say how, if it is known soon.
    match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(Ok(status)) => Err(format!("it exited ({status}) before its workers were ready")),
        _ => Err("it closed its readiness socket without a word".into()),
    }
}

/// Stops a successor that will not take over: SIGTERM, SIGKILL after a grace, reaped in the
/// background. Before it takes over it owns no shared path, so its own shutdown touches
/// nothing of ours.
fn stop(mut child: Child) {
    if let Some(pid) = child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    tokio::spawn(async move {
        if tokio::time::timeout(SUCCESSOR_STOP_GRACE, child.wait()).await.is_err() {
            tracing::warn!(target: "cluster::upgrade", "the failed new primary did not stop within {} s; killing it", SUCCESSOR_STOP_GRACE.as_secs());
            let _ = child.kill().await;
        }
    });
}
