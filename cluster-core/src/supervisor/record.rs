//! The supervisor's records: one [`Worker`] per live process, one [`Slot`] per position in
//! the pool.
//!
//! A worker's record holds everything the control plane decides on: its lifecycle state, its
//! [`Rotation`], the worker it was started to replace (the one record of a replacement), and
//! why it is leaving. The routing table is derived from these records alone (see
//! `routes.rs`), so no decision is ever kept in two places.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::WorkerState;
use super::heartbeat::WorkerHeartbeat;
use super::ipc::IpcLink;
use super::worker::Stop;
use crate::endpoint::Endpoint;
use crate::routing::Backend;

/// Whether a worker receives requests when it is ready.
///
/// # Examples
///
/// ```
/// use cluster_core::{ClusterHandle, Rotation};
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// let ejected = handle.status().await?.workers.iter().filter(|w| w.rotation == Rotation::Ejected).count();
/// println!("{ejected} workers out of rotation ({})", Rotation::Ejected.as_str());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rotation {
    /// In rotation whenever it is ready (a starting worker enters once it is).
    In,
    /// Taken out by a health verdict (failing probes, error-rate outlier); still running, and
    /// re-admitted when it recovers.
    Ejected,
    /// On its way out (retired: recycled, scaled down, stopping, ...; the reason is in the
    /// status); never routed to again.
    Leaving,
}

impl Rotation {
    /// The name shown in status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Rotation::In => "in",
            Rotation::Ejected => "ejected",
            Rotation::Leaving => "leaving",
        }
    }
}

impl fmt::Display for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a worker leaves. Every way out goes through `retire`, which picks the drain and the
/// stop deadline from this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaveReason {
    /// Replaced through the recycle path (memory, request count, operator); the reason.
    Recycled(String),
    /// Replaced by a worker of the new generation in a rolling restart.
    RollingRestart,
    /// Stopped with every other worker by `restart` (all at once).
    Restart,
    /// Its slot is above the worker count after a scale-down.
    ScaleDown,
    /// It said it is stopping (`STOPPING=1`, `{"type":"stopping"}`): it leaves by itself.
    SaidStopping,
    /// It stopped answering; nothing is left to drain.
    Unresponsive(String),
    /// A health policy killed it (hard memory limit); the reason.
    Killed(String),
    /// It did not become ready.
    FailedStart(String),
    /// A new worker that a failed operation no longer needs (it never served).
    Cancelled(String),
    /// The cluster is shutting down.
    Shutdown,
}

impl LeaveReason {
    /// Whether its exit is one the cluster asked for (a crash otherwise).
    pub(crate) fn expected(&self) -> bool {
        !matches!(self, LeaveReason::SaidStopping | LeaveReason::FailedStart(_))
    }
}

impl fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaveReason::Recycled(why) => write!(f, "recycled: {why}"),
            LeaveReason::RollingRestart => f.write_str("rolling restart"),
            LeaveReason::Restart => f.write_str("restart"),
            LeaveReason::ScaleDown => f.write_str("scale-down"),
            LeaveReason::SaidStopping => f.write_str("said it is stopping"),
            LeaveReason::Unresponsive(why) => write!(f, "unresponsive: {why}"),
            LeaveReason::Killed(why) => write!(f, "killed: {why}"),
            LeaveReason::FailedStart(why) => write!(f, "failed to start: {why}"),
            LeaveReason::Cancelled(why) => write!(f, "cancelled: {why}"),
            LeaveReason::Shutdown => f.write_str("shutdown"),
        }
    }
}

/// What a replacement worker was started for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A recycle of the old worker, with its reason.
    Recycle(String),
    /// Operation `id`, a rolling restart (or its rollback).
    Rollout(u64),
}

/// A worker started to take over from another: the one record of a replacement. Cleared
/// when it takes over (it becomes an ordinary worker of its slot) or fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replacing {
    /// The worker it replaces.
    pub(crate) old: u64,
    /// Why.
    pub(crate) purpose: Purpose,
}

/// One live worker process.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) id: u64,
    pub(crate) slot: usize,
    pub(crate) pid: u32,
    pub(crate) endpoint: Endpoint,
    /// The deploy generation whose spawner started it.
    pub(crate) generation: u64,
    pub(crate) state: WorkerState,
    pub(crate) rotation: Rotation,
    pub(crate) started: Instant,
    /// When it became ready.
    pub(crate) ready_at: Option<Instant>,
    pub(crate) stops: mpsc::UnboundedSender<Stop>,
    /// Its routing entry, from the moment it is ready.
    pub(crate) backend: Option<Arc<Backend>>,
    pub(crate) replacing: Option<Replacing>,
    /// Why it is leaving, once it is.
    pub(crate) leave: Option<LeaveReason>,
    /// What it said about itself.
    pub(crate) heartbeat: WorkerHeartbeat,
    /// The primary's end of its IPC channel, if it has one.
    pub(crate) ipc: Option<IpcLink>,
}

impl Worker {
    /// Whether it holds its slot: alive and not leaving (starting or serving).
    pub(crate) fn holds_slot(&self) -> bool {
        self.rotation != Rotation::Leaving && self.state != WorkerState::Exited
    }

    /// Whether the proxy routes to it.
    pub(crate) fn routable(&self) -> bool {
        self.state == WorkerState::Ready && self.rotation == Rotation::In
    }

    /// Whether it is ready and keeps its place (in rotation or ejected, not leaving).
    pub(crate) fn serving(&self) -> bool {
        self.state == WorkerState::Ready && self.rotation != Rotation::Leaving
    }
}

/// One position in the pool of workers; outlives its workers.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// Workers this slot has had.
    pub(crate) starts: u32,
    /// Quick exits in a row (crash back-off).
    pub(crate) quick_exits: u32,
    /// Restarts after an exit the cluster did not ask for, or a health kill.
    pub(crate) restarts: u32,
    /// Replacements through the recycle path.
    pub(crate) recycles: u32,
    /// Why its worker was last restarted or replaced.
    pub(crate) last_reason: Option<String>,
    /// Not started again before this (crash back-off).
    pub(crate) not_before: Option<Instant>,
    /// Recycles in a row whose replacement failed.
    pub(crate) recycle_failures: u32,
    /// A health policy's recycle is not tried again before this.
    pub(crate) recycle_not_before: Option<Instant>,
}
