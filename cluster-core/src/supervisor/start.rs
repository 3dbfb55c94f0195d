//! Starting workers, their readiness and their exits; the crash back-off of a slot.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::record::{LeaveReason, Purpose, Replacing, Rotation, Slot, Worker};
use super::{
    Msg, Phase, SocketDir, Supervisor, WorkerMsg, WorkerState, backoff, heartbeat, ports,
    socket_dir, worker,
};
use crate::config::Upstream;
use crate::endpoint::Endpoint;
use crate::events::ClusterEvent;
use crate::routing::Backend;
use crate::spawn::{WorkerExit, WorkerSpec};

impl Supervisor {
    /// Starts a worker of `generation` for `slot`; `replacing` records the worker it takes
    /// over from. Returns its id, or why it could not be started (already reported).
    pub(super) fn start_worker(
        &mut self,
        slot: usize,
        generation: u64,
        replacing: Option<Replacing>,
    ) -> Result<u64, String> {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, Slot::default);
        }
        let id = self.next_id;
        self.next_id += 1;
        let recipe = self.generations.recipe(generation);
        // Shared-socket mode: every worker accepts on the front socket; `HOST` and `PORT` say
        // where that is (the `upstream` setting has no use there).
        let endpoint = match self.shared {
            Some(_) => Ok(Endpoint::Tcp(self.listen)),
            None => self.endpoint_for(id, recipe.upstream),
        };
        let endpoint = match endpoint {
            Ok(e) => e,
            Err(e) => {
                let reason = format!("no endpoint for the worker: {e}");
                self.spawn_failed(slot, generation, replacing, reason.clone());
                return Err(reason);
            }
        };
        self.slots[slot].starts += 1;
        let notify_socket = self.heartbeats.notify_socket();
        let spec = WorkerSpec {
            id,
            slot,
            generation: self.slots[slot].starts,
            endpoint: endpoint.clone(),
            watchdog: notify_socket.is_some().then_some(self.spec.health.heartbeat_timeout),
            notify_socket,
            node_ipc: recipe.node_ipc,
            listener: self.shared.as_ref().map(|s| s.listener.clone()),
        };
        let mut process = match recipe.spawner.spawn(&spec) {
            Ok(p) => p,
            Err(e) => {
                let reason = e.to_string();
                self.spawn_failed(slot, generation, replacing, reason.clone());
                return Err(reason);
            }
        };
        let pid = process.pid();
        let (stops, stop_rx) = mpsc::unbounded_channel();
        let heartbeat = heartbeat::WorkerHeartbeat::default();
        let ipc = process.take_ipc_channel().and_then(|s| self.heartbeats.attach_ipc(id, s));
        let setup = worker::Setup {
            id,
            endpoint: endpoint.clone(),
            checks: Arc::clone(&self.checks),
            start_timeout: self.spec.start_timeout,
            announced: Arc::clone(&heartbeat.announced),
            accepting: self.shared.as_ref().map(|s| s.accepting(pid)),
        };
        tokio::spawn(worker::run(process, setup, stop_rx, self.tx.clone()));
        self.workers.insert(
            id,
            Worker {
                id,
                slot,
                pid,
                endpoint: endpoint.clone(),
                generation,
                state: WorkerState::Starting,
                rotation: Rotation::In,
                started: Instant::now(),
                ready_at: None,
                stops,
                backend: None,
                replacing,
                leave: None,
                heartbeat,
                ipc,
            },
        );
        self.emit(ClusterEvent::WorkerStarted {
            worker_id: id,
            slot,
            pid,
            addr: endpoint,
            generation,
        });
        Ok(id)
    }

    /// A private endpoint for worker `id`: a free loopback port no live worker holds, or a
    /// socket path named after the id in the cluster's socket directory (made now if this
    /// is the first worker on a Unix socket).
    fn endpoint_for(&mut self, id: u64, upstream: Upstream) -> Result<Endpoint, String> {
        match upstream {
            Upstream::Tcp => {
                let in_use: HashSet<SocketAddr> =
                    self.workers.values().filter_map(|w| w.endpoint.tcp()).collect();
                ports::free_endpoint(&in_use).map(Endpoint::Tcp).map_err(|e| e.to_string())
            }
            Upstream::Unix => {
                if self.socket_dir.is_none() {
                    let dir = SocketDir::create(&self.spec.hardening).map_err(|e| e.to_string())?;
                    self.socket_dir = Some(dir);
                }
                let dir = self.socket_dir.as_ref().expect("made above");
                dir.socket_for(id).map(Endpoint::Unix).map_err(|e| e.to_string())
            }
        }
    }

    /// A start that produced no process.
    fn spawn_failed(
        &mut self,
        slot: usize,
        generation: u64,
        replacing: Option<Replacing>,
        reason: String,
    ) {
        self.emit(ClusterEvent::WorkerFailedStart { slot, reason: reason.clone() });
        match replacing {
            Some(r) => self.replacement_failed(r, slot, &reason),
            None => {
                self.count_exit(slot, true, format!("failed to start: {reason}"));
                self.new_worker_failed(generation, &reason);
            }
        }
    }

    /// Moves worker `id` to `to`, along the allowed transitions only, with an event.
    pub(super) fn set_state(&mut self, id: u64, to: WorkerState) {
        let Some(w) = self.workers.get_mut(&id) else { return };
        let from = w.state;
        if from == to {
            return;
        }
        if !from.can_become(to) {
            tracing::error!(worker = id, %from, %to, "refused worker state transition");
            return;
        }
        w.state = to;
        let slot = w.slot;
        // A worker that became ready (or left) is in (or out of) the table by the time anyone
        // hears of it.
        self.sync_routes();
        self.emit(ClusterEvent::WorkerState { worker_id: id, slot, from, to });
    }

    pub(super) fn on_worker(&mut self, msg: WorkerMsg) {
        match msg {
            WorkerMsg::Ready { id } => self.on_ready(id),
            WorkerMsg::StartTimedOut { id } => {
                let Some(w) = self.workers.get(&id) else { return };
                if w.state != WorkerState::Starting || w.leave.is_some() {
                    return;
                }
                let slot = w.slot;
                let reason = format!("not ready within {} ms", self.spec.start_timeout.as_millis());
                self.emit(ClusterEvent::WorkerFailedStart { slot, reason: reason.clone() });
                self.retire(id, LeaveReason::FailedStart(reason));
            }
            WorkerMsg::Exited { id, exit } => self.on_exit(id, exit),
        }
    }

    fn on_ready(&mut self, id: u64) {
        let Some(w) = self.workers.get_mut(&id) else { return };
        if w.state != WorkerState::Starting || w.leave.is_some() {
            return;
        }
        let backend = Arc::new(Backend::new(id, w.slot, w.endpoint.clone()).with_pid(w.pid));
        if self.slots[w.slot].starts > 1 {
            // A worker joining a serving pool starts cold: under `slowStartWindow` its share
            // ramps up. The first workers start together.
            backend.load().mark_ready();
        }
        w.backend = Some(backend);
        w.ready_at = Some(Instant::now());
        let settle = self.spec.rolling_restart.min_ready;
        let settling = !settle.is_zero()
            && w.replacing.as_ref().is_some_and(|r| matches!(r.purpose, Purpose::Rollout(_)));
        // A rolling restart's replacement serves beside the old worker until it has stayed
        // ready for `rollingRestart.minReady`; it takes over then.
        let replacing = if settling { None } else { w.replacing.take() };
        self.set_state(id, WorkerState::Ready);
        match replacing {
            Some(r) => self.replacement_ready(id, r),
            None if settling => self.after(settle, Msg::Settled { id }),
            None => self.restart_worker_ready(id),
        }
    }

    /// A rolling restart's replacement has stayed ready long enough: it takes over.
    pub(super) fn on_settled(&mut self, id: u64) {
        let Some(w) = self.workers.get_mut(&id) else { return };
        if w.state != WorkerState::Ready || w.leave.is_some() {
            return;
        }
        if let Some(r) = w.replacing.take() {
            self.replacement_ready(id, r);
        }
    }

    fn on_exit(&mut self, id: u64, exit: Result<WorkerExit, String>) {
        let Some(w) = self.workers.get(&id) else { return };
        let state_before = w.state;
        self.set_state(id, WorkerState::Exited);
        let Some(w) = self.workers.remove(&id) else { return };
        self.health.forget(id);
        if let Some(path) = w.endpoint.unix() {
            // A worker that crashed (or was killed) leaves its socket file behind.
            socket_dir::remove_socket(path);
        }
        let (code, signal) = match &exit {
            Ok(e) => (e.code, e.signal),
            Err(_) => (None, None),
        };
        let expected = w.leave.as_ref().is_some_and(LeaveReason::expected);
        self.counters.exited(w.leave.as_ref());
        self.emit(ClusterEvent::WorkerExited {
            worker_id: id,
            slot: w.slot,
            pid: w.pid,
            code,
            signal,
            expected,
            reason: w.leave.as_ref().map(ToString::to_string),
        });
        let how = match (code, signal) {
            (_, Some(sig)) => format!("killed by signal {sig}"),
            (Some(code), _) => format!("exited with code {code}"),
            _ => "exited".to_owned(),
        };
        if let Some(r) = w.replacing {
            // A replacement that never took over: a failure, unless the cluster stopped it
            // for a reason of its own (its slot was scaled away, a restart, shutdown).
            let reason = match &w.leave {
                None => match w.ready_at {
                    Some(t) => {
                        format!("{how} {:.1} s after it became ready", t.elapsed().as_secs_f64())
                    }
                    None => format!("{how} before it was ready"),
                },
                Some(LeaveReason::FailedStart(why)) => why.clone(),
                Some(LeaveReason::ScaleDown | LeaveReason::Restart | LeaveReason::Shutdown) => {
                    return;
                }
                Some(other) => other.to_string(),
            };
            self.replacement_failed(r, w.slot, &reason);
            return;
        }
        if w.leave.is_none() {
            // A worker of an operation's generation that crashes before it is ready, or soon
            // after, fails the operation: the new build does not run.
            let ready_for = w.ready_at.map(|t| t.elapsed());
            match ready_for {
                None => self.new_worker_failed(w.generation, &format!("{how} before it was ready")),
                Some(d) if d < backoff::QUICK_EXIT => self.new_worker_failed(
                    w.generation,
                    &format!("{how} {:.1} s after it became ready", d.as_secs_f64()),
                ),
                Some(_) => {}
            }
        }
        let quick = w.started.elapsed() < backoff::QUICK_EXIT;
        match w.leave {
            None => self.count_exit(w.slot, quick || state_before == WorkerState::Starting, how),
            Some(LeaveReason::FailedStart(why)) => {
                self.new_worker_failed(w.generation, &why);
                self.count_exit(w.slot, true, format!("failed to start: {why}"));
            }
            Some(LeaveReason::SaidStopping) => {
                self.count_exit(w.slot, quick, format!("stopped by itself ({how})"));
            }
            Some(LeaveReason::Killed(why)) => {
                // The cluster killed it: its reason stands, and it is no crash (no back-off).
                let s = &mut self.slots[w.slot];
                s.restarts += 1;
                s.last_reason = Some(format!("killed: {why}"));
            }
            Some(_) => {}
        }
    }

    /// Books an exit the cluster did not ask for (or a health kill's) against `slot`: the
    /// slot's next start waits out the back-off when the exits come quickly.
    pub(super) fn count_exit(&mut self, slot: usize, quick: bool, reason: String) {
        if self.phase != Phase::Running || slot >= self.slots.len() {
            return;
        }
        let s = &mut self.slots[slot];
        s.quick_exits = if quick { s.quick_exits + 1 } else { 0 };
        s.restarts += 1;
        s.last_reason = Some(reason);
        let delay = backoff::restart_delay(s.quick_exits);
        if s.quick_exits >= backoff::CRASH_LOOP_AFTER && slot < self.target {
            let quick_exits = s.quick_exits;
            self.emit(ClusterEvent::CrashLooping { slot, quick_exits, retry_in: delay });
        }
        if delay.is_zero() {
            self.slots[slot].not_before = None;
        } else {
            self.slots[slot].not_before = Some(Instant::now() + delay);
            self.after(delay, Msg::RestartDue);
        }
    }

    /// The worker started to replace `id`, if one is starting.
    pub(super) fn replacement_of(&self, id: u64) -> Option<u64> {
        self.workers
            .values()
            .find(|w| w.holds_slot() && w.replacing.as_ref().is_some_and(|r| r.old == id))
            .map(|w| w.id)
    }

    /// Replacements under way for `purpose`.
    pub(super) fn replacements_for(&self, purpose: impl Fn(&Purpose) -> bool) -> Vec<u64> {
        self.workers
            .values()
            .filter(|w| w.holds_slot())
            .filter(|w| w.replacing.as_ref().is_some_and(|r| purpose(&r.purpose)))
            .map(|w| w.id)
            .collect()
    }
}
