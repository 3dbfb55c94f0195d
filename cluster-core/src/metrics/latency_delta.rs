//! The latencies recorded between two readings of a histogram, kept sparse, and their sum over
//! a sliding window (or over the windows of several workers), for windowed percentiles.

use super::histogram::{self, BUCKETS, Counts};

/// The latencies recorded between two readings of a worker's histogram: the buckets that
/// gained some, as `(bucket index, latencies gained)`, in ascending bucket order.
///
/// Sparse because a service's latencies fall in a few octaves: typically a few dozen entries
/// of 8 bytes per health tick, where a full copy of the histogram is 608 counts of 8 bytes.
/// At most one entry per bucket (608), and at most one per latency recorded in between.
#[derive(Debug, Clone, Default)]
pub(crate) struct LatencyDelta {
    /// A bucket's gain is clamped to `u32::MAX` (over 4 billion latencies in one bucket
    /// between two ticks: not reached by one worker).
    entries: Box<[(u16, u32)]>,
}

impl LatencyDelta {
    /// What `next` counts beyond `prev`, bucket by bucket. A bucket that went backwards (the
    /// counts restarted) gains nothing rather than underflowing; a missing bucket (a default,
    /// empty reading) counts 0.
    pub(crate) fn between(prev: &Counts, next: &Counts) -> Self {
        let prev = prev.buckets();
        let entries = next
            .buckets()
            .iter()
            .enumerate()
            .filter_map(|(i, &n)| {
                let gained = n.saturating_sub(prev.get(i).copied().unwrap_or(0));
                // `i < BUCKETS`, which fits in a u16 (asserted in `histogram`).
                (gained > 0).then(|| (i as u16, u32::try_from(gained).unwrap_or(u32::MAX)))
            })
            .collect();
        LatencyDelta { entries }
    }

    /// Entries kept (buckets that gained latencies).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Latency counts summed from [`LatencyDelta`]s, dense (608 counts) for the time of one
/// computation only: never kept between ticks.
#[derive(Debug, Clone)]
pub(crate) struct LatencyTally {
    counts: Box<[u64]>,
    total: u64,
}

impl Default for LatencyTally {
    fn default() -> Self {
        LatencyTally { counts: vec![0; BUCKETS].into_boxed_slice(), total: 0 }
    }
}

impl LatencyTally {
    /// Adds the latencies of `delta`.
    pub(crate) fn add(&mut self, delta: &LatencyDelta) {
        for &(i, n) in &delta.entries {
            self.counts[usize::from(i)] += u64::from(n);
            self.total += u64::from(n);
        }
    }

    /// Latencies summed.
    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The latency at quantile `q` (0 to 1) in milliseconds, with the same buckets and
    /// rounding as the since-start percentiles ([`Counts::quantile_us`]); `None` without any.
    pub(crate) fn quantile_ms(&self, q: f64) -> Option<f64> {
        histogram::quantile_us(&self.counts, self.total, q).map(|us| us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::histogram::LatencyHistogram;
    use super::*;

    #[test]
    fn a_delta_keeps_only_the_buckets_that_gained() {
        let h = LatencyHistogram::default();
        for ms in [1, 1, 2, 300] {
            h.record(Duration::from_millis(ms));
        }
        let before = h.read();
        for _ in 0..1_000 {
            h.record(Duration::from_micros(1_500));
        }
        h.record(Duration::from_millis(300));
        let after = h.read();
        let d = LatencyDelta::between(&before, &after);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(std::mem::size_of::<(u16, u32)>(), 8);
        let mut t = LatencyTally::default();
        t.add(&d);
        assert_eq!(t.total(), 1_001);
        assert_eq!(t.quantile_ms(0.5), Some(1.472)); // the floor of 1.5 ms's bucket
        assert_eq!(t.quantile_ms(1.0), after.quantile_us(1.0).map(|us| us as f64 / 1000.0));
        // Against an empty reading: everything so far, the same percentiles as since start.
        let all = LatencyDelta::between(&Counts::default(), &after);
        let mut t = LatencyTally::default();
        t.add(&all);
        assert_eq!(t.total(), after.total());
        for q in [0.5, 0.9, 0.99] {
            assert_eq!(t.quantile_ms(q), after.quantile_us(q).map(|us| us as f64 / 1000.0));
        }
    }

    #[test]
    fn counts_going_backwards_gain_nothing() {
        let old = LatencyHistogram::default();
        for _ in 0..100 {
            old.record(Duration::from_millis(1));
        }
        let fresh = LatencyHistogram::default();
        for _ in 0..5 {
            fresh.record(Duration::from_millis(1));
        }
        let d = LatencyDelta::between(&old.read(), &fresh.read());
        assert_eq!(d.len(), 0);
        assert_eq!(LatencyDelta::between(&old.read(), &Counts::default()).len(), 0);
        assert_eq!(LatencyTally::default().quantile_ms(0.99), None);
    }
}
