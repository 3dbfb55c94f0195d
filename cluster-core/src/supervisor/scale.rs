//! The worker count: scaling, and the reconciliation that keeps slots `0..target` each held
//! by one worker.
//!
//! [`Supervisor::reconcile`] runs after every message: a slot below the target with no worker
//! holding it gets one (at once, or when its crash back-off is over), and a worker holding a
//! slot at or above the target is retired (scale-down takes the highest slots, so sticky
//! clients of the other slots keep their worker). Scaling is therefore just a new target;
//! a scale change before or during a rolling restart persists, because the rolling restart
//! works on the slots as they are at each step.

use tokio::time::Instant;

use super::record::LeaveReason;
use super::{Count, Phase, Supervisor};
use crate::control::{ControlError, Scaled};
use crate::events::ClusterEvent;

impl Supervisor {
    /// Sets the worker count, within `scaling.minWorkers..=scaling.maxWorkers`.
    ///
    /// # Errors
    ///
    /// Out of range, with the bounds; shutting down.
    pub(super) fn scale(&mut self, count: Count, by: &str) -> Result<Scaled, ControlError> {
        self.refuse_if_stopping()?;
        let (min, max) = (self.spec.scaling.min_workers, self.spec.scaling.max_workers.max(1));
        let requested = match count {
            Count::To(n) => n,
            Count::By(delta) => {
                let n = i64::try_from(self.target).unwrap_or(i64::MAX).saturating_add(delta);
                usize::try_from(n.max(0)).unwrap_or(usize::MAX)
            }
        };
        if !(min..=max).contains(&requested) {
            return Err(ControlError::OutOfRange { requested, min, max });
        }
        Ok(self.set_target(requested, by))
    }

    /// Sets the target count (already checked) and reconciles.
    pub(super) fn set_target(&mut self, to: usize, by: &str) -> Scaled {
        let from = self.target;
        if from != to {
            self.target = to;
            self.autoscale.note_change(Instant::now());
            self.counters.scaled();
            self.emit(ClusterEvent::Scaled { from, to, by: by.to_owned() });
            self.reconcile();
        }
        Scaled { from, to }
    }

    /// Fills empty slots below the target and retires workers of slots at or above it.
    pub(super) fn reconcile(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        let above: Vec<u64> = self
            .workers
            .values()
            .filter(|w| w.holds_slot() && w.slot >= self.target)
            .map(|w| w.id)
            .collect();
        for id in above {
            self.retire(id, LeaveReason::ScaleDown);
        }
        let now = Instant::now();
        // One pass over the workers, not one per slot: this runs after every message.
        let mut held = vec![false; self.target];
        for w in self.workers.values().filter(|w| w.holds_slot()) {
            if let Some(h) = held.get_mut(w.slot) {
                *h = true;
            }
        }
        for slot in (0..self.target).filter(|&slot| !held[slot]) {
            let due = self.slots.get(slot).and_then(|s| s.not_before);
            if due.is_some_and(|t| t > now) {
                continue;
            }
            let generation = self.generations.current();
            // A failed start is booked against the slot (back-off) by `start_worker`.
            let _ = self.start_worker(slot, generation, None);
        }
    }

    /// Crash-looping slots among the kept ones.
    pub(super) fn crash_looping_slots(&self) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .take(self.target)
            .filter(|(_, s)| s.quick_exits >= super::backoff::CRASH_LOOP_AFTER)
            .map(|(i, _)| i)
            .collect()
    }
}
