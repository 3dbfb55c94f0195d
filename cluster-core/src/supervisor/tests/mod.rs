//! Paused-time tests of the control plane with a fake spawner: the races of recycles,
//! rolling restarts, scaling, health kills and shutdown, deterministically, in milliseconds.

mod fake;
mod lifecycle;
mod rollout;
mod scale;
mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use self::fake::{Behaviour, FakeChecks, FakeSpawner, World};
use crate::config::ClusterSpec;
use crate::{Cluster, ClusterBuilder, ClusterEvent, ClusterHandle, ClusterStatus, ShutdownMode};

/// Longest any wait may last, in (virtual) time.
const WAIT: Duration = Duration::from_secs(600);

/// A running cluster of fake workers.
pub(crate) struct Harness {
    pub(crate) handle: ClusterHandle,
    pub(crate) events: broadcast::Receiver<ClusterEvent>,
    pub(crate) world: Arc<World>,
    run: JoinHandle<()>,
}

/// A spec for `workers` fake workers, scalable between 1 and 16, on a free loopback port.
pub(crate) fn spec(workers: usize) -> ClusterSpec {
    let mut spec =
        ClusterSpec { workers, listen: ([127, 0, 0, 1], 0).into(), ..ClusterSpec::default() };
    spec.scaling.min_workers = 1;
    spec.scaling.max_workers = 16;
    spec.start_timeout = Duration::from_secs(5);
    spec.graceful_shutdown_timeout = Duration::from_secs(15);
    spec.health.unresponsive_grace = Duration::from_secs(2);
    spec
}

impl Harness {
    /// Starts a cluster of `spec`, whose workers behave as `behaviour`, and waits until they
    /// are all ready.
    pub(crate) async fn start(spec: ClusterSpec, behaviour: Behaviour) -> Harness {
        Self::start_with(spec, behaviour, |b| b).await
    }

    /// [`start`](Self::start), with the builder adjusted by `adjust`.
    pub(crate) async fn start_with(
        spec: ClusterSpec,
        behaviour: Behaviour,
        adjust: impl FnOnce(ClusterBuilder) -> ClusterBuilder,
    ) -> Harness {
        let workers = spec.workers;
        let world = Arc::new(World::default());
        let builder = Cluster::builder(spec)
            .spawner(FakeSpawner::new(Arc::clone(&world), behaviour))
            .checks(Arc::new(FakeChecks(Arc::clone(&world))));
        let cluster = adjust(builder).build().await.expect("bind");
        let handle = cluster.handle();
        let events = handle.subscribe();
        let run = tokio::spawn(async move { cluster.run_here().await.expect("run") });
        let h = Harness { handle, events, world, run };
        h.wait_until("workers ready", |s| s.ready_workers == workers).await;
        h
    }

    pub(crate) async fn status(&self) -> ClusterStatus {
        self.handle.status().await.expect("status")
    }

    /// Polls the status until `done` holds.
    pub(crate) async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&ClusterStatus) -> bool,
    ) -> ClusterStatus {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: never: {status:#?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The next event `pick` accepts; the others are skipped.
    pub(crate) async fn next<T>(
        &mut self,
        what: &str,
        pick: impl Fn(&ClusterEvent) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Ok(ev)) => {
                    if let Some(t) = pick(&ev) {
                        return t;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => panic!("{what}: lagged {n}"),
                Ok(Err(e)) => panic!("{what}: event stream ended: {e}"),
                Err(_) => panic!("{what}: no such event"),
            }
        }
    }

    /// Every event received so far, without waiting.
    pub(crate) fn drain(&mut self) -> Vec<ClusterEvent> {
        let mut seen = Vec::new();
        while let Ok(ev) = self.events.try_recv() {
            seen.push(ev);
        }
        seen
    }

    /// Delivers `beat` from worker `id`, as the notify socket or IPC reader would.
    pub(crate) fn send_heartbeat(&self, id: u64, beat: cluster_health::Heartbeat) {
        let msg = crate::supervisor::heartbeat::HeartbeatMsg::from_worker(id, vec![beat]);
        self.handle.post(crate::supervisor::Msg::Heartbeat(msg));
    }

    /// Pids of the workers in `status`, by slot.
    pub(crate) fn pids(status: &ClusterStatus) -> Vec<(usize, u32)> {
        let mut pids: Vec<(usize, u32)> = status.workers.iter().map(|w| (w.slot, w.pid)).collect();
        pids.sort_unstable();
        pids
    }

    /// Shuts down gracefully and waits until the cluster has stopped.
    pub(crate) async fn stop(self) -> Arc<World> {
        self.handle.shutdown(ShutdownMode::Graceful).expect("running");
        tokio::time::timeout(WAIT, self.run).await.expect("stops").expect("run task");
        self.world
    }
}
