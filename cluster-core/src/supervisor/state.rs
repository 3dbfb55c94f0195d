//! The lifecycle state machine every worker goes through.

use std::fmt;

use serde::Serialize;

/// Where a worker is in its life. Every operation (start, recycle, scale, shutdown) moves a
/// worker through these states and only along the allowed transitions, see
/// [`WorkerState::can_become`].
///
/// ```text
/// Starting ──ready──▶ Ready ──leave──▶ Draining ──drained──▶ Stopping ──▶ Exited
///    │                  │                  │                                ▲
///    └──────────────────┴──── exits, crashes or fails to start ─────────────┘
/// ```
///
/// # Examples
///
/// ```
/// use cluster_core::WorkerState;
///
/// assert!(WorkerState::Starting.can_become(WorkerState::Ready));
/// assert!(!WorkerState::Exited.can_become(WorkerState::Ready)); // terminal
/// assert_eq!(WorkerState::Draining.as_str(), "draining");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerState {
    /// Spawned, not yet ready: receives no traffic.
    Starting,
    /// In the routing table, receiving traffic.
    Ready,
    /// Out of the routing table; its in-flight requests are finishing.
    Draining,
    /// Asked to stop (SIGTERM sent); killed at the deadline.
    Stopping,
    /// The process has exited. Terminal.
    Exited,
}

impl WorkerState {
    /// Whether a worker in this state may move to `next`.
    pub fn can_become(self, next: WorkerState) -> bool {
        use WorkerState::*;
        matches!(
            (self, next),
            (Starting, Ready | Stopping | Exited)
                | (Ready, Draining | Stopping | Exited)
                | (Draining, Stopping | Exited)
                | (Stopping, Exited)
        )
    }

    /// The state's name as shown in status output.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Ready => "ready",
            WorkerState::Draining => "draining",
            WorkerState::Stopping => "stopping",
            WorkerState::Exited => "exited",
        }
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerState::*;

    #[test]
    fn only_forward_transitions() {
        assert!(Starting.can_become(Ready));
        assert!(Ready.can_become(Draining));
        assert!(Draining.can_become(Stopping));
        assert!(Stopping.can_become(Exited));
        assert!(!Ready.can_become(Starting));
        assert!(!Exited.can_become(Ready));
        assert!(!Draining.can_become(Ready));
        assert!(!Starting.can_become(Draining));
    }
}
