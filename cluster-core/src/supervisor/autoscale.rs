//! Autoscaling: on every health tick, the workers' average CPU and memory go to the
//! [`AutoscalePolicy`] (in `cluster-health`, pure), and its decisions become scale changes
//! through the same path as an operator's, each published with its reason and figures.

use cluster_health::{AutoscaleDecision, AutoscalePolicy, AutoscaleState, LoadSample};
use tokio::time::Instant;

use super::Supervisor;
use crate::config::ClusterSpec;
use crate::events::ClusterEvent;

/// The autoscaler's settings and memory.
#[derive(Debug)]
pub(super) struct Autoscale {
    policy: Option<AutoscalePolicy>,
    state: AutoscaleState,
}

impl Autoscale {
    /// The autoscaler `spec` asks for (none unless `scaling.autoScale`).
    pub(super) fn from_spec(spec: &ClusterSpec) -> Self {
        let mut autoscale = Self { policy: None, state: AutoscaleState::default() };
        autoscale.configure(spec);
        autoscale
    }

    /// Applies `spec` (at start and on a configuration reload); the timers carry over.
    pub(super) fn configure(&mut self, spec: &ClusterSpec) {
        let s = &spec.scaling;
        self.policy = s.auto_scale.then(|| AutoscalePolicy {
            min_workers: s.min_workers,
            max_workers: s.max_workers,
            cpu_threshold: s.cpu_threshold,
            memory_threshold: s.memory_threshold,
            memory_limit_bytes: spec.max_memory_bytes,
            scale_up_after: s.scale_up_after,
            scale_down_after: s.scale_down_after,
            cooldown: s.cooldown,
            ..AutoscalePolicy::default()
        });
    }

    /// Records a change of the worker count by anyone: the cooldown starts.
    pub(super) fn note_change(&mut self, at: Instant) {
        self.state.note_change(at.into_std());
    }

    /// Whether autoscaling is on.
    pub(super) fn enabled(&self) -> bool {
        self.policy.is_some()
    }
}

impl Supervisor {
    /// Feeds the latest figures to the autoscaler and acts on its decision.
    pub(super) fn autoscale_tick(&mut self, at: Instant) {
        let Some(policy) = self.autoscale.policy.clone() else { return };
        let serving: Vec<u64> = self
            .workers
            .values()
            .filter(|w| w.serving() && w.slot < self.target)
            .map(|w| w.id)
            .collect();
        let figures: Vec<(f64, u64)> = self.health.figures(serving.iter().copied()).collect();
        let n = figures.len();
        let sample = LoadSample {
            workers: self.target,
            ready: n,
            avg_cpu_percent: (n > 0).then(|| figures.iter().map(|f| f.0).sum::<f64>() / n as f64),
            avg_rss_bytes: (n > 0).then(|| figures.iter().map(|f| f.1).sum::<u64>() / n as u64),
        };
        let decision = policy.decide(&mut self.autoscale.state, &sample, at.into_std());
        let (from, to, reason, direction) = match decision {
            AutoscaleDecision::ScaleUp { from, to, reason } => (from, to, reason, "up"),
            AutoscaleDecision::ScaleDown { from, to, reason } => (from, to, reason, "down"),
            _ => return,
        };
        self.counters.autoscaled(direction == "up");
        self.emit(ClusterEvent::Autoscale {
            direction: direction.to_owned(),
            from,
            to,
            reason: reason.to_string(),
            avg_cpu_percent: reason.avg_cpu_percent,
            memory_percent: reason.memory_percent,
        });
        self.set_target(to, &format!("autoscale: {reason}"));
    }
}
