//! The control plane's own counters, for the status and Prometheus: exits by reason,
//! recycles by cause, operations by outcome, autoscale decisions, scale changes.

use std::collections::BTreeMap;

use super::record::LeaveReason;
use crate::control::OperationKind;
use crate::status::{ControlCounters, OperationCounts};

/// Counts since the cluster started.
#[derive(Debug, Default)]
pub(super) struct Counters {
    exits: BTreeMap<&'static str, u64>,
    recycles: BTreeMap<&'static str, u64>,
    operations: BTreeMap<&'static str, OperationCounts>,
    autoscale_up: u64,
    autoscale_down: u64,
    scale_changes: u64,
}

/// How an operation ended, for its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Started,
    Finished,
    Failed,
}

impl Counters {
    /// A worker exited, having left for `why` (`None`: a crash).
    pub(super) fn exited(&mut self, why: Option<&LeaveReason>) {
        let reason = match why {
            None => "crash",
            Some(LeaveReason::Recycled(_)) => "recycled",
            Some(LeaveReason::RollingRestart) => "rolling-restart",
            Some(LeaveReason::Restart) => "restart",
            Some(LeaveReason::ScaleDown) => "scale-down",
            Some(LeaveReason::SaidStopping) => "stopped-by-itself",
            Some(LeaveReason::Unresponsive(_)) => "unresponsive",
            Some(LeaveReason::Killed(_)) => "killed",
            Some(LeaveReason::FailedStart(_)) => "failed-start",
            Some(LeaveReason::Cancelled(_)) => "cancelled",
            Some(LeaveReason::Shutdown) => "shutdown",
        };
        *self.exits.entry(reason).or_default() += 1;
    }

    /// A recycle started, for `reason` (a policy's reason text, or an operator's).
    pub(super) fn recycling(&mut self, reason: &str) {
        let cause = [
            ("memory", "memory"),
            ("served ", "max-requests"),
            ("unresponsive", "unresponsive"),
            ("ejected ", "error-rate"),
            ("restart requested", "requested"),
        ]
        .into_iter()
        .find_map(|(prefix, cause)| reason.starts_with(prefix).then_some(cause))
        .unwrap_or("other");
        *self.recycles.entry(cause).or_default() += 1;
    }

    /// An operation of `kind` started, finished or failed.
    pub(super) fn operation(&mut self, kind: OperationKind, outcome: Outcome) {
        let name = match kind {
            OperationKind::RollingRestart => "rolling-restart",
            OperationKind::Restart => "restart",
            _ => "rollback",
        };
        let c = self.operations.entry(name).or_default();
        match outcome {
            Outcome::Started => c.started += 1,
            Outcome::Finished => c.finished += 1,
            Outcome::Failed => c.failed += 1,
        }
    }

    /// The autoscaler added (`up`) or removed a worker.
    pub(super) fn autoscaled(&mut self, up: bool) {
        if up {
            self.autoscale_up += 1;
        } else {
            self.autoscale_down += 1;
        }
    }

    /// The worker count changed.
    pub(super) fn scaled(&mut self) {
        self.scale_changes += 1;
    }

    /// The counts, for the status.
    pub(super) fn snapshot(&self) -> ControlCounters {
        let owned = |m: &BTreeMap<&'static str, u64>| {
            m.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        ControlCounters {
            exits: owned(&self.exits),
            recycles: owned(&self.recycles),
            operations: self.operations.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            autoscale_up: self.autoscale_up,
            autoscale_down: self.autoscale_down,
            scale_changes: self.scale_changes,
        }
    }
}
