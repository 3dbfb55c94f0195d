//! `cluster start`: run the primary in the foreground.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use cluster_core::config::{self, ClusterSpec, Environment, Overrides};
use cluster_core::{
    Cluster, ClusterHandle, Guardian, ProcessSpawner, SelfExecSpawner, forward_signals,
};
use tracing_subscriber::EnvFilter;

use crate::{event_log, notices};

/// Where the configuration came from, so that SIGUSR2 can load it again the same way.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) overrides: Overrides,
    pub(crate) env: Environment,
}

/// Runs the cluster described by `spec` until it has shut down. `after_start` runs on the
/// primary's runtime once the cluster is built (dev mode watches files there).
pub(crate) fn run(
    spec: ClusterSpec,
    source: Source,
    after_start: impl FnOnce(ClusterHandle) + Send + 'static,
) -> ExitCode {
    let filter = match EnvFilter::try_new(&spec.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cluster: invalid value for `logLevel`: {:?} ({e})", spec.log_level);
            return ExitCode::from(2);
        }
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .init();
    notices::warn_inactive(&spec);

    // The first proxy thread runs here; further proxy threads (`performance.proxyThreads`)
    // and the control plane get single-threaded runtimes of their own.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cluster: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(spec, source, after_start)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cluster: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    spec: ClusterSpec,
    source: Source,
    after_start: impl FnOnce(ClusterHandle) + Send + 'static,
) -> Result<(), String> {
    let workers = spec.workers;
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
    let builder = match ProcessSpawner::from_command(&spec.command) {
        Some(spawner) => {
            builder.spawner(with_guardian(spawner, &guardian, ProcessSpawner::guardian))
        }
        None => {
            let demo = SelfExecSpawner::new(["__demo-worker"]).map_err(|e| {
                format!("cannot find the cluster binary to run the demo worker: {e}")
            })?;
            builder.spawner(with_guardian(demo, &guardian, SelfExecSpawner::guardian))
        }
    };
    let cluster = builder.build().await.map_err(|e| e.to_string())?;
    let handle = cluster.handle();
    let log =
        tokio::spawn(event_log::log_events(handle.subscribe(), workers, spec.strategy.name()));
    let signals = handle.clone();
    tokio::spawn(async move {
        if let Err(e) = forward_signals(signals.clone()).await {
            tracing::error!("cannot listen for signals: {e}");
        }
    });
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
    result?;
    tracing::info!("all workers stopped; bye");
    Ok(())
}

fn with_guardian<S>(
    spawner: S,
    guardian: &Option<Arc<Guardian>>,
    add: fn(S, Arc<Guardian>) -> S,
) -> S {
    match guardian {
        Some(g) => add(spawner, Arc::clone(g)),
        None => spawner,
    }
}
