//! Validation of the `health` section.

use std::time::Duration;

use super::HealthSpec;
use super::raw::RawConfig;
use super::scalar::{IntOrText, MemorySize};
use super::validate::{MAX_LIFECYCLE_MS, MAX_WORKERS, Validator};

/// Default probe timeout bounds: the health check interval within these (a loaded machine can
/// take a few hundred milliseconds to answer on loopback; a probe longer than 2 s says enough).
const MIN_PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest `health.leakMinSlope`, in MB per minute (about 16 GB per second: no real leak).
const MAX_LEAK_SLOPE: f64 = 1_000_000.0;

impl Validator<'_> {
    /// The `health` section; reads `maxMemoryUsage`, `healthCheckInterval` and
    /// `unresponsiveTimeout` for its
    /// defaults and to check the hard limit against the soft one.
    pub(super) fn health(&mut self, raw: &RawConfig) -> HealthSpec {
        let h = &raw.health;
        let key = |name: &str| format!("health.{name}");
        let hard_memory_bytes = self.hard_memory(raw);
        let ms = |v: i128| Duration::from_millis(u64::try_from(v).unwrap_or(0).max(1));
        let unresponsive = ms(raw.unresponsive_timeout.0);
        let interval = ms(raw.health_check_interval.0);
        HealthSpec {
            probe_timeout: match h.probe_timeout {
                Some(ms) => {
                    let timeout = self.millis(&key("probeTimeout"), ms, 10, MAX_LIFECYCLE_MS);
                    if !timeout.is_zero() && timeout >= unresponsive {
                        // One hung probe would hold every check of the tick past the time a
                        // silent worker is replaced.
                        self.invalid(&key("probeTimeout"), "must be below unresponsiveTimeout");
                    }
                    timeout
                }
                None => interval.clamp(MIN_PROBE_TIMEOUT, MAX_PROBE_TIMEOUT),
            },
            probe_failures: self.int(&key("probeFailures"), h.probe_failures, 1, 100).unwrap_or(1),
            hard_memory_bytes,
            memory_samples: self.int(&key("memorySamples"), h.memory_samples, 1, 100).unwrap_or(1),
            memory_min_age: self.millis(
                &key("memoryMinAge"),
                h.memory_min_age,
                0,
                MAX_LIFECYCLE_MS,
            ),
            metrics_window: self.millis(
                &key("metricsWindow"),
                h.metrics_window,
                100,
                MAX_LIFECYCLE_MS,
            ),
            outlier_detection: h.outlier_detection,
            outlier_error_rate: self.percent(&key("outlierErrorRate"), h.outlier_error_rate),
            outlier_min_requests: self
                .int(&key("outlierMinRequests"), h.outlier_min_requests, 1, 1_000_000)
                .unwrap_or(1),
            ejection_time: self.millis(
                &key("ejectionTime"),
                h.ejection_time,
                100,
                MAX_LIFECYCLE_MS,
            ),
            max_ejected_percent: self.percent(&key("maxEjectedPercent"), h.max_ejected_percent),
            max_concurrent_recycles: self
                .int(&key("maxConcurrentRecycles"), h.max_concurrent_recycles, 1, MAX_WORKERS)
                .unwrap_or(1),
            heartbeat_timeout: match h.heartbeat_timeout {
                Some(ms) => self.millis(&key("heartbeatTimeout"), ms, 100, MAX_LIFECYCLE_MS),
                None => unresponsive,
            },
            node_ipc: h.node_ipc,
            unresponsive_grace: self.millis(
                &key("unresponsiveGrace"),
                h.unresponsive_grace,
                0,
                MAX_LIFECYCLE_MS,
            ),
            leak_detection: h.leak_detection,
            leak_window: self.millis(&key("leakWindow"), h.leak_window, 1_000, MAX_LIFECYCLE_MS),
            leak_min_slope: self.positive(&key("leakMinSlope"), h.leak_min_slope, MAX_LEAK_SLOPE),
        }
    }

    /// `health.hardMemoryLimit`: 1.5 × `maxMemoryUsage` by default, off when 0, and never at
    /// or below the soft limit while `restartOnHighMemory` recycles there (a hard limit under
    /// the soft one would kill instead of recycling gracefully).
    fn hard_memory(&mut self, raw: &RawConfig) -> Option<u64> {
        const KEY: &str = "health.hardMemoryLimit";
        let soft = self.size_quiet(&raw.max_memory_usage).unwrap_or(0);
        let Some(size) = &raw.health.hard_memory_limit else {
            return Some(soft.saturating_add(soft / 2));
        };
        if matches!(size.0, IntOrText::Int(mb) if mb < 0) {
            self.invalid(KEY, "must be 0 (no hard limit) or a size");
            return None;
        }
        match self.size(KEY, size)? {
            0 => None,
            hard if soft > 0 && hard <= soft && raw.restart_on_high_memory => {
                self.invalid(KEY, "must be above maxMemoryUsage (or 0 for no hard limit)");
                None
            }
            hard => Some(hard),
        }
    }

    /// A size without reporting a bad one (`maxMemoryUsage` reports its own problems).
    fn size_quiet(&mut self, size: &MemorySize) -> Option<u64> {
        let mut quiet = Validator { prov: self.prov(), problems: Vec::new() };
        quiet.size("", size)
    }
}
