//! The [`HealthPolicy`] trait and the verdicts it returns.

use std::fmt;

use crate::WorkerSnapshot;

/// Decides, from a snapshot, what should happen to one worker.
///
/// # Contract
///
/// - `evaluate` is a pure function of the snapshot and the policy's own configuration: no
///   I/O, no clock (the snapshot carries the ages), so the same input gives the same verdict.
/// - It returns [`Verdict::Healthy`] when it has nothing to say; the supervisor combines the
///   verdicts of all policies and acts on the most severe one.
/// - It is called from the supervisor on every health tick, for every worker: keep it cheap.
pub trait HealthPolicy: Send + Sync + fmt::Debug {
    /// Judges one worker.
    fn evaluate(&self, worker: &WorkerSnapshot) -> Verdict;
}

/// What a policy wants done with a worker, from least to most severe.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Verdict {
    /// Keep routing to it.
    Healthy,
    /// Stop routing to it for now, but keep it running (it may recover).
    Unhealthy {
        /// Why, for the event log.
        reason: String,
    },
    /// Replace it: start a replacement, wait until it is ready, drain this one, stop it.
    Recycle(RecycleReason),
}

/// Why a worker is being replaced; every recycle is published as an event with its reason.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RecycleReason {
    /// Its memory went over the soft limit.
    Memory {
        /// Resident memory of its process tree, in bytes.
        rss_bytes: u64,
        /// The configured limit, in bytes.
        limit_bytes: u64,
    },
    /// It has served its configured maximum number of requests.
    MaxRequests {
        /// Requests served so far.
        served: u64,
    },
    /// It stopped answering its active probe.
    Unresponsive,
    /// An operator asked for it (rolling restart).
    Requested,
}

impl fmt::Display for RecycleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecycleReason::Memory { rss_bytes, limit_bytes } => write!(
                f,
                "memory {} MB over the {} MB limit",
                rss_bytes / (1024 * 1024),
                limit_bytes / (1024 * 1024)
            ),
            RecycleReason::MaxRequests { served } => write!(f, "served {served} requests"),
            RecycleReason::Unresponsive => f.write_str("unresponsive"),
            RecycleReason::Requested => f.write_str("restart requested"),
        }
    }
}
