//! Starting worker processes: the [`Spawner`] trait and the built-in spawners.

mod cgroup;
mod guardian;
mod hardening;
mod ipc;
mod listen_fds;
mod output;
mod process;
mod self_exec;
mod sys;

use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::endpoint::Endpoint;

pub use guardian::{Guardian, run_guardian};
pub use hardening::{HardeningError, WorkerHardening};
pub(crate) use listen_fds::{LISTEN_ENV, listen_pid_is_ours};
pub use listen_fds::{SharedListener, inherited_listener};
pub(crate) use output::drained as output_drained;
pub use process::ProcessSpawner;
pub use self_exec::SelfExecSpawner;
pub(crate) use sys::{LISTEN_FDS_START, exec_with_listener, pass_as_fd, take_inherited_fd};

/// Everything a spawner needs to start one worker.
///
/// # Examples
///
/// What a spawner of your own passes to the worker it starts:
///
/// ```
/// use std::process::Command;
/// use cluster_core::WorkerSpec;
///
/// fn command_for(spec: &WorkerSpec) -> Command {
///     let mut command = Command::new("./server");
///     for name in spec.inherited_env_to_remove() {
///         command.env_remove(name); // the primary's own PORT, NOTIFY_SOCKET, LISTEN_FDS...
///     }
///     command.envs(spec.cluster_env()); // PORT and HOST (or SOCKET_PATH), CLUSTER_WORKER_ID...
///     command
/// }
/// # let _ = command_for;
/// ```
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
    /// The private endpoint the worker must listen on: a loopback TCP address (`HOST` and
    /// `PORT`) or a Unix socket path (`SOCKET_PATH` and `CLUSTER_SOCKET_PATH`).
    pub endpoint: Endpoint,
    /// Where the worker may send systemd notify datagrams (`NOTIFY_SOCKET`: `READY=1`,
    /// `WATCHDOG=1`, `STATUS=...`); `None` when the cluster has no notify socket.
    pub notify_socket: Option<String>,
    /// How long the worker may stay silent once it sends heartbeats (`WATCHDOG_USEC`, set
    /// only together with [`notify_socket`](Self::notify_socket)).
    pub watchdog: Option<Duration>,
    /// Whether to give the worker a Node IPC channel on fd 3 (`NODE_CHANNEL_FD`): the
    /// `health.nodeIpc` setting. `None` lets the spawner decide ([`ProcessSpawner`]: only when
    /// the program is `node` or `nodejs`).
    pub node_ipc: Option<bool>,
    /// Shared-socket mode: the front socket, to pass as the worker's fd 3 with `LISTEN_FDS`,
    /// `LISTEN_FDNAMES` and `LISTEN_PID` (the worker's own pid, set between fork and exec).
    /// The Node IPC channel then moves to fd 4. `endpoint` is then the front address, given
    /// as `HOST` and `PORT` for information. `None` in proxy mode.
    pub listener: Option<SharedListener>,
}

impl WorkerSpec {
    /// The environment variables the cluster gives every worker, in the order they are set.
    /// They are applied after the configured `env`, so they always win. `NOTIFY_SOCKET` and
    /// `WATCHDOG_USEC` are included when set; the Node IPC variables are the spawner's, since
    /// they come with an open file descriptor.
    ///
    /// A worker on a Unix socket gets `SOCKET_PATH` (adapter-node's name) and
    /// `CLUSTER_SOCKET_PATH`, and neither `PORT` nor `HOST`.
    pub fn cluster_env(&self) -> Vec<(&'static str, String)> {
        let mut env = match &self.endpoint {
            Endpoint::Tcp(addr) => {
                vec![("PORT", addr.port().to_string()), ("HOST", addr.ip().to_string())]
            }
            Endpoint::Unix(path) => {
                let path = path.display().to_string();
                vec![("SOCKET_PATH", path.clone()), ("CLUSTER_SOCKET_PATH", path)]
            }
        };
        env.extend([
            ("CLUSTER_WORKER_ID", self.slot.to_string()),
            ("NODE_APP_INSTANCE", self.slot.to_string()),
            ("CLUSTER_WORKER_GENERATION", self.generation.to_string()),
        ]);
        if let Some(socket) = &self.notify_socket {
            env.push(("NOTIFY_SOCKET", socket.clone()));
            if let Some(watchdog) = self.watchdog {
                env.push(("WATCHDOG_USEC", watchdog.as_micros().to_string()));
            }
        }
        env
    }

    /// Variables a spawner removes from the environment the worker would inherit from the
    /// primary, before it applies [`cluster_env`](Self::cluster_env): the notify and IPC
    /// variables of the primary's own supervisor (systemd, a Node parent) would otherwise
    /// point the worker at a socket or file descriptor that is not its own. `WATCHDOG_PID` is
    /// always removed: clients such as `sd_watchdog_enabled` ignore `WATCHDOG_USEC` when it
    /// names another process. The primary's own secrets and markers go too: the admin token
    /// (an application that shows its environment on an error page would show it) and the
    /// detached marker.
    ///
    /// The endpoint variables go too, inherited or configured: [`cluster_env`](Self::cluster_env)
    /// then sets the ones of this worker's endpoint. So a worker on a Unix socket has no
    /// `PORT` or `HOST` (one that does not know `SOCKET_PATH` would otherwise listen on a port
    /// it shares with every other worker), and one on TCP no `SOCKET_PATH` (which would send
    /// adapter-node to a socket that is not its own).
    pub fn inherited_env_to_remove(&self) -> &'static [&'static str] {
        const REMOVED: [&str; 15] = [
            "SOCKET_PATH",
            "CLUSTER_SOCKET_PATH",
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
            "NODE_CHANNEL_FD",
            "NODE_CHANNEL_SERIALIZATION_MODE",
            "CLUSTER_ADMIN_TOKEN",
            "CLUSTER_DETACHED",
            // The primary's own socket activation: those descriptors are not the worker's.
            "LISTEN_PID",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
            // What an old primary passed to this one in a hot upgrade.
            "CLUSTER_UPGRADE_FDS",
            "PORT",
            "HOST",
        ];
        &REMOVED
    }
}

/// How a worker process ended.
///
/// # Examples
///
/// ```
/// use cluster_core::WorkerExit;
///
/// let exit = WorkerExit { code: None, signal: Some(9) };
/// assert_eq!(exit.to_string(), "signal 9");
/// assert_eq!(WorkerExit { code: Some(0), signal: None }.to_string(), "exit code 0");
/// ```
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
///
/// # Examples
///
/// ```
/// use cluster_core::{StopSignal, WorkerProcess};
///
/// fn stop(worker: &dyn WorkerProcess, graceful: bool) -> std::io::Result<()> {
///     worker.signal(if graceful { StopSignal::Terminate } else { StopSignal::Kill })
/// }
/// # let _ = stop;
/// ```
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
///   once (it does not wait for readiness: the supervisor probes the endpoint). When
///   `spec.listener` is set (shared-socket mode), the worker must instead find that socket
///   at fd 3 with `LISTEN_FDS=1` and `LISTEN_PID` equal to its own pid; a spawner that
///   cannot pass it returns an error rather than start a worker that would bind a port of
///   its own.
/// - The worker must not outlive the primary: spawners put it in its own process group and
///   arrange for it to be killed if the primary dies.
/// - Spawning happens on a long-lived runtime thread (Linux ties the parent-death signal to
///   the thread that forked), never from `spawn_blocking`.
///
/// # Examples
///
/// A spawner of your own that wraps another one (here to log each start; one that runs each
/// worker under `systemd-run` or in a container would build its own command from the spec):
///
/// ```
/// use std::sync::Arc;
/// use cluster_core::config::WorkerCommand;
/// use cluster_core::{ProcessSpawner, SpawnError, Spawner, WorkerHardening, WorkerProcess, WorkerSpec};
///
/// #[derive(Debug)]
/// struct Logged(Arc<dyn Spawner>);
///
/// impl Spawner for Logged {
///     fn spawn(&self, spec: &WorkerSpec) -> Result<Box<dyn WorkerProcess>, SpawnError> {
///         let worker = self.0.spawn(spec)?;
///         println!("worker {} (slot {}) is pid {} on {}", spec.id, spec.slot, worker.pid(), spec.endpoint);
///         Ok(worker)
///     }
///
///     // A configuration reload that changes the command or the hardening keeps the wrapper.
///     fn with_command(&self, command: &WorkerCommand) -> Option<Arc<dyn Spawner>> {
///         Some(Arc::new(Logged(self.0.with_command(command)?)))
///     }
///
///     fn with_hardening(&self, hardening: Arc<WorkerHardening>) -> Option<Arc<dyn Spawner>> {
///         Some(Arc::new(Logged(self.0.with_hardening(hardening)?)))
///     }
/// }
///
/// let spawner = Logged(Arc::new(ProcessSpawner::new("node", ["build"])));
/// # let _ = spawner;
/// ```
pub trait Spawner: Send + Sync + fmt::Debug {
    /// Starts the worker described by `spec`.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] when the process cannot be started (program missing, not executable,
    /// out of resources).
    fn spawn(&self, spec: &WorkerSpec) -> Result<Box<dyn WorkerProcess>, SpawnError>;

    /// A spawner like this one that runs `command` instead, for a configuration reload that
    /// changed the worker command, arguments, directory or environment: the next rolling
    /// restart starts its generation with it. The default returns `None`: this spawner does
    /// not run a configured command, and the change is reported as not applied.
    fn with_command(&self, command: &crate::config::WorkerCommand) -> Option<Arc<dyn Spawner>> {
        let _ = command;
        None
    }

    /// A spawner like this one that confines its workers as `hardening` says (the account
    /// they run as, their resource limits, CPU affinity and cgroup memory limit), for the
    /// start of a cluster and for a configuration reload that changed `user`, `group`,
    /// `cpuAffinity` or `limits`: the next rolling restart starts its generation with it.
    /// The default returns `None`: this spawner cannot confine its workers, and the change
    /// is reported as not applied.
    fn with_hardening(&self, hardening: Arc<WorkerHardening>) -> Option<Arc<dyn Spawner>> {
        let _ = hardening;
        None
    }
}

/// A running worker process, as the supervisor controls it.
///
/// # Examples
///
/// A process of your own, here wrapping the one another spawner started (a spawner that runs
/// workers in containers would signal and wait through the container runtime):
///
/// ```
/// use std::io;
/// use std::os::unix::net::UnixStream;
/// use cluster_core::{StopSignal, WorkerExit, WorkerProcess};
///
/// #[derive(Debug)]
/// struct Wrapped(Box<dyn WorkerProcess>);
///
/// #[async_trait::async_trait]
/// impl WorkerProcess for Wrapped {
///     fn pid(&self) -> u32 {
///         self.0.pid()
///     }
///
///     fn signal(&self, signal: StopSignal) -> io::Result<()> {
///         if signal == StopSignal::Kill {
///             eprintln!("killing worker {}", self.0.pid());
///         }
///         self.0.signal(signal)
///     }
///
///     async fn wait(&mut self) -> io::Result<WorkerExit> {
///         let exit = self.0.wait().await?;
///         println!("worker {} ended: {exit}", self.0.pid());
///         Ok(exit)
///     }
///
///     fn take_ipc_channel(&mut self) -> Option<UnixStream> {
///         self.0.take_ipc_channel()
///     }
/// }
/// ```
///
/// (`WorkerProcess` is an [`async_trait`](https://docs.rs/async-trait): implementations use
/// the `async-trait` crate's attribute.)
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

    /// Hands over the primary's end of the worker's IPC channel (newline-delimited JSON on the
    /// worker's fd 3, `NODE_CHANNEL_FD`), once; `None` when the worker has none. The default
    /// returns `None`.
    ///
    /// The supervisor reads heartbeats from it and never writes to it.
    fn take_ipc_channel(&mut self) -> Option<UnixStream> {
        None
    }
}

/// A worker process could not be started.
///
/// # Examples
///
/// ```
/// use cluster_core::{ClusterEvent, ClusterHandle};
///
/// # async fn example(handle: ClusterHandle) {
/// // A spawn error reaches an embedder as an event (and the slot is retried with a backoff).
/// let mut events = handle.subscribe();
/// while let Ok(event) = events.recv().await {
///     if let ClusterEvent::WorkerFailedStart { slot, reason, .. } = event {
///         eprintln!("slot {slot}: {reason}"); // e.g. "cannot start `node` for worker slot 0: ..."
///     }
/// }
/// # }
/// ```
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
    /// The program could not be started as the configured account: most often the program,
    /// a directory on its path or the working directory is not open to that account
    /// (`EACCES`).
    #[error(
        "cannot start `{program}` for worker slot {slot} as {account}: {source} (the program, \
         the directories on its path and the working directory must be readable by that \
         account)"
    )]
    AsAccount {
        /// The program that was run.
        program: String,
        /// The slot it was for.
        slot: usize,
        /// The account: `nobody (65534)`.
        account: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}
