//! The health tick: sample every ready worker's process tree, judge it with the configured
//! policies, and act: eject, re-admit, recycle (through the one replacement path) or kill.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_health::{
    CpuTracker, HealthState, MaxRequestsPolicy, MemoryPolicy, OutlierPolicy, Policies, ProbePolicy,
    ProcfsSampler, RecycleReason, ResourceSample, ResourceSampler, SampleError, UnhealthyReason,
    Verdict, WorkerSnapshot,
};

use super::worker::Stop;
use super::{Msg, Phase, Supervisor, WorkerState, readiness};
use crate::cluster::HealthHooks;
use crate::config::ClusterSpec;
use crate::events::ClusterEvent;
use crate::metrics::{RateWindow, WindowRates};

/// Time constant of the smoothed CPU figure.
const CPU_SMOOTHING: Duration = Duration::from_secs(10);

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
    state: HealthState,
    sampler: Arc<dyn ResourceSampler>,
    workers: BTreeMap<u64, WorkerHealth>,
    sampling: bool,
    probe_path: Option<String>,
    probe_timeout: Duration,
    metrics_window: Duration,
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
    window: RateWindow,
    /// Rates over the sliding window, at the last tick.
    pub(super) rates: WindowRates,
    pub(super) rss_bytes: Option<u64>,
    pub(super) cpu_percent: Option<f64>,
    pub(super) ejected: bool,
    /// Warned once that it was kept in rotation as the last worker.
    kept_as_last: bool,
    probe_failures: u32,
    last_probe_ok: Instant,
}

impl Health {
    /// The policies the configuration asks for, plus the embedder's; sampling /proc unless
    /// the embedder gave a sampler.
    pub(super) fn from_spec(spec: &ClusterSpec, hooks: HealthHooks) -> Self {
        let h = &spec.health;
        let mut policies = Policies::new();
        policies.memory = Some(MemoryPolicy {
            soft_limit_bytes: spec.max_memory_bytes,
            hard_limit_bytes: h.hard_memory_bytes,
            recycle_on_soft_limit: spec.restart_on_high_memory,
            consecutive_samples: h.memory_samples,
            min_age: h.memory_min_age,
        });
        policies.max_requests =
            spec.performance.max_requests_per_worker.map(MaxRequestsPolicy::new);
        policies.probe = Some(ProbePolicy {
            failure_threshold: h.probe_failures,
            unresponsive_timeout: spec.unresponsive_timeout,
        });
        policies.watchdog = Some(cluster_health::WatchdogPolicy { timeout: h.heartbeat_timeout });
        policies.outlier = h.outlier_detection.then(|| OutlierPolicy {
            min_excess: h.outlier_error_rate / 100.0,
            min_error_rate: h.outlier_error_rate / 100.0,
            min_requests: h.outlier_min_requests,
            base_ejection: h.ejection_time,
            max_ejection: h.ejection_time.saturating_mul(10),
            probation: h.ejection_time.saturating_mul(2),
            max_ejected_share: h.max_ejected_percent / 100.0,
            ..OutlierPolicy::default()
        });
        policies.custom = hooks.policies;
        Self {
            policies,
            state: HealthState::default(),
            sampler: hooks.sampler.unwrap_or_else(|| Arc::new(ProcfsSampler::new())),
            workers: BTreeMap::new(),
            sampling: false,
            probe_path: spec.health_check_path.clone(),
            probe_timeout: h.probe_timeout,
            metrics_window: h.metrics_window,
        }
    }

    /// The figures of worker `id`, if it has been sampled.
    pub(super) fn of(&self, id: u64) -> Option<&WorkerHealth> {
        self.workers.get(&id)
    }
}

impl Supervisor {
    /// Starts a sample of every ready worker on the blocking pool (file I/O on /proc) and a
    /// liveness probe of each (`GET` on the health path, or any answer to `GET /`); the
    /// results come back together as [`Msg::Samples`].
    pub(super) fn health_tick(&mut self) {
        if self.health.sampling || self.phase != Phase::Running {
            return;
        }
        let targets: Vec<(u64, u32)> = self
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Ready)
            .map(|w| (w.id, w.pid))
            .collect();
        if targets.is_empty() {
            return;
        }
        self.health.sampling = true;
        let sampler = Arc::clone(&self.health.sampler);
        let tx = self.tx.clone();
        let path = self.health.probe_path.clone();
        let limit = self.health.probe_timeout;
        let probes: Vec<_> = targets
            .iter()
            .filter_map(|(id, _)| self.workers.get(id).map(|w| w.endpoint))
            .map(|endpoint| {
                let path = path.clone();
                tokio::spawn(
                    async move { readiness::alive(endpoint, path.as_deref(), limit).await },
                )
            })
            .collect();
        tokio::spawn(async move {
            let pids: Vec<u32> = targets.iter().map(|t| t.1).collect();
            let samples = tokio::task::spawn_blocking(move || sampler.sample_many(&pids)).await;
            let samples = samples.unwrap_or_default();
            let mut measured = Vec::with_capacity(targets.len());
            for (((id, _), sample), probe) in targets.into_iter().zip(samples).zip(probes) {
                let alive = probe.await.unwrap_or(false);
                measured.push(Measured { id, sample, alive });
            }
            let _ = tx.send(Msg::Samples { measured, at: Instant::now() });
        });
    }

    /// Judges every sampled worker and acts on the verdicts.
    pub(super) fn on_samples(&mut self, measured: Vec<Measured>, at: Instant) {
        self.health.sampling = false;
        if self.phase != Phase::Running {
            return;
        }
        let mut snapshots = Vec::new();
        for Measured { id, sample, alive } in measured {
            let Some(w) = self.workers.get(&id).filter(|w| w.state == WorkerState::Ready) else {
                continue;
            };
            let metrics = w.backend.as_ref().map(|b| b.metrics().snapshot()).unwrap_or_default();
            let window = self.health.metrics_window;
            let h = self.health.workers.entry(id).or_insert_with(|| WorkerHealth {
                cpu: CpuTracker::new(CPU_SMOOTHING),
                window: RateWindow::new(window),
                rates: WindowRates::default(),
                rss_bytes: None,
                cpu_percent: None,
                ejected: false,
                kept_as_last: false,
                probe_failures: 0,
                last_probe_ok: at,
            });
            if alive {
                h.probe_failures = 0;
                h.last_probe_ok = at;
            } else {
                h.probe_failures += 1;
            }
            if let Ok(s) = &sample {
                h.rss_bytes = Some(s.rss_bytes);
                h.cpu_percent = h.cpu.update(s.cpu_time, at).map(|r| r.smoothed).or(h.cpu_percent);
                if let (Some(pct), Some(b)) = (h.cpu_percent, &w.backend) {
                    // Feeds the cpu-based strategy (in cores: 1.0 is one core).
                    b.load().set_cpu_share(pct / 100.0);
                }
            }
            h.rates = h.window.push(at, &metrics);
            snapshots.push(WorkerSnapshot {
                worker_id: id,
                age: w.ready_at.map_or(Duration::ZERO, |t| t.elapsed()),
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
                out_of_rotation: h.ejected && !self.health.state.outlier().is_ejected(id, at),
            });
        }
        let live = &self.workers;
        self.health.workers.retain(|id, _| live.contains_key(id));
        let verdicts = self.health.policies.evaluate_all(&snapshots, &mut self.health.state, at);
        for (snap, verdict) in snapshots.iter().zip(verdicts) {
            tracing::trace!(target: "cluster::health", ?snap, ?verdict, "health verdict");
            self.act(snap.worker_id, verdict);
        }
        self.readmit_if_none_in_rotation();
    }

    fn act(&mut self, id: u64, verdict: Verdict) {
        let Some(slot) = self.workers.get(&id).map(|w| w.slot) else { return };
        let ejected = self.health.workers.get(&id).is_some_and(|h| h.ejected);
        match verdict {
            Verdict::Recycle(reason) => {
                // A worker that stopped answering, or keeps failing, leaves rotation now, not
                // when its replacement is ready.
                match reason {
                    RecycleReason::Unresponsive { .. } => self.eject(id, &reason, true),
                    RecycleReason::ErrorRate { .. } => self.eject(id, &reason, false),
                    _ => {}
                }
                self.request_recycle(id, reason.to_string());
            }
            Verdict::Kill(reason) => {
                let reason = reason.to_string();
                self.slots[slot].last_reason = Some(reason.clone());
                self.emit(ClusterEvent::Killed { worker_id: id, slot, reason });
                self.router.remove(id);
                let _ = self.workers[&id].stops.send(Stop::Kill);
            }
            Verdict::Unhealthy(reason) => {
                let unresponsive = matches!(reason, UnhealthyReason::ProbeFailing { .. });
                self.eject(id, &reason, unresponsive);
            }
            v if ejected && v.routable() => self.readmit(id),
            _ => {}
        }
    }

    /// Takes worker `id` out of rotation (never the last worker in rotation); when it is
    /// `unresponsive`, also cuts its connections so that what waits on it moves elsewhere.
    fn eject(&mut self, id: u64, reason: &dyn std::fmt::Display, unresponsive: bool) {
        let Some(w) = self.workers.get(&id) else { return };
        let (slot, backend) = (w.slot, w.backend.clone());
        let Some(h) = self.health.workers.get_mut(&id) else { return };
        if h.ejected {
            if let (true, Some(b)) = (unresponsive, &backend) {
                // Ejected for its error rate, and now it does not answer either.
                b.abandon();
            }
            return;
        }
        if self.router.snapshot().backends().len() <= 1 {
            // Ejecting the last worker in rotation would turn a sick worker into an outage
            // (503 for everyone); keep it and let the recycle replace it.
            if !h.kept_as_last {
                h.kept_as_last = true;
                tracing::warn!(worker = id, %reason, "not ejecting the last worker in rotation");
            }
            return;
        }
        h.ejected = true;
        h.kept_as_last = false;
        self.router.remove(id);
        if let (true, Some(b)) = (unresponsive, &backend) {
            b.abandon();
        }
        self.emit(ClusterEvent::Ejected { worker_id: id, slot, reason: reason.to_string() });
    }

    /// Puts an ejected worker back in rotation.
    fn readmit(&mut self, id: u64) {
        let Some(w) = self.workers.get(&id) else { return };
        let (slot, backend) = (w.slot, w.backend.clone());
        if let Some(b) = backend {
            b.resume();
            self.router.add(b);
        }
        if let Some(h) = self.health.workers.get_mut(&id) {
            h.ejected = false;
            // Judge it on what it does from now on, not on the errors that got it ejected
            // (the window may be longer than the ejection).
            h.window = RateWindow::new(self.health.metrics_window);
            h.rates = WindowRates::default();
        }
        self.emit(ClusterEvent::Readmitted { worker_id: id, slot });
    }

    /// When no worker is left in rotation (the last one exited or was killed) but ejected
    /// workers are still running, re-admits them: a sick worker answers some requests, an
    /// empty table answers none (Envoy's panic threshold).
    pub(super) fn readmit_if_none_in_rotation(&mut self) {
        if self.phase != Phase::Running || !self.router.snapshot().backends().is_empty() {
            return;
        }
        let ejected: Vec<u64> = self
            .health
            .workers
            .iter()
            .filter(|(id, h)| {
                h.ejected && self.workers.get(id).is_some_and(|w| w.state == WorkerState::Ready)
            })
            .map(|(id, _)| *id)
            .collect();
        if !ejected.is_empty() {
            tracing::warn!(workers = ?ejected, "no worker left in rotation: re-admitting ejected workers");
        }
        for id in ejected {
            self.readmit(id);
        }
    }
}
