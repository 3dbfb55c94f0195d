//! A fake spawner whose "processes" are tasks on the test's runtime: they become ready, crash,
//! hang or answer signals as the test says, in tokio time, so the control plane can be tested
//! under paused time, deterministically.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::WorkerCommand;
use crate::endpoint::Endpoint;
use crate::spawn::{SpawnError, Spawner, StopSignal, WorkerExit, WorkerProcess, WorkerSpec};
use crate::supervisor::Checks;

/// How the workers of one spawner behave.
#[derive(Debug, Clone)]
pub(crate) struct Behaviour {
    /// Time from spawn to ready.
    pub(crate) ready_after: Duration,
    /// Time from SIGTERM to exit; `None`: SIGTERM is ignored (a frozen process).
    pub(crate) exit_on_term_after: Option<Duration>,
    /// Spawns that behave; the ones after fail as `failure` says. `None`: all behave.
    pub(crate) good_spawns: Option<usize>,
    /// What a failing spawn does.
    pub(crate) failure: Failure,
    /// A worker that behaves crashes (exit code 1) this long after it is ready.
    pub(crate) crash_after_ready: Option<Duration>,
}

/// How a failing spawn fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// `spawn` returns an error.
    SpawnError,
    /// The process exits with code 1 after this long, never ready.
    Crash(Duration),
    /// The process runs but never becomes ready.
    NeverReady,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            ready_after: Duration::from_millis(100),
            exit_on_term_after: Some(Duration::from_millis(50)),
            good_spawns: None,
            failure: Failure::NeverReady,
            crash_after_ready: None,
        }
    }
}

/// Everything the fake processes share with the test.
#[derive(Debug, Default)]
pub(crate) struct World {
    procs: Mutex<HashMap<Endpoint, Arc<Proc>>>,
    by_pid: Mutex<HashMap<u32, Arc<Proc>>>,
    next_pid: AtomicU32,
    /// Behaviours of the spawners made by `with_command`, by program name.
    commands: Mutex<HashMap<String, Behaviour>>,
    /// Spawns so far.
    pub(crate) spawns: AtomicUsize,
}

/// One fake process.
#[derive(Debug)]
pub(crate) struct Proc {
    pub(crate) pid: u32,
    ready: watch::Sender<bool>,
    exit: watch::Sender<Option<WorkerExit>>,
    /// Answers liveness checks.
    pub(crate) alive: AtomicBool,
    /// Signals received, with when.
    pub(crate) signals: Mutex<Vec<(StopSignal, Instant)>>,
    exit_on_term_after: Option<Duration>,
}

impl Proc {
    /// Ends the process with `code` (a crash, if the cluster did not ask).
    pub(crate) fn exit(&self, code: i32) {
        self.exit.send_if_modified(|e| {
            e.is_none() && e.replace(WorkerExit { code: Some(code), signal: None }).is_none()
        });
    }

    /// Whether it has exited.
    pub(crate) fn exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    fn killed(&self, signal: i32) {
        self.exit.send_if_modified(|e| {
            e.is_none() && e.replace(WorkerExit { code: None, signal: Some(signal) }).is_none()
        });
    }
}

impl World {
    /// The process with `pid`.
    pub(crate) fn proc(&self, pid: u32) -> Arc<Proc> {
        Arc::clone(self.by_pid.lock().unwrap().get(&pid).expect("a fake process with that pid"))
    }

    /// Every process ever spawned that has not exited.
    pub(crate) fn running(&self) -> Vec<Arc<Proc>> {
        self.by_pid.lock().unwrap().values().filter(|p| !p.exited()).cloned().collect()
    }

    /// Spawners made by `with_command` for a program named `program` behave as `behaviour`.
    pub(crate) fn command(&self, program: &str, behaviour: Behaviour) {
        self.commands.lock().unwrap().insert(program.to_owned(), behaviour);
    }
}

/// The fake [`Spawner`].
#[derive(Debug)]
pub(crate) struct FakeSpawner {
    pub(crate) world: Arc<World>,
    pub(crate) behaviour: Behaviour,
    spawned: AtomicUsize,
}

impl FakeSpawner {
    pub(crate) fn new(world: Arc<World>, behaviour: Behaviour) -> Self {
        Self { world, behaviour, spawned: AtomicUsize::new(0) }
    }
}

impl Spawner for FakeSpawner {
    fn spawn(&self, spec: &WorkerSpec) -> Result<Box<dyn WorkerProcess>, SpawnError> {
        self.world.spawns.fetch_add(1, Ordering::SeqCst);
        let n = self.spawned.fetch_add(1, Ordering::SeqCst);
        let failing = self.behaviour.good_spawns.is_some_and(|good| n >= good);
        if failing && self.behaviour.failure == Failure::SpawnError {
            return Err(SpawnError::Start {
                program: "fake".into(),
                slot: spec.slot,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let pid = 10_000 + self.world.next_pid.fetch_add(1, Ordering::SeqCst);
        let proc = Arc::new(Proc {
            pid,
            ready: watch::channel(false).0,
            exit: watch::channel(None).0,
            alive: AtomicBool::new(true),
            signals: Mutex::new(Vec::new()),
            exit_on_term_after: self.behaviour.exit_on_term_after,
        });
        self.world.procs.lock().unwrap().insert(spec.endpoint.clone(), Arc::clone(&proc));
        self.world.by_pid.lock().unwrap().insert(pid, Arc::clone(&proc));
        let life = Arc::clone(&proc);
        let (ready_after, failure) = (self.behaviour.ready_after, self.behaviour.failure);
        let crash_after_ready = self.behaviour.crash_after_ready;
        tokio::spawn(async move {
            match (failing, failure) {
                (true, Failure::Crash(after)) => {
                    tokio::time::sleep(after).await;
                    life.exit(1);
                }
                (true, _) => {}
                (false, _) => {
                    tokio::time::sleep(ready_after).await;
                    life.ready.send_replace(true);
                    if let Some(after) = crash_after_ready {
                        tokio::time::sleep(after).await;
                        life.exit(1);
                    }
                }
            }
        });
        Ok(Box::new(FakeProcess(proc)))
    }

    fn with_command(&self, command: &WorkerCommand) -> Option<Arc<dyn Spawner>> {
        let name = command.program.as_ref()?.display().to_string();
        let behaviour = self.world.commands.lock().unwrap().get(&name).cloned()?;
        Some(Arc::new(FakeSpawner::new(Arc::clone(&self.world), behaviour)))
    }
}

/// The supervisor's side of a fake process.
#[derive(Debug)]
struct FakeProcess(Arc<Proc>);

#[async_trait]
impl WorkerProcess for FakeProcess {
    fn pid(&self) -> u32 {
        self.0.pid
    }

    fn signal(&self, signal: StopSignal) -> std::io::Result<()> {
        self.0.signals.lock().unwrap().push((signal, Instant::now()));
        match signal {
            StopSignal::Kill => self.0.killed(9),
            StopSignal::Terminate => {
                if let Some(after) = self.0.exit_on_term_after {
                    let proc = Arc::clone(&self.0);
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        proc.exit(0);
                    });
                }
            }
        }
        Ok(())
    }

    async fn wait(&mut self) -> std::io::Result<WorkerExit> {
        let mut exit = self.0.exit.subscribe();
        let exit = exit.wait_for(Option::is_some).await.map_err(std::io::Error::other)?;
        Ok(exit.expect("waited for it"))
    }
}

/// Readiness and liveness of the fake processes.
#[derive(Debug)]
pub(crate) struct FakeChecks(pub(crate) Arc<World>);

#[async_trait]
impl Checks for FakeChecks {
    async fn ready(&self, endpoint: &Endpoint) {
        let proc = self.0.procs.lock().unwrap().get(endpoint).cloned();
        let Some(proc) = proc else { return std::future::pending().await };
        let mut ready = proc.ready.subscribe();
        if ready.wait_for(|r| *r).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    async fn alive(&self, endpoint: &Endpoint) -> bool {
        let proc = self.0.procs.lock().unwrap().get(endpoint).cloned();
        proc.is_some_and(|p| p.alive.load(Ordering::SeqCst))
    }
}
