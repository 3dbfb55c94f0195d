//! [`CpuTracker`]: cumulative CPU time in, CPU percent out.

use std::time::{Duration, Instant};

/// One CPU figure for a worker, from a [`CpuTracker`].
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use cluster_health::CpuTracker;
///
/// let mut cpu = CpuTracker::new(Duration::from_secs(10));
/// let t0 = Instant::now();
/// assert!(cpu.update(Duration::from_secs(1), t0).is_none()); // the first figure is the baseline
/// let reading = cpu.update(Duration::from_millis(1500), t0 + Duration::from_secs(1)).unwrap();
/// assert!((reading.percent - 50.0).abs() < 1e-6); // half a core over that second
/// assert_eq!(cpu.smoothed(), Some(reading.smoothed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuReading {
    /// CPU used over the last interval, in percent of one core (over 100 for a tree that
    /// keeps several cores busy). Divide by the core count for a 0–100 share of the host.
    pub percent: f64,
    /// The same, smoothed by an exponentially weighted moving average with the tracker's time
    /// constant; this is what the `cpu` balancing strategy and the dashboard should show.
    pub smoothed: f64,
}

/// Turns successive cumulative CPU times of one worker into a CPU percent.
///
/// Pure: the caller passes the sample and the instant it was taken, so tests need no clock.
/// One tracker per worker, kept by the supervisor next to the worker.
///
/// The smoothing weighs each interval by its length (`1 - exp(-dt / tau)`), so an irregular
/// tick (a slow scan, a missed tick) does not skew the average.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use cluster_health::CpuTracker;
///
/// let mut cpu = CpuTracker::new(Duration::from_secs(10));
/// let t0 = Instant::now();
/// assert_eq!(cpu.update(Duration::from_millis(100), t0), None); // first sample: baseline
/// let r = cpu.update(Duration::from_millis(600), t0 + Duration::from_secs(1)).unwrap();
/// assert!((r.percent - 50.0).abs() < 1e-9);
/// assert_eq!(cpu.smoothed(), Some(r.smoothed)); // the first reading is its own average
/// ```
#[derive(Debug, Clone)]
pub struct CpuTracker {
    tau: Duration,
    last: Option<(Duration, Instant)>,
    smoothed: Option<f64>,
}

impl CpuTracker {
    /// A tracker whose smoothed value has time constant `tau` (for example 10 s).
    pub fn new(tau: Duration) -> Self {
        CpuTracker { tau, last: None, smoothed: None }
    }

    /// Feeds the cumulative CPU time `cpu_time` of the worker's tree, sampled at `at`.
    ///
    /// Returns `None` for the first sample, or when no wall time passed since the last one.
    /// When the cumulative time goes backwards (a child exited without being waited for, so its
    /// time left the tree), that interval counts as 0 % and the new value becomes the baseline.
    pub fn update(&mut self, cpu_time: Duration, at: Instant) -> Option<CpuReading> {
        let Some((prev_cpu, prev_at)) = self.last else {
            self.last = Some((cpu_time, at));
            return None;
        };
        let wall = at.checked_duration_since(prev_at)?.as_secs_f64();
        if wall <= 0.0 {
            return None;
        }
        self.last = Some((cpu_time, at));
        let used = cpu_time.checked_sub(prev_cpu).unwrap_or_default();
        let percent = 100.0 * used.as_secs_f64() / wall;
        let smoothed = match self.smoothed {
            None => percent,
            Some(_) if self.tau.is_zero() => percent,
            Some(prev) => {
                let alpha = 1.0 - (-wall / self.tau.as_secs_f64()).exp();
                prev + alpha * (percent - prev)
            }
        };
        self.smoothed = Some(smoothed);
        Some(CpuReading { percent, smoothed })
    }

    /// The last smoothed value, if there is one.
    pub fn smoothed(&self) -> Option<f64> {
        self.smoothed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn percent_is_cpu_over_wall_time_and_may_exceed_one_core() {
        let t0 = Instant::now();
        let mut c = CpuTracker::new(Duration::from_secs(10));
        assert_eq!(c.update(ms(0), t0), None);
        assert_eq!(c.update(ms(5), t0), None, "no wall time passed");
        let r = c.update(ms(2000), t0 + ms(1000)).unwrap();
        assert!((r.percent - 200.0).abs() < 1e-9);
        assert_eq!(r.smoothed, r.percent, "the first reading seeds the average");
    }

    #[test]
    fn smoothing_moves_towards_the_new_value_by_the_interval_weight() {
        let t0 = Instant::now();
        let mut c = CpuTracker::new(Duration::from_secs(10));
        c.update(ms(0), t0);
        c.update(ms(1000), t0 + ms(1000)); // 100 %
        let r = c.update(ms(1000), t0 + ms(2000)).unwrap(); // 0 %
        let alpha = 1.0 - (-0.1f64).exp();
        assert!((r.smoothed - (100.0 - alpha * 100.0)).abs() < 1e-9);
        assert_eq!(c.smoothed(), Some(r.smoothed));
    }

    #[test]
    fn a_shrinking_total_counts_as_idle_and_rebaselines() {
        let t0 = Instant::now();
        let mut c = CpuTracker::new(Duration::ZERO);
        c.update(ms(5000), t0);
        assert_eq!(c.update(ms(1000), t0 + ms(1000)).unwrap().percent, 0.0);
        assert!((c.update(ms(1500), t0 + ms(2000)).unwrap().percent - 50.0).abs() < 1e-9);
    }
}
