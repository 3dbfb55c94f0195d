//! Live configuration: a reloaded file (SIGUSR2, or
//! [`ClusterHandle::apply_config`](crate::ClusterHandle::apply_config)) is applied as far as
//! a running cluster can take it.
//!
//! At once: the worker count (only when the file's value changed, so that a count changed at
//! run time survives a reload of an unrelated key), the strategy, the health thresholds, the
//! scaling settings and timeouts. For the next generation: the worker command, arguments,
//! directory and environment, and how workers are confined (`user`, `group`, `cpuAffinity`,
//! `limits`), and `upstream`, which reach the workers through a rolling restart (and roll back with it). Kept until the primary restarts: the front address and the proxy's settings.
//! Every change is published with when it applies.

use std::sync::Arc;

use super::{HttpChecks, SocketDir, Supervisor};
use crate::cluster::configured_balancer;
use crate::config::{self, Applies, ClusterSpec, Upstream};
use crate::control::{ConfigReport, ControlError};
use crate::events::ClusterEvent;
use crate::spawn::WorkerHardening;

/// What the control plane relies on in a spec that did not come from `config::load` (an
/// embedder's own): a bad one is refused instead of stopping the cluster.
pub(crate) fn check(spec: &ClusterSpec) -> Result<(), String> {
    let s = &spec.scaling;
    if s.min_workers == 0 || s.min_workers > s.max_workers {
        return Err(format!(
            "scaling.minWorkers ({}) must be at least 1 and at most scaling.maxWorkers ({})",
            s.min_workers, s.max_workers
        ));
    }
    if spec.health_check_interval.is_zero() {
        return Err("healthCheckInterval must be greater than 0".into());
    }
    Ok(())
}

/// The keys that say what a worker runs.
const COMMAND_KEYS: [&str; 4] = ["command", "args", "cwd", "env"];

/// The keys that say how a worker is confined.
const HARDENING_KEYS: [&str; 6] =
    ["user", "group", "cpuAffinity", "limits.nofile", "limits.core", "limits.memoryMax"];

impl Supervisor {
    /// Applies `new` as far as it can be applied live.
    ///
    /// # Errors
    ///
    /// Shutting down.
    pub(super) fn apply_config(&mut self, new: ClusterSpec) -> Result<ConfigReport, ControlError> {
        self.refuse_if_stopping()?;
        check(&new).map_err(|message| ControlError::Config { message })?;
        let old = Arc::clone(&self.spec);
        let mut changes = config::changes(&old, &new);
        let mut live = config::live_spec(&old, &new);
        let changed = |key: &str| changes.iter().any(|c| c.key == key);
        let balancer_changed =
            changed("loadBalancingStrategy") || changed("performance.slowStartWindow");
        let interval_changed = changed("healthCheckInterval");
        let workers_changed = changed("workers");
        let next_generation = changes.iter().any(|c| c.applies == Applies::NextGeneration);
        let command_changed = changes.iter().any(|c| COMMAND_KEYS.contains(&c.key));
        let hardening_changed = changes.iter().any(|c| HARDENING_KEYS.contains(&c.key));
        // Prepared before anything changes, so that a refusal (not root) changes nothing.
        let hardening = if hardening_changed {
            let prepared = WorkerHardening::prepare(&live.hardening)
                .map_err(|e| ControlError::Config { message: e.to_string() })?;
            for notice in prepared.notices() {
                tracing::warn!("{notice}");
            }
            Some(Arc::new(prepared))
        } else {
            None
        };
        // The workers' socket directory, made (or given to the new account) before anything
        // changes, so that a failure changes nothing.
        match &self.socket_dir {
            None if live.upstream == Upstream::Unix => {
                let dir = SocketDir::create(&live.hardening)
                    .map_err(|e| ControlError::Config { message: e.to_string() })?;
                self.socket_dir = Some(dir);
            }
            Some(dir) if hardening_changed => dir
                .give_to(&live.hardening)
                .map_err(|e| ControlError::Config { message: e.to_string() })?,
            _ => {}
        }
        if next_generation {
            let mut recipe = self.generations.upcoming();
            recipe.node_ipc = live.health.node_ipc;
            recipe.upstream = live.upstream;
            if command_changed {
                match recipe.spawner.with_command(&live.command) {
                    Some(spawner) => recipe.spawner = spawner,
                    None => {
                        // The spawner does not run a configured command (an embedder's own).
                        live.command = old.command.clone();
                        for c in changes.iter_mut().filter(|c| COMMAND_KEYS.contains(&c.key)) {
                            c.applies = Applies::Restart;
                        }
                    }
                }
            }
            if let Some(hardening) = hardening {
                match recipe.spawner.with_hardening(hardening) {
                    Some(spawner) => recipe.spawner = spawner,
                    None => {
                        // The spawner cannot confine its workers (an embedder's own).
                        live.hardening = old.hardening.clone();
                        for c in changes.iter_mut().filter(|c| HARDENING_KEYS.contains(&c.key)) {
                            c.applies = Applies::Restart;
                        }
                    }
                }
            }
            self.generations.prepare_next(recipe);
        }
        if balancer_changed && self.custom_balancer {
            // The embedder's balancer stays, and so do the values it was built without.
            live.strategy = old.strategy;
            live.performance.slow_start_window = old.performance.slow_start_window;
            let balancer_keys = ["loadBalancingStrategy", "performance.slowStartWindow"];
            for c in changes.iter_mut().filter(|c| balancer_keys.contains(&c.key)) {
                c.applies = Applies::Restart;
            }
        }
        let spec = Arc::new(live);
        self.spec = Arc::clone(&spec);
        if balancer_changed && !self.custom_balancer {
            self.router.set_balancer(configured_balancer(&spec));
        }
        self.health.configure(&spec);
        self.autoscale.configure(&spec);
        if self.checks_from_spec {
            self.checks = Arc::new(HttpChecks::from_spec(&spec));
        }
        if interval_changed {
            self.start_ticker();
        }
        let (min, max) = (spec.scaling.min_workers, spec.scaling.max_workers);
        if workers_changed {
            self.set_target(spec.workers.clamp(min, max), "configuration reload");
        } else if !(min..=max).contains(&self.target) {
            self.set_target(self.target.clamp(min, max), "configuration reload (scaling bounds)");
        }
        self.emit(ClusterEvent::ConfigReloaded { changes: changes.clone() });
        Ok(ConfigReport { changes })
    }
}
