//! The health tick: sample every ready worker's process tree, judge it with the configured
//! policies, and act: eject, re-admit, recycle (through the one replacement path), retire an
//! unresponsive worker, or kill. The same samples feed memory pressure, leak warnings and
//! autoscaling.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cluster_health::{
    CpuTracker, HealthState, LeakDetector, LeakState, MaxRequestsPolicy, MemoryPolicy,
    OutlierPolicy, Policies, ProbePolicy, ProcfsSampler, RecycleReason, ResourceSample,
    ResourceSampler, SampleError, UnhealthyReason, Verdict, WorkerSnapshot,
};
use tokio::time::Instant;

use super::record::{LeaveReason, Rotation};
use super::{Msg, Phase, Supervisor};
use crate::cluster::HealthHooks;
use crate::config::ClusterSpec;
use crate::events::ClusterEvent;
use crate::metrics::{RateWindow, WindowRates};

/// Longest time constant of the smoothed CPU figure.
const MAX_CPU_SMOOTHING: Duration = Duration::from_secs(10);

/// Shortest time constant of the smoothed CPU figure.
const MIN_CPU_SMOOTHING: Duration = Duration::from_secs(1);

/// What one tick measured of one worker: its process tree, and whether it answered a probe.
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) id: u64,
    pub(crate) sample: Result<ResourceSample, SampleError>,
    pub(crate) alive: bool,
}

/// What the health tick remembers between ticks.
pub(super) struct Health {
    policies: Policies,
    /// The embedder's policies, kept across configuration reloads.
    state: HealthState,
    sampler: Arc<dyn ResourceSampler>,
    workers: BTreeMap<u64, WorkerHealth>,
    sampling: bool,
    metrics_window: Duration,
    /// Time constant of the smoothed CPU figure: two health intervals, within 1 to 10 s (10 s
    /// at the default 5 s interval), so that autoscaling reacts within a few ticks.
    cpu_smoothing: Duration,
    leak: Option<LeakDetector>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").field("workers", &self.workers.len()).finish_non_exhaustive()
    }
}

/// One worker's health figures.
#[derive(Debug)]
pub(super) struct WorkerHealth {
    cpu: CpuTracker,
    pub(super) window: RateWindow,
    /// Rates over the sliding window, at the last tick.
    pub(super) rates: WindowRates,
    pub(super) rss_bytes: Option<u64>,
    pub(super) cpu_percent: Option<f64>,
    /// Cumulative CPU time of its process tree at the last sample, seconds.
    pub(super) cpu_seconds: Option<f64>,
    /// Warned once that it was kept in rotation as the last worker.
    kept_as_last: bool,
    probe_failures: u32,
    last_probe_ok: Instant,
    /// Over `maxMemoryUsage` at the last sample (memory pressure was signalled).
    pub(super) over_memory_limit: bool,
    pub(super) leak: LeakState,
}

impl Health {
    /// The policies the configuration asks for, plus the embedder's; sampling /proc unless
    /// the embedder gave a sampler.
    pub(super) fn from_spec(spec: &ClusterSpec, hooks: HealthHooks) -> Self {
        let mut policies = Policies::new();
        policies.custom = hooks.policies;
        let mut health = Self {
            policies,
            state: HealthState::default(),
            sampler: hooks.sampler.unwrap_or_else(|| Arc::new(ProcfsSampler::new())),
            workers: BTreeMap::new(),
            sampling: false,
            metrics_window: spec.health.metrics_window,
            cpu_smoothing: MAX_CPU_SMOOTHING,
            leak: None,
        };
        health.configure(spec);
        health
    }

    /// Sets the configured policies from `spec` (at start and on a configuration reload),
    /// keeping the embedder's policies and every worker's state.
    pub(super) fn configure(&mut self, spec: &ClusterSpec) {
        let h = &spec.health;
        let p = &mut self.policies;
        p.memory = Some(MemoryPolicy {
            soft_limit_bytes: spec.max_memory_bytes,
            hard_limit_bytes: h.hard_memory_bytes,
            recycle_on_soft_limit: spec.restart_on_high_memory,
            consecutive_samples: h.memory_samples,
            min_age: h.memory_min_age,
        });
        p.max_requests = spec.performance.max_requests_per_worker.map(MaxRequestsPolicy::new);
        p.probe = Some(ProbePolicy {
            failure_threshold: h.probe_failures,
            unresponsive_timeout: spec.unresponsive_timeout,
        });
        p.watchdog = Some(cluster_health::WatchdogPolicy { timeout: h.heartbeat_timeout });
        p.outlier = h.outlier_detection.then(|| OutlierPolicy {
            min_excess: h.outlier_error_rate / 100.0,
            min_error_rate: h.outlier_error_rate / 100.0,
            min_requests: h.outlier_min_requests,
            base_ejection: h.ejection_time,
            max_ejection: h.ejection_time.saturating_mul(10),
            probation: h.ejection_time.saturating_mul(2),
            max_ejected_share: h.max_ejected_percent / 100.0,
            ..OutlierPolicy::default()
        });
        self.metrics_window = h.metrics_window;
        self.cpu_smoothing =
            (spec.health_check_interval * 2).clamp(MIN_CPU_SMOOTHING, MAX_CPU_SMOOTHING);
        self.leak = h.leak_detection.then(|| LeakDetector {
            window: h.leak_window,
            min_slope_mb_per_min: h.leak_min_slope,
            ..LeakDetector::default()
        });
    }

    /// The figures of worker `id`, if it has been sampled.
    pub(super) fn of(&self, id: u64) -> Option<&WorkerHealth> {
        self.workers.get(&id)
    }

    /// The figures of worker `id`, to change.
    pub(super) fn worker_mut(&mut self, id: u64) -> Option<&mut WorkerHealth> {
        self.workers.get_mut(&id)
    }

    /// The leak detector, when leak detection is on.
    pub(super) fn leak_detector(&self) -> Option<LeakDetector> {
        self.leak.clone()
    }

    /// Whether worker `id` answered its last liveness probe (or has not been probed yet).
    pub(super) fn answers(&self, id: u64) -> bool {
        self.workers.get(&id).is_none_or(|h| h.probe_failures == 0)
    }

    /// The sliding window of the rates.
    pub(super) fn metrics_window(&self) -> Duration {
        self.metrics_window
    }

    /// Forgets an exited worker.
    pub(super) fn forget(&mut self, id: u64) {
        self.workers.remove(&id);
    }

    /// Worker `id` was ejected: the next "kept as the last worker" warning may be logged.
    pub(super) fn ejected(&mut self, id: u64) {
        if let Some(h) = self.workers.get_mut(&id) {
            h.kept_as_last = false;
        }
    }

    /// Worker `id` was kept in rotation as the last one; returns whether this is the first
    /// time in a row (to warn once).
    pub(super) fn keep_as_last(&mut self, id: u64) -> bool {
        self.workers.get_mut(&id).is_some_and(|h| !std::mem::replace(&mut h.kept_as_last, true))
    }

    /// The smoothed CPU and the RSS of the ready workers that have both, for autoscaling.
    pub(super) fn figures<'a>(
        &'a self,
        ids: impl Iterator<Item = u64> + 'a,
    ) -> impl Iterator<Item = (f64, u64)> + 'a {
        ids.filter_map(|id| self.workers.get(&id))
            .filter_map(|h| Some((h.cpu_percent?, h.rss_bytes?)))
    }
}

impl Supervisor {
    /// Starts a sample of every ready worker on the blocking pool (file I/O on /proc) and a
    /// liveness check of each; the results come back together as [`Msg::Samples`].
    pub(super) fn health_tick(&mut self) {
        if self.health.sampling || self.phase != Phase::Running {
            return;
        }
        let targets: Vec<(u64, u32, crate::Endpoint)> = self
            .workers
            .values()
            .filter(|w| w.serving())
            .map(|w| (w.id, w.pid, w.endpoint.clone()))
            .collect();
        if targets.is_empty() {
            return;
        }
        self.health.sampling = true;
        let sampler = Arc::clone(&self.health.sampler);
        let tx = self.tx.clone();
        // Shared-socket mode: a probe of the front port reaches whichever worker the kernel
        // picks, so liveness rests on heartbeats and resources alone.
        let probe = self.shared.is_none();
        let probes: Vec<_> = targets
            .iter()
            .map(|(_, _, endpoint)| {
                let checks = Arc::clone(&self.checks);
                let endpoint = endpoint.clone();
                tokio::spawn(async move { !probe || checks.alive(&endpoint).await })
            })
            .collect();
        tokio::spawn(async move {
            let pids: Vec<u32> = targets.iter().map(|t| t.1).collect();
            let started = std::time::Instant::now();
            let samples = tokio::task::spawn_blocking(move || sampler.sample_many(&pids)).await;
            let samples = samples.unwrap_or_default();
            let sampled_in = started.elapsed();
            let mut measured = Vec::with_capacity(targets.len());
            for (((id, _, _), sample), probe) in targets.into_iter().zip(samples).zip(probes) {
                let alive = probe.await.unwrap_or(false);
                measured.push(Measured { id, sample, alive });
            }
            tracing::debug!(
                target: "cluster::health",
                workers = measured.len(),
                sample_ms = sampled_in.as_secs_f64() * 1e3,
                probes_ms = started.elapsed().as_secs_f64() * 1e3,
                "health tick sampled"
            );
            let _ = tx.send(Msg::Samples { measured, at: Instant::now() });
        });
    }

    /// Judges every sampled worker and acts on the verdicts.
    pub(super) fn on_samples(&mut self, measured: Vec<Measured>, at: Instant) {
        self.health.sampling = false;
        if self.phase != Phase::Running {
            return;
        }
        let started = std::time::Instant::now();
        let workers = measured.len();
        self.judge(measured, at);
        tracing::debug!(
            target: "cluster::health",
            workers,
            judge_ms = started.elapsed().as_secs_f64() * 1e3,
            "health tick judged"
        );
    }

    /// The synchronous part of a health tick: update each worker's figures, evaluate the
    /// policies and act on the verdicts.
    fn judge(&mut self, measured: Vec<Measured>, at: Instant) {
        let std_at = at.into_std();
        let mut snapshots = Vec::new();
        for Measured { id, sample, alive } in measured {
            let Some(w) = self.workers.get(&id).filter(|w| w.serving()) else { continue };
            let (metrics, latencies) = w
                .backend
                .as_ref()
                .map(|b| b.metrics().snapshot_and_latencies())
                .unwrap_or_default();
            let (window, smoothing) = (self.health.metrics_window, self.health.cpu_smoothing);
            let h = self.health.workers.entry(id).or_insert_with(|| WorkerHealth {
                cpu: CpuTracker::new(smoothing),
                window: RateWindow::new(window),
                rates: WindowRates::default(),
                rss_bytes: None,
                cpu_percent: None,
                cpu_seconds: None,
                kept_as_last: false,
                probe_failures: 0,
                last_probe_ok: at,
                over_memory_limit: false,
                leak: LeakState::default(),
            });
            if alive {
                h.probe_failures = 0;
                h.last_probe_ok = at;
            } else {
                h.probe_failures += 1;
            }
            if let Ok(s) = &sample {
                h.rss_bytes = Some(s.rss_bytes);
                h.cpu_seconds = Some(s.cpu_time.as_secs_f64());
                h.cpu_percent =
                    h.cpu.update(s.cpu_time, std_at).map(|r| r.smoothed).or(h.cpu_percent);
                if let (Some(pct), Some(b)) = (h.cpu_percent, &w.backend) {
                    // Feeds the cpu-based strategy (in cores: 1.0 is one core).
                    b.load().set_cpu_share(pct / 100.0);
                }
            }
            h.rates = h.window.push(at, &metrics, latencies);
            snapshots.push(WorkerSnapshot {
                worker_id: id,
                age: w.ready_at.map_or(Duration::ZERO, |t| at.saturating_duration_since(t)),
                rss_bytes: h.rss_bytes,
                cpu_percent: h.cpu_percent,
                requests_served: metrics.requests,
                window_requests: h.rates.requests,
                error_rate: h.rates.error_rate,
                consecutive_probe_failures: h.probe_failures,
                since_last_probe_ok: Some(at.saturating_duration_since(h.last_probe_ok)),
                since_last_heartbeat: w.heartbeat.since_last(at),
                // Ejected for its error rate the outlier policy knows itself; out for another
                // reason (failing probes) it counts against the cap.
                out_of_rotation: w.rotation == Rotation::Ejected
                    && !self.health.state.outlier().is_ejected(id, std_at),
            });
        }
        let verdicts =
            self.health.policies.evaluate_all(&snapshots, &mut self.health.state, std_at);
        for (snap, verdict) in snapshots.iter().zip(verdicts) {
            tracing::trace!(target: "cluster::health", ?snap, ?verdict, "health verdict");
            self.watch_memory(snap.worker_id, at);
            self.act(snap.worker_id, verdict);
        }
        self.readmit_if_none_in_rotation();
        self.autoscale_tick(at);
    }

    /// Replaces worker `id`, judged unresponsive (`reason`); it leaves rotation now (unless it
    /// is the last one in rotation, which stays until its replacement is ready). One that still
    /// answers its probe (only its heartbeats stopped, or a policy of the embedder's says so)
    /// finishes its requests in flight and is recycled, replacement first. One that does not
    /// answer has nothing to drain: its connections are cut, and it is retired at once
    /// (SIGTERM, SIGKILL after `health.unresponsiveGrace`) while its slot starts a new worker.
    pub(super) fn replace_unresponsive(&mut self, id: u64, reason: String) {
        let Some(slot) = self.workers.get(&id).filter(|w| w.serving()).map(|w| w.slot) else {
            return;
        };
        if self.health.answers(id) {
            self.eject(id, &reason, false);
            let _ = self.request_recycle(id, reason);
            return;
        }
        if !self.eject(id, &reason, true) {
            let _ = self.request_recycle(id, reason);
            return;
        }
        self.emit(ClusterEvent::Recycling { worker_id: id, slot, reason: reason.clone() });
        self.counters.recycling(&reason);
        let s = &mut self.slots[slot];
        s.recycles += 1;
        s.last_reason = Some(reason.clone());
        self.retire(id, LeaveReason::Unresponsive(reason));
    }

    fn act(&mut self, id: u64, verdict: Verdict) {
        let Some(w) = self.workers.get(&id) else { return };
        let (slot, ejected) = (w.slot, w.rotation == Rotation::Ejected);
        match verdict {
            Verdict::Recycle(reason @ RecycleReason::Unresponsive { .. }) => {
                self.replace_unresponsive(id, reason.to_string());
            }
            Verdict::Recycle(reason) => {
                // A worker that keeps failing leaves rotation now, not when its replacement
                // is ready.
                if matches!(reason, RecycleReason::ErrorRate { .. }) {
                    self.eject(id, &reason, false);
                }
                if !self.recycle_backing_off(id) {
                    let _ = self.request_recycle(id, reason.to_string());
                }
            }
            Verdict::Kill(reason) => {
                let reason = reason.to_string();
                self.emit(ClusterEvent::Killed { worker_id: id, slot, reason: reason.clone() });
                self.retire(id, LeaveReason::Killed(reason));
            }
            Verdict::Unhealthy(reason) => {
                let unresponsive = matches!(reason, UnhealthyReason::ProbeFailing { .. });
                self.eject(id, &reason, unresponsive);
            }
            v if ejected && v.routable() => self.readmit(id),
            _ => {}
        }
    }
}
