//! Starting worker processes: the [`Spawner`] trait and the built-in spawners.

mod guardian;
mod output;
mod process;
mod self_exec;
mod sys;

use std::fmt;
use std::io;
use std::net::SocketAddr;

use async_trait::async_trait;

pub use guardian::{Guardian, run_guardian};
pub use process::ProcessSpawner;
pub use self_exec::SelfExecSpawner;

/// Everything a spawner needs to start one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerSpec {
    /// Unique id of this worker over the cluster's life (a replacement gets a new id).
    pub id: u64,
    /// The worker's slot, `0..workers`; a replacement keeps its predecessor's slot. Exposed to
    /// the worker as `CLUSTER_WORKER_ID` and `NODE_APP_INSTANCE` (PM2's name).
    pub slot: usize,
    /// How many workers this slot has had, counting this one (1 for the first).
    pub generation: u32,
    /// The private loopback endpoint the worker must listen on (`HOST` and `PORT`).
    pub endpoint: SocketAddr,
}

impl WorkerSpec {
    /// The environment variables the cluster gives every worker, in the order they are set.
    /// They are applied after the configured `env`, so they always win.
    pub fn cluster_env(&self) -> [(&'static str, String); 5] {
        [
            ("PORT", self.endpoint.port().to_string()),
            ("HOST", self.endpoint.ip().to_string()),
            ("CLUSTER_WORKER_ID", self.slot.to_string()),
            ("NODE_APP_INSTANCE", self.slot.to_string()),
            ("CLUSTER_WORKER_GENERATION", self.generation.to_string()),
        ]
    }
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerExit {
    /// The exit code, when it exited by itself.
    pub code: Option<i32>,
    /// The signal number, when a signal ended it.
    pub signal: Option<i32>,
}

impl fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(sig)) => write!(f, "signal {sig}"),
            (None, None) => f.write_str("unknown status"),
        }
    }
}

/// A signal the supervisor sends to a worker's whole process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM: finish in-flight work and exit.
    Terminate,
    /// SIGKILL: stop now.
    Kill,
}

/// Starts one worker process for a [`WorkerSpec`].
///
/// # Contract
///
/// - `spawn` starts the worker so that it will listen on `spec.endpoint`, and returns at
///   once (it does not wait for readiness: the supervisor probes the endpoint).
/// - The worker must not outlive the primary: spawners put it in its own process group and
///   arrange for it to be killed if the primary dies.
/// - Spawning happens on a long-lived runtime thread (Linux ties the parent-death signal to
///   the thread that forked), never from `spawn_blocking`.
pub trait Spawner: Send + Sync + fmt::Debug {
    /// Starts the worker described by `spec`.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] when the process cannot be started (program missing, not executable,
    /// out of resources).
    fn spawn(&self, spec: &WorkerSpec) -> Result<Box<dyn WorkerProcess>, SpawnError>;
}

/// A running worker process, as the supervisor controls it.
#[async_trait]
pub trait WorkerProcess: Send + fmt::Debug {
    /// The process id (also its process group id).
    fn pid(&self) -> u32;

    /// Sends `signal` to the worker's whole process group (its children included).
    ///
    /// # Errors
    ///
    /// The OS error, for example when the group no longer exists.
    fn signal(&self, signal: StopSignal) -> io::Result<()>;

    /// Waits for the process to exit. Cancel-safe: it may be polled again after a
    /// `select!` dropped it.
    ///
    /// # Errors
    ///
    /// The OS error if waiting fails.
    async fn wait(&mut self) -> io::Result<WorkerExit>;
}

/// A worker process could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The OS refused to start the program.
    #[error("cannot start `{program}` for worker slot {slot}: {source}")]
    Start {
        /// The program that was run.
        program: String,
        /// The slot it was for.
        slot: usize,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}
