//! The raw configuration: the file's camelCase keys, values as the user wrote them.
//!
//! This is the first of the two configuration stages: figment merges the layers into a
//! [`RawConfig`] (unknown keys are rejected at every level), and
//! [`validate`](super::validate) checks it into a [`ClusterSpec`](super::ClusterSpec).
//! `Default` is the built-in defaults layer, so the defaults are written once, here.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::accounts::AccountName;
use super::hardening::RawLimits;
use super::scalar::{ByteSize, IntOrText, Integer, MemorySize, Number, ProxyThreads, Workers};

/// The sections of the file (nested objects whose keys are reported dotted).
pub(crate) const SECTIONS: [&str; 8] = [
    "scaling",
    "performance",
    "security",
    "health",
    "rollingRestart",
    "admin",
    "limits",
    "accessLog",
];

/// The keys whose values are secrets: shown as [`MASK`] wherever a value is printed (the
/// `cluster config` report, reload changes, error messages).
pub(crate) const SECRET_KEYS: [&str; 1] = ["admin.token"];

/// What a secret value is shown as.
pub(crate) const MASK: &str = "***";

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(crate) struct RawConfig {
    pub(crate) workers: Workers,
    pub(crate) port: Integer,
    pub(crate) host: String,
    pub(crate) mode: String,
    pub(crate) graceful_shutdown_timeout: Integer,
    pub(crate) health_check_interval: Integer,
    pub(crate) unresponsive_timeout: Integer,
    pub(crate) start_timeout: Integer,
    pub(crate) health_check_path: Option<String>,
    pub(crate) max_memory_usage: MemorySize,
    pub(crate) restart_on_high_memory: bool,
    pub(crate) load_balancing_strategy: String,
    pub(crate) enable_sticky_session: bool,
    pub(crate) redis_url: Option<String>,
    pub(crate) scaling: RawScaling,
    pub(crate) performance: RawPerformance,
    pub(crate) security: RawSecurity,
    pub(crate) health: RawHealth,
    pub(crate) rolling_restart: RawRollingRestart,
    pub(crate) admin: RawAdmin,
    pub(crate) access_log: RawAccessLog,
    pub(crate) command: Option<String>,
    pub(crate) args: Vec<String>,
    pub(crate) cwd: Option<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) log_level: String,
    pub(crate) runtime_dir: String,
    pub(crate) log_file: String,
    /// Worker hardening: see `config/hardening.rs`.
    pub(crate) user: Option<AccountName>,
    pub(crate) group: Option<AccountName>,
    pub(crate) cpu_affinity: bool,
    pub(crate) limits: RawLimits,
    pub(crate) upstream: String,
}

/// `scaling`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(crate) struct RawScaling {
    pub(crate) auto_scale: bool,
    pub(crate) min_workers: Integer,
    /// `None` (the default) resolves to the largest of the CPU count, `workers` and
    /// `minWorkers`, so that the configured count is within the bounds and can be scaled.
    pub(crate) max_workers: Option<Integer>,
    pub(crate) cpu_threshold: Number,
    pub(crate) memory_threshold: Number,
    pub(crate) cooldown: Integer,
    pub(crate) scale_up_after: Integer,
    pub(crate) scale_down_after: Integer,
}

/// `performance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(crate) struct RawPerformance {
    pub(crate) max_requests_per_worker: Integer,
    pub(crate) request_timeout: Integer,
    pub(crate) keep_alive_timeout: Integer,
    pub(crate) header_read_timeout: Integer,
    pub(crate) upstream_idle_timeout: Integer,
    pub(crate) slow_start_window: Integer,
    pub(crate) proxy_threads: ProxyThreads,
    pub(crate) enable_compression: bool,
    pub(crate) compression_level: Integer,
    pub(crate) max_body_size: ByteSize,
    pub(crate) max_header_size: ByteSize,
    pub(crate) max_headers: Integer,
    pub(crate) max_connections: Integer,
    pub(crate) compression_min_size: ByteSize,
}

/// `health`: the knobs of the health policies (an extension of the original design, whose
/// top-level keys `healthCheckInterval`, `unresponsiveTimeout`, `maxMemoryUsage` and
/// `restartOnHighMemory` stay where they were).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(crate) struct RawHealth {
    /// `None` (the default) resolves to `healthCheckInterval`, within 500 ms to 2 s.
    pub(crate) probe_timeout: Option<Integer>,
    pub(crate) probe_failures: Integer,
    /// `None` (the default) resolves to 1.5 × `maxMemoryUsage`; `0` turns the hard limit off.
    pub(crate) hard_memory_limit: Option<MemorySize>,
    pub(crate) memory_samples: Integer,
    pub(crate) memory_min_age: Integer,
    pub(crate) metrics_window: Integer,
    pub(crate) outlier_detection: bool,
    pub(crate) outlier_error_rate: Number,
    pub(crate) outlier_min_requests: Integer,
    pub(crate) ejection_time: Integer,
    pub(crate) max_ejected_percent: Number,
    pub(crate) max_concurrent_recycles: Integer,
    /// `None` (the default) resolves to `unresponsiveTimeout`.
    pub(crate) heartbeat_timeout: Option<Integer>,
    /// `None` (the default): on when the worker program is `node`.
    pub(crate) node_ipc: Option<bool>,
    pub(crate) unresponsive_grace: Integer,
    pub(crate) leak_detection: bool,
    pub(crate) leak_window: Integer,
    pub(crate) leak_min_slope: Number,
}

/// `rollingRestart`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(crate) struct RawRollingRestart {
    pub(crate) max_surge: Integer,
    pub(crate) min_ready: Integer,
}

/// `admin`: the admin API and the control socket. `Debug` masks the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(crate) struct RawAdmin {
    /// A secret: see [`SECRET_KEYS`].
    pub(crate) token: Option<String>,
    pub(crate) listen: Option<String>,
    pub(crate) public_health: bool,
    pub(crate) min_healthy_percent: Number,
    pub(crate) events_interval: Integer,
    /// `None` (the default) resolves to `cluster.sock` in `runtimeDir`.
    pub(crate) socket: Option<String>,
}

/// `security`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(crate) struct RawSecurity {
    pub(crate) enable_rate_limit: bool,
    pub(crate) rate_limit_window: Integer,
    pub(crate) rate_limit_max: Integer,
    pub(crate) trusted_proxies: Vec<String>,
    pub(crate) enable_request_logging: bool,
    pub(crate) rate_limit_store: String,
    /// `None` (the default) resolves to the admin paths and `healthCheckPath`.
    pub(crate) rate_limit_exempt: Option<Vec<String>>,
    pub(crate) rate_limit_redis_timeout: Integer,
    pub(crate) rate_limit_redis_fallback: String,
}

/// `accessLog`: where and how the access log of `security.enableRequestLogging` is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(crate) struct RawAccessLog {
    pub(crate) format: String,
    pub(crate) path: String,
    pub(crate) queue: Integer,
}

impl Default for RawAccessLog {
    fn default() -> Self {
        Self { format: "combined".into(), path: "logs/access.log".into(), queue: Integer(16_384) }
    }
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            workers: Workers(IntOrText::Text("max".into())),
            port: Integer(3000),
            host: "0.0.0.0".into(),
            mode: "proxy".into(),
            graceful_shutdown_timeout: Integer(15_000),
            health_check_interval: Integer(5_000),
            unresponsive_timeout: Integer(10_000),
            start_timeout: Integer(30_000),
            health_check_path: None,
            max_memory_usage: MemorySize(IntOrText::Int(512)),
            restart_on_high_memory: true,
            load_balancing_strategy: "least-connections".into(),
            enable_sticky_session: false,
            redis_url: None,
            scaling: RawScaling::default(),
            performance: RawPerformance::default(),
            security: RawSecurity::default(),
            health: RawHealth::default(),
            rolling_restart: RawRollingRestart::default(),
            admin: RawAdmin::default(),
            access_log: RawAccessLog::default(),
            command: None,
            args: Vec::new(),
            cwd: None,
            env: BTreeMap::new(),
            log_level: "info".into(),
            runtime_dir: ".cluster".into(),
            log_file: "logs/cluster.log".into(),
            user: None,
            group: None,
            cpu_affinity: false,
            limits: RawLimits::default(),
            upstream: "tcp".into(),
        }
    }
}

impl Default for RawScaling {
    fn default() -> Self {
        Self {
            auto_scale: false,
            min_workers: Integer(1),
            max_workers: None,
            cpu_threshold: Number(80.0),
            memory_threshold: Number(85.0),
            cooldown: Integer(30_000),
            scale_up_after: Integer(15_000),
            scale_down_after: Integer(60_000),
        }
    }
}

impl Default for RawPerformance {
    fn default() -> Self {
        Self {
            max_requests_per_worker: Integer(0),
            request_timeout: Integer(30_000),
            keep_alive_timeout: Integer(65_000),
            header_read_timeout: Integer(10_000),
            upstream_idle_timeout: Integer(4_000),
            slow_start_window: Integer(0),
            proxy_threads: ProxyThreads(IntOrText::Text("auto".into())),
            enable_compression: false,
            compression_level: Integer(6),
            max_body_size: ByteSize::of(0),
            max_header_size: ByteSize::of(64 * 1024),
            max_headers: Integer(100),
            max_connections: Integer(0),
            compression_min_size: ByteSize::of(1024),
        }
    }
}

impl Default for RawSecurity {
    fn default() -> Self {
        Self {
            enable_rate_limit: false,
            rate_limit_window: Integer(60_000),
            rate_limit_max: Integer(100),
            trusted_proxies: Vec::new(),
            enable_request_logging: false,
            rate_limit_store: "local".into(),
            rate_limit_exempt: None,
            rate_limit_redis_timeout: Integer(50),
            rate_limit_redis_fallback: "local".into(),
        }
    }
}

impl Default for RawHealth {
    fn default() -> Self {
        Self {
            probe_timeout: None,
            probe_failures: Integer(2),
            hard_memory_limit: None,
            memory_samples: Integer(3),
            memory_min_age: Integer(30_000),
            metrics_window: Integer(10_000),
            outlier_detection: true,
            outlier_error_rate: Number(20.0),
            outlier_min_requests: Integer(20),
            ejection_time: Integer(30_000),
            max_ejected_percent: Number(34.0),
            max_concurrent_recycles: Integer(1),
            heartbeat_timeout: None,
            node_ipc: None,
            unresponsive_grace: Integer(2_000),
            leak_detection: true,
            leak_window: Integer(300_000),
            leak_min_slope: Number(1.0),
        }
    }
}

impl Default for RawRollingRestart {
    fn default() -> Self {
        Self { max_surge: Integer(1), min_ready: Integer(0) }
    }
}

impl fmt::Debug for RawAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawAdmin")
            .field("token", &self.token.as_ref().map(|_| MASK))
            .field("listen", &self.listen)
            .field("public_health", &self.public_health)
            .field("min_healthy_percent", &self.min_healthy_percent)
            .field("events_interval", &self.events_interval)
            .field("socket", &self.socket)
            .finish()
    }
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            token: None,
            listen: None,
            public_health: false,
            min_healthy_percent: Number(50.0),
            events_interval: Integer(2_000),
            socket: None,
        }
    }
}
