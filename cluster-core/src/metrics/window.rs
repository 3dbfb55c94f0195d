//! Rates over a sliding window, from counters read at each health tick.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::MetricsSnapshot;

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

/// One worker's counters at the ticks of the last `window`, giving rates over a window that
/// slides with each tick (not a fixed bucket that resets, which would make the error rate
/// jump to zero at each reset).
///
/// Bounded: samples older than the window are dropped, except the newest of them, which
/// anchors the window's start.
#[derive(Debug, Clone)]
pub(crate) struct RateWindow {
    window: Duration,
    samples: VecDeque<(Instant, Counters)>,
}

/// Rates over the sliding window ([`health.metricsWindow`](crate::config::HealthSpec)).
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
}

impl RateWindow {
    /// An empty window of length `window`.
    pub(crate) fn new(window: Duration) -> Self {
        RateWindow { window, samples: VecDeque::new() }
    }

    /// Records the counters read at `at` and returns the rates over the window ending there.
    pub(crate) fn push(&mut self, at: Instant, m: &MetricsSnapshot) -> WindowRates {
        self.samples.push_back((at, Counters::from(m)));
        let start = at.checked_sub(self.window);
        // Keep one sample at or before the window's start as its anchor.
        while self.samples.len() > 2 && start.is_some_and(|s| self.samples[1].0 <= s) {
            self.samples.pop_front();
        }
        self.rates()
    }

    fn rates(&self) -> WindowRates {
        let (Some((t0, first)), Some((t1, last))) = (self.samples.front(), self.samples.back())
        else {
            return WindowRates::default();
        };
        let span = t1.saturating_duration_since(*t0);
        if span.is_zero() {
            return WindowRates::default();
        }
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
        }
    }
}

impl WindowRates {
    /// The sum of several workers' rates (the error rate recomputed from the sums).
    pub(crate) fn total<'a>(all: impl IntoIterator<Item = &'a WindowRates>) -> WindowRates {
        let mut t = WindowRates::default();
        for r in all {
            t.window_ms = t.window_ms.max(r.window_ms);
            t.requests += r.requests;
            t.errors += r.errors;
            t.requests_per_sec += r.requests_per_sec;
            t.errors_per_sec += r.errors_per_sec;
            t.bytes_in_per_sec += r.bytes_in_per_sec;
            t.bytes_out_per_sec += r.bytes_out_per_sec;
        }
        t.error_rate = if t.requests == 0 { 0.0 } else { t.errors as f64 / t.requests as f64 };
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(requests: u64, errors: u64) -> MetricsSnapshot {
        MetricsSnapshot { requests, errors, bytes_out: requests * 10, ..MetricsSnapshot::default() }
    }

    #[test]
    fn rates_slide_with_the_window() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = RateWindow::new(s(10));
        assert_eq!(w.push(t0, &snap(0, 0)), WindowRates::default());
        let r = w.push(t0 + s(5), &snap(50, 5));
        assert_eq!((r.window_ms, r.requests, r.errors), (5_000, 50, 5));
        assert!((r.requests_per_sec - 10.0).abs() < 1e-9 && (r.error_rate - 0.1).abs() < 1e-9);
        assert!((r.bytes_out_per_sec - 100.0).abs() < 1e-9);
        w.push(t0 + s(10), &snap(100, 5));
        // 15 s: the sample at 0 s falls out; the window is anchored at 5 s.
        let r = w.push(t0 + s(15), &snap(100, 5));
        assert_eq!((r.window_ms, r.requests, r.errors), (10_000, 50, 0));
        assert_eq!(r.error_rate, 0.0);
        assert!(w.samples.len() <= 3);
    }

    #[test]
    fn a_restarted_counter_does_not_underflow() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(Duration::from_secs(10));
        w.push(t0, &snap(100, 10));
        let r = w.push(t0 + Duration::from_secs(1), &snap(5, 0));
        assert_eq!((r.requests, r.errors), (0, 0));
    }

    #[test]
    fn totals_sum_and_recompute_the_error_rate() {
        let a =
            WindowRates { requests: 90, errors: 0, requests_per_sec: 9.0, ..Default::default() };
        let b =
            WindowRates { requests: 10, errors: 10, requests_per_sec: 1.0, ..Default::default() };
        let t = WindowRates::total([&a, &b]);
        assert_eq!((t.requests, t.errors), (100, 10));
        assert!((t.error_rate - 0.1).abs() < 1e-9 && (t.requests_per_sec - 10.0).abs() < 1e-9);
    }
}
