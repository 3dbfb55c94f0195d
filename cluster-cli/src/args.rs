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
    /// Run the cluster in the foreground until SIGTERM or Ctrl-C.
    ///
    /// With no command, runs the built-in demo server as each worker.
    Start(StartArgs),
    /// Run the cluster for development: 2 workers unless configured otherwise, and a rolling
    /// restart whenever a file under the working directory changes.
    ///
    /// Ignored: node_modules, .git, target, .svelte-kit, editor and log files (see --ignore).
    /// build/ is watched: it is what `node build` runs.
    Dev(DevArgs),
    /// Print the effective configuration and where each value comes from.
    Config(ConfigCmdArgs),
    /// Run the built-in demo server (used by `start` when no command is given).
    #[command(name = "__demo-worker", hide = true)]
    DemoWorker,
    /// Kill the worker process groups listed on stdin once it closes (started by `start`).
    #[command(name = "__guardian", hide = true)]
    Guardian,
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
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

/// Flags that override the configuration file and the environment.
///
/// Values are passed on as typed, so that a bad one is reported with the same wording as a
/// bad value from the file or the environment.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Configuration file (default: $CLUSTER_CONFIG_PATH, else ./cluster.config.json if present).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
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
