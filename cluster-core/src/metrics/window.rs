//! Rates and latency percentiles over a sliding window, from counters and latency counts
//! read at each health tick.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::MetricsSnapshot;
use super::histogram::Counts;
use super::latency_delta::{LatencyDelta, LatencyTally};

/// The counters a [`RateWindow`] keeps, read from a [`MetricsSnapshot`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    requests: u64,
    errors: u64,
    bytes_in: u64,
    bytes_out: u64,
}

impl From<&MetricsSnapshot> for Counters {
    fn from(m: &MetricsSnapshot) -> Self {
        Counters {
            requests: m.requests,
            errors: m.errors,
            bytes_in: m.bytes_in,
            bytes_out: m.bytes_out,
        }
    }
}

/// What a [`RateWindow`] keeps of one tick.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    counters: Counters,
    /// The latencies recorded since the previous tick (emptied once the sample is the
    /// window's anchor: only the latencies after the anchor are in the window).
    latencies: LatencyDelta,
}

/// One worker's counters at the ticks of the last `window`, giving rates and latency
/// percentiles over a window that slides with each tick (not a fixed bucket that resets,
/// which would make the error rate jump to zero at each reset).
///
/// Bounded: samples older than the window are dropped, except the newest of them, which
/// anchors the window's start, so about `window / healthCheckInterval + 1` samples are kept
/// (3 at the defaults, 10 s and 5 s).
///
/// Latencies are kept sparse, never as a full histogram per sample: the last full reading
/// (608 counts, 4.75 KiB, one per worker, to take the next delta from) and, per sample after
/// the anchor, the buckets that gained latencies since the previous tick ([`LatencyDelta`],
/// 8 bytes an entry). The window's histogram is the sum of those deltas. Worst case, the
/// deltas hold `(samples - 1) × 608` entries, and never more entries than the window has
/// responses; typically a few dozen per sample, since a service's latencies fall in a few
/// octaves (at the defaults, under 10 KiB even if every bucket were hit).
#[derive(Debug, Clone)]
pub(crate) struct RateWindow {
    window: Duration,
    samples: VecDeque<Sample>,
    /// The latency counts read at the last tick, which the next tick's delta is taken from.
    last_reading: Counts,
}

/// Rates and latency percentiles over the sliding window
/// ([`health.metricsWindow`](crate::config::HealthSpec)), per worker or for the cluster.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// for worker in handle.status().await?.workers {
///     let r = &worker.rates; // over the last minute
///     println!("{:.1} req/s, error rate {:.3}, p50 {:?} ms", r.requests_per_sec, r.error_rate, r.latency_p50_ms);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WindowRates {
    /// Length of the window the rates were measured over, in milliseconds (shorter than the
    /// configured window while a worker is young).
    pub window_ms: u64,
    /// Requests completed or failed in the window.
    pub requests: u64,
    /// Errors (5xx, unreachable, timed out) in the window.
    pub errors: u64,
    /// Requests per second.
    pub requests_per_sec: f64,
    /// Errors per second.
    pub errors_per_sec: f64,
    /// Share of the window's requests that failed, 0 to 1 (0 without requests).
    pub error_rate: f64,
    /// Request body bytes per second, client to worker.
    pub bytes_in_per_sec: f64,
    /// Response body bytes per second, worker to client.
    pub bytes_out_per_sec: f64,
    /// Median latency (time to the response head) of the window's responses, in
    /// milliseconds, to within 6.25 % as the since-start percentiles; `None` without any.
    /// The cluster's is over all the workers' windows together.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile latency of the window's responses, in milliseconds, to within
    /// 6.25 %; `None` without any. The cluster's is over all the workers' windows together.
    pub latency_p99_ms: Option<f64>,
}

impl RateWindow {
    /// An empty window of length `window`.
    pub(crate) fn new(window: Duration) -> Self {
        RateWindow { window, samples: VecDeque::new(), last_reading: Counts::default() }
    }

    /// Records the counters `m` and the latency counts `latencies` read at `at` (the reading
    /// `m`'s percentiles were computed from) and returns the rates over the window ending
    /// there.
    pub(crate) fn push(
        &mut self,
        at: Instant,
        m: &MetricsSnapshot,
        latencies: Counts,
    ) -> WindowRates {
        let delta = LatencyDelta::between(&self.last_reading, &latencies);
        self.last_reading = latencies;
        self.samples.push_back(Sample { at, counters: Counters::from(m), latencies: delta });
        let start = at.checked_sub(self.window);
        // Keep one sample at or before the window's start as its anchor.
        while self.samples.len() > 2 && start.is_some_and(|s| self.samples[1].at <= s) {
            self.samples.pop_front();
        }
        if let Some(anchor) = self.samples.front_mut() {
            anchor.latencies = LatencyDelta::default();
        }
        self.rates()
    }

    /// Adds the latencies of the window (after its anchor) to `tally`.
    fn add_latencies(&self, tally: &mut LatencyTally) {
        for s in self.samples.iter().skip(1) {
            tally.add(&s.latencies);
        }
    }

    fn rates(&self) -> WindowRates {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return WindowRates::default();
        };
        let span = last.at.saturating_duration_since(first.at);
        if span.is_zero() {
            return WindowRates::default();
        }
        let (first, last) = (&first.counters, &last.counters);
        let mut latencies = LatencyTally::default();
        self.add_latencies(&mut latencies);
        let secs = span.as_secs_f64();
        let requests = last.requests.saturating_sub(first.requests);
        let errors = last.errors.saturating_sub(first.errors);
        let per_sec = |n: u64| n as f64 / secs;
        WindowRates {
            window_ms: span.as_millis() as u64,
            requests,
            errors,
            requests_per_sec: per_sec(requests),
            errors_per_sec: per_sec(errors),
            error_rate: if requests == 0 { 0.0 } else { errors as f64 / requests as f64 },
            bytes_in_per_sec: per_sec(last.bytes_in.saturating_sub(first.bytes_in)),
            bytes_out_per_sec: per_sec(last.bytes_out.saturating_sub(first.bytes_out)),
            latency_p50_ms: latencies.quantile_ms(0.50),
            latency_p99_ms: latencies.quantile_ms(0.99),
        }
    }
}

impl WindowRates {
    /// The cluster's rates from its workers' (each with the window they were computed
    /// from): the sum of the rates, the error rate recomputed from the sums, and the latency
    /// percentiles of all the windows' latencies together (not an average of percentiles).
    pub(crate) fn total<'a>(
        workers: impl IntoIterator<Item = (&'a WindowRates, &'a RateWindow)>,
    ) -> WindowRates {
        let mut t = WindowRates::default();
        let mut latencies = LatencyTally::default();
        for (r, window) in workers {
            window.add_latencies(&mut latencies);
            t.window_ms = t.window_ms.max(r.window_ms);
            t.requests += r.requests;
            t.errors += r.errors;
            t.requests_per_sec += r.requests_per_sec;
            t.errors_per_sec += r.errors_per_sec;
            t.bytes_in_per_sec += r.bytes_in_per_sec;
            t.bytes_out_per_sec += r.bytes_out_per_sec;
        }
        t.error_rate = if t.requests == 0 { 0.0 } else { t.errors as f64 / t.requests as f64 };
        t.latency_p50_ms = latencies.quantile_ms(0.50);
        t.latency_p99_ms = latencies.quantile_ms(0.99);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::super::histogram::LatencyHistogram;
    use super::*;

    fn snap(requests: u64, errors: u64) -> MetricsSnapshot {
        MetricsSnapshot { requests, errors, bytes_out: requests * 10, ..MetricsSnapshot::default() }
    }

    /// A worker's histogram and request counter, fed and read as the proxy and the tick do.
    #[derive(Default)]
    struct Worker {
        histogram: LatencyHistogram,
        requests: u64,
    }

    impl Worker {
        fn serve(&mut self, n: u64, latency: Duration) -> &mut Self {
            for _ in 0..n {
                self.histogram.record(latency);
            }
            self.requests += n;
            self
        }

        fn tick(&self, w: &mut RateWindow, at: Instant) -> WindowRates {
            w.push(at, &snap(self.requests, 0), self.histogram.read())
        }
    }

    /// Within one bucket (6.25 %) below `ms`.
    fn about(p: Option<f64>, ms: f64) -> bool {
        p.is_some_and(|p| p <= ms && p >= ms * (1.0 - 0.0625))
    }

    #[test]
    fn rates_slide_with_the_window() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let none = Counts::default;
        let mut w = RateWindow::new(s(10));
        assert_eq!(w.push(t0, &snap(0, 0), none()), WindowRates::default());
        let r = w.push(t0 + s(5), &snap(50, 5), none());
        assert_eq!((r.window_ms, r.requests, r.errors), (5_000, 50, 5));
        assert!((r.requests_per_sec - 10.0).abs() < 1e-9 && (r.error_rate - 0.1).abs() < 1e-9);
        assert!((r.bytes_out_per_sec - 100.0).abs() < 1e-9);
        w.push(t0 + s(10), &snap(100, 5), none());
        // 15 s: the sample at 0 s falls out; the window is anchored at 5 s.
        let r = w.push(t0 + s(15), &snap(100, 5), none());
        assert_eq!((r.window_ms, r.requests, r.errors), (10_000, 50, 0));
        assert_eq!(r.error_rate, 0.0);
        assert!(w.samples.len() <= 3);
    }

    #[test]
    fn a_restarted_counter_does_not_underflow() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(Duration::from_secs(10));
        let mut old = Worker::default();
        old.serve(100, Duration::from_millis(1));
        w.push(t0, &snap(100, 10), old.histogram.read());
        let mut fresh = Worker::default();
        fresh.serve(5, Duration::from_millis(1));
        let r = w.push(t0 + Duration::from_secs(1), &snap(5, 0), fresh.histogram.read());
        assert_eq!((r.requests, r.errors), (0, 0));
        assert_eq!((r.latency_p50_ms, r.latency_p99_ms), (None, None));
        // Counted again from the restarted reading, not from the old one's.
        fresh.serve(10, Duration::from_millis(8));
        let r = w.push(t0 + Duration::from_secs(2), &snap(15, 0), fresh.histogram.read());
        assert!(about(r.latency_p50_ms, 8.0) && about(r.latency_p99_ms, 8.0), "{r:?}");
    }

    #[test]
    fn windowed_percentiles_follow_the_window() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let (fast, slow) = (Duration::from_millis(2), Duration::from_millis(500));
        let mut w = RateWindow::new(s(10));
        let mut worker = Worker::default();
        // Slow requests before the first tick are the anchor's: never in a window.
        worker.serve(50, slow).tick(&mut w, t0);
        let r = worker.serve(99, fast).serve(1, slow).tick(&mut w, t0 + s(5));
        assert_eq!(r.requests, 100);
        assert!(about(r.latency_p50_ms, 2.0) && about(r.latency_p99_ms, 2.0), "{r:?}");
        let r = worker.serve(10, slow).tick(&mut w, t0 + s(10));
        // 0 to 10 s: 99 fast, 11 slow.
        assert!(about(r.latency_p50_ms, 2.0) && about(r.latency_p99_ms, 500.0), "{r:?}");
        let r = worker.serve(100, fast).tick(&mut w, t0 + s(15));
        // 5 to 15 s: 10 slow of 110, still over 1 %.
        assert!(about(r.latency_p99_ms, 500.0), "{r:?}");
        let r = worker.serve(100, fast).tick(&mut w, t0 + s(20));
        // 10 to 20 s: the slow ones fell out of the window; since start, they are still in.
        assert_eq!(r.requests, 200);
        assert!(about(r.latency_p50_ms, 2.0) && about(r.latency_p99_ms, 2.0), "{r:?}");
        let since_start = worker.histogram.quantile_us(0.99).unwrap();
        assert!(since_start >= 400_000, "{since_start}");
        // No request in the last window: no percentile.
        worker.tick(&mut w, t0 + s(25));
        let r = worker.tick(&mut w, t0 + s(30));
        assert_eq!((r.requests, r.latency_p50_ms, r.latency_p99_ms), (0, None, None));
    }

    #[test]
    fn sparse_deltas_stay_small() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(Duration::from_secs(10));
        let mut worker = Worker::default();
        let latencies = [800, 1_000, 1_200, 3_000, 45_000].map(Duration::from_micros);
        for tick in 0..20u64 {
            for (i, &l) in latencies.iter().enumerate() {
                worker.serve(1_000 + i as u64, l);
            }
            let r = worker.tick(&mut w, t0 + Duration::from_secs(5 * tick));
            if tick > 0 {
                // One tick's requests in the first window, two after.
                assert_eq!(r.requests, tick.min(2) * 5_010);
                assert!(about(r.latency_p99_ms, 45.0), "{r:?}");
            }
        }
        assert!(w.samples.len() <= 3);
        // The anchor keeps no delta; the others one entry per bucket hit (5), whatever the
        // number of requests.
        assert_eq!(w.samples[0].latencies.len(), 0);
        assert!(w.samples.iter().skip(1).all(|s| s.latencies.len() == latencies.len()));
    }

    #[test]
    fn no_request_no_percentile() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(Duration::from_secs(10));
        let worker = Worker::default();
        worker.tick(&mut w, t0);
        let r = worker.tick(&mut w, t0 + Duration::from_secs(5));
        assert_eq!((r.latency_p50_ms, r.latency_p99_ms), (None, None));
        let json = serde_json::to_value(r).unwrap();
        assert!(json["latencyP50Ms"].is_null() && json["latencyP99Ms"].is_null(), "{json}");
        // Failures only (no response, so no latency): still none.
        let r = w.push(t0 + Duration::from_secs(10), &snap(7, 7), worker.histogram.read());
        assert_eq!((r.requests, r.latency_p50_ms, r.latency_p99_ms), (7, None, None));
        let t = WindowRates::total([(&r, &w)]);
        assert_eq!((t.latency_p50_ms, t.latency_p99_ms), (None, None));
    }

    #[test]
    fn totals_sum_and_recompute_the_error_rate() {
        let a =
            WindowRates { requests: 90, errors: 0, requests_per_sec: 9.0, ..Default::default() };
        let b =
            WindowRates { requests: 10, errors: 10, requests_per_sec: 1.0, ..Default::default() };
        let none = RateWindow::new(Duration::from_secs(10));
        let t = WindowRates::total([(&a, &none), (&b, &none)]);
        assert_eq!((t.requests, t.errors), (100, 10));
        assert!((t.error_rate - 0.1).abs() < 1e-9 && (t.requests_per_sec - 10.0).abs() < 1e-9);
    }

    #[test]
    fn the_cluster_percentiles_merge_the_workers_windows() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let (mut wa, mut wb) = (RateWindow::new(s(10)), RateWindow::new(s(10)));
        let (mut fast, mut slow) = (Worker::default(), Worker::default());
        fast.tick(&mut wa, t0);
        slow.tick(&mut wb, t0);
        let ra = fast.serve(90, Duration::from_millis(1)).tick(&mut wa, t0 + s(5));
        let rb = slow.serve(10, Duration::from_millis(300)).tick(&mut wb, t0 + s(5));
        assert!(about(ra.latency_p99_ms, 1.0) && about(rb.latency_p50_ms, 300.0));
        let t = WindowRates::total([(&ra, &wa), (&rb, &wb)]);
        assert_eq!(t.requests, 100);
        // 90 fast and 10 slow: the median is fast, the 99th percentile slow (an average of
        // the workers' p99 would say about 150 ms).
        assert!(about(t.latency_p50_ms, 1.0), "{t:?}");
        assert!(about(t.latency_p99_ms, 300.0), "{t:?}");
        // 95 fast and 5 slow: the 99th percentile is still slow, the 90th would not be.
        let ra = fast.serve(95, Duration::from_millis(1)).tick(&mut wa, t0 + s(15));
        let rb = slow.serve(5, Duration::from_millis(300)).tick(&mut wb, t0 + s(15));
        let t = WindowRates::total([(&ra, &wa), (&rb, &wb)]);
        assert_eq!(t.requests, 100);
        assert!(about(t.latency_p50_ms, 1.0) && about(t.latency_p99_ms, 300.0), "{t:?}");
    }
}
