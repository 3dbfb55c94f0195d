//! A point-in-time view of the cluster, as returned by
//! [`ClusterHandle::status`](crate::ClusterHandle::status).

use std::net::SocketAddr;

use serde::Serialize;

use crate::{MetricsSnapshot, WorkerState};

/// The cluster as the supervisor sees it at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClusterStatus {
    /// The front address.
    pub listen: SocketAddr,
    /// The balancing strategy in use.
    pub strategy: &'static str,
    /// Workers the cluster keeps ready.
    pub desired_workers: usize,
    /// Workers in the routing table now.
    pub ready_workers: usize,
    /// Whether shutdown has begun.
    pub shutting_down: bool,
    /// Every live worker process.
    pub workers: Vec<WorkerStatus>,
    /// Slots whose worker keeps exiting soon after start.
    pub crash_looping_slots: Vec<usize>,
    /// Requests the proxy has completed or failed on the live workers.
    pub total_requests: u64,
    /// Errors (5xx, unreachable, timed out) among them.
    pub total_errors: u64,
    /// Mean time to response head over those requests, in milliseconds.
    pub average_response_time_ms: Option<f64>,
}

/// One worker process.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WorkerStatus {
    /// Unique id.
    pub worker_id: u64,
    /// Slot (`NODE_APP_INSTANCE`).
    pub slot: usize,
    /// Process id.
    pub pid: u32,
    /// Lifecycle state.
    pub status: WorkerState,
    /// Private endpoint.
    pub addr: SocketAddr,
    /// Requests in flight on it.
    pub in_flight: usize,
    /// Replacements its slot has had.
    pub restarts: u32,
    /// Milliseconds since it started.
    pub uptime_ms: u64,
    /// Resident memory of its process tree, in bytes, at the last health tick.
    pub rss_bytes: Option<u64>,
    /// CPU of its process tree, percent of one core, smoothed over about 10 s.
    pub cpu_percent: Option<f64>,
    /// What the proxy measured of it (zero until it became ready).
    #[serde(flatten)]
    pub metrics: MetricsSnapshot,
}
