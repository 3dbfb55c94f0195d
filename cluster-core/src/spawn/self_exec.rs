//! [`SelfExecSpawner`]: re-runs the current binary in worker role.

use std::path::PathBuf;
use std::sync::Arc;

use super::{ProcessSpawner, SpawnError, Spawner, WorkerProcess, WorkerSpec};

/// Re-runs the current executable, with role arguments, as each worker.
///
/// This is how a Rust server embeds the cluster: its `main` checks for the role arguments
/// (or for `CLUSTER_WORKER_ID` in the environment) and, in worker role, serves on `HOST` and
/// `PORT` instead of starting a cluster. The `cluster` binary uses it to run its built-in
/// demo server when no command is configured.
///
/// # Examples
///
/// The primary and its workers in one binary:
///
/// ```no_run
/// use std::sync::Arc;
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::{Cluster, Guardian, SelfExecSpawner, WorkerHardening};
///
/// # fn serve_http() {}
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// if std::env::args().nth(1).as_deref() == Some("worker") {
///     serve_http(); // on HOST and PORT (or SOCKET_PATH), which the cluster sets
///     return Ok(());
/// }
/// let spec = ClusterSpec::default();
/// let hardening = Arc::new(WorkerHardening::prepare(&spec.hardening)?);
/// let guardian = Arc::new(Guardian::start(&std::env::current_exe()?, &["guardian"])?);
/// let spawner = SelfExecSpawner::new(["worker"])?
///     .env("APP_ROLE", "worker")
///     .guardian(guardian)
///     .hardening(hardening);
/// Cluster::builder(spec).spawner(spawner).build().await?.run().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SelfExecSpawner {
    inner: ProcessSpawner,
}

impl SelfExecSpawner {
    /// A spawner running the current executable with `role_args`.
    ///
    /// # Errors
    ///
    /// The OS error when the path of the current executable cannot be found.
    pub fn new(role_args: impl IntoIterator<Item = impl Into<String>>) -> std::io::Result<Self> {
        let exe: PathBuf = std::env::current_exe()?;
        Ok(Self { inner: ProcessSpawner::new(exe, role_args) })
    }

    /// Registers every worker's process group with `guardian`; see
    /// [`ProcessSpawner::guardian`].
    pub fn guardian(mut self, guardian: std::sync::Arc<super::Guardian>) -> Self {
        self.inner = self.inner.guardian(guardian);
        self
    }

    /// Confines every worker as `hardening` says; see [`ProcessSpawner::hardening`].
    pub fn hardening(mut self, hardening: Arc<super::WorkerHardening>) -> Self {
        self.inner = self.inner.hardening(hardening);
        self
    }

    /// Adds an environment variable for every worker.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.inner = self.inner.env(key, value);
        self
    }
}

impl Spawner for SelfExecSpawner {
    fn spawn(&self, spec: &WorkerSpec) -> Result<Box<dyn WorkerProcess>, SpawnError> {
        self.inner.spawn(spec)
    }

    /// A configured command replaces the re-executed binary (with the same guardian).
    fn with_command(&self, command: &crate::config::WorkerCommand) -> Option<Arc<dyn Spawner>> {
        self.inner.with_command(command)
    }

    fn with_hardening(&self, hardening: Arc<super::WorkerHardening>) -> Option<Arc<dyn Spawner>> {
        Some(Arc::new(self.clone().hardening(hardening)))
    }
}
