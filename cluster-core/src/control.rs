//! What the control path answers: the results and errors of [`ClusterHandle`] operations.
//!
//! [`ClusterHandle`]: crate::ClusterHandle

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;

use crate::config::ConfigChange;

/// How shutdown should proceed.
///
/// # Examples
///
/// ```
/// use cluster_core::{ClusterHandle, ShutdownMode};
///
/// # fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// handle.shutdown(ShutdownMode::Graceful)?; // drain, then stop the workers
/// handle.shutdown(ShutdownMode::Immediate)?; // a second Ctrl-C: stop now
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShutdownMode {
    /// Stop accepting, let in-flight requests finish (up to the graceful timeout), SIGTERM
    /// the workers, SIGKILL those still alive at the deadline.
    Graceful,
    /// SIGKILL every worker now.
    Immediate,
}

/// An operation was refused. Nothing changed.
///
/// # Examples
///
/// ```
/// use cluster_core::{ClusterHandle, ControlError};
///
/// # async fn example(handle: ClusterHandle) {
/// match handle.scale(64).await {
///     Ok(scaled) => println!("{} -> {} workers", scaled.from, scaled.to),
///     Err(ControlError::OutOfRange { min, max, .. }) => eprintln!("between {min} and {max}"),
///     Err(ControlError::Busy { operation }) => eprintln!("later: {operation} is under way"),
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The worker count asked for is outside `scaling.minWorkers..=scaling.maxWorkers`.
    #[error(
        "cannot run {requested} workers: the count must stay between scaling.minWorkers ({min}) and scaling.maxWorkers ({max})"
    )]
    OutOfRange {
        /// The count asked for.
        requested: usize,
        /// `scaling.minWorkers`.
        min: usize,
        /// `scaling.maxWorkers`.
        max: usize,
    },
    /// Another operation is under way; operations never interleave.
    #[error("busy: {operation} is under way")]
    Busy {
        /// The operation under way, for people (`rolling restart #2 (1 of 4 replaced)`).
        operation: String,
    },
    /// The cluster is shutting down.
    #[error("the cluster is shutting down")]
    ShuttingDown,
    /// No live worker has this id.
    #[error("no worker with id {worker_id}")]
    NoSuchWorker {
        /// The id asked for.
        worker_id: u64,
    },
    /// The worker is not serving (starting, or already leaving), so there is nothing to
    /// replace.
    #[error("worker {worker_id} is {state}, not serving")]
    NotServing {
        /// The worker.
        worker_id: u64,
        /// Its lifecycle state or rotation, for people.
        state: String,
    },
    /// The configuration could not be reloaded (the file is invalid); the running one is kept.
    #[error("configuration not reloaded: {message}")]
    Config {
        /// The configuration error, for people.
        message: String,
    },
    /// This handle's cluster has no configuration source to reload from (see
    /// [`ClusterBuilder::config_source`](crate::ClusterBuilder::config_source)).
    #[error("this cluster has no configuration file to reload")]
    NoConfigSource,
    /// The cluster has stopped.
    #[error("the cluster is no longer running")]
    Gone,
}

/// The worker count changed (see [`ClusterHandle::scale`](crate::ClusterHandle::scale)).
///
/// # Examples
///
/// ```
/// use cluster_core::{ClusterHandle, Scaled};
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ControlError> {
/// let Scaled { from, to, .. } = handle.scale_by(2).await?;
/// assert_eq!(to, from + 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Scaled {
    /// The count before.
    pub from: usize,
    /// The count now: new slots start at once and enter rotation when ready; removed slots
    /// leave rotation at once, drain and stop.
    pub to: usize,
}

/// Which kind of operation replaces the workers.
///
/// # Examples
///
/// ```
/// use cluster_core::{ClusterHandle, OperationKind};
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ControlError> {
/// let operation = handle.rolling_restart().await?;
/// assert_eq!(operation.kind(), OperationKind::RollingRestart);
/// assert_eq!(OperationKind::RollingRestart.to_string(), "rolling restart");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OperationKind {
    /// One worker (or `rollingRestart.maxSurge`) at a time, never fewer ready than before.
    RollingRestart,
    /// Every worker at once: capacity dips while the new ones start.
    Restart,
    /// Returns the workers a failed rolling restart had already replaced to the previous
    /// generation.
    Rollback,
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OperationKind::RollingRestart => "rolling restart",
            OperationKind::Restart => "restart",
            OperationKind::Rollback => "rollback",
        })
    }
}

/// An operation under way, as returned when it starts. Its progress comes as
/// [`ClusterEvent`](crate::ClusterEvent)s carrying its [`id`](Self::id); its outcome from
/// [`finished`](Self::finished).
///
/// # Examples
///
/// ```
/// use cluster_core::{ClusterHandle, OperationError};
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ControlError> {
/// let operation = handle.rolling_restart().await?; // accepted: it runs in the background
/// println!("operation {} ({}) over {} workers", operation.id(), operation.kind(), operation.workers());
/// match operation.finished().await {
///     Ok(report) => println!("{} replaced in {:?}", report.replaced, report.took),
///     Err(OperationError::Failed { reason, rolled_back, .. }) => {
///         eprintln!("failed: {reason}; {rolled_back} workers rolled back")
///     }
///     Err(e) => eprintln!("{e}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Operation {
    pub(crate) id: u64,
    pub(crate) kind: OperationKind,
    pub(crate) workers: usize,
    pub(crate) outcome: oneshot::Receiver<Result<OperationReport, OperationError>>,
}

impl Operation {
    /// The operation's id, unique over the cluster's life.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// What it does.
    pub fn kind(&self) -> OperationKind {
        self.kind
    }

    /// Workers it replaces (the count when it started).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Waits until the operation has completed or failed.
    ///
    /// # Errors
    ///
    /// [`OperationError`] when a new worker failed to become ready (and what was rolled back),
    /// when shutdown interrupted it, or when the cluster stopped.
    pub async fn finished(self) -> Result<OperationReport, OperationError> {
        self.outcome.await.unwrap_or(Err(OperationError::Gone))
    }
}

/// A completed operation.
///
/// # Examples
///
/// ```
/// use cluster_core::{ClusterHandle, OperationError};
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ControlError> {
/// let operation = handle.rolling_restart().await?; // accepted: it runs in the background
/// println!("operation {} ({}) over {} workers", operation.id(), operation.kind(), operation.workers());
/// match operation.finished().await {
///     Ok(report) => println!("{} replaced in {:?}", report.replaced, report.took),
///     Err(OperationError::Failed { reason, rolled_back, .. }) => {
///         eprintln!("failed: {reason}; {rolled_back} workers rolled back")
///     }
///     Err(e) => eprintln!("{e}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OperationReport {
    /// The operation's id.
    pub id: u64,
    /// Workers replaced.
    pub replaced: usize,
    /// Time from start to the last old worker out of rotation.
    #[serde(serialize_with = "crate::events::millis")]
    pub took: Duration,
}

/// An operation that did not complete.
///
/// # Examples
///
/// ```
/// use cluster_core::{ClusterHandle, OperationError};
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ControlError> {
/// let operation = handle.rolling_restart().await?; // accepted: it runs in the background
/// println!("operation {} ({}) over {} workers", operation.id(), operation.kind(), operation.workers());
/// match operation.finished().await {
///     Ok(report) => println!("{} replaced in {:?}", report.replaced, report.took),
///     Err(OperationError::Failed { reason, rolled_back, .. }) => {
///         eprintln!("failed: {reason}; {rolled_back} workers rolled back")
///     }
///     Err(e) => eprintln!("{e}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperationError {
    /// A new worker did not become ready, or crashed soon after. For a rolling restart, the
    /// previous generation keeps serving: replacements still starting were stopped, and
    /// `rolled_back` workers that had already taken over are being returned to it.
    #[error("{reason}{}", rolled_back_note(*.rolled_back))]
    Failed {
        /// What went wrong, for people.
        reason: String,
        /// Workers of the new generation being replaced by the previous one.
        rolled_back: usize,
    },
    /// Shutdown began before it completed.
    #[error("interrupted by shutdown")]
    ShuttingDown,
    /// The cluster stopped.
    #[error("the cluster is no longer running")]
    Gone,
}

fn rolled_back_note(rolled_back: usize) -> String {
    match rolled_back {
        0 => String::new(),
        n => format!(" ({n} replaced workers rolled back)"),
    }
}

/// What a configuration reload changed.
///
/// # Examples
///
/// ```
/// use cluster_core::config::Applies;
/// use cluster_core::{ClusterHandle, ConfigReport};
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ControlError> {
/// let ConfigReport { changes, .. } = handle.reload_config().await?;
/// for change in changes.iter().filter(|c| c.applies == Applies::Restart) {
///     println!("{} takes effect at the next restart", change.key);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ConfigReport {
    /// Every key whose value differs from the running configuration, with when it applies.
    pub changes: Vec<ConfigChange>,
}
