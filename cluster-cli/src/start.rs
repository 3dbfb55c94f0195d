//! `cluster start`: run the primary in the foreground.

use std::io::IsTerminal;
use std::process::ExitCode;

use cluster_core::config::ClusterSpec;
use std::sync::Arc;

use cluster_core::{Cluster, Guardian, ProcessSpawner, SelfExecSpawner, forward_signals};
use tracing_subscriber::EnvFilter;

use crate::{event_log, notices};

/// Runs the cluster described by `spec` until it has shut down.
pub(crate) fn run(spec: ClusterSpec) -> ExitCode {
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

    // The supervisor and the first proxy thread share this thread; further proxy threads
    // (`performance.proxyThreads`) get single-threaded runtimes of their own.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cluster: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(spec)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cluster: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(spec: ClusterSpec) -> Result<(), String> {
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
    let builder = Cluster::builder(spec.clone());
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
    let log = tokio::spawn(event_log::log_events(
        handle.subscribe(),
        workers,
        cluster.router().strategy(),
    ));
    let signals = handle.clone();
    tokio::spawn(async move {
        if let Err(e) = forward_signals(signals.clone()).await {
            tracing::error!("cannot listen for signals: {e}");
        }
    });
    cluster.run().await.map_err(|e| e.to_string())?;
    // Let the log show the last events before saying goodbye.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), log).await;
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
