//! The supervisor: keeps N workers ready, one lifecycle state machine per worker.
//!
//! It is a single task that owns all worker bookkeeping and reacts to messages: commands from
//! [`ClusterHandle`](crate::ClusterHandle) and reports from the per-worker tasks
//! ([`worker::run`]). Nothing else mutates worker state, so concurrent operations cannot
//! corrupt it.

mod backoff;
mod health;
mod heartbeat;
mod ipc;
mod lines;
mod notify;
mod owner;
mod ports;
mod readiness;
mod recycle;
mod state;
mod worker;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use state::WorkerState;
pub(crate) use worker::WorkerMsg;

use self::readiness::Probe;
use self::worker::Stop;
use crate::config::ClusterSpec;
use crate::events::ClusterEvent;
use crate::metrics::WindowRates;
use crate::routing::{Backend, Router};
use crate::spawn::{Spawner, WorkerSpec};
use crate::status::{ClusterStatus, HealthSummary, WorkerStatus};

/// Least time a worker gets between SIGTERM and SIGKILL at shutdown, even when draining used
/// up the whole graceful timeout.
const MIN_STOP_GRACE: Duration = Duration::from_secs(1);

/// How shutdown should proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Stop accepting, let in-flight requests finish (up to the graceful timeout), SIGTERM
    /// the workers, SIGKILL those still alive at the deadline.
    Graceful,
    /// SIGKILL every worker now.
    Immediate,
}

/// A request on the control path.
#[derive(Debug)]
pub(crate) enum Control {
    Status(oneshot::Sender<ClusterStatus>),
    Shutdown(ShutdownMode),
    Recycle { worker_id: u64, reason: String },
}

/// Everything the supervisor task reacts to.
#[derive(Debug)]
pub(crate) enum Msg {
    Control(Control),
    Worker(WorkerMsg),
    RestartDue {
        slot: usize,
    },
    DrainDone,
    /// A retiring worker has no request in flight any more (or its drain time is up).
    Drained {
        id: u64,
    },
    /// Time to sample and judge the workers.
    HealthTick,
    /// Resource samples of the ready workers, taken at `at`.
    Samples {
        measured: Vec<health::Measured>,
        at: std::time::Instant,
    },
    /// What a worker said about itself (notify socket, IPC channel).
    Heartbeat(heartbeat::HeartbeatMsg),
}

/// One live worker process.
#[derive(Debug)]
struct Worker {
    id: u64,
    slot: usize,
    pid: u32,
    endpoint: SocketAddr,
    state: WorkerState,
    started: Instant,
    /// When it passed its readiness probe.
    ready_at: Option<std::time::Instant>,
    stops: mpsc::UnboundedSender<Stop>,
    backend: Option<Arc<Backend>>,
    failed_start: bool,
    /// The worker this one was started to replace (a recycle), if any.
    replaces: Option<u64>,
    /// What it said about itself.
    heartbeat: heartbeat::WorkerHeartbeat,
}

/// One position in the pool of N workers; survives its workers.
#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    quick_exits: u32,
    restarts: u32,
    /// Workers of this slot replaced through the recycle path.
    recycles: u32,
    /// Why the slot's worker was last restarted or replaced.
    last_reason: Option<String>,
    restart_pending: bool,
    /// A replacement being started for this slot's worker (a recycle in progress).
    replacement: Option<u64>,
}

/// Drain and shutdown progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// The proxy is draining in-flight requests until `deadline`.
    Draining {
        deadline: Instant,
    },
    /// Workers have been asked to stop.
    Stopping,
}

pub(crate) struct Supervisor {
    spec: Arc<ClusterSpec>,
    spawner: Arc<dyn Spawner>,
    router: Arc<Router>,
    events: broadcast::Sender<ClusterEvent>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    listen: SocketAddr,
    probe: Probe,
    workers: BTreeMap<u64, Worker>,
    slots: Vec<Slot>,
    next_id: u64,
    phase: Phase,
    proxy_stop: CancellationToken,
    proxy_done: Option<oneshot::Receiver<()>>,
    recycles: recycle::Recycles,
    health: health::Health,
    heartbeats: heartbeat::Heartbeats,
}

/// The parts a [`Supervisor`] is built from.
pub(crate) struct SupervisorParts {
    pub(crate) spec: Arc<ClusterSpec>,
    pub(crate) hooks: crate::cluster::HealthHooks,
    pub(crate) spawner: Arc<dyn Spawner>,
    pub(crate) router: Arc<Router>,
    pub(crate) events: broadcast::Sender<ClusterEvent>,
    pub(crate) tx: mpsc::UnboundedSender<Msg>,
    pub(crate) rx: mpsc::UnboundedReceiver<Msg>,
    pub(crate) listen: SocketAddr,
    pub(crate) proxy_stop: CancellationToken,
    pub(crate) proxy_done: oneshot::Receiver<()>,
}

impl Supervisor {
    pub(crate) fn new(p: SupervisorParts) -> Self {
        let probe = Probe::new(p.spec.health_check_path.as_deref());
        let health = health::Health::from_spec(&p.spec, p.hooks);
        let heartbeats = heartbeat::Heartbeats::start(p.tx.clone());
        let slots = (0..p.spec.workers).map(|_| Slot::default()).collect();
        Self {
            spec: p.spec,
            spawner: p.spawner,
            router: p.router,
            events: p.events,
            tx: p.tx,
            rx: p.rx,
            listen: p.listen,
            probe,
            workers: BTreeMap::new(),
            slots,
            next_id: 1,
            phase: Phase::Running,
            proxy_stop: p.proxy_stop,
            proxy_done: Some(p.proxy_done),
            recycles: recycle::Recycles::default(),
            health,
            heartbeats,
        }
    }

    /// Starts the workers and runs until shutdown has completed: every worker has exited.
    pub(crate) async fn run(mut self) {
        for slot in 0..self.slots.len() {
            self.start_worker(slot, None);
        }
        let ticks = self.tx.clone();
        let period = self.spec.health_check_interval;
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            while ticks.send(Msg::HealthTick).is_ok() {
                interval.tick().await;
            }
        });
        while let Some(msg) = self.rx.recv().await {
            match msg {
                Msg::Control(Control::Status(reply)) => {
                    let _ = reply.send(self.status());
                }
                Msg::Control(Control::Shutdown(mode)) => self.shutdown(mode),
                Msg::Control(Control::Recycle { worker_id, reason }) => {
                    self.request_recycle(worker_id, reason);
                }
                Msg::Drained { id } => self.on_drained(id),
                Msg::HealthTick => self.health_tick(),
                Msg::Samples { measured, at } => self.on_samples(measured, at),
                Msg::Worker(m) => self.on_worker(m),
                Msg::Heartbeat(m) => self.on_heartbeat(m),
                Msg::RestartDue { slot } => {
                    self.slots[slot].restart_pending = false;
                    if self.phase == Phase::Running {
                        self.start_worker(slot, None);
                    }
                }
                Msg::DrainDone => self.stop_all(),
            }
            if self.phase == Phase::Stopping && self.workers.is_empty() {
                break;
            }
        }
    }

    fn emit(&self, event: ClusterEvent) {
        let _ = self.events.send(event);
    }

    /// Starts a worker for `slot`; `replaces` names the worker it will take over from (a
    /// recycle). Returns the new worker's id, `None` when it could not be started.
    fn start_worker(&mut self, slot: usize, replaces: Option<u64>) -> Option<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let in_use: HashSet<SocketAddr> = self.workers.values().map(|w| w.endpoint).collect();
        let endpoint = match ports::free_endpoint(&in_use) {
            Ok(e) => e,
            Err(e) => {
                self.failed_start(slot, replaces, format!("no endpoint for the worker: {e}"));
                return None;
            }
        };
        self.slots[slot].generation += 1;
        let notify_socket = self.heartbeats.notify_socket();
        let spec = WorkerSpec {
            id,
            slot,
            generation: self.slots[slot].generation,
            endpoint,
            watchdog: notify_socket.is_some().then_some(self.spec.health.heartbeat_timeout),
            notify_socket,
            node_ipc: self.spec.health.node_ipc,
        };
        let mut process = match self.spawner.spawn(&spec) {
            Ok(p) => p,
            Err(e) => {
                self.failed_start(slot, replaces, e.to_string());
                return None;
            }
        };
        let pid = process.pid();
        let (stops, stop_rx) = mpsc::unbounded_channel();
        let heartbeat = heartbeat::WorkerHeartbeat::default();
        let setup = worker::Setup {
            id,
            endpoint,
            probe: self.probe.clone(),
            start_timeout: self.spec.start_timeout,
            heartbeat: self.heartbeats.link(id, &heartbeat, process.take_ipc_channel()),
        };
        tokio::spawn(worker::run(process, setup, stop_rx, self.tx.clone()));
        self.workers.insert(
            id,
            Worker {
                id,
                slot,
                pid,
                endpoint,
                state: WorkerState::Starting,
                started: Instant::now(),
                ready_at: None,
                stops,
                backend: None,
                failed_start: false,
                replaces,
                heartbeat,
            },
        );
        self.emit(ClusterEvent::WorkerStarted { worker_id: id, slot, pid, addr: endpoint });
        Some(id)
    }

    /// A start that never produced a process: counts as a quick exit, unless it was a
    /// replacement (then the recycle is abandoned and the old worker keeps serving).
    fn failed_start(&mut self, slot: usize, replaces: Option<u64>, reason: String) {
        self.emit(ClusterEvent::WorkerFailedStart { slot, reason });
        match replaces {
            Some(old) => self.recycle_failed(slot, old),
            None => self.schedule_restart(slot, true, "failed to start".into()),
        }
    }

    fn set_state(&mut self, id: u64, to: WorkerState) {
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
        self.emit(ClusterEvent::WorkerState { worker_id: id, slot, from, to });
    }

    fn on_worker(&mut self, msg: WorkerMsg) {
        match msg {
            WorkerMsg::Ready { id } => {
                let Some(w) = self.workers.get_mut(&id) else { return };
                if w.state != WorkerState::Starting {
                    return;
                }
                let backend = Arc::new(Backend::new(id, w.slot, w.endpoint));
                w.backend = Some(Arc::clone(&backend));
                w.ready_at = Some(std::time::Instant::now());
                let replaces = w.replaces;
                if self.slots[w.slot].generation > 1 {
                    // A worker joining a serving pool (a replacement) starts cold: under
                    // `slowStartWindow` its share ramps up. The first workers start together.
                    backend.load().mark_ready();
                }
                self.router.add(backend);
                self.set_state(id, WorkerState::Ready);
                if let Some(old) = replaces {
                    self.replacement_ready(id, old);
                }
            }
            WorkerMsg::StartTimedOut { id } => {
                let Some(w) = self.workers.get_mut(&id) else { return };
                w.failed_start = true;
                let (slot, timeout) = (w.slot, self.spec.start_timeout);
                self.emit(ClusterEvent::WorkerFailedStart {
                    slot,
                    reason: format!("not ready within {} ms", timeout.as_millis()),
                });
                self.set_state(id, WorkerState::Stopping);
            }
            WorkerMsg::Exited { id, exit } => self.on_exit(id, exit),
        }
    }

    fn on_exit(&mut self, id: u64, exit: Result<crate::spawn::WorkerExit, String>) {
        self.router.remove(id);
        let Some(before) = self.workers.get(&id).map(|w| w.state) else { return };
        self.set_state(id, WorkerState::Exited);
        let Some(w) = self.workers.remove(&id) else { return };
        let expected = before == WorkerState::Stopping && !w.failed_start;
        let (code, signal) = match &exit {
            Ok(e) => (e.code, e.signal),
            Err(_) => (None, None),
        };
        self.emit(ClusterEvent::WorkerExited {
            worker_id: id,
            slot: w.slot,
            pid: w.pid,
            code,
            signal,
            expected,
        });
        self.readmit_if_none_in_rotation();
        if self.recycle_exit(&w, before) || self.phase != Phase::Running || expected {
            return;
        }
        let quick = w.failed_start || w.started.elapsed() < backoff::QUICK_EXIT;
        let reason = match (w.failed_start, code, signal) {
            (true, _, _) => "failed to start".to_owned(),
            (_, _, Some(sig)) => format!("killed by signal {sig}"),
            (_, Some(code), _) => format!("exited with code {code}"),
            _ => "exited".to_owned(),
        };
        self.schedule_restart(w.slot, quick, reason);
    }

    fn schedule_restart(&mut self, slot: usize, quick: bool, reason: String) {
        if self.phase != Phase::Running {
            return;
        }
        let s = &mut self.slots[slot];
        s.quick_exits = if quick { s.quick_exits + 1 } else { 0 };
        s.restarts += 1;
        s.last_reason = Some(reason);
        let delay = backoff::restart_delay(s.quick_exits);
        if s.quick_exits >= backoff::CRASH_LOOP_AFTER {
            let quick_exits = s.quick_exits;
            self.emit(ClusterEvent::CrashLooping { slot, quick_exits, retry_in: delay });
        }
        if delay.is_zero() {
            self.start_worker(slot, None);
            return;
        }
        self.slots[slot].restart_pending = true;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(Msg::RestartDue { slot });
        });
    }

    fn shutdown(&mut self, mode: ShutdownMode) {
        match (mode, self.phase) {
            (ShutdownMode::Graceful, Phase::Running) => {
                self.emit(ClusterEvent::ShutdownStarted { graceful: true });
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
            (ShutdownMode::Immediate, _) => {
                if self.phase == Phase::Running {
                    self.emit(ClusterEvent::ShutdownStarted { graceful: false });
                }
                self.proxy_stop.cancel();
                self.phase = Phase::Stopping;
                for w in self.workers.values() {
                    let _ = w.stops.send(Stop::Kill);
                }
            }
        }
    }

    /// After draining: take every worker out of rotation and stop it.
    fn stop_all(&mut self) {
        let Phase::Draining { deadline } = self.phase else { return };
        self.phase = Phase::Stopping;
        let deadline = deadline.max(Instant::now() + MIN_STOP_GRACE);
        let ids: Vec<u64> = self.workers.keys().copied().collect();
        for id in ids {
            self.router.remove(id);
            if self.workers[&id].state == WorkerState::Ready {
                self.set_state(id, WorkerState::Draining);
            }
            self.set_state(id, WorkerState::Stopping);
            let _ = self.workers[&id].stops.send(Stop::Graceful { deadline });
        }
    }

    fn status(&self) -> ClusterStatus {
        let workers: Vec<WorkerStatus> = self
            .workers
            .values()
            .map(|w| (w, self.health.of(w.id), self.slots.get(w.slot)))
            .map(|(w, health, slot)| WorkerStatus {
                worker_id: w.id,
                slot: w.slot,
                pid: w.pid,
                status: w.state,
                addr: w.endpoint,
                in_flight: w.backend.as_ref().map_or(0, |b| b.load().in_flight()),
                restarts: slot.map_or(0, |s| s.restarts),
                recycles: slot.map_or(0, |s| s.recycles),
                last_restart_reason: slot.and_then(|s| s.last_reason.clone()),
                ejected: health.is_some_and(|h| h.ejected),
                rates: health.map(|h| h.rates).unwrap_or_default(),
                uptime_ms: w.started.elapsed().as_millis() as u64,
                metrics: w.backend.as_ref().map(|b| b.metrics().snapshot()).unwrap_or_default(),
                rss_bytes: health.and_then(|h| h.rss_bytes),
                memory_usage: health
                    .and_then(|h| h.rss_bytes)
                    .map(|b| b as f64 / (1024.0 * 1024.0)),
                cpu_percent: health.and_then(|h| h.cpu_percent),
                heartbeat_status: w.heartbeat.status().map(str::to_owned),
                last_heartbeat_ms_ago: w
                    .heartbeat
                    .since_last(std::time::Instant::now())
                    .map(|d| d.as_millis() as u64),
            })
            .collect();
        let ready_workers = self.router.snapshot().backends().len();
        let health = HealthSummary::of(&workers, ready_workers);
        let rates = WindowRates::total(workers.iter().map(|w| &w.rates));
        ClusterStatus {
            rates,
            listen: self.listen,
            strategy: self.router.strategy(),
            desired_workers: self.slots.len(),
            ready_workers,
            shutting_down: self.phase != Phase::Running,
            workers,
            crash_looping_slots: self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.quick_exits >= backoff::CRASH_LOOP_AFTER)
                .map(|(i, _)| i)
                .collect(),
            total_requests: health.total_requests,
            total_errors: health.errors.total,
            average_response_time_ms: (health.total_requests > 0)
                .then_some(health.average_response_time),
            health,
        }
    }
}
