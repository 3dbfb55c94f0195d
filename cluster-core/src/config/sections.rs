//! Validation of the file's sections: `scaling` (with `workers` checked against its
//! bounds), `performance`, `security` and `rollingRestart`.

use std::net::IpAddr;

use ipnet::IpNet;

use super::error::OtherValue;
use super::raw::{RawPerformance, RawRollingRestart, RawScaling, RawSecurity};
use super::scalar::Number;
use super::validate::{MAX_LIFECYCLE_MS, MAX_WORKERS, Validator, cpu_count};
use super::{ConfigError, PerformanceSpec, RollingRestartSpec, ScalingSpec, SecuritySpec};

/// Largest value of the millisecond keys that have no natural upper bound.
const MAX_MS: i128 = u64::MAX as i128;

impl Validator<'_> {
    /// The `scaling` section; `workers` is the resolved worker count (`None` when invalid),
    /// which must lie within the bounds and raises the default `maxWorkers`.
    pub(super) fn scaling(&mut self, raw: &RawScaling, workers: Option<usize>) -> ScalingSpec {
        const WORKERS: &str = "workers";
        const MIN: &str = "scaling.minWorkers";
        const MAX: &str = "scaling.maxWorkers";
        let min_workers = self.int(MIN, raw.min_workers, 1, MAX_WORKERS);
        let max_workers = match raw.max_workers {
            Some(max) => self.int(MAX, max, 1, MAX_WORKERS),
            None => Some(default_max_workers(workers, min_workers)),
        };
        // Each check needs both of its values valid; `workers` is only checked against
        // bounds that are consistent.
        if let (Some(min), Some(max)) = (min_workers, max_workers) {
            if min > max {
                self.conflict(MIN, "greater than", MAX);
            } else if let Some(workers) = workers {
                if workers < min {
                    self.conflict(WORKERS, "less than", MIN);
                } else if workers > max {
                    self.conflict(WORKERS, "greater than", MAX);
                }
            }
        }
        let key = |name: &str| format!("scaling.{name}");
        ScalingSpec {
            auto_scale: raw.auto_scale,
            min_workers: min_workers.unwrap_or(1),
            max_workers: max_workers.unwrap_or(1),
            cpu_threshold: self.percent(&key("cpuThreshold"), raw.cpu_threshold),
            memory_threshold: self.percent(&key("memoryThreshold"), raw.memory_threshold),
            cooldown: self.millis(&key("cooldown"), raw.cooldown, 0, MAX_LIFECYCLE_MS),
            scale_up_after: self.millis(
                &key("scaleUpAfter"),
                raw.scale_up_after,
                0,
                MAX_LIFECYCLE_MS,
            ),
            scale_down_after: self.millis(
                &key("scaleDownAfter"),
                raw.scale_down_after,
                0,
                MAX_LIFECYCLE_MS,
            ),
        }
    }

    /// Records that the value at `key` is `relation` the value at `other`.
    fn conflict(&mut self, key: &str, relation: &'static str, other: &str) {
        let prov = self.prov();
        let other = OtherValue::new(other, prov.value_of(other), prov.source_of(other));
        let problem = ConfigError::Conflict {
            key: key.into(),
            value: prov.value_of(key),
            origin: prov.source_of(key),
            relation,
            other: Box::new(other),
        };
        self.push(problem);
    }

    /// The `rollingRestart` section.
    pub(super) fn rolling_restart(&mut self, raw: &RawRollingRestart) -> RollingRestartSpec {
        RollingRestartSpec {
            min_ready: self.millis("rollingRestart.minReady", raw.min_ready, 0, MAX_LIFECYCLE_MS),
            max_surge: self
                .int("rollingRestart.maxSurge", raw.max_surge, 1, MAX_WORKERS)
                .unwrap_or(1),
        }
    }

    pub(super) fn performance(&mut self, raw: &RawPerformance) -> PerformanceSpec {
        let key = |name: &str| format!("performance.{name}");
        let max_requests: u64 = self
            .int(&key("maxRequestsPerWorker"), raw.max_requests_per_worker, 0, MAX_MS)
            .unwrap_or(0);
        let slow_start = self.millis(&key("slowStartWindow"), raw.slow_start_window, 0, MAX_MS);
        PerformanceSpec {
            max_requests_per_worker: (max_requests > 0).then_some(max_requests),
            slow_start_window: (!slow_start.is_zero()).then_some(slow_start),
            request_timeout: self.millis(&key("requestTimeout"), raw.request_timeout, 1, MAX_MS),
            keep_alive_timeout: self.millis(
                &key("keepAliveTimeout"),
                raw.keep_alive_timeout,
                1,
                MAX_MS,
            ),
            header_read_timeout: self.millis(
                &key("headerReadTimeout"),
                raw.header_read_timeout,
                1,
                MAX_MS,
            ),
            upstream_idle_timeout: self.millis(
                &key("upstreamIdleTimeout"),
                raw.upstream_idle_timeout,
                1,
                MAX_MS,
            ),
            proxy_threads: self.proxy_threads(&key("proxyThreads"), &raw.proxy_threads),
            enable_compression: raw.enable_compression,
            compression_level: self
                .int(&key("compressionLevel"), raw.compression_level, 1, 9)
                .unwrap_or(1),
            limits: self.limits(raw),
            compression_min_size: self
                .byte_size(&key("compressionMinSize"), &raw.compression_min_size, 0, u64::MAX)
                .unwrap_or(0),
        }
    }

    /// The `security` section; `health_check_path` and `redis_url` are read by the rate limit
    /// keys (the default exempt paths, the Redis store).
    pub(super) fn security(
        &mut self,
        raw: &RawSecurity,
        health_check_path: Option<&str>,
        redis_url: Option<&str>,
    ) -> SecuritySpec {
        let rate = self.rate_limit(raw, health_check_path, redis_url);
        const PROXIES: &str = "security.trustedProxies";
        let mut trusted_proxies = Vec::with_capacity(raw.trusted_proxies.len());
        for entry in &raw.trusted_proxies {
            match parse_net(entry) {
                Some(net) => trusted_proxies.push(net),
                None => self.invalid_value(
                    PROXIES,
                    entry.as_str().into(),
                    "expected an IP address or a CIDR block",
                ),
            }
        }
        SecuritySpec {
            enable_rate_limit: raw.enable_rate_limit,
            rate_limit_window: self.millis(
                "security.rateLimitWindow",
                raw.rate_limit_window,
                1,
                MAX_MS,
            ),
            rate_limit_max: self
                .int("security.rateLimitMax", raw.rate_limit_max, 1, u32::MAX.into())
                .unwrap_or(1),
            trusted_proxies,
            enable_request_logging: raw.enable_request_logging,
            rate_limit_store: rate.store,
            rate_limit_exempt: rate.exempt,
            rate_limit_redis_timeout: rate.redis_timeout,
            rate_limit_redis_fallback: rate.fallback,
        }
    }

    /// A percentage in `(0, 100]`.
    pub(super) fn percent(&mut self, key: &str, value: Number) -> f64 {
        self.positive(key, value, 100.0)
    }

    /// A number in `(0, max]`; `max` when it is not (reported).
    pub(super) fn positive(&mut self, key: &str, Number(value): Number, max: f64) -> f64 {
        if value > 0.0 && value <= max {
            value
        } else {
            self.invalid(key, format!("must be greater than 0 and at most {max}"));
            max
        }
    }
}

/// The default `scaling.maxWorkers`: the largest of the CPU count, `workers` and
/// `minWorkers` (each `None` when invalid), so that the configured count can be scaled.
fn default_max_workers(workers: Option<usize>, min_workers: Option<usize>) -> usize {
    let cpus = cpu_count().min(MAX_WORKERS as usize);
    cpus.max(workers.unwrap_or(1)).max(min_workers.unwrap_or(1))
}

/// A CIDR block (`10.0.0.0/8`), or an address taken as a block of one (`/32` or `/128`).
fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>().ok().or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}
