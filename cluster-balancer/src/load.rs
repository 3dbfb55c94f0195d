//! Per-backend load signals and the RAII guard that counts in-flight work.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{Clock, SystemClock, nanos};
use crate::rng::mix64;

/// Peak-EWMA decay when none is set: linkerd2-proxy's default (10 s).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_balancer::{BackendLoad, DEFAULT_RTT_DECAY};
///
/// let load = BackendLoad::new(1);
/// load.set_rtt_decay(DEFAULT_RTT_DECAY / 2); // forget latency peaks twice as fast
/// assert_eq!(DEFAULT_RTT_DECAY, Duration::from_secs(10));
/// ```
pub const DEFAULT_RTT_DECAY: Duration = Duration::from_secs(10);

/// The CPU cost factor of a backend at zero cores (1 core = 1000).
const CPU_FACTOR_IDLE: u32 = 1000;

// Every signal of a backend on one cache line: a scan reads one line per backend, and two
// backends never share one.
const _: () = assert!(size_of::<BackendLoad>() == 64 && align_of::<BackendLoad>() == 64);

/// The load signals of one backend, shared between the proxy and the health sampler (which
/// write them) and the strategies (which read them).
///
/// Every field is an atomic: reading and updating never takes a lock. The record is aligned
/// to a cache line so that two backends' counters never share one (no false sharing between
/// threads picking different backends).
///
/// | signal | written by | read by |
/// |---|---|---|
/// | in-flight requests | [`start`](Self::start) / [`InFlight`] drop | every load-aware strategy |
/// | peak-EWMA response time | [`observe_latency`](Self::observe_latency) | [`PeakEwma`](crate::PeakEwma) |
/// | CPU share | [`set_cpu_share`](Self::set_cpu_share) | [`CpuBased`](crate::CpuBased) |
/// | weight, ready time | [`set_weight`](Self::set_weight), [`mark_ready`](Self::mark_ready) | [`SlowStart`](crate::SlowStart) |
/// | affinity key | [`with_affinity`](Self::with_affinity) | [`Sticky`](crate::Sticky) |
///
/// # Examples
///
/// The signals as the proxy and the health sampler write them, and as a strategy reads them:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cluster_balancer::BackendLoad;
///
/// // Worker 7 in slot 2: sticky clients follow the slot to the worker's replacement.
/// let load = Arc::new(BackendLoad::with_affinity(7, 2));
/// assert_eq!(load.id(), 7);
///
/// let request = load.start(); // one request in flight until the guard drops
/// assert_eq!(load.in_flight(), 1);
/// assert_eq!(request.backend().id(), 7);
/// drop(request);
/// assert_eq!(load.in_flight(), 0);
///
/// load.observe_latency(Duration::from_millis(20)); // stamped with the system clock
/// load.observe_latency_at(Duration::from_millis(40), 1_000); // or with a clock of your own
/// assert!(load.rtt_estimate_at(1_000).is_some());
/// load.set_rtt_decay(Duration::from_secs(5)); // forget peaks faster than the 10 s default
///
/// load.set_cpu_share(0.5); // half a core over the last sample
/// assert_eq!(load.cpu_share(), 0.5);
/// load.set_weight(50); // half the traffic of a full backend
/// assert_eq!(load.weight(), 50);
///
/// let fresh = BackendLoad::new(8);
/// assert_eq!(fresh.ready_at(), None);
/// fresh.mark_ready_at(5_000); // its slow start begins
/// assert_eq!(fresh.ready_at(), Some(5_000));
/// fresh.mark_ready(); // the same, now by the system clock
/// ```
#[derive(Debug)]
#[repr(align(64))]
pub struct BackendLoad {
    id: u64,
    affinity: u64,
    /// 32 bits: four billion requests in flight on one worker cannot happen (each holds a
    /// guard and a connection), and `(in_flight + 1) × cpu_factor` fits in 64 bits unchecked.
    in_flight: AtomicU32,
    /// Peak-EWMA estimate in nanoseconds, as `f64` bits.
    rtt_bits: AtomicU64,
    /// When `rtt_bits` was last updated (clock nanos); 0 = no sample yet.
    rtt_at: AtomicU64,
    rtt_decay_ns: AtomicU64,
    /// `1 + CPU share in cores`, in thousandths: [`CpuBased`](crate::CpuBased)'s cost per
    /// request, precomputed so that its scan does one integer multiply per backend.
    cpu_factor: AtomicU32,
    /// Capacity share in percent of a full share (100).
    weight: AtomicU32,
    /// When the backend became ready (clock nanos); 0 = not marked, treated as long ago.
    ready_at: AtomicU64,
}

impl BackendLoad {
    /// Creates the load record of backend `id` with nothing in flight, no latency sample,
    /// zero CPU, full weight (100) and no slow start.
    ///
    /// `id` identifies the backend across routing-table changes; the proxy uses the worker's
    /// unique id. The affinity key defaults to `id` (see [`with_affinity`](Self::with_affinity)).
    pub fn new(id: u64) -> Self {
        Self::with_affinity(id, id)
    }

    /// Like [`new`](Self::new), with the key [`Sticky`](crate::Sticky) hashes sessions onto.
    ///
    /// Give a replacement worker the key of the worker it replaces (the proxy: the worker's
    /// slot) so that sticky sessions survive restarts; with the default (the id), a replaced
    /// worker's sessions move like those of a removed and an added worker.
    pub fn with_affinity(id: u64, affinity: u64) -> Self {
        Self {
            id,
            affinity: mix64(affinity ^ 0x5EED_AFF1),
            in_flight: AtomicU32::new(0),
            rtt_bits: AtomicU64::new(0f64.to_bits()),
            rtt_at: AtomicU64::new(0),
            rtt_decay_ns: AtomicU64::new(nanos(DEFAULT_RTT_DECAY)),
            cpu_factor: AtomicU32::new(CPU_FACTOR_IDLE),
            weight: AtomicU32::new(100),
            ready_at: AtomicU64::new(0),
        }
    }

    /// The backend's id, as given to [`BackendLoad::new`].
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The hashed affinity key (see [`with_affinity`](Self::with_affinity)).
    pub(crate) fn affinity_hash(&self) -> u64 {
        self.affinity
    }

    /// Requests (and upgraded tunnels) currently in flight on this backend.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed) as usize
    }

    /// Counts one more request in flight until the returned guard is dropped.
    ///
    /// Keep the guard alive for as long as the backend does work for the request: until the
    /// response body has been sent in full, or the upgraded connection has closed.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { load: Arc::clone(self) }
    }

    /// Records one response time (request sent to response head received) for
    /// [`PeakEwma`](crate::PeakEwma), stamped with [`SystemClock`].
    ///
    /// The proxy calls this once per completed request, also for error responses (a worker
    /// that fails fast must not look attractive only because it is fast: count those as
    /// you see fit, e.g. observe the request timeout instead).
    pub fn observe_latency(&self, rtt: Duration) {
        self.observe_latency_at(rtt, SystemClock.now());
    }

    /// [`observe_latency`](Self::observe_latency) at time `now` of the strategy's [`Clock`].
    ///
    /// The estimate is peak-sensitive (Finagle/tower): a sample above it replaces it at once;
    /// a sample below pulls it down with weight `1 - exp(-elapsed / decay)`.
    ///
    /// # Caveats
    ///
    /// Two observations racing on the same backend may lose one of the decreasing updates
    /// (never a peak: peaks use `fetch_max`). The estimate is a heuristic; the lost sample
    /// is irrelevant and the price of staying lock-free.
    pub fn observe_latency_at(&self, rtt: Duration, now: u64) {
        let sample = nanos(rtt).max(1) as f64;
        let at = self.rtt_at.load(Ordering::Relaxed);
        let current = f64::from_bits(self.rtt_bits.load(Ordering::Relaxed));
        if at == 0 || sample > current {
            self.rtt_bits.fetch_max(sample.to_bits(), Ordering::Relaxed);
        } else {
            let w = self.decay_weight(now.saturating_sub(at));
            self.rtt_bits.store((current * w + sample * (1.0 - w)).to_bits(), Ordering::Relaxed);
        }
        self.rtt_at.store(now.max(1), Ordering::Relaxed);
    }

    /// The peak-EWMA response-time estimate at `now`, in nanoseconds, decayed toward zero
    /// since the last sample (as tower's `PeakEwma` does on read, so an idle backend is
    /// tried again); `None` before the first sample.
    pub fn rtt_estimate_at(&self, now: u64) -> Option<f64> {
        let at = self.rtt_at.load(Ordering::Relaxed);
        if at == 0 {
            return None;
        }
        let est = f64::from_bits(self.rtt_bits.load(Ordering::Relaxed));
        Some(est * self.decay_weight(now.saturating_sub(at)))
    }

    /// Sets how quickly the latency estimate forgets: the time constant of its exponential
    /// decay (default [`DEFAULT_RTT_DECAY`]). Shorter reacts faster and forgets peaks sooner.
    pub fn set_rtt_decay(&self, decay: Duration) {
        self.rtt_decay_ns.store(nanos(decay).max(1), Ordering::Relaxed);
    }

    fn decay_weight(&self, elapsed: u64) -> f64 {
        let x = elapsed as f64 / self.rtt_decay_ns.load(Ordering::Relaxed) as f64;
        // A busy backend is read within a small fraction of its decay time: there a
        // second-order Taylor term is exact to 2e-7 and much cheaper than `exp`.
        if x < 0.01 { 1.0 - x + 0.5 * x * x } else { (-x).exp() }
    }

    /// Sets the recent CPU share of the backend's process tree, in cores (1.0 = one core
    /// fully busy over the last sample window), for [`CpuBased`](crate::CpuBased).
    ///
    /// The health sampler calls this after each sample; negative or NaN values count as 0.
    pub fn set_cpu_share(&self, cores: f64) {
        let max = f64::from(u32::MAX - CPU_FACTOR_IDLE);
        let milli = (cores * 1000.0).round().clamp(0.0, max) as u32;
        self.cpu_factor.store(CPU_FACTOR_IDLE + milli, Ordering::Relaxed);
    }

    /// The last CPU share set, in cores.
    pub fn cpu_share(&self) -> f64 {
        f64::from(self.cpu_factor() - CPU_FACTOR_IDLE) / 1000.0
    }

    /// `1000 × (1 + cpu_share)`, in `1000..=u32::MAX`.
    pub(crate) fn cpu_factor(&self) -> u32 {
        self.cpu_factor.load(Ordering::Relaxed)
    }

    /// Sets the backend's capacity share in percent (100 = a full share, the default; 50 =
    /// half the traffic a full backend gets), applied by [`SlowStart`](crate::SlowStart).
    /// Values above 100 count as 100.
    pub fn set_weight(&self, percent: u32) {
        self.weight.store(percent.min(100), Ordering::Relaxed);
    }

    /// The capacity share in percent; see [`set_weight`](Self::set_weight).
    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    /// Records that the backend just became ready (stamped with [`SystemClock`]), which
    /// starts its [`SlowStart`](crate::SlowStart) ramp. The proxy calls it when the worker
    /// enters the routing table.
    pub fn mark_ready(&self) {
        self.mark_ready_at(SystemClock.now());
    }

    /// [`mark_ready`](Self::mark_ready) at time `now` of the strategy's [`Clock`].
    pub fn mark_ready_at(&self, now: u64) {
        self.ready_at.store(now.max(1), Ordering::Relaxed);
    }

    /// When the backend was marked ready (clock nanos), if it was and its slow start has not
    /// been seen to finish (a [`SlowStart`](crate::SlowStart) clears it once the window is
    /// over, so later picks skip the clock).
    pub fn ready_at(&self) -> Option<u64> {
        Some(self.ready_at.load(Ordering::Relaxed)).filter(|&t| t != 0)
    }

    /// Clears the ready time `at` once its ramp is over, unless it was marked again since.
    pub(crate) fn finish_warmup(&self, at: u64) {
        let _ = self.ready_at.compare_exchange(at, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Counts one request as in flight on a backend for as long as it lives.
///
/// Deliberately not `Clone`: one guard is one request.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use cluster_balancer::BackendLoad;
///
/// let load = Arc::new(BackendLoad::new(1));
/// let guard = load.start();
/// assert!(Arc::ptr_eq(guard.backend(), &load));
/// drop(guard); // the response has been sent
/// assert_eq!(load.in_flight(), 0);
/// ```
#[derive(Debug)]
#[must_use = "the request stops counting as in flight when the guard is dropped"]
pub struct InFlight {
    load: Arc<BackendLoad>,
}

impl InFlight {
    /// The backend this guard counts against.
    pub fn backend(&self) -> &Arc<BackendLoad> {
        &self.load
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.load.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn guard_counts_while_alive() {
        let load = Arc::new(BackendLoad::new(7));
        let a = load.start();
        let b = load.start();
        assert_eq!(load.in_flight(), 2);
        drop(a);
        assert_eq!(load.in_flight(), 1);
        drop(b);
        assert_eq!(load.in_flight(), 0);
    }

    #[test]
    fn latency_estimate_jumps_to_peaks_and_decays() {
        let load = BackendLoad::new(0);
        load.set_rtt_decay(Duration::from_secs(1));
        assert_eq!(load.rtt_estimate_at(1), None);
        load.observe_latency_at(Duration::from_millis(10), 1);
        load.observe_latency_at(Duration::from_millis(100), 2);
        assert_eq!(load.rtt_estimate_at(2).unwrap().round(), (100 * MS) as f64);
        // Lower samples pull it down gradually, not at once.
        load.observe_latency_at(Duration::from_millis(10), 100 * MS);
        let est = load.rtt_estimate_at(100 * MS).unwrap() / MS as f64;
        assert!(est > 80.0 && est < 100.0, "{est}");
        // Unread for one decay time: about 1/e of it remains.
        let later = load.rtt_estimate_at(1100 * MS).unwrap() / est / MS as f64;
        assert!((later - (-1f64).exp()).abs() < 1e-3, "{later}");
    }

    #[test]
    fn cpu_weight_and_readiness() {
        let load = BackendLoad::new(0);
        load.set_cpu_share(0.25);
        assert_eq!(load.cpu_share(), 0.25);
        load.set_cpu_share(f64::NAN);
        assert_eq!(load.cpu_share(), 0.0);
        assert_eq!(load.cpu_factor(), 1000);
        load.set_cpu_share(1e12); // clamped so that 1000 + milli-cores stays a u32
        assert_eq!(load.cpu_factor(), u32::MAX);
        load.set_weight(500);
        assert_eq!(load.weight(), 100);
        assert_eq!(load.ready_at(), None);
        load.mark_ready_at(42);
        assert_eq!(load.ready_at(), Some(42));
    }
}
