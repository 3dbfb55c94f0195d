//! [`ProcessSpawner`]: runs a configured command as each worker.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use rustix::process::Signal;
use tokio::process::{Child, Command};

use super::output::{Stream, forward_lines};
use super::{
    Guardian, SpawnError, Spawner, StopSignal, WorkerExit, WorkerProcess, WorkerSpec, sys,
};
use crate::config::WorkerCommand;

/// Runs a program with arguments, working directory and environment as each worker.
///
/// Each worker gets `PORT`, `HOST`, `CLUSTER_WORKER_ID`, `NODE_APP_INSTANCE` and
/// `CLUSTER_WORKER_GENERATION` in its environment, on top of the primary's environment and
/// the configured extra variables. It runs in its own process group (so Ctrl-C in a terminal
/// reaches only the primary, and signals reach the worker's own children too) and is killed
/// by the kernel if the primary dies. Its stdout and stderr are forwarded line by line,
/// prefixed with `[w<slot>]`.
#[derive(Debug, Clone)]
pub struct ProcessSpawner {
    program: PathBuf,
    args: Vec<String>,
    cwd: Option<PathBuf>,
    env: BTreeMap<String, String>,
    guardian: Option<Arc<Guardian>>,
}

impl ProcessSpawner {
    /// A spawner running `program` with `args`.
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            cwd: None,
            env: BTreeMap::new(),
            guardian: None,
        }
    }

    /// A spawner for a configured worker command; `None` when the command is not set (the
    /// caller then chooses a [`SelfExecSpawner`](super::SelfExecSpawner)).
    pub fn from_command(command: &WorkerCommand) -> Option<Self> {
        let program = command.program.clone()?;
        Some(Self {
            program,
            args: command.args.clone(),
            cwd: command.cwd.clone(),
            env: command.env.clone(),
            guardian: None,
        })
    }

    /// Runs workers in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Adds an environment variable for every worker.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Registers every worker's process group with `guardian`, so that the worker's own
    /// children are killed too if the primary dies.
    pub fn guardian(mut self, guardian: Arc<Guardian>) -> Self {
        self.guardian = Some(guardian);
        self
    }

    /// The program this spawner runs.
    pub fn program(&self) -> &std::path::Path {
        &self.program
    }
}

impl Spawner for ProcessSpawner {
    fn spawn(&self, spec: &WorkerSpec) -> Result<Box<dyn WorkerProcess>, SpawnError> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .envs(&self.env)
            .envs(spec.cluster_env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        sys::kill_when_parent_dies(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| SpawnError::Start {
            program: self.program.display().to_string(),
            slot: spec.slot,
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        if let Some(g) = &self.guardian {
            g.watch(pid);
        }
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(out, spec.slot, Stream::Stdout));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(err, spec.slot, Stream::Stderr));
        }
        Ok(Box::new(ChildProcess { child, pid, exit: None, guardian: self.guardian.clone() }))
    }
}

/// A worker started by [`ProcessSpawner`].
#[derive(Debug)]
struct ChildProcess {
    child: Child,
    pid: u32,
    exit: Option<WorkerExit>,
    guardian: Option<Arc<Guardian>>,
}

#[async_trait]
impl WorkerProcess for ChildProcess {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn signal(&self, signal: StopSignal) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        let sig = match signal {
            StopSignal::Terminate => Signal::TERM,
            StopSignal::Kill => Signal::KILL,
        };
        sys::signal_group(self.pid, sig)
    }

    async fn wait(&mut self) -> io::Result<WorkerExit> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let status = self.child.wait().await?;
        // The leader is gone; anything it left in its group (the `node` under `npm start`)
        // goes with it, so no part of a worker outlives it.
        let _ = sys::signal_group(self.pid, Signal::KILL);
        if let Some(g) = &self.guardian {
            g.unwatch(self.pid);
        }
        use std::os::unix::process::ExitStatusExt;
        let exit = WorkerExit { code: status.code(), signal: status.signal() };
        self.exit = Some(exit);
        Ok(exit)
    }
}
