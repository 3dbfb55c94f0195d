//! Shutdown: graceful (the proxy stops accepting and drains in-flight requests, then every
//! worker is retired with SIGTERM and SIGKILL at the deadline) or immediate (SIGKILL now).

use tokio::time::Instant;

use super::record::LeaveReason;
use super::worker::Stop;
use super::{MIN_STOP_GRACE, Msg, Phase, Supervisor, WorkerState};
use crate::control::ShutdownMode;
use crate::events::ClusterEvent;

impl Supervisor {
    /// Starts shutting down. A graceful request while a graceful shutdown is already under way
    /// changes nothing; an immediate one escalates it.
    pub(super) fn shutdown(&mut self, mode: ShutdownMode) {
        match (mode, self.phase) {
            (ShutdownMode::Graceful, Phase::Running) => {
                self.emit(ClusterEvent::ShutdownStarted { graceful: true });
                self.interrupt_operation();
                let deadline = Instant::now() + self.spec.graceful_shutdown_timeout;
                self.phase = Phase::Draining { deadline };
                self.proxy_stop.cancel();
                let done = self.proxy_done.take();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    if let Some(done) = done {
                        let _ = tokio::time::timeout_at(deadline, done).await;
                    }
                    let _ = tx.send(Msg::DrainDone);
                });
            }
            (ShutdownMode::Graceful, _) => {}
            (ShutdownMode::Immediate, phase) => {
                if phase == Phase::Running {
                    self.emit(ClusterEvent::ShutdownStarted { graceful: false });
                    self.interrupt_operation();
                }
                self.proxy_stop.cancel();
                self.phase = Phase::Stopping;
                let ids: Vec<u64> = self.workers.keys().copied().collect();
                for id in ids {
                    self.mark_leaving(id);
                    self.send_stop(id, Stop::Kill);
                }
            }
        }
    }

    /// After the proxy drained: retire every worker, SIGTERM now, SIGKILL at the drain
    /// deadline (at least [`MIN_STOP_GRACE`] from now).
    pub(super) fn stop_all(&mut self) {
        let Phase::Draining { deadline } = self.phase else { return };
        self.phase = Phase::Stopping;
        let deadline = deadline.max(Instant::now() + MIN_STOP_GRACE);
        let ids: Vec<u64> = self.workers.keys().copied().collect();
        for id in ids {
            self.mark_leaving(id);
            if self.workers.get(&id).is_some_and(|w| w.state == WorkerState::Ready) {
                self.set_state(id, WorkerState::Draining);
            }
            self.send_stop(id, Stop::Graceful { deadline });
        }
    }

    /// Takes a worker out of rotation for shutdown, through the retire path (which leaves the
    /// stopping to the caller); a worker already leaving keeps its reason.
    fn mark_leaving(&mut self, id: u64) {
        if self.workers.get(&id).is_some_and(|w| w.leave.is_none()) {
            self.retire(id, LeaveReason::Shutdown);
        }
    }
}
