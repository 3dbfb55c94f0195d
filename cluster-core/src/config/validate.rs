//! [`RawConfig`] -> [`ClusterSpec`]: ranges, units, names and paths checked, defaults
//! resolved, every problem reported.
//!
//! Each check records its problems and returns a placeholder when the value is bad, so that
//! all checks run; a spec built from placeholders is never returned.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use cluster_balancer::Strategy;

use super::raw::RawConfig;
use super::scalar::{ByteSize, IntOrText, Integer, MemorySize, ProxyThreads, Workers};
use super::suggest::nearest;
use super::{ClusterSpec, ConfigError, Environment, Provenance, Upstream};

/// Longest accepted for the lifecycle timeouts, in ms (one hour).
pub(super) const MAX_LIFECYCLE_MS: i128 = 3_600_000;

/// Most workers a cluster may run.
pub(crate) const MAX_WORKERS: i128 = 1024;

/// Checks `raw` into a spec. `env` supplies `PATH` to find the worker command; relative
/// paths are resolved against `base` (the current directory, except in tests).
///
/// # Errors
///
/// The `earlier` problems (found while extracting `raw`) followed by every problem found
/// here, in the order of the checks.
pub(crate) fn validate(
    raw: &RawConfig,
    prov: &Provenance,
    env: &Environment,
    base: &Path,
    earlier: Vec<ConfigError>,
) -> Result<ClusterSpec, ConfigError> {
    let mut v = Validator { prov, problems: earlier };
    // `None` when invalid (reported): the bounds check against `scaling` is then skipped.
    let workers = v.workers(&raw.workers);
    let port = v.int("port", raw.port, 0, 65_535).unwrap_or(0);
    let host = v.host(&raw.host);
    let runtime_dir = v.runtime_dir(&raw.runtime_dir, base);
    let spec = ClusterSpec {
        workers: workers.unwrap_or(1),
        listen: SocketAddr::new(host, port),
        mode: v.mode(&raw.mode),
        graceful_shutdown_timeout: v.millis(
            "gracefulShutdownTimeout",
            raw.graceful_shutdown_timeout,
            0,
            MAX_LIFECYCLE_MS,
        ),
        health_check_interval: v.millis(
            "healthCheckInterval",
            raw.health_check_interval,
            100,
            MAX_LIFECYCLE_MS,
        ),
        unresponsive_timeout: v.millis(
            "unresponsiveTimeout",
            raw.unresponsive_timeout,
            100,
            MAX_LIFECYCLE_MS,
        ),
        start_timeout: v.millis("startTimeout", raw.start_timeout, 100, MAX_LIFECYCLE_MS),
        health_check_path: v.health_check_path(raw.health_check_path.as_deref()),
        max_memory_bytes: v.memory(&raw.max_memory_usage),
        restart_on_high_memory: raw.restart_on_high_memory,
        strategy: v.strategy(&raw.load_balancing_strategy),
        sticky_sessions: raw.enable_sticky_session,
        redis_url: v.redis_url(raw.redis_url.as_deref()),
        scaling: v.scaling(&raw.scaling, workers),
        performance: v.performance(&raw.performance),
        security: v.security(
            &raw.security,
            raw.health_check_path.as_deref(),
            raw.redis_url.as_deref(),
        ),
        health: v.health(raw),
        rolling_restart: v.rolling_restart(&raw.rolling_restart),
        admin: v.admin(&raw.admin, &runtime_dir, base),
        access_log: v.access_log(&raw.access_log, base),
        command: v.command(raw, env, base),
        log_level: v.log_level(&raw.log_level),
        log_file: v.log_file(&raw.log_file, base),
        runtime_dir,
        hardening: v.hardening(raw),
        upstream: v.named("upstream", &raw.upstream, &Upstream::ALL).unwrap_or_default(),
    };
    match ConfigError::from_problems(v.problems) {
        None => Ok(spec),
        Some(error) => Err(error),
    }
}

/// The number of CPUs available to this process, at least 1.
pub(crate) fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// What `performance.proxyThreads: "auto"` picks on a machine where this process may use
/// `cpus` CPUs (affinity and cgroup quota included): one thread on one CPU, two from two
/// CPUs, then one per four CPUs, up to 16.
///
/// The proxy shares the machine with its workers, and forwarding a request costs the proxy
/// a fraction of what serving it costs a typical worker, so a quarter of the CPUs is enough
/// on a large machine. On a small one a single thread is a queue every request waits in:
/// measured with the CPUs restricted to 2 cores (docs/benchmarks.md), a second thread
/// served 7-23 % more requests per second than one; on 1 core it served fewer, with a
/// longer tail. Past 16 threads the shared routing table and the kernel's accept queue, not
/// the thread count, limit the proxy.
pub(crate) fn auto_proxy_threads(cpus: usize) -> usize {
    (cpus / 4).max(cpus.min(2)).clamp(1, 16)
}

/// Runs the checks and collects their problems.
pub(super) struct Validator<'a> {
    pub(super) prov: &'a Provenance,
    pub(super) problems: Vec<ConfigError>,
}

impl Validator<'_> {
    /// Records that the value at `key` is invalid for `reason`.
    pub(super) fn invalid(&mut self, key: &str, reason: impl Into<String>) {
        let value = self.prov.value_of(key);
        self.invalid_value(key, value, reason);
    }

    /// Records that `value`, found at `key` (e.g. one element of an array), is invalid.
    pub(super) fn invalid_value(
        &mut self,
        key: &str,
        value: serde_json::Value,
        reason: impl Into<String>,
    ) {
        let origin = self.prov.source_of(key);
        self.problems.push(ConfigError::InvalidValue {
            key: key.to_owned(),
            value,
            origin,
            reason: reason.into(),
        });
    }

    /// Records a problem built by the caller.
    pub(super) fn push(&mut self, problem: ConfigError) {
        self.problems.push(problem);
    }

    /// The provenance of the values checked.
    pub(super) fn prov(&self) -> &Provenance {
        self.prov
    }

    /// `value` if it is within `min..=max` (which must fit `T`).
    pub(super) fn int<T: TryFrom<i128>>(
        &mut self,
        key: &str,
        value: Integer,
        min: i128,
        max: i128,
    ) -> Option<T> {
        debug_assert!(T::try_from(min).is_ok() && T::try_from(max).is_ok());
        let Integer(n) = value;
        if n < min {
            self.invalid(key, format!("must be at least {min}"));
        } else if n > max {
            self.invalid(key, format!("must be at most {max}"));
        }
        (min..=max).contains(&n).then(|| T::try_from(n).ok()).flatten()
    }

    /// A duration given in milliseconds, within `min..=max` ms.
    pub(super) fn millis(&mut self, key: &str, value: Integer, min: i128, max: i128) -> Duration {
        self.int(key, value, min, max).map(Duration::from_millis).unwrap_or_default()
    }

    /// `workers`: a count, or `"max"` for the CPU count; `None` when invalid (reported).
    fn workers(&mut self, workers: &Workers) -> Option<usize> {
        const KEY: &str = "workers";
        let count = match &workers.0 {
            IntOrText::Int(n) => *n,
            IntOrText::Text(t) if t.trim().eq_ignore_ascii_case("max") => {
                return Some(cpu_count().min(MAX_WORKERS as usize));
            }
            IntOrText::Text(t) => match t.trim().parse::<i128>() {
                Ok(n) => n,
                Err(_) => {
                    self.invalid(KEY, r#"expected an integer or "max""#);
                    return None;
                }
            },
        };
        if count < 1 {
            self.invalid(KEY, r#"must be at least 1, or "max""#);
            return None;
        }
        self.int(KEY, Integer(count), 1, MAX_WORKERS)
    }

    /// `performance.proxyThreads`: a count within 1..=64, or `"auto"` for
    /// [`auto_proxy_threads`] of the CPUs this process may use; 1 when invalid (reported).
    pub(super) fn proxy_threads(&mut self, key: &str, threads: &ProxyThreads) -> usize {
        let count = match &threads.0 {
            IntOrText::Int(n) => *n,
            IntOrText::Text(t) if t.trim().eq_ignore_ascii_case("auto") => {
                return auto_proxy_threads(cpu_count());
            }
            IntOrText::Text(t) => match t.trim().parse::<i128>() {
                Ok(n) => n,
                Err(_) => {
                    self.invalid(key, r#"expected an integer from 1 to 64, or "auto""#);
                    return 1;
                }
            },
        };
        self.int(key, Integer(count), 1, 64).unwrap_or(1)
    }

    fn host(&mut self, host: &str) -> IpAddr {
        let host = host.trim();
        if host.eq_ignore_ascii_case("localhost") {
            return Ipv4Addr::LOCALHOST.into();
        }
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        bare.parse().unwrap_or_else(|_| {
            self.invalid("host", r#"expected an IP address or "localhost""#);
            Ipv4Addr::UNSPECIFIED.into()
        })
    }

    fn health_check_path(&mut self, path: Option<&str>) -> Option<String> {
        let path = path?;
        if !path.starts_with('/') {
            self.invalid("healthCheckPath", r#"must start with "/""#);
        }
        Some(path.to_owned())
    }

    fn memory(&mut self, size: &MemorySize) -> u64 {
        const KEY: &str = "maxMemoryUsage";
        let bytes = self.size(KEY, size);
        if bytes == Some(0) {
            self.invalid(KEY, "must be greater than 0");
        }
        bytes.unwrap_or(0)
    }

    /// A size in bytes, from MB or from a string with a unit, at `key` (`None`: reported).
    pub(super) fn size(&mut self, key: &str, size: &MemorySize) -> Option<u64> {
        match &size.0 {
            IntOrText::Int(mb) => Some(u64::try_from(*mb).unwrap_or(0).saturating_mul(MIB)),
            IntOrText::Text(text) => parse_size(text).or_else(|| {
                let reason =
                    r#"expected a size in MB, or a number with a unit such as "512M" or "1G""#;
                self.invalid(key, reason);
                None
            }),
        }
    }

    /// A [`ByteSize`] at `key`, within `min..=max` bytes; `None` when not (reported).
    pub(super) fn byte_size(
        &mut self,
        key: &str,
        size: &ByteSize,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let Some(bytes) = size.bytes() else {
            self.invalid(key, ByteSize::EXPECTING);
            return None;
        };
        if bytes < min {
            self.invalid(key, format!("must be at least {min} bytes"));
            None
        } else if bytes > max {
            self.invalid(key, format!("must be at most {max} bytes"));
            None
        } else {
            Some(bytes)
        }
    }

    fn strategy(&mut self, name: &str) -> Strategy {
        name.parse().unwrap_or_else(|_| {
            let names = Strategy::ALL.iter().map(|s| s.name());
            let quoted: Vec<String> = names.clone().map(|n| format!("{n:?}")).collect();
            let mut reason = format!("expected one of {}", quoted.join(", "));
            if let Some(near) = nearest(name, names) {
                reason.push_str(&format!(r#"; did you mean "{near}"?"#));
            }
            self.invalid("loadBalancingStrategy", reason);
            Strategy::LeastConnections
        })
    }

    fn redis_url(&mut self, url: Option<&str>) -> Option<String> {
        let url = url?;
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            self.invalid("redisUrl", r#"must start with "redis://" or "rediss://""#);
        }
        Some(url.to_owned())
    }

    fn log_level(&mut self, level: &str) -> String {
        if level.trim().is_empty() {
            self.invalid("logLevel", "must not be empty");
        }
        level.to_owned()
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Bytes in a size such as `512`, `512M`, `512MB`, `1G`, `1.5GB` or `800K` (case-insensitive;
/// no unit means MB); `None` if it is not one.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_uppercase();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = match unit.trim() {
        "" | "M" | "MB" => MIB,
        "K" | "KB" => KIB,
        "G" | "GB" => GIB,
        _ => return None,
    };
    // `as` saturates: an absurdly large size becomes u64::MAX bytes, i.e. no limit.
    Some((number * unit as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::{GIB, MIB, parse_size};

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Some(512 * MIB));
        assert_eq!(parse_size("512M"), Some(512 * MIB));
        assert_eq!(parse_size("512mb"), Some(512 * MIB));
        assert_eq!(parse_size("1G"), Some(GIB));
        assert_eq!(parse_size("1GB"), Some(1024 * MIB));
        assert_eq!(parse_size("1.5g"), Some(1536 * MIB));
        assert_eq!(parse_size("800K"), Some(800 * 1024));
        assert_eq!(parse_size(" 2 GB "), Some(2 * GIB));
        for bad in ["", "M", "12X", "-5M", "1e3", "1..2G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
