//! Per-worker request metrics, measured by the proxy with no help from the application.

mod histogram;
mod window;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use self::histogram::LatencyHistogram;
pub(crate) use self::window::RateWindow;
pub use self::window::WindowRates;

/// What the proxy has measured of one worker: requests, errors, bytes and latency.
///
/// Updated from the request path with relaxed atomics only (no lock), read by status.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    requests: AtomicU64,
    errors: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    latency: LatencyHistogram,
}

impl WorkerMetrics {
    /// A response head arrived from the worker after `latency`; a 5xx counts as an error.
    pub(crate) fn record_response(&self, status: u16, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency.record(latency);
    }

    /// The worker could not be reached, failed before answering or timed out.
    pub(crate) fn record_failure(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
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
        MetricsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            latency_mean_ms: self.latency.mean_us().map(|us| us / 1000.0),
            latency_p50_ms: self.latency.quantile_us(0.50).map(ms),
            latency_p90_ms: self.latency.quantile_us(0.90).map(ms),
            latency_p99_ms: self.latency.quantile_us(0.99).map(ms),
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A worker's metrics at one moment. Latencies are times to the response head, in
/// milliseconds, to within 6.25 %; `None` before the first response.
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
}
