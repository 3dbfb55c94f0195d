//! The supervisor: the control plane. It keeps the worker count, replaces workers without
//! losing a request, and runs every operation asked of the cluster.
//!
//! It is a single task, on a runtime thread of its own, that owns all worker state and reacts
//! to messages: commands from [`ClusterHandle`](crate::ClusterHandle) and reports from the
//! per-worker tasks ([`worker::run`]), timers and health samples. Nothing else mutates worker
//! state, so concurrent operations cannot corrupt it. It reads time from tokio's clock only,
//! so its logic runs under paused time with a fake [`Spawner`].
//!
//! Files, one concept each: `record` (the worker and slot records), `routes` (the one writer
//! of the routing table, ejection), `start` (starting workers, their readiness and exits,
//! crash back-off), `retire` (the one path out), `replace` (recycles), `rollout` (rolling
//! restarts, restart, rollback), `scale` (the worker count and its reconciliation),
//! `autoscale`, `reload` (live configuration), `health` (the health tick), `status`,
//! `shutdown`.

mod accepting;
mod autoscale;
mod backoff;
mod checks;
mod counters;
mod generations;
mod health;
mod heartbeat;
mod ipc;
mod lines;
mod memory;
mod notify;
mod owner;
mod ports;
mod readiness;
mod record;
mod reload;
mod replace;
mod retire;
mod rollout;
mod routes;
mod scale;
mod shutdown;
mod socket_dir;
mod start;
mod state;
mod status;
mod upgrade;
mod worker;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

pub(crate) use checks::{Checks, HttpChecks};
pub use record::Rotation;
pub(crate) use reload::check as check_spec;
pub(crate) use socket_dir::SocketDir;
pub use socket_dir::SocketDirError;
pub use state::WorkerState;
pub(crate) use upgrade::UpgradeStep;
pub(crate) use worker::WorkerMsg;

use crate::config::ClusterSpec;
use crate::control::{ConfigReport, ControlError, Operation, Scaled, ShutdownMode};
use crate::events::ClusterEvent;
use crate::routing::Router;
use crate::spawn::Spawner;
use crate::status::ClusterStatus;

/// Least time a worker gets between SIGTERM and SIGKILL at shutdown, even when draining used
/// up the whole graceful timeout.
const MIN_STOP_GRACE: Duration = Duration::from_secs(1);

/// A worker count asked for: absolute, or relative to the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    /// Exactly this many.
    To(usize),
    /// This many more (or fewer, when negative).
    By(i64),
}

/// A request on the control path. `by` says who asked, for the events.
#[derive(Debug)]
pub(crate) enum Control {
    Status(oneshot::Sender<ClusterStatus>),
    Shutdown(ShutdownMode),
    Scale {
        count: Count,
        by: String,
        reply: oneshot::Sender<Result<Scaled, ControlError>>,
    },
    RollingRestart {
        by: String,
        reply: oneshot::Sender<Result<Operation, ControlError>>,
    },
    Restart {
        by: String,
        reply: oneshot::Sender<Result<Operation, ControlError>>,
    },
    Recycle {
        worker_id: u64,
        reason: String,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    ApplyConfig {
        spec: Box<ClusterSpec>,
        reply: oneshot::Sender<Result<ConfigReport, ControlError>>,
    },
    /// A hot upgrade of the primary (see [`crate::upgrade`]).
    Upgrade(UpgradeStep),
}

/// Everything the supervisor task reacts to.
#[derive(Debug)]
pub(crate) enum Msg {
    Control(Control),
    Worker(WorkerMsg),
    /// A slot's crash back-off may be over: reconcile.
    RestartDue,
    /// Shutdown: the proxy has drained, or its drain time is up.
    DrainDone,
    /// A retiring worker has no request in flight any more (or its drain time is up).
    Drained {
        id: u64,
    },
    /// A worker that said it was stopping is still there after the graceful timeout.
    LeaveOverdue {
        id: u64,
    },
    /// A rolling restart's replacement has stayed ready for `rollingRestart.minReady`.
    Settled {
        id: u64,
    },
    /// Time to sample and judge the workers.
    HealthTick,
    /// Resource samples and probe results of the ready workers, taken at `at`.
    Samples {
        measured: Vec<health::Measured>,
        at: tokio::time::Instant,
    },
    /// What a worker said about itself (notify socket, IPC channel).
    Heartbeat(heartbeat::HeartbeatMsg),
}

/// Drain and shutdown progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// The proxy is draining in-flight requests until `deadline`.
    Draining {
        deadline: tokio::time::Instant,
    },
    /// Workers have been asked to stop.
    Stopping,
}

pub(crate) struct Supervisor {
    spec: Arc<ClusterSpec>,
    generations: generations::Generations,
    router: Arc<Router>,
    /// The embedder gave its own balancer: a configured strategy change cannot apply.
    custom_balancer: bool,
    events: broadcast::Sender<ClusterEvent>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    listen: SocketAddr,
    checks: Arc<dyn Checks>,
    /// Replaces `checks` after a reload changed what it probes (not for injected checks).
    checks_from_spec: bool,
    workers: BTreeMap<u64, record::Worker>,
    slots: Vec<record::Slot>,
    /// Workers to keep (slots `0..target`).
    target: usize,
    next_id: u64,
    phase: Phase,
    proxy_stop: CancellationToken,
    proxy_done: Option<oneshot::Receiver<()>>,
    recycles: replace::Queue,
    rollout: rollout::Rollouts,
    health: health::Health,
    heartbeats: heartbeat::Heartbeats,
    autoscale: autoscale::Autoscale,
    counters: counters::Counters,
    ticker: Option<AbortOnDropHandle<()>>,
    /// The proxy's access log, for its counters in the status.
    access_log: Option<crate::access_log::AccessLog>,
    /// The directory of the workers' Unix sockets, once a generation uses them; removed
    /// when the supervisor ends (every worker has exited by then).
    socket_dir: Option<SocketDir>,
    /// Shared-socket mode: the front socket the workers accept on. `None` in proxy mode.
    shared: Option<accepting::SharedSocket>,
    /// Who asked for the hot upgrade under way, if one is.
    upgrading: Option<String>,
    /// Set before a shutdown that hands over to a new primary: the proxy drains softly.
    handover: crate::upgrade::HandoverDrain,
}

/// The parts a [`Supervisor`] is built from.
pub(crate) struct SupervisorParts {
    pub(crate) spec: Arc<ClusterSpec>,
    pub(crate) hooks: crate::cluster::HealthHooks,
    pub(crate) spawner: Arc<dyn Spawner>,
    pub(crate) router: Arc<Router>,
    pub(crate) custom_balancer: bool,
    pub(crate) checks: Option<Arc<dyn Checks>>,
    pub(crate) events: broadcast::Sender<ClusterEvent>,
    pub(crate) tx: mpsc::UnboundedSender<Msg>,
    pub(crate) rx: mpsc::UnboundedReceiver<Msg>,
    pub(crate) listen: SocketAddr,
    pub(crate) proxy_stop: CancellationToken,
    pub(crate) proxy_done: oneshot::Receiver<()>,
    pub(crate) access_log: Option<crate::access_log::AccessLog>,
    /// The workers' socket directory, made at start when `upstream` is `"unix"`.
    pub(crate) socket_dir: Option<SocketDir>,
    /// Shared-socket mode: the front socket to pass to every worker.
    pub(crate) shared: Option<crate::spawn::SharedListener>,
    /// Shared with the proxy: set when the shutdown is a handover.
    pub(crate) handover: crate::upgrade::HandoverDrain,
}

impl Supervisor {
    /// Builds the supervisor; must run inside the runtime that will run it (it binds the
    /// notify socket).
    pub(crate) fn new(p: SupervisorParts) -> Self {
        let checks_from_spec = p.checks.is_none();
        let checks = p.checks.unwrap_or_else(|| Arc::new(HttpChecks::from_spec(&p.spec)));
        let health = health::Health::from_spec(&p.spec, p.hooks);
        let heartbeats = heartbeat::Heartbeats::start(p.tx.clone());
        let autoscale = autoscale::Autoscale::from_spec(&p.spec);
        Self {
            target: p.spec.workers,
            slots: Vec::new(),
            generations: generations::Generations::new(generations::Recipe {
                spawner: p.spawner,
                node_ipc: p.spec.health.node_ipc,
                upstream: p.spec.upstream,
            }),
            spec: p.spec,
            router: p.router,
            custom_balancer: p.custom_balancer,
            events: p.events,
            tx: p.tx,
            rx: p.rx,
            listen: p.listen,
            checks,
            checks_from_spec,
            workers: BTreeMap::new(),
            next_id: 1,
            phase: Phase::Running,
            proxy_stop: p.proxy_stop,
            proxy_done: Some(p.proxy_done),
            recycles: replace::Queue::default(),
            rollout: rollout::Rollouts::default(),
            health,
            heartbeats,
            autoscale,
            counters: counters::Counters::default(),
            ticker: None,
            access_log: p.access_log,
            socket_dir: p.socket_dir,
            shared: p.shared.map(accepting::SharedSocket::new),
            upgrading: None,
            handover: p.handover,
        }
    }

    /// Starts the workers and runs until shutdown has completed: every worker has exited.
    pub(crate) async fn run(mut self) {
        self.start_ticker();
        self.reconcile();
        self.sync_routes();
        while let Some(msg) = self.rx.recv().await {
            self.handle(msg);
            self.after_message();
            if self.phase == Phase::Stopping && self.workers.is_empty() {
                break;
            }
        }
        self.rollout.abandon();
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Control(control) => self.on_control(control),
            Msg::Worker(m) => self.on_worker(m),
            Msg::RestartDue => {}
            Msg::DrainDone => self.stop_all(),
            Msg::Drained { id } => self.on_drained(id),
            Msg::LeaveOverdue { id } => self.leave_overdue(id),
            Msg::Settled { id } => self.on_settled(id),
            Msg::HealthTick => self.health_tick(),
            Msg::Samples { measured, at } => self.on_samples(measured, at),
            Msg::Heartbeat(m) => self.on_heartbeat(m),
        }
    }

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Control::Shutdown(mode) => self.shutdown(mode),
            Control::Scale { count, by, reply } => {
                let _ = reply.send(self.scale(count, &by));
            }
            Control::RollingRestart { by, reply } => {
                let _ = reply.send(self.start_rolling_restart(&by));
            }
            Control::Restart { by, reply } => {
                let _ = reply.send(self.start_restart(&by));
            }
            Control::Recycle { worker_id, reason, reply } => {
                let _ = reply.send(self.request_recycle(worker_id, reason));
            }
            Control::ApplyConfig { spec, reply } => {
                let _ = reply.send(self.apply_config(*spec));
            }
            Control::Upgrade(step) => self.on_upgrade(step),
        }
    }

    /// After every message: fill or trim the slots, start queued recycles (a replacement may
    /// have ended without a word: scaled away), move operations on, re-admit ejected workers
    /// if none is left in rotation, and write the routing table.
    fn after_message(&mut self) {
        if self.phase == Phase::Running {
            self.reconcile();
            self.start_next_recycles();
            self.step_operations();
            self.readmit_if_none_in_rotation();
        }
        self.sync_routes();
    }

    fn emit(&self, event: ClusterEvent) {
        let _ = self.events.send(event);
    }

    /// The error for an operation asked while shutting down, if we are.
    fn refuse_if_stopping(&self) -> Result<(), ControlError> {
        match self.phase {
            Phase::Running => Ok(()),
            _ => Err(ControlError::ShuttingDown),
        }
    }

    /// Sends `msg` to ourselves after `delay` (a timer that needs no handle: a stale one
    /// finds nothing to do).
    fn after(&self, delay: Duration, msg: Msg) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(msg);
        });
    }

    /// (Re)starts the health tick at the configured interval.
    fn start_ticker(&mut self) {
        let ticks = self.tx.clone();
        let period = self.spec.health_check_interval.max(Duration::from_millis(1));
        self.ticker = Some(AbortOnDropHandle::new(tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                if ticks.send(Msg::HealthTick).is_err() {
                    return;
                }
            }
        })));
    }
}
