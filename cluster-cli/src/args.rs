//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use cluster_core::config::Overrides;

/// Run N copies of an HTTP server behind one port, with zero-downtime supervision.
#[derive(Debug, Parser)]
#[command(name = "cluster", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the cluster until SIGTERM or Ctrl-C (in the background with --detach).
    ///
    /// With no command, runs the built-in demo server as each worker.
    Start(StartArgs),
    /// Show the workers of the running cluster (like `pm2 ls`).
    Status(StatusArgs),
    /// Exit 0 when the running cluster is healthy, 1 when it is degraded (with the reason).
    Health(TargetArgs),
    /// Change the number of workers: `up`, `down` or a count.
    Scale(ScaleArgs),
    /// Rolling restart: replace the workers one at a time without losing a request; prints a
    /// line per worker and waits until done (exit 1 if it failed and was rolled back).
    Reload(TargetArgs),
    /// Restart every worker at once (capacity dips; prefer `reload`), and wait until done.
    Restart(TargetArgs),
    /// Hot upgrade of the primary: start a new primary (the `cluster` binary on disk now),
    /// hand it the front port, and once its workers are ready let the old one drain and exit.
    /// No connection is refused. Exit 1 with the reason if the new one fails (the old one
    /// keeps serving). Also SIGURG.
    Upgrade(UpgradeArgs),
    /// Stop the running cluster gracefully and wait until it has stopped.
    Stop(TargetArgs),
    /// Stop the running cluster at once (SIGKILL to every worker).
    #[command(name = "force-stop")]
    ForceStop(TargetArgs),
    /// Stop the running cluster, then remove its pid file, socket and log file.
    Clean(TargetArgs),
    /// Print the log of a detached cluster.
    Logs(LogsArgs),
    /// A live view of the running cluster in the terminal, refreshed every second.
    Top(TargetArgs),
    /// Run the cluster for development: 2 workers unless configured otherwise, and a rolling
    /// restart whenever a file under the working directory changes.
    ///
    /// Ignored: node_modules, .git, target, .svelte-kit, editor and log files (see --ignore).
    /// build/ is watched: it is what `node build` runs.
    Dev(DevArgs),
    /// Print the effective configuration and where each value comes from.
    Config(ConfigCmdArgs),
    /// Write cluster.config.json from another process manager's configuration.
    Import(ImportArgs),
    /// Run the built-in demo server (used by `start` when no command is given).
    #[command(name = "__demo-worker", hide = true)]
    DemoWorker,
    /// Kill the worker process groups listed on stdin once it closes (started by `start`).
    #[command(name = "__guardian", hide = true)]
    Guardian,
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// Run in the background: log to `logFile` (logs/cluster.log), return once the workers
    /// are ready (or fail with the reason).
    #[arg(long, short = 'd')]
    pub(crate) detach: bool,
    /// Write stdout and stderr to this file (what --detach passes to the background primary).
    #[arg(long, value_name = "FILE", hide = true)]
    pub(crate) log_to: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
}

/// Which running cluster a command talks to.
#[derive(Debug, Args, Clone)]
pub(crate) struct TargetArgs {
    /// Configuration file (for its `runtimeDir`; default as for `start`).
    #[arg(long, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// The cluster's runtime directory (default: `runtimeDir`, else ./.cluster).
    #[arg(long, value_name = "DIR")]
    pub(crate) runtime_dir: Option<PathBuf>,
    /// The cluster's control socket (default: `<runtime-dir>/cluster.sock`).
    #[arg(long, value_name = "PATH")]
    pub(crate) socket: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print the status JSON (the same as GET /api/admin/cluster/status).
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ScaleArgs {
    /// `up` (one more), `down` (one fewer) or the number of workers.
    #[arg(value_name = "up|down|N")]
    pub(crate) to: String,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UpgradeArgs {
    /// Run this program as the new primary (default: the one the running primary was started
    /// from, looked up again now).
    #[arg(long, value_name = "PATH")]
    pub(crate) binary: Option<PathBuf>,
    /// Longest wait for the new primary's workers, in seconds (default: `startTimeout` + 30).
    #[arg(long, value_name = "SECS")]
    pub(crate) timeout: Option<u64>,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Keep printing lines as they are written.
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
    /// Lines to print from the end.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
    pub(crate) lines: usize,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Directory to watch, recursively (repeatable; default: the working directory).
    #[arg(long = "watch", value_name = "DIR")]
    pub(crate) watch: Vec<PathBuf>,
    /// Also ignore paths matching this glob, matched against each path component and the
    /// path relative to the watched directory (repeatable), e.g. `dist` or `*.map`.
    #[arg(long = "ignore", value_name = "GLOB")]
    pub(crate) ignore: Vec<String>,
    /// Quiet time after the last change before the workers restart, in ms.
    #[arg(long, value_name = "MS", default_value_t = 300)]
    pub(crate) debounce: u64,
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ConfigCmdArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
}

/// `cluster import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(subcommand)]
    pub(crate) from: ImportFrom,
}

/// What `cluster import` reads.
#[derive(Debug, Subcommand)]
pub(crate) enum ImportFrom {
    /// Write cluster.config.json from a PM2 ecosystem file (ecosystem.config.js, .cjs, .mjs,
    /// .json or .yml), evaluated with node as PM2 does; prints what was mapped, what was
    /// approximated and what has no equivalent (see docs/pm2.md).
    Pm2(Pm2Args),
}

/// Where `cluster import` writes by default.
pub(crate) const DEFAULT_OUTPUT: &str = "cluster.config.json";

/// `cluster import pm2`.
#[derive(Debug, Args)]
pub(crate) struct Pm2Args {
    /// The ecosystem file.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// The app to import (required when the file has several).
    #[arg(long, value_name = "NAME")]
    pub(crate) app: Option<String>,
    /// Apply the app's `env_NAME` variables over `env`, as `pm2 start --env NAME` does.
    #[arg(long, value_name = "NAME")]
    pub(crate) env: Option<String>,
    /// Where to write the configuration; `-` prints it (the report then goes to stderr).
    #[arg(long, short, value_name = "PATH", default_value = DEFAULT_OUTPUT)]
    pub(crate) output: PathBuf,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub(crate) force: bool,
    /// The node binary that evaluates the file.
    #[arg(long, value_name = "PATH", default_value = "node")]
    pub(crate) node: String,
}

/// Flags that override the configuration file and the environment.
///
/// Values are passed on as typed, so that a bad one is reported with the same wording as a
/// bad value from the file or the environment.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Configuration file (default: $CLUSTER_CONFIG_PATH, else ./cluster.config.json if present).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The runtime directory: control socket and pid file (default: `runtimeDir`, else
    /// ./.cluster).
    #[arg(long, value_name = "DIR")]
    pub(crate) runtime_dir: Option<PathBuf>,
    /// The control socket (default: `<runtime-dir>/cluster.sock`).
    #[arg(long, value_name = "PATH")]
    pub(crate) socket: Option<PathBuf>,
    /// Number of workers, or "max" for one per CPU.
    #[arg(short, long, value_name = "N|max")]
    workers: Option<String>,
    /// Front port (0 picks a free one).
    #[arg(short, long, value_name = "PORT")]
    port: Option<String>,
    /// Front address to bind.
    #[arg(long, value_name = "ADDR")]
    host: Option<String>,
    /// Balancing strategy: round-robin or least-connections.
    #[arg(long, value_name = "NAME")]
    strategy: Option<String>,
    /// Path a worker must answer with 2xx before it receives traffic.
    #[arg(long, value_name = "PATH")]
    health_path: Option<String>,
    /// Log filter (error, warn, info, debug, trace, or tracing directives).
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// The worker command and its arguments.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl ConfigArgs {
    /// `--runtime-dir`.
    pub(crate) fn runtime_dir(&self) -> Option<&std::path::Path> {
        self.runtime_dir.as_deref()
    }

    /// `--socket`.
    pub(crate) fn socket(&self) -> Option<&std::path::Path> {
        self.socket.as_deref()
    }

    pub(crate) fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        o.config_path = self.config.clone();
        o.workers = self.workers.clone();
        o.port = self.port.clone();
        o.host = self.host.clone();
        o.strategy = self.strategy.clone();
        o.health_check_path = self.health_path.clone();
        o.log_level = self.log_level.clone();
        o.command = self.command.clone();
        o
    }
}
