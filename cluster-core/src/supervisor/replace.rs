//! Recycles: replacing one worker without losing a request. The replacement starts first
//! (surge), enters rotation once ready, and only then is the old worker retired (drain, stop).
//!
//! One recycle runs at a time unless `health.maxConcurrentRecycles` allows more; further
//! requests wait in a queue. A replacement that fails to start abandons its recycle: the old
//! worker keeps serving. Rolling restarts use the same replacement record
//! ([`Replacing`]) with their own purpose; see `rollout.rs`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::record::{LeaveReason, Purpose, Replacing};
use super::{Phase, Supervisor};
use crate::control::ControlError;
use crate::events::ClusterEvent;

/// After a failed recycle, a health policy's next recycle of the slot waits this long,
/// doubling with each failure in a row up to [`MAX_RECYCLE_RETRY`].
const RECYCLE_RETRY: Duration = Duration::from_secs(5);

/// Longest wait between a health policy's recycles of a slot whose replacements fail.
const MAX_RECYCLE_RETRY: Duration = Duration::from_secs(30);

/// Recycles waiting for their turn: (worker, reason).
#[derive(Debug, Default)]
pub(super) struct Queue(VecDeque<(u64, String)>);

impl Supervisor {
    /// Queues the replacement of worker `id`.
    ///
    /// # Errors
    ///
    /// The worker does not exist or is not serving, or we are shutting down. A worker already
    /// queued or being replaced is not queued twice (that is not an error).
    pub(super) fn request_recycle(&mut self, id: u64, reason: String) -> Result<(), ControlError> {
        self.refuse_if_stopping()?;
        let w = self.workers.get(&id).ok_or(ControlError::NoSuchWorker { worker_id: id })?;
        if !w.serving() {
            let state = if w.leave.is_some() { "leaving".to_owned() } else { w.state.to_string() };
            return Err(ControlError::NotServing { worker_id: id, state });
        }
        if self.being_replaced(id) {
            tracing::debug!(worker = id, "recycle ignored: already queued or being replaced");
            return Ok(());
        }
        self.recycles.0.push_back((id, reason));
        self.start_next_recycles();
        Ok(())
    }

    /// Whether a health policy's recycle of worker `id` must wait: its slot's last
    /// replacements failed.
    pub(super) fn recycle_backing_off(&self, id: u64) -> bool {
        let slot = self.workers.get(&id).map(|w| w.slot);
        let until = slot.and_then(|s| self.slots.get(s)).and_then(|s| s.recycle_not_before);
        until.is_some_and(|t| t > Instant::now())
    }

    /// Whether worker `id` has a replacement starting or queued.
    pub(super) fn being_replaced(&self, id: u64) -> bool {
        self.replacement_of(id).is_some() || self.recycles.0.iter().any(|(q, _)| *q == id)
    }

    /// Starts queued recycles while fewer than `health.maxConcurrentRecycles` run.
    pub(super) fn start_next_recycles(&mut self) {
        let max = self.spec.health.max_concurrent_recycles.max(1);
        while self.phase == Phase::Running {
            let active = self.replacements_for(|p| matches!(p, Purpose::Recycle(_))).len();
            if active >= max {
                return;
            }
            let Some((id, reason)) = self.recycles.0.pop_front() else { return };
            let Some(w) = self.workers.get(&id).filter(|w| w.serving()) else { continue };
            if self.replacement_of(id).is_some() {
                continue;
            }
            let slot = w.slot;
            self.emit(ClusterEvent::Recycling { worker_id: id, slot, reason: reason.clone() });
            self.counters.recycling(&reason);
            let replacing = Replacing { old: id, purpose: Purpose::Recycle(reason) };
            let generation = self.generations.current();
            // On failure, `replacement_failed` has already reported it.
            let _ = self.start_worker(slot, generation, Some(replacing));
        }
    }

    /// Replacement `new` is ready and in rotation: retire the worker it replaces (drained,
    /// or at once if it no longer answers its probe: a frozen worker has nothing to drain).
    pub(super) fn replacement_ready(&mut self, new: u64, r: Replacing) {
        let Some(slot) = self.workers.get(&new).map(|w| w.slot) else { return };
        let old_pid = self.workers.get(&r.old).map(|w| w.pid);
        let old_serving = self.workers.get(&r.old).is_some_and(|w| w.serving());
        let frozen = old_serving && !self.health.answers(r.old);
        match r.purpose {
            Purpose::Recycle(reason) => {
                // Counted once the replacement serves, not when it was attempted.
                let s = &mut self.slots[slot];
                s.recycles += 1;
                s.last_reason = Some(reason.clone());
                s.recycle_failures = 0;
                s.recycle_not_before = None;
                if old_serving {
                    let why = if frozen {
                        LeaveReason::Unresponsive(reason)
                    } else {
                        LeaveReason::Recycled(reason)
                    };
                    self.retire(r.old, why);
                    self.emit(ClusterEvent::Recycled {
                        worker_id: r.old,
                        replacement_id: new,
                        slot,
                    });
                }
                self.start_next_recycles();
            }
            Purpose::Rollout(op) => {
                if old_serving {
                    let why = if frozen {
                        LeaveReason::Unresponsive("does not answer its probe".into())
                    } else {
                        LeaveReason::RollingRestart
                    };
                    self.retire(r.old, why);
                }
                self.rollout_replaced(op, r.old, old_pid, new);
            }
        }
    }

    /// The replacement started for `r.old` in `slot` could not be started, or ended before it
    /// was ready: the old worker keeps serving.
    pub(super) fn replacement_failed(&mut self, r: Replacing, slot: usize, reason: &str) {
        match r.purpose {
            Purpose::Recycle(_) => {
                if let Some(s) = self.slots.get_mut(slot) {
                    // A health policy asks again every tick: space the attempts out.
                    s.recycle_failures += 1;
                    let delay = RECYCLE_RETRY.saturating_mul(1 << (s.recycle_failures - 1).min(3));
                    s.recycle_not_before = Some(Instant::now() + delay.min(MAX_RECYCLE_RETRY));
                }
                self.emit(ClusterEvent::RecycleFailed { worker_id: r.old, slot });
                self.start_next_recycles();
            }
            Purpose::Rollout(op) => self.rollout_failed(op, reason),
        }
    }
}
