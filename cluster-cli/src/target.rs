//! Which cluster a command means: its runtime directory (control socket, pid file) and its
//! log file, from the flags, else the configuration file, else the defaults.

use std::path::{Path, PathBuf};

use cluster_core::config::{self, ClusterSpec, Environment, Overrides};

use crate::args::TargetArgs;
use crate::runtime::RuntimeDir;

/// A cluster's files.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) runtime: RuntimeDir,
    pub(crate) log_file: PathBuf,
    /// Longest `stop` waits: twice the configured graceful timeout (drain, then the workers'
    /// own stop), plus a margin.
    pub(crate) stop_wait: std::time::Duration,
}

impl Target {
    /// The files `spec` and the flags name.
    pub(crate) fn new(
        spec: Option<&ClusterSpec>,
        dir: Option<&Path>,
        socket: Option<&Path>,
    ) -> Self {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        // A `--runtime-dir` flag moves the default socket with it; the configured socket is
        // kept only without one.
        let keep_socket = dir.is_none();
        let absolute = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { cwd.join(p) };
        let dir = dir
            .map(absolute)
            .or_else(|| spec.map(|s| s.runtime_dir.clone()))
            .unwrap_or_else(|| cwd.join(".cluster"));
        let socket = socket
            .map(absolute)
            .or_else(|| spec.filter(|_| keep_socket).map(ClusterSpec::control_socket));
        let log_file = spec
            .map(|s| s.log_file.clone())
            .unwrap_or_else(|| cwd.join("logs").join("cluster.log"));
        let graceful =
            spec.map_or(std::time::Duration::from_secs(15), |s| s.graceful_shutdown_timeout);
        let stop_wait = graceful * 2 + std::time::Duration::from_secs(30);
        Self { runtime: RuntimeDir::new(dir, socket), log_file, stop_wait }
    }

    /// The cluster a client command means. The configuration file is read for `runtimeDir`
    /// and `logFile`; one that does not load is reported and the defaults are used, so that a
    /// broken file never keeps anyone from stopping a cluster.
    pub(crate) fn of(args: &TargetArgs) -> Self {
        let mut overrides = Overrides::default();
        overrides.config_path = args.config.clone();
        let spec = match config::load(&overrides, &Environment::capture()) {
            Ok(loaded) => Some(loaded.spec),
            Err(e) => {
                if args.runtime_dir.is_none() && args.socket.is_none() {
                    let first = e.to_string().lines().next().unwrap_or_default().to_owned();
                    eprintln!(
                        "cluster: the configuration does not load ({first}); using the default runtime directory"
                    );
                }
                None
            }
        };
        Self::new(spec.as_ref(), args.runtime_dir.as_deref(), args.socket.as_deref())
    }
}
