//! `cluster start`: run the primary, with its control socket and admin API.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use cluster_admin::{AdminApi, AdminConfig, bind_socket};
use cluster_core::config::{self, ClusterSpec, Environment, Overrides};
use cluster_core::upgrade::{Successor, SuccessorCommand};
use cluster_core::{
    Cluster, ClusterEvent, ClusterHandle, Guardian, ProcessSpawner, SelfExecSpawner,
    WorkerHardening, forward_signals,
};
use tokio_util::task::AbortOnDropHandle;
use tracing_subscriber::EnvFilter;

use crate::runtime::RuntimeDir;
use crate::{event_log, logfile, notices};

/// Where the configuration came from, so that SIGUSR2 can load it again the same way.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) overrides: Overrides,
    pub(crate) env: Environment,
}

/// How the primary runs, besides its configuration.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Its runtime directory (control socket, pid file).
    pub(crate) runtime: RuntimeDir,
    /// Write stdout and stderr to this file, reopened on SIGUSR1 (a detached primary).
    pub(crate) log_to: Option<PathBuf>,
    /// Started by a hot upgrade: what the old primary handed over, and where to report.
    pub(crate) successor: Option<Arc<Successor>>,
}

/// Runs the cluster described by `spec` until it has shut down. `after_start` runs on the
/// primary's runtime once the cluster is built (dev mode watches files there).
pub(crate) fn run(
    spec: ClusterSpec,
    source: Source,
    options: Options,
    after_start: impl FnOnce(ClusterHandle) + Send + 'static,
) -> ExitCode {
    let successor = options.successor.clone();
    // Says why we stop, and tells the old primary of a hot upgrade, which keeps serving.
    let fail = |message: String, code: u8| {
        eprintln!("cluster: {message}");
        if let Some(successor) = &successor {
            let _ = successor.failed(&message);
        }
        ExitCode::from(code)
    };
    if let Some(path) = &options.log_to {
        if let Err(e) = logfile::redirect(path) {
            return fail(format!("cannot write the log file {}: {e}", path.display()), 1);
        }
    }
    let filter = match EnvFilter::try_new(&spec.log_level) {
        Ok(f) => f,
        Err(e) => {
            return fail(format!("invalid value for `logLevel`: {:?} ({e})", spec.log_level), 2);
        }
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .init();
    notices::warn_inactive(&spec);
    // Before anything starts: a primary that may not confine its workers as asked stops here.
    let hardening = match WorkerHardening::prepare(&spec.hardening) {
        Ok(h) if spec.hardening.is_active() => {
            for notice in h.notices() {
                tracing::warn!("{notice}");
            }
            Some(Arc::new(h))
        }
        Ok(_) => None,
        Err(e) => return fail(e.to_string(), 2),
    };

    // The first proxy thread runs here; further proxy threads (`performance.proxyThreads`)
    // and the control plane get single-threaded runtimes of their own.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}"), 1),
    };
    match runtime.block_on(serve(spec, source, options, hardening, after_start)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(message, 1),
    }
}

async fn serve(
    spec: ClusterSpec,
    source: Source,
    options: Options,
    hardening: Option<Arc<WorkerHardening>>,
    after_start: impl FnOnce(ClusterHandle) + Send + 'static,
) -> Result<(), String> {
    let workers = spec.workers;
    let runtime = options.runtime;
    let successor = options.successor;
    // After a hot upgrade the lock is the old primary's, shared: it never stops being held.
    let lock = match successor.as_ref().and_then(|s| s.take("pidfile")) {
        Some(fd) => runtime.adopt(fd)?,
        None => runtime.lock()?,
    };
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the path of the cluster binary: {e}"))?;
    let guardian = match Guardian::start(&exe, &["__guardian"]) {
        Ok(g) => Some(Arc::new(g)),
        Err(e) => {
            tracing::warn!(
                "cannot start the guardian process ({e}); a worker's own children may outlive a killed primary"
            );
            None
        }
    };
    let builder = Cluster::builder(spec.clone()).config_source(move || {
        config::load(&source.overrides, &source.env).map(|loaded| loaded.spec)
    });
    // The admin listener, bound here or handed over by the old primary (hot upgrade).
    let admin_socket = match spec.admin.listen {
        Some(addr) => Some(crate::upgrade::admin_listener(addr, successor.as_deref())?),
        None => None,
    };
    // Upgradable in place (`cluster upgrade`, SIGURG): a new primary gets the front socket, the
    // locked pid file and the admin listener.
    let builder = match SuccessorCommand::current_process().and_then(|command| {
        let command = command.pass("pidfile", lock.share()?);
        match &admin_socket {
            Some(listener) => Ok(command.pass("admin", listener.try_clone()?)),
            None => Ok(command),
        }
    }) {
        Ok(command) => builder.upgradable(command),
        Err(e) => {
            tracing::warn!("hot upgrade unavailable: {e}");
            builder
        }
    };
    let builder = match ProcessSpawner::from_command(&spec.command) {
        Some(spawner) => {
            let spawner = with_option(spawner, &guardian, ProcessSpawner::guardian);
            builder.spawner(with_option(spawner, &hardening, ProcessSpawner::hardening))
        }
        None => {
            let demo = SelfExecSpawner::new(["__demo-worker"]).map_err(|e| {
                format!("cannot find the cluster binary to run the demo worker: {e}")
            })?;
            let demo = with_option(demo, &guardian, SelfExecSpawner::guardian);
            builder.spawner(with_option(demo, &hardening, SelfExecSpawner::hardening))
        }
    };
    let cluster = builder.build().await.map_err(|e| e.to_string())?;
    let handle = cluster.handle();
    let api = AdminApi::new(handle.clone(), AdminConfig::from_spec(&spec));
    let cluster = cluster.with_front_door(api.front_door());
    // A successor binds beside the old primary's socket and renames it over once it serves:
    // the path always answers, first the old primary, then the new one.
    let bound_at = match &successor {
        Some(_) => crate::upgrade::staging_socket(&runtime.socket),
        None => runtime.socket.clone(),
    };
    let socket = bind_socket(&bound_at)
        .map_err(|e| format!("cannot create the control socket {}: {e}", bound_at.display()))?;
    let on_socket = api.clone();
    let _socket_server = AbortOnDropHandle::new(tokio::spawn(async move {
        on_socket.serve_socket(socket).await;
    }));
    let _listener_server = match admin_socket {
        Some(listener) => {
            let listener = listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener))
                .map_err(|e| format!("cannot use the admin listener: {e}"))?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            tracing::info!("admin API on http://{bound}/api/admin/cluster/status");
            let on_listener = api.clone();
            let events = handle.subscribe();
            let wait_for_workers = successor.is_some().then(|| handle.clone());
            Some(AbortOnDropHandle::new(tokio::spawn(crate::upgrade::serve_admin_listener(
                on_listener,
                listener,
                events,
                wait_for_workers,
            ))))
        }
        None => None,
    };
    if bound_at == runtime.socket {
        tracing::info!("control socket {}", runtime.socket.display());
    } else {
        tracing::info!(
            "control socket {} (moved to {} once this primary serves)",
            bound_at.display(),
            runtime.socket.display()
        );
    }
    if let Some(path) = options.log_to.clone() {
        tokio::spawn(reopen_on_request(handle.subscribe(), path));
    }
    // In shared-socket mode the kernel balances: no strategy is in use.
    let balancing =
        if spec.mode.is_shared_socket() { "shared socket" } else { spec.strategy.name() };
    let log = tokio::spawn(event_log::log_events(handle.subscribe(), workers, balancing));
    let signals = handle.clone();
    tokio::spawn(async move {
        if let Err(e) = forward_signals(signals.clone()).await {
            tracing::error!("cannot listen for signals: {e}");
        }
    });
    // Under systemd (`Type=notify`): READY=1, STATUS=, RELOADING=1, STOPPING=1, WATCHDOG=1.
    // A successor's service is ready already: the old primary names it the main process.
    if let Some(notifier) = crate::sd_notify::Notifier::from_env() {
        tokio::spawn(crate::sd_notify::run(notifier, handle.clone(), successor.is_some()));
    }
    if let Some(successor) = successor {
        let takeover = crate::upgrade::Takeover {
            staged: bound_at.clone(),
            socket: runtime.socket.clone(),
            pid_file: lock.share().map_err(|e| e.to_string())?,
        };
        tokio::spawn(crate::upgrade::take_over(handle.clone(), successor, takeover));
    }
    after_start(handle);
    let result = cluster.run().await.map_err(|e| e.to_string());
    // Let the log show the last events before saying goodbye.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), log).await;
    if let Some(guardian) = guardian {
        // Every worker has exited: the guardian has nothing left to guard. Wait for it, so
        // that the primary leaves no zombie behind.
        match tokio::task::spawn_blocking(move || guardian.finish()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("the guardian process could not be waited for: {e}"),
            Err(e) => tracing::warn!("the guardian process could not be waited for: {e}"),
        }
    }
    if bound_at != runtime.socket {
        // Still staged when the upgrade failed: never the old primary's path.
        let _ = std::fs::remove_file(&bound_at);
    }
    lock.release(&runtime.socket);
    result?;
    tracing::info!("all workers stopped; bye");
    Ok(())
}

/// Reopens the log file on every SIGUSR1 (after logrotate moved it away).
async fn reopen_on_request(
    mut events: tokio::sync::broadcast::Receiver<ClusterEvent>,
    path: PathBuf,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(ClusterEvent::LogReopenRequested) => match logfile::redirect(&path) {
                Ok(()) => tracing::info!("log file {} reopened", path.display()),
                Err(e) => tracing::error!("cannot reopen the log file {}: {e}", path.display()),
            },
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// `spawner` with `value` added by `add`, when there is one.
fn with_option<S, T>(spawner: S, value: &Option<Arc<T>>, add: fn(S, Arc<T>) -> S) -> S {
    match value {
        Some(v) => add(spawner, Arc::clone(v)),
        None => spawner,
    }
}
