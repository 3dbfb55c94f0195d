//! Writes cluster events to the log, one line each.

use std::collections::HashMap;
use std::net::SocketAddr;

use cluster_core::{ClusterEvent, WorkerState};
use tokio::sync::broadcast::{Receiver, error::RecvError};

/// Logs every event until the cluster has stopped. Worker lines name the slot (`worker 2`), the
/// pid and the private address, so they can be matched with the `[w2]` output lines.
pub(crate) async fn log_events(
    mut events: Receiver<ClusterEvent>,
    workers: usize,
    strategy: &'static str,
) {
    let mut known: HashMap<u64, (u32, SocketAddr)> = HashMap::new();
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!("event log fell behind; {n} events not shown");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        match event {
            ClusterEvent::Listening { addr } => {
                tracing::info!("listening on http://{addr} ({workers} workers, {strategy})");
            }
            ClusterEvent::WorkerStarted { worker_id, slot, pid, addr } => {
                known.insert(worker_id, (pid, addr));
                tracing::debug!("worker {slot} starting: pid {pid} on {addr}");
            }
            ClusterEvent::WorkerState { worker_id, slot, to, .. } => {
                let (pid, addr) =
                    known.get(&worker_id).copied().unwrap_or((0, ([0, 0, 0, 0], 0).into()));
                match to {
                    WorkerState::Ready => {
                        tracing::info!("worker {slot} ready: pid {pid} on {addr}")
                    }
                    other => tracing::debug!("worker {slot} (pid {pid}) {other}"),
                }
            }
            ClusterEvent::WorkerExited { worker_id, slot, pid, code, signal, expected } => {
                known.remove(&worker_id);
                let how = match (code, signal) {
                    (Some(c), _) => format!("exit code {c}"),
                    (None, Some(s)) => format!("signal {s}"),
                    _ => "unknown status".to_owned(),
                };
                if expected {
                    tracing::info!("worker {slot} (pid {pid}) stopped ({how})");
                } else {
                    tracing::warn!("worker {slot} (pid {pid}) exited unexpectedly ({how})");
                }
            }
            ClusterEvent::WorkerFailedStart { slot, reason } => {
                tracing::warn!("worker {slot} failed to start: {reason}");
            }
            ClusterEvent::CrashLooping { slot, quick_exits, retry_in } => {
                tracing::warn!(
                    "worker {slot} is crash-looping ({quick_exits} quick exits in a row); next start in {:.1} s",
                    retry_in.as_secs_f64()
                );
            }
            ClusterEvent::ShutdownStarted { graceful: true } => {
                tracing::info!("shutting down: draining in-flight requests");
            }
            ClusterEvent::ShutdownStarted { graceful: false } => {
                tracing::warn!("stopping now: killing workers");
            }
            ClusterEvent::Recycling { slot, reason, .. } => {
                tracing::info!("worker {slot} recycling ({reason}): starting its replacement");
            }
            ClusterEvent::Recycled { slot, .. } => {
                tracing::info!("worker {slot} replaced; the old worker is draining");
            }
            ClusterEvent::RecycleFailed { slot, .. } => {
                tracing::warn!("worker {slot}: replacement failed; the old worker keeps serving");
            }
            ClusterEvent::Killed { slot, reason, .. } => {
                tracing::warn!("worker {slot} killed: {reason}");
            }
            ClusterEvent::Ejected { slot, reason, .. } => {
                tracing::warn!("worker {slot} out of rotation: {reason}");
            }
            ClusterEvent::Readmitted { slot, .. } => {
                tracing::info!("worker {slot} back in rotation");
            }
            ClusterEvent::Stopped => return,
            _ => {}
        }
    }
}
