//! Cluster events: what the supervisor publishes for logs, the event stream and dashboards.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::supervisor::WorkerState;

/// Something that happened in the cluster. Published on a broadcast channel; see
/// [`ClusterHandle::subscribe`](crate::ClusterHandle::subscribe).
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
        addr: SocketAddr,
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
        #[serde(with = "millis")]
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
    /// A health policy killed a worker at once (hard memory limit); it is replaced like a
    /// crashed worker.
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
    /// Shutdown began.
    ShutdownStarted {
        /// Whether it waits for in-flight requests.
        graceful: bool,
    },
    /// Every worker has exited; this is the last event of a cluster.
    Stopped,
}

mod millis {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}
