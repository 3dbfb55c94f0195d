//! The one replacement path every recycle goes through: start the replacement, wait until
//! it is ready, take the old worker out of rotation, drain its in-flight requests, stop it.
//!
//! Capacity never drops below the ready workers there were (surge of one per recycle), and
//! one recycle runs at a time unless `health.maxConcurrentRecycles` allows more; further
//! requests wait in a queue. A replacement that fails to start
//! abandons its recycle: the old worker keeps serving.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::worker::Stop;
use super::{Msg, Phase, Supervisor, Worker, WorkerState};
use crate::events::ClusterEvent;

/// How often a draining worker's in-flight count is looked at.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// Recycles waiting and the one under way.
#[derive(Debug, Default)]
pub(super) struct Recycles {
    queue: VecDeque<(u64, String)>,
    /// The workers being replaced right now, with the reason.
    active: BTreeMap<u64, String>,
}

impl Recycles {
    /// Whether worker `id` is being replaced right now (its replacement is starting).
    pub(super) fn is_replacing(&self, id: u64) -> bool {
        self.active.contains_key(&id)
    }
}

impl Supervisor {
    /// Queues the replacement of worker `id` (ignored unless it is ready and not already
    /// queued or being replaced).
    pub(super) fn request_recycle(&mut self, id: u64, reason: String) {
        if self.phase != Phase::Running {
            return;
        }
        let ready = self.workers.get(&id).is_some_and(|w| w.state == WorkerState::Ready);
        let known = self.recycles.active.contains_key(&id)
            || self.recycles.queue.iter().any(|(q, _)| *q == id);
        if !ready || known {
            tracing::debug!(worker = id, "recycle ignored: worker not ready or already queued");
            return;
        }
        self.recycles.queue.push_back((id, reason));
        self.start_next_recycle();
    }

    fn start_next_recycle(&mut self) {
        let max = self.spec.health.max_concurrent_recycles.max(1);
        while self.recycles.active.len() < max && self.phase == Phase::Running {
            let Some((id, reason)) = self.recycles.queue.pop_front() else { return };
            let Some(w) = self.workers.get(&id).filter(|w| w.state == WorkerState::Ready) else {
                continue;
            };
            let slot = w.slot;
            self.recycles.active.insert(id, reason.clone());
            self.emit(ClusterEvent::Recycling { worker_id: id, slot, reason });
            if let Some(new) = self.start_worker(slot, Some(id)) {
                self.slots[slot].replacement = Some(new);
            }
            // On failure, `failed_start` has already abandoned this recycle (and started the
            // next one).
        }
    }

    /// The replacement `new` is ready and in rotation: retire `old`.
    pub(super) fn replacement_ready(&mut self, new: u64, old: u64) {
        let Some(slot) = self.workers.get(&new).map(|w| w.slot) else { return };
        self.slots[slot].replacement = None;
        let Some(w) = self.workers.get(&old).filter(|w| w.state == WorkerState::Ready) else {
            return;
        };
        let backend = w.backend.clone();
        // Counted once the replacement serves, not when it was attempted.
        self.slots[slot].recycles += 1;
        self.slots[slot].last_reason = self.recycles.active.get(&old).cloned();
        self.router.remove(old);
        self.set_state(old, WorkerState::Draining);
        let deadline = Instant::now() + self.spec.graceful_shutdown_timeout;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while backend.as_ref().is_some_and(|b| b.load().in_flight() > 0)
                && Instant::now() < deadline
            {
                tokio::time::sleep(DRAIN_POLL).await;
            }
            let _ = tx.send(Msg::Drained { id: old });
        });
        self.emit(ClusterEvent::Recycled { worker_id: old, replacement_id: new, slot });
    }

    /// A retiring worker has drained: ask it to stop.
    pub(super) fn on_drained(&mut self, id: u64) {
        if self.workers.get(&id).is_none_or(|w| w.state != WorkerState::Draining) {
            return;
        }
        self.set_state(id, WorkerState::Stopping);
        let deadline = Instant::now() + self.spec.graceful_shutdown_timeout;
        let _ = self.workers[&id].stops.send(Stop::Graceful { deadline });
    }

    /// The replacement for `old` in `slot` could not be started or died before it was
    /// ready: `old` keeps serving, and the next recycle may go ahead.
    pub(super) fn recycle_failed(&mut self, slot: usize, old: u64) {
        self.slots[slot].replacement = None;
        self.recycles.active.remove(&old);
        self.emit(ClusterEvent::RecycleFailed { worker_id: old, slot });
        let slot_served = self.workers.values().any(|w| w.slot == slot);
        if !slot_served {
            // The old worker died meanwhile: the slot is empty, fill it the normal way.
            self.schedule_restart(slot, true, "replacement failed to start".into());
        }
        self.start_next_recycle();
    }

    /// Recycle bookkeeping for an exited worker. Returns `true` when the exit needs no
    /// restart (a replacement is or was taking care of the slot).
    pub(super) fn recycle_exit(&mut self, w: &Worker, before: WorkerState) -> bool {
        if let Some(old) = w.replaces {
            if self.slots[w.slot].replacement == Some(w.id) {
                // The replacement died before it took over.
                self.recycle_failed(w.slot, old);
                return true;
            }
        }
        if self.recycles.active.remove(&w.id).is_some() {
            let replacement_pending = self.slots[w.slot].replacement.is_some();
            self.start_next_recycle();
            // Died while its replacement was starting, or after it took over (draining or
            // stopping): the replacement has the slot.
            return replacement_pending
                || matches!(before, WorkerState::Draining | WorkerState::Stopping);
        }
        false
    }
}
