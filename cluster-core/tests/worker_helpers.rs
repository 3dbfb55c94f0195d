//! The worker helpers against the real supervisor: this test binary is its own cluster. The
//! primary test runs a [`Cluster`] whose [`SelfExecSpawner`] re-runs this binary with only the
//! ignored `worker_role` test selected; there `is_worker()` is true and the worker serves with
//! the `cluster_core::worker` helpers. The primary then reads what the supervisor understood
//! (readiness, status line, heartbeats, `STOPPING=1`) from its status and events.

use std::time::{Duration, Instant};

use cluster_core::config::{self, Environment, Overrides};
use cluster_core::{Cluster, ClusterEvent, SelfExecSpawner, ShutdownMode, WorkerState, worker};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::broadcast::error::RecvError;

/// The status line every worker reports.
const STATUS: &str = "serving through the worker helpers";

/// Generous: the machine is shared with builds.
const PATIENCE: Duration = Duration::from_secs(30);

/// The worker role: runs only when re-executed by the cluster below (it is ignored otherwise,
/// and does nothing outside a cluster).
#[tokio::test(flavor = "current_thread")]
#[ignore = "the worker role of `the_supervisor_understands_the_worker_helpers`"]
async fn worker_role() {
    if !cluster_core::is_worker() {
        return;
    }
    let listener = worker::listener().expect("listener").into_tokio().expect("tokio");
    let mut stop = worker::stopping().expect("signals");
    worker::status(STATUS).expect("status");
    worker::ready().expect("ready");
    worker::heartbeats().expect("heartbeats").expect("the cluster asks for heartbeats");
    loop {
        let connection = tokio::select! {
            accepted = listener.accept() => accepted.expect("accept"),
            _ = &mut stop => return,
        };
        let service = service_fn(|_: Request<Incoming>| async {
            let body = format!("slot {:?} pid {}", worker::id(), std::process::id());
            Ok::<_, std::convert::Infallible>(Response::new(body))
        });
        tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(connection), service));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_understands_the_worker_helpers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.config.json");
    // Heartbeats every 500 ms (half the timeout); a worker that stopped sending them would be
    // replaced within a second.
    std::fs::write(&file, r#"{"health": {"heartbeatTimeout": 1000}}"#).unwrap();
    let mut overrides = Overrides::default();
    overrides.config_path = Some(file);
    overrides.workers = Some("2".into());
    overrides.port = Some("0".into());
    overrides.host = Some("127.0.0.1".into());
    let loaded = config::load(&overrides, &Environment::from_vars::<_, &str, &str>([])).unwrap();
    let spawner = SelfExecSpawner::new(["worker_role", "--exact", "--ignored", "--quiet"]).unwrap();
    let cluster = Cluster::builder(loaded.spec).spawner(spawner).build().await.unwrap();
    let handle = cluster.handle();
    let mut events = handle.subscribe();
    let running = tokio::spawn(cluster.run());

    // READY=1, STATUS= and WATCHDOG=1 reached the supervisor, for each worker.
    let deadline = Instant::now() + PATIENCE;
    let workers = loop {
        let status = handle.status().await.unwrap();
        let heard = |w: &&cluster_core::WorkerStatus| {
            w.status == WorkerState::Ready
                && w.heartbeat_status.as_deref() == Some(STATUS)
                && w.last_heartbeat_ms_ago.is_some()
        };
        if status.workers.iter().filter(heard).count() == 2 {
            break status.workers;
        }
        assert!(Instant::now() < deadline, "workers as seen: {:#?}", status.workers);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Three heartbeat timeouts later the same workers serve: the heartbeats go on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = handle.status().await.unwrap().workers;
    let pids = |ws: &[cluster_core::WorkerStatus]| ws.iter().map(|w| w.pid).collect::<Vec<_>>();
    assert_eq!(pids(&later), pids(&workers), "no worker was replaced");
    assert!(
        later.iter().all(|w| w.last_heartbeat_ms_ago.is_some_and(|ms| ms < 1000)),
        "{later:#?}"
    );

    // SIGTERM to one worker: it says STOPPING=1 and leaves rotation for that reason.
    let victim = &workers[0];
    terminate(victim.pid);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv()).await.expect("no Retiring");
        match event {
            Ok(ClusterEvent::Retiring { worker_id, reason, .. })
                if worker_id == victim.worker_id =>
            {
                assert_eq!(reason, "said it is stopping");
                break;
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => panic!("the cluster stopped"),
        }
    }

    handle.shutdown(ShutdownMode::Graceful).unwrap();
    tokio::time::timeout(PATIENCE, running).await.unwrap().unwrap().unwrap();
}

/// SIGTERM to `pid`, with the `kill` command (this crate's tests take no signal library).
fn terminate(pid: u32) {
    let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    assert!(status.unwrap().success());
}
