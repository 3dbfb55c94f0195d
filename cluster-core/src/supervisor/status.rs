//! The status snapshot, built from the worker and slot records.

use tokio::time::Instant;

use super::{Phase, Supervisor};
use crate::metrics::WindowRates;
use crate::status::{ClusterStatus, HealthSummary, ScalingStatus, WorkerStatus};

impl Supervisor {
    pub(super) fn status(&self) -> ClusterStatus {
        let now = Instant::now();
        let workers: Vec<WorkerStatus> = self
            .workers
            .values()
            .map(|w| (w, self.health.of(w.id), self.slots.get(w.slot)))
            .map(|(w, health, slot)| WorkerStatus {
                worker_id: w.id,
                slot: w.slot,
                pid: w.pid,
                generation: w.generation,
                status: w.state,
                rotation: w.rotation,
                leaving_reason: w.leave.as_ref().map(ToString::to_string),
                replaces: w.replacing.as_ref().map(|r| r.old),
                addr: w.endpoint.clone(),
                in_flight: w.backend.as_ref().map_or(0, |b| b.load().in_flight()),
                restarts: slot.map_or(0, |s| s.restarts),
                recycles: slot.map_or(0, |s| s.recycles),
                last_restart_reason: slot.and_then(|s| s.last_reason.clone()),
                ejected: w.rotation == super::Rotation::Ejected,
                rates: health.map(|h| h.rates).unwrap_or_default(),
                uptime_ms: now.saturating_duration_since(w.started).as_millis() as u64,
                metrics: w.backend.as_ref().map(|b| b.metrics().snapshot()).unwrap_or_default(),
                rss_bytes: health.and_then(|h| h.rss_bytes),
                memory_usage: health
                    .and_then(|h| h.rss_bytes)
                    .map(|b| b as f64 / (1024.0 * 1024.0)),
                cpu_percent: health.and_then(|h| h.cpu_percent),
                cpu_seconds: health.and_then(|h| h.cpu_seconds),
                heartbeat_status: w.heartbeat.status().map(str::to_owned),
                last_heartbeat_ms_ago: w.heartbeat.since_last(now).map(|d| d.as_millis() as u64),
            })
            .collect();
        let ready_workers = self.in_rotation();
        let health = HealthSummary::of(&workers, ready_workers);
        // The same workers' rates as in `workers` (a worker not sampled yet has none), with
        // the windows they were computed from, for the cluster's latency percentiles.
        let rates = WindowRates::total(
            self.workers
                .values()
                .filter_map(|w| self.health.of(w.id))
                .map(|h| (&h.rates, &h.window)),
        );
        ClusterStatus {
            rates,
            listen: self.listen,
            mode: self.spec.mode,
            strategy: if self.shared.is_some() { "kernel" } else { self.router.strategy() },
            desired_workers: self.target,
            ready_workers,
            generation: self.generations.current(),
            operation: self.operation_status(),
            counters: self.counters.snapshot(),
            scaling: ScalingStatus {
                min_workers: self.spec.scaling.min_workers,
                max_workers: self.spec.scaling.max_workers,
                auto_scale: self.autoscale.enabled(),
            },
            shutting_down: self.phase != Phase::Running,
            workers,
            crash_looping_slots: self.crash_looping_slots(),
            total_requests: health.total_requests,
            total_errors: health.errors.total,
            average_response_time_ms: (health.total_requests > 0)
                .then_some(health.average_response_time),
            health,
            access_log: self.access_log.as_ref().map(crate::access_log::AccessLog::counts),
        }
    }
}
