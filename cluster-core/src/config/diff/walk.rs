//! Every key of the specs, with its class and how its values are shown.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;

use super::Applies::{NextGeneration, Now, Restart};
use super::{Applies, Key, Visit};
use crate::config::raw::MASK;
use crate::config::{
    AccessLogSpec, AdminSpec, ClusterSpec, HardeningSpec, HealthSpec, PerformanceSpec,
    RequestLimits, RollingRestartSpec, ScalingSpec, SecuritySpec, WorkerCommand,
};

/// Hands one key to `v`.
fn key<T: Clone + PartialEq>(
    v: &mut impl Visit,
    name: &'static str,
    applies: Applies,
    old: &T,
    new: &mut T,
    show: fn(&T) -> String,
) {
    v.key(Key { name, applies, old, new, show });
}

/// `key(v, name, applies, &old.field, field, show)`, where `field` is the binding of the
/// same name made by destructuring `new`.
macro_rules! visit {
    ($v:ident, $old:ident . $field:ident, $name:literal, $applies:ident, $show:expr) => {
        key($v, $name, $applies, &$old.$field, $field, $show)
    };
}

/// Visits every key of the specs, with its class. `new` is destructured without `..`, so a
/// new field must be named here before the crate compiles, and a field named but not
/// visited is an unused variable.
pub(super) fn walk(old: &ClusterSpec, new: &mut ClusterSpec, v: &mut impl Visit) {
    let ClusterSpec {
        workers,
        listen,
        mode,
        graceful_shutdown_timeout,
        health_check_interval,
        unresponsive_timeout,
        start_timeout,
        health_check_path,
        max_memory_bytes,
        restart_on_high_memory,
        strategy,
        sticky_sessions,
        redis_url,
        scaling,
        performance,
        security,
        health,
        rolling_restart,
        admin,
        access_log,
        command,
        log_level,
        runtime_dir,
        log_file,
        hardening,
        upstream,
    } = new;
    visit!(v, old.workers, "workers", Now, plain);
    let (mut host, mut port) = (listen.ip(), listen.port());
    key(v, "port", Restart, &old.listen.port(), &mut port, plain);
    key(v, "host", Restart, &old.listen.ip(), &mut host, plain);
    *listen = SocketAddr::new(host, port);
    visit!(v, old.mode, "mode", Restart, plain);
    visit!(v, old.graceful_shutdown_timeout, "gracefulShutdownTimeout", Now, ms);
    visit!(v, old.health_check_interval, "healthCheckInterval", Now, ms);
    visit!(v, old.unresponsive_timeout, "unresponsiveTimeout", Now, ms);
    visit!(v, old.start_timeout, "startTimeout", Now, ms);
    visit!(v, old.health_check_path, "healthCheckPath", Now, opt_text);
    visit!(v, old.max_memory_bytes, "maxMemoryUsage", Now, size);
    visit!(v, old.restart_on_high_memory, "restartOnHighMemory", Now, plain);
    visit!(v, old.strategy, "loadBalancingStrategy", Now, plain);
    visit!(v, old.sticky_sessions, "enableStickySession", Restart, plain);
    visit!(v, old.redis_url, "redisUrl", Restart, opt_text);
    walk_scaling(&old.scaling, scaling, v);
    walk_performance(&old.performance, performance, v);
    walk_security(&old.security, security, v);
    walk_health(&old.health, health, v);
    let RollingRestartSpec { max_surge, min_ready } = rolling_restart;
    key(v, "rollingRestart.maxSurge", Now, &old.rolling_restart.max_surge, max_surge, plain);
    key(v, "rollingRestart.minReady", Now, &old.rolling_restart.min_ready, min_ready, ms);
    walk_admin(&old.admin, admin, v);
    walk_access_log(&old.access_log, access_log, v);
    let WorkerCommand { program, args, cwd, env } = command;
    key(v, "command", NextGeneration, &old.command.program, program, opt_path);
    key(v, "args", NextGeneration, &old.command.args, args, json);
    key(v, "cwd", NextGeneration, &old.command.cwd, cwd, opt_path);
    key(v, "env", NextGeneration, &old.command.env, env, json);
    visit!(v, old.log_level, "logLevel", Restart, plain);
    visit!(v, old.runtime_dir, "runtimeDir", Restart, path);
    visit!(v, old.log_file, "logFile", Restart, path);
    walk_hardening(&old.hardening, hardening, v);
    visit!(v, old.upstream, "upstream", NextGeneration, plain);
}

/// How workers are confined is decided when each one is forked: a reload takes every key
/// to the workers of the next generation (a rolling restart), as the worker command is;
/// running workers keep what they were started with.
fn walk_hardening(old: &HardeningSpec, new: &mut HardeningSpec, v: &mut impl Visit) {
    let HardeningSpec { user, group, nofile, core, cpu_affinity, memory_max } = new;
    visit!(v, old.user, "user", NextGeneration, opt_display);
    visit!(v, old.group, "group", NextGeneration, opt_display);
    visit!(v, old.cpu_affinity, "cpuAffinity", NextGeneration, plain);
    visit!(v, old.nofile, "limits.nofile", NextGeneration, opt_display);
    visit!(v, old.core, "limits.core", NextGeneration, opt_display);
    visit!(v, old.memory_max, "limits.memoryMax", NextGeneration, opt_size_unset);
}

/// The admin listener, the control socket and the events stream are set up when the
/// primary starts.
fn walk_admin(old: &AdminSpec, new: &mut AdminSpec, v: &mut impl Visit) {
    let AdminSpec { token, listen, public_health, min_healthy_percent, events_interval, socket } =
        new;
    visit!(v, old.token, "admin.token", Restart, secret);
    visit!(v, old.listen, "admin.listen", Restart, opt_addr);
    visit!(v, old.public_health, "admin.publicHealth", Restart, plain);
    visit!(v, old.min_healthy_percent, "admin.minHealthyPercent", Restart, plain);
    visit!(v, old.events_interval, "admin.eventsInterval", Restart, ms);
    visit!(v, old.socket, "admin.socket", Restart, opt_path);
}

/// The access log's writer thread and destination are set up when the primary starts
/// (SIGUSR1 reopens the same path).
fn walk_access_log(old: &AccessLogSpec, new: &mut AccessLogSpec, v: &mut impl Visit) {
    let AccessLogSpec { format, path, queue } = new;
    visit!(v, old.format, "accessLog.format", Restart, plain);
    visit!(v, old.path, "accessLog.path", Restart, plain);
    visit!(v, old.queue, "accessLog.queue", Restart, plain);
}

fn walk_scaling(old: &ScalingSpec, new: &mut ScalingSpec, v: &mut impl Visit) {
    let ScalingSpec {
        auto_scale,
        min_workers,
        max_workers,
        cpu_threshold,
        memory_threshold,
        cooldown,
        scale_up_after,
        scale_down_after,
    } = new;
    visit!(v, old.auto_scale, "scaling.autoScale", Now, plain);
    visit!(v, old.min_workers, "scaling.minWorkers", Now, plain);
    visit!(v, old.max_workers, "scaling.maxWorkers", Now, plain);
    visit!(v, old.cpu_threshold, "scaling.cpuThreshold", Now, plain);
    visit!(v, old.memory_threshold, "scaling.memoryThreshold", Now, plain);
    visit!(v, old.cooldown, "scaling.cooldown", Now, ms);
    visit!(v, old.scale_up_after, "scaling.scaleUpAfter", Now, ms);
    visit!(v, old.scale_down_after, "scaling.scaleDownAfter", Now, ms);
}

fn walk_performance(old: &PerformanceSpec, new: &mut PerformanceSpec, v: &mut impl Visit) {
    let PerformanceSpec {
        max_requests_per_worker,
        request_timeout,
        keep_alive_timeout,
        header_read_timeout,
        upstream_idle_timeout,
        slow_start_window,
        proxy_threads,
        enable_compression,
        compression_level,
        limits,
        compression_min_size,
    } = new;
    visit!(v, old.max_requests_per_worker, "performance.maxRequestsPerWorker", Now, opt_count);
    visit!(v, old.slow_start_window, "performance.slowStartWindow", Now, opt_ms);
    visit!(v, old.request_timeout, "performance.requestTimeout", Restart, ms);
    visit!(v, old.keep_alive_timeout, "performance.keepAliveTimeout", Restart, ms);
    visit!(v, old.header_read_timeout, "performance.headerReadTimeout", Restart, ms);
    visit!(v, old.upstream_idle_timeout, "performance.upstreamIdleTimeout", Restart, ms);
    visit!(v, old.proxy_threads, "performance.proxyThreads", Restart, plain);
    visit!(v, old.enable_compression, "performance.enableCompression", Restart, plain);
    visit!(v, old.compression_level, "performance.compressionLevel", Restart, plain);
    visit!(v, old.compression_min_size, "performance.compressionMinSize", Restart, size);
    walk_limits(&old.limits, limits, v);
}

/// The request limits: read once when the proxy starts, so a change needs a restart.
fn walk_limits(old: &RequestLimits, new: &mut RequestLimits, v: &mut impl Visit) {
    let RequestLimits { max_body_size, max_header_size, max_headers, max_connections } = new;
    visit!(v, old.max_body_size, "performance.maxBodySize", Restart, opt_size);
    visit!(v, old.max_header_size, "performance.maxHeaderSize", Restart, usize_size);
    visit!(v, old.max_headers, "performance.maxHeaders", Restart, plain);
    visit!(v, old.max_connections, "performance.maxConnections", Restart, opt_usize);
}

fn walk_security(old: &SecuritySpec, new: &mut SecuritySpec, v: &mut impl Visit) {
    let SecuritySpec {
        enable_rate_limit,
        rate_limit_window,
        rate_limit_max,
        trusted_proxies,
        enable_request_logging,
        rate_limit_store,
        rate_limit_exempt,
        rate_limit_redis_timeout,
        rate_limit_redis_fallback,
    } = new;
    visit!(v, old.enable_rate_limit, "security.enableRateLimit", Restart, plain);
    visit!(v, old.rate_limit_window, "security.rateLimitWindow", Restart, ms);
    visit!(v, old.rate_limit_max, "security.rateLimitMax", Restart, plain);
    visit!(v, old.trusted_proxies, "security.trustedProxies", Restart, nets);
    visit!(v, old.enable_request_logging, "security.enableRequestLogging", Restart, plain);
    // The rate limit is built once when the primary starts.
    visit!(v, old.rate_limit_store, "security.rateLimitStore", Restart, plain);
    visit!(v, old.rate_limit_exempt, "security.rateLimitExempt", Restart, json);
    visit!(v, old.rate_limit_redis_timeout, "security.rateLimitRedisTimeout", Restart, ms);
    visit!(v, old.rate_limit_redis_fallback, "security.rateLimitRedisFallback", Restart, plain);
}

fn walk_health(old: &HealthSpec, new: &mut HealthSpec, v: &mut impl Visit) {
    let HealthSpec {
        probe_timeout,
        probe_failures,
        hard_memory_bytes,
        memory_samples,
        memory_min_age,
        metrics_window,
        outlier_detection,
        outlier_error_rate,
        outlier_min_requests,
        ejection_time,
        max_ejected_percent,
        max_concurrent_recycles,
        heartbeat_timeout,
        node_ipc,
        unresponsive_grace,
        leak_detection,
        leak_window,
        leak_min_slope,
    } = new;
    visit!(v, old.probe_timeout, "health.probeTimeout", Now, ms);
    visit!(v, old.probe_failures, "health.probeFailures", Now, plain);
    visit!(v, old.hard_memory_bytes, "health.hardMemoryLimit", Now, opt_size);
    visit!(v, old.memory_samples, "health.memorySamples", Now, plain);
    visit!(v, old.memory_min_age, "health.memoryMinAge", Now, ms);
    visit!(v, old.metrics_window, "health.metricsWindow", Now, ms);
    visit!(v, old.outlier_detection, "health.outlierDetection", Now, plain);
    visit!(v, old.outlier_error_rate, "health.outlierErrorRate", Now, plain);
    visit!(v, old.outlier_min_requests, "health.outlierMinRequests", Now, plain);
    visit!(v, old.ejection_time, "health.ejectionTime", Now, ms);
    visit!(v, old.max_ejected_percent, "health.maxEjectedPercent", Now, plain);
    visit!(v, old.max_concurrent_recycles, "health.maxConcurrentRecycles", Now, plain);
    visit!(v, old.heartbeat_timeout, "health.heartbeatTimeout", Now, ms);
    visit!(v, old.node_ipc, "health.nodeIpc", NextGeneration, opt_bool);
    visit!(v, old.unresponsive_grace, "health.unresponsiveGrace", Now, ms);
    visit!(v, old.leak_detection, "health.leakDetection", Now, plain);
    visit!(v, old.leak_window, "health.leakWindow", Now, ms);
    visit!(v, old.leak_min_slope, "health.leakMinSlope", Now, plain);
}

// How values are shown: as the file writes them.

/// Numbers, names, booleans, addresses.
fn plain<T: Display>(value: &T) -> String {
    value.to_string()
}

/// Milliseconds, as a plain number.
fn ms(duration: &Duration) -> String {
    duration.as_millis().to_string()
}

/// Milliseconds; `0` (off) when `None`.
fn opt_ms(duration: &Option<Duration>) -> String {
    duration.as_ref().map_or_else(|| "0".into(), ms)
}

/// A count; `0` (off) when `None`.
fn opt_count(count: &Option<u64>) -> String {
    count.unwrap_or(0).to_string()
}

/// A size in the largest of MB, KB and bytes that shows it exactly.
fn size(bytes: &u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    match *bytes {
        b if b % MIB == 0 => format!("{} MB", b / MIB),
        b if b % KIB == 0 => format!("{} KB", b / KIB),
        b => format!("{b} bytes"),
    }
}

/// A size; `0` (off) when `None`.
fn opt_size(bytes: &Option<u64>) -> String {
    bytes.as_ref().map_or_else(|| "0".into(), size)
}

/// A size held as a `usize`.
fn usize_size(bytes: &usize) -> String {
    size(&(*bytes as u64))
}

/// A count; `0` (off) when `None`.
fn opt_usize(count: &Option<usize>) -> String {
    count.unwrap_or(0).to_string()
}

fn opt_text(text: &Option<String>) -> String {
    text.clone().unwrap_or_else(|| UNSET.into())
}

fn opt_path(path: &Option<PathBuf>) -> String {
    path.as_ref().map_or_else(|| UNSET.into(), |p| p.display().to_string())
}

#[allow(clippy::ptr_arg)] // a `show` takes a reference to the field's own type
fn path(path: &PathBuf) -> String {
    path.display().to_string()
}

fn opt_addr(addr: &Option<SocketAddr>) -> String {
    addr.map_or_else(|| UNSET.into(), |a| a.to_string())
}

/// A secret: `***` when set, whatever its value.
fn secret(value: &Option<String>) -> String {
    value.as_ref().map_or_else(|| UNSET.into(), |_| MASK.into())
}

/// An optional value shown as it displays; `unset` when `None`.
fn opt_display<T: Display>(value: &Option<T>) -> String {
    value.as_ref().map_or_else(|| UNSET.into(), ToString::to_string)
}

/// A size; `unset` when `None`.
fn opt_size_unset(bytes: &Option<u64>) -> String {
    bytes.as_ref().map_or_else(|| UNSET.into(), size)
}

fn opt_bool(flag: &Option<bool>) -> String {
    flag.map_or_else(|| UNSET.into(), |b| b.to_string())
}

/// Lists and `env`, as compact JSON.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Address blocks, as a JSON array of strings.
#[allow(clippy::ptr_arg)] // a `show` takes a reference to the field's own type
fn nets(nets: &Vec<IpNet>) -> String {
    json(&nets.iter().map(ToString::to_string).collect::<Vec<_>>())
}

/// How an optional key that is not set is shown.
const UNSET: &str = "unset";
