//! [`ProcessSpawner`]: runs a configured command as each worker.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use rustix::process::Signal;
use tokio::process::{Child, Command};

use super::cgroup::WorkerCgroup;
use super::output::{Stream, forward_lines};
use super::{
    Guardian, SpawnError, Spawner, StopSignal, WorkerExit, WorkerHardening, WorkerProcess,
    WorkerSpec, ipc, listen_fds, sys,
};
use crate::config::WorkerCommand;

/// Runs a program with arguments, working directory and environment as each worker.
///
/// Each worker gets `PORT`, `HOST`, `CLUSTER_WORKER_ID`, `NODE_APP_INSTANCE` and
/// `CLUSTER_WORKER_GENERATION` in its environment, on top of the primary's environment and
/// the configured extra variables, and `NOTIFY_SOCKET`/`WATCHDOG_USEC` when the cluster has a
/// notify socket. When [`WorkerSpec::node_ipc`] asks for it (by default: when the program is
/// `node` or `nodejs`), it also gets a Node IPC channel at fd 3 (`NODE_CHANNEL_FD=3`), whose
/// other end [`WorkerProcess::take_ipc_channel`] hands over.
///
/// It runs in its own process group (so Ctrl-C in a terminal reaches only the primary, and
/// signals reach the worker's own children too) and is killed by the kernel if the primary
/// dies. Its stdout and stderr are forwarded line by line, prefixed with `[w<slot>]`.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use cluster_core::config::{ClusterSpec, WorkerCommand};
/// use cluster_core::{Cluster, Guardian, ProcessSpawner, WorkerHardening};
///
/// # async fn example(spec: ClusterSpec) -> Result<(), Box<dyn std::error::Error>> {
/// let guardian = Arc::new(Guardian::start(&std::env::current_exe()?, &["__guardian"])?);
/// let hardening = Arc::new(WorkerHardening::prepare(&spec.hardening)?);
/// let spawner = ProcessSpawner::new("node", ["build/index.js"])
///     .current_dir("/srv/app")
///     .env("NODE_ENV", "production")
///     .guardian(guardian)
///     .hardening(hardening);
/// assert_eq!(spawner.program(), std::path::Path::new("node"));
/// // Or the configured command (`command`, `args`, `cwd`, `env`):
/// let configured = ProcessSpawner::from_command(&spec.command);
/// # let _ = configured;
/// Cluster::builder(spec).spawner(spawner).build().await?.run().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ProcessSpawner {
    program: PathBuf,
    args: Vec<String>,
    cwd: Option<PathBuf>,
    env: BTreeMap<String, String>,
    guardian: Option<Arc<Guardian>>,
    hardening: Option<Arc<WorkerHardening>>,
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
            hardening: None,
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
            hardening: None,
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

    /// Confines every worker as `hardening` says: its account, resource limits, CPU
    /// affinity and cgroup memory limit, set up between fork and exec. A worker run as
    /// another user also gets that user's `HOME`, `USER` and `LOGNAME` (the configured `env`
    /// may still set them).
    pub fn hardening(mut self, hardening: Arc<WorkerHardening>) -> Self {
        self.hardening = Some(hardening);
        self
    }

    /// The program this spawner runs.
    pub fn program(&self) -> &std::path::Path {
        &self.program
    }
}

impl Spawner for ProcessSpawner {
    fn with_command(&self, command: &WorkerCommand) -> Option<Arc<dyn Spawner>> {
        let mut spawner = ProcessSpawner::from_command(command)?;
        spawner.guardian = self.guardian.clone();
        spawner.hardening = self.hardening.clone();
        Some(Arc::new(spawner))
    }

    fn with_hardening(&self, hardening: Arc<WorkerHardening>) -> Option<Arc<dyn Spawner>> {
        Some(Arc::new(self.clone().hardening(hardening)))
    }

    fn spawn(&self, spec: &WorkerSpec) -> Result<Box<dyn WorkerProcess>, SpawnError> {
        let account = self.hardening.as_ref().and_then(|h| h.account());
        let failed = |source| match &account {
            Some(account) => SpawnError::AsAccount {
                program: self.program.display().to_string(),
                slot: spec.slot,
                account: account.clone(),
                source,
            },
            None => SpawnError::Start {
                program: self.program.display().to_string(),
                slot: spec.slot,
                source,
            },
        };
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        // Confinement comes first: its account variables may be overridden by the configured
        // `env`, and the parent-death signal below must be set after the credentials change
        // (which clears it).
        let cgroup = self.hardening.as_ref().and_then(|h| h.apply(&mut cmd, spec));
        cmd.envs(&self.env);
        for key in spec.inherited_env_to_remove() {
            cmd.env_remove(key);
        }
        cmd.envs(spec.cluster_env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        sys::kill_when_parent_dies(&mut cmd);
        let ipc_end = if ipc::wanted(&self.program, spec.node_ipc) {
            let channel = ipc::Channel::open().map_err(&failed)?;
            let fd = match spec.listener {
                Some(_) => ipc::CHILD_FD_BESIDE_LISTENER,
                None => ipc::CHILD_FD,
            };
            cmd.envs(ipc::env(fd));
            sys::pass_as_fd(&mut cmd, channel.child, fd);
            Some(channel.parent)
        } else {
            None
        };
        if let Some(listener) = &spec.listener {
            // Shared-socket mode: fd 3 is the front socket. Last, since it execs the program
            // itself to set `LISTEN_PID` (see `sys::exec_with_listener`).
            cmd.envs(listen_fds::LISTEN_ENV);
            sys::exec_with_listener(&mut cmd, listener.as_fd()).map_err(&failed)?;
        }
        let spawned = cmd.spawn();
        // The child's end of the channel lives in `cmd`: close it now, so that the channel
        // reaches end-of-file when the worker exits.
        drop(cmd);
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                if let Some(group) = &cgroup {
                    let _ = group.remove_now();
                }
                return Err(failed(e));
            }
        };
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
        Ok(Box::new(ChildProcess {
            child,
            pid,
            exit: None,
            guardian: self.guardian.clone(),
            ipc: ipc_end,
            cgroup,
        }))
    }
}

/// A worker started by [`ProcessSpawner`].
#[derive(Debug)]
struct ChildProcess {
    child: Child,
    pid: u32,
    exit: Option<WorkerExit>,
    guardian: Option<Arc<Guardian>>,
    ipc: Option<UnixStream>,
    /// Its cgroup (`limits.memoryMax`), removed once it has exited.
    cgroup: Option<WorkerCgroup>,
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
        if let Some(group) = self.cgroup.take() {
            group.remove_when_empty();
        }
        use std::os::unix::process::ExitStatusExt;
        let exit = WorkerExit { code: status.code(), signal: status.signal() };
        self.exit = Some(exit);
        Ok(exit)
    }

    fn take_ipc_channel(&mut self) -> Option<UnixStream> {
        self.ipc.take()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::Duration;

    use super::*;

    fn spec(node_ipc: Option<bool>) -> WorkerSpec {
        WorkerSpec {
            id: 1,
            slot: 0,
            generation: 1,
            endpoint: crate::endpoint::Endpoint::Tcp(([127, 0, 0, 1], 4000).into()),
            notify_socket: Some("@cluster/test/notify".into()),
            watchdog: Some(Duration::from_millis(1500)),
            node_ipc,
            listener: None,
        }
    }

    /// Runs `sh -c script` as a worker and returns what it wrote to its IPC channel.
    async fn channel_output(script: &str, node_ipc: Option<bool>) -> Option<String> {
        let spawner = ProcessSpawner::new("sh", ["-c", script])
            .env("WATCHDOG_PID", "1")
            .env("NOTIFY_SOCKET", "/run/systemd/notify");
        let mut process = spawner.spawn(&spec(node_ipc)).expect("spawn sh");
        let output = process.take_ipc_channel().map(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut out = String::new();
            // End-of-file comes only if the primary kept no copy of the worker's end.
            stream.read_to_string(&mut out).expect("the channel ends when the worker exits");
            out
        });
        assert_eq!(process.wait().await.unwrap().code, Some(0));
        output
    }

    #[tokio::test]
    async fn the_channel_is_fd_3_and_the_notify_variables_are_the_clusters() {
        let script = r#"printf '%s|%s|%s|%s|%s\n' "$NODE_CHANNEL_FD" \
            "$NODE_CHANNEL_SERIALIZATION_MODE" "$NOTIFY_SOCKET" "$WATCHDOG_USEC" \
            "${WATCHDOG_PID-unset}" >&3"#;
        assert_eq!(
            channel_output(script, Some(true)).await.as_deref(),
            Some("3|json|@cluster/test/notify|1500000|unset\n")
        );
    }

    #[tokio::test]
    async fn the_primarys_admin_token_never_reaches_a_worker() {
        let spawner = ProcessSpawner::new(
            "sh",
            [
                "-c",
                r#"printf '%s|%s' "${CLUSTER_ADMIN_TOKEN-unset}" "${CLUSTER_DETACHED-unset}" >&3"#,
            ],
        )
        .env("CLUSTER_ADMIN_TOKEN", "s3cret-token-0123456789")
        .env("CLUSTER_DETACHED", "1");
        let mut process = spawner.spawn(&spec(Some(true))).expect("spawn sh");
        let mut stream = process.take_ipc_channel().expect("channel");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        assert_eq!(out, "unset|unset");
        assert_eq!(process.wait().await.unwrap().code, Some(0));
    }

    #[tokio::test]
    async fn shared_socket_mode_passes_the_socket_at_fd_3_with_the_workers_own_pid() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let listener = super::super::SharedListener::new(socket);
        let inode = listener.inode().unwrap();
        let mut spec = spec(Some(true));
        spec.listener = Some(listener);
        // `$$` is the shell's pid: the worker's own, since nothing forked in between.
        let script = r#"printf '%s|%s|%s|%s|%s|%s\n' "$LISTEN_PID" "$$" "$LISTEN_FDS" \
            "$LISTEN_FDNAMES" "$NODE_CHANNEL_FD" "$(readlink /proc/self/fd/3)" >&4"#;
        let spawner = ProcessSpawner::new("sh", ["-c", script]).env("LISTEN_PID", "1");
        let mut process = spawner.spawn(&spec).expect("spawn sh");
        let pid = process.pid();
        let mut stream = process.take_ipc_channel().expect("channel");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        assert_eq!(process.wait().await.unwrap().code, Some(0));
        assert_eq!(out, format!("{pid}|{pid}|1|http|4|socket:[{inode}]\n"));
    }

    #[tokio::test]
    async fn shared_socket_mode_reports_a_missing_program() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut spec = spec(None);
        spec.listener = Some(super::super::SharedListener::new(socket));
        let spawner = ProcessSpawner::new("cluster-no-such-program", Vec::<String>::new());
        let err = spawner.spawn(&spec).expect_err("nothing to run");
        assert!(err.to_string().contains("cluster-no-such-program"), "{err}");
    }

    #[tokio::test]
    async fn a_worker_on_a_unix_socket_gets_its_path_and_no_port() {
        let spawner = ProcessSpawner::new(
            "sh",
            [
                "-c",
                r#"printf '%s|%s|%s|%s' "${SOCKET_PATH-unset}" "${CLUSTER_SOCKET_PATH-unset}" \
                    "${PORT-unset}" "${HOST-unset}" >&3"#,
            ],
        )
        .env("PORT", "8080")
        .env("HOST", "0.0.0.0");
        let mut unix = spec(Some(true));
        unix.endpoint = crate::endpoint::Endpoint::Unix("/run/c/w1.sock".into());
        let mut process = spawner.spawn(&unix).expect("spawn sh");
        let mut stream = process.take_ipc_channel().expect("channel");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        assert_eq!(out, "/run/c/w1.sock|/run/c/w1.sock|unset|unset");
        assert_eq!(process.wait().await.unwrap().code, Some(0));
    }

    #[tokio::test]
    async fn no_channel_unless_asked_for_or_node() {
        let script = r#"test -z "${NODE_CHANNEL_FD+set}" && ! (: >&3) 2>/dev/null"#;
        assert_eq!(channel_output(script, None).await, None);
        assert_eq!(channel_output(script, Some(false)).await, None);
    }
}
