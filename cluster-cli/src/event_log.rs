//! Writes cluster events to the log, one line each.

use std::collections::HashMap;

use cluster_core::config::Applies;
use cluster_core::{ClusterEvent, Endpoint, WorkerState};
use tokio::sync::broadcast::{Receiver, error::RecvError};

/// Logs every event until the cluster has stopped. Worker lines name the slot (`worker 2`), the
/// pid and the private address, so they can be matched with the `[w2]` output lines.
pub(crate) async fn log_events(
    mut events: Receiver<ClusterEvent>,
    workers: usize,
    strategy: &'static str,
) {
    let mut known: HashMap<u64, (u32, Endpoint)> = HashMap::new();
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
            ClusterEvent::WorkerStarted { worker_id, slot, pid, addr, .. } => {
                tracing::debug!("worker {slot} starting: pid {pid} on {addr}");
                known.insert(worker_id, (pid, addr));
            }
            ClusterEvent::WorkerState { worker_id, slot, to, .. } => {
                let (pid, addr) = match known.get(&worker_id) {
                    Some((pid, addr)) => (*pid, addr.to_string()),
                    None => (0, "?".to_owned()),
                };
                match to {
                    WorkerState::Ready => {
                        tracing::info!("worker {slot} ready: pid {pid} on {addr}")
                    }
                    other => tracing::debug!("worker {slot} (pid {pid}) {other}"),
                }
            }
            ClusterEvent::WorkerExited {
                worker_id,
                slot,
                pid,
                code,
                signal,
                expected,
                reason,
                ..
            } => {
                known.remove(&worker_id);
                let how = match (code, signal) {
                    (Some(c), _) => format!("exit code {c}"),
                    (None, Some(s)) => format!("signal {s}"),
                    _ => "unknown status".to_owned(),
                };
                let why = reason.map(|r| format!("; {r}")).unwrap_or_default();
                if expected {
                    tracing::info!("worker {slot} (pid {pid}) stopped ({how}{why})");
                } else {
                    tracing::warn!("worker {slot} (pid {pid}) exited unexpectedly ({how}{why})");
                }
            }
            ClusterEvent::Retiring { slot, pid, reason, .. } => {
                tracing::debug!("worker {slot} (pid {pid}) leaving rotation: {reason}");
            }
            ClusterEvent::Scaled { from, to, by, .. } => {
                tracing::info!("scaled from {from} to {to} workers ({by})");
            }
            ClusterEvent::Autoscale { direction, from, to, reason, .. } => {
                tracing::info!("autoscale {direction}: {from} -> {to} workers: {reason}");
            }
            ClusterEvent::OperationStarted { operation, kind, workers, generation, by, .. } => {
                tracing::info!(
                    "{kind} #{operation} started ({by}): {workers} workers to replace, generation {generation}"
                );
            }
            ClusterEvent::OperationProgress {
                operation,
                kind,
                done,
                total,
                slot,
                old_pid,
                new_pid,
                ..
            } => match old_pid {
                Some(old) => tracing::info!(
                    "{kind} #{operation}: {done} of {total}: worker {slot} pid {old} -> pid {new_pid}"
                ),
                None => tracing::info!(
                    "{kind} #{operation}: {done} of {total}: worker {slot} pid {new_pid} ready"
                ),
            },
            ClusterEvent::OperationFinished { operation, kind, replaced, took, .. } => {
                tracing::info!(
                    "{kind} #{operation} done: {replaced} workers replaced in {:.1} s",
                    took.as_secs_f64()
                );
            }
            ClusterEvent::OperationFailed { operation, kind, reason, rolled_back, .. } => {
                let rollback = match rolled_back {
                    0 => String::new(),
                    n => format!("; rolling back {n} replaced workers"),
                };
                tracing::error!("{kind} #{operation} failed: {reason}{rollback}");
            }
            ClusterEvent::ConfigReloaded { changes, .. } => {
                if changes.is_empty() {
                    tracing::info!("configuration reloaded: nothing changed");
                }
                for c in changes {
                    let when = match c.applies {
                        Applies::Now => "applied",
                        Applies::NextGeneration => "applies from the next rolling restart",
                        _ => {
                            "NOT applied: needs a restart of the primary; the running value is kept"
                        }
                    };
                    let line = format!(
                        "configuration reloaded: {} {} -> {} ({when})",
                        c.key, c.from, c.to
                    );
                    if c.applies == Applies::Now || c.applies == Applies::NextGeneration {
                        tracing::info!("{line}");
                    } else {
                        tracing::warn!("{line}");
                    }
                }
            }
            ClusterEvent::ConfigReloadFailed { error, .. } => {
                for line in error.lines() {
                    tracing::error!("configuration not reloaded: {line}");
                }
            }
            ClusterEvent::MemoryPressure { slot, rss_mb, limit_mb, notified, .. } => {
                let told = if notified { "told over IPC" } else { "no IPC channel to tell it" };
                tracing::warn!(
                    "worker {slot} over its memory limit: {rss_mb} MB of {limit_mb} MB ({told}); recycled if it stays over"
                );
            }
            ClusterEvent::LeakSuspected {
                slot,
                slope_mb_per_min,
                rss_mb,
                minutes_to_limit,
                ..
            } => {
                let eta = minutes_to_limit
                    .map(|m| format!("; maxMemoryUsage in about {m:.0} min"))
                    .unwrap_or_default();
                tracing::warn!(
                    "worker {slot}: memory grows steadily, {slope_mb_per_min:.1} MB/min (now {rss_mb} MB){eta}: a leak?"
                );
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
            ClusterEvent::UpgradeStarted { by } => {
                tracing::info!("hot upgrade ({by}): starting a new primary");
            }
            ClusterEvent::UpgradeFinished { new_pid, took } => {
                tracing::info!(
                    "hot upgrade: the new primary (pid {new_pid}) serves, ready in {:.1} s; this one drains and exits",
                    took.as_secs_f64()
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
            ClusterEvent::RateLimitStoreDown { store, fallback, reason } => {
                tracing::warn!("rate limit store {store} is down ({reason}); fallback: {fallback}");
            }
            ClusterEvent::RateLimitStoreUp { store, down_for } => {
                tracing::info!(
                    "rate limit store {store} is back after {:.1} s",
                    down_for.as_secs_f64()
                );
            }
            ClusterEvent::Stopped => return,
            _ => {}
        }
    }
}
