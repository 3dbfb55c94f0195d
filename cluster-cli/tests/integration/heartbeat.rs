//! Worker heartbeats with real processes on an embedded cluster: readiness and liveness over
//! the systemd notify socket (the `hello` worker with `HELLO_NOTIFY=1`) and over Node's IPC
//! channel (`examples/node/server.js`). Workers that speak neither are the other tests.

use std::time::Duration;

use bytes::Bytes;
use cluster_core::config::{self, ClusterSpec, Environment, Overrides};
use cluster_core::{Cluster, ClusterEvent, ClusterHandle, ShutdownMode, WorkerStatus};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use crate::util::{Conn, get, hello_bin, node_server};

/// A health path the example workers answer 404: their probe never passes, so a worker that
/// becomes ready did so by saying it.
const FAILING_PROBE: &str = "/not-a-route";

/// The spec of `workers` copies of `command` on 127.0.0.1, with nothing from the environment
/// but `PATH` (to find `node`).
fn spec(workers: usize, command: &[&str]) -> ClusterSpec {
    let mut o = Overrides::default();
    o.workers = Some(workers.to_string());
    o.port = Some("0".into());
    o.host = Some("127.0.0.1".into());
    o.command = command.iter().map(|s| s.to_string()).collect();
    let path = std::env::var("PATH").unwrap_or_default();
    config::load(&o, &Environment::from_vars([("PATH", path)])).expect("config").spec
}

/// A cluster running in a task, with its event stream.
struct Running {
    handle: ClusterHandle,
    events: broadcast::Receiver<ClusterEvent>,
    run: JoinHandle<Result<(), cluster_core::ClusterError>>,
}

impl Running {
    async fn start(spec: ClusterSpec) -> Running {
        let cluster = Cluster::builder(spec).build().await.expect("bind");
        let handle = cluster.handle();
        let events = handle.subscribe();
        let run = tokio::spawn(cluster.run());
        Running { handle, events, run }
    }

    /// Waits up to `limit` for a status that satisfies `done`.
    async fn status_until(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[WorkerStatus]) -> bool,
    ) -> Vec<WorkerStatus> {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.handle.status().await.expect("running");
            if status.ready_workers == status.desired_workers && done(&status.workers) {
                return status.workers;
            }
            assert!(Instant::now() < deadline, "{what}: not within {limit:?}: {status:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits up to `limit` for an event that satisfies `want`.
    async fn event(
        &mut self,
        limit: Duration,
        want: impl Fn(&ClusterEvent) -> bool,
    ) -> ClusterEvent {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.events.recv()).await {
                Ok(Ok(ev)) if want(&ev) => return ev,
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(e)) => panic!("event stream ended: {e}"),
                Err(_) => panic!("no such event within {limit:?}"),
            }
        }
    }

    /// Graceful shutdown; returns how long it took and the exits of the workers.
    async fn stop(mut self, limit: Duration) -> (Duration, Vec<(Option<i32>, Option<i32>)>) {
        let started = Instant::now();
        self.handle.shutdown(ShutdownMode::Graceful).unwrap();
        let mut exits = Vec::new();
        let collect = async {
            while let Ok(ev) = self.events.recv().await {
                match ev {
                    ClusterEvent::WorkerExited { code, signal, .. } => exits.push((code, signal)),
                    ClusterEvent::Stopped => break,
                    _ => {}
                }
            }
        };
        timeout(limit, collect).await.expect("shutdown in time");
        timeout(limit, self.run).await.expect("run ends").unwrap().unwrap();
        (started.elapsed(), exits)
    }
}

#[tokio::test]
async fn a_node_worker_is_ready_and_alive_over_its_ipc_channel() {
    let server = node_server().display().to_string();
    let mut spec = spec(1, &["node", &server]);
    spec.health_check_path = Some(FAILING_PROBE.into());
    spec.unresponsive_timeout = Duration::from_secs(60);
    spec.start_timeout = Duration::from_secs(15);
    let cluster = Running::start(spec).await;

    // Ready although its probe fails: it said so with process.send({type: "ready"}).
    let workers = cluster
        .status_until(Duration::from_secs(15), "ready over IPC", |w| {
            w[0].heartbeat_status.as_deref().is_some_and(|s| s.starts_with("serving on"))
        })
        .await;
    let (status, body) = get(cluster.handle.local_addr(), "/").await;
    assert_eq!(status, 200);
    assert!(body.starts_with(b"hello from node worker 0"), "{body:?}");

    // Its heartbeats (one a second) show in the status.
    let workers2 = cluster
        .status_until(Duration::from_secs(10), "heartbeats seen", |w| {
            w[0].last_heartbeat_ms_ago.is_some_and(|ms| ms < 2000)
        })
        .await;
    assert_eq!(workers2[0].worker_id, workers[0].worker_id, "not replaced");

    // The channel does not keep it alive: SIGTERM ends it at once, with exit code 0.
    let (took, exits) = cluster.stop(Duration::from_secs(20)).await;
    assert_eq!(exits, vec![(Some(0), None)]);
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}

/// A Node server that listens for IPC messages (as apps written for PM2 do, for its
/// `shutdown` message), which keeps Node's channel and so its event loop alive, and on SIGTERM
/// only closes its server and waits for the loop to empty (as SvelteKit's adapter-node does).
const LISTENING_NODE: &str = "const s = require('http').createServer((q, r) => r.end('plain\\n'));
s.listen(+process.env.PORT, process.env.HOST);
process.on('message', (m) => m === 'shutdown' && s.close());
process.on('SIGTERM', () => s.close());";

#[tokio::test]
async fn a_node_worker_that_waits_for_its_event_loop_still_exits_on_sigterm() {
    let mut spec = spec(1, &["node", "-e", LISTENING_NODE]);
    spec.graceful_shutdown_timeout = Duration::from_secs(20);
    let cluster = Running::start(spec).await;
    cluster.status_until(Duration::from_secs(15), "ready", |_| true).await;
    assert_eq!(get(cluster.handle.local_addr(), "/").await, (200, Bytes::from("plain\n")));
    // The primary hangs up the channel after SIGTERM; without that, Node would keep running
    // until the SIGKILL at the 20 s deadline.
    let (took, exits) = cluster.stop(Duration::from_secs(30)).await;
    assert_eq!(exits, vec![(Some(0), None)]);
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}

/// `hello` with the notify heartbeat on.
fn hello_notify(workers: usize) -> ClusterSpec {
    let hello = hello_bin().display().to_string();
    let mut spec = spec(workers, &[&hello]);
    spec.command.env.insert("HELLO_NOTIFY".into(), "1".into());
    spec
}

#[tokio::test]
async fn a_worker_is_ready_when_it_sends_ready_over_the_notify_socket() {
    let mut spec = hello_notify(1);
    spec.health_check_path = Some(FAILING_PROBE.into());
    spec.unresponsive_timeout = Duration::from_secs(60);
    spec.start_timeout = Duration::from_secs(15);
    spec.health.heartbeat_timeout = Duration::from_secs(2);
    let cluster = Running::start(spec).await;
    let workers = cluster
        .status_until(Duration::from_secs(15), "ready over the notify socket", |w| {
            w[0].heartbeat_status.as_deref() == Some("serving")
                && w[0].last_heartbeat_ms_ago.is_some()
        })
        .await;
    let (status, body) = get(cluster.handle.local_addr(), "/pid").await;
    assert_eq!((status, body), (200, Bytes::from(workers[0].pid.to_string())));
    let (_, exits) = cluster.stop(Duration::from_secs(20)).await;
    assert_eq!(exits, vec![(Some(0), None)]);
}

#[tokio::test]
async fn a_worker_whose_heartbeats_stop_is_replaced_without_a_failed_request() {
    let mut spec = hello_notify(2);
    spec.command.env.insert("HELLO_NOTIFY_HANG_AFTER_MS".into(), "1500".into());
    spec.health.heartbeat_timeout = Duration::from_millis(1000);
    spec.health_check_interval = Duration::from_millis(200);
    let mut cluster = Running::start(spec).await;
    let first = cluster
        .status_until(Duration::from_secs(15), "ready", |w| {
            w.iter().all(|w| w.last_heartbeat_ms_ago.is_some())
        })
        .await;

    let addr = cluster.handle.local_addr();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let load = tokio::spawn(async move {
        let mut conn = Conn::open(addr).await;
        let mut statuses = Vec::new();
        while stop_rx.try_recv().is_err() && statuses.len() < 20_000 {
            statuses.push(conn.send("GET", "/slow?ms=5", Bytes::new()).await.0);
        }
        statuses
    });

    // Both stop sending heartbeats 1.5 s after start (while still serving): each is replaced
    // as unresponsive (out of rotation and stopped at once, its slot refilled).
    let mut replaced = Vec::new();
    while replaced.len() < first.len() {
        let ev = cluster
            .event(Duration::from_secs(20), |e| {
                matches!(e, ClusterEvent::Recycling { worker_id, .. }
                    if first.iter().any(|w| w.worker_id == *worker_id))
            })
            .await;
        if let ClusterEvent::Recycling { worker_id, reason, .. } = ev {
            assert!(reason.starts_with("unresponsive"), "{reason}");
            replaced.push(worker_id);
        }
    }
    cluster
        .status_until(Duration::from_secs(20), "both replaced", |w| {
            w.iter().all(|w| first.iter().all(|f| f.worker_id != w.worker_id))
        })
        .await;
    let _ = stop_tx.send(());
    let statuses = load.await.unwrap();
    assert!(statuses.len() > 50, "too little load: {}", statuses.len());
    let failed = statuses.iter().filter(|&&s| s != 200).count();
    assert_eq!(failed, 0, "{failed} of {} requests failed", statuses.len());
    let status = cluster.handle.status().await.unwrap();
    for w in &status.workers {
        if let Some(reason) = &w.last_restart_reason {
            assert!(reason.starts_with("unresponsive"), "reason: {reason}");
        }
    }
    let ready = status.workers.iter().filter(|w| w.status == cluster_core::WorkerState::Ready);
    assert!(ready.clone().count() >= 2, "{status:#?}");
    assert!(ready.into_iter().all(|w| first.iter().all(|f| f.worker_id != w.worker_id)));
    cluster.stop(Duration::from_secs(30)).await;
}
