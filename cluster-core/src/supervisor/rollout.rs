//! Operations that replace every worker with a new generation: the rolling restart, the
//! restart all at once, and the rollback of a failed rolling restart.
//!
//! A rolling restart starts a new generation and replaces, `rollingRestart.maxSurge` at a
//! time (1 by default), every serving worker of another generation: the replacement starts,
//! enters rotation once ready, and only then is the old worker retired, so the ready count
//! never drops. It works on the slots as they are at each step, so a scale change made before
//! or during it persists. If a new worker fails to become ready, the operation stops, the
//! replacements still starting are stopped, the previous generation becomes current again,
//! and the workers already replaced are rolled back to it the same way.
//!
//! Operations run one at a time: a second one is refused as busy, never interleaved.

use std::collections::BTreeSet;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::counters::Outcome;
use super::record::{LeaveReason, Purpose, Replacing};
use super::{Phase, Supervisor, WorkerState};
use crate::control::{ControlError, Operation, OperationError, OperationKind, OperationReport};
use crate::events::ClusterEvent;

/// The operation under way, if any.
#[derive(Debug, Default)]
pub(super) struct Rollouts {
    current: Option<Op>,
    next_id: u64,
}

#[derive(Debug)]
struct Op {
    id: u64,
    kind: OperationKind,
    /// The generation it moves the workers to.
    generation: u64,
    /// The generation that was current when it started (what a rollback returns to).
    from: u64,
    started: Instant,
    /// Slots that hold a worker of its generation by its doing (a crash restart in one of
    /// them does not count twice).
    replaced: BTreeSet<usize>,
    reply: Option<oneshot::Sender<Result<OperationReport, OperationError>>>,
}

impl Rollouts {
    /// Drops the operation under way; its caller learns that the cluster is gone.
    pub(super) fn abandon(&mut self) {
        self.current = None;
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

impl Supervisor {
    /// Starts a rolling restart.
    ///
    /// # Errors
    ///
    /// Busy while another operation runs; shutting down.
    pub(super) fn start_rolling_restart(&mut self, by: &str) -> Result<Operation, ControlError> {
        self.refuse_if_busy()?;
        let from = self.generations.current();
        let generation = self.generations.advance();
        Ok(self.begin(OperationKind::RollingRestart, generation, from, by))
    }

    /// Starts a restart of every worker at once: all are retired now (each drains its
    /// in-flight requests) and every slot starts a worker of the new generation at once.
    /// Capacity dips until they are ready.
    ///
    /// # Errors
    ///
    /// Busy while another operation runs; shutting down.
    pub(super) fn start_restart(&mut self, by: &str) -> Result<Operation, ControlError> {
        self.refuse_if_busy()?;
        let from = self.generations.current();
        let generation = self.generations.advance();
        let operation = self.begin(OperationKind::Restart, generation, from, by);
        let old: Vec<u64> =
            self.workers.values().filter(|w| w.holds_slot()).map(|w| w.id).collect();
        for id in old {
            self.retire(id, LeaveReason::Restart);
        }
        for slot in &mut self.slots {
            // A deliberate restart starts afresh: no crash back-off carried over.
            slot.not_before = None;
            slot.quick_exits = 0;
        }
        Ok(operation)
    }

    pub(super) fn refuse_if_busy(&self) -> Result<(), ControlError> {
        self.refuse_if_stopping()?;
        if let Some(operation) = self.upgrade_under_way() {
            return Err(ControlError::Busy { operation });
        }
        match &self.rollout.current {
            Some(op) => Err(ControlError::Busy { operation: self.describe(op) }),
            None => Ok(()),
        }
    }

    fn describe(&self, op: &Op) -> String {
        let total = op.replaced.len() + self.remaining(op);
        format!("{} #{} ({} of {total} replaced)", op.kind, op.id, op.replaced.len())
    }

    fn begin(&mut self, kind: OperationKind, generation: u64, from: u64, by: &str) -> Operation {
        let id = self.rollout.next_id();
        let (reply, outcome) = oneshot::channel();
        let op = Op {
            id,
            kind,
            generation,
            from,
            started: Instant::now(),
            replaced: BTreeSet::new(),
            reply: Some(reply),
        };
        let workers = self.remaining(&op);
        self.counters.operation(kind, Outcome::Started);
        self.emit(ClusterEvent::OperationStarted {
            operation: id,
            kind,
            workers,
            generation,
            by: by.to_owned(),
        });
        self.rollout.current = Some(op);
        Operation { id, kind, workers, outcome }
    }

    /// Workers the operation still has to replace: serving or starting workers of the kept
    /// slots that belong to another generation (for a restart, the slots without a ready
    /// worker of its generation).
    fn remaining(&self, op: &Op) -> usize {
        match op.kind {
            OperationKind::Restart => (0..self.target)
                .filter(|&slot| {
                    !self
                        .workers
                        .values()
                        .any(|w| w.slot == slot && w.generation == op.generation && w.serving())
                })
                .count(),
            _ => self
                .workers
                .values()
                .filter(|w| w.holds_slot() && w.slot < self.target)
                .filter(|w| w.generation != op.generation && w.replacing.is_none())
                .count(),
        }
    }

    /// Moves the operation under way on: starts replacements up to the surge, and completes it
    /// when nothing is left to replace.
    pub(super) fn step_operations(&mut self) {
        let Some(op) = &self.rollout.current else { return };
        let (id, kind, generation) = (op.id, op.kind, op.generation);
        if kind != OperationKind::Restart {
            let surge = self.spec.rolling_restart.max_surge.max(1);
            let mut under_way = self.replacements_for(|p| *p == Purpose::Rollout(id)).len();
            while under_way < surge {
                let next = self
                    .workers
                    .values()
                    .filter(|w| w.serving() && w.slot < self.target && w.generation != generation)
                    .filter(|w| w.replacing.is_none())
                    .find(|w| self.replacement_of(w.id).is_none())
                    .map(|w| (w.id, w.slot));
                let Some((old, slot)) = next else { break };
                let replacing = Replacing { old, purpose: Purpose::Rollout(id) };
                if self.start_worker(slot, generation, Some(replacing)).is_err() {
                    // `replacement_failed` has ended the operation.
                    return;
                }
                under_way += 1;
            }
            if under_way > 0 {
                return;
            }
        }
        let Some(op) = &self.rollout.current else { return };
        if self.remaining(op) == 0 && self.settled(op) {
            self.finish();
        }
    }

    /// Whether every worker of the operation's generation has stayed ready for
    /// `rollingRestart.minReady` (a rolling restart's replacements only take over once they
    /// have, so only a restart's workers need looking at here).
    fn settled(&self, op: &Op) -> bool {
        let min = self.spec.rolling_restart.min_ready;
        let now = Instant::now();
        self.workers
            .values()
            .filter(|w| w.serving() && w.generation == op.generation)
            .all(|w| w.ready_at.is_some_and(|t| now.saturating_duration_since(t) >= min))
    }

    fn finish(&mut self) {
        let Some(mut op) = self.rollout.current.take() else { return };
        let took = op.started.elapsed();
        let replaced = op.replaced.len();
        self.counters.operation(op.kind, Outcome::Finished);
        self.emit(ClusterEvent::OperationFinished {
            operation: op.id,
            kind: op.kind,
            replaced,
            took,
        });
        if let Some(reply) = op.reply.take() {
            let _ = reply.send(Ok(OperationReport { id: op.id, replaced, took }));
        }
        self.prune_generations();
    }

    /// Forgets spawners no live worker needs.
    pub(super) fn prune_generations(&mut self) {
        let keep: Vec<u64> =
            self.rollout.current.iter().flat_map(|op| [op.from, op.generation]).collect();
        let live: Vec<u64> = self.workers.values().map(|w| w.generation).collect();
        self.generations.prune(live, &keep);
    }

    /// Replacement `new` of operation `op` took over from `old` (which had pid `old_pid`).
    pub(super) fn rollout_replaced(&mut self, op: u64, old: u64, old_pid: Option<u32>, new: u64) {
        let new_pid = self.workers.get(&new).map_or(0, |w| w.pid);
        let slot = self.workers.get(&new).map_or(0, |w| w.slot);
        let Some(current) = self.rollout.current.as_mut().filter(|c| c.id == op) else { return };
        current.replaced.insert(slot);
        let (kind, done) = (current.kind, current.replaced.len());
        let total = done + self.rollout.current.as_ref().map_or(0, |c| self.remaining(c));
        self.emit(ClusterEvent::OperationProgress {
            operation: op,
            kind,
            done,
            total,
            slot,
            old_worker_id: Some(old),
            old_pid,
            new_worker_id: new,
            new_pid,
        });
    }

    /// A worker of a restart's generation became ready.
    pub(super) fn restart_worker_ready(&mut self, id: u64) {
        let Some(w) = self.workers.get(&id) else { return };
        let (generation, slot, pid) = (w.generation, w.slot, w.pid);
        let Some(op) = self.rollout.current.as_mut() else { return };
        if op.kind != OperationKind::Restart || op.generation != generation || slot >= self.target {
            return;
        }
        let min_ready = self.spec.rolling_restart.min_ready;
        if !min_ready.is_zero() {
            // Look again once it has stayed ready long enough.
            self.after(min_ready, super::Msg::Settled { id });
        }
        let Some(op) = self.rollout.current.as_mut() else { return };
        if !op.replaced.insert(slot) {
            // A crash restart of a slot already counted.
            return;
        }
        let (operation, done) = (op.id, op.replaced.len());
        let total = done + self.rollout.current.as_ref().map_or(0, |c| self.remaining(c));
        self.emit(ClusterEvent::OperationProgress {
            operation,
            kind: OperationKind::Restart,
            done,
            total,
            slot,
            old_worker_id: None,
            old_pid: None,
            new_worker_id: id,
            new_pid: pid,
        });
    }

    /// A worker of `generation` that was not a replacement failed before it was ready: if it
    /// belongs to the operation under way, the operation fails.
    pub(super) fn new_worker_failed(&mut self, generation: u64, reason: &str) {
        let Some(op) = &self.rollout.current else { return };
        if op.generation == generation {
            let id = op.id;
            self.rollout_failed(id, reason);
        }
    }

    /// Operation `op` failed because a new worker did not become ready (or crashed soon after).
    pub(super) fn rollout_failed(&mut self, op: u64, reason: &str) {
        if self.rollout.current.as_ref().is_none_or(|c| c.id != op) {
            return;
        }
        let Some(mut failed) = self.rollout.current.take() else { return };
        let rolling = failed.kind != OperationKind::Restart;
        if rolling {
            // Workers of the failed generation still starting (replacements, and crash
            // restarts made during it) never served: stop them; their slots start again from
            // the previous generation.
            let starting: Vec<u64> = self
                .workers
                .values()
                .filter(|w| w.holds_slot() && w.generation == failed.generation)
                .filter(|w| w.state == WorkerState::Starting)
                .map(|w| w.id)
                .collect();
            let why = format!("{} #{op} failed", failed.kind);
            for id in starting {
                self.retire(id, LeaveReason::Cancelled(why.clone()));
            }
            self.generations.revert_to(failed.from);
        }
        let rolled_back = if failed.kind == OperationKind::RollingRestart {
            self.workers
                .values()
                .filter(|w| w.serving() && w.generation == failed.generation)
                .count()
        } else {
            0
        };
        let reason = match failed.kind {
            OperationKind::RollingRestart => format!(
                "a worker of the new generation did not become ready: {reason}; the previous generation keeps serving"
            ),
            OperationKind::Rollback => {
                format!("a worker of the previous generation did not become ready: {reason}")
            }
            _ => format!(
                "a worker of the new generation did not become ready: {reason}; it is restarted with crash back-off"
            ),
        };
        self.counters.operation(failed.kind, Outcome::Failed);
        self.emit(ClusterEvent::OperationFailed {
            operation: op,
            kind: failed.kind,
            reason: reason.clone(),
            rolled_back,
        });
        if let Some(reply) = failed.reply.take() {
            let _ = reply.send(Err(OperationError::Failed { reason, rolled_back }));
        }
        if rolled_back > 0 && self.phase == Phase::Running {
            let from = failed.generation;
            self.begin(OperationKind::Rollback, failed.from, from, "rollback");
        }
        self.prune_generations();
    }

    /// Shutdown began: the operation under way ends unfinished.
    pub(super) fn interrupt_operation(&mut self) {
        let Some(mut op) = self.rollout.current.take() else { return };
        self.counters.operation(op.kind, Outcome::Failed);
        self.emit(ClusterEvent::OperationFailed {
            operation: op.id,
            kind: op.kind,
            reason: "interrupted by shutdown".into(),
            rolled_back: 0,
        });
        if let Some(reply) = op.reply.take() {
            let _ = reply.send(Err(OperationError::ShuttingDown));
        }
    }

    /// The operation under way, for status: (id, kind, done, total).
    pub(super) fn operation_status(&self) -> Option<crate::status::OperationStatus> {
        let op = self.rollout.current.as_ref()?;
        Some(crate::status::OperationStatus {
            id: op.id,
            kind: op.kind,
            done: op.replaced.len(),
            total: op.replaced.len() + self.remaining(op),
            generation: op.generation,
        })
    }
}
