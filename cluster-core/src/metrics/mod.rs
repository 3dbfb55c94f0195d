//! Per-worker request metrics, measured by the proxy with no help from the application.

mod histogram;
mod latency_delta;
mod window;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

pub(crate) use self::histogram::Counts;
use self::histogram::LatencyHistogram;
pub(crate) use self::window::RateWindow;
pub use self::window::WindowRates;

/// What the proxy has measured of one worker: requests, errors, bytes and latency.
///
/// Updated from the request path with relaxed atomics only (no lock), read by status.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # fn example(handle: ClusterHandle) {
/// for backend in handle.routes().backends() {
///     let snapshot = backend.metrics().snapshot();
///     println!("worker {}: {} requests", backend.id(), snapshot.requests);
/// }
/// # }
/// ```
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    requests: AtomicU64,
    errors: AtomicU64,
    /// Responses by status class, 1xx to 5xx.
    classes: [AtomicU64; 5],
    /// Failures without a response, by [`FailureKind`].
    failures: [AtomicU64; 4],
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    latency: LatencyHistogram,
}

/// How a request failed on a worker without a response from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// No connection (refused, reset before the request was written).
    Unreachable,
    /// The worker failed after the request was written, before answering.
    Failed,
    /// The worker answered something that is not a valid response.
    BadResponse,
    /// No response head within the request timeout.
    Timeout,
}

/// The upper bounds of the latency buckets given to Prometheus, in seconds.
///
/// # Examples
///
/// ```
/// use cluster_core::LATENCY_BUCKETS;
///
/// assert_eq!(LATENCY_BUCKETS.first(), Some(&0.001)); // 1 ms
/// assert!(LATENCY_BUCKETS.windows(2).all(|w| w[0] < w[1]));
/// ```
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

impl WorkerMetrics {
    /// A response head arrived from the worker after `latency`; a 5xx counts as an error.
    pub(crate) fn record_response(&self, status: u16, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class].fetch_add(1, Ordering::Relaxed);
        self.latency.record(latency);
    }

    /// The worker could not be reached, failed before answering or timed out.
    pub(crate) fn record_failure(&self, kind: FailureKind) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.failures[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `n` more request body bytes were read from a client and forwarded to the worker.
    pub(crate) fn add_bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    /// A response body of `n` bytes was passed on in full.
    pub(crate) fn add_bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// The figures so far.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.snapshot_and_latencies().0
    }

    /// The figures so far, and the latency counts their percentiles were computed from: the
    /// health tick keeps these for the sliding window's percentiles ([`RateWindow::push`])
    /// without reading the histogram a second time.
    pub(crate) fn snapshot_and_latencies(&self) -> (MetricsSnapshot, Counts) {
        let latency = self.latency.read();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let bounds_us = LATENCY_BUCKETS.map(|s| (s * 1e6) as u64);
        let snapshot = MetricsSnapshot {
            requests: load(&self.requests),
            errors: load(&self.errors),
            responses: ResponseClasses {
                informational: load(&self.classes[0]),
                success: load(&self.classes[1]),
                redirection: load(&self.classes[2]),
                client_error: load(&self.classes[3]),
                server_error: load(&self.classes[4]),
            },
            failures: FailureCounts {
                unreachable: load(&self.failures[FailureKind::Unreachable as usize]),
                failed: load(&self.failures[FailureKind::Failed as usize]),
                bad_response: load(&self.failures[FailureKind::BadResponse as usize]),
                timeout: load(&self.failures[FailureKind::Timeout as usize]),
            },
            bytes_in: load(&self.bytes_in),
            bytes_out: load(&self.bytes_out),
            latency_mean_ms: latency.mean_us().map(|us| us / 1000.0),
            latency_p50_ms: latency.quantile_us(0.50).map(ms),
            latency_p90_ms: latency.quantile_us(0.90).map(ms),
            latency_p99_ms: latency.quantile_us(0.99).map(ms),
            latency_histogram: LatencyBuckets {
                cumulative: latency.cumulative(&bounds_us),
                count: latency.total(),
                sum_seconds: latency.sum_us() as f64 / 1e6,
            },
        };
        (snapshot, latency)
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A worker's metrics at one moment. Latencies are times to the response head, in
/// milliseconds, to within 6.25 %; `None` before the first response.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// for worker in handle.status().await?.workers {
///     let m = &worker.metrics;
///     println!("{}: {} requests, {} errors, p99 {:?} ms", worker.worker_id, m.requests, m.errors, m.latency_p99_ms);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Requests completed or failed on the worker (`requestsHandled` in JSON, the original
    /// design's name).
    #[serde(rename = "requestsHandled")]
    pub requests: u64,
    /// 5xx responses plus requests that failed to reach it or timed out.
    pub errors: u64,
    /// Responses by status class.
    pub responses: ResponseClasses,
    /// Requests that got no response from it, by kind.
    pub failures: FailureCounts,
    /// Request body bytes read from clients and forwarded to the worker.
    pub bytes_in: u64,
    /// Response body bytes passed on to clients.
    pub bytes_out: u64,
    /// Mean latency.
    pub latency_mean_ms: Option<f64>,
    /// Median latency.
    pub latency_p50_ms: Option<f64>,
    /// 90th percentile latency.
    pub latency_p90_ms: Option<f64>,
    /// 99th percentile latency.
    pub latency_p99_ms: Option<f64>,
    /// Latencies counted at the bounds of [`LATENCY_BUCKETS`], for Prometheus (not in the
    /// status JSON).
    #[serde(skip)]
    pub latency_histogram: LatencyBuckets,
}

/// Responses by status class.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// for worker in handle.status().await?.workers {
///     let r = &worker.metrics.responses;
///     println!("2xx {} 4xx {} 5xx {}", r.success, r.client_error, r.server_error);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ResponseClasses {
    /// 1xx.
    #[serde(rename = "1xx")]
    pub informational: u64,
    /// 2xx.
    #[serde(rename = "2xx")]
    pub success: u64,
    /// 3xx.
    #[serde(rename = "3xx")]
    pub redirection: u64,
    /// 4xx.
    #[serde(rename = "4xx")]
    pub client_error: u64,
    /// 5xx.
    #[serde(rename = "5xx")]
    pub server_error: u64,
}

/// Requests that got no response from a worker, by kind.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// for worker in handle.status().await?.workers {
///     let f = &worker.metrics.failures;
///     println!("unreachable {} timeout {}", f.unreachable, f.timeout);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FailureCounts {
    /// No connection to it (refused, or closed before the request was written).
    pub unreachable: u64,
    /// It failed after the request was written, before answering.
    pub failed: u64,
    /// It answered something that is not a valid HTTP response.
    pub bad_response: u64,
    /// No response head within `performance.requestTimeout` (the client got 504).
    pub timeout: u64,
}

/// Time to response head, as a Prometheus histogram: cumulative counts at the bounds of
/// [`LATENCY_BUCKETS`] (to within one internal bucket, 6.25 %), the count and the sum.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// for worker in handle.status().await?.workers {
///     let h = &worker.metrics.latency_histogram; // cumulative, Prometheus style
///     for (le, n) in cluster_core::LATENCY_BUCKETS.iter().zip(&h.cumulative) {
///         println!("le={le} {n}");
///     }
///     println!("count {} sum {:.3} s", h.count, h.sum_seconds);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LatencyBuckets {
    /// Latencies at or below each bound of [`LATENCY_BUCKETS`].
    pub cumulative: Vec<u64>,
    /// All latencies counted (the `+Inf` bucket).
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
}
