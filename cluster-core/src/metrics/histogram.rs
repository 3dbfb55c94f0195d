//! A lock-free latency histogram: fixed log-linear buckets of atomic counters.
//!
//! The proxy records one latency per request from any thread, so recording must take no
//! lock: `hdrhistogram` is not `Sync` (it would need a mutex per worker, or per-thread
//! recorders and a merge step). Sixteen linear sub-buckets per power of two give a relative
//! error under 6.25 %, plenty for p50/p90/p99 on a dashboard, in about 4 KiB per worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two.
const SUB: u64 = 16;
/// Values below this are counted exactly (one bucket each).
const LINEAR: u64 = 2 * SUB;
/// Powers of two covered above the linear range: up to 2^40 µs (about 12 days).
const OCTAVES: usize = 36;
/// Buckets of the histogram (608); a bucket's index fits in a `u16`.
pub(super) const BUCKETS: usize = LINEAR as usize + OCTAVES * SUB as usize;
const _: () = assert!(BUCKETS <= u16::MAX as usize + 1);

/// Counts of request latencies in microseconds, recordable from any thread without a lock.
#[derive(Debug)]
pub(crate) struct LatencyHistogram {
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
    sum_us: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}

fn bucket(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exp = 63 - u64::from(us.leading_zeros()); // >= 5
    let sub = (us >> (exp - 4)) & (SUB - 1);
    let i = LINEAR as usize + (exp as usize - 5) * SUB as usize + sub as usize;
    i.min(BUCKETS - 1)
}

/// The smallest value that falls in bucket `i` (what a percentile reports).
fn bucket_floor(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let k = i - LINEAR as usize;
    let exp = (k / SUB as usize) as u64 + 5;
    let sub = (k % SUB as usize) as u64;
    (1 << exp) | (sub << (exp - 4))
}

/// The latency at quantile `q` (0 to 1) in microseconds of `total` latencies counted in
/// `counts` (by bucket index): the floor of the bucket holding the latency of rank
/// `ceil(q * total)`, so to within one bucket (-6.25 %); `None` when `total` is 0. Shared by
/// the since-start percentiles and the sliding window's, so that both read the same.
pub(super) fn quantile_us(counts: &[u64], total: u64, q: f64) -> Option<u64> {
    if total == 0 {
        return None;
    }
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(bucket_floor(i));
        }
    }
    Some(bucket_floor(BUCKETS - 1))
}

impl LatencyHistogram {
    /// Records one latency.
    pub(crate) fn record(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Latencies recorded so far.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Mean latency in microseconds, `None` before the first record.
    #[cfg(test)]
    pub(crate) fn mean_us(&self) -> Option<f64> {
        self.read().mean_us()
    }

    /// The latency at quantile `q` (0 to 1) in microseconds; see [`Counts::quantile_us`].
    #[cfg(test)]
    pub(crate) fn quantile_us(&self, q: f64) -> Option<u64> {
        self.read().quantile_us(q)
    }

    /// The counts as they are now, read once, for several figures from one reading.
    pub(crate) fn read(&self) -> Counts {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total = counts.iter().sum();
        Counts { counts, total, sum_us: self.sum_us.load(Ordering::Relaxed) }
    }
}

/// One reading of a [`LatencyHistogram`] (empty by default: no latency counted).
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    counts: Vec<u64>,
    total: u64,
    sum_us: u64,
}

impl Counts {
    /// Latencies counted.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Their sum, in microseconds.
    pub(crate) fn sum_us(&self) -> u64 {
        self.sum_us
    }

    /// The count of each bucket, by index (empty for a default reading).
    pub(super) fn buckets(&self) -> &[u64] {
        &self.counts
    }

    /// Mean latency in microseconds, `None` before the first record.
    pub(crate) fn mean_us(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum_us as f64 / self.total as f64)
    }

    /// The latency at quantile `q` (0 to 1) in microseconds, to within one bucket (-6.25 %);
    /// `None` before the first record.
    pub(crate) fn quantile_us(&self, q: f64) -> Option<u64> {
        quantile_us(&self.counts, self.total, q)
    }

    /// Cumulative counts at each of `bounds_us` (ascending): the latencies at or below each
    /// bound, as a Prometheus histogram has them. A latency counts below a bound when its
    /// bucket starts at or below it, so a count is exact to within one bucket (6.25 %).
    pub(crate) fn cumulative(&self, bounds_us: &[u64]) -> Vec<u64> {
        let mut out = Vec::with_capacity(bounds_us.len());
        let (mut i, mut seen) = (0, 0);
        for &bound in bounds_us {
            while i < self.counts.len() && bucket_floor(i) <= bound {
                seen += self.counts[i];
                i += 1;
            }
            out.push(seen);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for us in [0u64, 1, 31, 32, 33, 47, 64, 100, 1_000, 12_345, 1_000_000, 1 << 39] {
            let b = bucket(us);
            assert!(b >= last, "bucket of {us}");
            last = b;
            let floor = bucket_floor(b);
            assert!(floor <= us && us - floor <= us / 16, "{us} in bucket floor {floor}");
        }
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let h = LatencyHistogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile_us(0.5).unwrap();
        let p99 = h.quantile_us(0.99).unwrap();
        assert!((47_000..=50_000).contains(&p50), "p50 {p50}");
        assert!((93_000..=99_000).contains(&p99), "p99 {p99}");
        assert_eq!(h.count(), 100);
        assert!((h.mean_us().unwrap() - 50_500.0).abs() < 1.0);
        assert_eq!(LatencyHistogram::default().quantile_us(0.5), None);
    }

    #[test]
    fn cumulative_counts_at_bounds() {
        let h = LatencyHistogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let c = h.read();
        let at = c.cumulative(&[500, 10_000, 50_000, 100_000, 10_000_000]);
        assert_eq!(at[0], 0);
        assert!((9..=11).contains(&at[1]), "{at:?}");
        assert!((48..=53).contains(&at[2]), "{at:?}");
        assert_eq!(&at[3..], &[100, 100]);
        assert_eq!((c.total(), c.sum_us()), (100, 5_050_000));
    }
}
