//! [`LeakDetector`]: steady growth of a worker's memory, told apart from steps and sawtooths.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// Bytes in a MiB, the unit of the slope.
const MIB: f64 = 1024.0 * 1024.0;

/// The most samples a [`LeakState`] holds, whatever the sampling rate.
const MAX_SAMPLES: usize = 512;

/// Warns when a worker's RSS grows steadily: a leak, seen long before it reaches a limit.
///
/// Rules, applied by [`observe`](Self::observe) to the samples of the last `window`:
///
/// - The samples must span at least 90 % of `window` and number at least `min_samples` (and
///   at least 3), so a young worker or a short history is not judged.
/// - The least-squares slope must be at least `min_slope_mb_per_min` MiB (1024 × 1024 bytes)
///   per minute, and its R² at least `min_r2`: the growth is close to a line.
/// - At least `min_rising_share` of the differences between consecutive samples must be
///   increases. A one-off step (a spike, a cache filling once) has a steep slope and a fair
///   R² but mostly flat differences: it is not a leak. A garbage-collected heap (a sawtooth)
///   has a slope near zero over a window of several cycles.
/// - It warns once; it re-arms only after the slope falls below half of
///   `min_slope_mb_per_min`, so a growing worker is not reported on every tick and a slope
///   wavering around the threshold is not reported twice.
///
/// A memory limit only acts when it is reached, by replacing the worker; this warning comes
/// earlier, with the slope and the time left ([`LeakWarning::minutes_to_limit`]), so people
/// can look for the leak before the restarts hide it.
///
/// # Caveats
///
/// The share of rising differences is taken sample to sample: noise larger than the growth
/// between two samples (a slow leak sampled often on a noisy heap) lowers it and hides the
/// leak. Samples closer than `window / 512` to the previous one are not kept, which bounds
/// that effect only at very high rates; lower `min_rising_share` for noisy workers.
///
/// # Examples
///
/// A worker that grows 2 MB a minute, sampled every 30 s:
///
/// ```
/// use std::time::{Duration, Instant};
/// use cluster_health::{LeakDetector, LeakState};
///
/// let detector = LeakDetector::default(); // 5 min window, 1 MB/min at least
/// let mut state = LeakState::default();
/// let start = Instant::now();
/// let mut warnings = Vec::new();
/// for i in 0..20u64 {
///     let at = start + Duration::from_secs(30 * i);
///     let rss = (100 << 20) + i * (1 << 20); // +1 MB per 30 s
///     warnings.extend(detector.observe(&mut state, at, rss, Some(1 << 30)));
/// }
/// assert_eq!(warnings.len(), 1, "one warning, not one per sample");
/// assert!(state.warned());
/// let warning = &warnings[0];
/// assert!((warning.slope_mb_per_min - 2.0).abs() < 0.1);
/// assert!(warning.minutes_to_limit.is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LeakDetector {
    /// How far back the samples are judged.
    pub window: Duration,
    /// The lowest slope that is a leak, in MiB per minute.
    pub min_slope_mb_per_min: f64,
    /// The lowest R² of the least-squares line that is a leak (0 to 1).
    pub min_r2: f64,
    /// The lowest share of consecutive differences that must be increases (0 to 1).
    pub min_rising_share: f64,
    /// Samples needed in the window before judging.
    pub min_samples: usize,
}

impl Default for LeakDetector {
    /// A 5 min window, 1 MiB/min, R² 0.8, two thirds rising, 6 samples.
    fn default() -> Self {
        LeakDetector {
            window: Duration::from_secs(300),
            min_slope_mb_per_min: 1.0,
            min_r2: 0.8,
            min_rising_share: 2.0 / 3.0,
            min_samples: 6,
        }
    }
}

/// What a [`LeakDetector`] remembers about one worker: its samples inside the window (at most
/// 512 of them, at least `window / 512` apart) and whether a warning is out. Owned by the
/// caller; a replaced worker starts with a new one.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use cluster_health::{LeakDetector, LeakState};
///
/// let detector = LeakDetector::default();
/// let mut state = LeakState::default();
/// let start = Instant::now();
/// // A step (a cache filled once) is not a leak.
/// for i in 0..20u64 {
///     let rss = if i < 10 { 100 << 20 } else { 300 << 20 };
///     assert!(detector.observe(&mut state, start + Duration::from_secs(30 * i), rss, None).is_none());
/// }
/// assert!(!state.warned());
/// ```
#[derive(Debug, Clone, Default)]
pub struct LeakState {
    samples: VecDeque<(Instant, u64)>,
    warned: bool,
}

impl LeakState {
    /// Whether a warning is out and not yet re-armed.
    pub fn warned(&self) -> bool {
        self.warned
    }
}

/// A worker's memory grows steadily; its `Display` is for people.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use cluster_health::{LeakDetector, LeakState};
///
/// let detector = LeakDetector::default();
/// let mut state = LeakState::default();
/// let start = Instant::now();
/// // A step (a cache filled once) is not a leak.
/// for i in 0..20u64 {
///     let rss = if i < 10 { 100 << 20 } else { 300 << 20 };
///     assert!(detector.observe(&mut state, start + Duration::from_secs(30 * i), rss, None).is_none());
/// }
/// assert!(!state.warned());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LeakWarning {
    /// The least-squares slope over the window, in MiB per minute.
    pub slope_mb_per_min: f64,
    /// The RSS at the sample that raised the warning, in bytes.
    pub rss_bytes: u64,
    /// How close the samples are to the line (0 to 1).
    pub r2: f64,
    /// The window the slope was measured over.
    pub window: Duration,
    /// Minutes until the limit at this slope, when a limit was given and is not yet reached.
    pub minutes_to_limit: Option<f64>,
}

/// The least-squares line through a worker's samples.
struct Fit {
    slope_mb_per_min: f64,
    r2: f64,
    rising_share: f64,
}

impl LeakDetector {
    /// Records the worker's RSS `rss_bytes` at `at` in `state` and judges its samples; returns
    /// a warning when the rules above say it leaks and none is out yet. `limit_bytes` (the hard
    /// memory limit, say) only sets [`LeakWarning::minutes_to_limit`].
    ///
    /// A sample earlier than the last one kept, or closer to it than `window / 512`, is not
    /// kept and gives `None`: the state, and so the judgement, are unchanged.
    pub fn observe(
        &self,
        state: &mut LeakState,
        at: Instant,
        rss_bytes: u64,
        limit_bytes: Option<u64>,
    ) -> Option<LeakWarning> {
        let min_gap = self.window / MAX_SAMPLES as u32;
        if let Some(&(last, _)) = state.samples.back() {
            if at < last || at.duration_since(last) < min_gap {
                return None;
            }
        }
        state.samples.push_back((at, rss_bytes));
        while let Some(&(first, _)) = state.samples.front() {
            if at.duration_since(first) <= self.window && state.samples.len() <= MAX_SAMPLES {
                break;
            }
            state.samples.pop_front();
        }

        let fit = fit(&state.samples)?;
        if state.warned {
            state.warned = fit.slope_mb_per_min >= self.min_slope_mb_per_min / 2.0;
            return None;
        }
        let span = at.duration_since(state.samples.front()?.0);
        let leaking = span.as_nanos() * 10 >= self.window.as_nanos() * 9
            && state.samples.len() >= self.min_samples.max(3)
            && fit.slope_mb_per_min >= self.min_slope_mb_per_min
            && fit.r2 >= self.min_r2
            && fit.rising_share >= self.min_rising_share;
        if !leaking {
            return None;
        }
        state.warned = true;
        let bytes_per_min = fit.slope_mb_per_min * MIB;
        let minutes_to_limit = limit_bytes
            .filter(|&limit| limit > rss_bytes && bytes_per_min > 0.0)
            .map(|limit| (limit - rss_bytes) as f64 / bytes_per_min);
        Some(LeakWarning {
            slope_mb_per_min: fit.slope_mb_per_min,
            rss_bytes,
            r2: fit.r2,
            window: self.window,
            minutes_to_limit,
        })
    }
}

/// The least-squares line through `samples` (x in minutes, y in MiB), or `None` with fewer
/// than two distinct instants.
fn fit(samples: &VecDeque<(Instant, u64)>) -> Option<Fit> {
    let &(t0, _) = samples.front()?;
    let points: Vec<(f64, f64)> = samples
        .iter()
        .map(|&(t, rss)| (t.duration_since(t0).as_secs_f64() / 60.0, rss as f64 / MIB))
        .collect();
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in &points {
        let (dx, dy) = (x - mean_x, y - mean_y);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if sxx <= 0.0 {
        return None;
    }
    let r2 = if syy > 0.0 { (sxy * sxy / (sxx * syy)).clamp(0.0, 1.0) } else { 0.0 };
    let rising = samples.iter().zip(samples.iter().skip(1)).filter(|(a, b)| b.1 > a.1).count();
    Some(Fit { slope_mb_per_min: sxy / sxx, r2, rising_share: rising as f64 / (n - 1.0) })
}

impl fmt::Display for LeakWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory grows {:.1} MiB/min (R² {:.2}) over {} s, now {:.1} MiB",
            self.slope_mb_per_min,
            self.r2,
            self.window.as_secs(),
            self.rss_bytes as f64 / MIB
        )?;
        if let Some(minutes) = self.minutes_to_limit {
            write!(f, "; the limit in about {minutes:.0} min")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "leak_tests.rs"]
mod tests;
