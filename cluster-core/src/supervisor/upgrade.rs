//! The supervisor's part of a hot upgrade: it serializes the upgrade with the other
//! operations, and shuts down for the handover once the new primary serves. Starting and
//! watching the new primary is [`crate::upgrade`]'s.

use std::time::Duration;

use tokio::sync::oneshot;

use super::Supervisor;
use crate::control::{ControlError, ShutdownMode};
use crate::events::ClusterEvent;

/// Longest the old proxy waits, after a handover, for its keep-alive clients to send one more
/// request (answered with `Connection: close`) before it closes the idle ones.
const HANDOVER_DRAIN_MAX: Duration = Duration::from_secs(5);

/// Time the new primary gets on top of `startTimeout` to load its configuration and bind.
const UPGRADE_MARGIN: Duration = Duration::from_secs(30);

/// A step of an upgrade on the control path.
#[derive(Debug)]
pub(crate) enum UpgradeStep {
    /// Claims the cluster for an upgrade (refused while another operation runs); answers
    /// with the default time the new primary gets.
    Begin { by: String, reply: oneshot::Sender<Result<Duration, ControlError>> },
    /// The new primary serves (`Ok` with its pid and the time it took) or failed.
    End { outcome: Result<(u32, Duration), String> },
}

impl Supervisor {
    pub(super) fn on_upgrade(&mut self, step: UpgradeStep) {
        match step {
            UpgradeStep::Begin { by, reply } => {
                let claimed = self.refuse_if_busy().map(|()| {
                    self.upgrading = Some(by.clone());
                    self.emit(ClusterEvent::UpgradeStarted { by });
                    self.spec.start_timeout + UPGRADE_MARGIN
                });
                let _ = reply.send(claimed);
            }
            UpgradeStep::End { outcome } => {
                self.upgrading = None;
                match outcome {
                    Ok((new_pid, took)) => {
                        self.emit(ClusterEvent::UpgradeFinished { new_pid, took });
                        let window = HANDOVER_DRAIN_MAX
                            .min(self.spec.performance.keep_alive_timeout)
                            .min(self.spec.graceful_shutdown_timeout / 2);
                        self.handover.set(window);
                        self.shutdown(ShutdownMode::Graceful);
                    }
                    Err(reason) => self.emit(ClusterEvent::UpgradeFailed { reason }),
                }
            }
        }
    }

    /// The upgrade under way, for a refused operation.
    pub(super) fn upgrade_under_way(&self) -> Option<String> {
        self.upgrading.as_ref().map(|by| format!("an upgrade of the primary (asked by {by})"))
    }
}
