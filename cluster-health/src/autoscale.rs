//! [`AutoscalePolicy`]: when to add a worker or remove one, from the cluster's average load.

use std::fmt;
use std::time::{Duration, Instant};

/// Decides, one [`LoadSample`] at a time, whether the cluster should have a worker more or fewer.
///
/// Rules, applied by [`decide`](Self::decide) in this order:
///
/// 1. **Cooldown.** For `cooldown` after any change of the worker count (one it decided, or one
///    recorded with [`AutoscaleState::note_change`], such as a manual `scale`) the answer is
///    [`AutoscaleDecision::Hold`]. Samples still feed the timers, so a load that stayed high
///    through the cooldown adds a worker as soon as it ends.
/// 2. **Bounds.** A count outside `min_workers..=max_workers` (the bounds were changed) moves
///    one step toward the range at once, whatever the load ([`Trigger::Bounds`]). A
///    `max_workers` below `min_workers` counts as `min_workers`.
/// 3. **Partial figures.** While `ready != workers` workers are starting or stopping and the
///    average covers only some of them: hold, and reset the timers. Likewise with no CPU figure.
/// 4. **Up.** When the average CPU is above `cpu_threshold`, or the average RSS is above
///    `memory_threshold` % of `memory_limit_bytes` (judged only when the limit is not 0 and an
///    RSS figure exists), on every sample for `scale_up_after` (a sample not above restarts the
///    timer), and there are fewer than `max_workers`: one worker more.
/// 5. **Down.** When the *projected* average after removing one worker, `avg × n / (n − 1)`, is
///    below `threshold × scale_down_margin` for CPU and, when judged, for memory, on every
///    sample for `scale_down_after`, and there are more than `min_workers`: one worker fewer.
///    With one worker there is no projection, so load never scales to zero (`min_workers`
///    may still be 0 for a count set by hand).
///
/// The count changes by one at a time; after a change the state records it itself (the
/// cooldown starts at `now`).
///
/// Why a projection: judging the current average against a low threshold flaps. Three cores of
/// work over four workers is 75 %, under an 80 % threshold; remove one and it is 100 %, above
/// it, so a worker comes back, and so on. Removing one only when the figure *after* removal
/// stays under `threshold × margin` makes that impossible: right after a scale-up the
/// projected figure is the one that triggered it, above the band.
///
/// Memory is projected the same way, which assumes it follows the load. Memory that does not
/// (caches, heaps that never shrink) keeps the projection high and blocks scale-down: that is
/// conservative by design, since removing a worker never frees memory the others hold. A
/// `memory_threshold` of 100 makes memory matter only past the limit; a `memory_limit_bytes`
/// of 0 leaves it out.
///
/// # Examples
///
/// Two to eight workers, one more after 15 s above 80 % CPU:
///
/// ```
/// use std::time::{Duration, Instant};
/// use cluster_health::{AutoscaleDecision, AutoscalePolicy, AutoscaleState, LoadSample, Trigger};
///
/// let policy = AutoscalePolicy { min_workers: 2, max_workers: 8, ..AutoscalePolicy::default() };
/// let mut state = AutoscaleState::default();
/// let busy = LoadSample { workers: 2, ready: 2, avg_cpu_percent: Some(95.0), avg_rss_bytes: None };
/// let start = Instant::now();
/// assert_eq!(policy.decide(&mut state, &busy, start), AutoscaleDecision::Hold); // not sustained yet
/// match policy.decide(&mut state, &busy, start + Duration::from_secs(16)) {
///     AutoscaleDecision::ScaleUp { from: 2, to: 3, reason } => {
///         assert_eq!(reason.trigger, Trigger::Cpu);
///         assert!(reason.sustained >= Duration::from_secs(15));
///     }
///     other => panic!("expected one more worker, got {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscalePolicy {
    /// Fewest workers.
    pub min_workers: usize,
    /// Most workers (at least `min_workers` in effect).
    pub max_workers: usize,
    /// Average CPU of the ready workers above which to add one, in percent of one core (a
    /// worker using 1.5 cores is at 150 %).
    pub cpu_threshold: f64,
    /// Average RSS of the ready workers, in percent of `memory_limit_bytes`, above which to
    /// add one.
    pub memory_threshold: f64,
    /// The per-worker memory limit (`maxMemoryUsage`) the memory threshold is a percent of;
    /// 0: memory is not judged.
    pub memory_limit_bytes: u64,
    /// How long a threshold must be exceeded, on every sample, before a worker is added.
    pub scale_up_after: Duration,
    /// How long the load must stay low, on every sample, before a worker is removed.
    pub scale_down_after: Duration,
    /// No decision for this long after any change of the worker count.
    pub cooldown: Duration,
    /// The hysteresis band: a worker is removed only while the projected average stays below
    /// `threshold × scale_down_margin` (clamped to 0..=1).
    pub scale_down_margin: f64,
}

impl Default for AutoscalePolicy {
    /// One worker (min = max = 1: no scaling until the bounds are set), CPU 80 %, memory 85 %
    /// of no limit (not judged), up after 15 s, down after 60 s, cooldown 30 s, margin 0.7.
    fn default() -> Self {
        AutoscalePolicy {
            min_workers: 1,
            max_workers: 1,
            cpu_threshold: 80.0,
            memory_threshold: 85.0,
            memory_limit_bytes: 0,
            scale_up_after: Duration::from_secs(15),
            scale_down_after: Duration::from_secs(60),
            cooldown: Duration::from_secs(30),
            scale_down_margin: 0.7,
        }
    }
}

/// What an [`AutoscalePolicy`] remembers between samples: since when the load has been above
/// a threshold, since when it has been low, and when the worker count last changed. Owned by
/// the caller; one per cluster.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use cluster_health::{AutoscaleDecision, AutoscalePolicy, AutoscaleState, LoadSample};
///
/// let policy = AutoscalePolicy { min_workers: 1, max_workers: 4, ..AutoscalePolicy::default() };
/// let mut state = AutoscaleState::default();
/// let now = Instant::now();
/// state.note_change(now); // an operator scaled by hand: the cooldown starts now
/// let busy = LoadSample { workers: 2, ready: 2, avg_cpu_percent: Some(99.0), avg_rss_bytes: None };
/// let soon = now + Duration::from_secs(20); // sustained, but within the 30 s cooldown
/// policy.decide(&mut state, &busy, now);
/// assert_eq!(policy.decide(&mut state, &busy, soon), AutoscaleDecision::Hold);
/// ```
#[derive(Debug, Clone, Default)]
pub struct AutoscaleState {
    above_since: Option<Instant>,
    low_since: Option<Instant>,
    last_change: Option<Instant>,
}

impl AutoscaleState {
    /// Records a change of the worker count made by anyone at `at`: starts the cooldown and
    /// resets the timers. [`AutoscalePolicy::decide`] calls it for its own changes; the caller
    /// calls it for the others (a manual `scale`), so the autoscaler does not undo them at once.
    pub fn note_change(&mut self, at: Instant) {
        *self = AutoscaleState { last_change: Some(at), ..AutoscaleState::default() };
    }
}

/// One sample of the cluster's load, taken on the health tick.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use cluster_health::{AutoscaleDecision, AutoscalePolicy, AutoscaleState, LoadSample};
///
/// let policy = AutoscalePolicy { min_workers: 2, max_workers: 4, ..AutoscalePolicy::default() };
/// // Four workers at 10 % CPU, 200 MB each: low, but not for 60 s yet.
/// let sample = LoadSample { workers: 4, ready: 4, avg_cpu_percent: Some(10.0), avg_rss_bytes: Some(200 << 20) };
/// let decision = policy.decide(&mut AutoscaleState::default(), &sample, Instant::now());
/// assert!(matches!(decision, AutoscaleDecision::Hold));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadSample {
    /// The current target worker count.
    pub workers: usize,
    /// Workers ready and sampled; the averages cover these.
    pub ready: usize,
    /// Average CPU of the ready workers, in percent of one core.
    pub avg_cpu_percent: Option<f64>,
    /// Average RSS of the ready workers' process trees, in bytes.
    pub avg_rss_bytes: Option<u64>,
}

/// What [`AutoscalePolicy::decide`] wants done.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use cluster_health::{AutoscaleDecision, AutoscalePolicy, AutoscaleState, LoadSample};
///
/// let policy = AutoscalePolicy { min_workers: 2, max_workers: 4, ..AutoscalePolicy::default() };
/// // Four workers at 10 % CPU, 200 MB each: low, but not for 60 s yet.
/// let sample = LoadSample { workers: 4, ready: 4, avg_cpu_percent: Some(10.0), avg_rss_bytes: Some(200 << 20) };
/// let decision = policy.decide(&mut AutoscaleState::default(), &sample, Instant::now());
/// assert!(matches!(decision, AutoscaleDecision::Hold));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AutoscaleDecision {
    /// Keep the worker count.
    Hold,
    /// Start one worker: `to` is `from + 1`.
    ScaleUp {
        /// The count before.
        from: usize,
        /// The count wanted.
        to: usize,
        /// The figures behind it.
        reason: ScaleReason,
    },
    /// Stop one worker gracefully: `to` is `from - 1`.
    ScaleDown {
        /// The count before.
        from: usize,
        /// The count wanted.
        to: usize,
        /// The figures behind it.
        reason: ScaleReason,
    },
}

/// What set off a scaling decision.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use cluster_health::{AutoscaleDecision, AutoscalePolicy, AutoscaleState, LoadSample, Trigger};
///
/// let policy = AutoscalePolicy { min_workers: 3, max_workers: 6, ..AutoscalePolicy::default() };
/// // Below the minimum (a crash, a manual scale): back up at once, whatever the load.
/// let sample = LoadSample { workers: 2, ready: 2, avg_cpu_percent: None, avg_rss_bytes: None };
/// let decision = policy.decide(&mut AutoscaleState::default(), &sample, Instant::now());
/// let AutoscaleDecision::ScaleUp { reason, .. } = decision else { panic!("{decision:?}") };
/// assert!(matches!(reason.trigger, Trigger::Bounds { .. }));
/// assert_eq!(reason.sustained, Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trigger {
    /// The average CPU stayed above its threshold.
    Cpu,
    /// The average memory stayed above its threshold.
    Memory,
    /// The projected load with one worker fewer stayed under the band.
    Low,
    /// The count was outside these bounds (they were changed).
    Bounds {
        /// `min_workers`.
        min: usize,
        /// `max_workers` in effect.
        max: usize,
    },
}

/// The figures behind a scaling decision, for the event log; its `Display` is for people.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use cluster_health::{AutoscaleDecision, AutoscalePolicy, AutoscaleState, LoadSample, Trigger};
///
/// let policy = AutoscalePolicy { min_workers: 3, max_workers: 6, ..AutoscalePolicy::default() };
/// // Below the minimum (a crash, a manual scale): back up at once, whatever the load.
/// let sample = LoadSample { workers: 2, ready: 2, avg_cpu_percent: None, avg_rss_bytes: None };
/// let decision = policy.decide(&mut AutoscaleState::default(), &sample, Instant::now());
/// let AutoscaleDecision::ScaleUp { reason, .. } = decision else { panic!("{decision:?}") };
/// assert!(matches!(reason.trigger, Trigger::Bounds { .. }));
/// assert_eq!(reason.sustained, Duration::ZERO);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleReason {
    /// What set it off.
    pub trigger: Trigger,
    /// The average CPU, in percent of one core.
    pub avg_cpu_percent: Option<f64>,
    /// The average RSS in percent of the memory limit, when memory is judged.
    pub memory_percent: Option<f64>,
    /// The average CPU projected with one worker fewer.
    pub projected_cpu_percent: Option<f64>,
    /// The memory percent projected with one worker fewer, when memory is judged.
    pub projected_memory_percent: Option<f64>,
    /// The threshold crossed: a percent for [`Trigger::Cpu`] and [`Trigger::Memory`], the CPU
    /// band (`cpu_threshold × margin`) for [`Trigger::Low`], the bound for [`Trigger::Bounds`].
    pub threshold: f64,
    /// How long the condition held (zero for [`Trigger::Bounds`]).
    pub sustained: Duration,
}

impl AutoscalePolicy {
    /// Judges `sample` at `now` against the rules above, advances `state`, and records the
    /// change in it when the answer is not [`AutoscaleDecision::Hold`]. Deterministic: the
    /// same policy, state, sample and instant give the same result.
    pub fn decide(
        &self,
        state: &mut AutoscaleState,
        sample: &LoadSample,
        now: Instant,
    ) -> AutoscaleDecision {
        let decision = self.judge(state, sample, now);
        if decision != AutoscaleDecision::Hold {
            state.note_change(now);
        }
        decision
    }

    fn judge(&self, state: &mut AutoscaleState, s: &LoadSample, now: Instant) -> AutoscaleDecision {
        let (min, max) = (self.min_workers, self.max_workers.max(self.min_workers));
        let n = s.workers;
        let cooling =
            state.last_change.is_some_and(|t| now.saturating_duration_since(t) < self.cooldown);
        let memory = s
            .avg_rss_bytes
            .filter(|_| self.memory_limit_bytes > 0)
            .map(|rss| rss as f64 * 100.0 / self.memory_limit_bytes as f64);
        let fewer = |v: f64| (n > 1 && s.ready == n).then(|| v * n as f64 / (n - 1) as f64);
        let mut reason = ScaleReason {
            trigger: Trigger::Low,
            avg_cpu_percent: s.avg_cpu_percent,
            memory_percent: memory,
            projected_cpu_percent: s.avg_cpu_percent.and_then(fewer),
            projected_memory_percent: memory.and_then(fewer),
            threshold: 0.0,
            sustained: Duration::ZERO,
        };

        if !cooling && (n < min || n > max) {
            reason.trigger = Trigger::Bounds { min, max };
            return if n < min {
                reason.threshold = min as f64;
                AutoscaleDecision::ScaleUp { from: n, to: n + 1, reason }
            } else {
                reason.threshold = max as f64;
                AutoscaleDecision::ScaleDown { from: n, to: n - 1, reason }
            };
        }
        let Some(cpu) = s.avg_cpu_percent.filter(|_| s.ready == n) else {
            state.above_since = None;
            state.low_since = None;
            return AutoscaleDecision::Hold;
        };

        let cpu_high = cpu > self.cpu_threshold;
        let high = cpu_high || memory.is_some_and(|m| m > self.memory_threshold);
        let margin = self.scale_down_margin.clamp(0.0, 1.0);
        let under = |p: Option<f64>, threshold: f64| p.is_some_and(|p| p < threshold * margin);
        let low = under(reason.projected_cpu_percent, self.cpu_threshold)
            && (memory.is_none() || under(reason.projected_memory_percent, self.memory_threshold));
        state.above_since = high.then(|| state.above_since.unwrap_or(now));
        state.low_since = low.then(|| state.low_since.unwrap_or(now));
        if cooling {
            return AutoscaleDecision::Hold;
        }

        let held = |since: Option<Instant>, after: Duration| {
            since.map(|t| now.saturating_duration_since(t)).filter(|d| *d >= after)
        };
        if let Some(sustained) = held(state.above_since, self.scale_up_after).filter(|_| n < max) {
            (reason.trigger, reason.threshold) = if cpu_high {
                (Trigger::Cpu, self.cpu_threshold)
            } else {
                (Trigger::Memory, self.memory_threshold)
            };
            reason.sustained = sustained;
            return AutoscaleDecision::ScaleUp { from: n, to: n + 1, reason };
        }
        if let Some(sustained) = held(state.low_since, self.scale_down_after).filter(|_| n > min) {
            reason.threshold = self.cpu_threshold * margin;
            reason.sustained = sustained;
            return AutoscaleDecision::ScaleDown { from: n, to: n - 1, reason };
        }
        AutoscaleDecision::Hold
    }
}

impl fmt::Display for AutoscaleDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AutoscaleDecision::Hold => f.write_str("hold"),
            AutoscaleDecision::ScaleUp { from, to, reason } => {
                write!(f, "scale up from {from} to {to} workers: {reason}")
            }
            AutoscaleDecision::ScaleDown { from, to, reason } => {
                write!(f, "scale down from {from} to {to} workers: {reason}")
            }
        }
    }
}

impl fmt::Display for ScaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |v: Option<f64>| v.map_or_else(|| "?".to_owned(), |v| format!("{v:.1}"));
        let (cpu, mem) = (pct(self.avg_cpu_percent), pct(self.memory_percent));
        let (threshold, secs) = (short(self.threshold), short(self.sustained.as_secs_f64()));
        let held = format!("{threshold} % for {secs} s");
        match self.trigger {
            Trigger::Cpu => write!(f, "average CPU {cpu} % of a core above {held}"),
            Trigger::Memory => write!(f, "average memory {mem} % of the limit above {held}"),
            Trigger::Low => {
                let projected = pct(self.projected_cpu_percent);
                write!(f, "average CPU {cpu} % (projected {projected} % with one worker fewer)")?;
                write!(f, " below {held}")?;
                if self.memory_percent.is_some() {
                    let projected = pct(self.projected_memory_percent);
                    write!(f, ", memory {mem} % of the limit (projected {projected} %)")?;
                }
                Ok(())
            }
            Trigger::Bounds { min, max } => {
                write!(f, "worker count outside the bounds {min}..={max}")
            }
        }
    }
}

/// `v` with one decimal, without a trailing `.0` (56 rather than 56.0 or 56.00000000000001).
fn short(v: f64) -> String {
    let s = format!("{v:.1}");
    match s.strip_suffix(".0") {
        Some(whole) => whole.to_owned(),
        None => s,
    }
}

#[cfg(test)]
#[path = "autoscale_tests.rs"]
mod tests;
