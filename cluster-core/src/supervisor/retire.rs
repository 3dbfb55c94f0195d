//! The one path out: every way a worker leaves (recycle, rolling restart, restart,
//! scale-down, a worker saying STOPPING, unresponsive, a health kill, a failed start,
//! shutdown) goes through [`Supervisor::retire`].
//!
//! Out of rotation first; then, by reason: a drain of its in-flight requests (up to
//! `gracefulShutdownTimeout`) and SIGTERM with SIGKILL at the same timeout; SIGTERM and
//! SIGKILL after the short `health.unresponsiveGrace` for a worker with nothing to drain
//! (frozen, or never ready); SIGKILL at once for a health kill; nothing for a worker that
//! stops by itself, until it overstays the graceful timeout.

use std::time::Duration;

use tokio::time::Instant;

use super::record::{LeaveReason, Rotation};
use super::worker::Stop;
use super::{MIN_STOP_GRACE, Msg, Supervisor, WorkerState};
use crate::events::ClusterEvent;

/// How often a draining worker's in-flight count is looked at.
const DRAIN_POLL: Duration = Duration::from_millis(20);

impl Supervisor {
    /// Takes worker `id` out of rotation and stops it as `why` requires. A worker already
    /// leaving keeps its course.
    pub(super) fn retire(&mut self, id: u64, why: LeaveReason) {
        let Some(w) = self.workers.get_mut(&id) else { return };
        if w.leave.is_some() {
            return;
        }
        w.rotation = Rotation::Leaving;
        w.leave = Some(why.clone());
        let (slot, pid, state) = (w.slot, w.pid, w.state);
        // Out of the table before anything else happens to it.
        self.sync_routes();
        self.emit(ClusterEvent::Retiring { worker_id: id, slot, pid, reason: why.to_string() });
        match why {
            LeaveReason::Killed(_)
            | LeaveReason::Unresponsive(_)
            | LeaveReason::FailedStart(_)
            | LeaveReason::Cancelled(_) => {
                self.stop_now(id, &why);
            }
            LeaveReason::Shutdown => {}
            _ if state == WorkerState::Starting => self.stop_now(id, &why),
            LeaveReason::SaidStopping => {
                self.set_state(id, WorkerState::Draining);
                self.after(self.spec.graceful_shutdown_timeout, Msg::LeaveOverdue { id });
            }
            _ => self.drain(id),
        }
    }

    /// Stops a worker that has nothing to drain: SIGKILL now for a kill, else SIGTERM and
    /// SIGKILL after `health.unresponsiveGrace`.
    fn stop_now(&mut self, id: u64, why: &LeaveReason) {
        let Some(w) = self.workers.get(&id) else { return };
        if matches!(why, LeaveReason::Unresponsive(_)) {
            if let Some(b) = &w.backend {
                // Whatever still waits on it fails over now instead of at the request timeout.
                b.abandon();
            }
        }
        let stop = match why {
            LeaveReason::Killed(_) => Stop::Kill,
            _ => Stop::Graceful { deadline: Instant::now() + self.spec.health.unresponsive_grace },
        };
        self.send_stop(id, stop);
    }

    /// Waits until the worker has no request in flight (or the graceful timeout is up), then
    /// [`on_drained`](Self::on_drained) stops it.
    fn drain(&mut self, id: u64) {
        let Some(w) = self.workers.get(&id) else { return };
        let backend = w.backend.clone();
        self.set_state(id, WorkerState::Draining);
        let deadline = Instant::now() + self.spec.graceful_shutdown_timeout;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while backend.as_ref().is_some_and(|b| b.load().in_flight() > 0)
                && Instant::now() < deadline
            {
                tokio::time::sleep(DRAIN_POLL).await;
            }
            let _ = tx.send(Msg::Drained { id });
        });
    }

    /// A retiring worker has drained: SIGTERM, and SIGKILL after the graceful timeout.
    pub(super) fn on_drained(&mut self, id: u64) {
        if self.workers.get(&id).is_none_or(|w| w.state != WorkerState::Draining) {
            return;
        }
        let deadline = Instant::now() + self.spec.graceful_shutdown_timeout;
        self.send_stop(id, Stop::Graceful { deadline });
    }

    /// A worker said it was stopping a graceful timeout ago and is still there: stop it.
    pub(super) fn leave_overdue(&mut self, id: u64) {
        let Some(w) = self.workers.get(&id) else { return };
        if w.leave != Some(LeaveReason::SaidStopping) || w.state != WorkerState::Draining {
            return;
        }
        tracing::warn!(worker = id, "said it was stopping but is still running; stopping it");
        let grace = self.spec.graceful_shutdown_timeout.max(MIN_STOP_GRACE);
        self.send_stop(id, Stop::Graceful { deadline: Instant::now() + grace });
    }

    /// Moves the worker to stopping, hangs up its IPC channel (a Node worker that listens for
    /// messages can then let its event loop empty) and sends `stop` to its task.
    pub(super) fn send_stop(&mut self, id: u64, stop: Stop) {
        self.set_state(id, WorkerState::Stopping);
        let Some(w) = self.workers.get_mut(&id) else { return };
        if let Some(ipc) = &mut w.ipc {
            ipc.hang_up();
        }
        let _ = w.stops.send(stop);
    }
}
