//! Hot upgrade of the primary: a new primary process (a new build of the binary) takes over
//! the front socket from the running one, starts its own workers, and only once they are ready
//! does the old primary stop accepting, drain and exit. No connection is refused meanwhile:
//! the listening socket is never closed, only passed on, so connections that arrive during the
//! handover wait in its queue for whichever primary accepts next.
//!
//! The protocol between the two primaries:
//!
//! - The old one starts the successor ([`SuccessorCommand`]: the same program as it was
//!   started with, found again now so that a replaced file is picked up, with the same
//!   arguments, working directory and environment), with the front socket as fd 3,
//!   `LISTEN_FDS=1`, `LISTEN_FDNAMES=http` and `LISTEN_PID` set to the successor's pid, as
//!   socket activation passes it: the successor takes it through the same path
//!   ([`inherited_listener`](crate::inherited_listener)).
//! - `CLUSTER_UPGRADE_FDS` names the other descriptors passed (`ready:4,pidfile:5`): `ready`
//!   is a Unix stream socket on which the successor writes `READY=1` once its workers are
//!   ready (or `ERROR=<reason>` when it cannot start); the embedder's own (the binary passes
//!   its locked pid file, so the lock is held across the handover) follow.
//! - On `READY=1` the old primary publishes [`ClusterEvent::UpgradeFinished`] and shuts down
//!   gracefully, letting its keep-alive clients go (each gets `Connection: close` on its next
//!   response); on an error, an early exit or no word within the timeout, the successor is
//!   stopped and the old primary keeps serving
//!   ([`ClusterEvent::UpgradeFailed`], [`UpgradeError`]).
//!
//!
//! # Supporting upgrades in your own binary
//!
//! One `main` plays both parts, as `cluster start` does. The old side makes its cluster
//! [`upgradable`](crate::ClusterBuilder::upgradable) with the command that starts this binary
//! again ([`SuccessorCommand::current_process`]) and, when a deploy asks, calls
//! [`ClusterHandle::upgrade`](crate::ClusterHandle::upgrade) (SIGURG does the same through
//! [`forward_signals`](crate::forward_signals)); its `run` returns once it has handed over
//! and drained. The new side, started that way, finds [`Successor::from_env`]: its cluster
//! takes the front socket by itself and accepts once its workers are ready; `main` then tells
//! the old primary with [`Successor::ready`] (or why it cannot start, with
//! [`Successor::failed`]). Shared paths (a pid file, a control socket) are taken over only
//! after `ready` succeeds; descriptors such as a locked pid file travel with
//! [`SuccessorCommand::pass`] and [`Successor::take`].
//!
//! ```no_run
//! use cluster_core::config::ClusterSpec;
//! use cluster_core::upgrade::{self, Successor, SuccessorCommand, UpgradeOptions};
//! use cluster_core::{Cluster, ClusterHandle, ShutdownMode, forward_signals};
//!
//! # async fn example(spec: ClusterSpec) -> Result<(), Box<dyn std::error::Error>> {
//! // First: was this process started by an upgrade? (Only the first call answers.)
//! let successor = Successor::from_env();
//! let built = Cluster::builder(spec)
//!     .upgradable(SuccessorCommand::current_process()?) // this binary, found again then
//!     .build()
//!     .await;
//! let cluster = match built {
//!     Ok(cluster) => cluster,
//!     Err(e) => {
//!         if let Some(successor) = &successor {
//!             let _ = successor.failed(&e.to_string()); // the old primary keeps serving
//!         }
//!         return Err(e.into());
//!     }
//! };
//! let handle = cluster.handle();
//! if let Some(successor) = successor {
//!     // New side: once every worker is ready, the old primary may go.
//!     let handle = handle.clone();
//!     tokio::spawn(async move {
//!         if upgrade::until_workers_ready(&handle).await && successor.ready().is_err() {
//!             // The old primary gave up waiting and keeps serving: this one leaves.
//!             let _ = handle.shutdown(ShutdownMode::Graceful);
//!         }
//!     });
//! }
//! tokio::spawn(forward_signals(handle.clone())); // SIGURG: upgrade
//! cluster.run().await?; // returns once drained, after a handover too
//! # Ok(())
//! # }
//!
//! // Old side, when a deploy asks (an admin route, a command of your own):
//! async fn deploy(handle: &ClusterHandle) {
//!     match handle.upgrade(UpgradeOptions::default()).await {
//!         Ok(done) => println!("pid {} serves; this primary drains and exits", done.new_pid),
//!         Err(e) => eprintln!("not upgraded, still serving: {e}"),
//!     }
//! }
//! ```
//!
//! [`ClusterEvent::UpgradeFinished`]: crate::ClusterEvent::UpgradeFinished
//! [`ClusterEvent::UpgradeFailed`]: crate::ClusterEvent::UpgradeFailed

mod command;
mod handover;
mod successor;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use command::SuccessorCommand;
pub(crate) use handover::{HandoverDrain, Plan, run};
pub use successor::{Successor, SuccessorError};

/// Waits until as many workers are ready as are wanted: `true`, or `false` when the cluster
/// shuts down or stops first. A new primary accepts on the front socket, and takes over, only
/// then: until that moment the old primary serves every connection.
///
/// # Examples
///
/// ```no_run
/// use cluster_core::ClusterHandle;
/// use cluster_core::upgrade::until_workers_ready;
///
/// # async fn example(handle: ClusterHandle) {
/// if until_workers_ready(&handle).await {
///     println!("every worker is ready");
/// } else {
///     println!("the cluster stopped first");
/// }
/// # }
/// ```
pub async fn until_workers_ready(handle: &crate::ClusterHandle) -> bool {
    let mut events = handle.subscribe();
    loop {
        match handle.status().await {
            Ok(s) if s.shutting_down => return false,
            Ok(s) if s.desired_workers > 0 && s.ready_workers >= s.desired_workers => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
        // Re-read the counts after any event, or now and then.
        let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
    }
}

/// Whether this process is a new primary started by a hot upgrade (it then accepts only
/// once its workers are ready).
pub(crate) fn started_by_upgrade() -> bool {
    std::env::var_os(FDS_ENV).is_some() && crate::spawn::listen_pid_is_ours()
}

/// The variable naming the descriptors an old primary passed to its successor.
pub(crate) const FDS_ENV: &str = "CLUSTER_UPGRADE_FDS";

/// How to upgrade; the defaults suit most cases.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::upgrade::UpgradeOptions;
///
/// // The default: the program the primary was started from, found again now.
/// assert_eq!(UpgradeOptions::default().binary, None);
///
/// let options = UpgradeOptions::default()
///     .binary("/srv/app/releases/42/server")
///     .timeout(Duration::from_secs(90));
/// assert_eq!(options.timeout, Some(Duration::from_secs(90)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeOptions {
    /// Run this program instead of the one the primary was started from.
    pub binary: Option<PathBuf>,
    /// Longest wait for the successor's workers to be ready (default: `startTimeout` plus
    /// 30 s).
    pub timeout: Option<Duration>,
}

impl UpgradeOptions {
    /// Runs `binary` as the new primary instead of the program the primary was started from.
    #[must_use]
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = Some(binary.into());
        self
    }

    /// Waits at most `timeout` for the new primary's workers.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A completed handover: the new primary serves, this one drains and exits.
///
/// Serialized with the keys `oldPid`, `newPid`, `binary` and `tookMs`, as the admin API
/// answers `POST /upgrade`.
///
/// # Examples
///
/// ```no_run
/// use cluster_core::ClusterHandle;
/// use cluster_core::upgrade::UpgradeOptions;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), Box<dyn std::error::Error>> {
/// let done = handle.upgrade(UpgradeOptions::default()).await?;
/// println!(
///     "pid {} ({}) took over from pid {} in {:?}",
///     done.new_pid,
///     done.binary.display(),
///     done.old_pid,
///     done.took
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Upgraded {
    /// This (the old) primary's pid.
    pub old_pid: u32,
    /// The new primary's pid.
    pub new_pid: u32,
    /// The program it runs, as given to `execve` (a bare name was searched in `PATH`).
    pub binary: PathBuf,
    /// Time from the start of the upgrade until the new primary's workers were ready.
    #[serde(serialize_with = "crate::events::millis", rename = "tookMs")]
    pub took: Duration,
}

/// An upgrade that did not happen: this primary keeps serving as before.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::upgrade::UpgradeError;
///
/// let error = UpgradeError::TimedOut { pid: 4242, timeout: Duration::from_secs(90) };
/// assert_eq!(
///     error.to_string(),
///     "the new primary (pid 4242) was not ready within 90 s; it was stopped"
/// );
/// // Refused before anything started, or failed on the way?
/// let refused = matches!(
///     error,
///     UpgradeError::Pid1 | UpgradeError::NotUpgradable | UpgradeError::Refused(_)
/// );
/// assert!(!refused);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The primary is the container's init process (PID 1): when it exits the container
    /// ends, so it cannot hand over to a successor.
    #[error(
        "the primary runs as PID 1 (a container's init): it cannot hand over to a new primary, since the container ends when it exits; replace the container instead (a rolling update), or run `cluster` under an init such as `tini` or `docker run --init`"
    )]
    Pid1,
    /// The cluster was built without [`ClusterBuilder::upgradable`](crate::ClusterBuilder::upgradable).
    #[error("this cluster cannot be upgraded: it was built without a successor command")]
    NotUpgradable,
    /// Another operation (or upgrade) is under way, or the cluster is shutting down.
    #[error(transparent)]
    Refused(#[from] crate::ControlError),
    /// The new primary could not be started.
    #[error("cannot start the new primary {binary}: {message}")]
    Spawn {
        /// The program.
        binary: PathBuf,
        /// The OS error, for people.
        message: String,
    },
    /// The new primary failed before its workers were ready (it said why, or exited).
    #[error("the new primary (pid {pid}) failed: {reason}")]
    Failed {
        /// Its pid.
        pid: u32,
        /// What it said, or how it exited.
        reason: String,
    },
    /// The new primary's workers were not ready in time; it was stopped.
    #[error("the new primary (pid {pid}) was not ready within {} s; it was stopped", .timeout.as_secs())]
    TimedOut {
        /// Its pid.
        pid: u32,
        /// The time it had.
        timeout: Duration,
    },
}
