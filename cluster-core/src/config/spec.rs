//! The checked configuration: what every other part of the cluster takes.
//!
//! [`ClusterSpec`] is produced only by validation (see [`load`](crate::config::load)); every
//! value in it has been range-checked and has its default resolved, so downstream code never
//! re-checks. Durations are [`Duration`]s and sizes are bytes, whatever unit the file used.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use cluster_balancer::Strategy;
use ipnet::IpNet;

use super::HardeningSpec;
use super::ratelimit::{RateLimitFallback, RateLimitStore};
use super::raw::MASK;

/// The control socket's file name in [`ClusterSpec::runtime_dir`], when `admin.socket` is unset.
pub(crate) const CONTROL_SOCKET: &str = "cluster.sock";

/// The validated configuration of one cluster.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::*;
///
/// let mut spec = ClusterSpec::default();
/// // The defaults, then what this embedder cares about.
/// spec.workers = 4;
/// spec.listen = "127.0.0.1:8080".parse().unwrap();
/// spec.command.program = Some("node".into());
/// spec.command.args = vec!["build".into()];
/// spec.health_check_path = Some("/healthz".into());
/// assert_eq!(spec.host().to_string(), "127.0.0.1");
/// assert!(spec.control_socket().ends_with("cluster.sock"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClusterSpec {
    /// Number of workers to keep ready (`workers`; `"max"` resolves to the CPU count).
    pub workers: usize,
    /// Address of the front listener (`host` and `port`).
    pub listen: SocketAddr,
    /// Which data plane serves the front port (`mode`): the proxy, or workers accepting on
    /// the shared front socket.
    pub mode: super::Mode,
    /// How long shutdown waits for in-flight requests, and then for workers to exit after
    /// SIGTERM, before it kills them (`gracefulShutdownTimeout`, ms in the file).
    pub graceful_shutdown_timeout: Duration,
    /// Period of health checks and resource sampling (`healthCheckInterval`, ms).
    pub health_check_interval: Duration,
    /// A worker that has not answered for this long is taken out of rotation
    /// (`unresponsiveTimeout`, ms).
    pub unresponsive_timeout: Duration,
    /// How long a new worker may take to become ready before it is stopped and counted as a
    /// failed start (`startTimeout`, ms).
    pub start_timeout: Duration,
    /// Path probed with `GET` to decide readiness (`healthCheckPath`); `None` means a worker
    /// is ready as soon as its port accepts a connection.
    pub health_check_path: Option<String>,
    /// Soft memory limit per worker process tree, in bytes (`maxMemoryUsage`, MB).
    pub max_memory_bytes: u64,
    /// Recycle a worker that goes over [`max_memory_bytes`](Self::max_memory_bytes)
    /// (`restartOnHighMemory`).
    pub restart_on_high_memory: bool,
    /// The balancing strategy (`loadBalancingStrategy`).
    pub strategy: Strategy,
    /// Session affinity (`enableStickySession`).
    pub sticky_sessions: bool,
    /// `redisUrl`: accepted for compatibility with the Node design; affinity state lives in
    /// the primary, so it is not used.
    pub redis_url: Option<String>,
    /// Autoscaling settings (`scaling`).
    pub scaling: ScalingSpec,
    /// Proxy and worker-recycling settings (`performance`).
    pub performance: PerformanceSpec,
    /// Front-door protection settings (`security`).
    pub security: SecuritySpec,
    /// Health-policy settings (`health`).
    pub health: HealthSpec,
    /// How a rolling restart replaces the workers (`rollingRestart`).
    pub rolling_restart: RollingRestartSpec,
    /// The admin API and the control socket (`admin`).
    pub admin: AdminSpec,
    /// Where and how the access log is written when
    /// [`SecuritySpec::enable_request_logging`] is on (`accessLog`).
    pub access_log: AccessLogSpec,
    /// What each worker runs (`command`, `args`, `cwd`, `env`).
    pub command: WorkerCommand,
    /// Log filter (`logLevel` / `LOG_LEVEL`), in `tracing_subscriber::EnvFilter` syntax.
    pub log_level: String,
    /// The directory of the cluster's runtime files: the control socket (unless
    /// [`AdminSpec::socket`] names another path) and the state of a detached cluster
    /// (`runtimeDir` / `CLUSTER_RUNTIME_DIR`; default `.cluster`). A relative path is resolved
    /// against the directory the configuration was loaded in, as `cwd` is; the directory is
    /// not created by loading.
    pub runtime_dir: PathBuf,
    /// The file `cluster start --detach` writes its log to (`logFile`; default
    /// `logs/cluster.log`). A relative path is resolved as
    /// [`runtime_dir`](Self::runtime_dir) is, not inside it; neither the file nor its
    /// directory is created by loading.
    pub log_file: PathBuf,
    /// How workers are confined: the account they run as, their resource limits, CPU
    /// affinity and cgroup memory limit (`user`, `group`, `cpuAffinity`, `limits`).
    pub hardening: HardeningSpec,
    /// How the proxy reaches the workers (`upstream`; default `"tcp"`).
    pub upstream: Upstream,
}

/// How the proxy reaches the workers (`upstream` in the file).
///
/// Decided when each worker is started: a reload that changes it reaches the workers of the
/// next generation (a rolling restart); running workers keep their endpoint.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::*;
///
/// let mut spec = ClusterSpec::default();
/// spec.upstream = Upstream::Unix; // workers listen on Unix sockets (`SOCKET_PATH`)
/// assert_eq!(Upstream::ALL[1], ("unix", Upstream::Unix));
/// assert_eq!(spec.upstream.to_string(), "unix");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Upstream {
    /// A TCP port on 127.0.0.1 for each worker, given in `PORT` (and `HOST`).
    #[default]
    Tcp,
    /// A Unix socket for each worker, in a private directory of the cluster, given in
    /// `SOCKET_PATH` and `CLUSTER_SOCKET_PATH` (adapter-node listens there); no `PORT`.
    /// Saves the kernel's loopback TCP work on every request.
    Unix,
}

impl Upstream {
    /// Every kind, by name.
    pub const ALL: [(&'static str, Self); 2] = [("tcp", Self::Tcp), ("unix", Self::Unix)];
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::ALL.iter().find(|(_, u)| u == self).map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

/// The admin API and the control socket (`admin` in the file).
///
/// `Debug` shows [`token`](Self::token) as `"***"`, so a logged spec carries no secret.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::*;
///
/// let mut spec = ClusterSpec::default();
/// spec.admin.listen = Some("127.0.0.1:9090".parse().unwrap()); // the admin API on a port
/// spec.admin.token = Some("s3cret".into()); // required off the control socket
/// spec.admin.public_health = true; // `/api/admin/cluster/health` without the token
/// ```
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct AdminSpec {
    /// The bearer token that opens the admin routes on the front port and on
    /// [`listen`](Self::listen) (`admin.token` / `CLUSTER_ADMIN_TOKEN`): at least 16
    /// characters, no whitespace or control characters. `None` (the default): no admin
    /// route accepts a request that needs one.
    pub token: Option<String>,
    /// A listener of its own for the admin API (`admin.listen`, e.g. `"127.0.0.1:9090"`;
    /// `localhost` means 127.0.0.1; port 0 picks a free port). An address that is not a
    /// loopback address requires [`token`](Self::token). `None` (the default): no such
    /// listener.
    pub listen: Option<SocketAddr>,
    /// The health route answers without the token (`admin.publicHealth`; default false),
    /// e.g. for a load balancer's health check.
    pub public_health: bool,
    /// The health route answers 200 while at least this share of the desired workers is in
    /// rotation, in percent (`admin.minHealthyPercent`, above 0 and at most 100; default 50).
    pub min_healthy_percent: f64,
    /// How often the events stream sends a status snapshot (`admin.eventsInterval`, ms,
    /// 100 ms to one hour; default 2000).
    pub events_interval: Duration,
    /// The control socket's path (`admin.socket`), resolved as
    /// [`ClusterSpec::runtime_dir`] is; `None` (the default): `cluster.sock` in
    /// [`ClusterSpec::runtime_dir`]. [`ClusterSpec::control_socket`] gives the path either way.
    pub socket: Option<PathBuf>,
}

impl fmt::Debug for AdminSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminSpec")
            .field("token", &self.token.as_ref().map(|_| MASK))
            .field("listen", &self.listen)
            .field("public_health", &self.public_health)
            .field("min_healthy_percent", &self.min_healthy_percent)
            .field("events_interval", &self.events_interval)
            .field("socket", &self.socket)
            .finish()
    }
}

/// Autoscaling settings (`scaling` in the file).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::*;
///
/// let mut spec = ClusterSpec::default();
/// spec.scaling.auto_scale = true;
/// spec.scaling.min_workers = 2;
/// spec.scaling.max_workers = 8;
/// spec.scaling.cpu_threshold = 75.0;
/// spec.scaling.scale_up_after = Duration::from_secs(10);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScalingSpec {
    /// Scale between [`min_workers`](Self::min_workers) and [`max_workers`](Self::max_workers)
    /// on load (`autoScale`).
    pub auto_scale: bool,
    /// Lower bound (`minWorkers`).
    pub min_workers: usize,
    /// Upper bound (`maxWorkers`), at least `min_workers`; defaults to the largest of the
    /// CPU count, `workers` and `minWorkers`. [`ClusterSpec::workers`] is always within
    /// `min_workers..=max_workers`.
    pub max_workers: usize,
    /// Average CPU percent above which to add a worker (`cpuThreshold`, 1-100).
    pub cpu_threshold: f64,
    /// Memory percent of the limit above which to add a worker (`memoryThreshold`, 1-100).
    pub memory_threshold: f64,
    /// After any change in the number of workers, the autoscaler makes no decision for this
    /// long (`cooldown`, ms, at most one hour; default 30000).
    pub cooldown: Duration,
    /// A worker is added when a threshold has been exceeded on every health tick for this
    /// long (`scaleUpAfter`, ms, at most one hour; default 15000).
    pub scale_up_after: Duration,
    /// A worker is removed when the load has stayed below the thresholds for this long
    /// (`scaleDownAfter`, ms, at most one hour; default 60000).
    pub scale_down_after: Duration,
}

/// Proxy and recycling settings (`performance` in the file).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::*;
///
/// let mut spec = ClusterSpec::default();
/// spec.performance.request_timeout = Duration::from_secs(60);
/// spec.performance.max_requests_per_worker = Some(100_000); // recycle after that many
/// spec.performance.enable_compression = true;
/// spec.performance.proxy_threads = 2;
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PerformanceSpec {
    /// Recycle a worker after this many requests (`maxRequestsPerWorker`; `None` when 0).
    pub max_requests_per_worker: Option<u64>,
    /// Time allowed for a worker to send response headers before the client gets 504
    /// (`requestTimeout`, ms).
    pub request_timeout: Duration,
    /// How long an idle client keep-alive connection stays open (`keepAliveTimeout`, ms).
    pub keep_alive_timeout: Duration,
    /// Time allowed for a client to send a request's headers (`headerReadTimeout`, ms).
    pub header_read_timeout: Duration,
    /// How long an idle pooled connection to a worker is kept; must stay below the worker's
    /// own keep-alive timeout (Node's default is 5 s) (`upstreamIdleTimeout`, ms).
    pub upstream_idle_timeout: Duration,
    /// A worker that has just become ready gets a share of requests that ramps up to a full
    /// share over this window (`slowStartWindow`, ms; `None` when 0, the default), so a cold
    /// worker (empty caches, JIT not warmed up) is not handed a full share at once.
    pub slow_start_window: Option<Duration>,
    /// Threads that run the proxy (`proxyThreads`), each a single-threaded runtime accepting
    /// from the front socket. `"auto"` (the default) picks 1 on one CPU, 2 from two, then one
    /// per four CPUs (docs/proxy-threads.md has the measurements).
    pub proxy_threads: usize,
    /// Compress responses (`enableCompression`).
    pub enable_compression: bool,
    /// Compression level, 1-9 (`compressionLevel`), mapped onto each codec's own scale.
    pub compression_level: u32,
    /// Body, head and connection limits (`maxBodySize`, `maxHeaderSize`, `maxHeaders`,
    /// `maxConnections`).
    pub limits: super::RequestLimits,
    /// Responses whose `Content-Length` is below this many bytes are not compressed
    /// (`compressionMinSize`; default 1 KiB): the codec's framing and the CPU would cost
    /// more than the bytes saved. Bodies of unknown length are compressed.
    pub compression_min_size: u64,
}

/// Health-policy settings (`health` in the file): how workers are probed, judged and replaced.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::*;
///
/// let mut spec = ClusterSpec::default();
/// spec.health.probe_failures = 3; // out of rotation after 3 failed probes
/// spec.health.hard_memory_bytes = Some(1 << 30); // stopped at once above 1 GiB
/// spec.health.outlier_detection = true;
/// spec.health.leak_detection = true;
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HealthSpec {
    /// Longest wait for one active probe (`probeTimeout`, ms; defaults to
    /// `healthCheckInterval` within 500 ms to 2 s).
    pub probe_timeout: Duration,
    /// Failed probes in a row that take a worker out of rotation (`probeFailures`).
    pub probe_failures: u32,
    /// RSS above which a worker is killed at once, in bytes (`hardMemoryLimit`; defaults to
    /// 1.5 × `maxMemoryUsage`; `None` when set to 0).
    pub hard_memory_bytes: Option<u64>,
    /// Samples in a row over `maxMemoryUsage` before a recycle (`memorySamples`).
    pub memory_samples: u32,
    /// Minimum age of a worker before a memory recycle (`memoryMinAge`, ms), so that a limit
    /// set below what a worker needs to start cannot make it recycle in a loop.
    pub memory_min_age: Duration,
    /// The sliding window of the per-worker rates and error rate (`metricsWindow`, ms).
    pub metrics_window: Duration,
    /// Outlier ejection on error rate (`outlierDetection`).
    pub outlier_detection: bool,
    /// How far, in percentage points, a worker's error rate must stand above the median of
    /// its peers' for it to be ejected, and the lowest error rate that can be ejected
    /// (`outlierErrorRate`, default 20). Needs at least three workers: two peers to compare.
    pub outlier_error_rate: f64,
    /// Requests in the window needed to judge a worker (`outlierMinRequests`).
    pub outlier_min_requests: u64,
    /// Length of a first ejection; the n-th in a row lasts n times as long
    /// (`ejectionTime`, ms).
    pub ejection_time: Duration,
    /// Largest share of the workers out of rotation at once (failing probes included), past
    /// which nobody is ejected for its error rate, in percent (`maxEjectedPercent`).
    pub max_ejected_percent: f64,
    /// Recycles that may run at once (`maxConcurrentRecycles`).
    pub max_concurrent_recycles: usize,
    /// Time without a heartbeat after which a worker that sends heartbeats is replaced
    /// (`heartbeatTimeout`, ms; defaults to `unresponsiveTimeout`).
    pub heartbeat_timeout: Duration,
    /// Give each worker a Node IPC channel (`NODE_CHANNEL_FD`) for `process.send()`
    /// heartbeats (`nodeIpc`; `None`: only when the program is `node`).
    pub node_ipc: Option<bool>,
    /// Time between SIGTERM and SIGKILL for a worker judged unresponsive or that failed to
    /// start: it has no requests to drain (`unresponsiveGrace`, ms, at most one hour;
    /// default 2000).
    pub unresponsive_grace: Duration,
    /// Watch each worker's memory for leaks (`leakDetection`; default on): a worker
    /// whose RSS grows steadily over [`leak_window`](Self::leak_window) by at least
    /// [`leak_min_slope`](Self::leak_min_slope) gets a leak-warning event before any memory
    /// limit is reached.
    pub leak_detection: bool,
    /// The window over which RSS growth is judged (`leakWindow`, ms, 1 s to one hour;
    /// default 300000).
    pub leak_window: Duration,
    /// The least steady RSS growth reported as a leak, in MB per minute
    /// (`leakMinSlope`, above 0 and at most 1000000; default 1).
    pub leak_min_slope: f64,
}

/// Rolling-restart settings (`rollingRestart` in the file).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::*;
///
/// let mut spec = ClusterSpec::default();
/// spec.rolling_restart.max_surge = 2; // two replacements at a time
/// spec.rolling_restart.min_ready = Duration::from_secs(5); // each ready for 5 s before the next
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RollingRestartSpec {
    /// How many replacement workers a rolling restart starts at once
    /// (`maxSurge`, 1-1024; default 1).
    pub max_surge: usize,
    /// How long a replacement must stay ready before it takes over and the worker it replaces
    /// is retired (`minReady`, ms, 0-3600000; default 0, Kubernetes' `minReadySeconds`): a new
    /// build that crashes within it fails the rolling restart while the old worker still
    /// serves, and is rolled back.
    pub min_ready: Duration,
}

/// Front-door settings (`security` in the file).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::*;
///
/// let mut spec = ClusterSpec::default();
/// spec.security.enable_rate_limit = true;
/// spec.security.rate_limit_max = 100; // per client and window
/// spec.security.rate_limit_window = Duration::from_secs(60);
/// spec.security.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
/// spec.security.enable_request_logging = true;
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SecuritySpec {
    /// Limit requests per client address (`enableRateLimit`).
    pub enable_rate_limit: bool,
    /// Window of the rate limit (`rateLimitWindow`, ms).
    pub rate_limit_window: Duration,
    /// Requests allowed per client per window (`rateLimitMax`).
    pub rate_limit_max: u32,
    /// Peers whose `X-Forwarded-*` headers are trusted and extended rather than replaced
    /// (`trustedProxies`: addresses or CIDR blocks).
    pub trusted_proxies: Vec<IpNet>,
    /// Write the access log: one line per request once its response has been sent, as
    /// [`ClusterSpec::access_log`] says (`enableRequestLogging`; default off).
    pub enable_request_logging: bool,
    /// Where the rate limit's counters live (`rateLimitStore`).
    pub rate_limit_store: RateLimitStore,
    /// Path prefixes never rate limited (`rateLimitExempt`; by default the admin API, the
    /// dashboard and `healthCheckPath`).
    pub rate_limit_exempt: Vec<String>,
    /// Longest a request waits on Redis for its rate limit decision
    /// (`rateLimitRedisTimeout`, ms); a call that takes longer counts as a failure.
    pub rate_limit_redis_timeout: Duration,
    /// What the rate limit does while Redis is down (`rateLimitRedisFallback`).
    pub rate_limit_redis_fallback: RateLimitFallback,
}

/// The access log's settings (`accessLog` in the file). The log itself is on only when
/// [`SecuritySpec::enable_request_logging`] is (`security.enableRequestLogging`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::*;
///
/// let mut spec = ClusterSpec::default();
/// spec.security.enable_request_logging = true;
/// spec.access_log.format = AccessLogFormat::Json;
/// spec.access_log.path = AccessLogPath::Stdout;
/// spec.access_log.queue = 65_536;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessLogSpec {
    /// The line format (`accessLog.format`: `"combined"`, the default, or `"json"`).
    pub format: AccessLogFormat,
    /// Where lines go (`accessLog.path`; default `logs/access.log`, resolved as
    /// [`ClusterSpec::log_file`] is; `"stdout"` or `"-"` for the standard output).
    pub path: AccessLogPath,
    /// Lines that may wait for the writer thread (`accessLog.queue`, 1 to 1048576; default
    /// 16384). When the queue is full a line is dropped and counted, never waited for.
    pub queue: usize,
}

/// The format of access log lines.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::*;
///
/// let mut spec = ClusterSpec::default();
/// spec.access_log.format = AccessLogFormat::Json;
/// assert_eq!(spec.access_log.format.name(), "json");
/// assert_eq!(AccessLogFormat::ALL.map(AccessLogFormat::name), ["combined", "json"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AccessLogFormat {
    /// The Apache/nginx "combined" format, with the cluster's own fields appended.
    Combined,
    /// One JSON object per line.
    Json,
}

impl AccessLogFormat {
    /// Every format, as `accessLog.format` names them.
    pub const ALL: [AccessLogFormat; 2] = [AccessLogFormat::Combined, AccessLogFormat::Json];

    /// The name `accessLog.format` gives this format.
    pub fn name(self) -> &'static str {
        match self {
            AccessLogFormat::Combined => "combined",
            AccessLogFormat::Json => "json",
        }
    }
}

impl fmt::Display for AccessLogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where access log lines go.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::*;
///
/// let mut spec = ClusterSpec::default();
/// spec.access_log.path = AccessLogPath::File("/var/log/app/access.log".into());
/// assert_eq!(spec.access_log.path.to_string(), "/var/log/app/access.log");
/// assert_eq!(AccessLogPath::Stdout.to_string(), "stdout");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessLogPath {
    /// The primary's standard output (`"stdout"` or `"-"`).
    Stdout,
    /// A file, opened for appending (created with its directory), reopened on SIGUSR1.
    File(PathBuf),
}

impl fmt::Display for AccessLogPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessLogPath::Stdout => f.write_str("stdout"),
            AccessLogPath::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What each worker process runs.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::*;
///
/// let mut spec = ClusterSpec::default();
/// let command = &mut spec.command;
/// command.program = Some("node".into());
/// command.args = vec!["build/index.js".into()];
/// command.cwd = Some("/srv/app".into());
/// command.env.insert("ORIGIN".into(), "https://app.example.com".into());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerCommand {
    /// The program (`command`); `None` runs the built-in demo worker (the `cluster` binary
    /// re-executed in worker role).
    pub program: Option<PathBuf>,
    /// Its arguments (`args`).
    pub args: Vec<String>,
    /// Its working directory (`cwd`); `None` inherits the primary's.
    pub cwd: Option<PathBuf>,
    /// Extra environment (`env`), applied before the cluster's own variables (`PORT`,
    /// `HOST`, `CLUSTER_WORKER_ID`, `NODE_APP_INSTANCE`), which always win.
    pub env: BTreeMap<String, String>,
}

impl Default for ClusterSpec {
    /// The built-in defaults alone, as if loaded with no file, no environment and no flags:
    /// for embedding, where the embedder sets the fields it cares about.
    fn default() -> Self {
        super::load::defaults()
    }
}

impl ClusterSpec {
    /// The IP the front listener binds.
    pub fn host(&self) -> IpAddr {
        self.listen.ip()
    }

    /// The control socket's path: [`AdminSpec::socket`] if set, else `cluster.sock` in
    /// [`runtime_dir`](Self::runtime_dir).
    pub fn control_socket(&self) -> PathBuf {
        self.admin.socket.clone().unwrap_or_else(|| self.runtime_dir.join(CONTROL_SOCKET))
    }
}
