//! Cluster events: what the supervisor publishes for logs, the event stream and dashboards.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::config::ConfigChange;
use crate::control::OperationKind;
use crate::endpoint::Endpoint;
use crate::supervisor::WorkerState;

/// Something that happened in the cluster. Published on a broadcast channel; see
/// [`ClusterHandle::subscribe`](crate::ClusterHandle::subscribe).
///
/// # Examples
///
/// ```
/// use cluster_core::{ClusterEvent, ClusterHandle};
///
/// # async fn example(handle: ClusterHandle) {
/// let mut events = handle.subscribe();
/// while let Ok(event) = events.recv().await {
///     match event {
///         ClusterEvent::WorkerStarted { worker_id, pid, .. } => println!("worker {worker_id}: pid {pid}"),
///         ClusterEvent::WorkerExited { worker_id, code, expected: false, .. } => {
///             eprintln!("worker {worker_id} died (code {code:?})")
///         }
///         other => println!("{}", serde_json::to_string(&other).unwrap()),
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum ClusterEvent {
    /// The front listener is bound.
    Listening {
        /// The bound address.
        addr: SocketAddr,
    },
    /// A worker process was started.
    #[serde(rename_all = "camelCase")]
    WorkerStarted {
        /// Unique worker id.
        worker_id: u64,
        /// Its slot (`NODE_APP_INSTANCE`).
        slot: usize,
        /// Its process id.
        pid: u32,
        /// Its private endpoint.
        addr: Endpoint,
        /// The deploy generation it belongs to.
        generation: u64,
    },
    /// A worker moved from one lifecycle state to another.
    #[serde(rename_all = "camelCase")]
    WorkerState {
        /// Unique worker id.
        worker_id: u64,
        /// Its slot.
        slot: usize,
        /// The state it left.
        from: WorkerState,
        /// The state it entered.
        to: WorkerState,
    },
    /// A worker process exited.
    #[serde(rename_all = "camelCase")]
    WorkerExited {
        /// Unique worker id.
        worker_id: u64,
        /// Its slot.
        slot: usize,
        /// Its process id.
        pid: u32,
        /// Exit code, if it exited normally.
        code: Option<i32>,
        /// Signal number, if a signal ended it.
        signal: Option<i32>,
        /// Whether the cluster asked it to stop.
        expected: bool,
        /// Why it was leaving, if it was (`recycled: ...`, `scale-down`, `killed: ...`).
        reason: Option<String>,
    },
    /// A worker did not become ready in time, or could not be started.
    #[serde(rename_all = "camelCase")]
    WorkerFailedStart {
        /// Its slot.
        slot: usize,
        /// Why, for people.
        reason: String,
    },
    /// A slot's worker keeps exiting soon after start; the next start is delayed.
    #[serde(rename_all = "camelCase")]
    CrashLooping {
        /// The slot.
        slot: usize,
        /// Quick exits in a row.
        quick_exits: u32,
        /// Delay before the next start.
        #[serde(rename = "retryInMs", serialize_with = "millis")]
        retry_in: Duration,
    },
    /// A worker is being replaced (memory, request count, probe, restart): its replacement
    /// is starting; it keeps serving until the replacement is ready.
    #[serde(rename_all = "camelCase")]
    Recycling {
        /// The worker being replaced.
        worker_id: u64,
        /// Its slot.
        slot: usize,
        /// Why, for people.
        reason: String,
    },
    /// The replacement is ready and in rotation; the old worker is draining and will stop.
    #[serde(rename_all = "camelCase")]
    Recycled {
        /// The worker replaced.
        worker_id: u64,
        /// Its replacement.
        replacement_id: u64,
        /// Their slot.
        slot: usize,
    },
    /// The replacement could not be started or did not become ready; the old worker keeps
    /// serving.
    #[serde(rename_all = "camelCase")]
    RecycleFailed {
        /// The worker that was to be replaced.
        worker_id: u64,
        /// Its slot.
        slot: usize,
    },
    /// A health policy killed a worker at once (hard memory limit); its slot is refilled at
    /// once, without crash back-off, and the kill is its restart reason.
    #[serde(rename_all = "camelCase")]
    Killed {
        /// The worker.
        worker_id: u64,
        /// Its slot.
        slot: usize,
        /// Why.
        reason: String,
    },
    /// A health policy took a worker out of rotation; it keeps running.
    #[serde(rename_all = "camelCase")]
    Ejected {
        /// The worker.
        worker_id: u64,
        /// Its slot.
        slot: usize,
        /// Why.
        reason: String,
    },
    /// An ejected worker is healthy again and back in rotation.
    #[serde(rename_all = "camelCase")]
    Readmitted {
        /// The worker.
        worker_id: u64,
        /// Its slot.
        slot: usize,
    },
    /// A worker leaves: it is out of rotation from now on, and will drain and stop as its
    /// reason requires.
    #[serde(rename_all = "camelCase")]
    Retiring {
        /// The worker.
        worker_id: u64,
        /// Its slot.
        slot: usize,
        /// Its process id.
        pid: u32,
        /// Why, for people (`rolling restart`, `scale-down`, `unresponsive: ...`).
        reason: String,
    },
    /// The worker count changed.
    #[serde(rename_all = "camelCase")]
    Scaled {
        /// The count before.
        from: usize,
        /// The count now.
        to: usize,
        /// Who asked: `signal SIGTTIN`, `admin API`, `autoscale: <reason>`, ...
        by: String,
    },
    /// The autoscaler decided to add or remove a worker; a [`Scaled`](Self::Scaled) event
    /// follows.
    #[serde(rename_all = "camelCase")]
    Autoscale {
        /// `up` or `down`.
        direction: String,
        /// The count before.
        from: usize,
        /// The count decided.
        to: usize,
        /// The figures behind it, for people.
        reason: String,
        /// The workers' average CPU, percent of one core.
        avg_cpu_percent: Option<f64>,
        /// Their average RSS, percent of `maxMemoryUsage`.
        memory_percent: Option<f64>,
    },
    /// An operation began: a rolling restart, a restart, or the rollback of a failed rolling
    /// restart.
    #[serde(rename_all = "camelCase")]
    OperationStarted {
        /// Its id.
        operation: u64,
        /// What it does.
        kind: OperationKind,
        /// Workers it will replace.
        workers: usize,
        /// The generation it moves the workers to.
        generation: u64,
        /// Who asked.
        by: String,
    },
    /// One more worker of the new generation serves (and, in a rolling restart, the one it
    /// replaced is retired).
    #[serde(rename_all = "camelCase")]
    OperationProgress {
        /// The operation.
        operation: u64,
        /// What it does.
        kind: OperationKind,
        /// Workers replaced so far (n of `total`).
        done: usize,
        /// Workers it replaces in all, as things stand.
        total: usize,
        /// The slot.
        slot: usize,
        /// The worker replaced (none in a restart, where the old ones left first).
        old_worker_id: Option<u64>,
        /// Its process id.
        old_pid: Option<u32>,
        /// The new worker.
        new_worker_id: u64,
        /// Its process id.
        new_pid: u32,
    },
    /// An operation completed.
    #[serde(rename_all = "camelCase")]
    OperationFinished {
        /// The operation.
        operation: u64,
        /// What it did.
        kind: OperationKind,
        /// Workers replaced.
        replaced: usize,
        /// How long it took.
        #[serde(rename = "tookMs", serialize_with = "millis")]
        took: Duration,
    },
    /// An operation stopped before completing.
    #[serde(rename_all = "camelCase")]
    OperationFailed {
        /// The operation.
        operation: u64,
        /// What it did.
        kind: OperationKind,
        /// Why, for people.
        reason: String,
        /// Workers of the new generation being rolled back to the previous one.
        rolled_back: usize,
    },
    /// A configuration reload was applied.
    #[serde(rename_all = "camelCase")]
    ConfigReloaded {
        /// Every key that changed, with when it applies.
        changes: Vec<ConfigChange>,
    },
    /// A configuration reload was refused: the file is invalid; the running configuration is
    /// kept.
    #[serde(rename_all = "camelCase")]
    ConfigReloadFailed {
        /// The problems, for people.
        error: String,
    },
    /// A worker crossed `maxMemoryUsage`; it was told over its IPC channel when it has one
    /// (`{"type":"memory-pressure","rssMb":…,"limitMb":…}`). The memory policy recycles it
    /// only if it stays over for `health.memorySamples` samples.
    #[serde(rename_all = "camelCase")]
    MemoryPressure {
        /// The worker.
        worker_id: u64,
        /// Its slot.
        slot: usize,
        /// Its RSS, MB.
        rss_mb: f64,
        /// The limit, MB.
        limit_mb: f64,
        /// Whether the message reached its IPC channel.
        notified: bool,
    },
    /// A worker's memory grows steadily: probably a leak, reported before any limit acts.
    #[serde(rename_all = "camelCase")]
    LeakSuspected {
        /// The worker.
        worker_id: u64,
        /// Its slot.
        slot: usize,
        /// Growth, MB per minute.
        slope_mb_per_min: f64,
        /// Its RSS now, MB.
        rss_mb: f64,
        /// The window the slope was measured over, seconds.
        window_secs: u64,
        /// Minutes until `maxMemoryUsage` at this rate.
        minutes_to_limit: Option<f64>,
    },
    /// Someone asked for the log files to be reopened (SIGUSR1), after a log rotation.
    LogReopenRequested,
    /// The rate limit's shared store (Redis) failed several calls in a row: until it is back,
    /// the rate limit applies its fallback (`security.rateLimitRedisFallback`).
    #[serde(rename_all = "camelCase")]
    RateLimitStoreDown {
        /// The store (`redis`).
        store: String,
        /// What the rate limit does meanwhile: `local`, `allow` or `deny`.
        fallback: String,
        /// The last failure, for people (never the store's password).
        reason: String,
    },
    /// The rate limit's shared store answers again; the shared limit applies again.
    #[serde(rename_all = "camelCase")]
    RateLimitStoreUp {
        /// The store (`redis`).
        store: String,
        /// How long it was down.
        #[serde(rename = "downForMs", serialize_with = "millis")]
        down_for: Duration,
    },
    /// A hot upgrade began: a new primary is starting (see
    /// [`ClusterHandle::upgrade`](crate::ClusterHandle::upgrade)).
    #[serde(rename_all = "camelCase")]
    UpgradeStarted {
        /// Who asked (`admin API`, `signal SIGURG`).
        by: String,
    },
    /// The new primary's workers are ready and it serves: this primary shuts down
    /// gracefully next (its `ShutdownStarted` follows).
    #[serde(rename_all = "camelCase")]
    UpgradeFinished {
        /// The new primary's pid.
        new_pid: u32,
        /// From the start of the upgrade until the new primary was ready.
        #[serde(rename = "tookMs", serialize_with = "millis")]
        took: Duration,
    },
    /// The upgrade failed; this primary keeps serving.
    #[serde(rename_all = "camelCase")]
    UpgradeFailed {
        /// Why, for people.
        reason: String,
    },
    /// Shutdown began.
    ShutdownStarted {
        /// Whether it waits for in-flight requests.
        graceful: bool,
    },
    /// Every worker has exited; this is the last event of a cluster.
    Stopped,
}

/// Serializes a duration as whole milliseconds.
pub(crate) fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}
